//! The server's side of the firehose (`com.atproto.sync.subscribeRepos`): where events are
//! appended, and the running parts that serve and keep the log.
//!
//! `pds-event-stream` owns the events, frames, log and fan-out; this module decides *when*:
//! every place that changes what the network must know calls one of the `sequence_*` functions
//! inside its own write request, so the event is committed with the change or not at all:
//! - record writes (`records::write`): `#commit`;
//! - a new account (`accounts::service`): `#identity`, `#account` (active), `#commit` (the empty
//!   repo) and `#sync`, as the reference;
//! - a handle change (`identity_service`): `#identity`;
//! - deactivation (`#account` deactivated) and activation (`#identity`, `#account` active,
//!   `#sync`) by the account's owner (`accounts::status`);
//! - an account deletion: `#account` (deleted), after which the account's earlier events are
//!   dropped from the log, as the reference does.
//!
//! Running parts, started with the server: the [`Hub`] (woken after every database commit) and
//! the trimming of events older than the backfill window. The crawl requests to relays
//! (`crawlers.rs`) watch the hub for new events.

use std::time::{Duration, SystemTime};

use pds_event_stream::{AccountStatus, EventBody, Hub, HubConfig, Retention, Seq, log};
use pds_ipld::Cid;
use pds_repo::CommitData;
use pds_storage::{Database, StorageError};
use rusqlite::Connection;

use crate::config::SyncConfig;

/// How often events past the backfill window are trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// The live firehose: what subscribeRepos subscribes to.
#[derive(Clone)]
pub struct Firehose {
    pub hub: Hub,
}

impl Firehose {
    /// Creates the log's tables, starts the hub (woken after every commit) and the trimming
    /// task.
    pub async fn start(db: &Database, config: &SyncConfig) -> Result<Firehose, StorageError> {
        db.write(|w| log::migrate(w.tx.connection()).map_err(storage_error))
            .await?;
        let hub = Hub::start(db.clone(), HubConfig::default())
            .await
            .map_err(storage_error)?;
        let notify = hub.clone();
        db.on_commit(move || notify.notify_committed());
        spawn_trimming(
            db.clone(),
            Retention::from_backfill_limit_ms(config.repo_backfill_limit_ms),
        );
        Ok(Firehose { hub })
    }
}

/// A `#commit` for a commit just persisted in this transaction; `blobs`: the blobs its records
/// newly reference.
pub fn sequence_commit(
    conn: &Connection,
    data: &CommitData,
    blobs: &[Cid],
) -> Result<Seq, StorageError> {
    let event = EventBody::for_commit(data, blobs).map_err(storage_error)?;
    append(conn, &event)
}

/// A `#sync`: the repo's current commit, for consumers to (re)start from (a new or imported
/// repo).
pub fn sequence_sync(conn: &Connection, data: &CommitData) -> Result<Seq, StorageError> {
    let event = pds_event_stream::SyncEvent::from_commit_data(data).map_err(storage_error)?;
    append(conn, &EventBody::Sync(event))
}

/// A `#sync` for the repo's current commit block (an account activated with its repo as it is).
pub fn sequence_sync_block(
    conn: &Connection,
    commit_cid: &Cid,
    commit_block: &[u8],
) -> Result<Seq, StorageError> {
    let event = pds_event_stream::SyncEvent::from_commit_block(commit_cid, commit_block)
        .map_err(storage_error)?;
    append(conn, &EventBody::Sync(event))
}

/// An `#identity`: the account's handle or DID document may have changed; consumers re-resolve.
pub fn sequence_identity(
    conn: &Connection,
    did: &str,
    handle: Option<&str>,
) -> Result<Seq, StorageError> {
    let event = pds_event_stream::IdentityEvent::new(did, handle).map_err(storage_error)?;
    append(conn, &EventBody::Identity(event))
}

/// An `#account`: the account's hosting status here.
pub fn sequence_account(
    conn: &Connection,
    did: &str,
    active: bool,
    status: Option<AccountStatus>,
) -> Result<Seq, StorageError> {
    let event = pds_event_stream::AccountEvent::new(did, active, status).map_err(storage_error)?;
    append(conn, &EventBody::Account(event))
}

/// The account is gone: an `#account` (deleted) event, then its earlier events leave the log
/// (nothing of a deleted account should be replayed), as the reference does.
pub fn sequence_account_deleted(conn: &Connection, did: &str) -> Result<Seq, StorageError> {
    let seq = sequence_account(conn, did, false, Some(AccountStatus::Deleted))?;
    log::delete_for_account(conn, did, seq).map_err(storage_error)?;
    Ok(seq)
}

fn append(conn: &Connection, event: &EventBody) -> Result<Seq, StorageError> {
    log::append(conn, event, SystemTime::now()).map_err(storage_error)
}

/// Event-stream failures inside a write are the database's (or a bug): they fail the request.
fn storage_error(e: pds_event_stream::Error) -> StorageError {
    match e {
        pds_event_stream::Error::Sqlite(e) => StorageError::Sqlite(e),
        pds_event_stream::Error::Storage(e) => e,
        other => StorageError::Corrupt(format!("firehose event: {other}")),
    }
}

/// Deletes events older than the window, a batch per write request so writers are never held
/// up for long.
fn spawn_trimming(db: Database, retention: Retention) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TRIM_EVERY);
        loop {
            every.tick().await;
            loop {
                let trimmed = db
                    .write(move |w| {
                        retention
                            .trim_batch(w.tx.connection(), SystemTime::now())
                            .map_err(storage_error)
                    })
                    .await;
                match trimmed {
                    Ok(0) => break,
                    Ok(n) => tracing::debug!(trimmed = n, "old firehose events deleted"),
                    Err(e) => {
                        tracing::warn!(error = %e, "trimming the firehose log failed; retrying later");
                        break;
                    }
                }
            }
        }
    });
}
