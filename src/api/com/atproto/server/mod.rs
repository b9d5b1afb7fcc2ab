//! `com.atproto.server.*`: the server's description, accounts and sessions.

pub mod create_account;
pub mod create_session;
pub mod delete_session;
pub mod describe_server;
pub mod get_session;
pub mod refresh_session;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(describe_server::NSID, describe_server::handle)
        .procedure(create_account::NSID, create_account::handle)
        .procedure(create_session::NSID, create_session::handle)
        .query(get_session::NSID, get_session::handle)
        .procedure(refresh_session::NSID, refresh_session::handle)
        .procedure(delete_session::NSID, delete_session::handle)
}
