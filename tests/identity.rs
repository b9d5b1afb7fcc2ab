//! Handles on the real binary: `resolveHandle`, `updateHandle` (service handles and custom
//! domains, with the did:plc document following), and `/.well-known/atproto-did`.
//!
//! Custom domains are made-up names under `example.org`, pointed at loopback with the dev-mode
//! `PDS_DEV_DNS_OVERRIDES` (a DNS TXT record, or the address of a small HTTP server here that
//! answers `/.well-known/atproto-did` by Host), so nothing leaves the machine.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{LocalPlc, ServerOptions, TestServer, get, http, post, raw_http};
use serde_json::{Value, json};

const PASSWORD: &str = "hunter22hunter22";

fn start(plc: &LocalPlc, dns: Option<&str>) -> TestServer {
    let mut env = vec![
        ("PDS_DID_PLC_URL", plc.url.as_str()),
        ("PDS_EMBEDDED_PLC", "false"),
    ];
    if let Some(dns) = dns {
        env.push(("PDS_DEV_DNS_OVERRIDES", dns));
    }
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

fn create_account(server: &TestServer, handle: &str) -> (String, String) {
    create_account_with_email(server, handle, &format!("{handle}@example.com"))
}

fn create_account_with_email(server: &TestServer, handle: &str, email: &str) -> (String, String) {
    let (status, body) = post(
        server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": handle, "email": email, "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{body}");
    (
        body["did"].as_str().unwrap().to_owned(),
        body["accessJwt"].as_str().unwrap().to_owned(),
    )
}

fn resolve(server: &TestServer, handle: &str) -> (u16, Value) {
    get(
        server,
        &format!("com.atproto.identity.resolveHandle?handle={handle}"),
        None,
    )
}

fn update_handle(server: &TestServer, token: &str, handle: &str) -> (u16, Value) {
    post(
        server,
        "com.atproto.identity.updateHandle",
        Some(token),
        json!({ "handle": handle }),
    )
}

fn plc_get(plc: &LocalPlc, path: &str) -> Value {
    http()
        .get(format!("{}/{path}", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// An HTTP server on loopback answering `/.well-known/atproto-did` from a Host → DID table the
/// test changes as it goes; 404 for hosts not in it.
struct WellKnownServer {
    addr: SocketAddr,
    dids: Arc<Mutex<HashMap<String, String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl WellKnownServer {
    fn start() -> WellKnownServer {
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::response::IntoResponse;

        type Dids = Arc<Mutex<HashMap<String, String>>>;
        async fn answer(State(dids): State<Dids>, headers: HeaderMap) -> axum::response::Response {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let host = host.split(':').next().unwrap_or_default().to_owned();
            match dids.lock().unwrap().get(&host) {
                Some(did) => did.clone().into_response(),
                None => (StatusCode::NOT_FOUND, "no such handle").into_response(),
            }
        }

        let dids: Dids = Arc::default();
        let app = axum::Router::new()
            .route("/.well-known/atproto-did", axum::routing::get(answer))
            .with_state(dids.clone());
        let (addr, runtime) = common::serve_on_loopback(app);
        WellKnownServer {
            addr,
            dids,
            _runtime: runtime,
        }
    }

    fn set(&self, host: &str, did: &str) {
        self.dids
            .lock()
            .unwrap()
            .insert(host.to_owned(), did.to_owned());
    }
}

/// Registers a did:plc directly with the directory (an account hosted somewhere else) that
/// claims `handle`.
fn register_elsewhere(plc: &LocalPlc, handle: &str) -> String {
    use pds_crypto::{Algorithm, Keypair};
    let rotation = Keypair::generate(Algorithm::K256);
    let signing = Keypair::generate(Algorithm::K256);
    let data = pds_plc::PlcData::atproto(
        handle,
        "https://pds.example.org",
        &signing.did_key(),
        vec![rotation.did_key()],
    );
    let genesis = pds_plc::UnsignedOp::genesis(data).sign(&rotation);
    let did = genesis.did().unwrap();
    let res = http()
        .post(format!("{}/{did}", plc.url))
        .json(&genesis)
        .send()
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().unwrap());
    did
}

#[test]
fn resolve_handle_answers_hosted_and_refuses_unknown() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let (did, _) = create_account(&server, "alice.test");

    for handle in ["alice.test", "ALICE.Test"] {
        let (status, body) = resolve(&server, handle);
        assert_eq!(status, 200, "{handle}: {body}");
        assert_eq!(body, json!({ "did": did }));
    }
    // Under this server's domain and not hosted: not found, without asking anyone.
    let (status, body) = resolve(&server, "nobody.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("HandleNotFound")),
        "{body}"
    );
    assert_eq!(body["message"], "Unable to resolve handle");
    // Bad input.
    let (status, body) = resolve(&server, "not%20a%20handle");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
    let (status, body) = get(&server, "com.atproto.identity.resolveHandle", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
}

#[test]
fn update_handle_to_another_service_handle() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let (did, token) = create_account(&server, "alice.test");
    create_account(&server, "bob.test");

    // Refusals first: nothing may change.
    let refusals = [
        ("bob.test", "HandleNotAvailable"),
        ("al.test", "InvalidHandle"),
        ("alice.other.test", "InvalidHandle"),
        ("alice.local", "InvalidHandle"),
        ("not a handle", "InvalidHandle"),
    ];
    for (handle, error) in refusals {
        let (status, body) = update_handle(&server, &token, handle);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{handle}: {body}"
        );
    }
    let (status, body) = post(
        &server,
        "com.atproto.identity.updateHandle",
        None,
        json!({"handle": "alice2.test"}),
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        plc_get(&plc, &format!("{did}/log/audit"))
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (status, body) = update_handle(&server, &token, "Alice2.test");
    assert_eq!(status, 200, "{body}");

    // The directory's document and log show the new handle, in an update signed on top of
    // the genesis operation, and the whole log still verifies.
    let doc = plc_get(&plc, &did);
    assert_eq!(doc["alsoKnownAs"], json!(["at://alice2.test"]));
    let audit = plc_get(&plc, &format!("{did}/log/audit"));
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[1]["operation"]["prev"], entries[0]["cid"]);
    assert_eq!(
        entries[1]["operation"]["alsoKnownAs"],
        json!(["at://alice2.test"])
    );
    assert_eq!(
        entries[1]["operation"]["services"],
        entries[0]["operation"]["services"]
    );
    let log: Vec<pds_plc::LogEntry> = serde_json::from_value(audit.clone()).unwrap();
    let state = pds_plc::verify_audit_log(&log).unwrap().unwrap();
    assert_eq!(state.handle(), Some("alice2.test"));

    // The server follows: resolution, the session, logging in.
    assert_eq!(resolve(&server, "alice2.test").1, json!({ "did": did }));
    let (status, body) = resolve(&server, "alice.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("HandleNotFound"))
    );
    let (_, session) = get(&server, "com.atproto.server.getSession", Some(&token));
    assert_eq!(session["handle"], "alice2.test");
    let (status, body) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": "alice2.test", "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{body}");

    // Asking again for the handle it has changes nothing (no new operation).
    let (status, body) = update_handle(&server, &token, "alice2.test");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        plc_get(&plc, &format!("{did}/log/audit"))
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The old handle is free for someone else.
    let (other, _) = create_account_with_email(&server, "alice.test", "other@example.com");
    assert_ne!(other, did);
    assert_eq!(resolve(&server, "alice.test").1, json!({ "did": other }));

    // An app-password session may not change the handle.
    let (status, app) = post(
        &server,
        "com.atproto.server.createAppPassword",
        Some(&token),
        json!({"name": "app"}),
    );
    assert_eq!(status, 200, "{app}");
    let (_, app_session) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": did, "password": app["password"]}),
    );
    let app_token = app_session["accessJwt"].as_str().unwrap();
    let (status, body) = update_handle(&server, app_token, "alice3.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidToken")),
        "{body}"
    );
}

#[test]
fn custom_domains_must_point_at_the_did() {
    let plc = LocalPlc::start();
    let well_known = WellKnownServer::start();
    // A DID hosted elsewhere, claiming dave.example.org, reachable by DNS TXT; mallory's
    // record points at the same DID, which does not claim it back.
    let dave = register_elsewhere(&plc, "dave.example.org");
    let addr = well_known.addr;
    let dns = format!(
        "alice.example.org={addr},nowhere.example.org={addr},\
         _atproto.dave.example.org=did={dave},_atproto.mallory.example.org=did={dave}"
    );
    let server = start(&plc, Some(&dns));
    let (did, token) = create_account(&server, "alice.test");
    let (bob, _) = create_account(&server, "bob.test");

    // Resolution of handles hosted elsewhere, verified both ways.
    assert_eq!(
        resolve(&server, "dave.example.org").1,
        json!({ "did": dave })
    );
    for handle in ["mallory.example.org", "nowhere.example.org"] {
        let (status, body) = resolve(&server, handle);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("HandleNotFound")),
            "{handle}: {body}"
        );
    }

    // Not pointing anywhere yet, then pointing at someone else: refused, nothing changes.
    let (status, body) = update_handle(&server, &token, "alice.example.org");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("External handle did not resolve to DID"),
        "{body}"
    );
    well_known.set("alice.example.org", &bob);
    let (status, body) = update_handle(&server, &token, "alice.example.org");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
    // A domain that points at another DID by DNS: refused too.
    let (status, body) = update_handle(&server, &token, "mallory.example.org");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
    assert_eq!(
        plc_get(&plc, &did)["alsoKnownAs"],
        json!(["at://alice.test"])
    );

    // Pointing at alice's DID (fetched fresh: no stale cached refusal).
    well_known.set("alice.example.org", &did);
    let (status, body) = update_handle(&server, &token, "alice.example.org");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        plc_get(&plc, &did)["alsoKnownAs"],
        json!(["at://alice.example.org"])
    );
    assert_eq!(
        resolve(&server, "alice.example.org").1,
        json!({ "did": did })
    );
    let (status, _) = resolve(&server, "alice.test");
    assert_eq!(status, 400);

    // Another account cannot take it, even though it is not a service handle.
    let (_, bob_token) = {
        let (status, body) = post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": "bob.test", "password": PASSWORD}),
        );
        assert_eq!(status, 200, "{body}");
        ((), body["accessJwt"].as_str().unwrap().to_owned())
    };
    well_known.set("alice.example.org", &bob);
    let (status, body) = update_handle(&server, &bob_token, "alice.example.org");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("HandleNotAvailable")),
        "{body}"
    );
}

#[test]
fn well_known_atproto_did_answers_by_host() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let (did, _) = create_account(&server, "alice.test");

    let ask = |host: &str| {
        raw_http(
            server.addr,
            &format!(
                "GET /.well-known/atproto-did HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    for host in [
        "alice.test",
        "ALICE.test",
        &format!("alice.test:{}", server.addr.port()),
    ] {
        let response = ask(host);
        assert!(response.starts_with("HTTP/1.1 200"), "{host}: {response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: text/plain"),
            "{response}"
        );
        assert!(response.ends_with(&format!("\r\n\r\n{did}")), "{response}");
    }
    for host in [
        "nobody.test",
        "localhost",
        &server.addr.to_string(),
        "alice.example.org",
    ] {
        let response = ask(host);
        assert!(response.starts_with("HTTP/1.1 404"), "{host}: {response}");
    }
}

#[test]
fn handle_changes_the_directory_refuses_change_nothing() {
    use pds_crypto::{Algorithm, Keypair};
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let (bob, bob_token) = create_account(&server, "bob.test");

    // Alice keeps a recovery key, and uses it to take the DID out of this server's hands.
    let recovery = Keypair::generate(Algorithm::K256);
    let (status, alice) = post(
        &server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": "alice.test", "email": "alice@example.com", "password": PASSWORD,
               "recoveryKey": recovery.did_key()}),
    );
    assert_eq!(status, 200, "{alice}");
    let did = alice["did"].as_str().unwrap();
    let token = alice["accessJwt"].as_str().unwrap();
    let audit: Vec<pds_plc::LogEntry> =
        serde_json::from_value(plc_get(&plc, &format!("{did}/log/audit"))).unwrap();
    let last = &audit.last().unwrap().operation;
    let mut data = last.data().unwrap();
    assert_eq!(data.rotation_keys.len(), 2);
    data.rotation_keys = vec![recovery.did_key()];
    let op = pds_plc::UnsignedOp::update(data, &last.cid()).sign(&recovery);
    let res = http()
        .post(format!("{}/{did}", plc.url))
        .json(&op)
        .send()
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().unwrap());

    let (status, body) = update_handle(&server, token, "alice2.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("rotation key"),
        "{body}"
    );
    assert_eq!(resolve(&server, "alice.test").1, json!({ "did": did }));
    assert_eq!(
        plc_get(&plc, did)["alsoKnownAs"],
        json!(["at://alice.test"])
    );

    // With the directory gone, a change fails as an upstream failure and changes nothing.
    drop(plc);
    let (status, body) = update_handle(&server, &bob_token, "bob2.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("UpstreamFailure")),
        "{body}"
    );
    assert_eq!(resolve(&server, "bob.test").1, json!({ "did": bob }));
    assert_eq!(resolve(&server, "bob2.test").0, 400);
}

/// A directory in front of a real one that forwards everything, until told to refuse every
/// submitted operation.
struct RefusingPlc {
    url: String,
    refuse: Arc<std::sync::atomic::AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl RefusingPlc {
    fn start(upstream: &LocalPlc) -> RefusingPlc {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{Method, StatusCode, Uri};
        use axum::response::IntoResponse;
        use std::sync::atomic::{AtomicBool, Ordering};

        type Shared = (String, Arc<AtomicBool>);
        async fn forward(
            State((upstream, refuse)): State<Shared>,
            method: Method,
            uri: Uri,
            body: Bytes,
        ) -> axum::response::Response {
            if method == Method::POST && refuse.load(Ordering::SeqCst) {
                let body = axum::Json(json!({"message": "refused for the test"}));
                return (StatusCode::BAD_REQUEST, body).into_response();
            }
            let client = reqwest::Client::new();
            let url = format!("{upstream}{uri}");
            let request = if method == Method::POST {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
            } else {
                client.get(url)
            };
            let response = request.send().await.unwrap();
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
            let bytes = response.bytes().await.unwrap();
            (status, [("content-type", "application/json")], bytes).into_response()
        }

        let refuse = Arc::new(AtomicBool::new(false));
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((upstream.url.clone(), refuse.clone()));
        let (addr, runtime) = common::serve_on_loopback(app);
        RefusingPlc {
            url: format!("http://{addr}"),
            refuse,
            _runtime: runtime,
        }
    }
}

#[test]
fn a_refused_operation_puts_the_old_handle_back() {
    let upstream = LocalPlc::start();
    let plc = RefusingPlc::start(&upstream);
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
        ],
        ..Default::default()
    });
    let (did, token) = create_account(&server, "alice.test");
    plc.refuse.store(true, std::sync::atomic::Ordering::SeqCst);

    let (status, body) = update_handle(&server, &token, "alice2.test");
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("UpstreamFailure")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("refused for the test"),
        "{body}"
    );
    // The account row was changed first and is back as the directory has it.
    assert_eq!(resolve(&server, "alice.test").1, json!({ "did": did }));
    assert_eq!(resolve(&server, "alice2.test").0, 400);
    let (_, session) = get(&server, "com.atproto.server.getSession", Some(&token));
    assert_eq!(session["handle"], "alice.test");
    assert_eq!(
        plc_get(&upstream, &did)["alsoKnownAs"],
        json!(["at://alice.test"])
    );

    // Once the directory takes operations again, the same change goes through.
    plc.refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = update_handle(&server, &token, "alice2.test");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        plc_get(&upstream, &did)["alsoKnownAs"],
        json!(["at://alice2.test"])
    );
}
