//! Durability under a crash: records written by concurrent clients, the server killed with
//! SIGKILL mid-stream, then restarted. Every write that was acknowledged must be there with the
//! CID it was acknowledged with, and the repo must verify completely (commit signature, the one
//! canonical MST, every block present): no write is lost, none is half-applied.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ServerOptions, TestServer, http};
use serde_json::{Value, json};

#[test]
fn acknowledged_writes_survive_kill_9() {
    let server = TestServer::start();
    let account: Value = http()
        .post(server.url("/xrpc/com.atproto.server.createAccount"))
        .json(&json!({"handle": "crash.test", "password": "crash test password"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let did = account["did"].as_str().expect("account created").to_owned();
    let token = account["accessJwt"].as_str().unwrap().to_owned();

    // Writers run until the crash; each remembers what the server acknowledged.
    let acknowledged: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url("/xrpc/com.atproto.repo.createRecord");
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (acknowledged, stop, url, token, did) =
                (acknowledged.clone(), stop.clone(), url.clone(), token.clone(), did.clone());
            std::thread::spawn(move || {
                let client = http();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let record = json!({"$type": "app.bsky.feed.post", "text": format!("writer {w} post {n}"),
                        "createdAt": "2026-11-21T00:00:00.000Z"});
                    let res = client.post(&url).bearer_auth(&token).json(&json!({
                        "repo": did, "collection": "app.bsky.feed.post", "record": record,
                    })).send();
                    // After the kill, requests fail: those were never acknowledged.
                    let Ok(res) = res else { continue };
                    if res.status().is_success()
                        && let Ok(body) = res.json::<Value>()
                    {
                        let uri = body["uri"].as_str().unwrap().to_owned();
                        let cid = body["cid"].as_str().unwrap().to_owned();
                        acknowledged.lock().unwrap().insert(uri, cid);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let dir = server.kill_hard();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = Arc::try_unwrap(acknowledged).unwrap().into_inner().unwrap();
    assert!(
        acknowledged.len() > 20,
        "the writers got going before the crash ({} writes)",
        acknowledged.len()
    );

    // Restarted on the same data: every acknowledged record reads back with its CID.
    let server = TestServer::start_with(ServerOptions {
        dir: Some(dir),
        ..Default::default()
    });
    for (uri, cid) in &acknowledged {
        let rkey = uri.rsplit('/').next().unwrap();
        let res = http()
            .get(server.url(&format!(
                "/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}"
            )))
            .send()
            .unwrap();
        assert_eq!(
            res.status().as_u16(),
            200,
            "acknowledged record {uri} is missing after the crash"
        );
        assert_eq!(res.json::<Value>().unwrap()["cid"], cid.as_str());
    }
    // And the server still takes writes.
    let res = http()
        .post(server.url("/xrpc/com.atproto.repo.createRecord"))
        .bearer_auth(&token)
        .json(&json!({"repo": did, "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "text": "after", "createdAt": "2026-11-21T00:00:00.000Z"}}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // The whole repo verifies against the account's key, straight from the database file.
    let (_, dir) = server.terminate();
    let db = dir.path().join("data/pds.sqlite");
    let key: Vec<u8> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT signing_key FROM account WHERE did = ?1",
            [&did],
            |r| r.get(0),
        )
        .unwrap();
    let key = pds_crypto::Keypair::from_private_bytes(pds_crypto::Algorithm::K256, &key)
        .unwrap()
        .public_key();
    let store = pds_storage::Store::open(&db).unwrap();
    let mut car = Vec::new();
    store.export_car(&did, &mut car).unwrap();
    let expect = pds_repo::import::ImportExpectations {
        did: Some(&did),
        signing_key: Some(&key),
        ..Default::default()
    };
    let verified = pds_repo::import::read_car(car.as_slice(), &expect)
        .expect("the repo verifies after the crash");
    assert!(
        verified.records.len() > acknowledged.len(),
        "every acknowledged record, plus the one written after"
    );
}
