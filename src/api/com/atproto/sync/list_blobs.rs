//! `com.atproto.sync.listBlobs` (query): the CIDs of the blobs an account's records reference,
//! ascending, paged; with `since` (a repo rev), only those referenced by records written after
//! it. Public, with the repo availability rules of the other sync methods. As the reference, the
//! cursor is the last CID of the page whenever the page is not empty.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{Caller, Params, assert_repo_available};
use crate::api::ApiError;
use crate::blobs::{self, BlobError};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.listBlobs";

#[derive(Debug, Serialize)]
pub struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub cids: Vec<String>,
}

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Json<Output>, ApiError> {
    let did = params.did("did")?;
    let since = params.tid("since")?;
    let limit = params.limit()?;
    let cursor = params.get("cursor").map(str::to_owned);
    assert_repo_available(&state, &did, &caller).await?;
    let cids = state
        .db
        .read(move |store| {
            blobs::list_blobs(
                store.connection(),
                &did,
                since.as_deref(),
                cursor.as_deref(),
                limit,
            )
        })
        .await
        .map_err(|e: BlobError| ApiError::from(e))?;
    Ok(Json(Output {
        cursor: cids.last().cloned(),
        cids,
    }))
}
