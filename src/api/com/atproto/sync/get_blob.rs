//! `com.atproto.sync.getBlob` (query): a blob's bytes, by account DID and CID. Public.
//!
//! As the reference: only blobs a record references are served (an upload not yet used is
//! `BlobNotFound`); the `Content-Type` is the media type recorded at upload, with
//! `x-content-type-options: nosniff` and `content-security-policy: default-src 'none'; sandbox`
//! so that a browser never runs an uploaded file as a page of this origin; errors are 400
//! `BlobNotFound`, `RepoNotFound`, `RepoTakendown`, `RepoDeactivated`. Beyond the reference: a
//! single byte range (`Range: bytes=...`, 206, or 416 if unsatisfiable) for video players and
//! resumable downloads, and a strong `ETag` (the CID) with `If-None-Match` and `If-Range`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, IF_RANGE,
    RANGE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, ReadBuf};

use super::{Caller, Params, assert_repo_available};
use crate::api::ApiError;
use crate::blobs::BlobRead;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getBlob";

/// The reference's answer for a blob that is not there (or not served).
fn blob_not_found() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "BlobNotFound", "Blob not found")
}

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let did = params.did("did")?;
    let cid = params.cid("cid")?;
    assert_repo_available(&state, &did, &caller).await?;
    let (mime, size) = state
        .blobs
        .servable(&did, &cid)
        .await?
        .ok_or_else(blob_not_found)?;

    let etag = HeaderValue::from_str(&format!("\"{cid}\"")).map_err(ApiError::internal)?;
    let mut out = HeaderMap::new();
    out.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    out.insert(ETAG, etag.clone());
    out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );

    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }

    // A Range is honoured unless an If-Range names another version.
    let range = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| {
            headers
                .get(IF_RANGE)
                .is_none_or(|v| v.as_bytes() == etag.as_bytes())
        })
        .map_or(ByteRange::Full, |v| ByteRange::parse(v, size));

    let (status, offset, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Part { start, end } => {
            let value = format!("bytes {start}-{end}/{size}");
            out.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&value).map_err(ApiError::internal)?,
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        ByteRange::Unsatisfiable => {
            let value = format!("bytes */{size}");
            let error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRequest",
                "Range Not Satisfiable",
            );
            let mut response = error.into_response();
            response.headers_mut().insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&value).map_err(ApiError::internal)?,
            );
            return Ok(response);
        }
    };

    let read = state
        .blobs
        .store()
        .read(&did, &cid, offset, Some(len))
        .await
        .map_err(ApiError::internal)?;
    let Some(read) = read else {
        // A row without its file: the store and the database disagree.
        tracing::warn!(%did, %cid, "blob recorded but missing from the blob store");
        return Err(blob_not_found());
    };
    if read.len != len {
        return Err(ApiError::internal(format!(
            "blob {cid} of {did} is {} bytes off in the store",
            len.abs_diff(read.len)
        )));
    }
    out.insert(CONTENT_LENGTH, HeaderValue::from(len));
    Ok((status, out, Body::new(FileBody::new(read))).into_response())
}

/// `If-None-Match`: `*` or a list of entity tags (weak ones compare equal too).
fn etag_matches(header: &str, etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

/// What a `Range` header asks of a blob of known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// No usable range: the whole blob. Several ranges, another unit or bad syntax are
    /// ignored, as HTTP allows.
    Full,
    /// Bytes `start..=end`, within the blob.
    Part { start: u64, end: u64 },
    /// The range starts past the end.
    Unsatisfiable,
}

impl ByteRange {
    fn parse(header: &str, size: u64) -> ByteRange {
        let header = header.trim();
        let Some(spec) = header
            .get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .map(|_| header[6..].trim())
        else {
            return ByteRange::Full;
        };
        if spec.contains(',') {
            return ByteRange::Full;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return ByteRange::Full;
        };
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match (first.trim(), last.trim()) {
            ("", suffix) => match number(suffix) {
                None => ByteRange::Full,
                Some(0) => ByteRange::Unsatisfiable,
                Some(_) if size == 0 => ByteRange::Unsatisfiable,
                Some(n) => ByteRange::Part {
                    start: size.saturating_sub(n),
                    end: size - 1,
                },
            },
            (first, last) => {
                let Some(start) = number(first) else {
                    return ByteRange::Full;
                };
                let end = match last {
                    "" => None,
                    last => match number(last) {
                        Some(end) if end >= start => Some(end),
                        _ => return ByteRange::Full,
                    },
                };
                if start >= size {
                    return ByteRange::Unsatisfiable;
                }
                ByteRange::Part {
                    start,
                    end: end.map_or(size - 1, |end| end.min(size - 1)),
                }
            }
        }
    }
}

/// Streams a blob out of the store in chunks, never holding more than one.
struct FileBody {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    remaining: u64,
    buf: Box<[u8]>,
}

const CHUNK: usize = 64 * 1024;

impl FileBody {
    fn new(read: BlobRead) -> FileBody {
        let size = usize::try_from(read.len).unwrap_or(CHUNK).clamp(1, CHUNK);
        FileBody {
            reader: read.reader,
            remaining: read.len,
            buf: vec![0; size].into_boxed_slice(),
        }
    }
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(this.buf.len());
        let mut buf = ReadBuf::new(&mut this.buf[..want]);
        match this.reader.as_mut().poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                if filled.is_empty() {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob ended early",
                    ))));
                }
                let chunk = Bytes::copy_from_slice(filled);
                this.remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{self, *};

    #[test]
    fn ranges() {
        let cases = [
            ("bytes=0-9", 100, Part { start: 0, end: 9 }),
            ("bytes=90-", 100, Part { start: 90, end: 99 }),
            ("bytes=90-500", 100, Part { start: 90, end: 99 }),
            ("bytes=-10", 100, Part { start: 90, end: 99 }),
            ("bytes=-500", 100, Part { start: 0, end: 99 }),
            ("BYTES= 5-5", 100, Part { start: 5, end: 5 }),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=5-1", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes=", 100, Full),
            ("bytes=99999999999999999999999-", 100, Full),
            ("", 100, Full),
        ];
        for (header, size, want) in cases {
            assert_eq!(ByteRange::parse(header, size), want, "{header} of {size}");
        }
    }
}
