//! The record methods of `com.atproto.repo` on the real binary: createRecord, putRecord,
//! deleteRecord, applyWrites, getRecord, listRecords, describeRepo, with the reference PDS's
//! answers, errors and authorization rules.

mod common;

use common::{LocalPlc, ServerOptions, TestServer, http, post};
use serde_json::{Value, json};

/// Known to the tests, so they can mint tokens as the server would (app-password scopes,
/// expired ones).
const JWT_SECRET: &str = "repo-tests-jwt-secret";
/// The dev config's service DID (hostname localhost).
const SERVICE_DID: &str = "did:web:localhost";
const NOW: &str = "2024-05-01T12:00:00.000Z";
const POST: &str = "app.bsky.feed.post";

fn start(plc: &LocalPlc, dir: Option<tempfile::TempDir>) -> TestServer {
    TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
            ("PDS_JWT_SECRET", JWT_SECRET),
        ],
        dir,
        ..Default::default()
    })
}

/// GET `/xrpc/<nsid>` with query parameters.
fn get(server: &TestServer, nsid: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let res = http().get(query_url(server, nsid, query)).send().unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn get_text(server: &TestServer, nsid: &str, query: &[(&str, &str)]) -> (u16, String) {
    let res = http().get(query_url(server, nsid, query)).send().unwrap();
    (res.status().as_u16(), res.text().unwrap())
}

/// `/xrpc/<nsid>?k=v&...`, percent-encoding everything but the unreserved characters.
fn query_url(server: &TestServer, nsid: &str, query: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    server.url(&format!("/xrpc/{nsid}?{}", pairs.join("&")))
}

struct Account {
    did: String,
    handle: String,
    jwt: String,
}

fn create_account(server: &TestServer, name: &str) -> Account {
    let handle = format!("{name}.test");
    let (status, body) = post(
        server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": handle, "email": format!("{name}@example.com"), "password": "hunter22hunter22"}),
    );
    assert_eq!(status, 200, "{body}");
    Account {
        did: body["did"].as_str().unwrap().to_owned(),
        handle,
        jwt: body["accessJwt"].as_str().unwrap().to_owned(),
    }
}

fn a_post(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": NOW})
}

fn create(server: &TestServer, who: &Account, collection: &str, record: Value) -> Value {
    let (status, body) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(&who.jwt),
        json!({"repo": who.did, "collection": collection, "record": record}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn get_record(server: &TestServer, repo: &str, collection: &str, rkey: &str) -> (u16, Value) {
    get(
        server,
        "com.atproto.repo.getRecord",
        &[("repo", repo), ("collection", collection), ("rkey", rkey)],
    )
}

fn rkey_of(uri: &Value) -> String {
    uri.as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

/// Asserts an XRPC error: status, error name, and (optionally) a part of the message.
#[track_caller]
fn assert_error(answer: &(u16, Value), status: u16, name: &str, message_part: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], name, "{}", answer.1);
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "message {message:?} lacks {message_part:?}"
    );
}

/// A refused record: `InvalidRecord` when the record's content is wrong (the field is in the
/// message), `InvalidRequest` when the request is (an unknown lexicon with validate=true).
fn assert_record_refused(answer: &(u16, Value), message_part: &str) {
    let message = answer.1["message"].as_str().unwrap_or_default();
    let request_level = ["Lexicon not found", "Invalid request body", "Input/"]
        .iter()
        .any(|prefix| message.starts_with(prefix));
    let name = if request_level {
        "InvalidRequest"
    } else {
        "InvalidRecord"
    };
    assert_error(answer, 400, name, message_part);
}

fn is_tid(s: &str) -> bool {
    s.len() == 13 && pds_syntax::Tid::new(s).is_ok()
}

#[test]
fn records_round_trip() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "alice");

    // Create with a server-chosen key: a TID, a valid record, a commit.
    let created = create(&server, &alice, POST, a_post("hello world"));
    let uri = created["uri"].as_str().unwrap();
    let rkey = rkey_of(&created["uri"]);
    assert_eq!(uri, format!("at://{}/{POST}/{rkey}", alice.did));
    assert!(is_tid(&rkey), "{rkey}");
    assert_eq!(created["validationStatus"], "valid");
    let cid = created["cid"].as_str().unwrap();
    assert!(cid.starts_with("bafyrei"), "{cid}");
    assert!(
        created["commit"]["cid"]
            .as_str()
            .unwrap()
            .starts_with("bafyrei")
    );
    assert!(is_tid(created["commit"]["rev"].as_str().unwrap()));

    // Read it back by DID and by handle: the same record, the same CID.
    for repo in [alice.did.as_str(), alice.handle.as_str()] {
        let (status, got) = get_record(&server, repo, POST, &rkey);
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["uri"], uri);
        assert_eq!(got["cid"], cid);
        assert_eq!(got["value"], a_post("hello world"));
    }
    // Keys come out in the reference's order (DAG-CBOR's: shorter first).
    let (_, text) = get_text(
        &server,
        "com.atproto.repo.getRecord",
        &[("repo", &alice.did), ("collection", POST), ("rkey", &rkey)],
    );
    assert!(
        text.contains(&format!(
            r#""value":{{"text":"hello world","$type":"{POST}","createdAt":"{NOW}"}}"#
        )),
        "{text}"
    );
    // The version asked for must be the current one.
    let (status, _) = get(
        &server,
        "com.atproto.repo.getRecord",
        &[
            ("repo", &alice.did),
            ("collection", POST),
            ("rkey", &rkey),
            ("cid", cid),
        ],
    );
    assert_eq!(status, 200);
    let other_cid = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
    assert_error(
        &get(
            &server,
            "com.atproto.repo.getRecord",
            &[
                ("repo", &alice.did),
                ("collection", POST),
                ("rkey", &rkey),
                ("cid", other_cid),
            ],
        ),
        400,
        "RecordNotFound",
        "Could not locate record: at://",
    );

    // putRecord updates; putting the same record again writes nothing.
    let (status, put) = post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&alice.jwt),
        json!({"repo": alice.handle, "collection": POST, "rkey": rkey, "record": a_post("edited")}),
    );
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["uri"], uri);
    assert_ne!(put["cid"], cid);
    assert_eq!(put["validationStatus"], "valid");
    assert!(put["commit"]["rev"].as_str().unwrap() > created["commit"]["rev"].as_str().unwrap());
    let (status, again) = post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": POST, "rkey": rkey, "record": a_post("edited")}),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["cid"], put["cid"]);
    assert!(again.get("commit").is_none(), "{again}");
    let (_, got) = get_record(&server, &alice.did, POST, &rkey);
    assert_eq!(got["value"]["text"], "edited");

    // A record without $type gets its collection; a given rkey is used.
    let (status, body) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": "com.example.note", "rkey": "first", "record": {"n": 1}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["validationStatus"], "unknown");
    let (_, got) = get_record(&server, &alice.did, "com.example.note", "first");
    assert_eq!(got["value"], json!({"$type": "com.example.note", "n": 1}));
    // Creating it again is refused (the reference answers with an opaque 500 here).
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            json!({"repo": alice.did, "collection": "com.example.note", "rkey": "first", "record": {"n": 2}}),
        ),
        400,
        "InvalidRequest",
        "already exists",
    );

    // describeRepo: handle, DID, the directory's document, collections in order.
    let (status, described) = get(
        &server,
        "com.atproto.repo.describeRepo",
        &[("repo", &alice.handle)],
    );
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["handle"], alice.handle);
    assert_eq!(described["did"], alice.did);
    assert_eq!(described["didDoc"]["id"], alice.did);
    assert_eq!(
        described["didDoc"]["alsoKnownAs"][0],
        format!("at://{}", alice.handle)
    );
    assert_eq!(described["collections"], json!([POST, "com.example.note"]));
    assert_eq!(described["handleIsCorrect"], true);

    // Delete; then it is gone; deleting it again is not an error and writes nothing.
    let (status, deleted) = post(
        &server,
        "com.atproto.repo.deleteRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": POST, "rkey": rkey}),
    );
    assert_eq!(status, 200, "{deleted}");
    assert!(is_tid(deleted["commit"]["rev"].as_str().unwrap()));
    assert_error(
        &get_record(&server, &alice.did, POST, &rkey),
        400,
        "RecordNotFound",
        &rkey,
    );
    let (status, again) = post(
        &server,
        "com.atproto.repo.deleteRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": POST, "rkey": rkey}),
    );
    assert_eq!((status, again), (200, json!({})));
    let (_, described) = get(
        &server,
        "com.atproto.repo.describeRepo",
        &[("repo", &alice.did)],
    );
    assert_eq!(described["collections"], json!(["com.example.note"]));

    // Unknown repos and bad parameters.
    assert_error(
        &get_record(&server, "nobody.test", POST, &rkey),
        400,
        "InvalidRequest",
        "Could not locate record",
    );
    assert_error(
        &get(
            &server,
            "com.atproto.repo.listRecords",
            &[
                ("repo", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"),
                ("collection", POST),
            ],
        ),
        400,
        "InvalidRequest",
        "Could not find repo: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
    );
    assert_error(
        &get(
            &server,
            "com.atproto.repo.describeRepo",
            &[("repo", "nobody.test")],
        ),
        400,
        "RepoNotFound",
        "Could not find repo for DID: nobody.test",
    );
    assert_error(
        &get(
            &server,
            "com.atproto.repo.getRecord",
            &[("repo", &alice.did), ("collection", POST)],
        ),
        400,
        "InvalidRequest",
        "rkey",
    );
    assert_error(
        &get_record(&server, &alice.did, "not an nsid", "x"),
        400,
        "InvalidRequest",
        "collection",
    );
    assert_error(
        &get_record(&server, &alice.did, POST, "a/b"),
        400,
        "InvalidRequest",
        "rkey",
    );
}

/// A createRecord case: collection, record, `validate`, and the validation status expected
/// (`None`: absent) or a part of the refusal's message.
type Case<'a> = (
    &'a str,
    Value,
    Option<bool>,
    Result<Option<&'a str>, &'a str>,
);

#[test]
fn validation_modes() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "valerie");
    let long = "é".repeat(301);
    let cases: Vec<Case> = vec![
        // A known lexicon, a valid record.
        (POST, a_post("fine"), Some(true), Ok(Some("valid"))),
        (POST, a_post("fine"), None, Ok(Some("valid"))),
        (POST, a_post("fine"), Some(false), Ok(None)),
        // A known lexicon, an invalid record: the failing path is named.
        (
            POST,
            a_post(&long),
            Some(true),
            Err(
                "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
            ),
        ),
        (
            POST,
            a_post(&long),
            None,
            Err("Record/text must not be longer than 300 graphemes"),
        ),
        (POST, a_post(&long), Some(false), Ok(None)),
        (
            POST,
            json!({"$type": POST, "text": "no date"}),
            None,
            Err("Record must have the property \"createdAt\""),
        ),
        // An unknown collection.
        (
            "com.example.thing",
            json!({"anything": ["goes", 1]}),
            Some(true),
            Err("Lexicon not found: lex:com.example.thing"),
        ),
        (
            "com.example.thing",
            json!({"anything": ["goes", 1]}),
            None,
            Ok(Some("unknown")),
        ),
        (
            "com.example.thing",
            json!({"anything": ["goes", 1]}),
            Some(false),
            Ok(None),
        ),
        // $type must be the collection when validating.
        (
            POST,
            json!({"$type": "app.bsky.feed.like", "text": "x", "createdAt": NOW}),
            None,
            Err("Invalid $type: expected app.bsky.feed.post, got app.bsky.feed.like"),
        ),
        // The data model, whatever `validate` says.
        (
            "com.example.thing",
            json!({"n": 1.5}),
            Some(false),
            Err("not an integer"),
        ),
        (
            "com.example.thing",
            json!({"l": {"$link": "nope"}}),
            Some(false),
            Err("$link"),
        ),
        (
            "com.example.thing",
            json!({"img": {"cid": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity", "mimeType": "image/png"}}),
            Some(false),
            Err("Legacy blob ref at 'img'"),
        ),
        (
            "com.example.thing",
            json!("a string"),
            Some(false),
            Err("Input/record must be an object"),
        ),
    ];
    for (collection, record, validate, expected) in cases {
        let mut body = json!({"repo": alice.did, "collection": collection, "record": record});
        if let Some(v) = validate {
            body["validate"] = json!(v);
        }
        let answer = post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            body.clone(),
        );
        match expected {
            Ok(status) => {
                assert_eq!(answer.0, 200, "{body}: {}", answer.1);
                assert_eq!(
                    answer.1["validationStatus"].as_str(),
                    status,
                    "{body}: {}",
                    answer.1
                );
            }
            Err(part) => assert_record_refused(&answer, part),
        }
    }

    // Record keys: syntax always, the lexicon's key type when validating.
    let with_rkey = |collection: &str, rkey: &str, record: Value, validate: Option<bool>| {
        let mut body =
            json!({"repo": alice.did, "collection": collection, "rkey": rkey, "record": record});
        if let Some(v) = validate {
            body["validate"] = json!(v);
        }
        post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            body,
        )
    };
    assert_error(
        &with_rkey(POST, "hello", a_post("x"), None),
        400,
        "InvalidRequest",
        "TID",
    );
    assert_eq!(with_rkey(POST, "hello", a_post("x"), Some(false)).0, 200);
    assert_error(
        &with_rkey("com.example.thing", "a b", json!({}), Some(false)),
        400,
        "InvalidRequest",
        "Input/rkey",
    );
    assert_error(
        &with_rkey("app.bsky.actor.profile", "other", json!({}), None),
        400,
        "InvalidRequest",
        "Record key",
    );
    // A literal key type supplies the key.
    let (status, profile) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": "app.bsky.actor.profile", "record": {"displayName": "Val"}}),
    );
    assert_eq!(status, 200, "{profile}");
    assert_eq!(rkey_of(&profile["uri"]), "self");

    // Bad collections and inputs.
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            json!({"repo": alice.did, "collection": "nope", "record": {}}),
        ),
        400,
        "InvalidRequest",
        "Input/collection must be a valid nsid",
    );
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            json!({"repo": alice.did, "collection": POST}),
        ),
        400,
        "InvalidRequest",
        "Input must have the property \"record\"",
    );
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            json!({"repo": alice.did, "collection": POST, "record": a_post("x"), "swapCommit": "not-a-cid"}),
        ),
        400,
        "InvalidRequest",
        "swapCommit",
    );
}

#[test]
fn authorization() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");
    let body = |repo: &str| json!({"repo": repo, "collection": POST, "record": a_post("hi")});

    // No token, a bad token, a token signed with another secret, an expired one.
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            None,
            body(&alice.did),
        ),
        401,
        "AuthenticationRequired",
        "",
    );
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some("not.a.jwt"),
            body(&alice.did),
        ),
        401,
        "InvalidToken",
        "",
    );
    let claims = |exp: i64| json!({"scope": "com.atproto.access", "sub": alice.did, "aud": SERVICE_DID, "iat": 1, "exp": exp});
    let forged =
        pds_crypto::jws::sign_hs256(b"another secret", &claims(4_000_000_000), Some("at+jwt"));
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&forged),
            body(&alice.did),
        ),
        401,
        "InvalidToken",
        "",
    );
    let expired = pds_crypto::jws::sign_hs256(JWT_SECRET.as_bytes(), &claims(2), Some("at+jwt"));
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&expired),
            body(&alice.did),
        ),
        400,
        "ExpiredToken",
        "",
    );

    // Bob cannot write Alice's repo, named by DID or handle, with any method.
    for repo in [alice.did.as_str(), alice.handle.as_str()] {
        assert_error(
            &post(
                &server,
                "com.atproto.repo.createRecord",
                Some(&bob.jwt),
                body(repo),
            ),
            401,
            "AuthenticationRequired",
            "Authentication Required",
        );
    }
    for (nsid, input) in [
        (
            "com.atproto.repo.putRecord",
            json!({"repo": alice.did, "collection": POST, "rkey": "3jzfcijpj2z2a", "record": a_post("x")}),
        ),
        (
            "com.atproto.repo.deleteRecord",
            json!({"repo": alice.did, "collection": POST, "rkey": "3jzfcijpj2z2a"}),
        ),
        (
            "com.atproto.repo.applyWrites",
            json!({"repo": alice.did, "writes": []}),
        ),
    ] {
        assert_error(
            &post(&server, nsid, Some(&bob.jwt), input),
            401,
            "AuthenticationRequired",
            "",
        );
    }
    // A repo nobody has.
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            body("nobody.test"),
        ),
        403,
        "AccountNotFound",
        "Account not found",
    );

    // App-password sessions may write records. (createAppPassword is another method; this is
    // the token its sessions carry.)
    for scope in [
        pds::auth::Scope::AppPass,
        pds::auth::Scope::AppPassPrivileged,
    ] {
        let tokens = pds::auth::issue(JWT_SECRET.as_bytes(), SERVICE_DID, &alice.did, scope);
        let (status, created) = post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&tokens.access_jwt),
            body(&alice.did),
        );
        assert_eq!(status, 200, "{scope:?}: {created}");
    }
    // And a real app-password login.
    let (status, app_password) = post(
        &server,
        "com.atproto.server.createAppPassword",
        Some(&alice.jwt),
        json!({"name": "my client"}),
    );
    assert_eq!(status, 200, "{app_password}");
    let (status, session) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": alice.handle, "password": app_password["password"]}),
    );
    assert_eq!(status, 200, "{session}");
    let (status, created) = post(
        &server,
        "com.atproto.repo.createRecord",
        session["accessJwt"].as_str(),
        body(&alice.handle),
    );
    assert_eq!(status, 200, "{created}");
    // A refresh token is not an access token.
    let tokens = pds::auth::issue(
        JWT_SECRET.as_bytes(),
        SERVICE_DID,
        &alice.did,
        pds::auth::Scope::Full,
    );
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&tokens.refresh_jwt),
            body(&alice.did),
        ),
        401,
        "InvalidToken",
        "",
    );
    let created = create(&server, &alice, POST, a_post("before"));
    let rkey = rkey_of(&created["uri"]);

    // Deactivated and taken-down accounts cannot write, and their records are not served.
    let (_, dir) = server.terminate();
    set_account_status(&dir, &alice.did, "deactivated_at");
    set_account_status(&dir, &bob.did, "takedown_ref");
    let server = start(&plc, Some(dir));
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            body(&alice.did),
        ),
        401,
        "AccountDeactivated",
        "Account is deactivated",
    );
    assert_error(
        &post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&bob.jwt),
            body(&bob.did),
        ),
        401,
        "AccountTakedown",
        "Account has been taken down",
    );
    assert_error(
        &get_record(&server, &alice.did, POST, &rkey),
        400,
        "InvalidRequest",
        "Could not locate record",
    );
    assert_error(
        &get(
            &server,
            "com.atproto.repo.describeRepo",
            &[("repo", &alice.did)],
        ),
        400,
        "RepoDeactivated",
        "",
    );
    assert_error(
        &get(
            &server,
            "com.atproto.repo.describeRepo",
            &[("repo", &bob.handle)],
        ),
        400,
        "RepoTakendown",
        "",
    );
}

/// Sets `column` (`deactivated_at` or `takedown_ref`) of an account, with the server stopped.
fn set_account_status(dir: &tempfile::TempDir, did: &str, column: &str) {
    let conn = rusqlite::Connection::open(dir.path().join("data").join("pds.sqlite")).unwrap();
    let changed = conn
        .execute(
            &format!("UPDATE account SET {column} = '2024-05-01T00:00:00.000Z' WHERE did = ?1"),
            [did],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[test]
fn swaps() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "swapper");
    let first = create(&server, &alice, POST, a_post("one"));
    let head = first["commit"]["cid"].as_str().unwrap().to_owned();
    let stale = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

    // swapCommit: the head, or InvalidSwap naming it.
    let create_with = |swap: &str| {
        post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            json!({"repo": alice.did, "collection": POST, "record": a_post("two"), "swapCommit": swap}),
        )
    };
    assert_error(
        &create_with(stale),
        400,
        "InvalidSwap",
        &format!("Commit was at {head}"),
    );
    let (status, second) = create_with(&head);
    assert_eq!(status, 200, "{second}");
    // The old head is stale now.
    assert_error(&create_with(&head), 400, "InvalidSwap", "Commit was at");

    // putRecord swapRecord: null means "must not exist"; a CID must be the current one.
    let rkey = rkey_of(&first["uri"]);
    let cid = first["cid"].as_str().unwrap();
    let put = |rkey: &str, text: &str, swap: Option<Value>| {
        let mut body =
            json!({"repo": alice.did, "collection": POST, "rkey": rkey, "record": a_post(text)});
        if let Some(swap) = swap {
            body["swapRecord"] = swap;
        }
        post(
            &server,
            "com.atproto.repo.putRecord",
            Some(&alice.jwt),
            body,
        )
    };
    assert_error(
        &put(&rkey, "changed", Some(Value::Null)),
        400,
        "InvalidSwap",
        &format!("Record was at {cid}"),
    );
    assert_error(
        &put(&rkey, "changed", Some(json!(stale))),
        400,
        "InvalidSwap",
        &format!("Record was at {cid}"),
    );
    let (status, updated) = put(&rkey, "changed", Some(json!(cid)));
    assert_eq!(status, 200, "{updated}");
    let fresh = "3kaaaaaaaaaaa";
    assert_error(
        &put(fresh, "new", Some(json!(cid))),
        400,
        "InvalidSwap",
        "Record was at null",
    );
    let (status, created) = put(fresh, "new", Some(Value::Null));
    assert_eq!(status, 200, "{created}");
    assert!(created["commit"].is_object());
    // putRecord with a stale swapCommit.
    let (status, body) = post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": POST, "rkey": fresh, "record": a_post("newer"), "swapCommit": head}),
    );
    assert_error(&(status, body), 400, "InvalidSwap", "Commit was at");

    // deleteRecord: swapRecord and swapCommit must match; nothing is deleted otherwise.
    let delete = |swap_record: Option<&str>, swap_commit: Option<&str>| {
        let mut body = json!({"repo": alice.did, "collection": POST, "rkey": fresh});
        if let Some(s) = swap_record {
            body["swapRecord"] = json!(s);
        }
        if let Some(s) = swap_commit {
            body["swapCommit"] = json!(s);
        }
        post(
            &server,
            "com.atproto.repo.deleteRecord",
            Some(&alice.jwt),
            body,
        )
    };
    let current = created["cid"].as_str().unwrap();
    assert_error(
        &delete(Some(stale), None),
        400,
        "InvalidSwap",
        &format!("Record was at {current}"),
    );
    assert_error(
        &delete(None, Some(stale)),
        400,
        "InvalidSwap",
        "Commit was at",
    );
    assert_eq!(get_record(&server, &alice.did, POST, fresh).0, 200);
    let (status, deleted) = delete(Some(current), created["commit"]["cid"].as_str());
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(get_record(&server, &alice.did, POST, fresh).0, 400);

    // applyWrites swapCommit.
    let (status, body) = post(
        &server,
        "com.atproto.repo.applyWrites",
        Some(&alice.jwt),
        json!({"repo": alice.did, "swapCommit": stale, "writes": []}),
    );
    assert_error(&(status, body), 400, "InvalidSwap", "Commit was at");
}

fn create_op(collection: &str, rkey: Option<&str>, value: Value) -> Value {
    let mut op = json!({"$type": "com.atproto.repo.applyWrites#create", "collection": collection, "value": value});
    if let Some(rkey) = rkey {
        op["rkey"] = json!(rkey);
    }
    op
}

#[test]
fn apply_writes_batches() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "batcher");
    let before = create(&server, &alice, POST, a_post("before"));
    let before_rev = before["commit"]["rev"].as_str().unwrap().to_owned();

    // 200 writes: one commit, one new rev.
    let writes: Vec<Value> = (0..200)
        .map(|i| create_op(POST, None, a_post(&format!("post {i}"))))
        .collect();
    let (status, batch) = post(
        &server,
        "com.atproto.repo.applyWrites",
        Some(&alice.jwt),
        json!({"repo": alice.did, "writes": writes}),
    );
    assert_eq!(status, 200, "{batch}");
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 200);
    let rev = batch["commit"]["rev"].as_str().unwrap();
    assert!(rev > before_rev.as_str());
    for r in results {
        assert_eq!(r["$type"], "com.atproto.repo.applyWrites#createResult");
        assert_eq!(r["validationStatus"], "valid");
        assert!(
            r["uri"]
                .as_str()
                .unwrap()
                .starts_with(&format!("at://{}/{POST}/", alice.did))
        );
    }
    // The batch's commit is the head: nothing else was committed.
    let (status, after) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": POST, "record": a_post("after"), "swapCommit": batch["commit"]["cid"]}),
    );
    assert_eq!(status, 200, "{after}");
    let (_, page) = get(
        &server,
        "com.atproto.repo.listRecords",
        &[("repo", &alice.did), ("collection", POST), ("limit", "100")],
    );
    assert_eq!(page["records"].as_array().unwrap().len(), 100);

    // 201 writes are refused, and nothing of them is written.
    let writes: Vec<Value> = (0..201)
        .map(|i| create_op("com.example.many", Some(&format!("k{i}")), json!({"i": i})))
        .collect();
    assert_error(
        &post(
            &server,
            "com.atproto.repo.applyWrites",
            Some(&alice.jwt),
            json!({"repo": alice.did, "writes": writes}),
        ),
        400,
        "InvalidRequest",
        "Too many writes. Max: 200",
    );
    assert_eq!(
        get_record(&server, &alice.did, "com.example.many", "k0").0,
        400
    );

    // Mixed creates, updates and deletes: results in order, shaped per action.
    let target = rkey_of(&results[0]["uri"]);
    let gone = rkey_of(&results[1]["uri"]);
    let (status, mixed) = post(
        &server,
        "com.atproto.repo.applyWrites",
        Some(&alice.jwt),
        json!({"repo": alice.did, "validate": false, "writes": [
            create_op("com.example.thing", Some("one"), json!({"a": 1})),
            {"$type": "com.atproto.repo.applyWrites#update", "collection": POST, "rkey": target, "value": a_post("updated")},
            {"$type": "com.atproto.repo.applyWrites#delete", "collection": POST, "rkey": gone},
        ]}),
    );
    assert_eq!(status, 200, "{mixed}");
    let r = mixed["results"].as_array().unwrap();
    assert_eq!(r[0]["$type"], "com.atproto.repo.applyWrites#createResult");
    assert_eq!(
        r[0]["uri"],
        format!("at://{}/com.example.thing/one", alice.did)
    );
    assert!(r[0].get("validationStatus").is_none(), "{mixed}");
    assert_eq!(r[1]["$type"], "com.atproto.repo.applyWrites#updateResult");
    assert_eq!(
        r[2],
        json!({"$type": "com.atproto.repo.applyWrites#deleteResult"})
    );
    assert_eq!(
        get_record(&server, &alice.did, POST, &target).1["value"]["text"],
        "updated"
    );
    assert_eq!(get_record(&server, &alice.did, POST, &gone).0, 400);

    // All or nothing: one bad write fails the batch and nothing of it is written.
    for (bad, part) in [
        (
            json!({"$type": "com.atproto.repo.applyWrites#update", "collection": POST, "rkey": gone, "value": a_post("x")}),
            "does not exist",
        ),
        (
            json!({"$type": "com.atproto.repo.applyWrites#delete", "collection": POST, "rkey": gone}),
            "does not exist",
        ),
        (
            create_op(POST, None, a_post(&"x".repeat(3001))),
            "Record/text",
        ),
        (
            json!({"$type": "com.atproto.repo.applyWrites#frobnicate", "collection": POST}),
            "Input/writes/1",
        ),
        (
            create_op("com.example.thing", Some("one"), json!({})),
            "already exists",
        ),
    ] {
        let answer = post(
            &server,
            "com.atproto.repo.applyWrites",
            Some(&alice.jwt),
            json!({"repo": alice.did, "writes": [create_op("com.example.thing", Some("two"), json!({})), bad]}),
        );
        let name = if part.starts_with("Record/") {
            "InvalidRecord"
        } else {
            "InvalidRequest"
        };
        assert_error(&answer, 400, name, part);
        assert_eq!(
            get_record(&server, &alice.did, "com.example.thing", "two").0,
            400
        );
    }
    // The same path twice in one batch.
    assert_error(
        &post(
            &server,
            "com.atproto.repo.applyWrites",
            Some(&alice.jwt),
            json!({"repo": alice.did, "writes": [
                create_op("com.example.thing", Some("dup"), json!({})),
                create_op("com.example.thing", Some("dup"), json!({})),
            ]}),
        ),
        400,
        "InvalidRequest",
        "twice",
    );
}

#[test]
fn list_records_paging() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "lister");
    let mut keys = Vec::new();
    for (start, count) in [(0, 200), (200, 50)] {
        let writes: Vec<Value> = (start..start + count)
            .map(|i| create_op("com.example.item", None, json!({"i": i})))
            .collect();
        let (status, batch) = post(
            &server,
            "com.atproto.repo.applyWrites",
            Some(&alice.jwt),
            json!({"repo": alice.did, "writes": writes}),
        );
        assert_eq!(status, 200, "{batch}");
        keys.extend(
            batch["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| rkey_of(&r["uri"])),
        );
    }
    create(&server, &alice, "com.example.other", json!({"x": 1}));
    let mut ascending = keys.clone();
    ascending.sort();
    assert_eq!(ascending, keys, "TIDs are issued in order");
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();

    let page = |limit: &str, cursor: Option<&str>, reverse: Option<&str>| {
        let mut query = vec![
            ("repo", alice.handle.as_str()),
            ("collection", "com.example.item"),
            ("limit", limit),
        ];
        if let Some(c) = cursor {
            query.push(("cursor", c));
        }
        if let Some(r) = reverse {
            query.push(("reverse", r));
        }
        let (status, body) = get(&server, "com.atproto.repo.listRecords", &query);
        assert_eq!(status, 200, "{body}");
        body
    };
    for (reverse, expected) in [
        (None, &descending),
        (Some("false"), &descending),
        (Some("true"), &ascending),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let body = page("100", cursor.as_deref(), reverse);
            let records = body["records"].as_array().unwrap();
            pages += 1;
            if records.is_empty() {
                assert!(body.get("cursor").is_none(), "{body}");
                break;
            }
            for r in records {
                assert_eq!(r["value"]["$type"], "com.example.item");
                assert!(r["cid"].is_string());
                seen.push(rkey_of(&r["uri"]));
            }
            // The cursor is the last key of the page, whenever the page is not empty.
            assert_eq!(body["cursor"].as_str(), seen.last().map(String::as_str));
            cursor = body["cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(&seen, expected, "reverse={reverse:?}");
        assert_eq!(pages, 4, "100 + 100 + 50, then an empty page");
    }
    // The default page is 50; limits outside 1..=100 are refused.
    let (_, body) = get(
        &server,
        "com.atproto.repo.listRecords",
        &[("repo", &alice.did), ("collection", "com.example.item")],
    );
    assert_eq!(body["records"].as_array().unwrap().len(), 50);
    assert_eq!(
        body["records"][0]["uri"],
        format!("at://{}/com.example.item/{}", alice.did, descending[0])
    );
    for limit in ["0", "101", "x"] {
        let (status, body) = get(
            &server,
            "com.atproto.repo.listRecords",
            &[
                ("repo", &alice.did),
                ("collection", "com.example.item"),
                ("limit", limit),
            ],
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("InvalidRequest")),
            "{limit}: {body}"
        );
    }
    let (_, empty) = get(
        &server,
        "com.atproto.repo.listRecords",
        &[("repo", &alice.did), ("collection", "com.example.none")],
    );
    assert_eq!(empty, json!({"records": []}));
}

#[test]
fn records_survive_a_restart() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "keeper");
    let created = create(&server, &alice, POST, a_post("durable"));
    let rkey = rkey_of(&created["uri"]);
    let rev = created["commit"]["rev"].as_str().unwrap().to_owned();
    let (_, dir) = server.terminate();

    let server = start(&plc, Some(dir));
    let (status, got) = get_record(&server, &alice.did, POST, &rkey);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["cid"], created["cid"]);
    assert_eq!(got["value"], a_post("durable"));
    // Writing continues from the stored head: swapCommit against it works, revs increase.
    let (status, next) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.jwt),
        json!({"repo": alice.did, "collection": POST, "record": a_post("again"), "swapCommit": created["commit"]["cid"]}),
    );
    assert_eq!(status, 200, "{next}");
    assert!(next["commit"]["rev"].as_str().unwrap() > rev.as_str());
    let (_, page) = get(
        &server,
        "com.atproto.repo.listRecords",
        &[("repo", &alice.did), ("collection", POST)],
    );
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_is_refused_cleanly() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "fuzzy");
    let send = |content_type: &str, body: Vec<u8>| {
        let res = http()
            .post(server.url("/xrpc/com.atproto.repo.createRecord"))
            .bearer_auth(&alice.jwt)
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().unwrap_or(Value::Null))
    };
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"".to_vec()),
        ("application/json", b"{".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"\xff\xfe".to_vec()),
        ("text/plain", b"{}".to_vec()),
        ("application/json", format!(r#"{{"repo":"{}","collection":"com.example.x","record":{deep}}}"#, alice.did).into_bytes()),
        ("application/json", format!(r#"{{"repo":"{}","collection":"com.example.x","record":{{"n":1e400}}}}"#, alice.did).into_bytes()),
        ("application/json", format!(r#"{{"repo":"{}","collection":"com.example.x","record":{{"n":18446744073709551616}}}}"#, alice.did).into_bytes()),
        ("application/json", format!(r#"{{"repo":"{}","collection":"com.example.x","record":{{"b":{{"$bytes":"!!"}}}}}}"#, alice.did).into_bytes()),
        ("application/json", format!(r#"{{"repo":"{}","collection":"com.example.x","record":{{"$type":7}}}}"#, alice.did).into_bytes()),
        ("application/json", format!(r#"{{"repo":"{}","collection":"com.example.x","validate":"yes","record":{{}}}}"#, alice.did).into_bytes()),
        ("application/json", r#"{"repo":"not a repo!","collection":"com.example.x","record":{}}"#.as_bytes().to_vec()),
    ];
    for (content_type, body) in bodies {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let (status, answer) = send(content_type, body);
        assert_eq!(status, 400, "{shown}: {answer}");
        assert_eq!(answer["error"], "InvalidRequest", "{shown}: {answer}");
    }
    // The wrong HTTP method.
    let (status, body) = get(&server, "com.atproto.repo.createRecord", &[]);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest"))
    );
    let res = http()
        .post(server.url("/xrpc/com.atproto.repo.getRecord"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // Still serving.
    let (status, _) = get(&server, "_health", &[]);
    assert_eq!(status, 200);
    create(&server, &alice, POST, a_post("still here"));
}

#[test]
fn records_link_uploaded_blobs() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "imager");
    let bob = create_account(&server, "other");
    let upload = |who: &Account, bytes: &'static [u8]| {
        let res = http()
            .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
            .bearer_auth(&who.jwt)
            .header("content-type", "text/plain")
            .body(bytes)
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.json::<Value>().unwrap()["blob"].clone()
    };
    let blob = upload(&alice, b"some blob bytes");
    let with_blob = |blob: &Value| json!({"$type": "com.example.pic", "pic": blob});

    // A blob the account uploaded can be referenced.
    let created = create(&server, &alice, "com.example.pic", with_blob(&blob));
    let (_, got) = get_record(
        &server,
        &alice.did,
        "com.example.pic",
        &rkey_of(&created["uri"]),
    );
    assert_eq!(got["value"]["pic"], blob);

    // One nobody uploaded, or another account uploaded, cannot; nothing is written.
    let bobs = upload(&bob, b"bob's blob bytes");
    for missing in [
        json!({"$type": "blob", "ref": {"$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"}, "mimeType": "text/plain", "size": 3}),
        bobs,
    ] {
        let (status, body) = post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.jwt),
            json!({"repo": alice.did, "collection": "com.example.pic", "rkey": "nope", "record": with_blob(&missing)}),
        );
        assert_error(&(status, body), 400, "BlobNotFound", "Could not find blob");
        assert_eq!(
            get_record(&server, &alice.did, "com.example.pic", "nope").0,
            400
        );
    }
}

/// Found in review: a JSON body is parsed whole, so it gets its own small limit (not the blob
/// limit), and a CID parameter is length-checked before decoding (decoding is quadratic).
#[test]
fn oversized_json_and_cid_inputs_are_refused_cheaply() {
    let plc = LocalPlc::start();
    let server = start(&plc, None);
    let alice = create_account(&server, "bigbody");
    let huge = json!({"repo": alice.did, "collection": POST,
        "record": {"$type": POST, "text": "x", "createdAt": NOW, "pad": vec![0; 600_000]}});
    let answer = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.jwt),
        huge,
    );
    assert_error(&answer, 413, "PayloadTooLarge", "limited to");

    let long_cid = format!("z{}", "2".repeat(60_000));
    let started = std::time::Instant::now();
    let res = http()
        .get(server.url(&format!(
            "/xrpc/com.atproto.sync.getBlob?did={}&cid={long_cid}",
            alice.did
        )))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "answered at once"
    );
}
