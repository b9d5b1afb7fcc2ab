//! `GET /metrics` on the real binary: off by default, behind the admin password when on, and a
//! valid Prometheus text exposition whose counters match the requests made.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer, create_account, get, http, post, subscribe};
use serde_json::json;

const ADMIN_PASSWORD: &str = "metrics-tests-password";

/// A scrape: every sample by its series (`name{labels}` as written), checked for the format.
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// Parses and checks the exposition: `# HELP` and `# TYPE` before a family's samples,
    /// every series once, values that parse.
    fn parse(text: String) -> Scrape {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind),
                    "type {kind}"
                );
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "{name} declared twice"
                );
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.is_empty() && !line.starts_with('#'), "line {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
            };
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "name {name}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    let base = name.strip_suffix(suffix)?;
                    (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                })
                .unwrap_or(name);
            assert!(types.contains_key(family), "{name}: no # TYPE before it");
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "{series} twice"
            );
        }
        Scrape { text, samples }
    }

    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in:\n{}", self.text))
    }

    fn requests(&self, method: &str, status: u16) -> f64 {
        self.value(&format!(
            "pds_http_requests_total{{method=\"{method}\",status=\"{status}\"}}"
        ))
    }
}

fn start(extra: &[(&'static str, &'static str)]) -> TestServer {
    let mut env = vec![
        ("PDS_METRICS_ENABLED", "true"),
        ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

fn scrape(server: &TestServer) -> Scrape {
    let res = http()
        .get(server.url("/metrics"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(res.text().unwrap())
}

fn post_record(server: &TestServer, token: &str, did: &str, collection: &str) -> u16 {
    let (status, _) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(token),
        json!({
            "repo": did,
            "collection": collection,
            "record": {"$type": collection, "text": "hello", "createdAt": "2024-01-01T00:00:00.000Z"},
        }),
    );
    status
}

#[test]
fn counts_requests_writes_and_reports_sizes() {
    let server = start(&[]);
    let alice = create_account(&server, "alice");
    assert_eq!(
        post_record(&server, &alice.token, &alice.did, "app.bsky.feed.post"),
        200
    );
    assert_eq!(
        post_record(&server, &alice.token, &alice.did, "app.bsky.feed.post"),
        200
    );
    assert_eq!(
        post_record(&server, &alice.token, &alice.did, "not an nsid"),
        400
    );
    let (status, body) = post(
        &server,
        "com.atproto.repo.applyWrites",
        Some(&alice.token),
        json!({"repo": alice.did, "writes": (["a", "b"].map(|rkey| json!({
            "$type": "com.atproto.repo.applyWrites#create",
            "collection": "org.example.note",
            "rkey": rkey,
            "value": {"$type": "org.example.note", "text": rkey},
        })))}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        &server,
        "com.atproto.repo.deleteRecord",
        Some(&alice.token),
        json!({"repo": alice.did, "collection": "org.example.note", "rkey": "a"}),
    );
    assert_eq!(status, 200);
    let blob = vec![b'x'; 1234];
    let res = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(&alice.token)
        .header("content-type", "text/plain")
        .body(blob)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // A path outside every route, an unregistered NSID (nothing to forward it to: 501), and one
    // that is registered for POST only.
    assert_eq!(
        http()
            .get(server.url("/no/such/page"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let (status, _) = get(&server, "com.example.nothing.here", None);
    assert_eq!(status, 501);
    let (status, _) = get(&server, "com.atproto.repo.createRecord", None);
    assert_eq!(status, 400);
    // A firehose subscriber, live from the head.
    let _socket = subscribe(&server, None);

    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let metrics = scrape(&server);
        // The subscription starts after the handshake, and is at the head once the tailer has
        // handed it the last events.
        let settled = metrics.value("pds_firehose_subscribers") == 1.0
            && metrics.value("pds_firehose_lag_events") == 0.0;
        if settled || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    // Requests, by method and status.
    assert_eq!(
        metrics.requests("com.atproto.server.createAccount", 200),
        1.0
    );
    assert_eq!(metrics.requests("com.atproto.repo.createRecord", 200), 2.0);
    assert_eq!(metrics.requests("com.atproto.repo.createRecord", 400), 2.0);
    assert_eq!(metrics.requests("com.atproto.repo.applyWrites", 200), 1.0);
    assert_eq!(metrics.requests("com.atproto.repo.uploadBlob", 200), 1.0);
    assert_eq!(metrics.requests("unknown", 501), 1.0);
    assert_eq!(metrics.requests("other", 404), 1.0);
    assert_eq!(
        metrics.requests("com.atproto.sync.subscribeRepos", 101),
        1.0
    );
    // Raw paths and unregistered NSIDs never become labels.
    assert!(!metrics.text.contains("com.example"), "{}", metrics.text);
    assert!(!metrics.text.contains("/no/such"), "{}", metrics.text);

    // The latency histogram: cumulative buckets up to +Inf, which equals the count.
    let create = "method=\"com.atproto.repo.createRecord\"";
    let count = metrics.value(&format!(
        "pds_http_request_duration_seconds_count{{{create}}}"
    ));
    assert_eq!(count, 4.0);
    assert_eq!(
        metrics.value(&format!(
            "pds_http_request_duration_seconds_bucket{{{create},le=\"+Inf\"}}"
        )),
        count
    );
    assert!(
        metrics.value(&format!(
            "pds_http_request_duration_seconds_sum{{{create}}}"
        )) > 0.0
    );
    let mut last = 0.0;
    for bound in ["0.005", "0.01", "0.1", "1", "10", "30", "+Inf"] {
        let cumulative = metrics.value(&format!(
            "pds_http_request_duration_seconds_bucket{{{create},le=\"{bound}\"}}"
        ));
        assert!(cumulative >= last, "buckets are cumulative");
        last = cumulative;
    }

    // Writes: four commits (two createRecord, one applyWrites, one deleteRecord), the records
    // in them, and the blob's bytes.
    assert_eq!(metrics.value("pds_commits_total"), 4.0);
    assert_eq!(
        metrics.value("pds_records_written_total{action=\"create\"}"),
        4.0
    );
    assert_eq!(
        metrics.value("pds_records_written_total{action=\"delete\"}"),
        1.0
    );
    assert_eq!(metrics.value("pds_blob_uploads_total"), 1.0);
    assert_eq!(metrics.value("pds_blob_upload_bytes_total"), 1234.0);
    assert_eq!(metrics.value("pds_blob_store_bytes"), 1234.0);
    assert_eq!(metrics.value("pds_blob_store_blobs"), 1.0);

    // The firehose: one subscriber, at the head; the head has the account's and the writes'
    // events.
    assert_eq!(metrics.value("pds_firehose_subscribers"), 1.0);
    assert!(metrics.value("pds_firehose_head_seq") >= 7.0);
    assert_eq!(metrics.value("pds_firehose_lag_events"), 0.0);

    // Sizes read at scrape time, and the process.
    assert!(metrics.value("pds_database_file_bytes{file=\"pds.sqlite\"}") > 0.0);
    // The shipped pds.toml runs the embedded did:plc directory.
    assert!(metrics.value("pds_database_file_bytes{file=\"plc.sqlite\"}") > 0.0);
    assert!(metrics.value("process_resident_memory_bytes") > 1e6);
    assert!(metrics.value("process_cpu_seconds_total") > 0.0);
    assert!(metrics.value("process_open_fds") > 0.0);

    // A later scrape sees the earlier one (an `other` 200).
    assert!(scrape(&server).requests("other", 200) >= 1.0);
}

#[test]
fn the_admin_password_is_required_unless_turned_off() {
    let server = start(&[]);
    let res = http().get(server.url("/metrics")).send().unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Basic realm=\"pds metrics\""
    );
    assert!(!res.text().unwrap().contains("pds_http_requests_total"));
    for (user, password) in [("admin", "wrong"), ("root", ADMIN_PASSWORD)] {
        let res = http()
            .get(server.url("/metrics"))
            .basic_auth(user, Some(password))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{user}:{password}");
    }
    let metrics = scrape(&server);
    assert_eq!(metrics.requests("other", 401), 3.0);
    drop(server);

    let open = start(&[("PDS_METRICS_REQUIRE_AUTH", "false")]);
    let res = http().get(open.url("/metrics")).send().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.text()
            .unwrap()
            .contains("# TYPE pds_http_requests_total counter")
    );
}

#[test]
fn off_by_default() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)],
        ..Default::default()
    });
    let res = http()
        .get(server.url("/metrics"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}
