//! `com.atproto.sync.getLatestCommit` (query, public): the CID and rev of a repo's head commit,
//! what a consumer compares with its own copy before fetching anything.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{Caller, Params, assert_repo_available, bad_request, repo_head};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getLatestCommit";

#[derive(Debug, Serialize)]
pub struct Output {
    pub cid: String,
    pub rev: String,
}

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let did = params.did("did")?;
    assert_repo_available(&state, &did, &caller).await?;
    let head = repo_head(&state, &did).await?.ok_or_else(|| {
        bad_request(
            "RepoNotFound",
            format!("Could not find root for DID: {did}"),
        )
    })?;
    Ok(Json(Output {
        cid: head.commit_cid.to_string(),
        rev: head.rev,
    }))
}
