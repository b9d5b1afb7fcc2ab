//! `com.atproto.repo.applyWrites` (procedure): up to 200 creates, updates and deletes in the
//! caller's repo, as one commit.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;

use super::create_record::CommitMeta;
use crate::api::{ApiError, XrpcJson};
use crate::auth::AccessAuth;
use crate::records::write::WriteResult;
use crate::records::{self, input};
use crate::state::AppState;
use pds_permissions::RepoAction;

pub const NSID: &str = input::APPLY_WRITES;

#[derive(Debug, Serialize)]
pub struct Output {
    pub commit: CommitMeta,
    pub results: Vec<ResultItem>,
}

/// One of `#createResult`, `#updateResult`, `#deleteResult`, in the order of the writes.
#[derive(Debug, Serialize)]
pub struct ResultItem {
    #[serde(rename = "$type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(rename = "validationStatus", skip_serializing_if = "Option::is_none")]
    pub validation_status: Option<&'static str>,
}

impl From<WriteResult> for ResultItem {
    fn from(r: WriteResult) -> Self {
        let written =
            |kind,
             uri: pds_syntax::AtUri,
             cid: pds_ipld::Cid,
             status: Option<records::ValidationStatus>| ResultItem {
                kind,
                cid: Some(cid.to_string()),
                uri: Some(uri.into_string()),
                validation_status: status.map(|s| s.as_str()),
            };
        match r {
            WriteResult::Create { uri, cid, status } => written(
                "com.atproto.repo.applyWrites#createResult",
                uri,
                cid,
                status,
            ),
            WriteResult::Update { uri, cid, status } => written(
                "com.atproto.repo.applyWrites#updateResult",
                uri,
                cid,
                status,
            ),
            WriteResult::Delete => ResultItem {
                kind: "com.atproto.repo.applyWrites#deleteResult",
                cid: None,
                uri: None,
                validation_status: None,
            },
        }
    }
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    XrpcJson(body): XrpcJson<Value>,
) -> Result<Json<Output>, ApiError> {
    let input = input::ApplyWrites::from_json(&body)?;
    for write in &input.writes {
        let (collection, action) = match write {
            input::WriteOp::Create { collection, .. } => (collection, RepoAction::Create),
            input::WriteOp::Update { collection, .. } => (collection, RepoAction::Update),
            input::WriteOp::Delete { collection, .. } => (collection, RepoAction::Delete),
        };
        auth.require_repo(collection.as_str(), action)?;
    }
    let (commit, results) = records::write::apply_writes(&state, &auth.did, input).await?;
    Ok(Json(Output {
        commit: commit.into(),
        results: results.into_iter().map(Into::into).collect(),
    }))
}
