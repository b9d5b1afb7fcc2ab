//! `com.atproto.repo.deleteRecord` (procedure): deletes a record of the caller's repo, or makes
//! sure it does not exist.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use super::create_record::CommitMeta;
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::records::{self, input};
use crate::state::AppState;
use pds_permissions::RepoAction;

pub const NSID: &str = input::DELETE_RECORD;

#[derive(Debug, Serialize)]
pub struct Output {
    /// Absent when there was no such record (nothing was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitMeta>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(body): XrpcJson<Value>,
) -> Result<Json<Output>, ApiError> {
    let input = input::DeleteRecord::from_json(&body)?;
    auth.require_repo(input.collection.as_str(), RepoAction::Delete)?;
    let commit = records::write::delete_record(&state, &auth.did, input).await?;
    Ok(Json(Output {
        commit: commit.map(Into::into),
    }))
}
