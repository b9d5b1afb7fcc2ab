//! `app.bsky.actor.*`: the account's preferences (stored here, see `crate::preferences`).

pub mod get_preferences;
pub mod put_preferences;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(get_preferences::NSID, get_preferences::handle)
        .procedure(put_preferences::NSID, put_preferences::handle)
}
