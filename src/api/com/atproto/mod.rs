//! `com.atproto.*`: the protocol's own methods.

pub mod admin;
pub mod identity;
pub mod repo;
pub mod server;
pub mod sync;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    let xrpc = server::register(xrpc);
    let xrpc = repo::register(xrpc);
    let xrpc = sync::register(xrpc);
    let xrpc = identity::register(xrpc);
    admin::register(xrpc)
}
