//! `pds export` beside a running server: the account's repo, blobs, preferences and account
//! facts land in a directory, and each matches what the server serves.

mod common;

use common::{TestServer, create_account, http, plc_signing_key, post, run_pds_in, shipped_config};
use pds_ipld::car::{CarBuffer, CarLimits};
use serde_json::{Value, json};

#[test]
fn export_writes_repo_blobs_and_preferences_while_the_server_runs() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    create_account(&server, "bob");

    // A blob referenced by a record, and one uploaded but never used (not exported).
    let upload = |bytes: &[u8]| -> Value {
        let res = http()
            .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
            .bearer_auth(&alice.token)
            .header("content-type", "image/png")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.json::<Value>().unwrap()["blob"].clone()
    };
    let picture: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let blob = upload(&picture);
    upload(b"never referenced");
    for i in 0..20 {
        let (status, body) = post(
            &server,
            "com.atproto.repo.createRecord",
            Some(&alice.token),
            json!({"repo": alice.did, "collection": "com.example.export.note",
                   "record": {"text": format!("note {i}"), "picture": blob}}),
        );
        assert_eq!(status, 200, "{body}");
    }
    let prefs = json!([{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}]);
    let (status, body) = post(
        &server,
        "app.bsky.actor.putPreferences",
        Some(&alice.token),
        json!({"preferences": prefs}),
    );
    assert_eq!(status, 200, "{body}");

    // Exported by handle, with the server running on the same data directory.
    let out = tempfile::tempdir().unwrap();
    let data = server.data_dir();
    let config = shipped_config();
    let done = run_pds_in(
        server.dir.path(),
        &[
            "export",
            "alice.test",
            "--out",
            out.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("PDS_DATA_DIRECTORY", data.to_str().unwrap())],
    );
    assert!(done.status.success(), "{done:?}");
    assert!(done.stdout.contains(&alice.did), "{}", done.stdout);

    // The repo: the same bytes as getRepo, and it verifies against the account's key.
    let car = std::fs::read(out.path().join("repo.car")).unwrap();
    let served = http()
        .get(server.url(&format!("/xrpc/com.atproto.sync.getRepo?did={}", alice.did)))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(car, served.to_vec());
    let key = plc_signing_key(&server, &alice.did);
    let verified = pds_repo::import::verify_car(
        CarBuffer::parse(car, CarLimits::default()).unwrap(),
        &pds_repo::import::ImportExpectations {
            did: Some(&alice.did),
            signing_key: Some(&key),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(verified.records.len(), 20);

    // Exactly the referenced blob, byte for byte.
    let blobs: Vec<String> = std::fs::read_dir(out.path().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let cid = blob["ref"]["$link"].as_str().unwrap();
    assert_eq!(blobs, vec![cid.to_owned()]);
    assert_eq!(
        std::fs::read(out.path().join("blobs").join(cid)).unwrap(),
        picture
    );

    // Its media type, for uploading it again on recovery.
    let types: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("blobs.json")).unwrap()).unwrap();
    assert_eq!(types, json!({ cid: blob["mimeType"] }));

    let exported: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("preferences.json")).unwrap())
            .unwrap();
    assert_eq!(exported["preferences"], prefs);
    let account: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("account.json")).unwrap()).unwrap();
    assert_eq!(account["did"], alice.did.as_str());
    assert_eq!(account["handle"], "alice.test");
    assert_eq!(account["email"], "alice@example.com");

    // An unknown account: a clear error, non-zero exit.
    let done = run_pds_in(
        server.dir.path(),
        &[
            "export",
            "nobody.test",
            "--out",
            out.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("PDS_DATA_DIRECTORY", data.to_str().unwrap())],
    );
    assert!(!done.status.success());
    assert!(
        done.stderr.contains("no account nobody.test"),
        "{}",
        done.stderr
    );
}
