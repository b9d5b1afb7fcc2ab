//! `app.bsky.feed.*` methods with more to them than forwarding: the reads that take the
//! account's newest posts (read-after-write), and getFeed's token for the feed generator. The
//! other feed methods are forwarded as they are (`crate::proxy`).

pub mod get_actor_likes;
pub mod get_author_feed;
pub mod get_feed;
pub mod get_post_thread;
pub mod get_timeline;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.query(get_timeline::NSID, get_timeline::handle)
        .query(get_author_feed::NSID, get_author_feed::handle)
        .query(get_post_thread::NSID, get_post_thread::handle)
        .query(get_actor_likes::NSID, get_actor_likes::handle)
        .query(get_feed::NSID, get_feed::handle)
}
