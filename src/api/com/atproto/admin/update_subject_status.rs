//! `com.atproto.admin.updateSubjectStatus` (procedure, admin): take a subject down or restore
//! it (`takedown: {applied, ref}`):
//!
//! - an account (`com.atproto.admin.defs#repoRef`): a takedown ends its sessions, stops its
//!   repo being served or written, and is announced on the firehose (`#account` `takendown`);
//!   a restore announces the account's status again;
//! - a record (`com.atproto.repo.strongRef`): no longer served by getRecord / listRecords
//!   (`crate::moderation`);
//! - a blob (`com.atproto.admin.defs#repoBlobRef`): no longer served by `sync.getBlob`, and kept
//!   from the collector.

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
pub const STRONG_REF: &str = "com.atproto.repo.strongRef";
pub const REPO_BLOB_REF: &str = "com.atproto.admin.defs#repoBlobRef";

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
    let subject = Subject::parse(&input.subject)?;
    if let Some(takedown) = &input.takedown {
        let reference = takedown.applied.then(|| {
            takedown
                .reference
                .clone()
                .unwrap_or_else(|| "takedown".to_owned())
        });
        match subject {
            Subject::Repo(did) => status::set_takedown(&state, &did, reference).await?,
            Subject::Record { uri, cid } => {
                state
                    .db
                    .write(move |w| {
                        crate::moderation::set_record_takedown(
                            w.tx.connection(),
                            &uri,
                            &cid,
                            reference.as_deref(),
                        )
                        .map_err(pds_storage::StorageError::from)
                    })
                    .await
                    .map_err(ApiError::internal)?;
            }
            Subject::Blob { did, cid } => {
                let found = state
                    .db
                    .write(move |w| {
                        crate::blobs::set_takedown(
                            w.tx.connection(),
                            &did,
                            &cid,
                            reference.as_deref(),
                        )
                    })
                    .await
                    .map_err(ApiError::internal)?;
                if !found {
                    return Err(not_found());
                }
            }
        }
    }
    Ok(Json(Output {
        subject: input.subject,
        takedown: input.takedown,
    }))
}

/// What a status is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Repo(String),
    Record { uri: String, cid: String },
    Blob { did: String, cid: String },
}

impl Subject {
    /// A subject object of one of the three kinds, its fields checked.
    pub fn parse(subject: &Value) -> Result<Subject, ApiError> {
        let text = |field: &str| {
            subject
                .get(field)
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid_request(format!("subject must have a {field}")))
        };
        let did = |field: &str| -> Result<String, ApiError> {
            let did = text(field)?;
            pds_syntax::Did::new(did).map_err(|_| {
                ApiError::invalid_request(format!("subject/{field} must be a valid did"))
            })?;
            Ok(did.to_owned())
        };
        let cid = |field: &str| -> Result<String, ApiError> {
            let cid = text(field)?;
            pds_ipld::parse_cid(cid).map_err(|_| {
                ApiError::invalid_request(format!("subject/{field} must be a valid cid"))
            })?;
            Ok(cid.to_owned())
        };
        match subject.get("$type").and_then(Value::as_str) {
            Some(REPO_REF) => Ok(Subject::Repo(did("did")?)),
            Some(STRONG_REF) => Ok(Subject::Record {
                uri: record_uri(text("uri")?)?,
                cid: cid("cid")?,
            }),
            Some(REPO_BLOB_REF) => Ok(Subject::Blob {
                did: did("did")?,
                cid: cid("cid")?,
            }),
            Some(other) => Err(ApiError::invalid_request(format!(
                "subject must be a {REPO_REF}, {STRONG_REF} or {REPO_BLOB_REF}, not {other}"
            ))),
            None => Err(ApiError::invalid_request("subject must have a $type")),
        }
    }
}

/// A record's AT-URI in the form the record index uses: a DID authority, a collection and a
/// record key.
pub fn record_uri(text: &str) -> Result<String, ApiError> {
    let bad = || ApiError::invalid_request("uri must be the at:// URI of a record, with a DID");
    let uri = pds_syntax::AtUri::new(text).map_err(|_| bad())?;
    let (Some(collection), Some(rkey)) = (uri.collection(), uri.rkey()) else {
        return Err(bad());
    };
    pds_syntax::Did::new(uri.authority()).map_err(|_| bad())?;
    Ok(format!("at://{}/{collection}/{rkey}", uri.authority()))
}

pub fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "NotFound",
        "Subject not found",
    )
}
