//! The directory over real HTTP on 127.0.0.1 (ephemeral ports, temporary
//! SQLite files), driven by `PlcClient`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use pds_crypto::{Algorithm, Keypair};
use pds_plc::{
    DidDocument, PlcClient, PlcData, PlcError, RECOVERY_WINDOW_MS, SignedOp, Store, Timestamp,
    UnsignedOp, verify_audit_log,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const HOUR: i64 = 60 * 60 * 1000;

/// A running directory.
struct Server {
    url: String,
    client: PlcClient,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(store: Store) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(pds_plc::server::serve(listener, store, async move {
            let _ = stopped.await;
        }));
        let client = PlcClient::new(&url).unwrap();
        Server {
            url,
            client,
            stop,
            task,
        }
    }

    async fn open(path: &Path) -> Server {
        Server::start(Store::open(path).unwrap()).await
    }

    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// An account the way a PDS sets one up: a recovery key first, then the
/// PDS's own rotation key, and a separate repo signing key.
struct Account {
    recovery: Keypair,
    pds: Keypair,
    signing: Keypair,
}

impl Account {
    fn new() -> Account {
        Account {
            recovery: Keypair::generate(Algorithm::K256),
            pds: Keypair::generate(Algorithm::K256),
            signing: Keypair::generate(Algorithm::P256),
        }
    }

    fn data(&self, handle: &str, endpoint: &str) -> PlcData {
        PlcData::atproto(
            handle,
            endpoint,
            &self.signing.did_key(),
            vec![self.recovery.did_key(), self.pds.did_key()],
        )
    }

    fn genesis(&self) -> SignedOp {
        UnsignedOp::genesis(self.data("alice.test", "https://pds.test")).sign(&self.pds)
    }
}

fn http_status(result: Result<impl std::fmt::Debug, PlcError>) -> (u16, String) {
    match result {
        Err(PlcError::Http { status, message }) => (status, message),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

/// A plain HTTP client for requests `PlcClient` cannot make (bad JSON).
fn raw_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn json_body(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn create_update_audit_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::open(&dir.path().join("plc.sqlite")).await;
    let client = &server.client;
    let alice = Account::new();

    let genesis = alice.genesis();
    let did = client.create(&genesis).await.unwrap();
    assert_eq!(did, genesis.did().unwrap());

    let doc = client.get_document(&did).await.unwrap();
    assert_eq!(
        doc,
        DidDocument::new(&did, &genesis.data().unwrap()).unwrap()
    );
    assert_eq!(doc.id, did);
    assert_eq!(doc.also_known_as, ["at://alice.test"]);
    assert_eq!(doc.service[0].id, "#atproto_pds");
    assert_eq!(doc.service[0].service_endpoint, "https://pds.test");
    assert_eq!(doc.verification_method[0].id, format!("{did}#atproto"));
    assert_eq!(
        format!(
            "did:key:{}",
            doc.verification_method[0].public_key_multibase
        ),
        alice.signing.did_key()
    );

    // Rotate the handle and move to another PDS.
    let update = UnsignedOp::update(
        alice.data("alice2.example.com", "https://pds2.example.com"),
        &genesis.cid(),
    )
    .sign(&alice.pds);
    client.submit(&did, &update).await.unwrap();

    let data = client.get_data(&did).await.unwrap();
    assert_eq!(data.did, did);
    assert_eq!(data.plc_data().handle(), Some("alice2.example.com"));
    assert_eq!(
        data.plc_data().pds_endpoint(),
        Some("https://pds2.example.com")
    );
    assert_eq!(
        data.rotation_keys,
        [alice.recovery.did_key(), alice.pds.did_key()]
    );
    let doc = client.get_document(&did).await.unwrap();
    assert_eq!(doc.also_known_as, ["at://alice2.example.com"]);
    assert_eq!(doc.service[0].service_endpoint, "https://pds2.example.com");

    assert_eq!(
        client.get_log(&did).await.unwrap(),
        [genesis.clone(), update.clone()]
    );
    assert_eq!(client.get_last_op(&did).await.unwrap(), update);
    let audit = client.get_audit_log(&did).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].cid, genesis.cid().to_string());
    assert_eq!(audit[1].cid, update.cid().to_string());
    assert!(audit.iter().all(|e| !e.nullified && e.did == did));
    assert!(audit[0].created_at < audit[1].created_at);
    let state = verify_audit_log(&audit).unwrap().unwrap();
    assert_eq!(state, data.plc_data());

    // The raw JSON is the directory's shape.
    let http = raw_client();
    let response = http
        .get(format!("{}/{did}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/did+ld+json"
    );
    let doc = json_body(response).await;
    assert_eq!(
        doc["@context"],
        json!([
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/ecdsa-2019/v1"
        ])
    );
    assert_eq!(doc["verificationMethod"][0]["type"], "Multikey");
    assert_eq!(doc["verificationMethod"][0]["controller"], did.as_str());
    let audit = json_body(
        http.get(format!("{}/{did}/log/audit", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let entry = audit[1].as_object().unwrap();
    let keys: Vec<_> = entry.keys().map(String::as_str).collect();
    assert!(
        ["did", "operation", "cid", "nullified", "createdAt"]
            .iter()
            .all(|k| keys.contains(k))
    );
    let created_at = entry["createdAt"].as_str().unwrap();
    assert_eq!(created_at.len(), "2024-01-01T00:00:00.000Z".len());
    assert!(created_at.ends_with('Z'));
    assert_eq!(entry["operation"]["type"], "plc_operation");
    assert_eq!(
        entry["operation"]["prev"],
        genesis.cid().to_string().as_str()
    );

    // Health.
    let health = json_body(
        http.get(format!("{}/_health", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(health["version"].is_string());

    server.shut_down().await;
}

#[tokio::test]
async fn rejections_are_400_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::open(&dir.path().join("plc.sqlite")).await;
    let client = &server.client;
    let alice = Account::new();
    let genesis = alice.genesis();
    let did = genesis.did().unwrap();

    // A genesis submitted under another DID.
    let other = Account::new().genesis().did().unwrap();
    let (status, message) = http_status(client.submit(&other, &genesis).await);
    assert_eq!(status, 400);
    assert!(message.contains("genesis"), "{message}");

    // A genesis signed by a key that is not among its rotation keys.
    let stranger = Keypair::generate(Algorithm::K256);
    let forged = UnsignedOp::genesis(alice.data("alice.test", "https://pds.test")).sign(&stranger);
    let (status, _) = http_status(client.create(&forged).await);
    assert_eq!(status, 400);

    client.submit(&did, &genesis).await.unwrap();

    let cases: Vec<(&str, SignedOp)> = vec![
        (
            "key not in the rotation set",
            UnsignedOp::update(alice.data("a.test", "https://p.test"), &genesis.cid())
                .sign(&stranger),
        ),
        (
            "repo signing key is no rotation key",
            UnsignedOp::update(alice.data("a.test", "https://p.test"), &genesis.cid())
                .sign(&alice.signing),
        ),
        ("bad signature", {
            let mut op = UnsignedOp::update(alice.data("a.test", "https://p.test"), &genesis.cid())
                .sign(&alice.pds);
            let mut bytes = op.sig_bytes().unwrap();
            bytes[10] ^= 1;
            op.sig = data_encoding::BASE64URL_NOPAD.encode(&bytes);
            op
        }),
        (
            "unknown prev",
            UnsignedOp::update(
                alice.data("a.test", "https://p.test"),
                &Account::new().genesis().cid(),
            )
            .sign(&alice.pds),
        ),
        (
            "second genesis",
            UnsignedOp::genesis(alice.data("a.test", "https://p.test")).sign(&alice.pds),
        ),
        (
            "bad handle",
            UnsignedOp::update(alice.data("not a handle", "https://p.test"), &genesis.cid())
                .sign(&alice.pds),
        ),
        (
            "bad endpoint",
            UnsignedOp::update(alice.data("a.test", "pds.test"), &genesis.cid()).sign(&alice.pds),
        ),
        ("bad did:key", {
            let mut data = alice.data("a.test", "https://p.test");
            data.rotation_keys.push("did:key:zNotAKey".into());
            UnsignedOp::update(data, &genesis.cid()).sign(&alice.pds)
        }),
        ("too many rotation keys", {
            let mut data = alice.data("a.test", "https://p.test");
            data.rotation_keys
                .extend((0..10).map(|_| Keypair::generate(Algorithm::K256).did_key()));
            UnsignedOp::update(data, &genesis.cid()).sign(&alice.pds)
        }),
        ("the same operation again", genesis.clone()),
    ];
    for (case, op) in cases {
        let (status, message) = http_status(client.submit(&did, &op).await);
        assert_eq!(status, 400, "{case}");
        assert!(!message.is_empty(), "{case}");
    }

    // Bodies that are not operations.
    let http = raw_client();
    for body in [
        "not json".to_owned(),
        "{}".to_owned(),
        r#"{"type":"plc_operation"}"#.to_owned(),
        {
            let mut v = genesis.to_json();
            v["unexpected"] = json!(true);
            v.to_string()
        },
    ] {
        let response = http
            .post(format!("{}/{did}", server.url))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error = json_body(response).await;
        assert!(error["message"].is_string(), "{body}");
    }

    // Nothing of that was stored.
    assert_eq!(client.get_audit_log(&did).await.unwrap().len(), 1);

    // Unknown DIDs.
    let unknown = Account::new().genesis().did().unwrap();
    for result in [
        client.get_document(&unknown).await.map(|_| ()),
        client.get_data(&unknown).await.map(|_| ()),
        client.get_log(&unknown).await.map(|_| ()),
        client.get_audit_log(&unknown).await.map(|_| ()),
        client.get_last_op(&unknown).await.map(|_| ()),
    ] {
        assert_eq!(result, Err(PlcError::NotRegistered(unknown.clone())));
    }
    let response = http
        .get(format!("{}/{unknown}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error = json_body(response).await;
    assert_eq!(error["message"], format!("DID not registered: {unknown}"));

    server.shut_down().await;
}

#[tokio::test]
async fn tombstone_deactivates_the_did() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::open(&dir.path().join("plc.sqlite")).await;
    let client = &server.client;
    let alice = Account::new();
    let genesis = alice.genesis();
    let did = client.create(&genesis).await.unwrap();

    let tombstone = UnsignedOp::tombstone(&genesis.cid()).sign(&alice.pds);
    client.submit(&did, &tombstone).await.unwrap();

    assert_eq!(
        client.get_document(&did).await,
        Err(PlcError::NotAvailable(did.clone()))
    );
    assert_eq!(
        client.get_data(&did).await,
        Err(PlcError::NotAvailable(did.clone()))
    );
    assert_eq!(client.get_last_op(&did).await.unwrap(), tombstone);
    assert_eq!(client.get_log(&did).await.unwrap().len(), 2);
    let audit = client.get_audit_log(&did).await.unwrap();
    assert_eq!(verify_audit_log(&audit).unwrap(), None);

    let http = raw_client();
    let response = http
        .get(format!("{}/{did}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    let error = json_body(response).await;
    assert_eq!(error["message"], format!("DID not available: {did}"));

    // Nothing follows a tombstone.
    let after = UnsignedOp::update(alice.data("b.test", "https://p.test"), &tombstone.cid())
        .sign(&alice.recovery);
    let (status, _) = http_status(client.submit(&did, &after).await);
    assert_eq!(status, 400);

    server.shut_down().await;
}

#[tokio::test]
async fn recovery_window_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let time = Arc::new(AtomicI64::new(Timestamp::now().as_millis()));
    let clock = time.clone();
    let store = Store::open_with_clock(
        &dir.path().join("plc.sqlite"),
        Arc::new(move || Timestamp::from_millis(clock.load(Ordering::SeqCst))),
    )
    .unwrap();
    let server = Server::start(store).await;
    let client = &server.client;

    // Two accounts, each hijacked through its PDS key (priority 1).
    let mut accounts = Vec::new();
    for _ in 0..2 {
        let account = Account::new();
        let genesis = account.genesis();
        let did = client.create(&genesis).await.unwrap();
        let evil = UnsignedOp::update(
            account.data("evil.test", "https://evil.test"),
            &genesis.cid(),
        )
        .sign(&account.pds);
        client.submit(&did, &evil).await.unwrap();
        accounts.push((account, did, genesis, evil));
    }
    let hijack_time = time.load(Ordering::SeqCst);

    // 71 hours later the first account's recovery key (priority 0) forks
    // from the genesis and drops the PDS key.
    time.store(hijack_time + 71 * HOUR, Ordering::SeqCst);
    let (account, did, genesis, evil) = &accounts[0];
    let data = PlcData::atproto(
        "alice.test",
        "https://pds.test",
        &account.signing.did_key(),
        vec![account.recovery.did_key()],
    );
    // The PDS key itself may not fork (it signed the disputed operation).
    let weak = UnsignedOp::update(data.clone(), &genesis.cid()).sign(&account.pds);
    assert_eq!(http_status(client.submit(did, &weak).await).0, 400);
    let recovery = UnsignedOp::update(data, &genesis.cid()).sign(&account.recovery);
    client.submit(did, &recovery).await.unwrap();
    let audit = client.get_audit_log(did).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|e| (e.cid.clone(), e.nullified))
            .collect::<Vec<_>>(),
        [
            (genesis.cid().to_string(), false),
            (evil.cid().to_string(), true),
            (recovery.cid().to_string(), false),
        ]
    );
    verify_audit_log(&audit).unwrap();
    assert_eq!(
        client.get_log(did).await.unwrap(),
        [genesis.clone(), recovery]
    );
    assert_eq!(
        client.get_document(did).await.unwrap().also_known_as,
        ["at://alice.test"]
    );

    // Past 72 hours the second account's recovery comes too late. (The
    // clock stood still while the operations came in, so the store stamped
    // them 1 ms apart: the hijack is at `hijack_time + 1`.)
    let evil_time = client.get_audit_log(&accounts[1].1).await.unwrap()[1].created_at;
    assert_eq!(evil_time.as_millis(), hijack_time + 1);
    time.store(
        evil_time.as_millis() + RECOVERY_WINDOW_MS + 1,
        Ordering::SeqCst,
    );
    let (account, did, genesis, _) = &accounts[1];
    let late = UnsignedOp::update(
        account.data("alice.test", "https://pds.test"),
        &genesis.cid(),
    )
    .sign(&account.recovery);
    let (status, message) = http_status(client.submit(did, &late).await);
    assert_eq!(status, 400);
    assert!(message.contains("recovery window"), "{message}");
    assert_eq!(
        client.get_document(did).await.unwrap().also_known_as,
        ["at://evil.test"]
    );

    server.shut_down().await;
}

#[tokio::test]
async fn concurrent_submits_for_one_did() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::open(&dir.path().join("plc.sqlite")).await;
    let alice = Account::new();
    let genesis = alice.genesis();
    let did = server.client.create(&genesis).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let client = server.client.clone();
            let did = did.clone();
            let op = UnsignedOp::update(
                alice.data(&format!("h{i}.test"), "https://pds.test"),
                &genesis.cid(),
            )
            .sign(&alice.pds);
            tokio::spawn(async move { client.submit(&did, &op).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(e) => assert_eq!(e.http_status(), 400, "{e}"),
        }
    }
    assert_eq!(accepted, 1);
    let audit = server.client.get_audit_log(&did).await.unwrap();
    assert_eq!(audit.len(), 2);
    verify_audit_log(&audit).unwrap();
    server.shut_down().await;
}

#[tokio::test]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plc.sqlite");
    let alice = Account::new();
    let bob = Account::new();

    let server = Server::open(&path).await;
    let genesis = alice.genesis();
    let alice_did = server.client.create(&genesis).await.unwrap();
    let update = UnsignedOp::update(
        alice.data("alice.example.com", "https://p.test"),
        &genesis.cid(),
    )
    .sign(&alice.pds);
    server.client.submit(&alice_did, &update).await.unwrap();
    let bob_genesis = bob.genesis();
    let bob_did = server.client.create(&bob_genesis).await.unwrap();
    let tomb = UnsignedOp::tombstone(&bob_genesis.cid()).sign(&bob.recovery);
    server.client.submit(&bob_did, &tomb).await.unwrap();
    let alice_audit = server.client.get_audit_log(&alice_did).await.unwrap();
    let bob_audit = server.client.get_audit_log(&bob_did).await.unwrap();
    let alice_doc = server.client.get_document(&alice_did).await.unwrap();
    server.shut_down().await;

    let server = Server::open(&path).await;
    assert_ne!(server.url, "");
    assert_eq!(
        server.client.get_audit_log(&alice_did).await.unwrap(),
        alice_audit
    );
    assert_eq!(
        server.client.get_audit_log(&bob_did).await.unwrap(),
        bob_audit
    );
    assert_eq!(
        server.client.get_document(&alice_did).await.unwrap(),
        alice_doc
    );
    assert_eq!(
        server.client.get_document(&bob_did).await,
        Err(PlcError::NotAvailable(bob_did.clone()))
    );
    // And the log continues where it stopped.
    let next = UnsignedOp::update(
        alice.data("alice3.example.com", "https://p.test"),
        &update.cid(),
    )
    .sign(&alice.pds);
    server.client.submit(&alice_did, &next).await.unwrap();
    let audit = server.client.get_audit_log(&alice_did).await.unwrap();
    assert_eq!(audit.len(), 3);
    verify_audit_log(&audit).unwrap();
    server.shut_down().await;
}

#[tokio::test]
async fn client_limits_and_errors() {
    // Nothing listens here: a transport error, not a hang.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = PlcClient::new(&format!("http://{addr}")).unwrap();
    let did = Account::new().genesis().did().unwrap();
    assert!(matches!(
        client.get_document(&did).await,
        Err(PlcError::Transport(_))
    ));

    // A server that answers with more than 1 MiB.
    let big = axum::Router::new().fallback(|| async { vec![b'x'; 2 * 1024 * 1024] });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, big).await });
    let client = PlcClient::new(&url).unwrap();
    assert_eq!(
        client.get_audit_log(&did).await,
        Err(PlcError::ResponseTooLarge(
            pds_plc::client::MAX_RESPONSE_BYTES
        ))
    );
    task.abort();

    // A server that answers 200 with something that is not a document.
    let odd = axum::Router::new().fallback(|| async { "{\"hello\":1}" });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, odd).await });
    let client = PlcClient::new(&url).unwrap();
    assert!(matches!(
        client.get_document(&did).await,
        Err(PlcError::InvalidResponse(_))
    ));
    task.abort();
}
