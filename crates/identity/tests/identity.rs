//! Identity resolution against real servers on 127.0.0.1 (axum, or raw TCP
//! where a misbehaving server is needed). No network beyond loopback: DNS
//! answers come from `StaticDns`, except `localhost`, which the system
//! resolver answers locally.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use pds_crypto::{Algorithm, Keypair};
use pds_identity::{
    AddressPolicy, BlockReason, CacheConfig, DnsResolver, HickoryDns, HttpConfig, IdentityConfig,
    IdentityError, IdentityResolver, SafeHttpClient, StaticDns,
};
use pds_syntax::{Did, Handle};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";

// ---- test servers ------------------------------------------------------

/// Serves `app` on an ephemeral loopback port.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A server answering every path with `body`, counting requests.
async fn counting_server(body: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            body
        }
    });
    (serve(app).await, hits)
}

/// A PLC directory: `GET /{did}` answers the stored document or 404, and
/// `status` (if set) overrides everything. Counts requests.
#[derive(Clone, Default)]
struct Plc {
    docs: Arc<Mutex<HashMap<String, Value>>>,
    hits: Arc<AtomicUsize>,
    status: Arc<Mutex<Option<StatusCode>>>,
}

impl Plc {
    async fn start() -> (Plc, String) {
        let plc = Plc::default();
        let app = Router::new()
            .route("/{did}", get(plc_get))
            .with_state(plc.clone());
        let addr = serve(app).await;
        (plc, format!("http://{addr}"))
    }

    fn put(&self, did: &str, doc: Value) {
        self.docs.lock().unwrap().insert(did.to_owned(), doc);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn plc_get(State(plc): State<Plc>, Path(did): Path<String>) -> Response {
    plc.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = *plc.status.lock().unwrap() {
        return status.into_response();
    }
    match plc.docs.lock().unwrap().get(&did) {
        Some(doc) => axum::Json(doc.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A DID document in the shape the PLC directory serves.
fn did_doc(did: &str, handles: &[&str], key: &pds_crypto::PublicKey) -> Value {
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1"
        ],
        "id": did,
        "alsoKnownAs": handles.iter().map(|h| format!("at://{h}")).collect::<Vec<_>>(),
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key.multikey(),
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://pds.example.com",
        }],
    })
}

/// A raw TCP server for misbehaviour reqwest/axum would not produce:
/// each connection's request is read, then `respond` takes the socket.
async fn raw_server<F, Fut>(respond: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                // Read up to the end of the request head.
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                respond(socket).await;
            });
        }
    });
    addr
}

fn static_dns() -> Arc<StaticDns> {
    Arc::new(StaticDns::new())
}

fn client(config: HttpConfig, dns: Arc<dyn DnsResolver>) -> SafeHttpClient {
    SafeHttpClient::new(config, dns).unwrap()
}

fn system_dns() -> Arc<dyn DnsResolver> {
    Arc::new(HickoryDns::from_system(Duration::from_secs(2)).unwrap())
}

fn blocked_reason(err: &IdentityError) -> BlockReason {
    match err {
        IdentityError::BlockedAddress { reason, .. } => *reason,
        other => panic!("expected a blocked address, got {other:?}"),
    }
}

// ---- SafeHttpClient --------------------------------------------------------

#[tokio::test]
async fn refuses_loopback_literals_outside_dev_mode() {
    let (addr, hits) = counting_server("secret").await;
    let http = client(HttpConfig::new(false), static_dns());
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://127.1.2.3:{port}/"),
        format!("http://2130706433:{port}/"), // 127.0.0.1 as one number
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let err = http.get(&url, "*/*").await.unwrap_err();
        assert_eq!(blocked_reason(&err), BlockReason::Loopback, "{url}");
    }
    for (url, reason) in [
        ("http://10.0.0.1/", BlockReason::Private),
        (
            "http://169.254.169.254/latest/meta-data/",
            BlockReason::LinkLocal,
        ),
        ("http://100.64.0.1/", BlockReason::SharedCgnat),
        ("http://0.0.0.0/", BlockReason::Unspecified),
        ("http://[fd00::1]/", BlockReason::Private),
        ("http://[::ffff:192.168.1.1]/", BlockReason::Private),
    ] {
        let err = http.get(url, "*/*").await.unwrap_err();
        assert_eq!(blocked_reason(&err), reason, "{url}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn refuses_names_resolving_to_loopback_outside_dev_mode() {
    let (addr, hits) = counting_server("secret").await;
    let port = addr.port();

    // The system resolver: `localhost` is 127.0.0.1 / ::1.
    let http = client(HttpConfig::new(false), system_dns());
    let err = http
        .get(&format!("http://localhost:{port}/"), "*/*")
        .await
        .unwrap_err();
    assert_eq!(blocked_reason(&err), BlockReason::Loopback);

    // A public-looking name whose DNS points inside (rebinding-style).
    let dns = StaticDns::new()
        .with_addr("evil.example.com", "127.0.0.1:0".parse().unwrap())
        .with_addr("inside.example.com", "10.1.2.3:0".parse().unwrap())
        .with_addr("inside.example.com", "192.168.0.7:0".parse().unwrap());
    let http = client(HttpConfig::new(false), Arc::new(dns));
    let err = http
        .get(&format!("http://evil.example.com:{port}/"), "*/*")
        .await
        .unwrap_err();
    match &err {
        IdentityError::BlockedAddress { host, addr, reason } => {
            assert_eq!(host, "evil.example.com");
            assert_eq!(addr.to_string(), "127.0.0.1");
            assert_eq!(*reason, BlockReason::Loopback);
        }
        other => panic!("{other:?}"),
    }
    let err = http
        .get("http://inside.example.com/", "*/*")
        .await
        .unwrap_err();
    assert_eq!(blocked_reason(&err), BlockReason::Private);
    // A name with no addresses at all.
    let err = http
        .get("http://nowhere.example.com/", "*/*")
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::NotFound(_)), "{err:?}");

    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dev_mode_fetches_from_loopback() {
    let (addr, hits) = counting_server("hello").await;
    let port = addr.port();
    let http = client(HttpConfig::new(true), system_dns());
    let body = http
        .get(&format!("http://localhost:{port}/x"), "*/*")
        .await
        .unwrap();
    assert_eq!(body, b"hello");
    let body = http
        .get(&format!("http://127.0.0.1:{port}/y"), "*/*")
        .await
        .unwrap();
    assert_eq!(body, b"hello");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Dev mode opens loopback only, not the private ranges.
    let err = http.get("http://10.0.0.1/", "*/*").await.unwrap_err();
    assert_eq!(blocked_reason(&err), BlockReason::Private);
}

#[tokio::test]
async fn post_json_sends_the_body_and_keeps_the_address_policy() {
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = received.clone();
    let app = Router::new().route(
        "/xrpc/com.atproto.sync.requestCrawl",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                seen.lock().unwrap().push((kind, body));
                StatusCode::OK
            }
        }),
    );
    let addr = serve(app).await;
    let url = format!(
        "http://127.0.0.1:{}/xrpc/com.atproto.sync.requestCrawl",
        addr.port()
    );
    let dev = client(HttpConfig::new(true), static_dns());
    dev.post_json(&url, br#"{"hostname":"pds.example.com"}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(
        received.lock().unwrap().as_slice(),
        [(
            "application/json".to_owned(),
            r#"{"hostname":"pds.example.com"}"#.to_owned()
        )]
    );
    // A non-2xx answer is an error with its status.
    let missing = format!("http://127.0.0.1:{}/nope", addr.port());
    let err = dev.post_json(&missing, b"{}".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, IdentityError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    // Outside dev mode, loopback is refused before anything is sent.
    let prod = client(HttpConfig::new(false), static_dns());
    let err = prod.post_json(&url, b"{}".to_vec()).await.unwrap_err();
    assert_eq!(blocked_reason(&err), BlockReason::Loopback);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn refuses_non_http_urls() {
    let http = client(HttpConfig::new(true), static_dns());
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "http://user:pw@example.com/",
        "not a url",
    ] {
        let err = http.get(url, "*/*").await.unwrap_err();
        assert!(matches!(err, IdentityError::Transport(_)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn does_not_follow_redirects() {
    let target_hits = Arc::new(AtomicUsize::new(0));
    let t = target_hits.clone();
    let app = Router::new()
        .route("/start", get(|| async { Redirect::temporary("/target") }))
        .route(
            "/target",
            get(move || {
                t.fetch_add(1, Ordering::SeqCst);
                async { "reached" }
            }),
        );
    let addr = serve(app).await;
    let http = client(HttpConfig::new(true), static_dns());
    let err = http
        .get(&format!("http://{addr}/start"), "*/*")
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::HttpStatus { status: 307, .. }),
        "{err:?}"
    );
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn size_limit_is_enforced_while_streaming() {
    // Chunked, no Content-Length, never ends on its own (bounded at 64 MiB):
    // the client must stop at the limit, not buffer everything first.
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let addr = raw_server(move |mut socket| {
        let s = s.clone();
        async move {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 16 * 1024];
            let frame = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
            for _ in 0..4096 {
                if socket.write_all(&frame).await.is_err() {
                    return;
                }
                s.fetch_add(16 * 1024, Ordering::SeqCst);
            }
        }
    })
    .await;
    let config = HttpConfig {
        max_body_bytes: 100 * 1024,
        ..HttpConfig::new(true)
    };
    let http = client(config, static_dns());
    let started = Instant::now();
    let err = http
        .get(&format!("http://{addr}/huge"), "*/*")
        .await
        .unwrap_err();
    assert_eq!(err, IdentityError::TooLarge { limit: 100 * 1024 });
    assert!(started.elapsed() < Duration::from_secs(3));
    // The server got nowhere near its 64 MiB (socket buffers aside).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sent.load(Ordering::SeqCst) < 16 * 1024 * 1024);

    // A declared Content-Length over the limit fails before the body.
    let big = Router::new().fallback(|| async { vec![b'x'; 200 * 1024] });
    let addr = serve(big).await;
    let err = http
        .get(&format!("http://{addr}/declared"), "*/*")
        .await
        .unwrap_err();
    assert_eq!(err, IdentityError::TooLarge { limit: 100 * 1024 });

    // Exactly at the limit is fine; per-call limits override the default.
    let exact = Router::new().fallback(|| async { vec![b'x'; 100 * 1024] });
    let addr = serve(exact).await;
    let url = format!("http://{addr}/exact");
    assert_eq!(http.get(&url, "*/*").await.unwrap().len(), 100 * 1024);
    assert_eq!(
        http.get_limited(&url, "*/*", 1000).await.unwrap_err(),
        IdentityError::TooLarge { limit: 1000 }
    );
}

#[tokio::test]
async fn time_limit_is_enforced() {
    let config = HttpConfig {
        timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        ..HttpConfig::new(true)
    };
    let http = client(config, static_dns());

    // No response at all.
    let silent = raw_server(|socket| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(socket);
    })
    .await;
    let started = Instant::now();
    let err = http
        .get(&format!("http://{silent}/"), "*/*")
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Headers at once, then a body dripping one byte every 100 ms: the
    // total limit covers the body too.
    let drip = raw_server(|mut socket| async move {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if socket.write_all(b" ").await.is_err() {
                return;
            }
        }
    })
    .await;
    let started = Instant::now();
    let err = http
        .get(&format!("http://{drip}/"), "*/*")
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---- DID resolution ----------------------------------------------------

fn dev_dns_with_localhost() -> StaticDns {
    StaticDns::new().with_addr("localhost", "127.0.0.1:0".parse().unwrap())
}

#[tokio::test]
async fn did_web_resolves_in_dev_mode_and_checks_the_id() {
    let key = Keypair::generate(Algorithm::P256).public_key();
    let served: Arc<Mutex<Value>> = Arc::new(Mutex::new(Value::Null));
    let s = served.clone();
    let app = Router::new().route(
        "/.well-known/did.json",
        get(move || {
            let doc = s.lock().unwrap().clone();
            async move { axum::Json(doc) }
        }),
    );
    let addr = serve(app).await;
    let did = Did::new(&format!("did:web:localhost%3A{}", addr.port())).unwrap();
    *served.lock().unwrap() = did_doc(did.as_str(), &["web.example.com"], &key);

    let config = IdentityConfig {
        cache: CacheConfig {
            positive_ttl: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            ..CacheConfig::default()
        },
        ..IdentityConfig::new("http://127.0.0.1:9", true)
    };
    let resolver = IdentityResolver::with_dns(config, Arc::new(dev_dns_with_localhost())).unwrap();
    let doc = resolver.resolve_did(&did).await.unwrap();
    assert_eq!(doc.id(), &did);
    assert_eq!(doc.signing_key(), Some(&key));
    assert_eq!(doc.handle().unwrap().as_str(), "web.example.com");
    assert_eq!(doc.pds_endpoint(), Some("https://pds.example.com"));
    assert_eq!(doc.raw()["id"], did.as_str());

    // A document for another DID is refused.
    *served.lock().unwrap() = did_doc("did:web:elsewhere.example.com", &[], &key);
    let err = resolver.refresh_did(&did).await.unwrap_err();
    assert!(matches!(err, IdentityError::DidMismatch { .. }), "{err:?}");

    // Outside dev mode, did:web:localhost is not resolved (https only, and
    // `localhost` is not a public host name).
    let prod = IdentityResolver::with_dns(
        IdentityConfig::new("http://127.0.0.1:9", false),
        Arc::new(dev_dns_with_localhost()),
    )
    .unwrap();
    let err = prod.resolve_did(&did).await.unwrap_err();
    assert!(matches!(err, IdentityError::UnsupportedDid(_)), "{err:?}");
}

#[tokio::test]
async fn did_web_refuses_hosts_resolving_inside_outside_dev_mode() {
    let dns = StaticDns::new().with_addr("web.example.com", "127.0.0.1:0".parse().unwrap());
    let resolver = IdentityResolver::with_dns(
        IdentityConfig::new("http://127.0.0.1:9", false),
        Arc::new(dns),
    )
    .unwrap();
    let err = resolver
        .resolve_did(&Did::new("did:web:web.example.com").unwrap())
        .await
        .unwrap_err();
    assert_eq!(blocked_reason(&err), BlockReason::Loopback);
}

#[tokio::test]
async fn did_plc_resolves_from_the_directory() {
    let (plc, plc_url) = Plc::start().await;
    let key = Keypair::generate(Algorithm::K256).public_key();
    plc.put(ALICE, did_doc(ALICE, &["alice.example.com"], &key));
    plc.put(BOB, did_doc(ALICE, &[], &key)); // served for the wrong DID

    // Not dev mode: the PLC URL is the operator's, so loopback is fine.
    let resolver =
        IdentityResolver::with_dns(IdentityConfig::new(&plc_url, false), static_dns()).unwrap();
    let doc = resolver
        .resolve_did(&Did::new(ALICE).unwrap())
        .await
        .unwrap();
    assert_eq!(doc.signing_key(), Some(&key));
    assert_eq!(doc.pds_endpoint(), Some("https://pds.example.com"));

    let err = resolver
        .resolve_did(&Did::new("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::NotFound(_)), "{err:?}");

    let err = resolver
        .resolve_did(&Did::new(BOB).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::DidMismatch { .. }), "{err:?}");

    for bad in [
        "did:plc:short",
        "did:plc:UPPERCASEUPPERCASEUPPERC",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
    ] {
        let err = resolver
            .resolve_did(&Did::new(bad).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, IdentityError::UnsupportedDid(_)),
            "{bad}: {err:?}"
        );
    }
    // Only the three well-formed lookups reached the directory.
    assert_eq!(plc.hits(), 3);

    // Server errors are reported as such.
    *plc.status.lock().unwrap() = Some(StatusCode::INTERNAL_SERVER_ERROR);
    let err = resolver
        .refresh_did(&Did::new(ALICE).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
}

// ---- handle resolution -------------------------------------------------

#[tokio::test]
async fn handle_via_dns_with_bidirectional_verification() {
    let (plc, plc_url) = Plc::start().await;
    let key = Keypair::generate(Algorithm::K256).public_key();
    plc.put(
        ALICE,
        did_doc(ALICE, &["Alice.Example.com", "second.example.com"], &key),
    );
    let dns = StaticDns::new()
        .with_txt(
            "_atproto.alice.example.com",
            ["v=spf1 -all", &format!("did={ALICE}")],
        )
        // Claims Alice's DID, but Alice's document does not claim it back.
        .with_txt("_atproto.mallory.example.com", [format!("did={ALICE}")])
        // Listed second in Alice's alsoKnownAs: not her handle.
        .with_txt("_atproto.second.example.com", [format!("did={ALICE}")])
        // Two did= records: ambiguous, so no DNS answer.
        .with_txt(
            "_atproto.twice.example.com",
            [format!("did={ALICE}"), format!("did={BOB}")],
        );
    let resolver =
        IdentityResolver::with_dns(IdentityConfig::new(&plc_url, false), Arc::new(dns)).unwrap();

    let alice = Handle::new("ALICE.example.com").unwrap();
    assert_eq!(
        resolver.resolve_handle(&alice).await.unwrap().as_str(),
        ALICE
    );
    assert_eq!(
        resolver
            .resolve_handle_verified(&alice)
            .await
            .unwrap()
            .as_str(),
        ALICE
    );

    for unverified in ["mallory.example.com", "second.example.com"] {
        let handle = Handle::new(unverified).unwrap();
        assert_eq!(
            resolver.resolve_handle(&handle).await.unwrap().as_str(),
            ALICE
        );
        let err = resolver.resolve_handle_verified(&handle).await.unwrap_err();
        assert!(
            matches!(err, IdentityError::HandleNotVerified { .. }),
            "{unverified}: {err:?}"
        );
    }

    for missing in ["twice.example.com", "nobody.example.com"] {
        let err = resolver
            .resolve_handle(&Handle::new(missing).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, IdentityError::NotFound(_)),
            "{missing}: {err:?}"
        );
    }

    // Reserved TLDs never reach DNS; `.test` only in dev mode.
    for reserved in ["printer.local", "x.internal", "alice.test", "x.onion"] {
        let err = resolver
            .resolve_handle(&Handle::new(reserved).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, IdentityError::NotFound(_)),
            "{reserved}: {err:?}"
        );
    }
}

#[tokio::test]
async fn handle_via_well_known_in_dev_mode() {
    let (plc, plc_url) = Plc::start().await;
    let key = Keypair::generate(Algorithm::K256).public_key();
    plc.put(ALICE, did_doc(ALICE, &["carol.test"], &key));
    let app = Router::new().route(
        "/.well-known/atproto-did",
        get(|| async { format!("  {ALICE}\n") }),
    );
    let web = serve(app).await;
    let not_a_did = serve(Router::new().route(
        "/.well-known/atproto-did",
        get(|| async { "<html>hello</html>" }),
    ))
    .await;
    // The handle's host resolves to the test server; the port comes from
    // the DNS answer because the URL names none.
    let dns = StaticDns::new()
        .with_addr("carol.test", web)
        .with_addr("dave.test", web)
        .with_addr("html.test", not_a_did);
    let resolver =
        IdentityResolver::with_dns(IdentityConfig::new(&plc_url, true), Arc::new(dns)).unwrap();

    let carol = Handle::new("carol.test").unwrap();
    assert_eq!(
        resolver
            .resolve_handle_verified(&carol)
            .await
            .unwrap()
            .as_str(),
        ALICE
    );
    let err = resolver
        .resolve_handle_verified(&Handle::new("dave.test").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::HandleNotVerified { .. }),
        "{err:?}"
    );
    let err = resolver
        .resolve_handle(&Handle::new("html.test").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::InvalidDocument(_)), "{err:?}");
    let err = resolver
        .resolve_handle(&Handle::new("unknown.test").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn handle_well_known_is_refused_on_inside_addresses_outside_dev_mode() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        h.fetch_add(1, Ordering::SeqCst);
        async { ALICE }
    });
    let web = serve(app).await;
    let dns = StaticDns::new().with_addr("carol.example.com", web);
    let resolver = IdentityResolver::with_dns(
        IdentityConfig::new("http://127.0.0.1:9", false),
        Arc::new(dns),
    )
    .unwrap();
    let err = resolver
        .resolve_handle(&Handle::new("carol.example.com").unwrap())
        .await
        .unwrap_err();
    assert_eq!(blocked_reason(&err), BlockReason::Loopback);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dns_answer_wins_over_a_slow_well_known() {
    // The well-known endpoint never answers; DNS has the DID. Resolution
    // must not wait for HTTP's time limit.
    let silent = raw_server(|socket| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    })
    .await;
    let dns = StaticDns::new()
        .with_txt("_atproto.fast.test", [format!("did={ALICE}")])
        .with_addr("fast.test", silent);
    let resolver = IdentityResolver::with_dns(
        IdentityConfig::new("http://127.0.0.1:9", true),
        Arc::new(dns),
    )
    .unwrap();
    let started = Instant::now();
    let did = resolver
        .resolve_handle(&Handle::new("fast.test").unwrap())
        .await
        .unwrap();
    assert_eq!(did.as_str(), ALICE);
    // Well under the 5 s HTTP time limit it would otherwise wait for.
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---- caching -----------------------------------------------------------

#[tokio::test]
async fn cache_hits_expiry_and_purge() {
    let (plc, plc_url) = Plc::start().await;
    let key = Keypair::generate(Algorithm::K256).public_key();
    plc.put(ALICE, did_doc(ALICE, &["alice.example.com"], &key));
    let config = IdentityConfig {
        cache: CacheConfig {
            positive_ttl: Duration::from_millis(1000),
            negative_ttl: Duration::from_millis(1000),
            max_entries: 100,
        },
        ..IdentityConfig::new(&plc_url, false)
    };
    let resolver = IdentityResolver::with_dns(config, static_dns()).unwrap();
    let alice = Did::new(ALICE).unwrap();

    // Hit: the second lookup does not reach the directory.
    resolver.resolve_did(&alice).await.unwrap();
    resolver.resolve_did(&alice).await.unwrap();
    assert_eq!(plc.hits(), 1);

    // Purge: the next lookup fetches again and sees the change.
    plc.put(ALICE, did_doc(ALICE, &["new.example.com"], &key));
    assert_eq!(
        resolver
            .resolve_did(&alice)
            .await
            .unwrap()
            .handle()
            .unwrap()
            .as_str(),
        "alice.example.com"
    );
    resolver.purge_did(&alice);
    assert_eq!(
        resolver
            .resolve_did(&alice)
            .await
            .unwrap()
            .handle()
            .unwrap()
            .as_str(),
        "new.example.com"
    );
    assert_eq!(plc.hits(), 2);

    // Expiry.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    resolver.resolve_did(&alice).await.unwrap();
    assert_eq!(plc.hits(), 3);

    // Negative results are cached too (and expire).
    let nobody = Did::new("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
    for _ in 0..3 {
        let err = resolver.resolve_did(&nobody).await.unwrap_err();
        assert!(matches!(err, IdentityError::NotFound(_)));
    }
    assert_eq!(plc.hits(), 4);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    resolver.resolve_did(&nobody).await.unwrap_err();
    assert_eq!(plc.hits(), 5);

    // Transient failures are not cached.
    *plc.status.lock().unwrap() = Some(StatusCode::SERVICE_UNAVAILABLE);
    let flaky = Did::new("did:plc:yyyyyyyyyyyyyyyyyyyyyyyy").unwrap();
    resolver.resolve_did(&flaky).await.unwrap_err();
    resolver.resolve_did(&flaky).await.unwrap_err();
    assert_eq!(plc.hits(), 7);
}

#[tokio::test]
async fn handle_cache_purge() {
    // The well-known server's answer changes; the cache hides the change
    // until the handle is purged.
    let answer = Arc::new(Mutex::new(ALICE.to_owned()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (a, h) = (answer.clone(), hits.clone());
    let app = Router::new().route(
        "/.well-known/atproto-did",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            let did = a.lock().unwrap().clone();
            async move { did }
        }),
    );
    let web = serve(app).await;
    let dns = StaticDns::new().with_addr("erin.test", web);
    let resolver = IdentityResolver::with_dns(
        IdentityConfig::new("http://127.0.0.1:9", true),
        Arc::new(dns),
    )
    .unwrap();
    let erin = Handle::new("erin.test").unwrap();
    assert_eq!(
        resolver.resolve_handle(&erin).await.unwrap().as_str(),
        ALICE
    );
    *answer.lock().unwrap() = BOB.to_owned();
    // Case does not matter for the cache key.
    let erin_upper = Handle::new("ERIN.test").unwrap();
    assert_eq!(
        resolver.resolve_handle(&erin_upper).await.unwrap().as_str(),
        ALICE
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    resolver.purge_handle(&erin_upper);
    assert_eq!(resolver.resolve_handle(&erin).await.unwrap().as_str(), BOB);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[test]
fn config_defaults() {
    let config = IdentityConfig::new("https://plc.directory", false);
    assert_eq!(config.http.policy, AddressPolicy::PublicOnly);
    assert_eq!(config.http.timeout, Duration::from_secs(5));
    assert_eq!(config.http.connect_timeout, Duration::from_secs(5));
    assert_eq!(config.http.max_body_bytes, 256 * 1024);
    assert_eq!(
        IdentityConfig::new("https://plc.directory", true)
            .http
            .policy,
        AddressPolicy::PublicAndLoopback
    );
}
