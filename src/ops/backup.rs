//! `pds backup --out DIR`: a consistent copy of a data directory, taken while the server runs
//! (or not).
//!
//! Each SQLite database is copied with SQLite's online backup API in a single step: the copy
//! reads one snapshot of the database (one read transaction) while the server keeps writing
//! (WAL readers never block the writer), so it is exactly the database as of one commit. A
//! backup made in several steps would restart each time the server commits, and under steady
//! writes might never finish.
//!
//! The databases are `pds.sqlite` then `plc.sqlite` (the embedded did:plc directory), in that
//! order: the directory's operations are written before the account rows that use them, so a
//! `pds.sqlite` snapshot taken first never holds an account whose DID the later `plc.sqlite`
//! snapshot lacks. Other files in the data directory are not the server's and are left out.
//!
//! The blobs copied are those the copied `pds.sqlite` knows (its `blob` table): the snapshot
//! decides, not the blob directory, so every blob a backed-up record references is in the
//! backup, and blobs uploaded after the snapshot are not. So that none of them is deleted before
//! it is copied (a record deleted after the snapshot frees its blob), the backup holds blob
//! deletions (`blobs::hold_deletions`, a row in the live `pds.sqlite`) from before the snapshot
//! until the copy ends; the server's collector and account deletion honour it, and a hold left
//! by a backup that died runs out after an hour.
//!
//! Everything written is readable by its owner only (directories 0700, files 0600): a backup
//! holds every account's signing key and password hash. Each is streamed (constant memory)
//! and checked against its CID. A referenced blob that vanished from the blob store before it
//! could be copied, or whose bytes do not match its CID, is reported, listed in the manifest
//! and makes the command fail; an unreferenced (temporary) upload the collector removed in the
//! meantime is dropped from the copied database instead, as the server would have done.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{
    BLOBS_DIR, BlobSummary, DATABASES_DIR, DatabaseEntry, MANIFEST_FILE, MANIFEST_FORMAT,
    MANIFEST_VERSION, Manifest, MissingBlob, human_bytes,
};
use crate::config::Config;
use crate::config::secrets::SECRETS_FILE;
use crate::state::DATABASE_FILE;

/// What a backup did.
#[derive(Debug)]
pub struct BackupSummary {
    pub manifest: Manifest,
    pub elapsed: Duration,
}

impl BackupSummary {
    /// Whether every referenced blob made it into the backup.
    pub fn complete(&self) -> bool {
        self.manifest.blobs.missing.is_empty()
    }
}

/// How long a step may keep finding the source locked before the backup gives up. With WAL
/// this only happens while the server recovers its WAL (at start-up).
const LOCKED_FOR_AT_MOST: Duration = Duration::from_secs(30);
/// How often blob progress is reported, at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// The databases a data directory holds, in the order they are snapshotted (see the module
/// doc); only the first must exist.
pub const DATABASES: [&str; 2] = [DATABASE_FILE, "plc.sqlite"];
/// How long a hold on blob deletions lasts unless renewed (a backup renews it as it copies).
const HOLD_FOR: Duration = Duration::from_secs(60 * 60);
/// How often the hold is renewed while blobs are copied.
const RENEW_HOLD_EVERY: Duration = Duration::from_secs(5 * 60);

/// Backs up `config`'s data directory (databases, blobs, dev-mode secrets) into `out`, which
/// must be missing or empty. `progress` gets one line per step. A backup whose referenced
/// blobs could not all be copied is still written (and says so in its manifest); the caller
/// decides what that means ([`BackupSummary::complete`]).
pub fn backup(
    config: &Config,
    out: &Path,
    progress: &mut dyn FnMut(String),
) -> Result<BackupSummary, String> {
    let started = Instant::now();
    let started_at = super::now_datetime();
    let data_dir = &config.storage.data_directory;
    let main_db = data_dir.join(DATABASE_FILE);
    if !main_db.is_file() {
        return Err(format!(
            "no database at {}: is storage.data_directory (PDS_DATA_DIRECTORY) right?",
            main_db.display()
        ));
    }
    prepare_out(out)?;
    let databases: Vec<String> = DATABASES
        .iter()
        .filter(|name| data_dir.join(name).is_file())
        .map(|name| name.to_string())
        .collect();
    let mut hold = DeletionHold::place(&main_db)?;
    progress(format!(
        "backing up {} into {}: databases {}",
        data_dir.display(),
        out.display(),
        databases.join(", ")
    ));

    let db_out = out.join(DATABASES_DIR);
    for name in &databases {
        let t = Instant::now();
        let pages = backup_database(&data_dir.join(name), &db_out.join(name))
            .map_err(|e| format!("backing up {name}: {e}"))?;
        let bytes = std::fs::metadata(db_out.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        progress(format!(
            "database {name}: {pages} pages ({}) in {:.1} s",
            human_bytes(bytes),
            t.elapsed().as_secs_f64()
        ));
    }

    let (rt, store) = super::blob_store_for_reading(config)?;
    let blobs = copy_blobs(
        &db_out.join(DATABASE_FILE),
        (&rt, store.as_ref()),
        &out.join(BLOBS_DIR),
        &mut hold,
        progress,
    )?;
    hold.release();

    let secrets = data_dir.join(SECRETS_FILE);
    let secrets_file = secrets.is_file();
    let mut secrets_sha256 = None;
    if secrets_file {
        let from = std::fs::File::open(&secrets)
            .map_err(|e| format!("reading {}: {e}", secrets.display()))?;
        let to = super::create_private(&out.join(SECRETS_FILE))
            .map_err(|e| format!("writing {SECRETS_FILE}: {e}"))?;
        let (_, digest) =
            super::copy_hashed(from, to).map_err(|e| format!("copying {SECRETS_FILE}: {e}"))?;
        secrets_sha256 = Some(super::hex(&digest));
        progress(format!(
            "{SECRETS_FILE} copied (dev mode's generated secrets)"
        ));
    }

    // Everything the manifest vouches for is durable before the manifest is written.
    super::sync_file_system(out).map_err(|e| format!("syncing {}: {e}", out.display()))?;
    let mut entries = Vec::new();
    for name in &databases {
        let path = db_out.join(name);
        let (bytes, digest) =
            super::hash_file(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        entries.push(DatabaseEntry {
            file: name.clone(),
            bytes,
            sha256: super::hex(&digest),
        });
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_owned(),
        format_version: MANIFEST_VERSION,
        pds_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        finished_at: super::now_datetime(),
        databases: entries,
        blobs,
        secrets_file,
        secrets_sha256,
    };
    write_manifest(out, &manifest)?;
    Ok(BackupSummary {
        manifest,
        elapsed: started.elapsed(),
    })
}

/// Creates `out`, or checks that it is an empty directory: a backup never mixes with other
/// files.
fn prepare_out(out: &Path) -> Result<(), String> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: a backup goes into a new or empty directory",
                    out.display()
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The backup holds every account's signing key and password hash: owner only.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(out)
                .map_err(|e| format!("creating {}: {e}", out.display()))?;
        }
        Err(e) => return Err(format!("{}: {e}", out.display())),
    }
    // Owner only, also when the directory was there already (made by hand, a mount point).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("making {} private: {e}", out.display()))?;
    }
    for dir in [out.join(DATABASES_DIR), out.join(BLOBS_DIR)] {
        super::create_private_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// A hold on blob deletions in the live database for as long as the backup copies (see the
/// module doc); released when dropped, whatever ended the backup.
struct DeletionHold {
    conn: Connection,
    holder: String,
    renewed: Instant,
    released: bool,
}

impl DeletionHold {
    fn place(main_db: &Path) -> Result<DeletionHold, String> {
        let fail = |e: String| format!("holding blob deletions in {}: {e}", main_db.display());
        let conn = Connection::open_with_flags(
            main_db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(LOCKED_FOR_AT_MOST)
            .map_err(|e| fail(e.to_string()))?;
        let hold = DeletionHold {
            conn,
            holder: format!("backup {}", std::process::id()),
            renewed: Instant::now(),
            released: false,
        };
        hold.write().map_err(|e| {
            fail(format!(
                "{e} (a server of this version must have opened the data directory once)"
            ))
        })?;
        Ok(hold)
    }

    fn write(&self) -> Result<(), String> {
        let until = crate::blobs::now_ms() + HOLD_FOR.as_millis() as i64;
        crate::blobs::hold_deletions(&self.conn, &self.holder, until).map_err(|e| e.to_string())
    }

    /// Extends the hold if it is due.
    fn renew(&mut self) -> Result<(), String> {
        if self.renewed.elapsed() >= RENEW_HOLD_EVERY {
            self.write()
                .map_err(|e| format!("renewing the hold on blob deletions: {e}"))?;
            self.renewed = Instant::now();
        }
        Ok(())
    }

    fn release(&mut self) {
        if !self.released {
            self.released = true;
            let now = crate::blobs::now_ms();
            if let Err(e) = crate::blobs::release_deletions(&self.conn, &self.holder, now) {
                tracing::warn!(error = %e, "could not release the hold on blob deletions; it runs out within the hour");
            }
        }
    }
}

impl Drop for DeletionHold {
    fn drop(&mut self) {
        self.release();
    }
}

/// Copies the database at `from` to the new file `to` in one online-backup step (one snapshot),
/// leaves the copy a self-contained rollback-journal database, checks it, and returns its page
/// count.
fn backup_database(from: &Path, to: &Path) -> Result<i32, String> {
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening {}: {e}", from.display()))?;
    source
        .busy_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    // Created empty and private first: SQLite would make it readable by everyone.
    super::create_private(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let mut copy = Connection::open(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let pages = {
        let backup = Backup::new(&source, &mut copy).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + LOCKED_FOR_AT_MOST;
        loop {
            // -1: every page in this step, so the copy is one snapshot however busy the server.
            match backup.step(-1).map_err(|e| e.to_string())? {
                StepResult::Done => break,
                StepResult::More => continue,
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    return Err(format!(
                        "the database stayed locked for {} s",
                        LOCKED_FOR_AT_MOST.as_secs()
                    ));
                }
            }
        }
        backup.progress().pagecount
    };
    drop(source);
    // The copy carries the source's WAL flag; a rollback journal keeps it one file (the server
    // turns WAL back on when it opens a restored copy).
    let mode: String = copy
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| format!("finishing the copy: {e}"))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(format!("the copy stayed in journal mode {mode}"));
    }
    check_database(&copy)?;
    copy.close().map_err(|(_, e)| e.to_string())?;
    Ok(pages)
}

/// `PRAGMA quick_check` on a database: its pages and indexes are sound.
pub(super) fn check_database(conn: &Connection) -> Result<(), String> {
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("checking the copy: {e}"))?;
    match verdict.as_str() {
        "ok" => Ok(()),
        problem => Err(format!("the copy fails SQLite's quick_check: {problem}")),
    }
}

/// Copies every blob the backed-up database's `blob` table lists from `blob_root` into
/// `out/<did>/<cid>`, each checked against its CID.
fn copy_blobs(
    db: &Path,
    (rt, store): (
        &tokio::runtime::Runtime,
        &dyn crate::blobs::store::BlobStore,
    ),
    out: &Path,
    hold: &mut DeletionHold,
    progress: &mut dyn FnMut(String),
) -> Result<BlobSummary, String> {
    let conn = Connection::open(db).map_err(|e| format!("opening {}: {e}", db.display()))?;
    let fail = |e: rusqlite::Error| format!("reading the blob table of the copy: {e}");
    let has_blobs: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'blob'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(fail)?;
    let mut summary = BlobSummary::default();
    if has_blobs.is_none() {
        progress("blobs: none (no blob table yet)".to_owned());
        return Ok(summary);
    }
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM blob", [], |r| r.get(0))
        .map_err(fail)?;
    progress(format!("blobs: copying {total} from the blob store"));

    // Temporary uploads the collector deleted since the snapshot: dropped from the copy.
    let mut vanished_temporary: Vec<(String, String)> = Vec::new();
    let mut last_report = Instant::now();
    let mut current_did_dir: Option<PathBuf> = None;
    {
        let mut stmt = conn
            .prepare(
                "SELECT did, cid, EXISTS (SELECT 1 FROM record_blob r
                                          WHERE r.did = b.did AND r.blob_cid = b.cid)
                 FROM blob b ORDER BY did, cid",
            )
            .map_err(fail)?;
        let mut rows = stmt.query([]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let did: String = row.get(0).map_err(fail)?;
            let cid_text: String = row.get(1).map_err(fail)?;
            let referenced: bool = row.get(2).map_err(fail)?;
            let mut missing = |reason: String| {
                if referenced {
                    progress(format!("MISSING blob {did} {cid_text}: {reason}"));
                    summary.missing.push(MissingBlob {
                        did: did.clone(),
                        cid: cid_text.clone(),
                        reason,
                    });
                }
            };
            let cid = match pds_ipld::parse_cid(&cid_text) {
                Ok(cid) => cid,
                Err(e) => {
                    missing(format!("the database holds an invalid CID: {e}"));
                    continue;
                }
            };
            if pds_syntax::Did::new(&did).is_err() {
                missing(format!("the database holds an invalid DID {did:?}"));
                continue;
            }
            let read = match rt.block_on(store.read(&did, &cid, 0, None)) {
                Ok(Some(read)) => read,
                Ok(None) => {
                    if referenced {
                        missing("not in the blob store".to_owned());
                    } else {
                        vanished_temporary.push((did.clone(), cid_text.clone()));
                    }
                    continue;
                }
                Err(e) => {
                    missing(format!("cannot read it from the blob store: {e}"));
                    continue;
                }
            };
            hold.renew()?;
            let did_dir = out.join(&did);
            if current_did_dir.as_ref() != Some(&did_dir) {
                super::create_private_dir(&did_dir)
                    .map_err(|e| format!("creating {}: {e}", did_dir.display()))?;
                current_did_dir = Some(did_dir.clone());
            }
            let target = did_dir.join(cid.to_string());
            let written = super::create_private(&target)
                .and_then(|to| super::copy_blob_hashed(rt, read, BufWriter::new(to)))
                .map_err(|e| format!("copying blob {did} {cid_text}: {e}"))?;
            let (bytes, digest) = written;
            if crate::blobs::raw_cid(&digest) != cid {
                std::fs::remove_file(&target)
                    .map_err(|e| format!("removing {}: {e}", target.display()))?;
                missing("its bytes in the blob store do not match its CID".to_owned());
                continue;
            }
            summary.count += 1;
            summary.bytes += bytes;
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                progress(format!(
                    "blobs: {} of {total} copied ({})",
                    summary.count,
                    human_bytes(summary.bytes)
                ));
            }
        }
    }
    if !vanished_temporary.is_empty() {
        let mut forget = conn
            .prepare(
                "DELETE FROM blob WHERE did = ?1 AND cid = ?2
                 AND NOT EXISTS (SELECT 1 FROM record_blob WHERE did = ?1 AND blob_cid = ?2)",
            )
            .map_err(fail)?;
        for (did, cid) in &vanished_temporary {
            forget.execute((did, cid)).map_err(fail)?;
        }
        progress(format!(
            "blobs: {} unreferenced uploads were removed by the server's collector during the \
             backup; left out",
            vanished_temporary.len()
        ));
    }
    conn.close().map_err(|(_, e)| e.to_string())?;
    progress(format!(
        "blobs: {} copied ({})",
        summary.count,
        human_bytes(summary.bytes)
    ));
    Ok(summary)
}

/// Writes the manifest under a temporary name, makes it durable, then gives it its name: a
/// backup directory with a manifest is a whole backup.
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), String> {
    let text = serde_json::to_string_pretty(manifest)
        .map_err(|e| format!("encoding the manifest: {e}"))?;
    let partial = out.join(format!("{MANIFEST_FILE}.partial"));
    let fail = |e: io::Error| format!("writing {MANIFEST_FILE}: {e}");
    {
        use std::io::Write;
        let mut file = super::create_private(&partial).map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.write_all(b"\n").map_err(fail)?;
        file.sync_all().map_err(fail)?;
    }
    std::fs::rename(&partial, out.join(MANIFEST_FILE)).map_err(fail)?;
    super::sync_dir(out).map_err(fail)
}
