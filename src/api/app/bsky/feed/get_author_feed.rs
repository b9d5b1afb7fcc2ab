//! `app.bsky.feed.getAuthorFeed` (query): forwarded to the AppView (or the service an `atproto-proxy` header names),
//! and for the account's own feed with its posts and profile the AppView has not indexed yet
//! (read-after-write).

use axum::extract::{Request, State};
use axum::response::Response;

use crate::read_after_write::{self, Method};
use crate::state::AppState;

pub const NSID: &str = "app.bsky.feed.getAuthorFeed";

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    read_after_write::pipethrough(&state, request, Method::AuthorFeed).await
}
