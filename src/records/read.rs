//! The read methods: getRecord, listRecords, describeRepo. Public: no authentication.
//!
//! As in the reference: records of deactivated or taken-down accounts are not served (such a
//! repo reads as unknown); getRecord with a `cid` other than the current one is
//! `RecordNotFound`, and so is a record the operator took down (`crate::moderation`), which
//! listRecords leaves out; listRecords goes newest first (record keys descending) unless `reverse`,
//! and its cursor is the last record key returned, present whenever a page is not empty.

use pds_ipld::{Cid, Ipld};
use pds_repo::BlockSource;
use pds_storage::Store;
use pds_syntax::{AtIdentifier, Did, Handle, Nsid, RecordKey};

use super::write::resolve;
use super::{RecordError, RecordValue};
use crate::state::AppContext;

/// One record as the read methods return it.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub uri: String,
    pub cid: Cid,
    pub value: RecordValue,
}

/// A page of listRecords.
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub records: Vec<RecordView>,
    pub cursor: Option<String>,
}

/// describeRepo's answer.
#[derive(Debug, Clone)]
pub struct RepoDescription {
    pub handle: String,
    pub did: String,
    /// The DID document, as its directory or host serves it.
    pub did_doc: serde_json::Value,
    pub collections: Vec<String>,
    pub handle_is_correct: bool,
}

/// getRecord. `cid`: the version asked for (the current one must be it).
pub async fn get_record(
    ctx: &AppContext,
    repo: AtIdentifier,
    collection: Nsid,
    rkey: RecordKey,
    cid: Option<Cid>,
) -> Result<RecordView, RecordError> {
    ctx.db
        .read(move |store| {
            let did = match resolve(store.connection(), &repo)? {
                Some(account) if account.active() => account.did,
                // The reference would ask its AppView here when one is configured.
                _ => {
                    return Err(RecordError::InvalidRequest(
                        "Could not locate record".into(),
                    ));
                }
            };
            let uri = format!("at://{did}/{collection}/{rkey}");
            let taken_down = crate::moderation::record_takedown(store.connection(), &uri)?;
            match store.get_record(&did, collection.as_str(), rkey.as_str())? {
                Some((current, bytes))
                    if cid.is_none_or(|want| want == current) && taken_down.is_none() =>
                {
                    Ok(RecordView {
                        value: decode(&uri, &bytes)?,
                        uri,
                        cid: current,
                    })
                }
                _ => Err(RecordError::RecordNotFound(format!(
                    "Could not locate record: {uri}"
                ))),
            }
        })
        .await
}

/// listRecords. `limit` was checked by the lexicon (1 to 100).
pub async fn list_records(
    ctx: &AppContext,
    repo: AtIdentifier,
    collection: Nsid,
    limit: usize,
    cursor: Option<String>,
    reverse: bool,
) -> Result<RecordPage, RecordError> {
    ctx.db
        .read(move |store| {
            let did = match resolve(store.connection(), &repo)? {
                Some(account) if account.active() => account.did,
                _ => {
                    return Err(RecordError::InvalidRequest(format!(
                        "Could not find repo: {}",
                        repo.as_str()
                    )));
                }
            };
            // One snapshot for the listing and the record blocks it points to.
            let snapshot = store.connection().unchecked_transaction()?;
            // Newest first by default: the store's `reverse` is descending order.
            let entries = store.list_records(
                &did,
                collection.as_str(),
                cursor.as_deref(),
                limit,
                !reverse,
            )?;
            let blocks = store.blocks(&did);
            let mut records = Vec::with_capacity(entries.len());
            // The cursor follows the store's listing, taken-down records included, so a page
            // shortened by a takedown does not end the listing.
            let cursor = entries.last().map(|entry| entry.rkey.clone());
            for entry in entries {
                let uri = format!("at://{did}/{}/{}", entry.collection, entry.rkey);
                if crate::moderation::record_takedown(store.connection(), &uri)?.is_some() {
                    continue;
                }
                let bytes = blocks
                    .require_block(&entry.cid)
                    .map_err(|e| RecordError::Internal(format!("{uri}: {e}")))?;
                records.push(RecordView {
                    value: decode(&uri, &bytes)?,
                    uri,
                    cid: entry.cid,
                });
            }
            snapshot.finish()?;
            Ok(RecordPage { records, cursor })
        })
        .await
}

/// describeRepo.
pub async fn describe_repo(
    ctx: &AppContext,
    repo: AtIdentifier,
) -> Result<RepoDescription, RecordError> {
    let (account, collections) = ctx
        .db
        .read(move |store: &Store| {
            let name = repo.as_str();
            let account = resolve(store.connection(), &repo)?.ok_or_else(|| {
                RecordError::RepoNotFound(format!("Could not find repo for DID: {name}"))
            })?;
            if account.takendown {
                return Err(RecordError::RepoTakendown(format!(
                    "Repo has been takendown: {name}"
                )));
            }
            if account.deactivated {
                return Err(RecordError::RepoDeactivated(format!(
                    "Repo has been deactivated: {name}"
                )));
            }
            let collections = store.collections(&account.did)?;
            Ok((account, collections))
        })
        .await?;

    // As the reference: the document through the (cached) resolver, and the handle counts as
    // correct when the document claims it back.
    let did = Did::new(&account.did)
        .map_err(|e| RecordError::Internal(format!("stored DID {}: {e}", account.did)))?;
    let doc = ctx
        .id_resolver
        .resolve_did(&did)
        .await
        .map_err(|e| RecordError::InvalidRequest(format!("Could not resolve DID: {e}")))?;
    let handle_is_correct =
        Handle::new(&account.handle).is_ok_and(|handle| doc.claims_handle(&handle));
    let did_doc = doc.raw().clone();
    Ok(RepoDescription {
        handle: account.handle,
        did: account.did,
        did_doc,
        collections,
        handle_is_correct,
    })
}

fn decode(uri: &str, bytes: &[u8]) -> Result<RecordValue, RecordError> {
    let value: Ipld = pds_ipld::from_cbor(bytes)
        .map_err(|e| RecordError::Internal(format!("stored record {uri}: {e}")))?;
    pds_ipld::validate_data_model(&value)
        .map_err(|e| RecordError::Internal(format!("stored record {uri}: {e}")))?;
    Ok(RecordValue(value))
}
