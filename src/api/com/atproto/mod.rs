//! `com.atproto.*`: the protocol's own methods.

pub mod identity;
pub mod repo;
pub mod server;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    let xrpc = server::register(xrpc);
    let xrpc = repo::register(xrpc);
    identity::register(xrpc)
}
