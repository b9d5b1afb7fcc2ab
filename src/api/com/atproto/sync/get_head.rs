//! `com.atproto.sync.getHead` (query, public, deprecated): the CID of a repo's head commit, as
//! `{root}`; `HeadNotFound` if the account has no repo. `getLatestCommit` replaced it.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{Caller, Params, assert_repo_available, bad_request, repo_head};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getHead";

#[derive(Debug, Serialize)]
pub struct Output {
    pub root: String,
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
            "HeadNotFound",
            format!("Could not find root for DID: {did}"),
        )
    })?;
    Ok(Json(Output {
        root: head.commit_cid.to_string(),
    }))
}
