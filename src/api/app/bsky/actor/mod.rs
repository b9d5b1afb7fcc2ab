//! `app.bsky.actor.*`: the account's preferences (stored here, see `crate::preferences`), and
//! the profile reads that show the account's newest profile (read-after-write). The other actor
//! methods are forwarded to the AppView (`crate::proxy`).

pub mod get_preferences;
pub mod get_profile;
pub mod get_profiles;
pub mod put_preferences;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(get_preferences::NSID, get_preferences::handle)
        .procedure(put_preferences::NSID, put_preferences::handle)
        .query(get_profile::NSID, get_profile::handle)
        .query(get_profiles::NSID, get_profiles::handle)
}
