//! `com.atproto.admin.updateSubjectStatus` (procedure, admin): take an account down or restore
//! it (`subject` a `#repoRef`, `takedown: {applied, ref}`). A takedown ends the account's
//! sessions, stops its repo being served or written, and is announced on the firehose
//! (`#account` `takendown`); a restore announces the account's status again. Records and blobs
//! as subjects are not supported yet (a clear 400).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounts::status;
use crate::api::{ApiError, XrpcJson};
use crate::auth::admin::AdminAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.admin.updateSubjectStatus";

pub const REPO_REF: &str = "com.atproto.admin.defs#repoRef";

#[derive(Debug, Deserialize)]
pub struct Input {
    pub subject: Value,
    pub takedown: Option<StatusAttr>,
}

/// `com.atproto.admin.defs#statusAttr`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StatusAttr {
    pub applied: bool,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub subject: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub takedown: Option<StatusAttr>,
}

pub async fn handle(
    State(state): State<AppState>,
    _admin: AdminAuth,
    XrpcJson(input): XrpcJson<Input>,
) -> Result<Json<Output>, ApiError> {
    let did = repo_ref_did(&input.subject)?;
    if let Some(takedown) = &input.takedown {
        let reference = takedown.applied.then(|| {
            takedown
                .reference
                .clone()
                .unwrap_or_else(|| "takedown".to_owned())
        });
        status::set_takedown(&state, &did, reference).await?;
    }
    Ok(Json(Output {
        subject: input.subject,
        takedown: input.takedown,
    }))
}

/// The DID of a `#repoRef` subject; other subjects are refused.
fn repo_ref_did(subject: &Value) -> Result<String, ApiError> {
    match subject.get("$type").and_then(Value::as_str) {
        Some(REPO_REF) => {}
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "Only accounts ({REPO_REF}) can be taken down here yet, not {other}"
            )));
        }
        None => return Err(ApiError::invalid_request("subject must have a $type")),
    }
    let did = subject
        .get("did")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("subject must have a did"))?;
    pds_syntax::Did::new(did)
        .map_err(|_| ApiError::invalid_request("subject/did must be a valid did"))?;
    Ok(did.to_owned())
}
