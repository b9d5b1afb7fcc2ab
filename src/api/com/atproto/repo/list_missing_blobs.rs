//! `com.atproto.repo.listMissingBlobs` (query): the blobs the caller's records reference that
//! this server does not have, each with one record that references it. After a repo import
//! (account migration) this is the list of blobs still to upload. Ascending by CID, paged; as
//! the reference, the cursor is the last CID of the page whenever the page is not empty.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::api::ApiError;
use crate::api::com::atproto::sync::Params;
use crate::auth::AccessAuth;
use crate::blobs::{self, BlobError};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.repo.listMissingBlobs";

/// Keys in the reference's order: `blobs`, then `cursor`.
#[derive(Debug, Serialize)]
pub struct Output {
    pub blobs: Vec<RecordBlob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordBlob {
    pub cid: String,
    pub record_uri: String,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let limit = params.limit()?;
    let cursor = params.get("cursor").map(str::to_owned);
    let did = auth.did;
    let missing = state
        .db
        .read(move |store| blobs::list_missing(store.connection(), &did, cursor.as_deref(), limit))
        .await
        .map_err(|e: BlobError| ApiError::from(e))?;
    Ok(Json(Output {
        cursor: missing.last().map(|m| m.cid.clone()),
        blobs: missing
            .into_iter()
            .map(|m| RecordBlob {
                cid: m.cid,
                record_uri: m.record_uri,
            })
            .collect(),
    }))
}
