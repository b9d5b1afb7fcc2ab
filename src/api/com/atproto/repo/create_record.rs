//! `com.atproto.repo.createRecord` (procedure): a new record in the caller's repo.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::records::{self, input};
use crate::state::AppState;
use pds_permissions::RepoAction;

pub const NSID: &str = input::CREATE_RECORD;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub uri: String,
    pub cid: String,
    pub commit: CommitMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_status: Option<&'static str>,
}

/// `com.atproto.repo.defs#commitMeta`.
#[derive(Debug, Serialize)]
pub struct CommitMeta {
    pub cid: String,
    pub rev: String,
}

impl From<records::write::CommitMeta> for CommitMeta {
    fn from(c: records::write::CommitMeta) -> Self {
        CommitMeta {
            cid: c.cid.to_string(),
            rev: c.rev,
        }
    }
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(body): XrpcJson<Value>,
) -> Result<Json<Output>, ApiError> {
    let input = input::CreateRecord::from_json(&body)?;
    auth.require_repo(input.collection.as_str(), RepoAction::Create)?;
    let written = records::write::create_record(&state, &auth.did, input).await?;
    let commit = written
        .commit
        .ok_or_else(|| ApiError::internal("createRecord made no commit"))?;
    Ok(Json(Output {
        uri: written.uri.into_string(),
        cid: written.cid.to_string(),
        commit: commit.into(),
        validation_status: written.status.map(|s| s.as_str()),
    }))
}
