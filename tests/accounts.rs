//! Accounts and sessions on the real binary: `createAccount` registers a did:plc with a PLC
//! directory (run here in-process on loopback), and the session methods behave as clients expect,
//! including every refusal.

mod common;

use common::{LocalPlc, ServerOptions, TestServer, get, http, post};
use serde_json::{Value, json};

fn start(plc: &LocalPlc) -> TestServer {
    TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
        ],
        ..Default::default()
    })
}

fn create_account(server: &TestServer, handle: &str, email: &str) -> Value {
    let (status, body) = post(
        server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": handle, "email": email, "password": "hunter22hunter22"}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn create_account_registers_a_did_and_logs_in() {
    let plc = LocalPlc::start();
    let server = start(&plc);
    let account = create_account(&server, "alice.test", "alice@example.com");
    let did = account["did"].as_str().unwrap();
    assert!(did.starts_with("did:plc:") && did.len() == 32, "{did}");
    assert_eq!(account["handle"], "alice.test");

    // The directory now serves the DID document pointing at this server, with the handle.
    let doc: Value = http()
        .get(format!("{}/{did}", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(doc["alsoKnownAs"][0], "at://alice.test");
    assert_eq!(
        doc["service"][0]["serviceEndpoint"],
        "http://localhost:".to_string() + &server.addr.port().to_string()
    );

    // The session works.
    let (status, session) = get(
        &server,
        "com.atproto.server.getSession",
        account["accessJwt"].as_str(),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["did"], did);
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["active"], true);

    // Log in by handle, by DID and by e-mail, any case.
    for identifier in ["alice.test", did, "ALICE@example.com", "Alice.Test"] {
        let (status, body) = post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": identifier, "password": "hunter22hunter22"}),
        );
        assert_eq!(status, 200, "{identifier}: {body}");
        assert_eq!(body["did"], did);
    }
}

#[test]
fn account_creation_refusals() {
    let plc = LocalPlc::start();
    let server = start(&plc);
    create_account(&server, "taken.test", "taken@example.com");
    let cases = [
        (
            json!({"handle": "taken.test", "password": "longenough1"}),
            "HandleNotAvailable",
        ),
        (
            json!({"handle": "other.test", "email": "TAKEN@example.com", "password": "longenough1"}),
            "EmailNotAvailable",
        ),
        (
            json!({"handle": "bob.example.com", "password": "longenough1"}),
            "InvalidHandle",
        ),
        (
            json!({"handle": "a.b.test", "password": "longenough1"}),
            "InvalidHandle",
        ),
        (
            json!({"handle": "no", "password": "longenough1"}),
            "InvalidHandle",
        ),
        (
            json!({"handle": "carol.test", "password": "short"}),
            "InvalidPassword",
        ),
        (
            json!({"handle": "carol.test", "email": "not-an-email", "password": "longenough1"}),
            "InvalidEmail",
        ),
        (json!({"handle": "carol.test"}), "InvalidRequest"),
        (json!({"password": "longenough1"}), "InvalidRequest"),
    ];
    for (input, error) in cases {
        let (status, body) = post(
            &server,
            "com.atproto.server.createAccount",
            None,
            input.clone(),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{input}: {body}"
        );
        assert!(body["message"].is_string());
    }
    // Not JSON at all.
    let res = http()
        .post(server.url("/xrpc/com.atproto.server.createAccount"))
        .body("handle=x")
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.json::<Value>().unwrap()["error"], "InvalidRequest");
}

#[test]
fn sessions_refresh_once_and_revoke() {
    let plc = LocalPlc::start();
    let server = start(&plc);
    let account = create_account(&server, "dave.test", "dave@example.com");
    let refresh = account["refreshJwt"].as_str().unwrap();

    // Wrong password, unknown account: the same refusal.
    for identifier in ["dave.test", "nobody.test"] {
        let (status, body) = post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": identifier, "password": "wrong-password"}),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("AuthenticationRequired")),
            "{body}"
        );
    }

    // A refresh gives a new pair; the old refresh token then stops working.
    let (status, renewed) = post(
        &server,
        "com.atproto.server.refreshSession",
        Some(refresh),
        json!({}),
    );
    assert_eq!(status, 200, "{renewed}");
    let (status, body) = post(
        &server,
        "com.atproto.server.refreshSession",
        Some(refresh),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("ExpiredToken")),
        "{body}"
    );
    let (status, _) = get(
        &server,
        "com.atproto.server.getSession",
        renewed["accessJwt"].as_str(),
    );
    assert_eq!(status, 200);

    // A refresh token is not an access token, nor the other way round.
    let (status, body) = get(
        &server,
        "com.atproto.server.getSession",
        renewed["refreshJwt"].as_str(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("InvalidToken"))
    );
    let (status, _) = post(
        &server,
        "com.atproto.server.refreshSession",
        renewed["accessJwt"].as_str(),
        json!({}),
    );
    assert_eq!(status, 401);

    // Logging out revokes the refresh token.
    let renewed_refresh = renewed["refreshJwt"].as_str().unwrap();
    let res = http()
        .post(server.url("/xrpc/com.atproto.server.deleteSession"))
        .bearer_auth(renewed_refresh)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, body) = post(
        &server,
        "com.atproto.server.refreshSession",
        Some(renewed_refresh),
        json!({}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("ExpiredToken")),
        "{body}"
    );

    // No token, a garbage token, a token signed with another secret.
    let (status, body) = get(&server, "com.atproto.server.getSession", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AuthenticationRequired"))
    );
    let (status, body) = get(&server, "com.atproto.server.getSession", Some("not.a.jwt"));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("InvalidToken"))
    );
    let forged = pds_crypto::jws::sign_hs256(
        b"some other secret",
        &json!({"scope": "com.atproto.access", "sub": account["did"], "aud": "did:web:localhost", "exp": 4_000_000_000i64}),
        Some("at+jwt"),
    );
    let (status, body) = get(&server, "com.atproto.server.getSession", Some(&forged));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("InvalidToken"))
    );
}

#[test]
fn accounts_and_sessions_survive_a_restart() {
    let plc = LocalPlc::start();
    let server = start(&plc);
    let account = create_account(&server, "erin.test", "erin@example.com");
    let (_, dir) = server.terminate();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
        ],
        dir: Some(dir),
        ..Default::default()
    });
    let (status, body) = get(
        &server,
        "com.atproto.server.getSession",
        account["accessJwt"].as_str(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(
        &server,
        "com.atproto.server.refreshSession",
        account["refreshJwt"].as_str(),
        json!({}),
    );
    assert_eq!(status, 200);
}
