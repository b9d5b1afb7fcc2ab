//! `com.atproto.repo.describeRepo` (query, public): an account's handle, DID, DID document and
//! collections.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;

use crate::api::ApiError;
use crate::records::{self, input};
use crate::state::AppState;

pub const NSID: &str = input::DESCRIBE_REPO;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub handle: String,
    pub did: String,
    pub did_doc: serde_json::Value,
    pub collections: Vec<String>,
    pub handle_is_correct: bool,
}

pub async fn handle(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Output>, ApiError> {
    let params = input::params(NSID, &query)?;
    let repo = input::at_identifier("repo", params.string("repo").unwrap_or_default())?;
    let description = records::read::describe_repo(&state, repo).await?;
    Ok(Json(Output {
        handle: description.handle,
        did: description.did,
        did_doc: description.did_doc,
        collections: description.collections,
        handle_is_correct: description.handle_is_correct,
    }))
}
