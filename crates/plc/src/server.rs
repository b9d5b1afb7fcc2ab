//! The directory's HTTP API, shaped like the public directory's:
//!
//! | request | answer |
//! |---|---|
//! | `POST /:did` | submit an operation (JSON body); 200, or 400 `{message}` when refused |
//! | `GET /:did` | the DID document (`application/did+ld+json`) |
//! | `GET /:did/data` | the state: `{did, verificationMethods, rotationKeys, alsoKnownAs, services}` |
//! | `GET /:did/log` | the active operations, oldest first |
//! | `GET /:did/log/audit` | every entry: `{did, operation, cid, nullified, createdAt}` |
//! | `GET /:did/log/last` | the newest active operation (a tombstone for a deactivated DID) |
//! | `GET /_health` | `{version}`, or 503 if the database does not answer |
//!
//! An unknown DID is 404 `DID not registered: <did>`; the document and data
//! of a tombstoned DID are 410 `DID not available: <did>`. Errors are JSON
//! `{"message": ...}`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::PlcError;
use crate::document::{DidDocument, DocumentData};
use crate::log::LogEntry;
use crate::op::SignedOp;
use crate::store::Store;

/// Largest request body accepted. An operation is at most 4000 bytes of
/// DAG-CBOR; its JSON is larger but nowhere near this.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// After a shutdown signal, open requests get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The directory's routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/_health", get(health))
        .route("/{did}", get(document).post(submit))
        .route("/{did}/data", get(data))
        .route("/{did}/log", get(active_log))
        .route("/{did}/log/audit", get(audit_log))
        .route("/{did}/log/last", get(last_op))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(store)
}

/// Serves `router(store)` on `listener` until `shutdown` completes, then
/// gives open requests a few seconds to finish.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(store)).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    let mut server = std::pin::pin!(std::future::IntoFuture::into_future(server));
    tokio::select! {
        result = &mut server => return result,
        () = shutdown => {}
    }
    let _ = stop.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("requests still open after the shutdown grace period; exiting anyway");
            Ok(())
        }
    }
}

/// `pds plc serve`: opens the store at `db`, listens on `bind:port`, logs
/// `listening on http://ADDR`, and serves until SIGTERM or SIGINT.
pub async fn run(bind: IpAddr, port: u16, db: &Path) -> Result<(), RunError> {
    // Signal handlers go in before binding, so a signal right after the
    // "listening" line is handled rather than killing the process.
    let signals = shutdown_signal().map_err(RunError::Signals)?;
    let store = Store::open(db).map_err(RunError::Store)?;
    let addr = SocketAddr::new(bind, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(RunError::Serve)?;
    // Same line as the PDS logs: scripts find the address after
    // `listening on http://`.
    tracing::info!(db = %db.display(), "listening on http://{bound}");
    serve(listener, store, async move {
        let signal = signals.await;
        tracing::info!("received {signal}, shutting down");
    })
    .await
    .map_err(RunError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// Why [`run`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The database could not be opened.
    #[error("cannot open the PLC database: {0}")]
    Store(PlcError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    /// The server failed while running.
    #[error("server failed: {0}")]
    Serve(io::Error),
}

/// Resolves with the signal's name on SIGTERM or SIGINT (Ctrl-C elsewhere).
fn shutdown_signal() -> io::Result<impl Future<Output = &'static str>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        })
    }
}

/// An error answer: `{"message": ...}` with the error's status.
struct ApiError(PlcError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &self.0 {
            // Say what went wrong in the log, not to the client.
            PlcError::Storage(e) | PlcError::InvalidLog(e) => {
                tracing::error!(error = %e, "PLC store failure");
                "Internal Server Error".to_owned()
            }
            e => e.to_string(),
        };
        (status, axum::Json(json!({ "message": message }))).into_response()
    }
}

impl From<PlcError> for ApiError {
    fn from(e: PlcError) -> ApiError {
        ApiError(e)
    }
}

/// Runs a blocking store call off the async workers.
async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, PlcError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError(PlcError::Storage(format!("store task failed: {e}"))))?
        .map_err(ApiError)
}

fn json_response<T: Serialize>(content_type: &'static str, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => ApiError(PlcError::Storage(format!("cannot serialize: {e}"))).into_response(),
    }
}

async fn health(State(store): State<Store>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match blocking(&store, Store::health_check).await {
        Ok(()) => axum::Json(json!({ "version": version })).into_response(),
        Err(ApiError(e)) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "version": version, "error": "Service Unavailable" })),
            )
                .into_response()
        }
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "message": "Not Found" })),
    )
        .into_response()
}

async fn submit(
    State(store): State<Store>,
    UrlPath(did): UrlPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let op = SignedOp::from_json_bytes(&body)?;
    let entry = blocking(&store, move |s| s.submit(&did, &op)).await?;
    tracing::debug!(did = %entry.did, cid = %entry.cid, "operation accepted");
    Ok(StatusCode::OK.into_response())
}

/// The newest active entry, or 404.
async fn last_entry(store: &Store, did: String) -> Result<LogEntry, ApiError> {
    let lookup = did.clone();
    blocking(store, move |s| s.last_entry(&lookup))
        .await?
        .ok_or(ApiError(PlcError::NotRegistered(did)))
}

/// The DID's current state, or 404 / 410.
async fn current_data(store: &Store, did: String) -> Result<DocumentData, ApiError> {
    let entry = last_entry(store, did.clone()).await?;
    let data = entry
        .operation
        .data()
        .ok_or(ApiError(PlcError::NotAvailable(did.clone())))?;
    Ok(DocumentData::new(&did, data))
}

async fn document(
    State(store): State<Store>,
    UrlPath(did): UrlPath<String>,
) -> Result<Response, ApiError> {
    let data = current_data(&store, did).await?;
    let doc = DidDocument::new(&data.did, &data.plc_data())?;
    Ok(json_response("application/did+ld+json", &doc))
}

async fn data(
    State(store): State<Store>,
    UrlPath(did): UrlPath<String>,
) -> Result<Response, ApiError> {
    let data = current_data(&store, did).await?;
    Ok(json_response("application/json", &data))
}

async fn active_log(
    State(store): State<Store>,
    UrlPath(did): UrlPath<String>,
) -> Result<Response, ApiError> {
    let lookup = did.clone();
    let ops = blocking(&store, move |s| s.active_log(&lookup)).await?;
    if ops.is_empty() {
        return Err(ApiError(PlcError::NotRegistered(did)));
    }
    Ok(json_response("application/json", &ops))
}

async fn audit_log(
    State(store): State<Store>,
    UrlPath(did): UrlPath<String>,
) -> Result<Response, ApiError> {
    let lookup = did.clone();
    let log = blocking(&store, move |s| s.audit_log(&lookup)).await?;
    if log.is_empty() {
        return Err(ApiError(PlcError::NotRegistered(did)));
    }
    Ok(json_response("application/json", &log))
}

async fn last_op(
    State(store): State<Store>,
    UrlPath(did): UrlPath<String>,
) -> Result<Response, ApiError> {
    let entry = last_entry(&store, did).await?;
    Ok(json_response("application/json", &entry.operation))
}
