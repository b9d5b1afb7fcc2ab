//! OpenTelemetry traces, when configured with the standard `OTEL_*` variables: the real binary
//! sends its request spans over OTLP/HTTP (JSON here) to a collector on loopback, named as the
//! service the operator chose. (Without the variables no exporter exists: `crate::telemetry`'s
//! unit tests.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer, get};
use serde_json::Value;

/// A collector on loopback that keeps every OTLP/HTTP JSON body posted to `/v1/traces`.
struct Collector {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start() -> Collector {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                        kept.lock().unwrap().push(value);
                    }
                    axum::Json(serde_json::json!({}))
                }
            }),
        );
        let (addr, runtime) = common::serve_on_loopback(app);
        let url = format!("http://{addr}");
        Collector {
            url,
            received,
            _runtime: runtime,
        }
    }

    /// Every span received so far, with its resource's service name.
    fn spans(&self) -> Vec<(String, Value)> {
        let mut spans = Vec::new();
        for export in self.received.lock().unwrap().iter() {
            for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                let service = resource["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["key"] == "service.name")
                    .and_then(|a| a["value"]["stringValue"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]["stringValue"]
        .as_str()
}

#[test]
fn request_spans_go_to_the_configured_collector() {
    let collector = Collector::start();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "pds-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        ..Default::default()
    });
    let (status, _) = get(&server, "com.atproto.server.describeServer", None);
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = collector.spans();
        let found = spans.iter().find(|(_, span)| {
            attribute(span, "path").is_some_and(|path| path.ends_with("describeServer"))
        });
        if let Some((service, span)) = found {
            assert_eq!(service, "pds-under-test");
            assert_eq!(attribute(span, "method"), Some("GET"), "{span}");
            assert!(attribute(span, "uri").is_none(), "no query strings: {span}");
            assert!(
                span["traceId"].as_str().is_some_and(|t| t.len() == 32),
                "{span}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span for the request reached the collector: {spans:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
