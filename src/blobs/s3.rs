//! Blobs in an S3-compatible bucket (`PDS_BLOBSTORE_S3_*`): the [`BlobStore`] trait over S3's
//! object API, for operators who outgrow one disk.
//!
//! Objects are named as the reference PDS names them, `blocks/<did>/<cid>`, so a reference
//! server's bucket can be taken over as it is. An upload is written to a local temporary file
//! (its CID is known only once the last byte is hashed) and sent with one `PUT` to its final
//! name when committed: S3 makes an object visible whole or not at all, so a name always holds
//! a whole blob, as on disk. Reads are `GET`s with a `Range` for byte ranges, streamed. Requests
//! are signed with rusty-s3 (AWS signature v4, as presigned URLs) and sent with reqwest.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pds_ipld::Cid;
use reqwest::StatusCode;
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::store::{BlobRead, BlobStore, BlobUpload, BoxFuture, StoredBlob};
use crate::config::S3Config;

/// Where blobs live in the bucket (the reference's layout).
const PREFIX: &str = "blocks/";
/// How long a signed request stays valid: it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(5 * 60);
/// Connecting to the bucket's service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads and listings: how long the service may take to start answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A bucket of blobs.
#[derive(Clone)]
pub struct S3BlobStore {
    bucket: Bucket,
    credentials: Option<Credentials>,
    http: reqwest::Client,
    /// Local temporary files of uploads in progress.
    tmp: PathBuf,
    upload_timeout: Duration,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.bucket.base_url().as_str())
            .finish_non_exhaustive()
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A request that failed, without its URL: a presigned URL carries its signature, which must
/// not reach a log.
fn failed(e: reqwest::Error) -> io::Error {
    other(e.without_url())
}

impl S3BlobStore {
    /// The bucket `config` names; uploads in progress are kept under `tmp` (a local directory,
    /// emptied here of what a previous run left, unless `for_reading`: a command reading beside
    /// a running server, such as `pds export`, leaves the server's uploads alone).
    pub fn open(config: &S3Config, tmp: &Path, for_reading: bool) -> io::Result<S3BlobStore> {
        let endpoint = url::Url::parse(&config.endpoint).map_err(other)?;
        let style = if config.force_path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(other)?;
        let credentials = match (&config.access_key_id, &config.secret_access_key) {
            (Some(key), Some(secret)) => Some(Credentials::new(key.clone(), secret.clone())),
            _ => None,
        };
        let tls = pds_identity::tls_config().map_err(other)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only()
            .build()
            .map_err(other)?;
        std::fs::create_dir_all(tmp)?;
        if !for_reading {
            for entry in std::fs::read_dir(tmp)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(S3BlobStore {
            bucket,
            credentials,
            http,
            tmp: tmp.to_owned(),
            upload_timeout: config.upload_timeout,
        })
    }

    /// `blocks/<did>/<cid>`; the DID must be a DID (it becomes a key segment).
    fn key(did: &str, cid: &Cid) -> io::Result<String> {
        Ok(format!("{}{cid}", Self::account_prefix(did)?))
    }

    fn account_prefix(did: &str) -> io::Result<String> {
        super::store::check_did(did)?;
        Ok(format!("{PREFIX}{did}/"))
    }

    /// An error for a response the service refused.
    async fn refused(what: &str, response: reqwest::Response) -> io::Error {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let code = body
            .split("<Code>")
            .nth(1)
            .and_then(|rest| rest.split("</Code>").next())
            .unwrap_or("");
        other(format!("S3 {what}: {status} {code}"))
    }

    /// Every listing page of `prefix` (with `delimiter`, the common prefixes too).
    async fn list_all(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> io::Result<Vec<rusty_s3::actions::ListObjectsV2Response>> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.credentials.as_ref());
            action.with_prefix(prefix);
            if let Some(delimiter) = delimiter {
                action.with_delimiter(delimiter);
            }
            if let Some(token) = &token {
                action.with_continuation_token(token.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let response = self
                .http
                .get(url)
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(failed)?;
            if !response.status().is_success() {
                return Err(Self::refused("list", response).await);
            }
            let text = response.text().await.map_err(failed)?;
            let page = ListObjectsV2::parse_response(&text).map_err(other)?;
            token = page.next_continuation_token.clone();
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }

    async fn delete_key(&self, key: &str) -> io::Result<()> {
        let url = self
            .bucket
            .delete_object(self.credentials.as_ref(), key)
            .sign(SIGNED_FOR);
        let response = self
            .http
            .delete(url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(failed)?;
        match response.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(Self::refused("delete", response).await),
        }
    }

    async fn exists(&self, key: &str) -> io::Result<bool> {
        Ok(self.head(key).await?.is_some())
    }

    /// The object's size, from a `HEAD`; `None` if there is no such object.
    async fn head(&self, key: &str) -> io::Result<Option<u64>> {
        let url = self
            .bucket
            .head_object(self.credentials.as_ref(), key)
            .sign(SIGNED_FOR);
        let response = self
            .http
            .head(url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(failed)?;
        match response.status() {
            // The header itself: a HEAD response has no body, so its body length says 0.
            s if s.is_success() => Ok(Some(
                response
                    .headers()
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refused("head", response).await),
        }
    }
}

impl BlobStore for S3BlobStore {
    fn begin(&self) -> BoxFuture<'_, io::Result<Box<dyn BlobUpload>>> {
        Box::pin(async move {
            let mut name = [0u8; 16];
            getrandom::fill(&mut name).map_err(other)?;
            let path = self.tmp.join(data_encoding::HEXLOWER.encode(&name));
            let file = tokio::fs::File::create(&path).await?;
            let upload: Box<dyn BlobUpload> = Box::new(S3Upload {
                store: self.clone(),
                file: Some(BufWriter::with_capacity(1024 * 1024, file)),
                path,
                len: 0,
            });
            Ok(upload)
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
            let key = Self::key(did, cid)?;
            let url = self
                .bucket
                .get_object(self.credentials.as_ref(), &key)
                .sign(SIGNED_FOR);
            let mut request = self.http.get(url);
            let ranged = offset > 0 || len.is_some();
            if ranged {
                if len == Some(0) {
                    // An empty range: nothing to fetch, if the object is there.
                    return Ok(self.exists(&key).await?.then(|| BlobRead {
                        reader: Box::pin(tokio::io::empty()),
                        len: 0,
                    }));
                }
                let range = match len {
                    Some(len) => format!("bytes={offset}-{}", offset + len - 1),
                    None => format!("bytes={offset}-"),
                };
                request = request.header(reqwest::header::RANGE, range);
            }
            let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
                .await
                .map_err(|_| other("S3 read: no answer in time"))?
                .map_err(failed)?;
            match response.status() {
                StatusCode::NOT_FOUND => return Ok(None),
                // A range past the end of the blob: none of it.
                StatusCode::RANGE_NOT_SATISFIABLE => {
                    return Ok(Some(BlobRead {
                        reader: Box::pin(tokio::io::empty()),
                        len: 0,
                    }));
                }
                // A range asked for must come back as one: a whole object in its place would
                // be served as the part.
                StatusCode::PARTIAL_CONTENT if ranged => {}
                StatusCode::OK if !ranged => {}
                s if s.is_success() => {
                    return Err(other(format!("S3 read: {s} to a request with a range")));
                }
                _ => return Err(Self::refused("read", response).await),
            }
            let len = response
                .content_length()
                .ok_or_else(|| other("S3 read: no content length"))?;
            // A body that stops coming ends in an error instead of holding the reader forever.
            let body = futures_util::TryStreamExt::map_err(response.bytes_stream(), failed);
            let stream = futures_util::stream::unfold(Box::pin(body), |mut body| async move {
                match tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    futures_util::StreamExt::next(&mut body),
                )
                .await
                {
                    Ok(Some(item)) => Some((item, body)),
                    Ok(None) => None,
                    Err(_) => Some((Err(other("S3 read: the body stalled")), body)),
                }
            });
            Ok(Some(BlobRead {
                reader: Box::pin(tokio_util::io::StreamReader::new(stream)),
                len,
            }))
        })
    }

    fn size<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move { self.head(&Self::key(did, cid)?).await })
    }

    fn delete<'a>(&'a self, did: &'a str, cid: &'a Cid) -> BoxFuture<'a, io::Result<bool>> {
        Box::pin(async move {
            let key = Self::key(did, cid)?;
            let existed = self.exists(&key).await?;
            self.delete_key(&key).await?;
            Ok(existed)
        })
    }

    fn delete_account<'a>(&'a self, did: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let prefix = Self::account_prefix(did)?;
            for page in self.list_all(&prefix, None).await? {
                for object in page.contents {
                    self.delete_key(&object.key).await?;
                }
            }
            Ok(())
        })
    }

    fn list_accounts(&self) -> BoxFuture<'_, io::Result<Vec<String>>> {
        Box::pin(async move {
            let mut accounts = Vec::new();
            for page in self.list_all(PREFIX, Some("/")).await? {
                for common in page.common_prefixes {
                    let did = common
                        .prefix
                        .strip_prefix(PREFIX)
                        .and_then(|rest| rest.strip_suffix('/'))
                        .unwrap_or_default();
                    if pds_syntax::Did::new(did).is_ok() {
                        accounts.push(did.to_owned());
                    }
                }
            }
            Ok(accounts)
        })
    }

    fn list<'a>(&'a self, did: &'a str) -> BoxFuture<'a, io::Result<Vec<StoredBlob>>> {
        Box::pin(async move {
            let prefix = Self::account_prefix(did)?;
            let mut blobs = Vec::new();
            for page in self.list_all(&prefix, None).await? {
                for object in page.contents {
                    let Some(name) = object.key.strip_prefix(&prefix) else {
                        continue;
                    };
                    let Ok(cid) = pds_ipld::parse_cid(name) else {
                        continue;
                    };
                    // Unknown or unreadable times count as now: never old enough to sweep.
                    let modified = object
                        .last_modified
                        .as_deref()
                        .and_then(parse_s3_time)
                        .unwrap_or_else(SystemTime::now);
                    blobs.push(StoredBlob { cid, modified });
                }
            }
            Ok(blobs)
        })
    }
}

/// An S3 `LastModified` (`2024-01-02T03:04:05.000Z`, UTC), to the second.
fn parse_s3_time(text: &str) -> Option<SystemTime> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// An upload on its way to the bucket: a local temporary file until committed.
struct S3Upload {
    store: S3BlobStore,
    file: Option<BufWriter<tokio::fs::File>>,
    path: PathBuf,
    len: u64,
}

impl BlobUpload for S3Upload {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let file = self
                .file
                .as_mut()
                .ok_or_else(|| other("upload already ended"))?;
            file.write_all(chunk).await?;
            self.len += chunk.len() as u64;
            Ok(())
        })
    }

    fn commit<'a>(
        mut self: Box<Self>,
        did: &'a str,
        cid: &'a Cid,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let key = S3BlobStore::key(did, cid)?;
            let mut file = self
                .file
                .take()
                .ok_or_else(|| other("upload already ended"))?;
            file.flush().await?;
            drop(file);
            let body = tokio::fs::File::open(&self.path).await?;
            let url = self
                .store
                .bucket
                .put_object(self.store.credentials.as_ref(), &key)
                .sign(SIGNED_FOR);
            let sent = self
                .store
                .http
                .put(url)
                .header(reqwest::header::CONTENT_LENGTH, self.len)
                .body(reqwest::Body::from(body))
                .timeout(self.store.upload_timeout)
                .send()
                .await
                .map_err(failed)?;
            if !sent.status().is_success() {
                return Err(S3BlobStore::refused("upload", sent).await);
            }
            Ok(())
        })
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_times() {
        let at = |t: &str| {
            parse_s3_time(t).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs())
        };
        assert_eq!(at("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(at("2024-03-01T12:34:56.789Z"), Some(1_709_296_496));
        assert_eq!(at("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(at("not a time"), None);
    }
}
