//! `pds restore --from DIR`: puts a `pds backup` back as the configured data directory.
//!
//! Only into an empty place: the data directory and the blob directory must be missing or hold
//! no files (empty directories are fine), so a restore can never mix two servers' data or
//! overwrite a running server's (a server that has started on a directory has written its
//! database there). Everything is checked before it counts: the databases first (copied under a
//! temporary name, each against the manifest's sha256 and with SQLite's `quick_check`), so a
//! damaged backup is found before gigabytes of blobs are copied; then each blob against its
//! CID, then the secrets against their sha256; the databases are linked into place last (a link
//! never replaces an existing file): until they appear, a server pointed at the directory would
//! start empty rather than with half a restore. A restore that fails removes what it wrote.
//! Symbolic links in the backup are refused; what is written is readable by its owner only.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{BLOBS_DIR, DATABASES_DIR, Manifest, human_bytes};
use crate::config::Config;
use crate::config::secrets::SECRETS_FILE;
use crate::state::DATABASE_FILE;

/// What a restore did.
#[derive(Debug)]
pub struct RestoreSummary {
    pub manifest: Manifest,
    pub databases: usize,
    pub blobs: u64,
    pub blob_bytes: u64,
    pub elapsed: Duration,
}

/// How often blob progress is reported, at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Checks that restoring into `config`'s data and blob directories is allowed: both missing or
/// without files. Call before creating them.
pub fn check_target(config: &Config) -> Result<(), String> {
    let storage = &config.storage;
    for (what, dir) in [
        ("data directory", &storage.data_directory),
        ("blob directory", &storage.blobstore_disk_location),
    ] {
        let found = super::first_file_under(dir)
            .map_err(|e| format!("looking into the {what} {}: {e}", dir.display()))?;
        if let Some(file) = found {
            return Err(format!(
                "the {what} {} is not empty (it holds {}): restore only into an empty or \
                 missing directory; stop the server and move the old data away first",
                dir.display(),
                file.display()
            ));
        }
    }
    Ok(())
}

/// Restores the backup in `from` into `config`'s data directory and blob directory, which
/// [`check_target`] must have accepted and which must exist. `progress` gets one line per step.
pub fn restore(
    config: &Config,
    from: &Path,
    progress: &mut dyn FnMut(String),
) -> Result<RestoreSummary, String> {
    let started = Instant::now();
    let manifest = Manifest::read(from)?;
    if !manifest.databases.iter().any(|db| db.file == DATABASE_FILE) {
        return Err(format!(
            "the backup holds no {DATABASE_FILE}: nothing to restore"
        ));
    }
    // Cheap checks before anything is written.
    for db in &manifest.databases {
        let path = from.join(DATABASES_DIR).join(&db.file);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("the backup's {}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "the backup's {} is not a plain file",
                path.display()
            ));
        }
        let len = meta.len();
        if len != db.bytes {
            return Err(format!(
                "the backup's {} is {len} bytes, its manifest says {}: the backup is damaged",
                path.display(),
                db.bytes
            ));
        }
    }
    if manifest.secrets_file
        && !std::fs::symlink_metadata(from.join(SECRETS_FILE)).is_ok_and(|m| m.is_file())
    {
        return Err(format!(
            "the manifest lists {SECRETS_FILE} but the backup does not hold it"
        ));
    }
    check_target(config)?;
    progress(format!(
        "restoring the backup of {} (pds {}) from {}: {} databases, {} blobs ({})",
        manifest.started_at,
        manifest.pds_version,
        from.display(),
        manifest.databases.len(),
        manifest.blobs.count,
        human_bytes(manifest.blobs.bytes)
    ));
    for missing in &manifest.blobs.missing {
        progress(format!(
            "warning: blob {} {} was missing when the backup was made ({}); records that \
             reference it will point at nothing",
            missing.did, missing.cid, missing.reason
        ));
    }

    let (blobs, blob_bytes) = match write_restore(config, from, &manifest, progress) {
        Ok(done) => done,
        Err(e) => {
            // Both directories held no file before (check_target): all they hold is ours.
            let storage = &config.storage;
            for dir in [&storage.blobstore_disk_location, &storage.data_directory] {
                if let Err(cleanup) = empty_dir(dir) {
                    return Err(format!(
                        "{e} (and removing what the restore wrote to {} failed: {cleanup}; \
                         empty it before trying again)",
                        dir.display()
                    ));
                }
            }
            return Err(format!("{e} (nothing restored)"));
        }
    };
    Ok(RestoreSummary {
        databases: manifest.databases.len(),
        manifest,
        blobs,
        blob_bytes,
        elapsed: started.elapsed(),
    })
}

/// Writes the backup into place: databases staged and checked, blobs, secrets, then the
/// databases linked in. Returns the blob count and bytes.
fn write_restore(
    config: &Config,
    from: &Path,
    manifest: &Manifest,
    progress: &mut dyn FnMut(String),
) -> Result<(u64, u64), String> {
    let data_dir = &config.storage.data_directory;
    let blob_root = &config.storage.blobstore_disk_location;

    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        for db in &manifest.databases {
            let source = from.join(DATABASES_DIR).join(&db.file);
            let target = data_dir.join(&db.file);
            let temporary = data_dir.join(format!("{}.restoring", db.file));
            staged.push((temporary.clone(), target));
            let t = Instant::now();
            let (bytes, digest) = super::open_backup_file(&source)
                .and_then(|from| {
                    let to = super::create_private(&temporary)?;
                    let copied = super::copy_hashed(from, BufWriter::new(&to))?;
                    to.sync_all()?;
                    Ok(copied)
                })
                .map_err(|e| format!("copying {}: {e}", db.file))?;
            if bytes != db.bytes || super::hex(&digest) != db.sha256 {
                return Err(format!(
                    "{} in the backup does not match its manifest (sha256): the backup is damaged",
                    db.file
                ));
            }
            let conn = rusqlite::Connection::open_with_flags(
                &temporary,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(|e| format!("opening the restored {}: {e}", db.file))?;
            super::backup::check_database(&conn).map_err(|e| format!("{}: {e}", db.file))?;
            drop(conn);
            progress(format!(
                "database {}: {} copied and checked in {:.1} s",
                db.file,
                human_bytes(bytes),
                t.elapsed().as_secs_f64()
            ));
        }

        let (blobs, blob_bytes) = restore_blobs(&from.join(BLOBS_DIR), config, progress)?;
        if blobs != manifest.blobs.count {
            return Err(format!(
                "the backup holds {blobs} blobs, its manifest says {}: the backup is damaged",
                manifest.blobs.count,
            ));
        }
        super::sync_file_system(blob_root)
            .map_err(|e| format!("syncing {}: {e}", blob_root.display()))?;

        if manifest.secrets_file {
            let target = data_dir.join(SECRETS_FILE);
            let source = super::open_backup_file(&from.join(SECRETS_FILE))
                .map_err(|e| format!("reading the backup's {SECRETS_FILE}: {e}"))?;
            let to = super::create_private(&target)
                .map_err(|e| format!("writing {}: {e}", target.display()))?;
            let (_, digest) = super::copy_hashed(source, &to)
                .map_err(|e| format!("writing {SECRETS_FILE}: {e}"))?;
            if manifest
                .secrets_sha256
                .as_ref()
                .is_some_and(|want| *want != super::hex(&digest))
            {
                return Err(format!(
                    "{SECRETS_FILE} in the backup does not match its manifest (sha256): the \
                     backup is damaged"
                ));
            }
            to.sync_all()
                .map_err(|e| format!("writing {SECRETS_FILE}: {e}"))?;
            progress(format!("{SECRETS_FILE} restored"));
        }

        for (temporary, target) in &staged {
            std::fs::hard_link(temporary, target).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => format!(
                    "{} appeared during the restore: is a server running on this data \
                     directory? Stop it, clear the directory and restore again",
                    target.display()
                ),
                _ => format!("putting {} in place: {e}", target.display()),
            })?;
        }
        Ok((blobs, blob_bytes))
    })();
    for (temporary, _) in &staged {
        let _ = std::fs::remove_file(temporary);
    }
    let done = result?;
    super::sync_dir(data_dir).map_err(|e| format!("syncing {}: {e}", data_dir.display()))?;
    Ok(done)
}

/// Streams the backup's file at `source` into the store as `did`'s blob `cid`, checking its
/// bytes against the CID first. Returns its size.
async fn restore_blob(
    store: &dyn crate::blobs::store::BlobStore,
    source: &Path,
    did: &str,
    cid: &pds_ipld::Cid,
) -> Result<u64, String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = super::open_backup_file(source).map_err(|e| e.to_string())?;
    let mut upload = store.begin().await.map_err(|e| e.to_string())?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        upload.write(&buf[..n]).await.map_err(|e| e.to_string())?;
        total += n as u64;
    }
    if crate::blobs::raw_cid(&hasher.finalize().into()) != *cid {
        return Err(format!(
            "{} does not match its CID: the backup is damaged",
            source.display()
        ));
    }
    upload.commit(did, cid).await.map_err(|e| e.to_string())?;
    Ok(total)
}

/// Removes everything inside `dir` (not `dir` itself).
fn empty_dir(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Copies `from/<did>/<cid>` into `blob_root/<did>/<cid>`, each checked against its CID and
/// written under a temporary name first. Returns the count and bytes.
fn restore_blobs(
    from: &Path,
    config: &Config,
    progress: &mut dyn FnMut(String),
) -> Result<(u64, u64), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let store = rt
        .block_on(crate::blobs::open_store(config))
        .map_err(|e| e.to_string())?;
    let store = store.as_ref();
    let listing = |dir: &Path| -> Result<Vec<(String, PathBuf, bool)>, String> {
        let fail = |e: io::Error| format!("listing the backup's {}: {e}", dir.display());
        let mut entries = Vec::new();
        let read = match std::fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err(fail(e)),
        };
        for entry in read {
            let entry = entry.map_err(fail)?;
            let name = entry.file_name().into_string().map_err(|name| {
                format!(
                    "unexpected file {:?} in the backup's blobs",
                    dir.join(name).display()
                )
            })?;
            let kind = entry.file_type().map_err(fail)?;
            if kind.is_symlink() {
                return Err(format!(
                    "{} in the backup's blobs is a symbolic link",
                    entry.path().display()
                ));
            }
            entries.push((name, entry.path(), kind.is_dir()));
        }
        entries.sort();
        Ok(entries)
    };
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut last_report = Instant::now();
    for (did, did_dir, is_dir) in listing(from)? {
        if !is_dir || pds_syntax::Did::new(&did).is_err() {
            return Err(format!(
                "unexpected {} in the backup's blobs: not an account's directory",
                did_dir.display()
            ));
        }
        for (name, source, is_dir) in listing(&did_dir)? {
            let cid = match pds_ipld::parse_cid(&name) {
                Ok(cid) if !is_dir => cid,
                _ => {
                    return Err(format!(
                        "unexpected {} in the backup's blobs: not a blob",
                        source.display()
                    ));
                }
            };
            // Into the blob store (disk or S3), checked against the CID before it is committed
            // under its name.
            let n = rt
                .block_on(restore_blob(store, &source, &did, &cid))
                .map_err(|e| format!("restoring blob {did} {name}: {e}"))?;
            count += 1;
            bytes += n;
            if last_report.elapsed() >= PROGRESS_EVERY {
                last_report = Instant::now();
                progress(format!("blobs: {count} restored ({})", human_bytes(bytes)));
            }
        }
    }
    progress(format!("blobs: {count} restored ({})", human_bytes(bytes)));
    Ok((count, bytes))
}
