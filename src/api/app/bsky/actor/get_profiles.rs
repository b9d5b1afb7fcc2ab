//! `app.bsky.actor.getProfiles` (query): forwarded to the AppView (or the service an `atproto-proxy` header names),
//! with the account's own profile, among those asked for, as it is here when the AppView has
//! not indexed its latest change (read-after-write).

use axum::extract::{Request, State};
use axum::response::Response;

use crate::read_after_write::{self, Method};
use crate::state::AppState;

pub const NSID: &str = "app.bsky.actor.getProfiles";

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    read_after_write::pipethrough(&state, request, Method::Profiles).await
}
