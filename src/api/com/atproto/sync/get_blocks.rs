//! `com.atproto.sync.getBlocks` (query, public): blocks of one repo picked by CID (`cids`
//! repeated), as a CAR without roots, as the reference sends it. If any is not in that repo the
//! whole request fails, naming the missing ones, with the reference's 400 `InvalidRequest`
//! "Could not find cids: a,b" (the lexicon's `BlockNotFound` is not what it sends).

use axum::extract::State;
use axum::response::Response;
use pds_storage::sync_reads;

use super::{Caller, Params, assert_repo_available, car_response};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getBlocks";

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Response, ApiError> {
    let did = params.did("did")?;
    let cids = params.cids("cids")?;
    assert_repo_available(&state, &did, &caller).await?;
    let sync_reads::FoundBlocks { found, missing } = state
        .db
        .read(move |store| sync_reads::blocks_by_cid(store.connection(), &did, &cids))
        .await
        .map_err(ApiError::internal)?;
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(ApiError::invalid_request(format!(
            "Could not find cids: {}",
            missing.join(",")
        )));
    }
    let car = pds_ipld::car::encode_car(&[], found).map_err(ApiError::internal)?;
    Ok(car_response(car))
}
