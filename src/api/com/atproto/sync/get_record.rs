//! `com.atproto.sync.getRecord` (query, public): a record with its proof, as a CAR whose root is
//! the head commit: the signed commit block, the MST nodes on the way to the record's key (and
//! to its neighbours), and the record block. If the record does not exist the same nodes prove
//! its absence and the answer is still 200, as the reference's. A consumer can check either
//! from the CAR alone: the commit's signature, then a lookup of the key from the commit's MST
//! root through the nodes given.

use axum::extract::State;
use axum::response::Response;
use pds_repo::BlockSource;
use pds_repo::mst::read as mst;
use pds_storage::{StorageError, Store};

use super::{Caller, Params, assert_repo_available, car_response};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getRecord";

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Response, ApiError> {
    let did = params.did("did")?;
    let collection = params.nsid("collection")?;
    let rkey = params.record_key("rkey")?;
    assert_repo_available(&state, &did, &caller).await?;
    let key = format!("{collection}/{rkey}");
    let lookup = did.clone();
    let car = state
        .db
        .read(move |store| record_proof_car(store, &lookup, &key))
        .await;
    match car {
        Ok(car) => Ok(car_response(car)),
        Err(StorageError::RepoNotFound(_)) => Err(ApiError::invalid_request(format!(
            "Could not find repo for DID: {did}"
        ))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The CAR proving `key`'s value (or absence) in `did`'s repo at its head, read from one
/// snapshot.
fn record_proof_car(store: &Store, did: &str, key: &str) -> Result<Vec<u8>, StorageError> {
    let tx = store.connection().unchecked_transaction()?;
    let head = store
        .head(did)?
        .ok_or_else(|| StorageError::RepoNotFound(did.to_owned()))?;
    let blocks = store.blocks(did);
    let mut cids = vec![head.commit_cid];
    cids.extend(mst::covering_proof(&blocks, &head.data, key)?);
    cids.extend(mst::get(&blocks, &head.data, key)?);
    let mut car_blocks = Vec::with_capacity(cids.len());
    for cid in cids {
        let bytes = blocks.require_block(&cid)?.into_owned();
        car_blocks.push((cid, bytes));
    }
    tx.finish()?;
    Ok(pds_ipld::car::encode_car(&[head.commit_cid], car_blocks)
        .map_err(pds_repo::RepoError::from)?)
}
