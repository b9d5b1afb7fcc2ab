//! `app.bsky.notification.*` methods the PDS handles itself: push registrations, sent on to
//! the notification service the client names. The rest is forwarded to the AppView.

pub mod register_push;
pub mod unregister_push;

use crate::api::xrpc::XrpcRouter;

pub fn register(xrpc: XrpcRouter) -> XrpcRouter {
    xrpc.procedure(register_push::NSID, register_push::handle)
        .procedure(unregister_push::NSID, unregister_push::handle)
}
