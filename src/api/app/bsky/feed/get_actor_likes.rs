//! `app.bsky.feed.getActorLikes` (query): forwarded to the AppView (or the service an `atproto-proxy` header names),
//! with the account's newer profile on its own posts (read-after-write).

use axum::extract::{Request, State};
use axum::response::Response;

use crate::read_after_write::{self, Method};
use crate::state::AppState;

pub const NSID: &str = "app.bsky.feed.getActorLikes";

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    read_after_write::pipethrough(&state, request, Method::ActorLikes).await
}
