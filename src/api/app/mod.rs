//! The `app.*` XRPC namespace: the `app.bsky.*` methods the PDS answers itself or forwards with
//! more than the proxy's defaults (the rest belong to the AppView, see `crate::proxy`).

pub mod bsky;

use super::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    bsky::register(xrpc)
}
