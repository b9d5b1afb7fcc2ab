//! `com.atproto.repo.uploadBlob` (procedure): store a blob for the caller, to be referenced by
//! a record soon after.
//!
//! The body is the blob itself (any media type). It streams to the blob store while being
//! hashed and counted; past `limits.blob_upload_limit` the upload is refused with 413
//! `PayloadTooLarge` ("request entity too large", as the reference) and nothing is kept. The
//! recorded media type is the content's own when recognised, else the `Content-Type` given
//! (as the reference does). Output: `{"blob": {"$type": "blob", "ref": {"$link"}, "mimeType",
//! "size"}}`, keys in the reference's order.
//!
//! Also here: [`drain_unread_bodies`], the middleware that makes a refusal of a large body
//! reach a client that is still sending it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use pds_ipld::BlobRef;
use serde::Serialize;

use crate::accounts::{self, AccountError};
use crate::api::ApiError;
use crate::auth::AccessAuth;
use crate::blobs::{BlobError, sniff};
use crate::state::AppState;

pub const NSID: &str = "com.atproto.repo.uploadBlob";

#[derive(Debug, Serialize)]
pub struct Output {
    pub blob: BlobOutput,
}

/// A blob object, fields in the order the reference's JSON has them.
#[derive(Debug, Serialize)]
pub struct BlobOutput {
    #[serde(rename = "$type")]
    pub kind: &'static str,
    #[serde(rename = "ref")]
    pub reference: Link,
    #[serde(rename = "mimeType")]
    pub mime_type: String,
    pub size: u64,
}

#[derive(Debug, Serialize)]
pub struct Link {
    #[serde(rename = "$link")]
    pub link: String,
}

impl From<BlobRef> for BlobOutput {
    fn from(blob: BlobRef) -> Self {
        BlobOutput {
            kind: "blob",
            reference: Link {
                link: blob.cid.to_string(),
            },
            mime_type: blob.mime_type,
            size: blob.size,
        }
    }
}

pub async fn handle(
    State(state): State<AppState>,
    auth: AccessAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Output>, ApiError> {
    let did = auth.did.clone();
    let account = state
        .db
        .read(move |store| accounts::by_did(store.connection(), &did))
        .await?
        .ok_or(AccountError::NotFound)?;
    // Deactivated accounts may upload: a migration fills a new account before activating it.
    if account.takendown {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AccountTakedown",
            "Account has been taken down",
        ));
    }
    // Refuse what says it is too large before reading any of it.
    if content_length(&headers).is_some_and(|len| len > state.blobs.upload_limit()) {
        return Err(BlobError::TooLarge.into());
    }
    let declared = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(sniff::declared_type);
    // An OAuth app's `blob:` scope is checked against the type the upload declares (the
    // reference does the same); an upload that declares none needs `blob:*/*`.
    auth.require_blob(declared.as_deref().unwrap_or("*/*"))?;
    let blob = state
        .blobs
        .upload(&auth.did, declared.as_deref(), body)
        .await?;
    state.metrics.blob_uploaded(blob.size);
    Ok(Json(Output { blob: blob.into() }))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// Draining refused bodies
// ---------------------------------------------------------------------------------------------

/// At most this much of a refused body is read and thrown away.
pub const DRAIN_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// For at most this long.
pub const DRAIN_MAX_TIME: Duration = Duration::from_secs(60);
/// A client that sends nothing for this long is not sending its body any more.
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// Middleware: when a request is answered with an error before its body was read to the end
/// (the body-size limit's 413, an upload over the blob limit, a refused token), sends the
/// answer and goes on reading the rest of the body, throwing it away.
///
/// Without this, the server would close the connection with unread bytes in its receive
/// buffer, the kernel would answer the still-sending client with a reset, and a client that
/// writes its whole body before reading would see a broken pipe instead of the JSON error.
/// Bounded by [`DRAIN_MAX_BYTES`], [`DRAIN_MAX_TIME`] and [`DRAIN_IDLE`] (then the connection
/// closes). A body declared larger than the bound, or not sent yet because the client asked
/// `Expect: 100-continue`, is not read at all: the answer goes out with `Connection: close`.
///
/// Install it outside the body-limit layer, so that it sees that layer's refusals.
pub async fn drain_unread_bodies(request: Request, next: Next) -> Response {
    let expects_continue = request
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = content_length(request.headers());
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let shared = Arc::new(Shared {
        body: Mutex::new(Some(body)),
        polled: AtomicBool::new(false),
    });
    let request = Request::from_parts(parts, Body::new(SharedBody(shared.clone())));
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let Some(body) = shared.body.lock().expect("body lock").take() else {
        return response;
    };
    if body.is_end_stream() {
        return response;
    }
    let unsent = expects_continue && !shared.polled.load(Ordering::Relaxed);
    let too_much = declared.is_some_and(|len| len > DRAIN_MAX_BYTES);
    if unsent || too_much {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    } else {
        // The answer goes out now (a client reading while it writes sees it at once); the
        // connection keeps reading the body into this task until it ends or the bounds are hit.
        tokio::spawn(drain(body));
    }
    response
}

/// Reads `body` to its end within the bounds, and drops it (which closes the connection if the
/// end was not reached).
async fn drain(mut body: Body) {
    let work = async {
        let mut read: u64 = 0;
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
            match tokio::time::timeout(DRAIN_IDLE, frame).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        read += data.len() as u64;
                        if read > DRAIN_MAX_BYTES {
                            return;
                        }
                    }
                }
                // The end, a broken body, or a client that stopped sending.
                Ok(None) | Ok(Some(Err(_))) | Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, work).await;
}

/// The request body, shared between the handler (through [`SharedBody`]) and the middleware,
/// which takes back what the handler did not read.
struct Shared {
    body: Mutex<Option<Body>>,
    polled: AtomicBool,
}

struct SharedBody(Arc<Shared>);

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        self.0.polled.store(true, Ordering::Relaxed);
        let mut slot = self.0.body.lock().expect("body lock");
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .body
            .lock()
            .expect("body lock")
            .as_ref()
            .is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .body
            .lock()
            .expect("body lock")
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |b| b.size_hint())
    }
}
