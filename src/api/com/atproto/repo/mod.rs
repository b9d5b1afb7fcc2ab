//! `com.atproto.repo.*`: reading and writing an account's records and blobs.

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc
}
