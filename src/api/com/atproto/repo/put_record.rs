//! `com.atproto.repo.putRecord` (procedure): writes a record of the caller's repo, creating it
//! or updating it.

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

pub const NSID: &str = input::PUT_RECORD;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub uri: String,
    pub cid: String,
    /// Absent when the record was already exactly this (nothing was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitMeta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_status: Option<&'static str>,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(body): XrpcJson<Value>,
) -> Result<Json<Output>, ApiError> {
    let input = input::PutRecord::from_json(&body)?;
    // Whether it creates or replaces is only known inside the write: an OAuth app needs both.
    auth.require_repo(input.collection.as_str(), RepoAction::Create)?;
    auth.require_repo(input.collection.as_str(), RepoAction::Update)?;
    let written = records::write::put_record(&state, &auth.did, input).await?;
    Ok(Json(Output {
        uri: written.uri.into_string(),
        cid: written.cid.to_string(),
        commit: written.commit.map(Into::into),
        validation_status: written.status.map(|s| s.as_str()),
    }))
}
