//! Prometheus metrics at `GET /metrics` (when `metrics.enabled`), in the text exposition format
//! 0.0.4.
//!
//! What this module owns:
//! - the counters other layers bump as things happen ([`Counters`] in the app state: records
//!   written, commits, blob bytes uploaded), plain atomics;
//! - the per-request counters and latency histogram, and the middleware that feeds them
//!   ([`http`]);
//! - what is read at scrape time: the firehose hub's subscribers and lag, the sizes of the
//!   SQLite files in the data directory and of the blob store, the process's memory and CPU
//!   ([`process`]);
//! - the text encoder ([`text`]) and the `/metrics` handler, with its admin-password check
//!   (`metrics.require_auth`).
//!
//! Nothing here may slow a request down: the hot path is atomics only, and whatever needs I/O
//! (file sizes, a database read) happens when Prometheus scrapes.

pub mod http;
pub mod process;
pub mod text;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::admin::AdminAuth;
use crate::state::{AppState, DATABASE_FILE, PLC_DATABASE_FILE};
use http::HttpMetrics;
use text::{Encoder, Kind};

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// Counters of what the server did, bumped where it happens. Relaxed atomics: each is read on
/// its own.
#[derive(Debug, Default)]
pub struct Counters {
    records_created: AtomicU64,
    records_updated: AtomicU64,
    records_deleted: AtomicU64,
    commits: AtomicU64,
    blob_uploads: AtomicU64,
    blob_upload_bytes: AtomicU64,
}

impl Counters {
    /// A committed repo commit of record writes, with how many it created, updated and deleted.
    pub fn commit(&self, created: u64, updated: u64, deleted: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.records_created.fetch_add(created, Ordering::Relaxed);
        self.records_updated.fetch_add(updated, Ordering::Relaxed);
        self.records_deleted.fetch_add(deleted, Ordering::Relaxed);
    }

    /// A stored blob upload of `bytes`.
    pub fn blob_uploaded(&self, bytes: u64) {
        self.blob_uploads.fetch_add(1, Ordering::Relaxed);
        self.blob_upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn encode(&self, e: &mut Encoder) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        const RECORDS: &str = "pds_records_written_total";
        e.family(
            RECORDS,
            Kind::Counter,
            "Record writes committed (createRecord, putRecord, deleteRecord, applyWrites), by \
             action.",
        );
        for (action, counter) in [
            ("create", &self.records_created),
            ("update", &self.records_updated),
            ("delete", &self.records_deleted),
        ] {
            e.sample(RECORDS, &[("action", action)], get(counter));
        }
        e.single(
            "pds_commits_total",
            Kind::Counter,
            "Repo commits made by record writes.",
            get(&self.commits),
        );
        e.single(
            "pds_blob_uploads_total",
            Kind::Counter,
            "Blobs uploaded (uploadBlob) and stored.",
            get(&self.blob_uploads),
        );
        e.single(
            "pds_blob_upload_bytes_total",
            Kind::Counter,
            "Bytes of the blobs uploaded and stored.",
            get(&self.blob_upload_bytes),
        );
    }
}

/// The state of the `/metrics` route.
#[derive(Clone)]
pub struct Scrape {
    pub app: AppState,
    pub http: Arc<HttpMetrics>,
}

/// `GET /metrics`: everything, encoded. With `metrics.require_auth`, only for the admin
/// (HTTP Basic `admin:<PDS_ADMIN_PASSWORD>`); others get 401 and a Basic challenge.
pub async fn serve(State(scrape): State<Scrape>, request: Request) -> Response {
    if scrape.app.config.metrics.require_auth {
        let (mut parts, _) = request.into_parts();
        if let Err(refused) = AdminAuth::from_request_parts(&mut parts, &scrape.app).await {
            let mut response = refused.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"pds metrics\""),
            );
            return response;
        }
    }
    match gather(&scrape).await {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, text::CONTENT_TYPE)],
            body,
        )
            .into_response(),
        Err(e) => crate::api::ApiError::internal(format!("gathering metrics: {e}")).into_response(),
    }
}

async fn gather(scrape: &Scrape) -> Result<String, pds_storage::StorageError> {
    let app = &scrape.app;
    let mut e = Encoder::new();
    scrape.http.encode(&mut e);
    app.metrics.encode(&mut e);
    encode_firehose(&mut e, &app.firehose.hub.stats());
    encode_database_files(&mut e, &app.config.storage.data_directory);
    let (blobs, bytes) = app
        .db
        .read(|store| {
            store
                .connection()
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blob",
                    [],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .map_err(pds_storage::StorageError::from)
        })
        .await?;
    e.single(
        "pds_blob_store_blobs",
        Kind::Gauge,
        "Blobs kept (per account; temporary uploads included).",
        u64::try_from(blobs).unwrap_or(0),
    );
    e.single(
        "pds_blob_store_bytes",
        Kind::Gauge,
        "Bytes of the blobs kept, as recorded when each was stored.",
        u64::try_from(bytes).unwrap_or(0),
    );
    process::encode(&mut e);
    Ok(e.finish())
}

fn encode_firehose(e: &mut Encoder, stats: &pds_event_stream::HubStats) {
    e.single(
        "pds_firehose_subscribers",
        Kind::Gauge,
        "Open subscribeRepos subscriptions.",
        stats.subscriptions as u64,
    );
    e.single(
        "pds_firehose_head_seq",
        Kind::Gauge,
        "The seq of the newest event handed to subscribers.",
        u64::try_from(stats.latest_seq).unwrap_or(0),
    );
    e.single(
        "pds_firehose_lag_events",
        Kind::Gauge,
        "Events between the head and the slowest subscriber's position (0 without subscribers).",
        stats.lag(),
    );
    e.single(
        "pds_firehose_queue_depth_max",
        Kind::Gauge,
        "The most events waiting in one subscriber's live queue.",
        stats.max_queue_depth as u64,
    );
}

/// The database files whose sizes are reported, when they exist.
const DATABASE_FILES: [&str; 4] = [
    DATABASE_FILE,
    concat!("pds.sqlite", "-wal"),
    PLC_DATABASE_FILE,
    concat!("plc.sqlite", "-wal"),
];

fn encode_database_files(e: &mut Encoder, data_directory: &std::path::Path) {
    const NAME: &str = "pds_database_file_bytes";
    e.family(
        NAME,
        Kind::Gauge,
        "Size of each SQLite file in the data directory, in bytes.",
    );
    for file in DATABASE_FILES {
        if let Ok(meta) = std::fs::metadata(data_directory.join(file)) {
            e.sample(NAME, &[("file", file)], meta.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_file_names_follow_the_state() {
        assert_eq!(DATABASE_FILES[1], format!("{DATABASE_FILE}-wal"));
        assert_eq!(DATABASE_FILES[3], format!("{PLC_DATABASE_FILE}-wal"));
    }

    #[test]
    fn counters_encode_every_series_from_zero() {
        let counters = Counters::default();
        counters.commit(2, 1, 0);
        counters.commit(0, 0, 1);
        counters.blob_uploaded(1000);
        let mut e = Encoder::new();
        counters.encode(&mut e);
        let text = e.finish();
        for line in [
            "pds_records_written_total{action=\"create\"} 2",
            "pds_records_written_total{action=\"update\"} 1",
            "pds_records_written_total{action=\"delete\"} 1",
            "pds_commits_total 2",
            "pds_blob_uploads_total 1",
            "pds_blob_upload_bytes_total 1000",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}
