//! `com.atproto.identity.*`: handles and DIDs.

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc
}
