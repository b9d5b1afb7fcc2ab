//! The `app.*` XRPC namespace: the few `app.bsky.*` methods the PDS answers itself (the rest
//! belong to the AppView).

pub mod bsky;

use super::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    bsky::register(xrpc)
}
