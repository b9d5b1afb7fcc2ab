//! `pds backup`, `pds restore` and `pds verify-repos` end to end, with the real binary: a backup
//! taken while writers keep creating records and uploading blobs restores into a new data
//! directory where a new server serves every account, record and blob, and every repo verifies;
//! a damaged copy is caught and named; the commands refuse to write over anything.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    Account, PASSWORD, ServerOptions, TestServer, create_account, get, http, plc_signing_key, post,
    run_pds_in, shipped_config,
};
use pds_ipld::car::{CarBuffer, CarLimits};
use serde_json::{Value, json};

const COLLECTION: &str = "com.example.backup.note";

fn upload(server: &TestServer, token: &str, bytes: &[u8]) -> Value {
    let res = http()
        .post(server.url("/xrpc/com.atproto.repo.uploadBlob"))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json::<Value>().unwrap()["blob"].clone()
}

fn create_note(server: &TestServer, account: &Account, text: &str, blob: Option<&Value>) {
    let mut record = json!({"text": text, "createdAt": "2024-01-01T00:00:00.000Z"});
    if let Some(blob) = blob {
        record["picture"] = blob.clone();
    }
    let (status, body) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(&account.token),
        json!({"repo": account.did, "collection": COLLECTION, "record": record}),
    );
    assert_eq!(status, 200, "{body}");
}

/// Bytes that differ for every `(account, n)`.
fn picture(seed: usize, n: usize) -> Vec<u8> {
    (0..3000 + n * 17)
        .map(|i| (i * 31 + seed * 7 + n * 13) as u8)
        .collect()
}

fn count_records(server: &TestServer, did: &str) -> usize {
    let mut count = 0;
    let mut cursor = String::new();
    loop {
        let (status, body) = get(
            server,
            &format!(
                "com.atproto.repo.listRecords?repo={did}&collection={COLLECTION}&limit=100{cursor}"
            ),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let records = body["records"].as_array().unwrap();
        count += records.len();
        match body["cursor"].as_str() {
            Some(next) if !records.is_empty() => cursor = format!("&cursor={next}"),
            _ => return count,
        }
    }
}

/// Runs `pds <args> --config <shipped>` with the data directory `data`.
/// Copies a directory tree (a backup) as it is.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn pds_on(data: &Path, args: &[&str]) -> common::Finished {
    let config = shipped_config();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    let cwd = data.parent().unwrap();
    std::fs::create_dir_all(cwd).unwrap();
    run_pds_in(cwd, &all, &[("PDS_DATA_DIRECTORY", data.to_str().unwrap())])
}

#[test]
fn a_backup_under_write_load_restores_to_a_server_where_every_repo_verifies() {
    let server = TestServer::start();
    let accounts: Vec<Account> = (0..4)
        .map(|i| create_account(&server, &format!("user{i}")))
        .collect();

    // Records and blobs acknowledged before the backup starts.
    let mut blobs: Vec<(String, String, Vec<u8>)> = Vec::new();
    for (i, account) in accounts.iter().enumerate() {
        for n in 0..3 {
            let bytes = picture(i, n);
            let blob = upload(&server, &account.token, &bytes);
            create_note(&server, account, &format!("with picture {n}"), Some(&blob));
            let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
            blobs.push((account.did.clone(), cid, bytes));
        }
        for n in 0..7 {
            create_note(&server, account, &format!("note {n}"), None);
        }
    }

    // Writers keep creating records and uploading blobs during the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let server = Arc::new(server);
    let writers: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let (stop, written, server) = (stop.clone(), written.clone(), server.clone());
            let account = Account {
                did: account.did.clone(),
                email: account.email.clone(),
                token: account.token.clone(),
            };
            std::thread::spawn(move || {
                let mut n = 100;
                while !stop.load(Ordering::Relaxed) {
                    let blob = upload(&server, &account.token, &picture(i, n));
                    create_note(&server, &account, &format!("during {n}"), Some(&blob));
                    written.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let before_backup: HashMap<String, usize> = accounts
        .iter()
        .map(|a| (a.did.clone(), count_records(&server, &a.did)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while written.load(Ordering::Relaxed) < 8 {
        assert!(Instant::now() < deadline, "the writers made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }

    let work = tempfile::tempdir().unwrap();
    let backup_dir = work.path().join("backup");
    let started = Instant::now();
    let done = pds_on(
        &server.data_dir(),
        &["backup", "--out", backup_dir.to_str().unwrap()],
    );
    let backup_took = started.elapsed();
    let during_backup = written.load(Ordering::Relaxed);
    // The writers were writing before the backup started and still are after it ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    while written.load(Ordering::Relaxed) <= during_backup {
        assert!(Instant::now() < deadline, "the writers stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(done.status.success(), "{done:?}");
    assert!(done.stdout.contains("backup written to"), "{}", done.stdout);
    eprintln!(
        "backup under load ({during_backup} writes acknowledged by its end) took \
         {backup_took:?}:\n{}",
        done.stdout
    );

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "pds-backup");
    let files: Vec<&str> = manifest["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|db| db["file"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"pds.sqlite"), "{manifest}");
    assert!(files.contains(&"plc.sqlite"), "{manifest}");
    assert!(manifest["blobs"]["count"].as_u64().unwrap() >= blobs.len() as u64);
    assert_eq!(manifest["blobs"]["missing"], json!([]));
    assert_eq!(manifest["secretsFile"], true);

    // Readable by its owner only: it holds every signing key and password hash.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&backup_dir), 0o700);
        assert_eq!(mode(&backup_dir.join("databases")), 0o700);
        assert_eq!(mode(&backup_dir.join("databases/pds.sqlite")), 0o600);
        let (did, cid, _) = &blobs[0];
        assert_eq!(mode(&backup_dir.join("blobs").join(did).join(cid)), 0o600);
    }
    // The hold it placed on blob deletions ended with it.
    let holds: i64 = rusqlite::Connection::open(server.data_dir().join("pds.sqlite"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM blob_deletion_hold", [], |r| r.get(0))
        .unwrap();
    assert_eq!(holds, 0);

    // A damaged copy is not restored, and what the attempt wrote is removed again.
    let damaged = work.path().join("damaged");
    copy_dir(&backup_dir, &damaged);
    let (did, cid, _) = &blobs[1];
    std::fs::write(
        damaged.join("blobs").join(did).join(cid),
        b"not the picture",
    )
    .unwrap();
    let elsewhere = work.path().join("elsewhere/data");
    let done = pds_on(
        &elsewhere,
        &["restore", "--from", damaged.to_str().unwrap()],
    );
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(
        done.stderr.contains("does not match its CID"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("nothing restored"), "{}", done.stderr);
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "the failed restore left files behind"
    );
    // Nor one whose manifest names a file that is not a database of the server's.
    let mut crafted = manifest.clone();
    crafted["databases"][0]["file"] = json!("pds.sqlite-wal");
    std::fs::write(
        damaged.join("manifest.json"),
        serde_json::to_vec(&crafted).unwrap(),
    )
    .unwrap();
    let done = pds_on(
        &elsewhere,
        &["restore", "--from", damaged.to_str().unwrap()],
    );
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(done.stderr.contains("names a database"), "{}", done.stderr);

    // A backup never goes into a directory that holds anything.
    let refused = pds_on(
        &server.data_dir(),
        &["backup", "--out", backup_dir.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);

    // Restored into a new data directory; the old server is gone.
    let server = Arc::try_unwrap(server).ok().expect("writers are done");
    drop(server);
    let restored = tempfile::tempdir().unwrap();
    let data = restored.path().join("data");
    let done = pds_on(&data, &["restore", "--from", backup_dir.to_str().unwrap()]);
    assert!(done.status.success(), "{done:?}");
    assert!(done.stdout.contains("restored"), "{}", done.stdout);

    // A restore never writes into a data directory that holds anything.
    let refused = pds_on(&data, &["restore", "--from", backup_dir.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);

    // Every restored repo verifies, read-only.
    let done = pds_on(&data, &["verify-repos"]);
    assert!(done.status.success(), "{done:?}");
    assert!(
        done.stdout.contains("checked 4 repos") && done.stdout.contains(": 0 failed"),
        "{}",
        done.stdout
    );

    // A new server on the restored data serves everything acknowledged before the backup.
    let server = TestServer::start_with(ServerOptions {
        dir: Some(restored),
        ..Default::default()
    });
    for (i, account) in accounts.iter().enumerate() {
        let (status, body) = post(
            &server,
            "com.atproto.server.createSession",
            None,
            json!({"identifier": format!("user{i}.test"), "password": PASSWORD}),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["did"], account.did.as_str());

        let records = count_records(&server, &account.did);
        assert!(
            records >= before_backup[&account.did],
            "{}: {records} records, {} acknowledged before the backup",
            account.did,
            before_backup[&account.did]
        );

        let car = http()
            .get(server.url(&format!(
                "/xrpc/com.atproto.sync.getRepo?did={}",
                account.did
            )))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec();
        let key = plc_signing_key(&server, &account.did);
        let verified = pds_repo::import::verify_car(
            CarBuffer::parse(car, CarLimits::default()).unwrap(),
            &pds_repo::import::ImportExpectations {
                did: Some(&account.did),
                signing_key: Some(&key),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(verified.records.len(), records);
    }
    for (did, cid, bytes) in &blobs {
        let res = http()
            .get(server.url(&format!(
                "/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"
            )))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "blob {cid} of {did}");
        assert_eq!(res.bytes().unwrap().to_vec(), *bytes, "blob {cid} of {did}");
    }
    // And it takes writes.
    let (status, body) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": "user0.test", "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{body}");
    let session = Account {
        did: accounts[0].did.clone(),
        email: accounts[0].email.clone(),
        token: body["accessJwt"].as_str().unwrap().to_owned(),
    };
    create_note(&server, &session, "after the restore", None);

    // verify-repos catches damage and names the repo: a record block's bytes changed (alice), a
    // record block gone (bob), a referenced blob file gone (carol); dave is fine.
    let damaged = work.path().join("damaged/data");
    let done = pds_on(
        &damaged,
        &["restore", "--from", backup_dir.to_str().unwrap()],
    );
    assert!(done.status.success(), "{done:?}");
    let [alice, bob, carol, dave] = [0, 1, 2, 3].map(|i| accounts[i].did.as_str());
    {
        let conn = rusqlite::Connection::open(damaged.join("pds.sqlite")).unwrap();
        let record_cid = |did: &str| -> Vec<u8> {
            conn.query_row(
                "SELECT cid FROM record WHERE did = ?1 ORDER BY rkey LIMIT 1",
                [did],
                |r| r.get(0),
            )
            .unwrap()
        };
        let cid = record_cid(alice);
        let mut bytes: Vec<u8> = conn
            .query_row(
                "SELECT bytes FROM repo_block WHERE did = ?1 AND cid = ?2",
                (alice, &cid),
                |r| r.get(0),
            )
            .unwrap();
        *bytes.last_mut().unwrap() ^= 0x01;
        let changed = conn
            .execute(
                "UPDATE repo_block SET bytes = ?3 WHERE did = ?1 AND cid = ?2",
                (alice, &cid, &bytes),
            )
            .unwrap();
        assert_eq!(changed, 1);
        let cid = record_cid(bob);
        let deleted = conn
            .execute(
                "DELETE FROM repo_block WHERE did = ?1 AND cid = ?2",
                (bob, &cid),
            )
            .unwrap();
        assert_eq!(deleted, 1);
    }
    let (_, carol_blob, _) = blobs.iter().find(|(did, ..)| did == carol).unwrap();
    std::fs::remove_file(damaged.join("blocks").join(carol).join(carol_blob)).unwrap();

    let done = pds_on(&damaged, &["verify-repos", "--jobs", "2"]);
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    for did in [alice, bob, carol] {
        assert!(
            done.stdout.contains(&format!("FAIL {did}: ")),
            "{did} not named:\n{}",
            done.stdout
        );
    }
    assert!(
        !done.stdout.contains(&format!("FAIL {dave}")),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("does not match its CID"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("missing block"), "{}", done.stdout);
    assert!(
        done.stdout.contains("is not in the blob store"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains(": 3 failed"), "{}", done.stdout);
}

#[test]
fn the_commands_refuse_what_they_cannot_do() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("empty/data");

    // Nothing to back up or verify: a clear error, exit 1.
    let out = work.path().join("out");
    let done = pds_on(&data, &["backup", "--out", out.to_str().unwrap()]);
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(done.stderr.contains("no database"), "{}", done.stderr);
    let done = pds_on(&data, &["verify-repos"]);
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(done.stderr.contains("no database"), "{}", done.stderr);

    // A directory that is not a backup is not restored, and nothing is written.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "not a backup").unwrap();
    let done = pds_on(&data, &["restore", "--from", out.to_str().unwrap()]);
    assert_eq!(done.status.code(), Some(1), "{done:?}");
    assert!(done.stderr.contains("manifest.json"), "{}", done.stderr);
    assert!(
        std::fs::read_dir(&data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "nothing written"
    );
}
