//! `pds verify-repos`: checks every hosted repo in the data directory, read-only, beside a
//! running server.
//!
//! For each repo, in one read transaction (one consistent snapshot of that repo, its record
//! index, its account and its blobs): every stored block hashes to its CID; the head commit is
//! a valid v3 commit for the DID, signed by the account's signing key stored here, and matches
//! the repo's head row; the MST is the one canonical tree for its keys, every key a valid
//! `collection/rkey` and every record present and valid DAG-CBOR (all of this is
//! [`pds_repo::import::verify_car`], what an import from another host passes); the record index
//! agrees with the MST; and every blob a record references is stored (its row, and its file
//! with the recorded size). Accounts without a repo are failures too.
//!
//! Lenient only where the server itself is: an account moving here (deactivated) keeps the
//! commit its old host signed until it is activated, and may still lack blobs it has not
//! uploaded again; both are reported as notes, not failures. Blocks the commit does not reach
//! are a note too (harmless: nothing reads them).
//!
//! Repos are checked in parallel (one reader connection per worker); each repo's blocks are
//! loaded once and indexed, so the work is linear in the size of the data. Memory is the
//! largest repo's blocks, per worker.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pds_ipld::car::{CarBuffer, CarLimits, CarWriter};
use pds_ipld::{Cid, Ipld};
use pds_repo::import::{ImportExpectations, verify_car};
use pds_storage::Store;
use rusqlite::OptionalExtension;

use crate::config::Config;
use crate::state::DATABASE_FILE;

/// What one repo's check found.
#[derive(Debug, Default)]
pub struct RepoReport {
    pub did: String,
    /// Why the repo fails; empty if it passed.
    pub problems: Vec<String>,
    /// Worth knowing, not failures.
    pub notes: Vec<String>,
    pub records: u64,
    pub blocks: u64,
    pub blob_refs: u64,
}

/// What the whole check found.
#[derive(Debug, Default)]
pub struct VerifySummary {
    pub repos: u64,
    pub failed: u64,
    pub records: u64,
    pub blocks: u64,
    pub blob_refs: u64,
    pub elapsed: Duration,
}

/// DIDs handed to the workers per query.
const PAGE: usize = 500;
/// How often progress is reported while many repos are checked.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Checks every repo of `config`'s data directory with `jobs` workers. `output` gets one line
/// per failing repo (`FAIL <did>: ...`), one per note (`note <did>: ...`) and progress lines.
pub fn verify_repos(
    config: &Config,
    jobs: usize,
    output: &mut dyn FnMut(String),
) -> Result<VerifySummary, String> {
    let started = Instant::now();
    let db_path = config.storage.data_directory.join(DATABASE_FILE);
    if !db_path.is_file() {
        return Err(format!(
            "no database at {}: is storage.data_directory (PDS_DATA_DIRECTORY) right?",
            db_path.display()
        ));
    }
    let open =
        || Store::open_reader(&db_path).map_err(|e| format!("opening {}: {e}", db_path.display()));
    let lister = open()?;
    let (blob_runtime, blob_store) = super::blob_store_for_reading(config)?;
    let blob_store = blob_store.as_ref();
    let blob_handle = blob_runtime.handle();
    let jobs = jobs.max(1);
    let readers = (0..jobs).map(|_| open()).collect::<Result<Vec<_>, _>>()?;

    let mut summary = VerifySummary::default();
    // Accounts without a repo cannot be checked: each is a failure of its own.
    for did in accounts_without_repo(&lister)? {
        summary.repos += 1;
        summary.failed += 1;
        output(format!("FAIL {did}: the account has no repo"));
    }

    let (work_tx, work_rx) = mpsc::sync_channel::<String>(PAGE * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (report_tx, report_rx) = mpsc::channel::<RepoReport>();
    let listed = std::thread::scope(|scope| {
        for store in readers {
            let work_rx = work_rx.clone();
            let report_tx = report_tx.clone();
            let blobs = BlobSizes {
                store: blob_store,
                runtime: blob_handle,
            };
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next DID.
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(did)) = next else { break };
                    // A repo that makes the check panic fails; the others are still checked.
                    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        verify_repo(&store, &blobs, &did)
                    }));
                    let report = checked.unwrap_or_else(|_| RepoReport {
                        problems: vec!["checking it failed unexpectedly (a panic)".to_owned()],
                        did: did.clone(),
                        ..Default::default()
                    });
                    if report_tx.send(report).is_err() {
                        break;
                    }
                }
            });
        }
        drop(report_tx);
        // Only the workers hold the queue now: if they all end, the feeder's sends fail
        // rather than wait forever.
        drop(work_rx);
        let feeder = scope.spawn(move || -> Result<(), String> {
            let mut after: Option<String> = None;
            loop {
                let page = pds_storage::sync_reads::repo_heads(
                    lister.connection(),
                    after.as_deref(),
                    PAGE,
                )
                .map_err(|e| format!("listing the repos: {e}"))?;
                let Some(last) = page.last() else {
                    return Ok(());
                };
                after = Some(last.did.clone());
                for head in page {
                    if work_tx.send(head.did).is_err() {
                        return Ok(());
                    }
                }
            }
        });
        let mut last_report = Instant::now();
        for report in report_rx {
            summary.repos += 1;
            summary.records += report.records;
            summary.blocks += report.blocks;
            summary.blob_refs += report.blob_refs;
            for note in &report.notes {
                output(format!("note {}: {note}", report.did));
            }
            if !report.problems.is_empty() {
                summary.failed += 1;
                output(format!(
                    "FAIL {}: {}",
                    report.did,
                    report.problems.join("; ")
                ));
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                output(format!("... {} repos checked", summary.repos));
            }
        }
        feeder
            .join()
            .unwrap_or_else(|_| Err("listing the repos failed unexpectedly".to_owned()))
    });
    listed?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Accounts whose repo row is missing.
fn accounts_without_repo(store: &Store) -> Result<Vec<String>, String> {
    let conn = store.connection();
    let fail = |e: rusqlite::Error| format!("listing the accounts: {e}");
    let mut stmt = conn
        .prepare(
            "SELECT did FROM account a
             WHERE NOT EXISTS (SELECT 1 FROM repo_root r WHERE r.did = a.did) ORDER BY did",
        )
        .map_err(fail)?;
    stmt.query_map([], |r| r.get(0))
        .map_err(fail)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(fail)
}

/// Checks one repo from one snapshot.
/// How the checks learn a stored blob's size: from the blob store (disk or S3), through a
/// runtime the worker threads share.
pub struct BlobSizes<'a> {
    pub store: &'a dyn crate::blobs::store::BlobStore,
    pub runtime: &'a tokio::runtime::Handle,
}

impl BlobSizes<'_> {
    fn size(&self, did: &str, cid: &Cid) -> std::io::Result<Option<u64>> {
        self.runtime.block_on(self.store.size(did, cid))
    }
}

pub fn verify_repo(store: &Store, blobs: &BlobSizes<'_>, did: &str) -> RepoReport {
    let mut report = RepoReport {
        did: did.to_owned(),
        ..Default::default()
    };
    let conn = store.connection();
    let snapshot = match conn.unchecked_transaction() {
        Ok(tx) => tx,
        Err(e) => {
            report.problems.push(format!("cannot read: {e}"));
            return report;
        }
    };
    if let Err(problem) = check_repo(store, blobs, did, &mut report) {
        report.problems.push(problem);
    }
    // A read transaction: nothing to commit.
    drop(snapshot);
    report
}

/// The checks; an `Err` is a problem that stops the repo's check.
fn check_repo(
    store: &Store,
    blob_sizes: &BlobSizes<'_>,
    did: &str,
    report: &mut RepoReport,
) -> Result<(), String> {
    let conn = store.connection();
    let Some(head) = store
        .head(did)
        .map_err(|e| format!("reading the head: {e}"))?
    else {
        // Deleted since it was listed.
        return Ok(());
    };
    let account = crate::accounts::by_did(conn, did)
        .map_err(|e| format!("reading the account: {e}"))?
        .ok_or("the repo has no account")?;
    let key = crate::accounts::signing_key(conn, did)
        .map_err(|e| format!("the account's signing key: {e}"))?;

    // Every stored block, as a CAR rooted at the head: parsing it checks each block against its
    // CID and indexes them without copying.
    let mut car = CarWriter::new(Vec::new(), &[head.commit_cid])
        .map_err(|e| format!("building the CAR: {e}"))?;
    report.blocks = pds_storage::sync_reads::for_each_block(conn, did, None, &mut |cid, bytes| {
        car.write_block(cid, bytes)
            .map_err(|e| pds_storage::StorageError::Corrupt(e.to_string()))
    })
    .map_err(|e| format!("reading the blocks: {e}"))?;
    let car = car.finish().map_err(|e| format!("building the CAR: {e}"))?;
    let limits = CarLimits {
        max_block_bytes: usize::MAX / 2,
        ..CarLimits::default()
    };
    let car = CarBuffer::parse(car, limits).map_err(|e| {
        let e = e.to_string();
        format!("stored blocks: {}", e.trim_start_matches("invalid CAR: "))
    })?;
    let stored_blocks = car.len();
    let expect = ImportExpectations {
        did: Some(did),
        signing_key: None,
        max_car_bytes: u64::MAX,
    };
    let repo = verify_car(car, &expect).map_err(|e| format!("the repo does not verify: {e}"))?;
    report.records = repo.records.len() as u64;

    if let Err(e) = repo.commit.verify(&key.public_key()) {
        let what = format!("the commit's signature does not verify with the account's key ({e})");
        if account.deactivated {
            report.notes.push(format!(
                "{what}: expected for an account moving here until it is activated"
            ));
        } else {
            report.problems.push(what);
        }
    }
    if repo.commit.rev != head.rev || repo.commit.data != head.data {
        report.problems.push(format!(
            "the head row (rev {}, data {}) does not match the commit (rev {}, data {})",
            head.rev, head.data, repo.commit.rev, repo.commit.data
        ));
    }
    let unreachable = stored_blocks.saturating_sub(repo.block_count());
    if unreachable > 0 {
        report.notes.push(format!(
            "{unreachable} stored blocks are not reachable from the commit"
        ));
    }

    if let Some(problem) = compare_record_index(conn, did, &repo.records)? {
        report.problems.push(problem);
    }

    // Blob references, from the records themselves.
    let record_paths: HashMap<Cid, &str> = repo
        .records
        .iter()
        .rev()
        .map(|(path, cid)| (*cid, path.as_str()))
        .collect();
    let mut blobs: Vec<(Cid, &str)> = Vec::new();
    let mut seen: HashSet<Cid> = HashSet::new();
    for (cid, bytes) in repo.blocks() {
        let Some(path) = record_paths.get(cid) else {
            continue;
        };
        let record: Ipld = pds_ipld::from_cbor(bytes).map_err(|e| format!("record {path}: {e}"))?;
        for blob in pds_ipld::collect_blob_refs(&record) {
            if seen.insert(blob.cid) {
                blobs.push((blob.cid, path));
            }
        }
    }
    report.blob_refs = blobs.len() as u64;
    let mut not_uploaded = Vec::new();
    let mut size_of = conn
        .prepare_cached("SELECT size FROM blob WHERE did = ?1 AND cid = ?2")
        .map_err(|e| format!("reading the blob table: {e}"))?;
    for (cid, path) in blobs {
        let size: Option<i64> = size_of
            .query_row((did, cid.to_string()), |r| r.get(0))
            .optional()
            .map_err(|e| format!("reading the blob table: {e}"))?;
        let Some(size) = size else {
            not_uploaded.push((cid, path));
            continue;
        };
        match blob_sizes.size(did, &cid) {
            Ok(Some(len)) if len == u64::try_from(size).unwrap_or(u64::MAX) => {}
            Ok(Some(len)) => report.problems.push(format!(
                "blob {cid} is {len} bytes in the blob store, {size} in the database"
            )),
            Ok(None) => report.problems.push(format!(
                "blob {cid} (referenced by {path}) is not in the blob store"
            )),
            Err(e) => report.problems.push(format!("blob {cid}: {e}")),
        }
    }
    if let Some((cid, path)) = not_uploaded.first() {
        let what = format!(
            "{} referenced blobs are not stored (e.g. {cid}, referenced by {path})",
            not_uploaded.len()
        );
        if account.deactivated {
            report.notes.push(format!(
                "{what}: expected while an account moving here uploads them"
            ));
        } else {
            report.problems.push(what);
        }
    }
    Ok(())
}

/// Compares the record index with the MST's records (`collection/rkey`, CID); a problem
/// describing the differences, if any.
fn compare_record_index(
    conn: &rusqlite::Connection,
    did: &str,
    mst: &[(String, Cid)],
) -> Result<Option<String>, String> {
    let fail = |e: rusqlite::Error| format!("reading the record index: {e}");
    let mut stmt = conn
        .prepare_cached("SELECT collection, rkey, cid FROM record WHERE did = ?1")
        .map_err(fail)?;
    let mut rows = stmt.query([did]).map_err(fail)?;
    let mut index: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        let collection: String = row.get(0).map_err(fail)?;
        let rkey: String = row.get(1).map_err(fail)?;
        index.push((format!("{collection}/{rkey}"), row.get(2).map_err(fail)?));
    }
    // The MST lists its keys in byte order; so is the index once its paths are sorted.
    index.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut mst_sorted: Vec<&(String, Cid)> = mst.iter().collect();
    mst_sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    let (mut missing, mut extra, mut differ) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < mst_sorted.len() || j < index.len() {
        match (mst_sorted.get(i), index.get(j)) {
            (Some((path, cid)), Some((indexed, bytes))) if path == indexed => {
                if cid.to_bytes() != *bytes {
                    differ.push(path.as_str());
                }
                i += 1;
                j += 1;
            }
            (Some((path, _)), Some((indexed, _))) if path < indexed => {
                missing.push(path.as_str());
                i += 1;
            }
            (Some((path, _)), None) => {
                missing.push(path.as_str());
                i += 1;
            }
            (_, Some((indexed, _))) => {
                extra.push(indexed.as_str());
                j += 1;
            }
            (None, None) => break,
        }
    }
    if missing.is_empty() && extra.is_empty() && differ.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    for (list, what) in [
        (&missing, "in the MST but not the index"),
        (&extra, "in the index but not the MST"),
        (&differ, "with another CID in the index"),
    ] {
        if let Some(first) = list.first() {
            parts.push(format!("{} records {what} (e.g. {first})", list.len()));
        }
    }
    Ok(Some(format!(
        "the record index disagrees with the MST: {}",
        parts.join(", ")
    )))
}

/// The default number of workers: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
