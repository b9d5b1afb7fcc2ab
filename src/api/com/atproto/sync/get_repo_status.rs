//! `com.atproto.sync.getRepoStatus` (query, public): whether an account's repo is active here,
//! and if not why (`takendown`, `deactivated`); its current rev when active. Unlike the other
//! sync methods it reports an inactive account rather than refusing it: only an unknown DID is
//! an error (`RepoNotFound`), as in the reference, which asks for no credentials here.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{Params, find_account, repo_head};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getRepoStatus";

#[derive(Debug, Serialize)]
pub struct Output {
    pub did: String,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
}

pub async fn handle(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let did = params.did("did")?;
    let account = find_account(&state, &did).await?;
    let rev = if account.active() {
        repo_head(&state, &did).await?.map(|head| head.rev)
    } else {
        None
    };
    Ok(Json(Output {
        active: account.active(),
        status: account.status(),
        did,
        rev,
    }))
}
