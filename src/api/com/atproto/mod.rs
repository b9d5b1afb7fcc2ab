//! `com.atproto.*`: the protocol's own methods.

pub mod server;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    server::register(xrpc)
}
