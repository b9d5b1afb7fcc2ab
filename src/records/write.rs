//! The write methods: createRecord, putRecord, deleteRecord, applyWrites.
//!
//! Each goes: authorize (the `repo` must be the caller's own account, which must be active;
//! the reference's errors in the reference's order), prepare the records (off the writer
//! thread), then one commit in the next group commit of the database writer. Inside that
//! commit, as of that transaction: the account is checked again and its signing key read,
//! `swapCommit` is compared with the head, `swapRecord` with the record, and putRecord and
//! deleteRecord decide what they do. The answer goes back once the commit is durable.
//!
//! As in the reference: deleting a record that does not exist, or putting a record identical to
//! the stored one, succeeds without a commit (and then without checking the swaps, as nothing
//! is written); a `swapRecord` of `null` on putRecord means "must not exist yet".

use pds_ipld::{BlobRef, Cid};
use pds_repo::{CommitData, RepoError, Write, WriteAction};
use pds_storage::{StorageError, Writer};
use pds_syntax::{AtIdentifier, AtUri, Did};

use super::input::{ApplyWrites, CreateRecord, DeleteRecord, PutRecord, WriteOp};
use super::prepare::{self, PreparedRecord};
use super::{RecordError, ValidationStatus};
use crate::accounts;
use crate::blobs::{self, RecordBlobs};
use crate::state::AppContext;

/// Most writes one applyWrites may carry (as the reference).
pub const MAX_WRITES: usize = 200;

/// The commit a write made: `commit` in the outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMeta {
    pub cid: Cid,
    pub rev: String,
}

/// A created or updated record.
#[derive(Debug, Clone)]
pub struct WrittenRecord {
    pub uri: AtUri,
    pub cid: Cid,
    /// `None` when nothing needed writing (putRecord of the record as it is).
    pub commit: Option<CommitMeta>,
    pub status: Option<ValidationStatus>,
}

/// What one write of applyWrites did, in input order.
#[derive(Debug, Clone)]
pub enum WriteResult {
    Create {
        uri: AtUri,
        cid: Cid,
        status: Option<ValidationStatus>,
    },
    Update {
        uri: AtUri,
        cid: Cid,
        status: Option<ValidationStatus>,
    },
    Delete,
}

/// createRecord.
pub async fn create_record(
    ctx: &AppContext,
    caller: &str,
    input: CreateRecord,
) -> Result<WrittenRecord, RecordError> {
    let did = authorize(ctx, &input.repo, caller).await?;
    let record = prepare::record(
        &input.collection,
        input.rkey,
        input.record,
        input.validate,
        &ctx.clock,
    )?;
    let uri = AtUri::for_record(&did, &record.collection, &record.rkey);
    let (cid, status) = (record.cid, record.status);
    let write = Write::create(record.collection, record.rkey, record.bytes);
    let commit = commit(ctx, did, input.swap_commit, vec![write], vec![record.blobs]).await?;
    Ok(WrittenRecord {
        uri,
        cid,
        commit: Some(commit),
        status,
    })
}

/// putRecord: creates the record, or updates it if it exists.
pub async fn put_record(
    ctx: &AppContext,
    caller: &str,
    input: PutRecord,
) -> Result<WrittenRecord, RecordError> {
    let did = authorize(ctx, &input.repo, caller).await?;
    let record = prepare::record(
        &input.collection,
        Some(input.rkey),
        input.record,
        input.validate,
        &ctx.clock,
    )?;
    let uri = AtUri::for_record(&did, &record.collection, &record.rkey);
    let (cid, status) = (record.cid, record.status);
    let (swap_commit, swap_record) = (input.swap_commit, input.swap_record);
    let PreparedRecord {
        collection,
        rkey,
        bytes,
        blobs,
        ..
    } = record;
    let commit = in_commit(ctx, did, move |w, did, key, clock| {
        let current =
            w.tx.record_cid(did.as_str(), collection.as_str(), rkey.as_str())?;
        if current == Some(cid) {
            return Ok(None);
        }
        check_swap_commit(w, did, swap_commit)?;
        match (current, swap_record) {
            (_, None) => {}
            (None, Some(None)) => {}
            (Some(at), Some(Some(want))) if at == want => {}
            (current, Some(_)) => return Err(record_was_at(current)),
        }
        let write = match current {
            Some(_) => Write::update(collection, rkey, bytes),
            None => Write::create(collection, rkey, bytes),
        };
        let action = write.action;
        apply(w, did, key, clock, &[write], vec![blobs]).map(|commit| Some((commit, action)))
    })
    .await?;
    let commit = commit.map(|(commit, action)| {
        count_commit(ctx, [action]);
        commit
    });
    Ok(WrittenRecord {
        uri,
        cid,
        commit,
        status,
    })
}

/// deleteRecord. `None`: there was no such record, nothing was written.
pub async fn delete_record(
    ctx: &AppContext,
    caller: &str,
    input: DeleteRecord,
) -> Result<Option<CommitMeta>, RecordError> {
    let did = authorize(ctx, &input.repo, caller).await?;
    let DeleteRecord {
        collection,
        rkey,
        swap_commit,
        swap_record,
        ..
    } = input;
    let commit = in_commit(ctx, did, move |w, did, key, clock| {
        let current =
            w.tx.record_cid(did.as_str(), collection.as_str(), rkey.as_str())?;
        if current.is_none() {
            return Ok(None);
        }
        check_swap_commit(w, did, swap_commit)?;
        if let Some(want) = swap_record
            && current != Some(want)
        {
            return Err(record_was_at(current));
        }
        let write = Write::delete(collection, rkey);
        apply(w, did, key, clock, &[write], vec![Vec::new()]).map(Some)
    })
    .await?;
    if commit.is_some() {
        count_commit(ctx, [WriteAction::Delete]);
    }
    Ok(commit)
}

/// applyWrites: all the writes in one commit, or none of them.
pub async fn apply_writes(
    ctx: &AppContext,
    caller: &str,
    input: ApplyWrites,
) -> Result<(CommitMeta, Vec<WriteResult>), RecordError> {
    let did = authorize(ctx, &input.repo, caller).await?;
    if input.writes.len() > MAX_WRITES {
        return Err(RecordError::InvalidRequest(format!(
            "Too many writes. Max: {MAX_WRITES}"
        )));
    }
    let mut writes = Vec::with_capacity(input.writes.len());
    let mut blobs = Vec::with_capacity(input.writes.len());
    let mut results = Vec::with_capacity(input.writes.len());
    for op in input.writes {
        match op {
            WriteOp::Create {
                collection,
                rkey,
                value,
            } => {
                let r = prepare::record(&collection, rkey, value, input.validate, &ctx.clock)?;
                results.push(WriteResult::Create {
                    uri: AtUri::for_record(&did, &r.collection, &r.rkey),
                    cid: r.cid,
                    status: r.status,
                });
                writes.push(Write::create(r.collection, r.rkey, r.bytes));
                blobs.push(r.blobs);
            }
            WriteOp::Update {
                collection,
                rkey,
                value,
            } => {
                let r =
                    prepare::record(&collection, Some(rkey), value, input.validate, &ctx.clock)?;
                results.push(WriteResult::Update {
                    uri: AtUri::for_record(&did, &r.collection, &r.rkey),
                    cid: r.cid,
                    status: r.status,
                });
                writes.push(Write::update(r.collection, r.rkey, r.bytes));
                blobs.push(r.blobs);
            }
            WriteOp::Delete { collection, rkey } => {
                results.push(WriteResult::Delete);
                writes.push(Write::delete(collection, rkey));
                blobs.push(Vec::new());
            }
        }
    }
    let commit = commit(ctx, did, input.swap_commit, writes, blobs).await?;
    Ok((commit, results))
}

/// The DID of `repo` if the caller may write to it: the reference's `findAccount` (403
/// `AccountNotFound`; 401 `AccountTakedown`, `AccountDeactivated`), then ownership (401).
async fn authorize(
    ctx: &AppContext,
    repo: &AtIdentifier,
    caller: &str,
) -> Result<Did, RecordError> {
    let repo = repo.clone();
    let account = ctx
        .db
        .read(move |store| resolve(store.connection(), &repo).map_err(RecordError::from))
        .await?
        .ok_or(RecordError::AccountNotFound)?;
    if account.takendown {
        return Err(RecordError::AccountTakedown);
    }
    if account.deactivated {
        return Err(RecordError::AccountDeactivated);
    }
    if account.did != caller {
        return Err(RecordError::NotRepoOwner);
    }
    Did::new(&account.did)
        .map_err(|e| RecordError::Internal(format!("stored DID {}: {e}", account.did)))
}

/// The account a DID or handle names, whatever its status.
pub(super) fn resolve(
    conn: &rusqlite::Connection,
    repo: &AtIdentifier,
) -> Result<Option<accounts::Account>, accounts::AccountError> {
    match repo {
        AtIdentifier::Did(did) => accounts::by_did(conn, did.as_str()),
        AtIdentifier::Handle(handle) => accounts::by_handle(conn, handle.as_str()),
    }
}

/// One commit of `writes` (`blobs[i]`: the blobs `writes[i]` references), after checking
/// `swap_commit`.
async fn commit(
    ctx: &AppContext,
    did: Did,
    swap_commit: Option<Cid>,
    writes: Vec<Write>,
    blobs: Vec<Vec<BlobRef>>,
) -> Result<CommitMeta, RecordError> {
    let actions: Vec<WriteAction> = writes.iter().map(|w| w.action).collect();
    let commit = in_commit(ctx, did, move |w, did, key, clock| {
        check_swap_commit(w, did, swap_commit)?;
        apply(w, did, key, clock, &writes, blobs)
    })
    .await?;
    count_commit(ctx, actions);
    Ok(commit)
}

/// Counts a durable commit of these writes for `/metrics`.
fn count_commit(ctx: &AppContext, actions: impl IntoIterator<Item = WriteAction>) {
    let (mut created, mut updated, mut deleted) = (0, 0, 0);
    for action in actions {
        match action {
            WriteAction::Create => created += 1,
            WriteAction::Update => updated += 1,
            WriteAction::Delete => deleted += 1,
        }
    }
    ctx.metrics.commit(created, updated, deleted);
}

/// Runs `work` on the database writer, in the next group commit, with the account's signing
/// key; answers once that commit is durable. A failure rolls back this request's changes only.
async fn in_commit<T, F>(ctx: &AppContext, did: Did, work: F) -> Result<T, RecordError>
where
    T: Send + 'static,
    F: FnOnce(
            &mut Writer<'_, '_>,
            &Did,
            &pds_crypto::Keypair,
            &pds_syntax::TidClock,
        ) -> Result<T, RecordError>
        + Send
        + 'static,
{
    let keys = ctx.signing_keys.clone();
    let clock = ctx.clock.clone();
    ctx.db
        .write(move |w| {
            let key = keys.for_write(w.tx.connection(), did.as_str())?;
            work(w, &did, &key, &clock)
        })
        .await
}

fn check_swap_commit(
    w: &Writer<'_, '_>,
    did: &Did,
    swap_commit: Option<Cid>,
) -> Result<(), RecordError> {
    let Some(want) = swap_commit else {
        return Ok(());
    };
    let head =
        w.tx.head(did.as_str())?
            .ok_or_else(|| no_repo(did.as_str()))?;
    if head.commit_cid != want {
        return Err(RecordError::InvalidSwap(format!(
            "Commit was at {}",
            head.commit_cid
        )));
    }
    Ok(())
}

/// The commit itself: the repo's new signed commit, then the blob references of its records
/// (each blob a created or updated record references must have been uploaded by the account,
/// else 400 `BlobNotFound` and the whole commit is undone). `blob_refs[i]` belongs to
/// `writes[i]`.
fn apply(
    w: &mut Writer<'_, '_>,
    did: &Did,
    key: &pds_crypto::Keypair,
    clock: &pds_syntax::TidClock,
    writes: &[Write],
    blob_refs: Vec<Vec<BlobRef>>,
) -> Result<CommitMeta, RecordError> {
    let data: CommitData =
        w.tx.apply_writes_cached(w.repos, did.as_str(), key, clock, writes)
            .map_err(|e| match e {
                // A create of a record that exists, an update or delete of one that does not, a
                // path written twice: the client's mistake, not the server's.
                StorageError::Repo(RepoError::WriteConflict(m)) => RecordError::InvalidRequest(m),
                StorageError::Repo(RepoError::InvalidPath(p)) => {
                    RecordError::InvalidRequest(format!("Invalid record path {p:?}"))
                }
                StorageError::RepoNotFound(_) => no_repo(did.as_str()),
                other => RecordError::Storage(other),
            })?;
    let records: Vec<RecordBlobs<'_>> = writes
        .iter()
        .zip(blob_refs)
        .map(|(write, blobs)| RecordBlobs {
            action: write.action,
            collection: write.collection.as_str(),
            rkey: write.rkey.as_str(),
            blobs,
        })
        .collect();
    let new_blobs = blobs::link_records(w.tx.connection(), did.as_str(), &data.rev, &records)?;
    crate::firehose::sequence_commit(w.tx.connection(), &data, &new_blobs)?;
    Ok(CommitMeta {
        cid: data.commit_cid,
        rev: data.rev,
    })
}

fn no_repo(did: &str) -> RecordError {
    RecordError::InvalidRequest(format!("No repo root found for {did}"))
}

fn record_was_at(current: Option<Cid>) -> RecordError {
    RecordError::InvalidSwap(match current {
        Some(cid) => format!("Record was at {cid}"),
        None => "Record was at null".to_owned(),
    })
}
