//! `app.bsky.feed.getTimeline` (query): forwarded to the AppView (or the service an `atproto-proxy` header names),
//! with the account's posts the AppView has not indexed yet put in place
//! (read-after-write).

use axum::extract::{Request, State};
use axum::response::Response;

use crate::read_after_write::{self, Method};
use crate::state::AppState;

pub const NSID: &str = "app.bsky.feed.getTimeline";

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    read_after_write::pipethrough(&state, request, Method::Timeline).await
}
