//! `com.atproto.sync.getRepo` (query, public): a whole repository as a CAR file, root = the head
//! commit; with `since` (a rev), only the blocks written by the commits after it. What relays
//! and AppViews fetch to (re)index an account.
//!
//! The CAR is streamed: a blocking thread reads the blocks from SQLite inside one read
//! transaction (one consistent snapshot, however slowly the client reads) and writes them, in
//! chunks, into a small bounded channel that feeds the response body. When the client reads
//! slowly the thread waits, so the server holds a few chunks of the repo at a time, never the
//! whole of it; when the client goes away the thread stops. An error before the first byte (a
//! repo that vanished) is the usual XRPC error; one after it cuts the response short, which the
//! client sees as a broken transfer rather than a truncated CAR it might take as complete.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use pds_storage::{StorageError, sync_reads};
use tokio::sync::mpsc;

use super::{CAR_MEDIA_TYPE, Caller, Params, assert_repo_available};
use crate::api::ApiError;
use crate::state::AppState;

pub const NSID: &str = "com.atproto.sync.getRepo";

/// The size of the pieces the CAR is sent in.
const CHUNK_BYTES: usize = 64 * 1024;
/// How many chunks may wait for the client: the memory one download can hold.
const CHUNKS_IN_FLIGHT: usize = 4;

pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Response, ApiError> {
    let did = params.did("did")?;
    let since = params.tid("since")?;
    assert_repo_available(&state, &did, &caller).await?;
    stream_repo_car(&state, did, since).await
}

/// The response streaming `did`'s repo as a CAR (only what followed `since`, if given).
pub async fn stream_repo_car(
    state: &AppState,
    did: String,
    since: Option<String>,
) -> Result<Response, ApiError> {
    let (chunks, mut received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let failures = chunks.clone();
    let db = state.db.clone();
    let export_did = did.clone();
    tokio::spawn(async move {
        // Paced by the client: it must not take one of the ordinary reads' slots.
        let exported = db
            .read_streaming(move |store| {
                let out = ChunkWriter::new(chunks);
                sync_reads::write_repo_car(store, &export_did, since.as_deref(), out)
            })
            .await;
        if let Err(e) = exported {
            if failures.is_closed() {
                tracing::debug!(error = %e, "getRepo: the client went away");
            } else {
                // Ends the response: with an error answer if nothing was sent yet, else cut short.
                let _ = failures.send(Err(e)).await;
            }
        }
    });

    let first = match received.recv().await {
        Some(Ok(first)) => first,
        Some(Err(StorageError::RepoNotFound(_))) => {
            return Err(ApiError::invalid_request(format!(
                "Could not find repo for DID: {did}"
            )));
        }
        Some(Err(e)) => return Err(ApiError::internal(e)),
        None => return Err(ApiError::internal("the repo export ended without output")),
    };
    let body = CarBody {
        first: Some(first),
        rest: received,
    };
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static(CAR_MEDIA_TYPE))],
        Body::new(body),
    )
        .into_response())
}

type Chunk = Result<Bytes, StorageError>;

/// The export's `io::Write`: gathers bytes into chunks and hands each to the response, waiting
/// while the channel is full. Runs on a blocking thread (it blocks by design).
struct ChunkWriter {
    buf: Vec<u8>,
    chunks: mpsc::Sender<Chunk>,
}

impl ChunkWriter {
    fn new(chunks: mpsc::Sender<Chunk>) -> ChunkWriter {
        ChunkWriter {
            buf: Vec::with_capacity(CHUNK_BYTES),
            chunks,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.chunks
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

/// The response body: the first chunk (awaited before answering, to turn an early failure into
/// an XRPC error), then the rest as the export produces it.
struct CarBody {
    first: Option<Bytes>,
    rest: mpsc::Receiver<Chunk>,
}

impl HttpBody for CarBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(first))));
        }
        match self.rest.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(http_body::Frame::data(chunk)))),
            Poll::Ready(Some(Err(e))) => {
                tracing::error!(error = %e, "getRepo: the export failed mid-stream");
                Poll::Ready(Some(Err(io::Error::other("the repo export failed"))))
            }
        }
    }
}
