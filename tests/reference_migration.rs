//! `pds migrate` between this server and the reference PDS (`@atproto/pds`, installed and
//! started on loopback by `../shared/refpds`; `PDS_REFPDS_SCRIPTS` names another copy of those
//! scripts): an account made on the reference moves here, with its records, blobs and
//! preferences, and back again. Each side checks the other's tokens, signatures and DID
//! operations with its own code, so this is interoperability as a user would meet it.
//!
//! The reference is installed by `.ci/run` (or here, on first run: about four minutes).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer, http, mailed_code, run_pds};
use serde_json::{Value, json};

const PASSWORD: &str = "reference-migration-password";

fn scripts() -> PathBuf {
    match std::env::var_os("PDS_REFPDS_SCRIPTS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/refpds"),
    }
}

fn install_dir() -> PathBuf {
    match std::env::var_os("REFPDS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pds-anchors/refpds"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The reference PDS with its own did:plc directory, on loopback; stopped when dropped.
struct Reference {
    url: String,
    plc_url: String,
    data: tempfile::TempDir,
}

impl Reference {
    fn start() -> Reference {
        let installed = install_dir().join("node_modules/@atproto/pds");
        if !installed.exists() {
            let status = Command::new("bash")
                .arg(scripts().join("setup.sh"))
                .status()
                .expect("run refpds/setup.sh");
            assert!(status.success(), "installing the reference PDS failed");
        }
        let (port, plc_port) = (free_port(), free_port());
        let data = tempfile::tempdir().unwrap();
        let output = Command::new("bash")
            .arg(scripts().join("start.sh"))
            .args([
                "--port",
                &port.to_string(),
                "--plc-port",
                &plc_port.to_string(),
            ])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--fresh", "--bg"])
            // The reference keeps preferences only when an AppView is configured; none is asked.
            .env("PDS_BSKY_APP_VIEW_URL", "http://127.0.0.1:9")
            .env("PDS_BSKY_APP_VIEW_DID", "did:web:appview.test")
            .output()
            .expect("run refpds/start.sh");
        assert!(
            output.status.success(),
            "the reference PDS did not start: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Reference {
            url: format!("http://127.0.0.1:{port}"),
            plc_url: format!("http://127.0.0.1:{plc_port}"),
            data,
        }
    }

    /// The code the reference "e-mailed" (it keeps it in its account database).
    fn plc_code(&self, did: &str) -> String {
        let db = rusqlite::Connection::open(self.data.path().join("account.sqlite")).unwrap();
        db.query_row(
            "SELECT token FROM email_token WHERE purpose = 'plc_operation' AND did = ?1",
            [did],
            |r| r.get(0),
        )
        .expect("the reference holds a PLC operation code")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.data.path().join("pds.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn call(base: &str, nsid: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let url = format!("{base}/xrpc/{nsid}");
    let mut req = match &body {
        Some(body) => http().post(url).json(body),
        None => http().get(url),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().unwrap();
    (res.status().as_u16(), res.json().unwrap_or(Value::Null))
}

fn repo_active(base: &str, did: &str) -> bool {
    let (status, body) = call(
        base,
        &format!("com.atproto.sync.getRepoStatus?did={did}"),
        None,
        None,
    );
    status == 200 && body["active"] == json!(true)
}

/// Every post's URI and CID, as `base` lists them.
fn posts(base: &str, did: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = call(
            base,
            &format!(
                "com.atproto.repo.listRecords?repo={did}&collection=app.bsky.feed.post&limit=100{cursor}"
            ),
            None,
            None,
        );
        assert_eq!(status, 200, "{body}");
        let page = body["records"].as_array().unwrap();
        for record in page {
            all.push((
                record["uri"].as_str().unwrap().to_owned(),
                record["cid"].as_str().unwrap().to_owned(),
            ));
        }
        match body["cursor"].as_str() {
            Some(c) if !page.is_empty() => cursor = format!("&cursor={c}"),
            _ => break,
        }
    }
    all.sort();
    all
}

fn migrate(from: &str, to: &str, plc: &str, state: &Path, code: Option<&str>) -> common::Finished {
    let mut env = vec![("PDS_ACCOUNT_PASSWORD", PASSWORD)];
    if let Some(code) = code {
        env.push(("PDS_PLC_TOKEN", code));
    }
    run_pds(
        &[
            "migrate",
            "mover.test",
            "--from",
            from,
            "--to",
            to,
            "--plc-url",
            plc,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &env,
    )
}

#[test]
fn an_account_moves_from_the_reference_pds_and_back() {
    let reference = Reference::start();
    let ours = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_DID_PLC_URL", reference.plc_url.as_str()),
            ("PDS_EMBEDDED_PLC", "false"),
            ("PDS_SERVICE_DID", "did:web:ours.test"),
        ],
        ..Default::default()
    });
    let ours_url = ours.url("");
    let ours_url = ours_url.trim_end_matches('/');

    // An account on the reference: posts, one with a picture, and preferences.
    let (status, account) = call(
        &reference.url,
        "com.atproto.server.createAccount",
        None,
        Some(json!({"handle": "mover.test", "email": "mover@example.com", "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{account}");
    let did = account["did"].as_str().unwrap().to_owned();
    let token = account["accessJwt"].as_str().unwrap().to_owned();
    let picture: Vec<u8> = (0..30_000u32).map(|i| (i * 7) as u8).collect();
    let blob = http()
        .post(format!(
            "{}/xrpc/com.atproto.repo.uploadBlob",
            reference.url
        ))
        .bearer_auth(&token)
        .header("content-type", "image/png")
        .body(picture.clone())
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["blob"]
        .clone();
    let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
    let mut writes = vec![
        json!({"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": {
        "$type": "app.bsky.feed.post", "text": "a picture", "createdAt": "2024-01-01T00:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]}}}),
    ];
    for n in 0..120 {
        writes.push(json!({"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": {
            "$type": "app.bsky.feed.post", "text": format!("post {n}"), "createdAt": "2024-01-01T00:00:00.000Z"}}));
    }
    for chunk in writes.chunks(100) {
        let (status, body) = call(
            &reference.url,
            "com.atproto.repo.applyWrites",
            Some(&token),
            Some(json!({"repo": did, "writes": chunk})),
        );
        assert_eq!(status, 200, "{body}");
    }
    let prefs = json!([{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}]);
    let (status, body) = call(
        &reference.url,
        "app.bsky.actor.putPreferences",
        Some(&token),
        Some(json!({"preferences": prefs})),
    );
    assert_eq!(status, 200, "{body}");
    let before = posts(&reference.url, &did);
    assert_eq!(before.len(), 121);

    // Reference -> this server: the reference e-mails a code, then signs with it.
    let state = tempfile::tempdir().unwrap();
    let done = migrate(
        &reference.url,
        ours_url,
        &reference.plc_url,
        state.path(),
        None,
    );
    assert_eq!(done.status.code(), Some(3), "{done:?}");
    let code = reference.plc_code(&did);
    let done = migrate(
        &reference.url,
        ours_url,
        &reference.plc_url,
        state.path(),
        Some(&code),
    );
    assert!(done.status.success(), "{done:?}");
    assert!(repo_active(ours_url, &did) && !repo_active(&reference.url, &did));
    assert_eq!(
        posts(ours_url, &did),
        before,
        "the same records, the same CIDs"
    );
    let served = http()
        .get(format!(
            "{ours_url}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(
        served.as_ref() == picture.as_slice(),
        "the picture came along"
    );
    let (status, session) = call(
        ours_url,
        "com.atproto.server.createSession",
        None,
        Some(json!({"identifier": "mover.test", "password": PASSWORD})),
    );
    assert_eq!(status, 200, "{session}");
    let (_, got) = call(
        ours_url,
        "app.bsky.actor.getPreferences",
        session["accessJwt"].as_str(),
        None,
    );
    assert_eq!(got["preferences"], prefs);
    let doc: Value = http()
        .get(format!("{}/{did}", reference.plc_url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        doc["service"][0]["serviceEndpoint"],
        json!(ours_url.replace("127.0.0.1", "localhost"))
    );

    // And back: this server e-mails the code (dev mode logs it); the reference takes the
    // operation this server signed.
    let done = migrate(
        ours_url,
        &reference.url,
        &reference.plc_url,
        state.path(),
        None,
    );
    assert_eq!(done.status.code(), Some(3), "{done:?}");
    let code = mailed_code(&ours, "mover@example.com", "PLC Update Operation Requested")
        .expect("this server e-mailed a code");
    let done = migrate(
        ours_url,
        &reference.url,
        &reference.plc_url,
        state.path(),
        Some(&code),
    );
    assert!(done.status.success(), "{done:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !repo_active(&reference.url, &did) {
        assert!(
            Instant::now() < deadline,
            "the reference did not take the account back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!repo_active(ours_url, &did));
    assert_eq!(posts(&reference.url, &did), before);
}
