//! did:web accounts and custom-domain handles at sign-up (`com.atproto.server.createAccount`
//! with a `did`), on the real binary.
//!
//! Each test runs a small HTTP server on loopback that plays the DID's web host: it serves
//! `/.well-known/did.json` for `did:web:localhost%3A<its port>` (dev mode resolves that over
//! plain http) and `/.well-known/atproto-did` for custom-domain handles, which the dev-mode
//! `PDS_DEV_DNS_OVERRIDES` points at it. The test changes the document as it goes, as an
//! operator fixing their did.json would.

mod common;

use common::did_host::DidHost;
use common::{ServerOptions, TestServer, get, http, post};
use pds_crypto::{Algorithm, Keypair, jws};
use serde_json::{Value, json};

const PASSWORD: &str = "hunter22hunter22";
const ADMIN_PASSWORD: &str = "admin-secret-for-tests";
const CREATE_ACCOUNT: &str = "com.atproto.server.createAccount";

/// The did.json an operator publishes for an account here: `handle`, this server's URL, the
/// key (a did:key) as its `#atproto` Multikey.
fn did_document(did: &str, handle: &str, pds: &str, did_key: &str) -> Value {
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1"
        ],
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": did_key.strip_prefix("did:key:").unwrap()
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": pds
        }]
    })
}

/// The dev setup with a known admin password and, if given, fixed DNS answers.
fn start(dns: Option<&str>) -> TestServer {
    let mut env = vec![("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    if let Some(dns) = dns {
        env.push(("PDS_DEV_DNS_OVERRIDES", dns));
    }
    TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    })
}

/// The server's public URL (what a DID document must name as its PDS).
fn pds_url(server: &TestServer) -> String {
    format!("http://localhost:{}", server.addr.port())
}

fn reserve_key(server: &TestServer, did: &str) -> String {
    let (status, body) = post(
        server,
        "com.atproto.server.reserveSigningKey",
        None,
        json!({ "did": did }),
    );
    assert_eq!(status, 200, "{body}");
    body["signingKey"].as_str().unwrap().to_owned()
}

enum Auth<'a> {
    None,
    Admin(&'a str),
    Bearer(&'a str),
}

fn create_account(server: &TestServer, auth: Auth<'_>, body: Value) -> (u16, Value) {
    let mut req = http()
        .post(server.url(&format!("/xrpc/{CREATE_ACCOUNT}")))
        .json(&body);
    req = match auth {
        Auth::None => req,
        Auth::Admin(password) => req.basic_auth("admin", Some(password)),
        Auth::Bearer(token) => req.bearer_auth(token),
    };
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn account(handle: &str, did: &str) -> Value {
    json!({
        "handle": handle,
        "did": did,
        "email": format!("{}@mail.example.com", handle.replace('.', "-")),
        "password": PASSWORD,
    })
}

/// Asserts an XRPC error: status, name, and that the message contains each of `parts`.
fn assert_refused(answer: &(u16, Value), status: u16, name: &str, parts: &[&str]) {
    let (got, body) = answer;
    assert_eq!(
        (*got, body["error"].as_str()),
        (status, Some(name)),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    for part in parts {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn operator_creates_a_did_web_account_that_works() {
    let host = DidHost::start();
    let server = start(None);
    let did = host.did();
    let key = reserve_key(&server, &did);
    host.publish(did_document(&did, "webby.test", &pds_url(&server), &key));

    let (status, body) = create_account(
        &server,
        Auth::Admin(ADMIN_PASSWORD),
        account("webby.test", &did),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["did"], did.as_str());
    assert_eq!(body["handle"], "webby.test");
    let access = body["accessJwt"].as_str().unwrap().to_owned();

    // The reservation was used up by the account: asking again reserves a new key.
    assert_ne!(reserve_key(&server, &did), key);

    // It logs in, by handle and by DID, and writes to its repo.
    let (status, session) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({ "identifier": "webby.test", "password": PASSWORD }),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["did"], did.as_str());
    let (status, _) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({ "identifier": did, "password": PASSWORD }),
    );
    assert_eq!(status, 200);
    let (status, created) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(session["accessJwt"].as_str().unwrap()),
        json!({
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": { "text": "hello from a did:web", "createdAt": "2024-01-01T00:00:00.000Z" }
        }),
    );
    assert_eq!(status, 200, "{created}");
    assert!(
        created["uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("at://{did}/app.bsky.feed.post/"))
    );

    // describeRepo shows the did:web, its document and a handle it claims.
    let (status, described) = get(
        &server,
        &format!(
            "com.atproto.repo.describeRepo?repo={}",
            did.replace('%', "%25")
        ),
        None,
    );
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["did"], did.as_str());
    assert_eq!(described["handle"], "webby.test");
    assert_eq!(described["didDoc"]["id"], did.as_str());
    assert_eq!(described["handleIsCorrect"], true);
    assert_eq!(described["collections"], json!(["app.bsky.feed.post"]));

    // The first session works too, and the handle resolves here.
    let (status, me) = get(&server, "com.atproto.server.getSession", Some(&access));
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["did"], did.as_str());
    let (_, resolved) = get(
        &server,
        "com.atproto.identity.resolveHandle?handle=webby.test",
        None,
    );
    assert_eq!(resolved["did"], did.as_str());

    // The DID is taken now.
    let mut again = account("other.test", &did);
    again["email"] = json!("other@mail.example.com");
    let answer = create_account(&server, Auth::Admin(ADMIN_PASSWORD), again);
    assert_refused(&answer, 400, "AlreadyExists", &[]);

    // The repo, straight from the database file, verifies against the reserved key: the one
    // the DID document names.
    let (_, dir) = server.terminate();
    let store = pds_storage::Store::open(&dir.path().join("data/pds.sqlite")).unwrap();
    let mut car = Vec::new();
    store.export_car(&did, &mut car).unwrap();
    let reserved = pds_crypto::PublicKey::from_did_key(&key).unwrap();
    let expect = pds_repo::import::ImportExpectations {
        did: Some(&did),
        signing_key: Some(&reserved),
        ..Default::default()
    };
    let verified = pds_repo::import::read_car(car.as_slice(), &expect)
        .expect("the repo is signed with the reserved key");
    assert_eq!(verified.records.len(), 1);
}

#[test]
fn bringing_a_did_needs_proof_and_a_document_that_points_here() {
    let host = DidHost::start();
    let server = start(None);
    let did = host.did();
    let pds = pds_url(&server);
    let admin = || Auth::Admin(ADMIN_PASSWORD);
    let missing_auth = format!("Missing auth to create account with did: {did}");

    // No proof of control: 401, with the reference's message; a wrong admin password or a
    // session-less Bearer are no proof either.
    let answer = create_account(&server, Auth::None, account("alice.test", &did));
    assert_refused(&answer, 401, "AuthenticationRequired", &[&missing_auth]);
    let answer = create_account(&server, Auth::Admin("wrong"), account("alice.test", &did));
    assert_refused(&answer, 401, "AuthenticationRequired", &[]);
    let answer = create_account(&server, Auth::Bearer("junk"), account("alice.test", &did));
    assert_refused(&answer, 401, "BadJwt", &[]);
    // A user's own session token is not service auth.
    let (status, user) = post(
        &server,
        CREATE_ACCOUNT,
        None,
        json!({ "handle": "someone.test", "password": PASSWORD }),
    );
    assert_eq!(status, 200, "{user}");
    let answer = create_account(
        &server,
        Auth::Bearer(user["accessJwt"].as_str().unwrap()),
        account("alice.test", &did),
    );
    assert_refused(&answer, 401, "BadJwtType", &[]);

    // An existing did:plc moves in (tests/migration.rs), but not one hosted here already;
    // other methods never.
    let plc_did = user["did"].as_str().unwrap();
    assert!(plc_did.starts_with("did:plc:"));
    let answer = create_account(&server, admin(), account("alice.test", plc_did));
    assert_refused(&answer, 400, "AlreadyExists", &[]);
    let did_key = Keypair::generate(Algorithm::K256).did_key();
    let answer = create_account(&server, admin(), account("alice.test", &did_key));
    assert_refused(&answer, 400, "InvalidRequest", &["did:key"]);
    let answer = create_account(&server, admin(), account("alice.test", "not-a-did"));
    assert_refused(&answer, 400, "InvalidRequest", &["Input/did"]);

    // No key reserved for the DID: the operator is told to reserve one first.
    let answer = create_account(&server, admin(), account("alice.test", &did));
    assert_refused(
        &answer,
        400,
        "InvalidRequest",
        &[
            &format!("No signing key is reserved for {did}"),
            "com.atproto.server.reserveSigningKey",
        ],
    );
    let key = reserve_key(&server, &did);

    // No document yet.
    let answer = create_account(&server, admin(), account("alice.test", &did));
    assert_refused(
        &answer,
        400,
        "UnresolvableDid",
        &[&format!("Could not resolve a valid DID document for {did}")],
    );

    // Each mismatch is named.
    let other_key = Keypair::generate(Algorithm::K256).did_key();
    let cases = [
        (
            did_document(&did, "alice.test", "https://elsewhere.example.com", &key),
            format!(
                "its #atproto_pds service endpoint is https://elsewhere.example.com, not this server ({pds})"
            ),
        ),
        (
            did_document(&did, "alice.test", &pds, &other_key),
            format!("its #atproto key is {other_key}, not the key reserved for it here ({key})"),
        ),
        (
            did_document(&did, "bob.test", &pds, &key),
            "its handle (the first at:// entry of alsoKnownAs) is at://bob.test, not at://alice.test"
                .to_owned(),
        ),
    ];
    for (doc, problem) in cases {
        host.publish(doc);
        let answer = create_account(&server, admin(), account("alice.test", &did));
        assert_refused(
            &answer,
            400,
            "IncompatibleDidDoc",
            &[
                &format!("The DID document of {did} does not fit this account"),
                &problem,
            ],
        );
        assert_eq!(
            answer.1["message"].as_str().unwrap().matches("; ").count(),
            0,
            "only the one problem: {}",
            answer.1
        );
    }
    // A bare document: everything missing, all listed at once, with what to put there.
    host.publish(json!({ "id": did }));
    let answer = create_account(&server, admin(), account("alice.test", &did));
    assert_refused(
        &answer,
        400,
        "IncompatibleDidDoc",
        &[
            &format!(
                "it has no #atproto_pds service (type AtprotoPersonalDataServer) with serviceEndpoint {pds}"
            ),
            &format!(
                "it has no usable #atproto verification method; it needs the key reserved for it here ({key})"
            ),
            key.strip_prefix("did:key:").unwrap(),
            "its alsoKnownAs has no at:// handle; it needs at://alice.test first",
        ],
    );
    // A document for another DID is not this DID's.
    host.publish(did_document(
        "did:web:elsewhere.example.com",
        "alice.test",
        &pds,
        &key,
    ));
    let answer = create_account(&server, admin(), account("alice.test", &did));
    assert_refused(&answer, 400, "UnresolvableDid", &[]);

    // Nothing was created along the way; with the document fixed, the account is.
    let (status, body) = get(
        &server,
        &format!(
            "com.atproto.repo.describeRepo?repo={}",
            did.replace('%', "%25")
        ),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoNotFound")),
        "{body}"
    );
    host.publish(did_document(&did, "alice.test", &pds, &key));
    let (status, body) = create_account(&server, admin(), account("alice.test", &did));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn custom_domain_handles_must_resolve_to_the_did() {
    let host = DidHost::start();
    let addr = host.addr;
    let dns = format!("carol.example.org={addr},dave.example.org={addr}");
    let server = start(Some(&dns));
    let did = host.did();
    let key = reserve_key(&server, &did);
    let admin = || Auth::Admin(ADMIN_PASSWORD);
    host.publish(did_document(
        &did,
        "carol.example.org",
        &pds_url(&server),
        &key,
    ));

    // Without a DID, a handle outside this server's domains is refused as today.
    let (status, body) = post(
        &server,
        CREATE_ACCOUNT,
        None,
        json!({ "handle": "carol.example.org", "password": PASSWORD }),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidHandle")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not under a domain this server offers")
    );

    // The domain does not point anywhere yet, then points at another DID: refused with the
    // reference's message.
    let answer = create_account(&server, admin(), account("carol.example.org", &did));
    assert_refused(
        &answer,
        400,
        "InvalidRequest",
        &["External handle did not resolve to DID"],
    );
    host.point_handle("carol.example.org", "did:web:someone-else.example.com");
    let answer = create_account(&server, admin(), account("carol.example.org", &did));
    assert_refused(
        &answer,
        400,
        "InvalidRequest",
        &[
            "External handle did not resolve to DID",
            "points to did:web:someone-else.example.com",
        ],
    );
    // A domain that points at the DID but is not the handle the document claims.
    host.point_handle("dave.example.org", &did);
    let answer = create_account(&server, admin(), account("dave.example.org", &did));
    assert_refused(
        &answer,
        400,
        "IncompatibleDidDoc",
        &["is at://carol.example.org, not at://dave.example.org"],
    );
    // A reserved TLD is not a handle anyone can have.
    let answer = create_account(&server, admin(), account("carol.internal", &did));
    assert_refused(&answer, 400, "InvalidHandle", &[]);

    // Pointing at the DID (fetched fresh, no cached refusal): the account is created with it.
    host.point_handle("carol.example.org", &did);
    let (status, body) = create_account(&server, admin(), account("carol.example.org", &did));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["handle"], "carol.example.org");
    let (status, session) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({ "identifier": "carol.example.org", "password": PASSWORD }),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["did"], did.as_str());
    let (_, resolved) = get(
        &server,
        "com.atproto.identity.resolveHandle?handle=carol.example.org",
        None,
    );
    assert_eq!(resolved["did"], did.as_str());
}

/// A service-auth JWT: `claims` signed with `key`.
fn service_jwt(key: &Keypair, claims: Value) -> String {
    jws::sign_es(key, &claims, Some("JWT"))
}

/// The service-auth path: the DID proves control with a JWT signed by its document's #atproto
/// key. That key is one the DID's owner holds; but a did:web account here is signed with the
/// key reserved here, which the document must list as #atproto instead. One document cannot
/// name both, so today this path gets as far as the document check, which refuses with its
/// message (migration, where the old key signs and the document changes afterwards, is another
/// issue). What is tested: every JWT check, and that a good JWT is accepted as proof.
#[test]
fn service_auth_proves_control_of_the_did() {
    let host = DidHost::start();
    let server = start(None);
    let did = host.did();
    let pds = pds_url(&server);
    let (_, described) = get(&server, "com.atproto.server.describeServer", None);
    let service_did = described["did"].as_str().unwrap().to_owned();
    let reserved = reserve_key(&server, &did);
    // The owner's key, P-256 to show ES256 works as well as ES256K.
    let owner = Keypair::generate(Algorithm::P256);
    host.publish(did_document(&did, "eve.test", &pds, &owner.did_key()));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good = json!({
        "iss": did, "aud": service_did, "exp": now + 60, "lxm": CREATE_ACCOUNT, "jti": "nonce-1"
    });
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        claims
    };
    let attempt =
        |token: &str| create_account(&server, Auth::Bearer(token), account("eve.test", &did));

    let refusals = [
        (
            service_jwt(&owner, with("exp", json!(now - 10))),
            "JwtExpired",
        ),
        (
            service_jwt(
                &owner,
                with("aud", json!("did:web:another-pds.example.com")),
            ),
            "BadJwtAudience",
        ),
        (
            service_jwt(&owner, with("lxm", json!("com.atproto.repo.createRecord"))),
            "BadJwtLexiconMethod",
        ),
        // Signed by a key that is not the document's.
        (
            service_jwt(&Keypair::generate(Algorithm::P256), good.clone()),
            "BadJwtSignature",
        ),
        (
            service_jwt(&Keypair::generate(Algorithm::K256), good.clone()),
            "BadJwtSignature",
        ),
    ];
    for (token, name) in &refusals {
        assert_refused(&attempt(token), 401, name, &[]);
    }
    // A good token from another DID proves nothing about this one.
    let token = service_jwt(
        &owner,
        with("iss", json!("did:web:someone-else.example.com")),
    );
    assert_refused(
        &attempt(&token),
        401,
        "AuthenticationRequired",
        &[&format!("Missing auth to create account with did: {did}")],
    );

    // A good token (with or without lxm) is proof; the document then fails the key check.
    let key_problem = format!(
        "its #atproto key is {}, not the key reserved for it here ({reserved})",
        owner.did_key()
    );
    let mut without_lxm = good.clone();
    without_lxm.as_object_mut().unwrap().remove("lxm");
    for claims in [good.clone(), without_lxm] {
        let answer = attempt(&service_jwt(&owner, claims));
        assert_refused(&answer, 400, "IncompatibleDidDoc", &[&key_problem]);
    }

    // The document switched to the reserved key: the owner's token no longer verifies.
    host.publish(did_document(&did, "eve.test", &pds, &reserved));
    assert_refused(
        &attempt(&service_jwt(&owner, good.clone())),
        401,
        "BadJwtSignature",
        &[],
    );
    // No account was created along the way.
    let (status, body) = get(
        &server,
        &format!(
            "com.atproto.repo.describeRepo?repo={}",
            did.replace('%', "%25")
        ),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoNotFound")),
        "{body}"
    );
}
