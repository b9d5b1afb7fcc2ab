//! `com.atproto.server.checkAccountStatus` (query): where the caller's account stands, for an
//! account moving here to see what is done (repo imported, blobs uploaded, DID pointed here)
//! before activating. Any session of the account may ask, deactivated accounts included. As
//! the reference: `privateStateValues` is always 0 (no private state is kept), `importedBlobs`
//! counts the blobs stored for the account, `expectedBlobs` the distinct blobs its records
//! reference.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::accounts::migration;
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.server.checkAccountStatus";

/// Keys in the lexicon's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub activated: bool,
    pub valid_did: bool,
    pub repo_commit: String,
    pub repo_rev: String,
    pub repo_blocks: u64,
    pub indexed_records: u64,
    pub private_state_values: u64,
    pub expected_blobs: u64,
    pub imported_blobs: u64,
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
) -> Result<Json<Output>, ApiError> {
    let status = migration::status(&state, &auth.did).await?;
    Ok(Json(Output {
        activated: status.activated,
        valid_did: status.valid_did,
        repo_commit: status.repo_commit,
        repo_rev: status.repo_rev,
        repo_blocks: status.repo_blocks,
        indexed_records: status.indexed_records,
        private_state_values: 0,
        expected_blobs: status.expected_blobs,
        imported_blobs: status.imported_blobs,
    }))
}
