//! `app.bsky.feed.getFeed` (query): a custom feed, forwarded to the AppView with a token for
//! the feed's generator (see `crate::proxy::feed`).

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::proxy;
use crate::state::AppState;

pub const NSID: &str = "app.bsky.feed.getFeed";

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    proxy::feed::get_feed(&state, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
