//! Account management by e-mailed code, on the real binary: e-mail confirmation and change,
//! password reset, account deletion, code expiry, reserved signing keys, and the refusals.
//!
//! The dev setup has no SMTP server, so the server writes each message to its log (the dev
//! mailer); the tests read the codes there. One test runs a small SMTP server on 127.0.0.1 to
//! see a message go out over SMTP.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer, code_in, get, http, post};
use serde_json::{Value, json};

const PASSWORD: &str = "hunter22hunter22";

/// A procedure called with no body at all.
fn post_empty(server: &TestServer, nsid: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().post(server.url(&format!("/xrpc/{nsid}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn post_raw(server: &TestServer, nsid: &str, content_type: &str, body: &str) -> (u16, Value) {
    let res = http()
        .post(server.url(&format!("/xrpc/{nsid}")))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

/// Asserts an XRPC error: its status and its `error` name.
#[track_caller]
fn assert_error((status, body): (u16, Value), want_status: u16, want_name: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_name, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[track_caller]
fn assert_ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    body
}

struct Account {
    did: String,
    access: String,
    refresh: String,
}

fn create_account(server: &TestServer, handle: &str, email: &str) -> Account {
    let body = assert_ok(post(
        server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": handle, "email": email, "password": PASSWORD}),
    ));
    Account {
        did: body["did"].as_str().unwrap().to_owned(),
        access: body["accessJwt"].as_str().unwrap().to_owned(),
        refresh: body["refreshJwt"].as_str().unwrap().to_owned(),
    }
}

fn login(server: &TestServer, identifier: &str, password: &str) -> (u16, Value) {
    post(
        server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": identifier, "password": password}),
    )
}

fn session(server: &TestServer, access: &str) -> Value {
    assert_ok(get(server, "com.atproto.server.getSession", Some(access)))
}

/// The dev mailer's log lines for messages to `to` with `subject`.
fn mails(server: &TestServer, to: &str, subject: &str) -> Vec<String> {
    let to = format!("to={to} ");
    let subject = format!("subject={subject} body=");
    server
        .log()
        .lines()
        .filter(|l| l.contains("e-mail not sent") && l.contains(&to) && l.contains(&subject))
        .map(str::to_owned)
        .collect()
}

/// Waits for message number `n` (counting from 1) to `to` with `subject` and returns its code.
fn nth_code(server: &TestServer, to: &str, subject: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = mails(server, to, subject);
        if found.len() >= n {
            let line = &found[n - 1];
            return code_in(line).unwrap_or_else(|| panic!("no code in {line}"));
        }
        assert!(
            Instant::now() < deadline,
            "no message {n} to {to} ({subject}); log:\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Asks for a code with `request` and returns the one the mail brings.
fn request_code(
    server: &TestServer,
    nsid: &str,
    token: Option<&str>,
    body: Value,
    (to, subject): (&str, &str),
) -> String {
    let before = mails(server, to, subject).len();
    assert_ok(post(server, nsid, token, body));
    nth_code(server, to, subject, before + 1)
}

const CONFIRM: &str = "Email Confirmation";
const UPDATE: &str = "Email Update Requested";
const RESET: &str = "Password Reset Requested";
const DELETE: &str = "Account Deletion Request";

#[test]
fn confirm_email_with_the_mailed_code() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice.test", "alice@example.com");
    assert_eq!(session(&server, &alice.access)["emailConfirmed"], false);

    // Needs a session.
    assert_error(
        post_empty(&server, "com.atproto.server.requestEmailConfirmation", None),
        401,
        "AuthenticationRequired",
    );
    // No body at all is how clients call it.
    let before = mails(&server, "alice@example.com", CONFIRM).len();
    assert_ok(post_empty(
        &server,
        "com.atproto.server.requestEmailConfirmation",
        Some(&alice.access),
    ));
    let code = nth_code(&server, "alice@example.com", CONFIRM, before + 1);

    let confirm = |email: &str, token: &str| {
        post(
            &server,
            "com.atproto.server.confirmEmail",
            Some(&alice.access),
            json!({"email": email, "token": token}),
        )
    };
    assert_error(confirm("bob@example.com", &code), 400, "InvalidEmail");
    assert_error(
        confirm("alice@example.com", "AAAAA-AAAAA"),
        400,
        "InvalidToken",
    );
    assert_error(
        confirm("alice@example.com", "nonsense"),
        400,
        "InvalidToken",
    );
    assert_eq!(session(&server, &alice.access)["emailConfirmed"], false);
    // Codes are typed by people: case and the address's case do not matter.
    assert_ok(confirm("Alice@Example.com", &code.to_lowercase()));
    assert_eq!(session(&server, &alice.access)["emailConfirmed"], true);
    // Once only.
    assert_error(confirm("alice@example.com", &code), 400, "InvalidToken");

    // The mail names the server and says how long the code lasts.
    let line = mails(&server, "alice@example.com", CONFIRM).pop().unwrap();
    assert!(line.contains("15 minutes"), "{line}");
}

#[test]
fn update_email_needs_a_code_once_confirmed() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice.test", "alice@example.com");
    create_account(&server, "bob.test", "bob@example.com");
    let update = |token: &str, body: Value| {
        post(&server, "com.atproto.server.updateEmail", Some(token), body)
    };

    // Unconfirmed: no code needed, none sent.
    let body = assert_ok(post_empty(
        &server,
        "com.atproto.server.requestEmailUpdate",
        Some(&alice.access),
    ));
    assert_eq!(body, json!({"tokenRequired": false}));
    assert_ok(update(
        &alice.access,
        json!({"email": "alice2@example.com"}),
    ));
    let s = session(&server, &alice.access);
    assert_eq!(
        (s["email"].as_str(), &s["emailConfirmed"]),
        (Some("alice2@example.com"), &json!(false))
    );

    // Confirm the new address.
    let code = request_code(
        &server,
        "com.atproto.server.requestEmailConfirmation",
        Some(&alice.access),
        json!({}),
        ("alice2@example.com", CONFIRM),
    );
    assert_ok(post(
        &server,
        "com.atproto.server.confirmEmail",
        Some(&alice.access),
        json!({"email": "alice2@example.com", "token": code}),
    ));

    // Confirmed: a code is needed, and goes to the current address.
    let before = mails(&server, "alice2@example.com", UPDATE).len();
    let body = assert_ok(post_empty(
        &server,
        "com.atproto.server.requestEmailUpdate",
        Some(&alice.access),
    ));
    assert_eq!(body, json!({"tokenRequired": true}));
    let code = nth_code(&server, "alice2@example.com", UPDATE, before + 1);

    assert_error(
        update(&alice.access, json!({"email": "alice3@example.com"})),
        400,
        "TokenRequired",
    );
    assert_error(
        update(
            &alice.access,
            json!({"email": "alice3@example.com", "token": "AAAAA-AAAAA"}),
        ),
        400,
        "InvalidToken",
    );
    // Another account's address is refused, and the code survives the refusal.
    assert_error(
        update(
            &alice.access,
            json!({"email": "BOB@example.com", "token": code}),
        ),
        400,
        "EmailNotAvailable",
    );
    assert_error(
        update(
            &alice.access,
            json!({"email": "not an address", "token": code}),
        ),
        400,
        "InvalidRequest",
    );
    // App-password sessions cannot change the address.
    let app = assert_ok(post(
        &server,
        "com.atproto.server.createAppPassword",
        Some(&alice.access),
        json!({"name": "phone"}),
    ));
    let app_session = assert_ok(login(
        &server,
        "alice.test",
        app["password"].as_str().unwrap(),
    ));
    assert_error(
        update(
            app_session["accessJwt"].as_str().unwrap(),
            json!({"email": "alice3@example.com", "token": code}),
        ),
        400,
        "InvalidToken",
    );

    assert_ok(update(
        &alice.access,
        json!({"email": "Alice3@example.com", "token": code}),
    ));
    let s = session(&server, &alice.access);
    assert_eq!(s["email"], "alice3@example.com");
    assert_eq!(s["emailConfirmed"], false);
    // The code is used up; the account logs in by its new address.
    assert_ok(login(&server, "alice3@example.com", PASSWORD));
    assert_error(
        login(&server, "alice2@example.com", PASSWORD),
        401,
        "AuthenticationRequired",
    );
}

#[test]
fn password_reset() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice.test", "alice@example.com");

    // Unknown addresses get the same answer, and no mail.
    assert_ok(post(
        &server,
        "com.atproto.server.requestPasswordReset",
        None,
        json!({"email": "nobody@example.com"}),
    ));
    assert_ok(post(
        &server,
        "com.atproto.server.requestPasswordReset",
        None,
        json!({"email": "not even an address"}),
    ));
    let code = request_code(
        &server,
        "com.atproto.server.requestPasswordReset",
        None,
        json!({"email": "ALICE@example.com"}),
        ("alice@example.com", RESET),
    );
    assert!(mails(&server, "nobody@example.com", RESET).is_empty());
    let line = mails(&server, "alice@example.com", RESET).pop().unwrap();
    assert!(line.contains("@alice.test"), "{line}");

    let reset = |token: &str, password: &str| {
        post(
            &server,
            "com.atproto.server.resetPassword",
            None,
            json!({"token": token, "password": password}),
        )
    };
    assert_error(reset("AAAAA-AAAAA", "new password 1"), 400, "InvalidToken");
    assert_error(reset(&code, "short"), 400, "InvalidPassword");
    assert_error(reset(&code, &"x".repeat(257)), 400, "InvalidRequest");
    assert_ok(reset(&code, "new password 1"));

    assert_error(
        login(&server, "alice.test", PASSWORD),
        401,
        "AuthenticationRequired",
    );
    assert_ok(login(&server, "alice.test", "new password 1"));
    // Every session of the account ended: its refresh token no longer works.
    let (status, body) = post_empty(
        &server,
        "com.atproto.server.refreshSession",
        Some(&alice.refresh),
    );
    assert!(status == 400 || status == 401, "{status} {body}");
    assert!(body["error"].is_string(), "{body}");
    // The code worked once.
    assert_error(reset(&code, "new password 2"), 400, "InvalidToken");
}

/// Whether the server implements `nsid` (another part of the server may not have landed yet).
fn implemented(server: &TestServer, nsid: &str, query: &str) -> bool {
    get(server, &format!("{nsid}?{query}"), None).0 != 501
}

#[test]
fn account_deletion() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice.test", "alice@example.com");
    let bob = create_account(&server, "bob.test", "bob@example.com");
    let did = alice.did.clone();

    // A record, if records are served yet.
    let record_query = format!("repo={did}&collection=app.bsky.feed.post&rkey=3jzfcijpj2z2a");
    let records = implemented(&server, "com.atproto.repo.getRecord", &record_query);
    if records {
        assert_ok(post(
            &server,
            "com.atproto.repo.putRecord",
            Some(&alice.access),
            json!({
                "repo": did, "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a",
                "record": {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2024-01-01T00:00:00.000Z"},
            }),
        ));
        assert_ok(get(
            &server,
            &format!("com.atproto.repo.getRecord?{record_query}"),
            None,
        ));
    }
    let describe = implemented(
        &server,
        "com.atproto.repo.describeRepo",
        &format!("repo={did}"),
    );
    if describe {
        assert_ok(get(
            &server,
            &format!("com.atproto.repo.describeRepo?repo={did}"),
            None,
        ));
    }

    // Asking needs the account password's session.
    let app = assert_ok(post(
        &server,
        "com.atproto.server.createAppPassword",
        Some(&alice.access),
        json!({"name": "phone"}),
    ));
    let app_session = assert_ok(login(
        &server,
        "alice.test",
        app["password"].as_str().unwrap(),
    ));
    assert_error(
        post_empty(
            &server,
            "com.atproto.server.requestAccountDelete",
            app_session["accessJwt"].as_str(),
        ),
        400,
        "InvalidToken",
    );
    let code = request_code(
        &server,
        "com.atproto.server.requestAccountDelete",
        Some(&alice.access),
        json!({}),
        ("alice@example.com", DELETE),
    );

    let delete = |did: &str, password: &str, token: &str| {
        post(
            &server,
            "com.atproto.server.deleteAccount",
            None,
            json!({"did": did, "password": password, "token": token}),
        )
    };
    assert_error(
        delete(&did, "wrong password", &code),
        401,
        "AuthenticationRequired",
    );
    // An app password is not the account password.
    assert_error(
        delete(&did, app["password"].as_str().unwrap(), &code),
        401,
        "AuthenticationRequired",
    );
    assert_error(delete(&did, PASSWORD, "AAAAA-AAAAA"), 400, "InvalidToken");
    // Alice's code does not delete Bob.
    assert_error(delete(&bob.did, PASSWORD, &code), 400, "InvalidToken");
    assert_error(delete("not a did", PASSWORD, &code), 400, "InvalidRequest");
    assert_error(
        delete("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", PASSWORD, &code),
        400,
        "InvalidRequest",
    );
    // Still there after the refusals.
    assert_ok(login(&server, "alice.test", PASSWORD));

    assert_ok(delete(&did, PASSWORD, &code));

    assert_error(
        login(&server, "alice.test", PASSWORD),
        401,
        "AuthenticationRequired",
    );
    assert_error(
        login(&server, &did, PASSWORD),
        401,
        "AuthenticationRequired",
    );
    let (status, _) = get(
        &server,
        "com.atproto.server.getSession",
        Some(&alice.access),
    );
    assert_ne!(status, 200);
    if records {
        let (status, body) = get(
            &server,
            &format!("com.atproto.repo.getRecord?{record_query}"),
            None,
        );
        assert_ne!(status, 200, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    if describe {
        let (status, body) = get(
            &server,
            &format!("com.atproto.repo.describeRepo?repo={did}"),
            None,
        );
        assert_ne!(status, 200, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // Gone for good: again is an unknown account; the handle and address are free again.
    assert_error(delete(&did, PASSWORD, &code), 400, "InvalidRequest");
    create_account(&server, "alice.test", "alice@example.com");
    // Bob is untouched.
    assert_eq!(session(&server, &bob.access)["did"], bob.did.as_str());
}

#[test]
fn codes_expire_after_15_minutes() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice.test", "alice@example.com");
    let code = request_code(
        &server,
        "com.atproto.server.requestEmailConfirmation",
        Some(&alice.access),
        json!({}),
        ("alice@example.com", CONFIRM),
    );
    // Move the request 16 minutes into the past, in the server's own database.
    {
        let db = rusqlite::Connection::open(server.data_dir().join("pds.sqlite")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let then = pds::accounts::email_tokens::now_ms() - 16 * 60 * 1000;
        let changed = db
            .execute(
                "UPDATE email_token SET requested_at = ?1 WHERE did = ?2 AND purpose = 'confirm_email'",
                (pds::accounts::email_tokens::datetime_from_ms(then), &alice.did),
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let confirm = |token: &str| {
        post(
            &server,
            "com.atproto.server.confirmEmail",
            Some(&alice.access),
            json!({"email": "alice@example.com", "token": token}),
        )
    };
    assert_error(confirm(&code), 400, "ExpiredToken");
    assert_eq!(session(&server, &alice.access)["emailConfirmed"], false);
    // A new code works.
    let code = request_code(
        &server,
        "com.atproto.server.requestEmailConfirmation",
        Some(&alice.access),
        json!({}),
        ("alice@example.com", CONFIRM),
    );
    assert_ok(confirm(&code));
}

#[test]
fn reserve_signing_key_returns_a_did_key() {
    let server = TestServer::start();
    let reserve = |body: Value| post(&server, "com.atproto.server.reserveSigningKey", None, body);
    let key_of = |body: &Value| body["signingKey"].as_str().unwrap().to_owned();

    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let first = key_of(&assert_ok(reserve(json!({"did": did}))));
    assert!(first.starts_with("did:key:z"), "{first}");
    let public = pds_crypto::PublicKey::from_did_key(&first).unwrap();
    assert_eq!(public.algorithm(), pds_crypto::Algorithm::K256);
    // The same DID gets the same key; others and anonymous requests get fresh ones.
    assert_eq!(key_of(&assert_ok(reserve(json!({"did": did})))), first);
    let other = key_of(&assert_ok(reserve(json!({"did": "did:web:example.com"}))));
    let anonymous = key_of(&assert_ok(reserve(json!({}))));
    let empty_body = key_of(&assert_ok(post_empty(
        &server,
        "com.atproto.server.reserveSigningKey",
        None,
    )));
    let all = [&first, &other, &anonymous, &empty_body];
    for (i, a) in all.iter().enumerate() {
        pds_crypto::PublicKey::from_did_key(a).unwrap();
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_error(reserve(json!({"did": "not-a-did"})), 400, "InvalidRequest");
    assert_error(reserve(json!({"did": 7})), 400, "InvalidRequest");
    assert_error(
        post_raw(
            &server,
            "com.atproto.server.reserveSigningKey",
            "text/plain",
            "did",
        ),
        400,
        "InvalidRequest",
    );
}

#[test]
fn bad_input_gets_xrpc_errors() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice.test", "alice@example.com");
    let cases: Vec<(&str, Option<&str>, &str, &str)> = vec![
        (
            "com.atproto.server.confirmEmail",
            Some(&alice.access),
            "application/json",
            "{\"email\": 5}",
        ),
        (
            "com.atproto.server.confirmEmail",
            Some(&alice.access),
            "application/json",
            "{",
        ),
        (
            "com.atproto.server.confirmEmail",
            Some(&alice.access),
            "text/plain",
            "hello",
        ),
        (
            "com.atproto.server.updateEmail",
            Some(&alice.access),
            "application/json",
            "{}",
        ),
        (
            "com.atproto.server.updateEmail",
            Some(&alice.access),
            "application/json",
            "{\"email\": \"\"}",
        ),
        (
            "com.atproto.server.resetPassword",
            None,
            "application/json",
            "{}",
        ),
        (
            "com.atproto.server.resetPassword",
            None,
            "application/json",
            "[1, 2]",
        ),
        (
            "com.atproto.server.requestPasswordReset",
            None,
            "application/json",
            "{\"email\": null}",
        ),
        (
            "com.atproto.server.deleteAccount",
            None,
            "application/json",
            "{\"did\": \"x\"}",
        ),
        (
            "com.atproto.server.reserveSigningKey",
            None,
            "application/json",
            "{\"did\": \"did:\"}",
        ),
    ];
    for (nsid, token, content_type, body) in cases {
        let mut req = http()
            .post(server.url(&format!("/xrpc/{nsid}")))
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().unwrap_or(Value::Null);
        assert_eq!(status, 400, "{nsid} {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{nsid} {body}"
        );
    }
    // Long or odd codes are just wrong codes.
    for token in ["A".repeat(100_000), "\u{0}\u{1F600}".into(), String::new()] {
        assert_error(
            post(
                &server,
                "com.atproto.server.resetPassword",
                None,
                json!({"token": token, "password": "long enough"}),
            ),
            400,
            "InvalidToken",
        );
        assert_error(
            post(
                &server,
                "com.atproto.server.confirmEmail",
                Some(&alice.access),
                json!({"email": "alice@example.com", "token": token}),
            ),
            400,
            "InvalidToken",
        );
    }
    // Queries are not procedures.
    assert_error(
        get(&server, "com.atproto.server.resetPassword", None),
        400,
        "InvalidRequest",
    );
    // Still serving.
    assert_ok(get(&server, "_health", None));
}

/// Production without SMTP: the methods that must send mail say the server cannot, to everyone
/// alike.
#[test]
fn without_smtp_outside_dev_mode_mail_is_refused() {
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DEV_MODE", "false"),
            ("PDS_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PDS_ADMIN_PASSWORD", "admin-password"),
            (
                "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
                "8a3b7ae5ea3b8c16e3f3b4d18d9e9ad9b2c4f1e0a7d6c5b4a3928170f6e5d4c3",
            ),
        ],
        ..Default::default()
    });
    let alice = create_account(&server, "alice.test", "alice@example.com");
    for (nsid, token, body) in [
        (
            "com.atproto.server.requestEmailConfirmation",
            Some(alice.access.as_str()),
            json!({}),
        ),
        (
            "com.atproto.server.requestAccountDelete",
            Some(alice.access.as_str()),
            json!({}),
        ),
        (
            "com.atproto.server.requestPasswordReset",
            None,
            json!({"email": "alice@example.com"}),
        ),
        (
            "com.atproto.server.requestPasswordReset",
            None,
            json!({"email": "nobody@example.com"}),
        ),
    ] {
        let (status, body) = post(&server, nsid, token, body);
        assert_eq!(status, 400, "{nsid} {body}");
        assert_eq!(body["error"], "InvalidRequest", "{nsid} {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("PDS_EMAIL_SMTP_URL"),
            "{nsid} {body}"
        );
    }
    // An unconfirmed address needs no code, so no mail: that still works.
    let body = assert_ok(post_empty(
        &server,
        "com.atproto.server.requestEmailUpdate",
        Some(&alice.access),
    ));
    assert_eq!(body["tokenRequired"], false);
    assert!(!server.log().contains("e-mail not sent"));
}

/// A minimal SMTP server on 127.0.0.1 that accepts one message and hands over what it was sent.
fn smtp_sink() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut input = BufReader::new(stream);
        let mut transcript = String::new();
        let mut send = |line: &str| out.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        send("220 sink.test ESMTP");
        let mut line = String::new();
        let mut in_data = false;
        loop {
            line.clear();
            if input.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            transcript.push_str(&line);
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    send("250 2.0.0 queued");
                }
                continue;
            }
            let command = line.trim_end().to_ascii_uppercase();
            if command.starts_with("EHLO") {
                send("250-sink.test");
                send("250-AUTH PLAIN LOGIN");
                send("250 8BITMIME");
            } else if command.starts_with("AUTH") {
                send("235 2.7.0 ok");
            } else if command == "DATA" {
                in_data = true;
                send("354 go ahead");
            } else if command == "QUIT" {
                send("221 bye");
                break;
            } else {
                send("250 ok");
            }
        }
        let _ = tx.send(transcript);
    });
    (port, rx)
}

#[test]
fn mail_goes_out_over_smtp() {
    let (port, transcript) = smtp_sink();
    // Plain SMTP to a relay on this machine, with credentials (percent-encoded in the URL).
    let url = format!("smtp://pds%40example.com:p%40ss@127.0.0.1:{port}?ignoreTLS=true");
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_EMAIL_SMTP_URL", url.as_str()),
            ("PDS_EMAIL_FROM_ADDRESS", "noreply@pds.example.com"),
        ],
        ..Default::default()
    });
    let alice = create_account(&server, "alice.test", "alice@example.com");
    assert_ok(post_empty(
        &server,
        "com.atproto.server.requestEmailConfirmation",
        Some(&alice.access),
    ));
    let transcript = transcript
        .recv_timeout(Duration::from_secs(30))
        .expect("the SMTP server got a message");
    assert!(transcript.starts_with("EHLO localhost\r\n"), "{transcript}");
    // AUTH PLAIN carries "\0user\0password", base64.
    let plain = data_encoding::BASE64.encode(b"\0pds@example.com\0p@ss");
    assert!(transcript.contains(&plain), "{transcript}");
    assert!(
        transcript.contains("MAIL FROM:<noreply@pds.example.com>"),
        "{transcript}"
    );
    assert!(
        transcript.contains("RCPT TO:<alice@example.com>"),
        "{transcript}"
    );
    assert!(
        transcript.contains("Subject: Email Confirmation\r\n"),
        "{transcript}"
    );
    let code = code_in(&transcript).expect("a code in the message");
    // The code the message carried confirms the address; nothing went to the log instead.
    assert!(!server.log().contains("e-mail not sent"));
    assert_ok(post(
        &server,
        "com.atproto.server.confirmEmail",
        Some(&alice.access),
        json!({"email": "alice@example.com", "token": code}),
    ));
}
