//! Service proxying, end to end: the real server forwarding to test services on loopback.
//!
//! Each test service ([`Upstream`]) is a did:web (`did:web:localhost%3A<port>`, resolved over
//! plain http in dev mode) and checks every request as a real AppView does: it resolves the
//! caller's DID through the PLC directory (a [`LocalPlc`] the server registers its accounts
//! with) and verifies the service-auth token's signature against the DID's `#atproto` key, its
//! `aud`, its `lxm` and its `exp`. It records what it was sent and answers as the test says.

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use common::{LocalPlc, ServerOptions, TestServer, create_account, get, http, post};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The test service
// ---------------------------------------------------------------------------------------------

/// How a test service answers a method.
#[derive(Clone)]
enum Reply {
    /// JSON with this status and these extra headers.
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    },
    /// A body of another type.
    Text {
        status: u16,
        content_type: &'static str,
        body: &'static str,
    },
    /// Headers only after this long.
    SlowHeaders(Duration),
    /// The first bytes of the body, then a pause this long before the rest.
    Stall(Duration),
    /// `chunks` chunks of `chunk_size` bytes, chunk `i` filled with byte `i`; the second one is
    /// sent only once the test calls [`Upstream::release`].
    Large { chunk_size: usize, chunks: usize },
}

impl Reply {
    fn json(body: Value) -> Reply {
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }
}

/// A request a test service received.
#[derive(Clone, Debug)]
struct Seen {
    nsid: String,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    /// The raw service-auth token, if one came.
    token: Option<String>,
    /// Its claims, verified as an AppView verifies them.
    claims: Option<Value>,
}

struct Shared {
    did: String,
    url: String,
    plc_url: String,
    /// `(id, type, endpoint)` of the services its DID document lists.
    services: Vec<(String, String, String)>,
    replies: Mutex<HashMap<String, Reply>>,
    seen: Mutex<Vec<Seen>>,
    gate: tokio::sync::Notify,
    plc: reqwest::Client,
}

/// A service on loopback with a did:web, checking service auth as an AppView does.
struct Upstream {
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    /// A service whose DID document lists `services` (`(id, type)`) at its own address, and
    /// `elsewhere` (`(id, type, endpoint)`) at other addresses.
    fn start(
        plc: &LocalPlc,
        services: &[(&str, &str)],
        elsewhere: &[(&str, &str, &str)],
    ) -> Upstream {
        // Installs the TLS provider the tests' reqwest clients need.
        let _ = http();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://localhost:{}", addr.port());
        let mut listed: Vec<(String, String, String)> = services
            .iter()
            .map(|(id, kind)| (id.to_string(), kind.to_string(), url.clone()))
            .collect();
        listed.extend(
            elsewhere.iter().map(|(id, kind, endpoint)| {
                (id.to_string(), kind.to_string(), endpoint.to_string())
            }),
        );
        let shared = Arc::new(Shared {
            did: format!("did:web:localhost%3A{}", addr.port()),
            url,
            plc_url: plc.url.clone(),
            services: listed,
            replies: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            gate: tokio::sync::Notify::new(),
            plc: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let app = axum::Router::new()
            .route("/.well-known/did.json", axum::routing::get(did_document))
            .route("/xrpc/{nsid}", axum::routing::any(xrpc))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Upstream {
            shared,
            _runtime: runtime,
        }
    }

    fn did(&self) -> &str {
        &self.shared.did
    }

    fn url(&self) -> &str {
        &self.shared.url
    }

    fn reply(&self, nsid: &str, reply: Reply) {
        self.shared
            .replies
            .lock()
            .unwrap()
            .insert(nsid.to_owned(), reply);
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn last(&self, nsid: &str) -> Seen {
        self.seen()
            .into_iter()
            .rev()
            .find(|s| s.nsid == nsid)
            .unwrap_or_else(|| panic!("{} received no {nsid}", self.did()))
    }

    fn count(&self, nsid: &str) -> usize {
        self.seen().iter().filter(|s| s.nsid == nsid).count()
    }

    /// Lets a [`Reply::Large`] body go on past its first chunk.
    fn release(&self) {
        self.shared.gate.notify_one();
    }
}

async fn did_document(State(shared): State<Arc<Shared>>) -> Response {
    let services: Vec<Value> = shared
        .services
        .iter()
        .map(|(id, kind, endpoint)| json!({"id": format!("#{id}"), "type": kind, "serviceEndpoint": endpoint}))
        .collect();
    axum::Json(json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": shared.did,
        "service": services,
    }))
    .into_response()
}

async fn xrpc(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(nsid): axum::extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let claims = match &token {
        None => None,
        Some(token) => match verify(&shared, &nsid, token).await {
            Ok(claims) => Some(claims),
            Err(why) => {
                let refusal = json!({"error": "BadJwt", "message": why});
                return (StatusCode::UNAUTHORIZED, axum::Json(refusal)).into_response();
            }
        },
    };
    let seen = Seen {
        nsid: nsid.clone(),
        method,
        query: uri.query().map(str::to_owned),
        headers,
        body: body.clone(),
        token,
        claims,
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let reply = shared.replies.lock().unwrap().get(&nsid).cloned();
    match reply {
        None => axum::Json(json!({
            "nsid": nsid,
            "query": seen.query,
            "bodyLength": body.len(),
            "iss": seen.claims.as_ref().map(|c| c["iss"].clone()),
        }))
        .into_response(),
        Some(Reply::Json {
            status,
            headers,
            body,
        }) => {
            let mut response =
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Some(Reply::Text {
            status,
            content_type,
            body,
        }) => (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
        Some(Reply::SlowHeaders(pause)) => {
            tokio::time::sleep(pause).await;
            axum::Json(json!({"late": true})).into_response()
        }
        Some(Reply::Stall(pause)) => {
            let parts = futures_util::stream::unfold(0, move |step| async move {
                match step {
                    0 => Some((
                        Ok::<_, std::io::Error>(Bytes::from_static(b"{\"partial\":")),
                        1,
                    )),
                    1 => {
                        tokio::time::sleep(pause).await;
                        Some((Ok(Bytes::from_static(b"true}")), 2))
                    }
                    _ => None,
                }
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(parts),
            )
                .into_response()
        }
        Some(Reply::Large { chunk_size, chunks }) => {
            let gate = shared.clone();
            let parts = futures_util::stream::unfold(0usize, move |i| {
                let gate = gate.clone();
                async move {
                    if i == chunks {
                        return None;
                    }
                    if i == 1 {
                        // Only a proxy that streams lets the client see chunk 0 before this.
                        let released =
                            tokio::time::timeout(Duration::from_secs(20), gate.gate.notified())
                                .await;
                        if released.is_err() {
                            return Some((Err(std::io::Error::other("never released")), chunks));
                        }
                    }
                    Some((Ok(Bytes::from(vec![i as u8; chunk_size])), i + 1))
                }
            });
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                    (header::CONTENT_LENGTH, (chunk_size * chunks).to_string()),
                ],
                Body::from_stream(parts),
            )
                .into_response()
        }
    }
}

/// What an AppView checks of a service-auth token: a JWT signed (ES256K or ES256) by the
/// `#atproto` key of the issuer's DID document, fetched from the PLC directory; for this
/// service (`aud`, except that getFeed's token is for the feed generator), for this method
/// (`lxm`), not expired and short-lived.
async fn verify(shared: &Shared, nsid: &str, token: &str) -> Result<Value, String> {
    let (header, claims) =
        pds_crypto::jws::decode_unverified(token).map_err(|e| format!("not a JWT: {e}"))?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "ES256K" && alg != "ES256" {
        return Err(format!("alg {alg}"));
    }
    let now = common_now();
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now || exp > now + 120 {
        return Err(format!("exp {exp} at {now}"));
    }
    let (aud_ok, lxm_ok) = if nsid == "app.bsky.feed.getFeed" {
        (true, claims["lxm"] == "app.bsky.feed.getFeedSkeleton")
    } else {
        // Its own DID, or its DID with the id of one of its services (how a PDS addresses a
        // service an atproto-proxy header named), as the Bluesky AppView accepts.
        let aud = claims["aud"].as_str().unwrap_or_default();
        let ok = aud == shared.did
            || shared
                .services
                .iter()
                .any(|(id, _, _)| aud == format!("{}#{id}", shared.did));
        (ok, claims["lxm"] == nsid)
    };
    if !aud_ok {
        return Err(format!("aud {}", claims["aud"]));
    }
    if !lxm_ok {
        return Err(format!("lxm {}", claims["lxm"]));
    }
    let iss = claims["iss"].as_str().ok_or("no iss")?;
    let doc: Value = shared
        .plc
        .get(format!("{}/{iss}", shared.plc_url))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let multibase = doc["verificationMethod"]
        .as_array()
        .and_then(|methods| {
            methods
                .iter()
                .find(|m| m["id"].as_str().is_some_and(|id| id.ends_with("#atproto")))
        })
        .and_then(|m| m["publicKeyMultibase"].as_str())
        .ok_or("no #atproto key in the issuer's DID document")?;
    let key = pds_crypto::PublicKey::from_multikey(multibase).map_err(|e| e.to_string())?;
    pds_crypto::jws::verify_es(token, &key).map_err(|e| format!("signature: {e}"))?;
    Ok(claims)
}

fn common_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A server registering its accounts with `plc`, with `extra` settings.
fn start_pds(plc: &LocalPlc, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("PDS_DID_PLC_URL", plc.url.as_str()),
        ("PDS_EMBEDDED_PLC", "false"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

/// A request body that arrives in `chunks` pieces of `size` bytes, `pause` apart, with no
/// declared length (sent chunked).
struct Trickle {
    chunks: usize,
    size: usize,
    pause: Duration,
    sent: usize,
    at: usize,
}

impl Trickle {
    fn new(chunks: usize, size: usize, pause: Duration) -> Trickle {
        Trickle {
            chunks,
            size,
            pause,
            sent: 0,
            at: 0,
        }
    }
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.sent == self.chunks {
            return Ok(0);
        }
        if self.at == 0 && self.sent > 0 {
            std::thread::sleep(self.pause);
        }
        let n = buf.len().min(self.size - self.at);
        buf[..n].fill(b'x');
        self.at += n;
        if self.at == self.size {
            self.at = 0;
            self.sent += 1;
        }
        Ok(n)
    }
}

/// `GET /xrpc/<path>` with a token and extra headers: status, headers, body text.
fn get_with(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut request = http().get(server.url(&format!("/xrpc/{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The answer's status and XRPC error name.
fn error_of(status: u16, body: &Value) -> (u16, &str) {
    (status, body["error"].as_str().unwrap_or("<no error name>"))
}

/// A session made with a new app password of `account`.
fn app_password_session(
    server: &TestServer,
    full_token: &str,
    handle: &str,
    privileged: bool,
) -> String {
    let (status, body) = post(
        server,
        "com.atproto.server.createAppPassword",
        Some(full_token),
        json!({"name": format!("app {privileged}"), "privileged": privileged}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, session) = post(
        server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": handle, "password": body["password"]}),
    );
    assert_eq!(status, 200, "{session}");
    session["accessJwt"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Routing by namespace, tokens, headers
// ---------------------------------------------------------------------------------------------

#[test]
fn methods_go_to_the_configured_services_with_tokens_they_can_verify() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    let moderation = Upstream::start(&plc, &[("atproto_labeler", "AtprotoLabeler")], &[]);
    let reports = Upstream::start(&plc, &[], &[]);
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
            ("PDS_MOD_SERVICE_URL", moderation.url()),
            ("PDS_MOD_SERVICE_DID", moderation.did()),
            ("PDS_REPORT_SERVICE_URL", reports.url()),
            ("PDS_REPORT_SERVICE_DID", reports.did()),
        ],
    );
    let alice = create_account(&server, "alice");

    // A query: path, query string and the headers clients rely on go along; nothing else does.
    const SUGGESTIONS: &str = "app.bsky.actor.getSuggestions";
    appview.reply(
        SUGGESTIONS,
        Reply::Json {
            status: 200,
            headers: vec![
                ("content-language", "fr".into()),
                (
                    "atproto-content-labelers",
                    "did:plc:ar7c4by46qjdydhdevvrndac".into(),
                ),
                ("x-internal-debug", "secret".into()),
            ],
            body: json!({"actors": [{"did": "did:plc:bob", "handle": "bob.test"}]}),
        },
    );
    let (status, headers, body) = get_with(
        &server,
        &format!("{SUGGESTIONS}?limit=3&cursor=abc%20d"),
        Some(&alice.token),
        &[
            (
                "atproto-accept-labelers",
                "did:plc:ar7c4by46qjdydhdevvrndac;redact",
            ),
            ("accept-language", "fr, en;q=0.5"),
            ("x-bsky-topics", "art"),
            ("cookie", "session=private"),
            ("x-forwarded-for", "10.0.0.1"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["actors"][0]["handle"], "bob.test");
    assert_eq!(headers["content-language"], "fr");
    assert_eq!(
        headers["atproto-content-labelers"],
        "did:plc:ar7c4by46qjdydhdevvrndac"
    );
    assert!(headers.get("x-internal-debug").is_none());

    let seen = appview.last(SUGGESTIONS);
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.query.as_deref(), Some("limit=3&cursor=abc%20d"));
    assert_eq!(
        seen.headers["atproto-accept-labelers"],
        "did:plc:ar7c4by46qjdydhdevvrndac;redact"
    );
    assert_eq!(seen.headers["accept-language"], "fr, en;q=0.5");
    assert_eq!(seen.headers["x-bsky-topics"], "art");
    assert!(seen.headers.get("cookie").is_none());
    assert!(seen.headers.get("x-forwarded-for").is_none());
    // The token: verified by the service against alice's key in the PLC directory.
    let claims = seen.claims.expect("a service-auth token");
    assert_eq!(claims["iss"], alice.did.as_str());
    assert_eq!(claims["aud"], appview.did());
    assert_eq!(claims["lxm"], SUGGESTIONS);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((1..=60).contains(&lifetime), "{claims}");
    let jti = claims["jti"].as_str().unwrap().to_owned();
    assert_eq!(jti.len(), 32);
    // A new token each time.
    assert_eq!(get(&server, SUGGESTIONS, Some(&alice.token)).0, 200);
    assert_ne!(
        appview.last(SUGGESTIONS).claims.unwrap()["jti"],
        jti.as_str()
    );

    // A procedure: its body and content type go along.
    let (status, body) = post(
        &server,
        "app.bsky.graph.muteActor",
        Some(&alice.token),
        json!({"actor": "did:plc:bob"}),
    );
    assert_eq!(status, 200, "{body}");
    let seen = appview.last("app.bsky.graph.muteActor");
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(
        json_of(std::str::from_utf8(&seen.body).unwrap()),
        json!({"actor": "did:plc:bob"})
    );
    assert_eq!(seen.claims.unwrap()["lxm"], "app.bsky.graph.muteActor");

    // tools.ozone.* to the moderation service; reports to the report service.
    let (status, body) = get(
        &server,
        "tools.ozone.moderation.queryEvents?limit=1",
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        moderation
            .last("tools.ozone.moderation.queryEvents")
            .claims
            .unwrap()["aud"],
        moderation.did()
    );
    let report = json!({
        "reasonType": "com.atproto.moderation.defs#reasonSpam",
        "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": "did:plc:bob"},
    });
    let (status, body) = post(
        &server,
        "com.atproto.moderation.createReport",
        Some(&alice.token),
        report.clone(),
    );
    assert_eq!(status, 200, "{body}");
    let seen = reports.last("com.atproto.moderation.createReport");
    assert_eq!(json_of(std::str::from_utf8(&seen.body).unwrap()), report);
    assert_eq!(seen.claims.unwrap()["aud"], reports.did());
    assert_eq!(moderation.count("com.atproto.moderation.createReport"), 0);
    assert_eq!(appview.count("tools.ozone.moderation.queryEvents"), 0);

    // Refusals, none of which reaches a service.
    let before = appview.seen().len();
    let (status, body) = get(&server, SUGGESTIONS, None);
    assert_eq!(error_of(status, &body), (401, "AuthenticationRequired"));
    let (status, body) = get(&server, SUGGESTIONS, Some("not.a.token"));
    assert_eq!(status, 401, "{body}");
    let response = http()
        .put(server.url(&format!("/xrpc/{SUGGESTIONS}")))
        .bearer_auth(&alice.token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.json::<Value>().unwrap()["message"],
        "XRPC requests only supports GET and POST"
    );
    // No namespace default: not implemented, with or without a session.
    let (status, body) = get(&server, "com.example.nothing.here", Some(&alice.token));
    assert_eq!(error_of(status, &body), (501, "MethodNotImplemented"));
    let (status, body) = get(&server, "com.example.nothing.here", None);
    assert_eq!(error_of(status, &body), (501, "MethodNotImplemented"));
    // Chat needs the header naming the chat service.
    let (status, body) = get(&server, "chat.bsky.convo.listConvos", Some(&alice.token));
    assert_eq!(error_of(status, &body), (400, "InvalidRequest"));
    assert!(
        body["message"].as_str().unwrap().contains("atproto-proxy"),
        "{body}"
    );
    // Methods of this server are answered here even with a service configured.
    let (status, body) = get(&server, "app.bsky.actor.getPreferences", Some(&alice.token));
    assert_eq!(status, 200, "{body}");
    assert_eq!(appview.seen().len(), before);
}

#[test]
fn the_atproto_proxy_header_names_the_service() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    // A closed port: bind, note, let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = format!("http://localhost:{}", closed.port());
    let labeler = Upstream::start(
        &plc,
        &[
            ("atproto_labeler", "AtprotoLabeler"),
            ("bsky_chat", "BskyChatService"),
        ],
        &[
            ("gone", "AtprotoLabeler", dead.as_str()),
            ("ftp", "AtprotoLabeler", "ftp://localhost/"),
        ],
    );
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
        ],
    );
    let alice = create_account(&server, "alice");
    let to_labeler = format!("{}#atproto_labeler", labeler.did());
    let to_chat = format!("{}#bsky_chat", labeler.did());
    let proxied = |path: &str, token: &str, to: &str| {
        let (status, _, body) = get_with(&server, path, Some(token), &[("atproto-proxy", to)]);
        (status, json_of(&body))
    };

    // Any method, to the service the header names, with a token for that service.
    let (status, body) = proxied(
        "com.atproto.label.queryLabels?uriPatterns=*",
        &alice.token,
        &to_labeler,
    );
    assert_eq!(status, 200, "{body}");
    let claims = labeler
        .last("com.atproto.label.queryLabels")
        .claims
        .unwrap();
    // For the service the header named: the DID and the service id, as the reference mints it.
    assert_eq!(
        (claims["aud"].as_str(), claims["iss"].as_str()),
        (Some(to_labeler.as_str()), Some(alice.did.as_str()))
    );
    // The header wins over the namespace's default.
    let (status, body) = proxied(
        "app.bsky.actor.searchActors?q=bob",
        &alice.token,
        &to_labeler,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(labeler.count("app.bsky.actor.searchActors"), 1);
    assert_eq!(appview.count("app.bsky.actor.searchActors"), 0);

    // Bad headers, unknown services, unresolvable DIDs: the reference's messages.
    let web = labeler.did();
    for (header, message) in [
        (
            "#atproto_labeler".to_owned(),
            "no did specified in proxy header",
        ),
        (web.to_owned(), "no service id specified in proxy header"),
        (format!("{web}#a#b"), "invalid proxy header format"),
        (
            format!("{web}#nothing_here"),
            "could not resolve proxy did service url",
        ),
        (
            format!("{web}#ftp"),
            "could not resolve proxy did service url",
        ),
        (
            "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#bsky_appview".to_owned(),
            "could not resolve proxy did",
        ),
        (
            "did:web:localhost%3A1#bsky_appview".to_owned(),
            "could not resolve proxy did",
        ),
    ] {
        let (status, body) = proxied("app.bsky.actor.searchActors", &alice.token, &header);
        assert_eq!(
            error_of(status, &body),
            (400, "InvalidRequest"),
            "{header}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().starts_with(message),
            "{header}: {body}"
        );
    }
    // A service that is not there.
    let (status, body) = proxied(
        "app.bsky.actor.searchActors",
        &alice.token,
        &format!("{web}#gone"),
    );
    assert_eq!(error_of(status, &body), (502, "UpstreamFailure"), "{body}");

    // Direct messages: a full session or a privileged app password, never a plain one.
    let plain = app_password_session(&server, &alice.token, "alice.test", false);
    let privileged = app_password_session(&server, &alice.token, "alice.test", true);
    let (status, body) = proxied("chat.bsky.convo.listConvos", &plain, &to_chat);
    assert_eq!(error_of(status, &body), (400, "InvalidToken"), "{body}");
    let (status, body) = proxied(
        "chat.bsky.convo.getConvoAvailability?members=did:plc:bob",
        &plain,
        &to_chat,
    );
    assert_eq!(error_of(status, &body), (400, "InvalidToken"), "{body}");
    assert_eq!(labeler.count("chat.bsky.convo.listConvos"), 0);
    for token in [&privileged, &alice.token] {
        let (status, body) = proxied("chat.bsky.convo.listConvos", token, &to_chat);
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(labeler.count("chat.bsky.convo.listConvos"), 2);
    // Other methods work with a plain app password.
    let (status, body) = proxied("app.bsky.actor.searchActors?q=x", &plain, &to_labeler);
    assert_eq!(status, 200, "{body}");
    // An authority in upper case names the same methods: not a way past these rules.
    for path in [
        "CHAT.BSKY.convo.listConvos",
        "Chat.Bsky.convo.listConvos",
        "COM.ATPROTO.admin.sendEmail",
    ] {
        let (status, body) = proxied(path, &plain, &to_chat);
        assert_eq!(
            error_of(status, &body),
            (501, "MethodNotImplemented"),
            "{path}: {body}"
        );
    }
    assert_eq!(
        labeler
            .seen()
            .iter()
            .filter(|s| s.nsid.to_lowercase().starts_with("chat.bsky.")
                || s.nsid.to_lowercase().contains("sendemail"))
            .count(),
        2,
        "only the two chat calls above got through"
    );

    // Account management is never forwarded, whatever the header says: it is answered here
    // (admin.sendEmail needs the admin password, not an account's token).
    let res = http()
        .post(server.url("/xrpc/com.atproto.admin.sendEmail"))
        .bearer_auth(&alice.token)
        .header("atproto-proxy", &to_labeler)
        .json(&json!({"recipientDid": alice.did, "senderDid": alice.did, "content": "x"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(labeler.count("com.atproto.admin.sendEmail"), 0);
    // Methods this server implements are answered here, not forwarded.
    let (status, body) = proxied(
        "com.atproto.server.listAppPasswords",
        &alice.token,
        &to_labeler,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passwords"].as_array().unwrap().len(), 2);
    assert_eq!(labeler.count("com.atproto.server.listAppPasswords"), 0);

    // A token the service was given cannot be replayed here: not for account management, not
    // as a session at all.
    let stolen = labeler.last("chat.bsky.convo.listConvos").token.unwrap();
    for (nsid, input) in [
        (
            "com.atproto.server.createAppPassword",
            json!({"name": "evil"}),
        ),
        ("com.atproto.server.requestEmailUpdate", json!({})),
        ("com.atproto.server.requestAccountDelete", json!({})),
        ("com.atproto.server.deactivateAccount", json!({})),
        (
            "com.atproto.identity.updateHandle",
            json!({"handle": "mallory.test"}),
        ),
        (
            "com.atproto.repo.createRecord",
            json!({"repo": alice.did, "collection": "app.bsky.feed.post", "record": {"text": "x", "createdAt": "2024-01-01T00:00:00Z"}}),
        ),
    ] {
        let (status, body) = post(&server, nsid, Some(&stolen), input);
        // Refused for what the token is, before the input is looked at.
        assert_eq!(
            (status, body["error"].as_str(), body["message"].as_str()),
            (401, Some("InvalidToken"), Some("wrong token type")),
            "{nsid}"
        );
    }
    let (status, body) = get(&server, "com.atproto.server.getSession", Some(&stolen));
    assert_eq!(status, 401, "{body}");
    let (status, body) = get(
        &server,
        "com.atproto.server.listAppPasswords",
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passwords"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Streaming, time limits, upstream errors
// ---------------------------------------------------------------------------------------------

#[test]
fn large_bodies_stream_through_both_ways() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
        ],
    );
    let alice = create_account(&server, "alice");

    // 48 MiB down. The service sends its second chunk only once the client has read the first
    // through the server: a server that held the response back would never get it.
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 48;
    appview.reply(
        "app.bsky.unspecced.getLargeThing",
        Reply::Large {
            chunk_size: CHUNK,
            chunks: CHUNKS,
        },
    );
    let started = Instant::now();
    let mut response = http()
        .get(server.url("/xrpc/app.bsky.unspecced.getLargeThing"))
        .bearer_auth(&alice.token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(
        response.headers()["content-length"],
        (CHUNK * CHUNKS).to_string().as_str()
    );
    let mut first = vec![0u8; CHUNK];
    response.read_exact(&mut first).unwrap();
    assert!(first.iter().all(|&b| b == 0));
    appview.release();
    let mut rest = Vec::new();
    response.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), CHUNK * (CHUNKS - 1));
    for (i, chunk) in rest.chunks(CHUNK).enumerate() {
        assert!(chunk.iter().all(|&b| b == (i + 1) as u8), "chunk {}", i + 1);
    }
    assert!(started.elapsed() < Duration::from_secs(20));

    // 16 MiB up, to a procedure.
    let upload: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    let response = http()
        .post(server.url("/xrpc/app.bsky.unspecced.putLargeThing"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/octet-stream")
        .body(upload.clone())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<Value>().unwrap()["bodyLength"],
        upload.len()
    );
    let seen = appview.last("app.bsky.unspecced.putLargeThing");
    assert_eq!(seen.headers["content-type"], "application/octet-stream");
    assert!(seen.body == upload, "the body arrived changed");
}

#[test]
fn upstream_failures_are_clear_errors() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = format!("http://127.0.0.1:{}", closed.port());
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
            ("PDS_MOD_SERVICE_URL", nowhere.as_str()),
            ("PDS_MOD_SERVICE_DID", "did:web:mod.example.com"),
            ("PDS_PROXY_HEADERS_TIMEOUT", "1500"),
            ("PDS_PROXY_BODY_TIMEOUT", "1500"),
            ("PDS_BLOB_UPLOAD_LIMIT", "1048576"),
        ],
    );
    let alice = create_account(&server, "alice");
    let call = |nsid: &str| get_with(&server, nsid, Some(&alice.token), &[]);

    // The service's own errors come back as it gave them, with the atproto headers.
    appview.reply(
        "app.bsky.graph.getList",
        Reply::Json {
            status: 400,
            headers: vec![
                ("atproto-repo-rev", "3l2uygzaf5s2i".into()),
                ("x-internal", "no".into()),
            ],
            body: json!({"error": "InvalidList", "message": "no such list"}),
        },
    );
    let (status, headers, body) = call("app.bsky.graph.getList?list=x");
    assert_eq!(status, 400);
    assert_eq!(
        json_of(&body),
        json!({"error": "InvalidList", "message": "no such list"})
    );
    assert_eq!(headers["atproto-repo-rev"], "3l2uygzaf5s2i");
    assert!(headers.get("x-internal").is_none());
    // Its failures are UpstreamFailure (502).
    appview.reply(
        "app.bsky.graph.getLists",
        Reply::Json {
            status: 500,
            headers: vec![],
            body: json!({"error": "InternalServerError", "message": "database on fire"}),
        },
    );
    let (status, _, body) = call("app.bsky.graph.getLists?actor=x");
    assert_eq!(status, 502, "{body}");
    assert_eq!(json_of(&body)["message"], "database on fire");
    // An error that is not JSON still answers in the XRPC shape.
    appview.reply(
        "app.bsky.graph.getFollows",
        Reply::Text {
            status: 503,
            content_type: "text/html",
            body: "<h1>maintenance</h1>",
        },
    );
    let (status, headers, body) = call("app.bsky.graph.getFollows?actor=x");
    assert_eq!(status, 503);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(json_of(&body)["error"].is_string());
    // A successful answer of another type passes through as it is.
    appview.reply(
        "app.bsky.unspecced.getText",
        Reply::Text {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: "plain words",
        },
    );
    let (status, headers, body) = call("app.bsky.unspecced.getText");
    assert_eq!((status, body.as_str()), (200, "plain words"));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");

    // Nothing listening: UpstreamFailure.
    let (status, _, body) = call("tools.ozone.moderation.queryEvents");
    assert_eq!(
        error_of(status, &json_of(&body)),
        (502, "UpstreamFailure"),
        "{body}"
    );
    // No answer in time: UpstreamTimeout, in about the time allowed.
    appview.reply(
        "app.bsky.graph.getFollowers",
        Reply::SlowHeaders(Duration::from_secs(6)),
    );
    let started = Instant::now();
    let (status, _, body) = call("app.bsky.graph.getFollowers?actor=x");
    assert_eq!(
        error_of(status, &json_of(&body)),
        (504, "UpstreamTimeout"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // An upload that takes longer than the headers timeout, but never pauses that long, is not
    // the service being slow: the wait for its answer starts once the upload is done.
    let started = Instant::now();
    let response = http()
        .post(server.url("/xrpc/app.bsky.unspecced.slowUpload"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/octet-stream")
        .body(reqwest::blocking::Body::new(Trickle::new(
            5,
            1000,
            Duration::from_millis(600),
        )))
        .send()
        .unwrap();
    assert!(started.elapsed() > Duration::from_millis(2000));
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().unwrap()["bodyLength"], 5000);
    // A body over this server's request limit (1 MiB here) is refused as such, even sent
    // without a declared length.
    let response = http()
        .post(server.url("/xrpc/app.bsky.unspecced.bigUpload"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/octet-stream")
        .body(reqwest::blocking::Body::new(Trickle::new(
            20,
            100_000,
            Duration::ZERO,
        )))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or_default();
    assert_eq!(error_of(status, &body), (413, "PayloadTooLarge"), "{body}");

    // A body that stops coming: the response is cut off, not left hanging.
    appview.reply(
        "app.bsky.graph.getBlocks",
        Reply::Stall(Duration::from_secs(8)),
    );
    let started = Instant::now();
    let response = http()
        .get(server.url("/xrpc/app.bsky.graph.getBlocks"))
        .bearer_auth(&alice.token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.text().is_err(),
        "a stalled body must end in an error"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn without_configured_services_little_is_forwarded() {
    let plc = LocalPlc::start();
    let moderation = Upstream::start(&plc, &[], &[]);
    // Only a moderation service: it takes the reports too, as in the reference.
    let server = start_pds(
        &plc,
        &[
            ("PDS_MOD_SERVICE_URL", moderation.url()),
            ("PDS_MOD_SERVICE_DID", moderation.did()),
        ],
    );
    let alice = create_account(&server, "alice");
    for nsid in [
        "app.bsky.feed.getTimeline",
        "app.bsky.actor.getProfile?actor=alice.test",
        "app.bsky.feed.getFeed?feed=at://did:plc:x/app.bsky.feed.generator/y",
        "app.bsky.notification.listNotifications",
    ] {
        let (status, body) = get(&server, nsid, Some(&alice.token));
        assert_eq!(
            error_of(status, &body),
            (501, "MethodNotImplemented"),
            "{nsid}: {body}"
        );
    }
    let (status, body) = post(
        &server,
        "app.bsky.notification.registerPush",
        Some(&alice.token),
        json!({"serviceDid": "did:web:api.bsky.app", "token": "t", "platform": "ios", "appId": "xyz.blueskyweb.app"}),
    );
    assert_eq!(
        error_of(status, &body),
        (501, "MethodNotImplemented"),
        "{body}"
    );
    let (status, body) = get(&server, "app.bsky.actor.getPreferences", Some(&alice.token));
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        "com.atproto.moderation.createReport",
        Some(&alice.token),
        json!({"reasonType": "com.atproto.moderation.defs#reasonSpam", "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": "did:plc:bob"}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        moderation
            .last("com.atproto.moderation.createReport")
            .claims
            .unwrap()["aud"],
        moderation.did()
    );
}

// ---------------------------------------------------------------------------------------------
// Push registrations, getFeed
// ---------------------------------------------------------------------------------------------

#[test]
fn push_registrations_go_to_the_notification_service_named() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    let notifications = Upstream::start(&plc, &[("bsky_notif", "BskyNotificationService")], &[]);
    let elsewhere = Upstream::start(&plc, &[("bsky_notif", "SomethingElse")], &[]);
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
        ],
    );
    let alice = create_account(&server, "alice");
    let registration = |service: &str| json!({"serviceDid": service, "token": "device-token", "platform": "ios", "appId": "xyz.blueskyweb.app"});
    const REGISTER: &str = "app.bsky.notification.registerPush";
    const UNREGISTER: &str = "app.bsky.notification.unregisterPush";

    // The AppView's own DID: to the AppView.
    let (status, body) = post(
        &server,
        REGISTER,
        Some(&alice.token),
        registration(appview.did()),
    );
    assert_eq!(status, 200, "{body}");
    let seen = appview.last(REGISTER);
    assert_eq!(
        json_of(std::str::from_utf8(&seen.body).unwrap()),
        registration(appview.did())
    );
    let claims = seen.claims.unwrap();
    assert_eq!(
        (claims["aud"].as_str(), claims["lxm"].as_str()),
        (Some(appview.did()), Some(REGISTER))
    );
    // Another DID: its #bsky_notif service.
    let (status, body) = post(
        &server,
        REGISTER,
        Some(&alice.token),
        registration(notifications.did()),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        notifications.last(REGISTER).claims.unwrap()["aud"],
        notifications.did()
    );
    let (status, body) = post(
        &server,
        UNREGISTER,
        Some(&alice.token),
        registration(notifications.did()),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        notifications.last(UNREGISTER).claims.unwrap()["lxm"],
        UNREGISTER
    );
    // A DID without a notification service, bad input, the service's refusal.
    let (status, body) = post(
        &server,
        REGISTER,
        Some(&alice.token),
        registration(elsewhere.did()),
    );
    assert_eq!(error_of(status, &body), (400, "InvalidRequest"), "{body}");
    assert_eq!(elsewhere.seen().len(), 0);
    let (status, body) = post(
        &server,
        REGISTER,
        Some(&alice.token),
        json!({"serviceDid": appview.did()}),
    );
    assert_eq!(error_of(status, &body), (400, "InvalidRequest"), "{body}");
    let (status, body) = post(
        &server,
        REGISTER,
        Some(&alice.token),
        registration("not a did"),
    );
    assert_eq!(error_of(status, &body), (400, "InvalidRequest"), "{body}");
    appview.reply(
        REGISTER,
        Reply::Json {
            status: 400,
            headers: vec![],
            body: json!({"error": "InvalidRequest", "message": "bad app id"}),
        },
    );
    let (status, body) = post(
        &server,
        REGISTER,
        Some(&alice.token),
        registration(appview.did()),
    );
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("bad app id"))
    );
    let (status, body) = post(&server, REGISTER, None, registration(appview.did()));
    assert_eq!(error_of(status, &body), (401, "AuthenticationRequired"));
}

#[test]
fn get_feed_carries_a_token_for_the_feed_generator() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
        ],
    );
    let alice = create_account(&server, "alice");
    let feed = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.generator/whats-hot";
    let generator_view = |did: Option<&str>| {
        let mut view = json!({"uri": feed, "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
            "creator": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "hot.example.com"},
            "displayName": "Hot", "indexedAt": "2024-01-01T00:00:00.000Z"});
        if let Some(did) = did {
            view["did"] = json!(did);
        }
        Reply::json(json!({"view": view, "isOnline": true, "isValid": true}))
    };
    appview.reply(
        "app.bsky.feed.getFeedGenerator",
        generator_view(Some("did:web:feeds.example.com")),
    );
    appview.reply("app.bsky.feed.getFeed", Reply::json(json!({"feed": []})));
    let (status, body) = get(
        &server,
        &format!("app.bsky.feed.getFeed?feed={feed}&limit=5"),
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"feed": []}));
    // The generator's DID was asked for with the account's token (checked by the AppView).
    let asked = appview.last("app.bsky.feed.getFeedGenerator");
    assert_eq!(
        asked.query.as_deref(),
        Some(
            "feed=at%3A%2F%2Fdid%3Aplc%3Aewvi7nxzyoun6zhxrhs64oiz%2Fapp.bsky.feed.generator%2Fwhats-hot"
        )
    );
    assert_eq!(asked.claims.unwrap()["iss"], alice.did.as_str());
    let claims = appview.last("app.bsky.feed.getFeed").claims.unwrap();
    assert_eq!(claims["aud"], "did:web:feeds.example.com");
    assert_eq!(claims["lxm"], "app.bsky.feed.getFeedSkeleton");
    assert_eq!(claims["iss"], alice.did.as_str());

    // A feed view without a generator DID, a feed the AppView does not have, a bad URI.
    appview.reply("app.bsky.feed.getFeedGenerator", generator_view(None));
    let (status, body) = get(
        &server,
        &format!("app.bsky.feed.getFeed?feed={feed}"),
        Some(&alice.token),
    );
    assert_eq!(error_of(status, &body), (400, "UnknownFeed"), "{body}");
    appview.reply(
        "app.bsky.feed.getFeedGenerator",
        Reply::Json {
            status: 400,
            headers: vec![],
            body: json!({"error": "UnknownFeed", "message": "Unknown feed"}),
        },
    );
    let (status, body) = get(
        &server,
        &format!("app.bsky.feed.getFeed?feed={feed}"),
        Some(&alice.token),
    );
    assert_eq!(error_of(status, &body), (400, "UnknownFeed"), "{body}");
    assert_eq!(body["message"], "Unknown feed");
    let (status, body) = get(
        &server,
        "app.bsky.feed.getFeed?feed=hot",
        Some(&alice.token),
    );
    assert_eq!(error_of(status, &body), (400, "InvalidRequest"), "{body}");
    assert_eq!(appview.count("app.bsky.feed.getFeed"), 1);
}

// ---------------------------------------------------------------------------------------------
// Read-after-write
// ---------------------------------------------------------------------------------------------

fn create_post(server: &TestServer, token: &str, did: &str, record: Value) -> (String, String) {
    let (status, body) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(token),
        json!({"repo": did, "collection": "app.bsky.feed.post", "record": record}),
    );
    assert_eq!(status, 200, "{body}");
    (
        body["uri"].as_str().unwrap().to_owned(),
        body["cid"].as_str().unwrap().to_owned(),
    )
}

fn head_rev(server: &TestServer, did: &str) -> String {
    let (status, body) = get(
        server,
        &format!("com.atproto.sync.getLatestCommit?did={did}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["rev"].as_str().unwrap().to_owned()
}

/// An AppView answer with the revision it has indexed.
fn indexed_at(rev: &str, body: Value) -> Reply {
    Reply::Json {
        status: 200,
        headers: vec![("atproto-repo-rev", rev.to_owned())],
        body,
    }
}

fn post_view(uri: &str, did: &str, handle: &str, display_name: &str, indexed_at: &str) -> Value {
    json!({
        "uri": uri,
        "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
        "author": {"did": did, "handle": handle, "displayName": display_name},
        "record": {"$type": "app.bsky.feed.post", "text": "from the appview", "createdAt": indexed_at},
        "replyCount": 0, "repostCount": 0, "likeCount": 3, "indexedAt": indexed_at,
    })
}

#[test]
fn reads_after_writes_show_what_the_appview_has_not_indexed() {
    let plc = LocalPlc::start();
    let appview = Upstream::start(&plc, &[("bsky_appview", "BskyAppView")], &[]);
    let server = start_pds(
        &plc,
        &[
            ("PDS_BSKY_APP_VIEW_URL", appview.url()),
            ("PDS_BSKY_APP_VIEW_DID", appview.did()),
        ],
    );
    let alice = create_account(&server, "alice");
    let did = alice.did.as_str();
    let (status, body) = post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&alice.token),
        json!({"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": {"$type": "app.bsky.actor.profile", "displayName": "Alice Before", "description": "old"}}),
    );
    assert_eq!(status, 200, "{body}");
    let (first, first_cid) = create_post(
        &server,
        &alice.token,
        did,
        json!({"$type": "app.bsky.feed.post", "text": "indexed already", "createdAt": "2024-05-01T12:00:00.000Z"}),
    );
    // What the AppView has indexed.
    let indexed = head_rev(&server, did);
    // Written after that: a new profile, a post with a link, a reply to the first post.
    let (status, body) = post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&alice.token),
        json!({"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": {"$type": "app.bsky.actor.profile", "displayName": "Alice After", "description": "new"}}),
    );
    assert_eq!(status, 200, "{body}");
    let (fresh, _) = create_post(
        &server,
        &alice.token,
        did,
        json!({
            "$type": "app.bsky.feed.post", "text": "just posted", "createdAt": "2024-05-01T12:05:00.000Z",
            "embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://example.com", "title": "Example", "description": "a link"}},
        }),
    );
    let (reply, _) = create_post(
        &server,
        &alice.token,
        did,
        json!({
            "$type": "app.bsky.feed.post", "text": "replying to myself", "createdAt": "2024-05-01T12:06:00.000Z",
            "reply": {"root": {"uri": first, "cid": first_cid}, "parent": {"uri": first, "cid": first_cid}},
        }),
    );
    let bob_post = post_view(
        "at://did:plc:bob/app.bsky.feed.post/1",
        "did:plc:bob",
        "bob.test",
        "Bob",
        "2020-01-01T00:00:00.000Z",
    );

    // The timeline: the new posts on top, newest first, as the AppView would show them.
    appview.reply(
        "app.bsky.feed.getTimeline",
        indexed_at(
            &indexed,
            json!({"feed": [{"post": bob_post}], "cursor": "c1"}),
        ),
    );
    let (status, headers, body) = get_with(
        &server,
        "app.bsky.feed.getTimeline?limit=10",
        Some(&alice.token),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let timeline = json_of(&body);
    let uris: Vec<&str> = timeline["feed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["post"]["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            reply.as_str(),
            fresh.as_str(),
            "at://did:plc:bob/app.bsky.feed.post/1"
        ]
    );
    assert_eq!(timeline["cursor"], "c1");
    let mine = &timeline["feed"][1]["post"];
    assert_eq!(mine["record"]["text"], "just posted");
    assert_eq!(
        mine["author"],
        json!({"did": did, "handle": "alice.test", "displayName": "Alice After"})
    );
    assert_eq!(mine["likeCount"], 0);
    assert_eq!(mine["embed"]["$type"], "app.bsky.embed.external#view");
    assert_eq!(mine["embed"]["external"]["uri"], "https://example.com");
    assert!(mine["indexedAt"].as_str().unwrap().ends_with('Z'));
    let lag: u64 = headers["atproto-upstream-lag"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lag < 120_000, "{lag}");
    assert_eq!(headers["atproto-repo-rev"], indexed.as_str());
    assert_eq!(headers["content-type"], "application/json");
    // The AppView was asked for uncompressed JSON, with a token for the timeline.
    let seen = appview.last("app.bsky.feed.getTimeline");
    assert_eq!(seen.headers["accept-encoding"], "identity");
    assert_eq!(seen.claims.unwrap()["lxm"], "app.bsky.feed.getTimeline");
    // A later page is left as it is.
    let (status, _, body) = get_with(
        &server,
        "app.bsky.feed.getTimeline?cursor=c1",
        Some(&alice.token),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["feed"].as_array().unwrap().len(), 1);

    // The profile: the new one, the AppView's counts kept.
    appview.reply(
        "app.bsky.actor.getProfile",
        indexed_at(&indexed, json!({"did": did, "handle": "alice.test", "displayName": "Alice Before", "description": "old", "followersCount": 7})),
    );
    let (status, body) = get(
        &server,
        "app.bsky.actor.getProfile?actor=alice.test",
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["displayName"], "Alice After");
    assert_eq!(body["description"], "new");
    assert_eq!(body["followersCount"], 7);
    appview.reply(
        "app.bsky.actor.getProfiles",
        indexed_at(
            &indexed,
            json!({"profiles": [
                {"did": "did:plc:bob", "handle": "bob.test", "displayName": "Bob"},
                {"did": did, "handle": "alice.test", "displayName": "Alice Before"},
            ]}),
        ),
    );
    let (status, body) = get(
        &server,
        &format!("app.bsky.actor.getProfiles?actors=did:plc:bob&actors={did}"),
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profiles"][0]["displayName"], "Bob");
    assert_eq!(body["profiles"][1]["displayName"], "Alice After");

    // Her own feed: the new posts, and her new name on the old one.
    let old_view = post_view(
        &first,
        did,
        "alice.test",
        "Alice Before",
        "2024-05-01T12:00:00.000Z",
    );
    appview.reply(
        "app.bsky.feed.getAuthorFeed",
        indexed_at(&indexed, json!({"feed": [{"post": old_view}]})),
    );
    let (status, body) = get(
        &server,
        "app.bsky.feed.getAuthorFeed?actor=alice.test&filter=posts_no_replies",
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    let feed = body["feed"].as_array().unwrap();
    assert_eq!(feed.len(), 2, "{body}");
    assert_eq!(feed[0]["post"]["uri"], fresh.as_str());
    assert_eq!(feed[1]["post"]["uri"], first.as_str());
    assert_eq!(feed[1]["post"]["author"]["displayName"], "Alice After");
    assert_eq!(feed[1]["post"]["likeCount"], 3);
    // Someone else's feed is theirs.
    appview.reply(
        "app.bsky.feed.getAuthorFeed",
        indexed_at(&indexed, json!({"feed": [{"post": bob_post}]})),
    );
    let (status, body) = get(
        &server,
        "app.bsky.feed.getAuthorFeed?actor=bob.test",
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["feed"].as_array().unwrap().len(), 1);

    // A thread: her new reply under the post it answers.
    appview.reply(
        "app.bsky.feed.getPostThread",
        indexed_at(&indexed, json!({"thread": {"$type": "app.bsky.feed.defs#threadViewPost", "post": post_view(&first, did, "alice.test", "Alice Before", "2024-05-01T12:00:00.000Z"), "replies": []}})),
    );
    let (status, body) = get(
        &server,
        &format!("app.bsky.feed.getPostThread?uri={first}"),
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    let replies = body["thread"]["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 1, "{body}");
    assert_eq!(replies[0]["$type"], "app.bsky.feed.defs#threadViewPost");
    assert_eq!(replies[0]["post"]["uri"], reply.as_str());
    // A post the AppView does not know yet: the thread is built here.
    appview.reply(
        "app.bsky.feed.getPostThread",
        Reply::Json {
            status: 400,
            headers: vec![("atproto-repo-rev", indexed.clone())],
            body: json!({"error": "NotFound", "message": format!("Post not found: {fresh}")}),
        },
    );
    let (status, headers, body) = get_with(
        &server,
        &format!("app.bsky.feed.getPostThread?uri={fresh}"),
        Some(&alice.token),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let thread = json_of(&body);
    assert_eq!(thread["thread"]["post"]["uri"], fresh.as_str());
    assert_eq!(thread["thread"]["post"]["record"]["text"], "just posted");
    assert!(headers.contains_key("atproto-upstream-lag"));
    // ... by handle too; but another account's missing post stays missing.
    let handle_uri = fresh.replace(did, "alice.test");
    let (status, body) = get(
        &server,
        &format!("app.bsky.feed.getPostThread?uri={handle_uri}"),
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(
        &server,
        "app.bsky.feed.getPostThread?uri=at://did:plc:bob/app.bsky.feed.post/2",
        Some(&alice.token),
    );
    assert_eq!(error_of(status, &body), (400, "NotFound"), "{body}");

    // Likes: her posts there carry her new name.
    appview.reply(
        "app.bsky.feed.getActorLikes",
        indexed_at(&indexed, json!({"feed": [{"post": post_view(&first, did, "alice.test", "Alice Before", "2024-05-01T12:00:00.000Z")}, {"post": bob_post}]})),
    );
    let (status, body) = get(
        &server,
        "app.bsky.feed.getActorLikes?actor=alice.test",
        Some(&alice.token),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["feed"][0]["post"]["author"]["displayName"],
        "Alice After"
    );
    assert_eq!(body["feed"][1]["post"]["author"]["displayName"], "Bob");
    assert_eq!(body["feed"].as_array().unwrap().len(), 2);

    // An AppView that is up to date, or says nothing of its revision: its answer, byte for byte.
    let current = head_rev(&server, did);
    for reply in [
        indexed_at(&current, json!({"feed": [{"post": bob_post}]})),
        Reply::json(json!({"feed": [{"post": bob_post}]})),
    ] {
        appview.reply("app.bsky.feed.getTimeline", reply);
        let (status, headers, body) = get_with(
            &server,
            "app.bsky.feed.getTimeline",
            Some(&alice.token),
            &[],
        );
        assert_eq!(status, 200);
        assert_eq!(json_of(&body), json!({"feed": [{"post": bob_post}]}));
        assert!(!headers.contains_key("atproto-upstream-lag"));
    }
}
