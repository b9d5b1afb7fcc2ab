//! `app.bsky.*` methods kept by the PDS.

pub mod actor;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    actor::register(xrpc)
}
