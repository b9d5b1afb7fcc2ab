//! Blobs: the media files (images, video) records point at.
//!
//! A blob's life, as in the reference PDS:
//!
//! 1. **Upload** (`com.atproto.repo.uploadBlob`, [`Blobs::upload`]): the bytes stream to a
//!    temporary file while being hashed and counted (never held in memory), then move under
//!    their CID (`raw` codec, sha2-256) in the account's directory. A `blob` row records the
//!    CID, media type, size and time. Until a record references it the blob is *temporary*:
//!    not served, not listed.
//! 2. **Linking** ([`link_commit`], called by the record-writing code inside the transaction of
//!    the commit): every blob a created or updated record references must have been uploaded by
//!    that account, else the write fails with 400 `BlobNotFound`; the references are kept in
//!    `record_blob`. Updating or deleting a record drops its references.
//! 3. **Serving** (`com.atproto.sync.getBlob`, `listBlobs`): referenced blobs only.
//! 4. **Garbage collection** ([`Blobs::gc`], every 10 minutes from a task [`Blobs::open`]
//!    starts): blobs no record references and uploaded more than the grace period ago (an hour)
//!    are deleted, row first, then file.
//!
//! The service and the tables are separate on purpose: the table functions take a
//! [`rusqlite::Connection`] so they run inside whatever transaction the caller holds; the
//! service ([`Blobs`]) owns the byte store ([`BlobStore`], a directory by default) and the
//! order of file and row changes.
//!
//! Files and rows change in an order that never loses a referenced blob: an upload's file is in
//! place before its row is written, and the collector deletes a row (re-checking, in the write
//! transaction, that nothing references it) before its file. A per-blob lock keeps an upload of
//! the same bytes from slipping between the collector's row delete and its file delete.

pub mod s3;
pub mod schema;
pub mod sniff;
pub mod store;

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, HttpBody};
use pds_ipld::{BlobRef, Cid, Ipld};
use pds_repo::{Write, WriteAction};
use pds_storage::{Database, StorageError};
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

pub use store::{BlobRead, BlobStore, BlobUpload, DiskBlobStore, StoredBlob};

use crate::api::ApiError;
use crate::config::Config;

/// How long an unreferenced blob is kept after its upload (the reference keeps temporary blobs
/// about this long).
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(60 * 60);
/// How often the background collector runs.
pub const GC_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// The collector also looks for files no row knows about (a crash between a file change and its
/// row change) at start-up and then this often.
pub const ORPHAN_SWEEP_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Rows the collector deletes per write transaction.
const GC_BATCH: usize = 256;
/// Locks striping `(did, cid)`: uploads of different blobs rarely wait for each other.
const LOCK_STRIPES: usize = 64;

/// What can go wrong with blobs; [`ApiError`] has the XRPC answer for each.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A record references a blob the account has not uploaded (or that was deleted).
    #[error("Could not find blob: {0}")]
    NotFound(String),
    /// A record states another media type than the stored blob has.
    #[error("Referenced Mimetype does not match stored blob. Expected: {expected}, Got: {got}")]
    MimeMismatch { expected: String, got: String },
    /// The upload is over the configured limit.
    #[error("request entity too large")]
    TooLarge,
    /// Storing the upload would take the account past its storage quota.
    #[error(
        "This account stores {used} bytes of blobs; this upload{} would pass its quota of {quota} bytes: delete posts with media to make room",
        if *size > 0 { format!(" of {size} bytes") } else { String::new() }
    )]
    QuotaExceeded { used: u64, size: u64, quota: u64 },
    #[error("Blob has been takendown, cannot re-upload")]
    TakenDown,
    /// The request body could not be read (the client went away, or sent a broken body).
    #[error("Could not read the request body: {0}")]
    Body(String),
    /// A record handed to the link functions is not valid DAG-CBOR.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        use axum::http::StatusCode;
        let bad = |name: &'static str| ApiError::new(StatusCode::BAD_REQUEST, name, e.to_string());
        match &e {
            BlobError::NotFound(_) => bad("BlobNotFound"),
            BlobError::MimeMismatch { .. } => bad("InvalidMimeType"),
            BlobError::TakenDown | BlobError::Body(_) => bad("InvalidRequest"),
            BlobError::TooLarge => ApiError::payload_too_large(e.to_string()),
            BlobError::QuotaExceeded { .. } => bad("StorageQuotaExceeded"),
            BlobError::InvalidRecord(_)
            | BlobError::Io(_)
            | BlobError::Db(_)
            | BlobError::Storage(_) => ApiError::internal(e),
        }
    }
}

/// The blob service: the byte store, the database, the upload limit. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn BlobStore>,
    db: Database,
    upload_limit: u64,
    /// The most blob bytes one account may store.
    quota: Option<u64>,
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Unix milliseconds now; replaceable so tests can move time.
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs")
            .field("upload_limit", &self.inner.upload_limit)
            .finish_non_exhaustive()
    }
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What one collection pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted (row and file).
    pub deleted: usize,
    /// Files deleted that no row knew about.
    pub orphans: usize,
}

impl Blobs {
    /// Opens the disk store at `storage.blobstore_disk_location`, creates or upgrades the blob
    /// tables, and starts the background collector (every [`GC_INTERVAL`], grace
    /// [`DEFAULT_GC_GRACE`]) on the current tokio runtime. It stops when the service is dropped.
    pub async fn open(config: &Config, db: Database) -> Result<Blobs, StorageError> {
        let store = open_store(config).await?;
        let blobs = Blobs::new(store, db, config.limits.blob_upload_limit)
            .await?
            .with_quota(config.limits.account_blob_quota);
        blobs.spawn_collector(GC_INTERVAL, DEFAULT_GC_GRACE);
        Ok(blobs)
    }

    /// The service over any store; creates or upgrades the tables. No collector is started.
    pub async fn new(
        store: Arc<dyn BlobStore>,
        db: Database,
        upload_limit: u64,
    ) -> Result<Blobs, StorageError> {
        db.write(|w| {
            schema::migrate(w.tx.connection())?;
            Ok::<_, StorageError>(())
        })
        .await?;
        Ok(Blobs {
            inner: Arc::new(Inner {
                store,
                db,
                upload_limit,
                quota: None,
                locks: (0..LOCK_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                clock: Box::new(now_ms),
            }),
        })
    }

    /// Replaces the clock (unix milliseconds). For tests; call before sharing the service.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Blobs {
        Arc::get_mut(&mut self.inner)
            .expect("with_clock before the service is shared")
            .clock = Box::new(clock);
        self
    }

    pub fn store(&self) -> &dyn BlobStore {
        self.inner.store.as_ref()
    }

    /// The same service with a per-account storage quota (`None`: none). Call before it is
    /// shared.
    pub fn with_quota(mut self, quota: Option<u64>) -> Blobs {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.quota = quota;
        }
        self
    }

    pub fn upload_limit(&self) -> u64 {
        self.inner.upload_limit
    }

    fn lock_for(&self, did: &str, cid: &str) -> usize {
        let mut h = std::hash::DefaultHasher::new();
        (did, cid).hash(&mut h);
        (h.finish() % LOCK_STRIPES as u64) as usize
    }

    /// Stores an upload for `did`: streams `body` to the store while hashing and counting it,
    /// refuses it past the upload limit ([`BlobError::TooLarge`]; nothing is kept), then records
    /// it as a temporary blob. `declared` is the client's media type; the content's own type
    /// wins when recognised (as in the reference). Returns the blob reference for the client.
    ///
    /// Uploading bytes already stored is fine: the blob is the same, and an unreferenced one
    /// gets a new grace period.
    pub async fn upload(
        &self,
        did: &str,
        declared: Option<&str>,
        mut body: Body,
    ) -> Result<BlobRef, BlobError> {
        let limit = self.inner.upload_limit;
        // An account at its quota already is refused before any byte is staged.
        if let Some(quota) = self.inner.quota {
            let owned = did.to_owned();
            let used = self
                .inner
                .db
                .read(move |store| {
                    let used: i64 = store
                        .connection()
                        .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM blob WHERE did = ?1")?
                        .query_row([&owned], |r| r.get(0))?;
                    Ok::<_, BlobError>(used.max(0) as u64)
                })
                .await?;
            if used >= quota {
                return Err(BlobError::QuotaExceeded {
                    used,
                    size: 0,
                    quota,
                });
            }
        }
        let mut upload = self.inner.store.begin().await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
        loop {
            let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
            let Some(frame) = frame.await else { break };
            let frame = frame.map_err(|e| {
                // The body limit below us says so in its error; anything else is transport.
                if is_length_limit(&e) {
                    BlobError::TooLarge
                } else {
                    BlobError::Body(e.to_string())
                }
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            size += data.len() as u64;
            if size > limit {
                return Err(BlobError::TooLarge);
            }
            hasher.update(&data);
            if head.len() < sniff::SNIFF_LEN {
                let take = (sniff::SNIFF_LEN - head.len()).min(data.len());
                head.extend_from_slice(&data[..take]);
            }
            upload.write(&data).await?;
        }
        let cid = raw_cid(&hasher.finalize().into());
        let mime = sniff::choose(declared, sniff::sniff(&head));
        let cid_str = cid.to_string();

        // Refuse a taken-down blob before it replaces anything, and an upload past the
        // account's quota before its file is kept (concurrent uploads of one account may pass
        // the quota by what they upload at once).
        {
            let (did, cid_str) = (did.to_owned(), cid_str.clone());
            let (taken_down, used) = self
                .inner
                .db
                .read(move |store| {
                    let conn = store.connection();
                    let taken_down = conn
                        .prepare_cached(
                            "SELECT takedown_ref IS NOT NULL FROM blob WHERE did = ?1 AND cid = ?2",
                        )?
                        .query_row((&did, &cid_str), |r| r.get::<_, bool>(0))
                        .optional()?
                        .unwrap_or(false);
                    let used: i64 = conn
                        .prepare_cached(
                            "SELECT COALESCE(SUM(size), 0) FROM blob WHERE did = ?1 AND cid != ?2",
                        )?
                        .query_row((&did, &cid_str), |r| r.get(0))?;
                    Ok::<_, BlobError>((taken_down, used.max(0) as u64))
                })
                .await?;
            if taken_down {
                return Err(BlobError::TakenDown);
            }
            if let Some(quota) = self.inner.quota
                && used + size > quota
            {
                return Err(BlobError::QuotaExceeded { used, size, quota });
            }
        }

        let _guard = self.inner.locks[self.lock_for(did, &cid_str)].lock().await;
        // File first, then row: a row always has its file.
        upload.commit(did, &cid).await?;
        let now = (self.inner.clock)();
        let (did, stored_cid) = (did.to_owned(), cid_str);
        let mime = self
            .inner
            .db
            .write(move |w| record_upload(w.tx.connection(), &did, &stored_cid, &mime, size, now))
            .await?;
        Ok(BlobRef::new(cid, mime, size))
    }

    /// A referenced blob's media type and size, if `did` has it and it may be served.
    pub async fn servable(&self, did: &str, cid: &Cid) -> Result<Option<(String, u64)>, BlobError> {
        let (did, cid) = (did.to_owned(), cid.to_string());
        self.inner
            .db
            .read(move |store| {
                Ok(store
                    .connection()
                    .prepare_cached(
                        "SELECT mime_type, size FROM blob
                         WHERE did = ?1 AND cid = ?2 AND linked = 1 AND takedown_ref IS NULL",
                    )?
                    .query_row((&did, &cid), |r| {
                        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
                    })
                    .optional()?)
            })
            .await
    }

    /// One collection pass with the real clock: see [`Blobs::gc_at`].
    pub async fn gc(&self, grace: Duration) -> Result<GcReport, BlobError> {
        self.gc_at((self.inner.clock)(), grace).await
    }

    /// Deletes the blobs no record references that were uploaded before `now_ms - grace`: rows
    /// in batches (each re-checked inside the write transaction), then their files. Taken-down
    /// blobs are kept.
    pub async fn gc_at(&self, now_ms: i64, grace: Duration) -> Result<GcReport, BlobError> {
        let cutoff = now_ms.saturating_sub(grace.as_millis() as i64);
        let mut report = GcReport::default();
        loop {
            let candidates: Vec<(String, String)> = self
                .inner
                .db
                .read(move |store| {
                    let mut stmt = store.connection().prepare_cached(
                        "SELECT did, cid FROM blob
                         WHERE linked = 0 AND created_at < ?1 AND takedown_ref IS NULL
                         ORDER BY created_at LIMIT ?2",
                    )?;
                    let rows = stmt
                        .query_map((cutoff, GC_BATCH as i64), |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok::<_, BlobError>(rows)
                })
                .await?;
            if candidates.is_empty() {
                break;
            }
            let full_batch = candidates.len() == GC_BATCH;
            // Take the candidates' locks in one order, so two passes never deadlock.
            let mut stripes: Vec<usize> = candidates
                .iter()
                .map(|(did, cid)| self.lock_for(did, cid))
                .collect();
            stripes.sort_unstable();
            stripes.dedup();
            let mut guards = Vec::with_capacity(stripes.len());
            for i in stripes {
                guards.push(self.inner.locks[i].lock().await);
            }
            let deleted = self
                .inner
                .db
                .write(move |w| {
                    // Checked in the write transaction: a hold placed before it commits keeps
                    // these files, one placed after finds their rows gone already.
                    if deletions_held(w.tx.connection(), now_ms)? {
                        return Ok(Vec::new());
                    }
                    delete_unreferenced(w.tx.connection(), &candidates, cutoff)
                })
                .await?;
            for (did, cid) in &deleted {
                let Ok(cid) = pds_ipld::parse_cid(cid) else {
                    continue;
                };
                match self.inner.store.delete(did, &cid).await {
                    Ok(_) => report.deleted += 1,
                    Err(e) => {
                        tracing::warn!(%did, %cid, error = %e, "could not delete a blob file")
                    }
                }
            }
            drop(guards);
            if deleted.is_empty() || !full_batch {
                break;
            }
        }
        Ok(report)
    }

    /// Deletes stored files that have no `blob` row and were last written before
    /// `now_ms - grace` (left by a crash between a file change and its row change).
    pub async fn sweep_orphans_at(&self, now_ms: i64, grace: Duration) -> Result<usize, BlobError> {
        let cutoff = UNIX_EPOCH
            + Duration::from_millis(now_ms.saturating_sub(grace.as_millis() as i64).max(0) as u64);
        let mut removed = 0;
        if self.held(now_ms).await? {
            return Ok(0);
        }
        for did in self.inner.store.list_accounts().await? {
            let stored = self.inner.store.list(&did).await?;
            for blob in stored.into_iter().filter(|b| b.modified < cutoff) {
                let cid = blob.cid.to_string();
                let _guard = self.inner.locks[self.lock_for(&did, &cid)].lock().await;
                let (d, c) = (did.clone(), cid.clone());
                let known = self
                    .inner
                    .db
                    .read(move |store| {
                        let conn = store.connection();
                        let known = conn
                            .prepare_cached("SELECT 1 FROM blob WHERE did = ?1 AND cid = ?2")?
                            .query_row((&d, &c), |_| Ok(()))
                            .optional()?
                            .is_some();
                        // A hold placed during the sweep keeps the rest.
                        Ok::<_, BlobError>(known || deletions_held(conn, now_ms)?)
                    })
                    .await?;
                if !known && self.inner.store.delete(&did, &blob.cid).await? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Starts the background collector: a pass every `every`, an orphan sweep at start and
    /// every [`ORPHAN_SWEEP_INTERVAL`]. It ends when the service is dropped or the database
    /// closes.
    pub fn spawn_collector(&self, every: Duration, grace: Duration) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let sweep_every = (ORPHAN_SWEEP_INTERVAL.as_secs() / every.as_secs().max(1)).max(1);
            let mut n: u64 = 0;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let blobs = Blobs { inner };
                match blobs.gc(grace).await {
                    Ok(report) if report.deleted > 0 => {
                        tracing::info!(deleted = report.deleted, "deleted unreferenced blobs")
                    }
                    Ok(_) => {}
                    Err(BlobError::Storage(StorageError::Closed)) => return,
                    Err(e) => tracing::warn!(error = %e, "blob garbage collection failed"),
                }
                if n.is_multiple_of(sweep_every) {
                    match blobs.sweep_orphans_at((blobs.inner.clock)(), grace).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "deleted orphaned blob files"),
                        Err(BlobError::Storage(StorageError::Closed)) => return,
                        Err(e) => tracing::warn!(error = %e, "orphaned blob sweep failed"),
                    }
                }
                n += 1;
            }
        });
    }

    /// Deletes every stored file of `did`. Call after the transaction that ran
    /// [`delete_account_rows`] has committed. While deletions are held (a backup is copying),
    /// the files stay: without rows they are orphans, which the collector's sweep removes once
    /// the hold ends.
    pub async fn delete_account_files(&self, did: &str) -> Result<(), BlobError> {
        if self.held((self.inner.clock)()).await? {
            tracing::info!(%did, "blob deletions are held (a backup is running): the account's files go at a later sweep");
            return Ok(());
        }
        Ok(self.inner.store.delete_account(did).await?)
    }

    /// Whether a hold on deleting blob files is in force at `now_ms`.
    async fn held(&self, now_ms: i64) -> Result<bool, BlobError> {
        self.inner
            .db
            .read(move |store| deletions_held(store.connection(), now_ms))
            .await
    }
}

/// The blob store `config` names: an S3-compatible bucket when `PDS_BLOBSTORE_S3_BUCKET` is set
/// (uploads in progress under `<data directory>/blob-uploads`), else the disk directory.
pub async fn open_store(config: &Config) -> Result<Arc<dyn BlobStore>, StorageError> {
    open_store_as(config, false).await
}

/// The blob store `config` names, for a command reading beside a running server (`pds export`,
/// `pds backup`): nothing of the server's is cleared.
pub async fn open_store_for_reading(config: &Config) -> Result<Arc<dyn BlobStore>, StorageError> {
    open_store_as(config, true).await
}

async fn open_store_as(
    config: &Config,
    for_reading: bool,
) -> Result<Arc<dyn BlobStore>, StorageError> {
    let storage = config.storage.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<Arc<dyn BlobStore>> {
        Ok(match &storage.s3 {
            Some(s3) => Arc::new(s3::S3BlobStore::open(
                s3,
                &storage.data_directory.join("blob-uploads"),
                for_reading,
            )?),
            None if for_reading => Arc::new(DiskBlobStore::open_for_reading(
                &storage.blobstore_disk_location,
            )),
            None => Arc::new(DiskBlobStore::open(&storage.blobstore_disk_location)?),
        })
    })
    .await
    .map_err(|e| StorageError::Corrupt(format!("blob store: {e}")))?
    .map_err(|e| StorageError::Corrupt(format!("blob store: {e}")))
}

/// Whether a body error is the body-limit layer refusing more bytes.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.to_string().contains("length limit exceeded") {
            return true;
        }
        source = err.source();
    }
    false
}

/// The CID of a blob from the sha2-256 digest of its bytes: CIDv1, raw codec.
pub fn raw_cid(digest: &[u8; 32]) -> Cid {
    let mut bytes = Vec::with_capacity(36);
    bytes.extend_from_slice(&[0x01, 0x55, 0x12, 0x20]);
    bytes.extend_from_slice(digest);
    Cid::try_from(bytes.as_slice()).expect("a CIDv1 with a sha2-256 multihash")
}

// ---------------------------------------------------------------------------------------------
// Table functions: run inside the caller's transaction.
// ---------------------------------------------------------------------------------------------

/// Records an upload of `did`'s blob `cid` at `now` (unix ms). A blob already stored keeps its
/// media type if records reference it (they were written against it), and takes the new one
/// otherwise; either way its grace period restarts. Returns the media type now recorded.
pub fn record_upload(
    conn: &Connection,
    did: &str,
    cid: &str,
    mime: &str,
    size: u64,
    now: i64,
) -> Result<String, BlobError> {
    let size = i64::try_from(size).map_err(|_| BlobError::TooLarge)?;
    let mime = conn
        .prepare_cached(
            "INSERT INTO blob (did, cid, mime_type, size, created_at, linked)
             VALUES (?1, ?2, ?3, ?4, ?5,
                     EXISTS (SELECT 1 FROM record_blob WHERE did = ?1 AND blob_cid = ?2))
             ON CONFLICT (did, cid) DO UPDATE SET
                 created_at = excluded.created_at,
                 size = excluded.size,
                 mime_type = CASE WHEN blob.linked THEN blob.mime_type ELSE excluded.mime_type END
             RETURNING mime_type",
        )?
        .query_row((did, cid, mime, size, now), |r| r.get(0))?;
    Ok(mime)
}

/// Deletes those of `candidates` that are still unreferenced and older than `cutoff`; returns
/// the ones deleted. Any whose flag was stale is fixed.
fn delete_unreferenced(
    conn: &Connection,
    candidates: &[(String, String)],
    cutoff: i64,
) -> Result<Vec<(String, String)>, BlobError> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM blob WHERE did = ?1 AND cid = ?2 AND created_at < ?3
         AND takedown_ref IS NULL
         AND NOT EXISTS (SELECT 1 FROM record_blob WHERE did = ?1 AND blob_cid = ?2)",
    )?;
    let mut refresh = conn.prepare_cached(
        "UPDATE blob SET linked = EXISTS (SELECT 1 FROM record_blob WHERE did = ?1 AND blob_cid = ?2)
         WHERE did = ?1 AND cid = ?2",
    )?;
    let mut deleted = Vec::new();
    for (did, cid) in candidates {
        if delete.execute((did, cid, cutoff))? > 0 {
            deleted.push((did.clone(), cid.clone()));
        } else {
            refresh.execute((did, cid))?;
        }
    }
    Ok(deleted)
}

/// What one record write of a commit means for blobs.
#[derive(Debug, Clone)]
pub struct RecordBlobs<'a> {
    pub action: WriteAction,
    pub collection: &'a str,
    pub rkey: &'a str,
    /// The blobs the new record references ([`pds_ipld::collect_blob_refs`]); empty for deletes.
    pub blobs: Vec<BlobRef>,
}

impl<'a> RecordBlobs<'a> {
    /// From a write as handed to `StoreTx::apply_writes`: decodes its record to find the blobs.
    pub fn from_write(write: &'a Write) -> Result<RecordBlobs<'a>, BlobError> {
        let blobs = match (&write.action, &write.record) {
            (WriteAction::Delete, _) | (_, None) => Vec::new(),
            (_, Some(cbor)) => {
                let record: Ipld = pds_ipld::from_cbor(cbor)
                    .map_err(|e| BlobError::InvalidRecord(e.to_string()))?;
                pds_ipld::collect_blob_refs(&record)
            }
        };
        Ok(RecordBlobs {
            action: write.action,
            collection: write.collection.as_str(),
            rkey: write.rkey.as_str(),
            blobs,
        })
    }
}

/// Links the blobs of one commit's writes to their records. **The record-writing code calls
/// this inside the write transaction of every commit** (`createRecord`, `putRecord`,
/// `deleteRecord`, `applyWrites`), after `StoreTx::apply_writes` with the same `writes` and the
/// commit's `rev`:
///
/// ```ignore
/// let commit = w.tx.apply_writes_cached(w.repos, &did, &key, &clock, &writes)?;
/// let blob_cids = blobs::link_commit(w.tx.connection(), &did, &commit.rev, &writes)?;
/// ```
///
/// For each updated or deleted record its previous references are dropped; then every blob a
/// created or updated record references must be one `did` uploaded and still has (not taken
/// down), else the whole write fails with [`BlobError::NotFound`] (400 `BlobNotFound`, as the
/// reference), and a blob referenced for the first time must have the media type the record
/// states ([`BlobError::MimeMismatch`], 400 `InvalidMimeType`). Blobs a delete leaves
/// unreferenced are deleted later by the collector.
///
/// Returns the CIDs of the blobs the created and updated records reference, each once: the
/// `blobs` field of the commit's firehose event.
pub fn link_commit(
    conn: &Connection,
    did: &str,
    rev: &str,
    writes: &[Write],
) -> Result<Vec<Cid>, BlobError> {
    let records = writes
        .iter()
        .map(RecordBlobs::from_write)
        .collect::<Result<Vec<_>, _>>()?;
    link_records(conn, did, rev, &records)
}

/// [`link_commit`] for callers that already hold the records' blob references.
pub fn link_records(
    conn: &Connection,
    did: &str,
    rev: &str,
    records: &[RecordBlobs<'_>],
) -> Result<Vec<Cid>, BlobError> {
    let uri = |r: &RecordBlobs<'_>| format!("at://{did}/{}/{}", r.collection, r.rkey);
    let mut touched: Vec<String> = Vec::new();

    // References the old versions held go first, as in the reference.
    {
        let mut unlink = conn.prepare_cached(
            "DELETE FROM record_blob WHERE did = ?1 AND record_uri = ?2 RETURNING blob_cid",
        )?;
        for record in records {
            if matches!(record.action, WriteAction::Update | WriteAction::Delete) {
                let cids = unlink
                    .query_map((did, uri(record)), |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                touched.extend(cids);
            }
        }
    }

    let mut linked: Vec<Cid> = Vec::new();
    {
        let mut find = conn.prepare_cached(
            "SELECT mime_type, linked FROM blob WHERE did = ?1 AND cid = ?2 AND takedown_ref IS NULL",
        )?;
        let mut link = conn.prepare_cached(
            "INSERT INTO record_blob (did, blob_cid, record_uri, rev) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO UPDATE SET rev = excluded.rev",
        )?;
        let mut mark =
            conn.prepare_cached("UPDATE blob SET linked = 1 WHERE did = ?1 AND cid = ?2")?;
        for record in records {
            if !matches!(record.action, WriteAction::Create | WriteAction::Update) {
                continue;
            }
            let record_uri = uri(record);
            for blob in &record.blobs {
                let cid = blob.cid.to_string();
                let (mime, was_linked): (String, bool) = find
                    .query_row((did, &cid), |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .ok_or_else(|| BlobError::NotFound(cid.clone()))?;
                if !was_linked && mime != blob.mime_type {
                    return Err(BlobError::MimeMismatch {
                        expected: mime,
                        got: blob.mime_type.clone(),
                    });
                }
                link.execute((did, &cid, &record_uri, rev))?;
                mark.execute((did, &cid))?;
                if !linked.contains(&blob.cid) {
                    linked.push(blob.cid);
                }
            }
        }
    }

    refresh_linked(conn, did, touched.iter().map(String::as_str))?;
    Ok(linked)
}

/// Records the blob references of an imported repo (`com.atproto.repo.importRepo`), replacing
/// any `did` had: **the import code calls this in the transaction of `StoreTx::import_repo`**
/// with every record (`collection/rkey` path, DAG-CBOR bytes). Blobs need not exist: the ones
/// not uploaded yet are what `listMissingBlobs` reports until the client uploads them.
pub fn link_import<'a>(
    conn: &Connection,
    did: &str,
    rev: &str,
    records: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), BlobError> {
    conn.prepare_cached("DELETE FROM record_blob WHERE did = ?1")?
        .execute([did])?;
    {
        let mut link = conn.prepare_cached(
            "INSERT INTO record_blob (did, blob_cid, record_uri, rev) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?;
        for (path, cbor) in records {
            let record: Ipld =
                pds_ipld::from_cbor(cbor).map_err(|e| BlobError::InvalidRecord(e.to_string()))?;
            let record_uri = format!("at://{did}/{path}");
            for blob in pds_ipld::collect_blob_refs(&record) {
                link.execute((did, blob.cid.to_string(), &record_uri, rev))?;
            }
        }
    }
    conn.prepare_cached(
        "UPDATE blob SET linked = EXISTS (SELECT 1 FROM record_blob r WHERE r.did = blob.did AND r.blob_cid = blob.cid)
         WHERE did = ?1",
    )?
    .execute([did])?;
    Ok(())
}

/// Recomputes the `linked` flag of some of `did`'s blobs.
fn refresh_linked<'a>(
    conn: &Connection,
    did: &str,
    cids: impl IntoIterator<Item = &'a str>,
) -> Result<(), BlobError> {
    let mut refresh = conn.prepare_cached(
        "UPDATE blob SET linked = EXISTS (SELECT 1 FROM record_blob WHERE did = ?1 AND blob_cid = ?2)
         WHERE did = ?1 AND cid = ?2",
    )?;
    for cid in cids {
        refresh.execute((did, cid))?;
    }
    Ok(())
}

/// Forgets every blob and reference of `did` (account deletion), in the caller's transaction;
/// then [`Blobs::delete_account_files`] once it has committed.
pub fn delete_account_rows(conn: &Connection, did: &str) -> Result<(), BlobError> {
    conn.prepare_cached("DELETE FROM record_blob WHERE did = ?1")?
        .execute([did])?;
    conn.prepare_cached("DELETE FROM blob WHERE did = ?1")?
        .execute([did])?;
    Ok(())
}

/// The CIDs of `did`'s referenced blobs (stored or not), ascending, after `cursor`; only those
/// referenced by records written after repo rev `since` if given (`com.atproto.sync.listBlobs`).
pub fn list_blobs(
    conn: &Connection,
    did: &str,
    since: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, BlobError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT blob_cid FROM record_blob
         WHERE did = ?1 AND (?2 IS NULL OR rev > ?2) AND (?3 IS NULL OR blob_cid > ?3)
         ORDER BY blob_cid LIMIT ?4",
    )?;
    let rows = stmt
        .query_map((did, since, cursor, limit as i64), |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// A blob a record references that is not stored (`com.atproto.repo.listMissingBlobs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingBlob {
    pub cid: String,
    pub record_uri: String,
}

/// `did`'s referenced blobs that are not stored, ascending by CID, after `cursor`; each with one
/// of the records that reference it.
pub fn list_missing(
    conn: &Connection,
    did: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<MissingBlob>, BlobError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.blob_cid, MIN(r.record_uri) FROM record_blob r
         WHERE r.did = ?1 AND (?2 IS NULL OR r.blob_cid > ?2)
         AND NOT EXISTS (SELECT 1 FROM blob b WHERE b.did = r.did AND b.cid = r.blob_cid)
         GROUP BY r.blob_cid ORDER BY r.blob_cid LIMIT ?3",
    )?;
    let rows = stmt
        .query_map((did, cursor, limit as i64), |r| {
            Ok(MissingBlob {
                cid: r.get(0)?,
                record_uri: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Places (or extends) `holder`'s hold on deleting blob files, in force until `until_ms`: see
/// the `blob_deletion_hold` table. Placed in its own committed transaction before the snapshot
/// it protects is taken.
pub fn hold_deletions(conn: &Connection, holder: &str, until_ms: i64) -> Result<(), BlobError> {
    conn.prepare_cached(
        "INSERT INTO blob_deletion_hold (holder, until_ms) VALUES (?1, ?2)
         ON CONFLICT (holder) DO UPDATE SET until_ms = excluded.until_ms",
    )?
    .execute((holder, until_ms))?;
    Ok(())
}

/// Ends `holder`'s hold (and forgets holds that have run out).
pub fn release_deletions(conn: &Connection, holder: &str, now_ms: i64) -> Result<(), BlobError> {
    conn.prepare_cached("DELETE FROM blob_deletion_hold WHERE holder = ?1 OR until_ms <= ?2")?
        .execute((holder, now_ms))?;
    Ok(())
}

/// Whether any hold on deleting blob files is in force at `now_ms`.
pub fn deletions_held(conn: &Connection, now_ms: i64) -> Result<bool, BlobError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM blob_deletion_hold WHERE until_ms > ?1)")?
        .query_row([now_ms], |r| r.get(0))?)
}

/// The operator takes `did`'s blob `cid` down (`Some(reference)`) or restores it: a taken-down
/// blob is not served (`sync.getBlob` answers as for an unknown blob) nor collected. `false`
/// if no such blob is stored.
pub fn set_takedown(
    conn: &Connection,
    did: &str,
    cid: &str,
    reference: Option<&str>,
) -> Result<bool, BlobError> {
    let changed = conn
        .prepare_cached("UPDATE blob SET takedown_ref = ?3 WHERE did = ?1 AND cid = ?2")?
        .execute((did, cid, reference))?;
    Ok(changed > 0)
}

/// `Some(takedown reference)` of `did`'s stored blob `cid` (`Some(None)`: not taken down);
/// `None` if it is not stored.
pub fn takedown(
    conn: &Connection,
    did: &str,
    cid: &str,
) -> Result<Option<Option<String>>, BlobError> {
    Ok(conn
        .prepare_cached("SELECT takedown_ref FROM blob WHERE did = ?1 AND cid = ?2")?
        .query_row((did, cid), |r| r.get(0))
        .optional()?)
}

/// The media type `did`'s blob `cid` was uploaded as, if it is stored.
pub fn mime_type(conn: &Connection, did: &str, cid: &str) -> Result<Option<String>, BlobError> {
    use rusqlite::OptionalExtension;
    let mut stmt = conn.prepare_cached("SELECT mime_type FROM blob WHERE did = ?1 AND cid = ?2")?;
    Ok(stmt.query_row((did, cid), |r| r.get(0)).optional()?)
}

#[cfg(test)]
mod tests;
