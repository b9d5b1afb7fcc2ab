//! Operator commands over a whole data directory: `pds backup` ([`backup`]), `pds restore`
//! ([`restore`]) and `pds verify-repos` ([`verify`]).
//!
//! Owns: the layout and manifest of a backup directory, and the checks that tell an operator
//! whether the hosted repos are intact. Reads the data directory the way `pds export` does
//! (read-only SQLite connections, blob files by name), so backups and checks run beside a
//! running server without stopping or slowing its writer.
//!
//! A backup directory holds:
//!
//! ```text
//! manifest.json            what the backup holds (written last: no manifest, no backup)
//! databases/<file>         every SQLite database of the data directory (pds.sqlite, plc.sqlite)
//! blobs/<did>/<cid>        every blob the backed-up pds.sqlite knows, checked against its CID
//! secrets.toml             dev mode only: the secrets the server generated
//! ```
//!
//! Must not touch: the server's running state. Nothing here writes to a data directory except
//! `restore`, and only into an empty one.

pub mod backup;
pub mod restore;
pub mod verify;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Where the databases go inside a backup directory.
pub const DATABASES_DIR: &str = "databases";
/// Where the blobs go inside a backup directory (`blobs/<did>/<cid>`).
pub const BLOBS_DIR: &str = "blobs";
/// What `manifest.json` says it is.
pub const MANIFEST_FORMAT: &str = "pds-backup";
/// The manifest version this build writes and the newest it restores.
pub const MANIFEST_VERSION: u64 = 1;

/// `manifest.json`: what a backup holds, to check it before restoring.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`] when written.
    pub format_version: u64,
    /// The `pds` version that wrote it.
    pub pds_version: String,
    /// When the backup started and finished (atproto datetimes, UTC).
    pub started_at: String,
    pub finished_at: String,
    /// Every database, as copied (consistent snapshots taken with SQLite's online backup).
    pub databases: Vec<DatabaseEntry>,
    pub blobs: BlobSummary,
    /// Whether `secrets.toml` (dev mode's generated secrets) is included.
    pub secrets_file: bool,
    /// Its hex sha256, checked on restore (absent in backups made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_sha256: Option<String>,
}

/// One database file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseEntry {
    /// Its file name, in `databases/` and in the data directory.
    pub file: String,
    pub bytes: u64,
    /// Hex sha256 of the file.
    pub sha256: String,
}

/// The blobs of a backup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobSummary {
    /// Blob files under `blobs/`.
    pub count: u64,
    /// Their total size.
    pub bytes: u64,
    /// Blobs records reference in the backed-up database that could not be copied: gone from
    /// the blob store (or damaged there) by the time the copy reached them.
    pub missing: Vec<MissingBlob>,
}

/// A referenced blob a backup lacks, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingBlob {
    pub did: String,
    pub cid: String,
    pub reason: String,
}

impl Manifest {
    /// Reads and checks `<dir>/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!(
                "{} has no {MANIFEST_FILE}: not a backup `pds backup` finished",
                dir.display()
            ),
            _ => format!("reading {}: {e}", path.display()),
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a valid backup manifest: {e}", path.display()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!(
                "{} is not a pds backup manifest (format {:?})",
                path.display(),
                manifest.format
            ));
        }
        if manifest.format_version > MANIFEST_VERSION {
            return Err(format!(
                "the backup was written by pds {} in format version {}; this pds {} reads up to \
                 version {MANIFEST_VERSION}: restore it with a newer pds",
                manifest.pds_version,
                manifest.format_version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        let mut seen = Vec::new();
        for db in &manifest.databases {
            // Only the server's own databases, once each: a crafted manifest must not name a
            // WAL file, the secrets, or a path elsewhere.
            if !backup::DATABASES.contains(&db.file.as_str()) || seen.contains(&&db.file) {
                return Err(format!(
                    "the manifest names a database {:?}: a backup holds {} once each",
                    db.file,
                    backup::DATABASES.join(" and ")
                ));
            }
            seen.push(&db.file);
        }
        Ok(manifest)
    }
}

/// The first file found under `dir` (depth first), if any: empty directories do not count.
/// `Ok(None)` also when `dir` does not exist.
fn first_file_under(dir: &Path) -> io::Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Some(found) = first_file_under(&entry.path())? {
                return Ok(Some(found));
            }
        } else {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Copies `from` to `to` in fixed-size chunks (constant memory whatever the size), hashing on
/// the way. Returns the byte count and the sha256.
fn copy_hashed(mut from: impl Read, mut to: impl Write) -> io::Result<(u64, [u8; 32])> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
    to.flush()?;
    Ok((total, hasher.finalize().into()))
}

/// Copies a blob read out of the store into `to` in fixed-size chunks, hashing on the way (as
/// [`copy_hashed`], for the store's async readers: disk or S3). Returns the byte count and the
/// sha256.
fn copy_blob_hashed(
    rt: &tokio::runtime::Runtime,
    mut from: crate::blobs::store::BlobRead,
    mut to: impl Write,
) -> io::Result<(u64, [u8; 32])> {
    use tokio::io::AsyncReadExt;
    rt.block_on(async move {
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 128 * 1024];
        let mut total = 0u64;
        loop {
            let n = from.reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            to.write_all(&buf[..n])?;
            total += n as u64;
        }
        to.flush()?;
        Ok((total, hasher.finalize().into()))
    })
}

/// A runtime for the store's async calls from these (synchronous) commands, and the blob store
/// `config` names, opened for reading beside a running server.
fn blob_store_for_reading(
    config: &crate::config::Config,
) -> Result<
    (
        tokio::runtime::Runtime,
        std::sync::Arc<dyn crate::blobs::store::BlobStore>,
    ),
    String,
> {
    // One worker of its own, so that threads of verify-repos can use it through its handle
    // (a current-thread runtime would not drive their requests).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let store = rt
        .block_on(crate::blobs::open_store_for_reading(config))
        .map_err(|e| e.to_string())?;
    Ok((rt, store))
}

/// The sha256 of a file, streamed.
fn hash_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
    copy_hashed(std::fs::File::open(path)?, io::sink())
}

fn hex(digest: &[u8; 32]) -> String {
    data_encoding::HEXLOWER.encode(digest)
}

/// Makes a directory's entries (files created, renamed or linked in it) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Makes everything written to the file system holding `path` durable: one call after many
/// small files instead of an fsync each.
fn sync_file_system(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(path)?;
        // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    sync_dir(path)?;
    Ok(())
}

/// Creates `path` for writing, failing if it exists; readable by its owner only where the
/// platform has modes (for secrets).
fn create_private(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates `dir` (and its parents) readable by its owner only, where the platform has modes.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens a file of a backup for reading, refusing symbolic links: a backup directory is read as
/// what it holds, never as a pointer to files elsewhere.
fn open_backup_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path)
}

/// Now, as an atproto datetime.
fn now_datetime() -> String {
    crate::accounts::email_tokens::datetime_from_ms(crate::blobs::now_ms())
}

/// `bytes` for people: `512 B`, `1.5 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 kB");
        assert_eq!(human_bytes(2_500_000), "2.5 MB");
    }

    #[test]
    fn empty_directories_hold_no_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(first_file_under(&dir.path().join("absent")).unwrap(), None);
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        assert_eq!(first_file_under(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("a/b/f"), b"x").unwrap();
        assert_eq!(
            first_file_under(dir.path()).unwrap(),
            Some(dir.path().join("a/b/f"))
        );
    }

    #[test]
    fn copies_hash_what_they_copy() {
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let (n, digest) = copy_hashed(&data[..], &mut out).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
        assert_eq!(digest, pds_ipld::sha256(&data));
    }
}
