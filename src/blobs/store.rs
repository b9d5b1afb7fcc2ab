//! Where blob bytes live: the [`BlobStore`] trait and its disk implementation.
//!
//! The store knows bytes under `(did, cid)` names and nothing else: hashing, size limits and
//! what is referenced are the service's business ([`super::Blobs`]). An upload is written to a
//! temporary place first and moved under its name only once complete and durable, so a name
//! always holds a whole blob. Another backend (S3-compatible object storage) implements the same
//! trait: a multipart upload to a temporary key, then a copy to the final key.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::SystemTime;

use pds_ipld::Cid;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, BufWriter};

/// Refuses a `did` that is not a DID: stores make it one segment of a name (a directory, an
/// object key), which nothing else may become.
pub(super) fn check_did(did: &str) -> io::Result<()> {
    if pds_syntax::Did::new(did).is_err() || did.contains(['/', '\\', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a DID: {did:?}"),
        ));
    }
    Ok(())
}

/// A boxed future, so that the trait can be used as `dyn BlobStore`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Bytes being read out of the store.
pub struct BlobRead {
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    /// How many bytes `reader` yields.
    pub len: u64,
}

/// A stored blob, as a listing of the store sees it (for sweeping files nobody knows about).
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub cid: Cid,
    pub modified: SystemTime,
}

/// Blob bytes by account and CID.
pub trait BlobStore: Send + Sync + 'static {
    /// Starts writing a new blob to a temporary place.
    fn begin(&self) -> BoxFuture<'_, io::Result<Box<dyn BlobUpload>>>;

    /// Reads `did`'s blob `cid`, from byte `offset`, at most `len` bytes (`None`: to the end).
    /// `Ok(None)` if there is no such blob.
    fn read<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
        offset: u64,
        len: Option<u64>,
    ) -> BoxFuture<'a, io::Result<Option<BlobRead>>>;

    /// The size of `did`'s blob `cid` as stored, without reading it; `None` if there is none.
    fn size<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<Option<u64>>>;

    /// Deletes `did`'s blob `cid`; true if it existed.
    fn delete<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<bool>>;

    /// Deletes every blob of `did`.
    fn delete_account<'a>(&'a self, did: &'a str) -> BoxFuture<'a, io::Result<()>>;

    /// The accounts that have blobs stored.
    fn list_accounts(&self) -> BoxFuture<'_, io::Result<Vec<String>>>;

    /// The blobs stored for `did`.
    fn list<'a>(&'a self, did: &'a str) -> BoxFuture<'a, io::Result<Vec<StoredBlob>>>;
}

/// A blob being written. Dropping it without [`BlobUpload::commit`] discards what was written.
pub trait BlobUpload: Send {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;

    /// Makes the bytes written durable and stores them as `did`'s blob `cid`, atomically:
    /// readers see the whole blob or none. An existing blob of that name (the same bytes, since
    /// the name is their hash) is replaced.
    fn commit<'a>(self: Box<Self>, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<()>>;
}

/// Blobs as files: `<root>/<did>/<cid>`, the reference PDS's disk layout, so an operator can
/// point this server at a reference PDS's blob directory. Uploads are written under
/// `<root>/.tmp/` (same file system, so the final rename is atomic).
#[derive(Debug, Clone)]
pub struct DiskBlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

/// Temporary uploads live here, inside the root; no DID starts with a dot.
const TMP_DIR: &str = ".tmp";
/// Upload writes are gathered into chunks this large before they go to the file.
const WRITE_BUFFER: usize = 1024 * 1024;

impl DiskBlobStore {
    /// Opens (creating) the store at `root` and deletes temporary files a previous run left.
    pub fn open(root: &Path) -> io::Result<DiskBlobStore> {
        let tmp = root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(DiskBlobStore {
            root: root.to_owned(),
            tmp,
        })
    }

    /// The store at `root` for reading only, leaving everything as it is (a server may be
    /// writing to it at the same time, e.g. during `pds export`).
    pub fn open_for_reading(root: &Path) -> DiskBlobStore {
        DiskBlobStore {
            root: root.to_owned(),
            tmp: root.join(TMP_DIR),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<did>`. The DID becomes one path component, so it must be a valid DID (which
    /// cannot contain `/`, and is never `.` or `..`).
    fn account_dir(&self, did: &str) -> io::Result<PathBuf> {
        check_did(did)?;
        Ok(self.root.join(did))
    }

    fn blob_path(&self, did: &str, cid: &Cid) -> io::Result<PathBuf> {
        Ok(self.account_dir(did)?.join(cid.to_string()))
    }
}

impl BlobStore for DiskBlobStore {
    fn begin(&self) -> BoxFuture<'_, io::Result<Box<dyn BlobUpload>>> {
        Box::pin(async move {
            let name = format!("upload-{}", crate::auth::random_id());
            let path = self.tmp.join(name);
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await?;
            Ok(Box::new(DiskUpload {
                file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
                path: path.clone(),
                root: self.root.clone(),
                store: self.clone(),
                done: false,
            }) as Box<dyn BlobUpload>)
        })
    }

    fn read<'a>(
        &'a self,
        did: &'a str,
        cid: &'a Cid,
        offset: u64,
        len: Option<u64>,
    ) -> BoxFuture<'a, io::Result<Option<BlobRead>>> {
        Box::pin(async move {
            let path = self.blob_path(did, cid)?;
            let mut file = match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let size = file.metadata().await?.len();
            let start = offset.min(size);
            let len = len.map_or(size - start, |len| len.min(size - start));
            if start > 0 {
                file.seek(io::SeekFrom::Start(start)).await?;
            }
            use tokio::io::AsyncReadExt;
            Ok(Some(BlobRead {
                reader: Box::pin(file.take(len)),
                len,
            }))
        })
    }

    fn size<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            let path = self.blob_path(did, cid)?;
            match tokio::fs::metadata(&path).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn delete<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<bool>> {
        Box::pin(async move {
            let path = self.blob_path(did, cid)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn delete_account<'a>(&'a self, did: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let dir = self.account_dir(did)?;
            match tokio::fs::remove_dir_all(&dir).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn list_accounts(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let root = self.root.clone();
            tokio::task::spawn_blocking(move || {
                let mut dids = Vec::new();
                for entry in std::fs::read_dir(&root)? {
                    let entry = entry?;
                    if !entry.file_type()?.is_dir() {
                        continue;
                    }
                    if let Some(name) = entry.file_name().to_str()
                        && pds_syntax::Did::new(name).is_ok()
                    {
                        dids.push(name.to_owned());
                    }
                }
                Ok(dids)
            })
            .await
            .map_err(io::Error::other)?
        })
    }

    fn list<'a>(&'a self, did: &'a str) -> BoxFuture<'a, io::Result<Vec<StoredBlob>>> {
        Box::pin(async move {
            let dir = self.account_dir(did)?;
            tokio::task::spawn_blocking(move || {
                let mut blobs = Vec::new();
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(blobs),
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let entry = entry?;
                    let Some(cid) = entry
                        .file_name()
                        .to_str()
                        .and_then(|name| pds_ipld::parse_cid(name).ok())
                    else {
                        continue;
                    };
                    let meta = entry.metadata()?;
                    if meta.is_file() {
                        blobs.push(StoredBlob {
                            cid,
                            modified: meta.modified()?,
                        });
                    }
                }
                Ok(blobs)
            })
            .await
            .map_err(io::Error::other)?
        })
    }
}

struct DiskUpload {
    file: Option<BufWriter<tokio::fs::File>>,
    path: PathBuf,
    root: PathBuf,
    store: DiskBlobStore,
    done: bool,
}

impl BlobUpload for DiskUpload {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match self.file.as_mut() {
                Some(file) => file.write_all(chunk).await,
                None => Err(io::Error::other("upload already finished")),
            }
        })
    }

    fn commit<'a>(
        mut self: Box<Self>,
        did: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let dir = self.store.account_dir(did)?;
            let target = dir.join(cid.to_string());
            let mut file = self
                .file
                .take()
                .ok_or_else(|| io::Error::other("upload already finished"))?;
            file.flush().await?;
            let file = file.into_inner().into_std().await;
            let (tmp, root) = (self.path.clone(), self.root.clone());
            tokio::task::spawn_blocking(move || -> io::Result<()> {
                file.sync_all()?;
                drop(file);
                let created = !dir.exists();
                std::fs::create_dir_all(&dir)?;
                std::fs::rename(&tmp, &target)?;
                // The rename (and a new account directory) must be durable too.
                sync_dir(&dir)?;
                if created {
                    sync_dir(&root)?;
                }
                Ok(())
            })
            .await
            .map_err(io::Error::other)??;
            self.done = true;
            Ok(())
        })
    }
}

impl Drop for DiskUpload {
    fn drop(&mut self) {
        if !self.done {
            // Abandoned (refused, failed, or the client went away): nothing of it stays.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
