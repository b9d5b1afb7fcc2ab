//! `com.atproto.server.*`: the server's description, accounts and sessions.

pub mod describe_server;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(describe_server::NSID, describe_server::handle)
}
