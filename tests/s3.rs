//! Blobs in S3-compatible storage (`PDS_BLOBSTORE_S3_*`), against a real S3 server on loopback:
//! moto's S3 service (PyPI, pinned in `tests/s3/requirements.txt`, installed into
//! `tests/s3/.venv` if it is not there; `.ci/run` installs it up front). Uploads, reads (whole and
//! ranges), takedowns, account deletion and `pds export` work as they do on disk, and the objects
//! sit where the reference puts them (`blocks/<did>/<cid>`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer, create_account, get, http, post, run_pds_in};
use serde_json::{Value, json};

const BUCKET: &str = "pds-blobs";
const ADMIN_PASSWORD: &str = "s3-admin-password";

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/.venv")
}

/// The moto server binary, installed from the pinned requirements if need be.
fn moto_server() -> PathBuf {
    let bin = venv().join("bin/moto_server");
    if !bin.exists() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3");
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv())
            .status()
            .expect("python3 is needed to run the S3 server of this test");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv().join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(dir.join("requirements.txt"))
            .status()
            .expect("pip");
        assert!(status.success(), "pip install of the S3 server failed");
    }
    bin
}

/// An S3 service on a loopback port, with one bucket; stopped when dropped.
struct S3 {
    url: String,
    child: Child,
}

impl S3 {
    fn start() -> S3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http()
                .put(format!("{url}/{BUCKET}"))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3 { url, child }
    }

    /// The size of the object at `key`, if there is one (from the bucket's listing: moto lists
    /// a bucket without credentials, but keeps objects private).
    fn object_size(&self, key: &str) -> Option<u64> {
        let listing = self.listing();
        let after = listing.split(&format!("<Key>{key}</Key>")).nth(1)?;
        let size = after.split("<Size>").nth(1)?.split("</Size>").next()?;
        size.parse().ok()
    }

    /// The bucket's listing, as S3 gives it (for messages).
    fn listing(&self) -> String {
        http()
            .get(format!("{}/{BUCKET}?list-type=2", self.url))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PDS_BLOBSTORE_S3_BUCKET", BUCKET.to_owned()),
            ("PDS_BLOBSTORE_S3_ENDPOINT", self.url.clone()),
            ("PDS_BLOBSTORE_S3_REGION", "us-east-1".to_owned()),
            ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true".to_owned()),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "test-key".to_owned()),
            (
                "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
                "test-secret".to_owned(),
            ),
            ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ]
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn picture(n: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..50_000u32).map(|i| (i as u8).wrapping_mul(n)));
    bytes
}

#[test]
fn blobs_live_in_the_bucket_and_work_as_on_disk() {
    let s3 = S3::start();
    let env = s3.env();
    let server = TestServer::start_with(ServerOptions {
        env: env.iter().map(|(k, v)| (*k, v.as_str())).collect(),
        ..Default::default()
    });
    let alice = create_account(&server, "alice");
    let bytes = picture(3);
    let blob = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(&alice.token)
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["blob"]
        .clone();
    let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
    let key = format!("blocks/{}/{cid}", alice.did);
    assert_eq!(
        s3.object_size(&key),
        Some(bytes.len() as u64),
        "not stored in the bucket at {key}: {}",
        s3.listing()
    );
    assert!(
        !server.data_dir().join("blocks").join(&alice.did).exists(),
        "nothing on disk"
    );
    let (status, body) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.token),
        json!({"repo": alice.did, "collection": "app.bsky.feed.post", "record": {
            "$type": "app.bsky.feed.post", "text": "a picture", "createdAt": "2024-01-01T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]},
        }}),
    );
    assert_eq!(status, 200, "{body}");

    // Served whole and in ranges.
    let get_blob = |range: Option<&str>| {
        let mut req = http().get(server.url(&format!(
            "/xrpc/com.atproto.sync.getBlob?did={}&cid={cid}",
            alice.did
        )));
        if let Some(range) = range {
            req = req.header("range", range);
        }
        let res = req.send().unwrap();
        (res.status().as_u16(), res.bytes().unwrap().to_vec())
    };
    let (status, whole) = get_blob(None);
    assert!(
        status == 200 && whole == bytes,
        "{status}, {} bytes",
        whole.len()
    );
    assert_eq!(
        get_blob(Some("bytes=100-199")),
        (206, bytes[100..200].to_vec())
    );
    assert_eq!(
        get_blob(Some("bytes=-10")).1,
        bytes[bytes.len() - 10..].to_vec()
    );
    let (status, listed) = get(
        &server,
        &format!("com.atproto.sync.listBlobs?did={}", alice.did),
        None,
    );
    assert_eq!((status, listed["cids"].clone()), (200, json!([cid])));

    // Taken down and restored, as on disk.
    let set = |applied: bool| {
        http()
            .post(server.url("/xrpc/com.atproto.admin.updateSubjectStatus"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({
                "subject": {"$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.did, "cid": cid},
                "takedown": {"applied": applied, "ref": "r"},
            }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(set(true), 200);
    assert_ne!(get_blob(None).0, 200);
    assert_eq!(set(false), 200);
    assert_eq!(get_blob(None).0, 200);

    // pds export reads the blobs from the bucket too.
    let out = tempfile::tempdir().unwrap();
    let mut export_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let data = server.data_dir();
    let data = data.to_str().unwrap();
    export_env.push(("PDS_DATA_DIRECTORY", data));
    let done = run_pds_in(
        out.path(),
        &["export", &alice.did, "--out", "export"],
        &export_env,
    );
    assert!(done.status.success(), "{done:?}");
    assert_eq!(
        std::fs::read(out.path().join("export/blobs").join(&cid)).unwrap(),
        bytes
    );

    // Backed up from the bucket, verified, restored into another bucket, verified there.
    let work = tempfile::tempdir().unwrap();
    let backup_dir = work.path().join("backup");
    let done = run_pds_in(
        work.path(),
        &["backup", "--out", backup_dir.to_str().unwrap()],
        &export_env,
    );
    assert!(done.status.success(), "{done:?}");
    assert!(std::fs::read(backup_dir.join("blobs").join(&alice.did).join(&cid)).unwrap() == bytes);
    let done = run_pds_in(work.path(), &["verify-repos"], &export_env);
    assert!(
        done.status.success() && done.stdout.contains(": 0 failed"),
        "{done:?}"
    );
    assert!(
        http()
            .put(format!("{}/pds-restored", s3.url))
            .send()
            .unwrap()
            .status()
            .is_success()
    );
    let restored_data = work.path().join("restored");
    let restored_env: Vec<(&str, &str)> = export_env
        .iter()
        .map(|(k, v)| match *k {
            "PDS_BLOBSTORE_S3_BUCKET" => (*k, "pds-restored"),
            "PDS_DATA_DIRECTORY" => (*k, restored_data.to_str().unwrap()),
            _ => (*k, *v),
        })
        .collect();
    let done = run_pds_in(
        work.path(),
        &["restore", "--from", backup_dir.to_str().unwrap()],
        &restored_env,
    );
    assert!(done.status.success(), "{done:?}");
    let listing = http()
        .get(format!("{}/pds-restored?list-type=2", s3.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(listing.contains(&format!("<Key>{key}</Key>")), "{listing}");
    let done = run_pds_in(work.path(), &["verify-repos"], &restored_env);
    assert!(
        done.status.success() && done.stdout.contains(": 0 failed"),
        "{done:?}"
    );

    // A deleted account's objects go with it.
    let (status, body) = post(
        &server,
        "com.atproto.server.requestAccountDelete",
        Some(&alice.token),
        json!(null),
    );
    assert_eq!(status, 200, "{body}");
    let code =
        common::mailed_code(&server, &alice.email, "Account Deletion Request").expect("a code");
    let (status, body) = post(
        &server,
        "com.atproto.server.deleteAccount",
        None,
        json!({"did": alice.did, "password": common::PASSWORD, "token": code}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s3.object_size(&key),
        None,
        "the object is gone: {}",
        s3.listing()
    );
}
