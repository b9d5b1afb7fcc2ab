//! Requests by XRPC method and status, and their latency: the middleware and its counters.
//!
//! The label set is fixed when the router is built: one `method` label per registered NSID,
//! `unknown` for any other `/xrpc/<nsid>` (forwarded by the service proxy, or 501), and `other`
//! for every path outside `/xrpc/`. Raw paths never become labels, so a client cannot grow the
//! output. Each method has its own atomics (its status counters allocated at its first
//! request); a request costs one hash lookup and a few relaxed atomic adds, no lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::text::{Encoder, Kind};
use crate::api::xrpc::PREFIX;

/// The `method` of an `/xrpc/<nsid>` no handler is registered for.
pub const UNKNOWN: &str = "unknown";
/// The `method` of every request outside `/xrpc/`.
pub const OTHER: &str = "other";

/// Upper bounds of the latency buckets, in seconds: Prometheus's default ones, and 30 s for
/// slow blob uploads.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Status codes counted one by one: what `http::StatusCode` can hold (100..=999).
const FIRST_STATUS: u16 = 100;
const STATUS_SLOTS: usize = 900;

/// Every method's counters; shared by the middleware and the `/metrics` handler.
#[derive(Debug)]
pub struct HttpMetrics {
    index: HashMap<&'static str, usize>,
    methods: Vec<MethodMetrics>,
}

#[derive(Debug)]
struct MethodMetrics {
    label: &'static str,
    /// Requests by status code - `FIRST_STATUS`; allocated at the method's first request.
    statuses: OnceLock<Box<[AtomicU64]>>,
    /// Observations per bucket (not cumulative); the last one is above every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl MethodMetrics {
    fn new(label: &'static str) -> MethodMetrics {
        MethodMetrics {
            label,
            statuses: OnceLock::new(),
            buckets: Default::default(),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl HttpMetrics {
    /// Counters for the registered `nsids`, `unknown` and `other`.
    pub fn new<'a>(nsids: impl IntoIterator<Item = &'a &'static str>) -> HttpMetrics {
        let mut methods = vec![MethodMetrics::new(OTHER), MethodMetrics::new(UNKNOWN)];
        let mut index = HashMap::new();
        for nsid in nsids {
            index.entry(*nsid).or_insert_with(|| {
                methods.push(MethodMetrics::new(nsid));
                methods.len() - 1
            });
        }
        HttpMetrics { index, methods }
    }

    /// The method slot of a request path.
    fn slot(&self, path: &str) -> usize {
        match path.strip_prefix(PREFIX) {
            None => 0,
            Some(nsid) => self.index.get(nsid).copied().unwrap_or(1),
        }
    }

    /// The `method` label a request path is counted under.
    pub fn label(&self, path: &str) -> &'static str {
        self.methods[self.slot(path)].label
    }

    fn observe(&self, slot: usize, status: u16, elapsed: Duration) {
        let method = &self.methods[slot];
        let statuses = method.statuses.get_or_init(|| {
            (0..STATUS_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        let status = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUS_SLOTS - 1);
        statuses[status].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        method.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        method.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one request as if it had been served (for tests of the encoding).
    pub fn record(&self, path: &str, status: u16, elapsed: Duration) {
        self.observe(self.slot(path), status, elapsed);
    }

    /// `pds_http_requests_total` and `pds_http_request_duration_seconds`, for the methods that
    /// have been called.
    pub fn encode(&self, e: &mut Encoder) {
        const REQUESTS: &str = "pds_http_requests_total";
        const DURATION: &str = "pds_http_request_duration_seconds";
        e.family(
            REQUESTS,
            Kind::Counter,
            "HTTP requests answered, by XRPC method (unknown: an unregistered NSID; other: not \
             /xrpc/) and status code.",
        );
        for method in &self.methods {
            let Some(statuses) = method.statuses.get() else {
                continue;
            };
            for (i, count) in statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let status = (i + usize::from(FIRST_STATUS)).to_string();
                    e.sample(
                        REQUESTS,
                        &[("method", method.label), ("status", &status)],
                        count,
                    );
                }
            }
        }
        e.family(
            DURATION,
            Kind::Histogram,
            "Time from a request's arrival to its response headers, by XRPC method.",
        );
        for method in &self.methods {
            if method.statuses.get().is_none() {
                continue;
            }
            let counts: Vec<u64> = method
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            let sum = method.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            e.histogram(
                DURATION,
                &[("method", method.label)],
                &LATENCY_BUCKETS,
                &counts,
                sum,
            );
        }
    }
}

/// Middleware: counts every request under its method and status, and times it to its response
/// headers (a streamed body, such as a repo CAR or the firehose, is not waited for). A request
/// whose client goes away before the answer is not counted.
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let slot = metrics.slot(request.uri().path());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(slot, response.status().as_u16(), start.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(metrics: &HttpMetrics) -> String {
        let mut e = Encoder::new();
        metrics.encode(&mut e);
        e.finish()
    }

    #[test]
    fn methods_are_registered_nsids_unknown_or_other() {
        let metrics = HttpMetrics::new(&["com.atproto.server.createSession", "_health"]);
        assert_eq!(
            metrics.label("/xrpc/com.atproto.server.createSession"),
            "com.atproto.server.createSession"
        );
        assert_eq!(metrics.label("/xrpc/_health"), "_health");
        assert_eq!(metrics.label("/xrpc/app.bsky.feed.getTimeline"), UNKNOWN);
        assert_eq!(metrics.label("/xrpc/"), UNKNOWN);
        assert_eq!(
            metrics.label("/xrpc/com.atproto.server.createSession/x"),
            UNKNOWN
        );
        assert_eq!(metrics.label("/"), OTHER);
        assert_eq!(metrics.label("/.well-known/atproto-did"), OTHER);
        assert_eq!(metrics.label("/xrpc"), OTHER);
    }

    #[test]
    fn counts_and_buckets() {
        let metrics = HttpMetrics::new(&["a.b.c"]);
        metrics.record("/xrpc/a.b.c", 200, Duration::from_millis(3));
        metrics.record("/xrpc/a.b.c", 200, Duration::from_millis(70));
        metrics.record("/xrpc/a.b.c", 400, Duration::from_secs(60));
        metrics.record("/nope", 404, Duration::ZERO);
        let text = encoded(&metrics);
        for line in [
            "pds_http_requests_total{method=\"a.b.c\",status=\"200\"} 2",
            "pds_http_requests_total{method=\"a.b.c\",status=\"400\"} 1",
            "pds_http_requests_total{method=\"other\",status=\"404\"} 1",
            "pds_http_request_duration_seconds_bucket{method=\"a.b.c\",le=\"0.005\"} 1",
            "pds_http_request_duration_seconds_bucket{method=\"a.b.c\",le=\"0.05\"} 1",
            "pds_http_request_duration_seconds_bucket{method=\"a.b.c\",le=\"0.1\"} 2",
            "pds_http_request_duration_seconds_bucket{method=\"a.b.c\",le=\"30\"} 2",
            "pds_http_request_duration_seconds_bucket{method=\"a.b.c\",le=\"+Inf\"} 3",
            "pds_http_request_duration_seconds_sum{method=\"a.b.c\"} 60.073",
            "pds_http_request_duration_seconds_count{method=\"a.b.c\"} 3",
            "pds_http_request_duration_seconds_count{method=\"other\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        // Methods never called have no series.
        assert!(!text.contains("method=\"unknown\""));
    }
}
