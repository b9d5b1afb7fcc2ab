//! `com.atproto.sync.getCheckout` (query, public, deprecated): the whole repository as a CAR,
//! exactly as `getRepo` without `since`. Kept because older clients still call it.

use axum::extract::State;
use axum::response::Response;

use super::get_repo::stream_repo_car;
use super::{Caller, Params, assert_repo_available};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getCheckout";

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Response, ApiError> {
    let did = params.did("did")?;
    assert_repo_available(&state, &did, &caller).await?;
    stream_repo_car(&state, did, None).await
}
