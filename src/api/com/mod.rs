//! The `com.*` XRPC namespace. Modules below mirror NSIDs: the handler of
//! `com.atproto.server.describeServer` is `com/atproto/server/describe_server.rs`.

pub mod atproto;

use super::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    atproto::register(xrpc)
}
