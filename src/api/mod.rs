//! The HTTP surface: routes, XRPC handlers, and the middleware around them.
//!
//! Handlers live in a tree that mirrors NSIDs (`com/atproto/server/
//! describe_server.rs` for `com.atproto.server.describeServer`), one function
//! per method, thin: parse the request, call the layer below, shape the output.
//! Errors are [`ApiError`]s.

pub mod app;
pub mod basic;
pub mod com;
pub mod error;
pub mod input;
pub mod params;
pub mod rate_limit;
pub mod xrpc;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::cors::{AllowHeaders, AllowMethods, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

pub use error::ApiError;
pub use input::{XrpcJson, XrpcJsonOrEmpty};
pub use params::Params;
use xrpc::XrpcRouter;

use crate::state::AppState;

/// The body limit never goes below this, whatever the blob limit: JSON
/// procedures (`applyWrites` with many records) need room too.
const MIN_BODY_LIMIT: usize = 1024 * 1024;

/// How long browsers may cache a CORS preflight answer (as the reference: a day).
const CORS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Where the embedded did:plc directory is served (`identity.embedded_plc`).
pub const EMBEDDED_PLC_PATH: &str = "/plc";

/// The span of one request: its method and path, never its query string (which may hold
/// tokens or an OAuth request URI, and the spans may leave the machine for a collector).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// The whole application, ready to serve.
pub fn app(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.limits.blob_upload_limit)
        .unwrap_or(usize::MAX)
        .max(MIN_BODY_LIMIT);

    let xrpc = XrpcRouter::new().query(basic::HEALTH, basic::health);
    let xrpc = com::register(xrpc);
    let xrpc = app::register(xrpc);
    let embedded_plc = state.embedded_plc.clone().map(pds_plc::server::router);
    let dpop_state = state.clone();
    let rate_limiter = state.rate_limiter.clone();
    let metrics = state
        .config
        .metrics
        .enabled
        .then(|| Arc::new(crate::metrics::http::HttpMetrics::new(xrpc.nsids())));

    let router = Router::new()
        .route("/", get(basic::root))
        .route("/robots.txt", get(basic::robots_txt))
        .route("/tls-check", get(basic::tls_check))
        .route(
            com::atproto::identity::well_known::PATH,
            get(com::atproto::identity::well_known::atproto_did),
        )
        .merge(xrpc.into_router())
        .merge(crate::oauth::router())
        .fallback(xrpc::not_found)
        .with_state(state.clone());
    let router = match &metrics {
        Some(http) => router.route(
            crate::metrics::PATH,
            get(crate::metrics::serve).with_state(crate::metrics::Scrape {
                app: state,
                http: http.clone(),
            }),
        ),
        None => router,
    };
    let router = match embedded_plc {
        Some(plc) => router.nest(EMBEDDED_PLC_PATH, plc),
        None => router,
    };
    let router = router
        // Layers, innermost first. The body limit is enforced here, once, for
        // every route; axum's own per-extractor default (2 MB) would refuse
        // blobs, so it is turned off.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(body_limit))
        // Reads what a refused request still sends, so the client gets the error, not a reset.
        .layer(middleware::from_fn(
            com::atproto::repo::upload_blob::drain_unread_bodies,
        ))
        // Login and sign-up limits (inside the error-shaping layer, so a 429 has the XRPC body).
        .layer(middleware::from_fn_with_state(
            rate_limiter,
            rate_limit::limit,
        ))
        // Outside the limit so that its 413 gets the XRPC error body too.
        .layer(middleware::from_fn(xrpc::json_error_bodies))
        // Any answer to a request with a DPoP proof carries the current nonce.
        .layer(middleware::from_fn_with_state(
            dpop_state,
            crate::oauth::dpop::nonce_header,
        ))
        // A handler that panics (a bug) answers 500 in the XRPC shape instead of dropping the
        // connection; the server keeps running either way.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }));
    // Requests by method and status, as answered (error bodies shaped, panics made 500s).
    let router = match metrics {
        Some(http) => router.layer(middleware::from_fn_with_state(
            http,
            crate::metrics::http::track,
        )),
        None => router,
    };
    router
        // Browser clients call XRPC and the OAuth endpoints from other origins; outermost, so
        // that error responses carry the CORS headers and the browser can read them. The
        // preflight names the asked-for headers back rather than answering "*": by the Fetch
        // standard a "*" does not cover `Authorization`, and browsers that follow it would
        // refuse every authenticated call.
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods(AllowMethods::mirror_request())
                .allow_headers(AllowHeaders::mirror_request())
                .expose_headers(Any)
                .max_age(CORS_MAX_AGE),
        )
        // Request traces at DEBUG (RUST_LOG=tower_http=debug). Error statuses
        // are not logged as errors here: a 501 for an unknown method is the
        // client's business, and real internal errors log themselves with
        // their cause (`ApiError::internal`).
        // One span per request, at info so that an OpenTelemetry collector gets it under the
        // default filter (`crate::telemetry`); its events stay at debug.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
}
