//! The blob tables and the service against real SQLite databases and a real directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use pds_storage::DatabaseOptions;
use pds_syntax::{Nsid, RecordKey};
use serde_json::json;

use super::*;

const DID: &str = "did:plc:alice0000000000000000000";
const OTHER: &str = "did:plc:bob000000000000000000000";
const HOUR_MS: i64 = 60 * 60 * 1000;

/// A connection with the blob tables, in a temporary file.
fn conn() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("test.sqlite")).unwrap();
    schema::migrate(&conn).unwrap();
    // Migrating twice is harmless.
    schema::migrate(&conn).unwrap();
    (dir, conn)
}

fn cid_of(bytes: &[u8]) -> Cid {
    pds_ipld::cid_for_raw(bytes)
}

fn post_with(blobs: &[(&Cid, &str, u64)]) -> Vec<u8> {
    let images: Vec<_> = blobs
        .iter()
        .map(|(cid, mime, size)| {
            json!({"alt": "", "image": {"$type": "blob", "ref": {"$link": cid.to_string()}, "mimeType": mime, "size": size}})
        })
        .collect();
    pds_ipld::json_to_cbor(&json!({
        "$type": "app.bsky.feed.post",
        "text": "hi",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": images},
    }))
    .unwrap()
}

fn create(rkey: &str, record: Vec<u8>) -> Write {
    Write::create(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
        record,
    )
}

fn update(rkey: &str, record: Vec<u8>) -> Write {
    Write::update(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
        record,
    )
}

fn delete(rkey: &str) -> Write {
    Write::delete(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
    )
}

fn linked(conn: &Connection, did: &str, cid: &Cid) -> Option<bool> {
    conn.query_row(
        "SELECT linked FROM blob WHERE did = ?1 AND cid = ?2",
        (did, cid.to_string()),
        |r| r.get(0),
    )
    .optional()
    .unwrap()
}

#[test]
fn a_record_links_an_uploaded_blob_and_deleting_it_unlinks() {
    let (_dir, conn) = conn();
    let a = cid_of(b"a");
    record_upload(&conn, DID, &a.to_string(), "image/png", 1, 0).unwrap();
    assert_eq!(linked(&conn, DID, &a), Some(false));
    assert!(list_blobs(&conn, DID, None, None, 10).unwrap().is_empty());

    let writes = [create("one", post_with(&[(&a, "image/png", 1)]))];
    let cids = link_commit(&conn, DID, "rev1", &writes).unwrap();
    assert_eq!(cids, vec![a]);
    assert_eq!(linked(&conn, DID, &a), Some(true));
    assert_eq!(
        list_blobs(&conn, DID, None, None, 10).unwrap(),
        vec![a.to_string()]
    );
    // Another account's listing is its own.
    assert!(list_blobs(&conn, OTHER, None, None, 10).unwrap().is_empty());

    // A second record may use the same blob; deleting one keeps it linked.
    link_commit(
        &conn,
        DID,
        "rev2",
        &[create("two", post_with(&[(&a, "image/png", 1)]))],
    )
    .unwrap();
    link_commit(&conn, DID, "rev3", &[delete("one")]).unwrap();
    assert_eq!(linked(&conn, DID, &a), Some(true));
    link_commit(&conn, DID, "rev4", &[delete("two")]).unwrap();
    assert_eq!(linked(&conn, DID, &a), Some(false));
    assert!(list_blobs(&conn, DID, None, None, 10).unwrap().is_empty());
}

#[test]
fn unknown_or_foreign_blobs_are_refused() {
    let (_dir, conn) = conn();
    let a = cid_of(b"a");
    // Uploaded by someone else: not this account's.
    record_upload(&conn, OTHER, &a.to_string(), "image/png", 1, 0).unwrap();
    let writes = [create("one", post_with(&[(&a, "image/png", 1)]))];
    let err = link_commit(&conn, DID, "rev1", &writes).unwrap_err();
    assert!(
        matches!(&err, BlobError::NotFound(c) if *c == a.to_string()),
        "{err}"
    );
    let api = ApiError::from(err);
    assert_eq!((api.status().as_u16(), api.name()), (400, "BlobNotFound"));
    assert_eq!(api.message(), format!("Could not find blob: {a}"));

    // Taken down: gone as far as records are concerned.
    record_upload(&conn, DID, &a.to_string(), "image/png", 1, 0).unwrap();
    conn.execute("UPDATE blob SET takedown_ref = 'x' WHERE did = ?1", [DID])
        .unwrap();
    assert!(matches!(
        link_commit(&conn, DID, "rev1", &writes),
        Err(BlobError::NotFound(_))
    ));
}

#[test]
fn a_new_reference_must_state_the_stored_type() {
    let (_dir, conn) = conn();
    let a = cid_of(b"a");
    record_upload(&conn, DID, &a.to_string(), "image/png", 1, 0).unwrap();
    let err = link_commit(
        &conn,
        DID,
        "rev1",
        &[create("one", post_with(&[(&a, "image/jpeg", 1)]))],
    )
    .unwrap_err();
    let api = ApiError::from(err);
    assert_eq!(api.name(), "InvalidMimeType");
    assert_eq!(
        api.message(),
        "Referenced Mimetype does not match stored blob. Expected: image/png, Got: image/jpeg"
    );
}

#[test]
fn an_update_moves_references() {
    let (_dir, conn) = conn();
    let (a, b) = (cid_of(b"a"), cid_of(b"b"));
    for cid in [&a, &b] {
        record_upload(&conn, DID, &cid.to_string(), "image/png", 1, 0).unwrap();
    }
    link_commit(
        &conn,
        DID,
        "rev1",
        &[create("one", post_with(&[(&a, "image/png", 1)]))],
    )
    .unwrap();
    let cids = link_commit(
        &conn,
        DID,
        "rev2",
        &[update("one", post_with(&[(&b, "image/png", 1)]))],
    )
    .unwrap();
    assert_eq!(cids, vec![b]);
    assert_eq!(linked(&conn, DID, &a), Some(false));
    assert_eq!(linked(&conn, DID, &b), Some(true));
    // `since` filters on the rev that wrote the reference.
    assert_eq!(
        list_blobs(&conn, DID, Some("rev1"), None, 10).unwrap(),
        vec![b.to_string()]
    );
    assert!(
        list_blobs(&conn, DID, Some("rev2"), None, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_failed_link_leaves_nothing_when_rolled_back() {
    let (_dir, mut conn) = conn();
    let (a, missing) = (cid_of(b"a"), cid_of(b"missing"));
    record_upload(&conn, DID, &a.to_string(), "image/png", 1, 0).unwrap();
    let tx = conn.transaction().unwrap();
    let writes = [
        create("one", post_with(&[(&a, "image/png", 1)])),
        create("two", post_with(&[(&missing, "image/png", 1)])),
    ];
    assert!(link_commit(&tx, DID, "rev1", &writes).is_err());
    drop(tx); // rolled back, as the writer's savepoint does
    assert_eq!(linked(&conn, DID, &a), Some(false));
    assert!(list_blobs(&conn, DID, None, None, 10).unwrap().is_empty());
}

#[test]
fn imports_reference_blobs_that_are_missing_until_uploaded() {
    let (_dir, conn) = conn();
    let (a, b) = (cid_of(b"a"), cid_of(b"b"));
    let one = post_with(&[(&a, "image/png", 1)]);
    let two = post_with(&[(&a, "image/png", 1), (&b, "image/png", 1)]);
    link_import(
        &conn,
        DID,
        "rev9",
        [
            ("app.bsky.feed.post/one", one.as_slice()),
            ("app.bsky.feed.post/two", two.as_slice()),
        ],
    )
    .unwrap();
    let mut want = vec![a.to_string(), b.to_string()];
    want.sort();
    let missing = list_missing(&conn, DID, None, 10).unwrap();
    assert_eq!(
        missing.iter().map(|m| m.cid.clone()).collect::<Vec<_>>(),
        want
    );
    assert!(
        missing[0]
            .record_uri
            .starts_with(&format!("at://{DID}/app.bsky.feed.post/"))
    );
    // Paging.
    let first = list_missing(&conn, DID, None, 1).unwrap();
    let rest = list_missing(&conn, DID, Some(&first[0].cid), 10).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].cid, want[1]);

    // Uploading one makes it present, and referenced at once.
    record_upload(&conn, DID, &a.to_string(), "image/png", 1, 5).unwrap();
    assert_eq!(linked(&conn, DID, &a), Some(true));
    let missing = list_missing(&conn, DID, None, 10).unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].cid, b.to_string());
    assert_eq!(list_blobs(&conn, DID, None, None, 10).unwrap(), want);
}

#[test]
fn reuploads_keep_a_referenced_type_and_refresh_the_grace_period() {
    let (_dir, conn) = conn();
    let a = cid_of(b"a");
    let s = a.to_string();
    assert_eq!(
        record_upload(&conn, DID, &s, "text/plain", 1, 0).unwrap(),
        "text/plain"
    );
    // Unreferenced: the latest upload's type wins.
    assert_eq!(
        record_upload(&conn, DID, &s, "text/csv", 1, 10).unwrap(),
        "text/csv"
    );
    link_commit(
        &conn,
        DID,
        "rev1",
        &[create("one", post_with(&[(&a, "text/csv", 1)]))],
    )
    .unwrap();
    // Referenced: the records' type stays.
    assert_eq!(
        record_upload(&conn, DID, &s, "text/plain", 1, 20).unwrap(),
        "text/csv"
    );
    let created: i64 = conn
        .query_row("SELECT created_at FROM blob WHERE cid = ?1", [&s], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(created, 20);
}

// ---------------------------------------------------------------------------------------------
// The service: uploads to disk, garbage collection.
// ---------------------------------------------------------------------------------------------

struct Service {
    _dir: tempfile::TempDir,
    blobs: Blobs,
    db: Database,
    root: std::path::PathBuf,
    now: Arc<AtomicI64>,
}

async fn service(limit: u64) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("pds.sqlite"), DatabaseOptions::default()).unwrap();
    let root = dir.path().join("blobs");
    let store = DiskBlobStore::open(&root).unwrap();
    let now = Arc::new(AtomicI64::new(1_000 * HOUR_MS));
    let clock = now.clone();
    let blobs = Blobs::new(Arc::new(store), db.clone(), limit)
        .await
        .unwrap()
        .with_clock(move || clock.load(Ordering::SeqCst));
    Service {
        _dir: dir,
        blobs,
        db,
        root,
        now,
    }
}

impl Service {
    async fn upload(&self, bytes: &[u8], mime: Option<&str>) -> BlobRef {
        self.blobs
            .upload(DID, mime, Body::from(bytes.to_vec()))
            .await
            .unwrap()
    }

    fn file(&self, cid: &Cid) -> std::path::PathBuf {
        self.root.join(DID).join(cid.to_string())
    }

    async fn link(&self, rkey: &str, blob: &BlobRef) {
        let writes = vec![create(
            rkey,
            post_with(&[(&blob.cid, &blob.mime_type, blob.size)]),
        )];
        self.db
            .write(move |w| link_commit(w.tx.connection(), DID, "rev1", &writes))
            .await
            .unwrap();
    }

    fn tmp_files(&self) -> usize {
        std::fs::read_dir(self.root.join(".tmp")).unwrap().count()
    }
}

#[tokio::test]
async fn uploads_land_under_their_cid() {
    let s = service(1 << 20).await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let blob = s.upload(&bytes, Some("application/octet-stream")).await;
    assert_eq!(blob.cid, cid_of(&bytes));
    assert_eq!(blob.size, bytes.len() as u64);
    assert_eq!(blob.mime_type, "application/octet-stream");
    assert_eq!(std::fs::read(s.file(&blob.cid)).unwrap(), bytes);
    assert_eq!(s.tmp_files(), 0);

    // The content's type wins over the declared one, as in the reference.
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR rest";
    assert_eq!(
        s.upload(png, Some("image/jpeg")).await.mime_type,
        "image/png"
    );
    assert_eq!(
        s.upload(b"plain", None).await.mime_type,
        "application/octet-stream"
    );

    // Ranged reads.
    let read = s
        .blobs
        .store()
        .read(DID, &blob.cid, 10, Some(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.len, 5);
    let mut out = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut { read.reader }, &mut out)
        .await
        .unwrap();
    assert_eq!(out, &bytes[10..15]);
    assert!(
        s.blobs
            .store()
            .read(OTHER, &blob.cid, 0, None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn over_the_limit_nothing_is_kept() {
    let s = service(10).await;
    let err = s
        .blobs
        .upload(DID, None, Body::from(vec![7u8; 11]))
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge));
    assert_eq!(s.tmp_files(), 0);
    assert!(!s.root.join(DID).exists());
    // Exactly the limit is fine.
    s.upload(&[7u8; 10], None).await;
}

#[tokio::test]
async fn gc_removes_old_unreferenced_blobs_and_keeps_the_rest() {
    let s = service(1 << 20).await;
    let start = s.now.load(Ordering::SeqCst);
    let old_unused = s.upload(b"old and unused", None).await;
    let old_used = s.upload(b"old but referenced", None).await;
    s.link("one", &old_used).await;
    s.now.store(start + 2 * HOUR_MS, Ordering::SeqCst);
    let young = s.upload(b"young", None).await;

    let report = s.blobs.gc(DEFAULT_GC_GRACE).await.unwrap();
    assert_eq!(report.deleted, 1);
    assert!(!s.file(&old_unused.cid).exists());
    assert!(s.file(&old_used.cid).exists());
    assert!(s.file(&young.cid).exists());
    let count: i64 =
        s.db.read(|store| {
            store
                .connection()
                .query_row("SELECT count(*) FROM blob", [], |r| r.get(0))
                .map_err(StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(count, 2);

    // Nothing more to do; and once the young one is old, it goes too.
    assert_eq!(s.blobs.gc(DEFAULT_GC_GRACE).await.unwrap().deleted, 0);
    assert_eq!(
        s.blobs
            .gc_at(start + 4 * HOUR_MS, DEFAULT_GC_GRACE)
            .await
            .unwrap()
            .deleted,
        1
    );
    assert!(!s.file(&young.cid).exists());
    assert!(s.file(&old_used.cid).exists());

    // A deleted blob can be uploaded again.
    let again = s.upload(b"old and unused", None).await;
    assert_eq!(again.cid, old_unused.cid);
    assert!(s.file(&again.cid).exists());
}

#[tokio::test]
async fn a_reupload_restarts_the_grace_period() {
    let s = service(1 << 20).await;
    let start = s.now.load(Ordering::SeqCst);
    let blob = s.upload(b"again", None).await;
    s.now.store(start + 2 * HOUR_MS, Ordering::SeqCst);
    s.upload(b"again", None).await;
    assert_eq!(s.blobs.gc(DEFAULT_GC_GRACE).await.unwrap().deleted, 0);
    assert!(s.file(&blob.cid).exists());
}

#[tokio::test]
async fn a_hold_keeps_every_file_until_it_ends() {
    let s = service(1 << 20).await;
    let start = s.now.load(Ordering::SeqCst);
    let unused = s.upload(b"unused", None).await;
    let orphan = cid_of(b"orphan");
    std::fs::write(s.file(&orphan), b"orphan").unwrap();
    let later = start + 2 * HOUR_MS;
    let hold = |until: i64| {
        s.db.write(move |w| hold_deletions(w.tx.connection(), "backup 1", until))
    };
    hold(later + HOUR_MS).await.unwrap();

    // Neither the collector nor the sweep nor account deletion removes anything meanwhile.
    assert_eq!(
        s.blobs
            .gc_at(later, DEFAULT_GC_GRACE)
            .await
            .unwrap()
            .deleted,
        0
    );
    assert_eq!(
        s.blobs
            .sweep_orphans_at(later, DEFAULT_GC_GRACE)
            .await
            .unwrap(),
        0
    );
    s.blobs.delete_account_files(DID).await.unwrap();
    assert!(s.file(&unused.cid).exists() && s.file(&orphan).exists());

    // A hold that ran out holds nothing; released, it is gone.
    assert_eq!(
        s.blobs
            .gc_at(later + 2 * HOUR_MS, DEFAULT_GC_GRACE)
            .await
            .unwrap()
            .deleted,
        1
    );
    assert!(!s.file(&unused.cid).exists());
    s.db.write(move |w| release_deletions(w.tx.connection(), "backup 1", later))
        .await
        .unwrap();
    let held =
        s.db.read(move |store| deletions_held(store.connection(), later))
            .await
            .unwrap();
    assert!(!held);
}

#[tokio::test]
async fn orphaned_files_are_swept() {
    let s = service(1 << 20).await;
    let kept = s.upload(b"known", None).await;
    let orphan = cid_of(b"orphan");
    std::fs::write(s.file(&orphan), b"orphan").unwrap();
    // Young files stay (an upload may be between its file and its row).
    let now = s.now.load(Ordering::SeqCst);
    assert_eq!(
        s.blobs
            .sweep_orphans_at(now, DEFAULT_GC_GRACE)
            .await
            .unwrap(),
        0
    );
    let later = now_ms() + 2 * HOUR_MS;
    assert_eq!(
        s.blobs
            .sweep_orphans_at(later, DEFAULT_GC_GRACE)
            .await
            .unwrap(),
        1
    );
    assert!(!s.file(&orphan).exists());
    assert!(s.file(&kept.cid).exists());
}

#[test]
fn the_store_refuses_paths_that_are_not_dids() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cid = cid_of(b"x");
    for bad in ["..", "did:plc:a/../../etc", "", ".tmp"] {
        assert!(
            rt.block_on(store.read(bad, &cid, 0, None)).is_err(),
            "{bad}"
        );
    }
}
