//! `pds migrate`, `pds recover` and `pds rotation-key` on real servers: two servers and a did:plc
//! directory on loopback, the commands run as the real binary.
//!
//! - An account with 1,000 records, 20 blobs and preferences moves from A to B while the command
//!   is killed (SIGKILL) at every step and run again; after every kill the DID points at a host
//!   where the account is active. Then it moves back from B to A.
//! - An account whose host is gone comes back from its `pds export` backup with a rotation key
//!   its owner added beforehand.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::did_host::DidHost;
use common::{
    LocalPlc, PASSWORD, ServerOptions, TestServer, create_account, get, http, next_frame,
    pds_command, plc_operation_code, post, run_pds, subscribe,
};
use pds_ipld::Ipld;
use serde_json::{Value, json};

const POST: &str = "app.bsky.feed.post";
const LIKE: &str = "app.bsky.feed.like";
const ADMIN_PASSWORD: &str = "admin-secret-for-tests";

/// A server named `did:web:<name>.test` (two dev servers on one machine would both be
/// `did:web:localhost`, and the migration refuses to move an account onto the host it is on).
fn start(plc: &LocalPlc, name: &str) -> TestServer {
    let service_did = format!("did:web:{name}.test");
    TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", plc.url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
            ("PDS_SERVICE_DID", service_did.as_str()),
            ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
        ..Default::default()
    })
}

/// The URL the server calls itself by (what DID documents name).
fn public_url(server: &TestServer) -> String {
    format!("http://localhost:{}", server.addr.port())
}

/// How a run of an account command ended.
#[derive(Debug)]
enum Run {
    /// It printed a line containing the marker and was killed there.
    Killed,
    Exited {
        status: ExitStatus,
        stdout: String,
    },
}

/// Runs `pds <args>` with the account password; kills it (SIGKILL) as soon as it prints a line
/// containing `kill_at`, if given.
fn run_account_command(args: &[&str], kill_at: Option<&str>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut child = pds_command(dir.path(), args, &[("PDS_ACCOUNT_PASSWORD", PASSWORD)])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        println!("    | {line}");
        stdout.push_str(&line);
        stdout.push('\n');
        if kill_at.is_some_and(|marker| line.contains(marker)) {
            child.kill().unwrap();
            child.wait().unwrap();
            return Run::Killed;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Run::Exited { status, stdout };
        }
        assert!(Instant::now() < deadline, "pds {args:?} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exited(run: Run) -> (i32, String) {
    match run {
        Run::Exited { status, stdout } => (status.code().unwrap_or(-1), stdout),
        Run::Killed => panic!("expected the command to run to its end"),
    }
}

/// The host the DID document names, from the directory.
fn pds_of(plc: &LocalPlc, did: &str) -> String {
    let data: Value = http()
        .get(format!("{}/{did}/data", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    data["services"]["atproto_pds"]["endpoint"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A DID as a query parameter (a did:web's `%3A` must reach the server as it is).
fn param(did: &str) -> String {
    did.replace('%', "%25")
}

fn repo_active(server: &TestServer, did: &str) -> bool {
    let (status, body) = get(
        server,
        &format!("com.atproto.sync.getRepoStatus?did={}", param(did)),
        None,
    );
    status == 200 && body["active"] == json!(true)
}

/// The invariant a migration keeps at every moment: the DID points at a host where the account
/// is active.
fn assert_hosted(plc: &LocalPlc, did: &str, servers: &[&TestServer], when: &str) {
    let home = pds_of(plc, did);
    let server = servers
        .iter()
        .find(|s| home == public_url(s))
        .unwrap_or_else(|| panic!("{when}: the DID points at {home}, neither server"));
    assert!(
        repo_active(server, did),
        "{when}: the DID points at {home}, where the account is not active"
    );
}

/// Every record of the account: URI to CID.
fn records(server: &TestServer, did: &str) -> BTreeMap<String, String> {
    let did = param(did);
    let mut all = BTreeMap::new();
    for collection in [POST, LIKE, "app.bsky.actor.profile"] {
        let mut cursor = String::new();
        loop {
            let (status, body) = get(
                server,
                &format!(
                    "com.atproto.repo.listRecords?repo={did}&collection={collection}&limit=100{cursor}"
                ),
                None,
            );
            assert_eq!(status, 200, "{body}");
            let page = body["records"].as_array().unwrap();
            for record in page {
                all.insert(
                    record["uri"].as_str().unwrap().to_owned(),
                    record["cid"].as_str().unwrap().to_owned(),
                );
            }
            match body["cursor"].as_str() {
                Some(c) if !page.is_empty() => cursor = format!("&cursor={c}"),
                _ => break,
            }
        }
    }
    all
}

fn blob_bytes(server: &TestServer, did: &str, cid: &str) -> Vec<u8> {
    let did = param(did);
    let res = http()
        .get(server.url(&format!(
            "/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"
        )))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "blob {cid}");
    res.bytes().unwrap().to_vec()
}

fn png(n: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    bytes.extend(format!("image number {n} ").repeat(200).bytes());
    bytes
}

fn session(server: &TestServer, identifier: &str) -> (u16, Value) {
    post(
        server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": identifier, "password": PASSWORD}),
    )
}

/// Fills `token`'s account with 980 likes, 20 posts with an image each (20 blobs), a profile and
/// preferences. Returns the blobs' CIDs.
fn fill(server: &TestServer, token: &str, did: &str) -> Vec<String> {
    let blobs: Vec<String> = (0..20)
        .map(|n| post_picture(server, token, did, n).0)
        .collect();
    for batch in 0..5 {
        let writes: Vec<Value> = (0..196)
            .map(|i| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": LIKE, "value": {
                "$type": LIKE, "createdAt": "2024-01-01T00:00:00.000Z",
                "subject": {"uri": format!("at://did:plc:someone/{POST}/{batch}x{i}"), "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
            }}))
            .collect();
        let (status, body) = post(
            server,
            "com.atproto.repo.applyWrites",
            Some(token),
            json!({"repo": did, "writes": writes}),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = post(
        server,
        "com.atproto.repo.putRecord",
        Some(token),
        json!({"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": {
            "$type": "app.bsky.actor.profile", "displayName": "Alice",
        }}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        server,
        "app.bsky.actor.putPreferences",
        Some(token),
        json!({"preferences": [
            {"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true},
            {"$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": [
                {"id": "1", "type": "timeline", "value": "following", "pinned": true},
            ]},
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    blobs
}

/// Uploads image `n` and posts it. Returns the blob's CID and the post's URI.
fn post_picture(server: &TestServer, token: &str, did: &str, n: usize) -> (String, String) {
    let res = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(png(n))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let blob = res.json::<Value>().unwrap()["blob"].clone();
    let (status, body) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(token),
        json!({"repo": did, "collection": POST, "record": {
            "$type": POST, "text": format!("picture {n}"), "createdAt": "2024-01-01T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]},
        }}),
    );
    assert_eq!(status, 200, "{body}");
    (
        blob["ref"]["$link"].as_str().unwrap().to_owned(),
        body["uri"].as_str().unwrap().to_owned(),
    )
}

fn preferences(server: &TestServer, did: &str) -> Value {
    let (status, body) = session(server, did);
    assert_eq!(status, 200, "{body}");
    let token = body["accessJwt"].as_str().unwrap();
    let (status, body) = get(server, "app.bsky.actor.getPreferences", Some(token));
    assert_eq!(status, 200, "{body}");
    body["preferences"].clone()
}

fn migrate_args<'a>(
    plc: &'a LocalPlc,
    from: &'a str,
    to: &'a str,
    state: &'a str,
    token: Option<&'a str>,
) -> Vec<&'a str> {
    let mut args = vec![
        "migrate",
        "alice.test",
        "--from",
        from,
        "--to",
        to,
        "--state-dir",
        state,
        "--plc-url",
        &plc.url,
    ];
    if let Some(token) = token {
        args.extend(["--plc-token", token]);
    }
    args
}

#[test]
fn pds_migrate_moves_an_account_killed_at_every_step_and_back() {
    let plc = LocalPlc::start();
    let a = start(&plc, "a");
    let b = start(&plc, "b");
    let (a_url, b_url) = (a.url(""), b.url(""));
    let (a_url, b_url) = (a_url.trim_end_matches('/'), b_url.trim_end_matches('/'));
    let alice = create_account(&a, "alice");
    let did = alice.did.clone();
    let blobs = fill(&a, &alice.token, &did);
    let before = records(&a, &did);
    assert_eq!(before.len(), 1001);
    let prefs = preferences(&a, &did);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();

    // Killed at the start of each step before the DID moves; every run picks up from there.
    let servers = [&a, &b];
    for marker in ["[2/9]", "[3/9]", "repository:", "blob 1/", "[5/9]", "[6/9]"] {
        let run = run_account_command(
            &migrate_args(&plc, a_url, b_url, state_dir, None),
            Some(marker),
        );
        assert!(
            matches!(run, Run::Killed),
            "the run ended before {marker}: {run:?}"
        );
        assert_hosted(&plc, &did, &servers, &format!("killed at {marker}"));
        assert_eq!(
            pds_of(&plc, &did),
            public_url(&a),
            "the DID does not move before the copy is done"
        );
    }

    // Without the e-mailed code, it copies everything, asks for the code and stops (exit 3).
    let (code, stdout) = exited(run_account_command(
        &migrate_args(&plc, a_url, b_url, state_dir, None),
        None,
    ));
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("--plc-token"), "{stdout}");
    assert!(
        stdout.contains("1001 records") && stdout.contains("20/20 blobs"),
        "{stdout}"
    );
    let token = plc_operation_code(&a, &alice.email).expect("the old host e-mailed a code");

    // Killed right after the old host signed (the code is used up; the operation is kept), then
    // as activation and deactivation start.
    for marker in ["the old host signed the DID operation", "[8/9]", "[9/9]"] {
        let run = run_account_command(
            &migrate_args(&plc, a_url, b_url, state_dir, Some(&token)),
            Some(marker),
        );
        assert!(
            matches!(run, Run::Killed),
            "the run ended before {marker}: {run:?}"
        );
        assert_hosted(&plc, &did, &servers, &format!("killed at {marker}"));
    }
    let (code, stdout) = exited(run_account_command(
        &migrate_args(&plc, a_url, b_url, state_dir, Some(&token)),
        None,
    ));
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "done: {did} (alice.test) is active on {b_url} with 1001 records and 20 blobs"
        )),
        "{stdout}"
    );

    // On B: the same records (same CIDs), blobs, handle and preferences; log-in works.
    assert_eq!(pds_of(&plc, &did), public_url(&b));
    assert!(repo_active(&b, &did));
    assert_eq!(records(&b, &did), before);
    for cid in &blobs {
        assert_eq!(
            blob_bytes(&b, &did, cid),
            uploaded_bytes(&blobs, cid),
            "blob {cid}"
        );
    }
    let (status, body) = get(
        &b,
        &format!("com.atproto.repo.describeRepo?repo={did}"),
        None,
    );
    assert_eq!(
        (status, body["handle"].as_str()),
        (200, Some("alice.test")),
        "{body}"
    );
    assert_eq!(preferences(&b, &did), prefs);
    // B announced the account: identity, active account, and its (re-signed) commit as #sync.
    let mut socket = subscribe(&b, Some(0));
    let mut seen = Vec::new();
    while let Some(frame) = next_frame(&mut socket) {
        let about = |field: &str| matches!(frame.get(field), Some(Ipld::String(s)) if *s == did);
        if !(about("did") || about("repo")) {
            continue;
        }
        let active = matches!(frame.get("active"), Some(Ipld::Bool(true)));
        seen.push((frame.kind().unwrap().to_owned(), active));
        let activated = seen
            .iter()
            .position(|(k, active)| k == "#account" && *active);
        if activated.is_some_and(|at| seen[at..].iter().any(|(k, _)| k == "#sync")) {
            break;
        }
    }
    let activated = seen
        .iter()
        .position(|(k, active)| k == "#account" && *active)
        .unwrap();
    assert!(
        seen[..activated].iter().any(|(k, _)| k == "#identity"),
        "{seen:?}"
    );
    assert!(
        seen[activated..].iter().any(|(k, _)| k == "#sync"),
        "the re-signed commit follows the activation: {seen:?}"
    );
    // On A: deactivated, and sync says so.
    assert!(!repo_active(&a, &did));
    let (status, body) = get(
        &a,
        &format!("com.atproto.sync.getLatestCommit?did={did}"),
        None,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("RepoDeactivated")),
        "{body}"
    );

    // Running it again changes nothing.
    let (code, stdout) = exited(run_account_command(
        &migrate_args(&plc, a_url, b_url, state_dir, Some(&token)),
        None,
    ));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("already deactivated"), "{stdout}");

    // On B, the account replaces a picture: A, where the old copy still is, holds as many blobs
    // as the records now reference, but not the new one.
    let (status, on_b) = session(&b, "alice.test");
    assert_eq!(status, 200, "{on_b}");
    let b_token = on_b["accessJwt"].as_str().unwrap();
    let first_picture = before
        .keys()
        .find(|uri| uri.contains(POST))
        .unwrap()
        .clone();
    let (status, body) = post(
        &b,
        "com.atproto.repo.deleteRecord",
        Some(b_token),
        json!({"repo": did, "collection": POST, "rkey": first_picture.rsplit('/').next().unwrap()}),
    );
    assert_eq!(status, 200, "{body}");
    let (new_blob, _) = post_picture(&b, b_token, &did, 20);
    let before = records(&b, &did);
    assert_eq!(before.len(), 1001);

    // And back from B to A (where the deactivated account still is).
    let (code, stdout) = exited(run_account_command(
        &migrate_args(&plc, b_url, a_url, state_dir, None),
        None,
    ));
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("already there"), "{stdout}");
    let token = plc_operation_code(&b, &alice.email).expect("B e-mailed a code");
    let (code, stdout) = exited(run_account_command(
        &migrate_args(&plc, b_url, a_url, state_dir, Some(&token)),
        None,
    ));
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(pds_of(&plc, &did), public_url(&a));
    assert!(repo_active(&a, &did) && !repo_active(&b, &did));
    assert_eq!(records(&a, &did), before);
    assert_eq!(
        blob_bytes(&a, &did, &new_blob),
        png(20),
        "the new picture came along"
    );
    assert_eq!(preferences(&a, &did), prefs);
    let (status, body) = session(&a, "alice.test");
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
}

/// The bytes uploaded as blob `cid` in [`fill`] (the n-th image).
fn uploaded_bytes(blobs: &[String], cid: &str) -> Vec<u8> {
    png(blobs.iter().position(|c| c == cid).unwrap())
}

#[test]
fn an_account_comes_back_from_its_backup_with_its_own_rotation_key() {
    let plc = LocalPlc::start();
    let a = start(&plc, "a");
    let b = start(&plc, "b");
    let a_url = a.url("");
    let a_url = a_url.trim_end_matches('/');
    let alice = create_account(&a, "alice");
    let did = alice.did.clone();
    let blobs = fill(&a, &alice.token, &did);
    let before = records(&a, &did);
    let prefs = preferences(&a, &did);

    // The owner makes a key and adds it to the DID through A (with A's e-mailed code).
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("rotation.key");
    let generated = run_pds(
        &[
            "rotation-key",
            "generate",
            "--out",
            key_file.to_str().unwrap(),
        ],
        &[],
    );
    assert!(generated.status.success(), "{generated:?}");
    let owner_key = generated.stdout.trim().to_owned();
    assert!(owner_key.starts_with("did:key:z"), "{owner_key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let add = |token: Option<&str>| {
        let mut args = vec![
            "rotation-key",
            "add",
            "alice.test",
            "--key",
            &owner_key,
            "--host",
            a_url,
            "--plc-url",
            &plc.url,
        ];
        if let Some(token) = token {
            args.extend(["--plc-token", token]);
        }
        exited(run_account_command(&args, None))
    };
    let (code, stdout) = add(None);
    assert_eq!(code, 3, "{stdout}");
    let token = plc_operation_code(&a, &alice.email).unwrap();
    let (code, stdout) = add(Some(&token));
    assert_eq!(code, 0, "{stdout}");
    let data: Value = http()
        .get(format!("{}/{did}/data", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(data["rotationKeys"][0], json!(owner_key));
    assert_eq!(
        data["rotationKeys"].as_array().unwrap().len(),
        2,
        "A's key stays: {data}"
    );

    // A backup, then A is gone for good.
    let backup = keys.path().join("backup");
    let export_env = [(
        "PDS_DATA_DIRECTORY",
        a.data_dir().to_str().unwrap().to_owned(),
    )];
    let export_env: Vec<(&str, &str)> = export_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let exported = run_pds(
        &[
            "export",
            &did,
            "--out",
            backup.to_str().unwrap(),
            "--config",
            common::shipped_config().to_str().unwrap(),
        ],
        &export_env,
    );
    assert!(exported.status.success(), "{exported:?}");
    drop(a.kill_hard());

    // Without the owner's key, nothing happens.
    let recover_args = |key: &Path| -> Vec<String> {
        [
            "recover",
            "--backup",
            backup.to_str().unwrap(),
            "--rotation-key-file",
            key.to_str().unwrap(),
            "--to",
            b.url("").trim_end_matches('/'),
            "--plc-url",
            &plc.url,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let stranger = keys.path().join("stranger.key");
    assert!(
        run_pds(
            &[
                "rotation-key",
                "generate",
                "--out",
                stranger.to_str().unwrap()
            ],
            &[]
        )
        .status
        .success()
    );
    let args = recover_args(&stranger);
    let (code, _) = exited(run_account_command(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    ));
    assert_eq!(code, 1);
    let (status, _) = session(&b, &did);
    assert_eq!(status, 401, "no account was made on B");

    // With it: killed once as the repo is restored, then run to the end.
    let args = recover_args(&key_file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(matches!(
        run_account_command(&args, Some("[4/7]")),
        Run::Killed
    ));
    let (code, stdout) = exited(run_account_command(&args, None));
    assert_eq!(code, 0, "{stdout}");

    assert_eq!(pds_of(&plc, &did), public_url(&b));
    assert!(repo_active(&b, &did));
    assert_eq!(records(&b, &did), before);
    for cid in &blobs {
        assert_eq!(blob_bytes(&b, &did, cid), uploaded_bytes(&blobs, cid));
    }
    assert_eq!(preferences(&b, &did), prefs);
    let data: Value = http()
        .get(format!("{}/{did}/data", plc.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        data["rotationKeys"][0],
        json!(owner_key),
        "the owner's key stays first: {data}"
    );
    // The repo verifies against the DID's key now: B signed it again at activation.
    let key = pds_crypto::PublicKey::from_did_key(
        data["verificationMethods"]["atproto"].as_str().unwrap(),
    )
    .unwrap();
    let (status, body) = get(
        &b,
        &format!("com.atproto.sync.getLatestCommit?did={did}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let car = http()
        .get(b.url(&format!("/xrpc/com.atproto.sync.getRepo?did={did}")))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let repo = pds_repo::import::read_car(
        &car[..],
        &pds_repo::import::ImportExpectations {
            did: Some(&did),
            signing_key: Some(&key),
            max_car_bytes: u64::MAX,
        },
    )
    .expect("the recovered repo verifies with the DID's key");
    assert_eq!(repo.records.len(), 1001);
}

#[test]
fn a_did_web_account_moves_once_its_owner_publishes_the_new_document() {
    let plc = LocalPlc::start();
    let a = start(&plc, "a");
    let b = start(&plc, "b");
    let (a_url, b_url) = (a.url(""), b.url(""));
    let (a_url, b_url) = (a_url.trim_end_matches('/'), b_url.trim_end_matches('/'));

    // The operator of A hosts dave's did:web (its document names A and A's key for it).
    let host = DidHost::start();
    let did = host.did();
    let (status, body) = post(
        &a,
        "com.atproto.server.reserveSigningKey",
        None,
        json!({"did": did}),
    );
    assert_eq!(status, 200, "{body}");
    let key = body["signingKey"].as_str().unwrap().to_owned();
    host.publish(json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": ["at://dave.test"],
        "verificationMethod": [{"id": format!("{did}#atproto"), "type": "Multikey", "controller": did,
            "publicKeyMultibase": key.strip_prefix("did:key:").unwrap()}],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": public_url(&a)}],
    }));
    let res = http()
        .post(a.url("/xrpc/com.atproto.server.createAccount"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&json!({"did": did, "handle": "dave.test", "email": "dave@example.com", "password": PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let token = res.json::<Value>().unwrap()["accessJwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let blobs = fill(&a, &token, &did);
    let before = records(&a, &did);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let args = [
        "migrate",
        "dave.test",
        "--from",
        a_url,
        "--to",
        b_url,
        "--state-dir",
        state_dir,
    ];

    // Everything is copied; then it waits for the owner to publish the document it wrote.
    let (code, stdout) = exited(run_account_command(&args, None));
    assert_eq!(code, 3, "{stdout}");
    let escaped = did.replace("%3A", ":");
    assert!(
        stdout.contains(&format!(
            "https://{}/.well-known/did.json",
            escaped.trim_start_matches("did:web:")
        )),
        "{stdout}"
    );
    assert!(repo_active(&a, &did), "A still hosts it meanwhile");
    let written = state
        .path()
        .join(format!("{}.did.json", did.replace(':', "_")));
    let document: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
    assert_eq!(
        document["service"][0]["serviceEndpoint"],
        json!(public_url(&b))
    );
    assert_eq!(document["alsoKnownAs"], json!(["at://dave.test"]));

    // Run again before publishing: still waiting, nothing deactivated.
    let (code, _) = exited(run_account_command(&args, None));
    assert_eq!(code, 3);
    assert!(repo_active(&a, &did));

    host.publish(document);
    let (code, stdout) = exited(run_account_command(&args, None));
    assert_eq!(code, 0, "{stdout}");
    assert!(repo_active(&b, &did) && !repo_active(&a, &did));
    assert_eq!(records(&b, &did), before);
    for cid in &blobs {
        assert_eq!(blob_bytes(&b, &did, cid), uploaded_bytes(&blobs, cid));
    }
    let (status, body) = session(&b, "dave.test");
    assert_eq!(
        (status, body["did"].as_str()),
        (200, Some(did.as_str())),
        "{body}"
    );
}
