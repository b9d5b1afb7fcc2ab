//! `app.bsky.*` methods with a handler here: preferences (kept by the PDS), the AppView reads
//! that take the account's newest records, getFeed, and push registrations. Every other
//! `app.bsky.*` method is forwarded to the AppView as it is (`crate::proxy`).

pub mod actor;
pub mod feed;
pub mod notification;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    let xrpc = actor::register(xrpc);
    let xrpc = feed::register(xrpc);
    notification::register(xrpc)
}
