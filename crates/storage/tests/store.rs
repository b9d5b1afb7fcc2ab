//! The SQLite store on real database files: commits persist atomically, the record index and
//! the block set track the repo exactly, exports verify, imports replace.

use pds_crypto::{Algorithm, Keypair};
use pds_repo::Write;
use pds_repo::import::{ImportExpectations, read_car};
use pds_storage::{StorageError, Store};
use pds_syntax::{Nsid, RecordKey, TidClock};

const ALICE: &str = "did:plc:alicealicealicealicealic";
const BOB: &str = "did:plc:bobbobbobbobbobbobbobbobb";

fn record(text: &str) -> Vec<u8> {
    pds_ipld::json::json_to_cbor(&serde_json::json!({"$type": "app.bsky.feed.post", "text": text}))
        .unwrap()
}
fn create(rkey: &str, text: &str) -> Write {
    Write::create(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
        record(text),
    )
}
fn delete(rkey: &str) -> Write {
    Write::delete(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
    )
}

fn block_rows(store: &Store, did: &str) -> i64 {
    store
        .connection()
        .query_row(
            "SELECT count(*) FROM repo_block WHERE did = ?1",
            [did],
            |r| r.get(0),
        )
        .unwrap()
}

fn exported_blocks(store: &Store, did: &str) -> usize {
    let mut car = Vec::new();
    store.export_car(did, &mut car).unwrap();
    pds_ipld::car::decode_car(&car).unwrap().1.len()
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    key: Keypair,
    clock: TidClock,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repos.sqlite");
    let store = Store::open(&path).unwrap();
    Setup {
        _dir: dir,
        path,
        store,
        key: Keypair::generate(Algorithm::K256),
        clock: TidClock::new(),
    }
}

#[test]
fn writes_persist_and_read_back() {
    let mut s = setup();
    let tx = s.store.transaction().unwrap();
    let first = tx
        .create_repo(ALICE, &s.key, &s.clock, &[create("3kaaaaaaaaaaa", "one")])
        .unwrap();
    tx.commit().unwrap();
    let tx = s.store.transaction().unwrap();
    let second = tx
        .apply_writes(
            ALICE,
            &s.key,
            &s.clock,
            &(0..30)
                .map(|i| create(&format!("3kb{i:010}"), "x"))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    tx.commit().unwrap();
    assert!(second.rev > first.rev);

    let head = s.store.head(ALICE).unwrap().unwrap();
    assert_eq!(head.commit_cid, second.commit_cid);
    let (cid, bytes) = s
        .store
        .get_record(ALICE, "app.bsky.feed.post", "3kaaaaaaaaaaa")
        .unwrap()
        .unwrap();
    assert_eq!(bytes, record("one"));
    assert_eq!(cid, pds_ipld::cid_for_cbor(&bytes));
    assert!(
        s.store
            .get_record(ALICE, "app.bsky.feed.post", "3kzzzzzzzzzzz")
            .unwrap()
            .is_none()
    );

    // Paging in both directions.
    let page = s
        .store
        .list_records(ALICE, "app.bsky.feed.post", None, 10, false)
        .unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(page[0].rkey, "3kaaaaaaaaaaa");
    let next = s
        .store
        .list_records(ALICE, "app.bsky.feed.post", Some(&page[9].rkey), 100, false)
        .unwrap();
    assert_eq!(next.len(), 21);
    let back = s
        .store
        .list_records(ALICE, "app.bsky.feed.post", None, 3, true)
        .unwrap();
    assert_eq!(back[0].rkey, "3kb0000000029");
    let back2 = s
        .store
        .list_records(ALICE, "app.bsky.feed.post", Some(&back[2].rkey), 100, true)
        .unwrap();
    assert_eq!(back2.len(), 28);

    // Closing and reopening the file loses nothing.
    let path = s.path.clone();
    drop(s.store);
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.head(ALICE).unwrap().unwrap(), head);
    assert_eq!(
        reopened
            .list_records(ALICE, "app.bsky.feed.post", None, 100, false)
            .unwrap()
            .len(),
        31
    );
}

#[test]
fn a_transaction_that_is_not_committed_changes_nothing() {
    let mut s = setup();
    let tx = s.store.transaction().unwrap();
    tx.create_repo(ALICE, &s.key, &s.clock, &[create("3kaaaaaaaaaaa", "one")])
        .unwrap();
    tx.commit().unwrap();
    let head = s.store.head(ALICE).unwrap();
    {
        let tx = s.store.transaction().unwrap();
        tx.apply_writes(ALICE, &s.key, &s.clock, &[create("3kbbbbbbbbbbb", "two")])
            .unwrap();
        // Dropped: rolled back, as if the process died before the commit.
    }
    assert_eq!(s.store.head(ALICE).unwrap(), head);
    assert!(
        s.store
            .get_record(ALICE, "app.bsky.feed.post", "3kbbbbbbbbbbb")
            .unwrap()
            .is_none()
    );
    // A write that fails (delete of a missing record) is refused without side effects.
    let tx = s.store.transaction().unwrap();
    let err = tx
        .apply_writes(ALICE, &s.key, &s.clock, &[delete("3kmissingmiss")])
        .unwrap_err();
    assert!(matches!(err, StorageError::Repo(_)), "{err}");
    drop(tx);
    assert_eq!(s.store.head(ALICE).unwrap(), head);
}

#[test]
fn stored_blocks_are_exactly_the_reachable_ones() {
    let mut s = setup();
    let tx = s.store.transaction().unwrap();
    // Two records with identical content share one block.
    tx.create_repo(
        ALICE,
        &s.key,
        &s.clock,
        &[
            create("3kaaaaaaaaaaa", "same"),
            create("3kbbbbbbbbbbb", "same"),
        ],
    )
    .unwrap();
    tx.commit().unwrap();
    for round in 0..5 {
        let tx = s.store.transaction().unwrap();
        let writes: Vec<Write> = (0..20)
            .map(|i| create(&format!("3kc{round}{i:09}"), &format!("{round}-{i}")))
            .collect();
        tx.apply_writes(ALICE, &s.key, &s.clock, &writes).unwrap();
        tx.apply_writes(
            ALICE,
            &s.key,
            &s.clock,
            &[delete(&format!("3kc{round}000000003"))],
        )
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(
            block_rows(&s.store, ALICE) as usize,
            exported_blocks(&s.store, ALICE),
            "round {round}"
        );
    }
    let shared = pds_ipld::cid_for_cbor(&record("same"));
    let has_shared = |store: &Store| -> bool {
        store
            .connection()
            .query_row(
                "SELECT count(*) FROM repo_block WHERE did = ?1 AND cid = ?2",
                (ALICE, shared.to_bytes()),
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    };
    let tx = s.store.transaction().unwrap();
    tx.apply_writes(ALICE, &s.key, &s.clock, &[delete("3kaaaaaaaaaaa")])
        .unwrap();
    tx.commit().unwrap();
    assert!(has_shared(&s.store), "still used by the other record");
    let tx = s.store.transaction().unwrap();
    tx.apply_writes(ALICE, &s.key, &s.clock, &[delete("3kbbbbbbbbbbb")])
        .unwrap();
    tx.commit().unwrap();
    assert!(!has_shared(&s.store), "dropped with its last record");
    assert_eq!(
        block_rows(&s.store, ALICE) as usize,
        exported_blocks(&s.store, ALICE)
    );
}

#[test]
fn one_transaction_can_hold_commits_of_several_repos() {
    let mut s = setup();
    let tx = s.store.transaction().unwrap();
    tx.create_repo(ALICE, &s.key, &s.clock, &[]).unwrap();
    tx.create_repo(BOB, &s.key, &s.clock, &[create("3kaaaaaaaaaaa", "bob")])
        .unwrap();
    tx.apply_writes(ALICE, &s.key, &s.clock, &[create("3kaaaaaaaaaaa", "alice")])
        .unwrap();
    assert!(matches!(
        tx.create_repo(BOB, &s.key, &s.clock, &[]),
        Err(StorageError::RepoExists(_))
    ));
    tx.commit().unwrap();
    assert_eq!(
        s.store
            .get_record(ALICE, "app.bsky.feed.post", "3kaaaaaaaaaaa")
            .unwrap()
            .unwrap()
            .1,
        record("alice")
    );
    assert_eq!(
        s.store
            .get_record(BOB, "app.bsky.feed.post", "3kaaaaaaaaaaa")
            .unwrap()
            .unwrap()
            .1,
        record("bob")
    );
}

#[test]
fn export_verifies_and_import_reproduces_the_repo() {
    let mut s = setup();
    let tx = s.store.transaction().unwrap();
    let writes: Vec<Write> = (0..500)
        .map(|i| create(&format!("3k{i:011}"), &format!("post {i}")))
        .collect();
    tx.create_repo(ALICE, &s.key, &s.clock, &writes).unwrap();
    tx.apply_writes(ALICE, &s.key, &s.clock, &[delete("3k00000000007")])
        .unwrap();
    tx.commit().unwrap();
    let mut car = Vec::new();
    s.store.export_car(ALICE, &mut car).unwrap();

    let pubkey = s.key.public_key();
    let verified = read_car(
        car.as_slice(),
        &ImportExpectations {
            did: Some(ALICE),
            signing_key: Some(&pubkey),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(verified.records.len(), 499);

    // Into a fresh database: the same repo, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let mut other = Store::open(&dir.path().join("other.sqlite")).unwrap();
    let tx = other.transaction().unwrap();
    tx.import_repo(&verified).unwrap();
    tx.commit().unwrap();
    let mut again = Vec::new();
    other.export_car(ALICE, &mut again).unwrap();
    assert_eq!(again, car);
    assert_eq!(
        other
            .list_records(ALICE, "app.bsky.feed.post", None, 1000, false)
            .unwrap()
            .len(),
        499
    );
    // And the imported repo takes new writes.
    let tx = other.transaction().unwrap();
    tx.apply_writes(
        ALICE,
        &s.key,
        &s.clock,
        &[create("3kzzzzzzzzzzz", "after import")],
    )
    .unwrap();
    tx.commit().unwrap();
    let mut after = Vec::new();
    other.export_car(ALICE, &mut after).unwrap();
    read_car(
        after.as_slice(),
        &ImportExpectations {
            did: Some(ALICE),
            signing_key: Some(&pubkey),
            ..Default::default()
        },
    )
    .unwrap();
    // The block set of the imported repo is exact too.
    assert_eq!(
        block_rows(&other, ALICE) as usize,
        exported_blocks(&other, ALICE)
    );
}

#[test]
fn a_bad_import_stores_nothing() {
    let mut s = setup();
    let tx = s.store.transaction().unwrap();
    tx.create_repo(ALICE, &s.key, &s.clock, &[create("3kaaaaaaaaaaa", "one")])
        .unwrap();
    tx.commit().unwrap();
    let mut car = Vec::new();
    s.store.export_car(ALICE, &mut car).unwrap();
    let before = s.store.head(ALICE).unwrap();
    // Signed by a key the account does not have: verification fails before any write.
    let wrong = Keypair::generate(Algorithm::K256).public_key();
    assert!(
        read_car(
            car.as_slice(),
            &ImportExpectations {
                did: Some(ALICE),
                signing_key: Some(&wrong),
                ..Default::default()
            }
        )
        .is_err()
    );
    assert!(read_car(&car[..car.len() - 5], &ImportExpectations::default()).is_err());
    assert_eq!(s.store.head(ALICE).unwrap(), before);
}

#[test]
fn missing_repos_are_reported() {
    let mut s = setup();
    assert!(s.store.head(ALICE).unwrap().is_none());
    assert!(matches!(
        s.store.export_car(ALICE, Vec::new()),
        Err(StorageError::RepoNotFound(_))
    ));
    let tx = s.store.transaction().unwrap();
    assert!(matches!(
        tx.apply_writes(ALICE, &s.key, &s.clock, &[]),
        Err(StorageError::RepoNotFound(_))
    ));
}

mod database {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    use pds_storage::{Database, DatabaseOptions};

    use super::*;

    fn did(i: usize) -> String {
        format!("did:plc:account{i:017}")
    }

    async fn open() -> (tempfile::TempDir, Database, Arc<Keypair>, Arc<TidClock>) {
        let dir = tempfile::tempdir().unwrap();
        let db =
            Database::open(&dir.path().join("pds.sqlite"), DatabaseOptions::default()).unwrap();
        (
            dir,
            db,
            Arc::new(Keypair::generate(Algorithm::K256)),
            Arc::new(TidClock::new()),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pds.sqlite");
        let options = DatabaseOptions {
            wal_restart_bytes: 1024 * 1024,
            ..Default::default()
        };
        let db = Database::open(&path, options).unwrap();
        let (key, clock) = (
            Arc::new(Keypair::generate(Algorithm::K256)),
            Arc::new(TidClock::new()),
        );
        let did = did(0);
        {
            let (key, clock, did) = (key.clone(), clock.clone(), did.clone());
            db.write(move |w| w.tx.create_repo(&did, &key, &clock, &[]))
                .await
                .unwrap();
        }
        // About 40 MB of WAL written one commit at a time, a reader reading all along.
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let reader = {
            let (db, reading, did) = (db.clone(), reading.clone(), did.clone());
            tokio::spawn(async move {
                while reading.load(std::sync::atomic::Ordering::Relaxed) {
                    let did = did.clone();
                    db.read(move |store| store.head(&did)).await.unwrap();
                }
            })
        };
        let text = "x".repeat(30_000);
        let mut largest = 0;
        for n in 0..1300usize {
            let (key, clock, did, rkey, text) = (
                key.clone(),
                clock.clone(),
                did.clone(),
                format!("3kw{n:010}"),
                text.clone(),
            );
            db.write(move |w| {
                w.tx.apply_writes_cached(w.repos, &did, &key, &clock, &[create(&rkey, &text)])
            })
            .await
            .unwrap();
            let wal = std::fs::metadata(dir.path().join("pds.sqlite-wal")).map_or(0, |m| m.len());
            largest = largest.max(wal);
        }
        reading.store(false, std::sync::atomic::Ordering::Relaxed);
        reader.await.unwrap();
        assert!(
            largest < 24 * 1024 * 1024,
            "the WAL grew to {largest} bytes with a 1 MiB limit"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_grouped_and_all_land() {
        let (dir, db, key, clock) = open().await;
        for i in 0..10 {
            let (key, clock, did) = (key.clone(), clock.clone(), did(i));
            db.write(move |w| w.tx.create_repo(&did, &key, &clock, &[]))
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for t in 0..16usize {
            let (db, key, clock) = (db.clone(), key.clone(), clock.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..25usize {
                    let did = did((t + n) % 10);
                    let rkey = format!("3kt{t:02}n{n:07}");
                    let (key, clock) = (key.clone(), clock.clone());
                    db.write(move |w| {
                        w.tx.apply_writes_cached(w.repos, &did, &key, &clock, &[create(&rkey, "x")])
                    })
                    .await
                    .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let stats = db.stats();
        let (commits, requests) = (stats.commits.load(Relaxed), stats.requests.load(Relaxed));
        assert_eq!(requests, 10 + 16 * 25);
        assert!(
            commits < requests,
            "concurrent requests share commits ({commits} for {requests})"
        );

        // Everything is durable and each repo verifies, seen from a fresh connection.
        db.close();
        let store = Store::open(&dir.path().join("pds.sqlite")).unwrap();
        let mut total = 0;
        for i in 0..10 {
            let records = store
                .list_records(&did(i), "app.bsky.feed.post", None, 1000, false)
                .unwrap();
            total += records.len();
            let mut car = Vec::new();
            store.export_car(&did(i), &mut car).unwrap();
            let pubkey = key.public_key();
            let expect = ImportExpectations {
                did: Some(&did(i)),
                signing_key: Some(&pubkey),
                ..Default::default()
            };
            assert_eq!(
                read_car(car.as_slice(), &expect).unwrap().records.len(),
                records.len()
            );
        }
        assert_eq!(total, 16 * 25);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_commit_listener_runs_after_each_commit_and_sees_its_data() {
        let (dir, db, key, clock) = open().await;
        let path = dir.path().join("pds.sqlite");
        // What the listener saw: the head of the repo from a separate connection, per commit.
        let seen: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::default();
        let (seen_in, did0) = (seen.clone(), did(0));
        let reader = std::sync::Mutex::new(Store::open_reader(&path).unwrap());
        db.on_commit(move || {
            let head = reader.lock().unwrap().head(&did0).unwrap();
            seen_in.lock().unwrap().push(head.map(|h| h.rev));
        });
        let (k, c, d) = (key.clone(), clock.clone(), did(0));
        db.write(move |w| w.tx.create_repo(&d, &k, &c, &[]))
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(
            seen.lock().unwrap()[0].is_some(),
            "the commit is visible to readers"
        );

        // A request that fails alone in its batch is rolled back with its transaction: its
        // changes are gone and nothing was committed, so the listener does not run.
        let (k, c) = (key.clone(), clock.clone());
        let failed: Result<(), StorageError> = db
            .write(move |w| {
                w.tx.create_repo(&did(1), &k, &c, &[])?;
                Err(StorageError::Corrupt("refused".into()))
            })
            .await;
        assert!(failed.is_err());
        let before = seen.lock().unwrap().len();
        assert_eq!(before, 1);
        let probe = did(1);
        let head = db.read(move |store| store.head(&probe)).await.unwrap();
        assert!(head.is_none(), "the failed request's repo was rolled back");
        let (k, c, d) = (key.clone(), clock.clone(), did(0));
        db.write(move |w| {
            w.tx.apply_writes_cached(w.repos, &d, &k, &c, &[create("3kt0000000001", "x")])
        })
        .await
        .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), before + 1);
        assert_ne!(
            seen[seen.len() - 1],
            seen[0],
            "the listener sees the new head"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_in_the_background_and_folded_in_at_close() {
        let (dir, db, key, clock) = open().await;
        let wal = dir.path().join("pds.sqlite-wal");
        let initial = std::fs::metadata(dir.path().join("pds.sqlite"))
            .unwrap()
            .len();
        assert!(initial < 100 * 1024);
        let (k, c) = (key.clone(), clock.clone());
        db.write(move |w| w.tx.create_repo(&did(0), &k, &c, &[]))
            .await
            .unwrap();
        for n in 0..200 {
            let (k, c) = (key.clone(), clock.clone());
            let rkey = format!("3kt{n:010}");
            db.write(move |w| {
                w.tx.apply_writes_cached(w.repos, &did(0), &k, &c, &[create(&rkey, "x")])
            })
            .await
            .unwrap();
        }
        // Only a checkpoint moves pages into the database file, and nothing here asks for one:
        // the file grows because the background pass ran.
        let main = dir.path().join("pds.sqlite");
        let size = || std::fs::metadata(&main).unwrap().len();
        let mut caught_up = false;
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if size() > 100 * 1024 {
                caught_up = true;
                break;
            }
        }
        assert!(caught_up, "the WAL was checkpointed");
        db.close();
        assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
        let store = Store::open(&dir.path().join("pds.sqlite")).unwrap();
        let records = store
            .list_records(&did(0), "app.bsky.feed.post", None, 1000, false)
            .unwrap();
        assert_eq!(records.len(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_request_rolls_back_alone() {
        let (_dir, db, key, clock) = open().await;
        let (k, c) = (key.clone(), clock.clone());
        db.write(move |w| w.tx.create_repo(&did(0), &k, &c, &[]))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for n in 0..40usize {
            let (db, key, clock) = (db.clone(), key.clone(), clock.clone());
            tasks.push(tokio::spawn(async move {
                let writes = if n % 4 == 0 {
                    vec![delete("3kmissingmiss")]
                } else {
                    vec![create(&format!("3kok{n:09}"), "x")]
                };
                db.write(move |w| {
                    w.tx.apply_writes_cached(w.repos, &did(0), &key, &clock, &writes)
                })
                .await
            }));
        }
        let mut failed = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                failed += 1;
            }
        }
        assert_eq!(failed, 10);
        let count = db
            .read(|store| {
                Ok::<_, StorageError>(
                    store
                        .list_records(&did(0), "app.bsky.feed.post", None, 1000, false)?
                        .len(),
                )
            })
            .await
            .unwrap();
        assert_eq!(count, 30);
        // A request that writes, then fails, leaves none of its writes behind.
        let (k, c) = (key.clone(), clock.clone());
        let err = db
            .write(move |w| {
                w.tx.apply_writes_cached(
                    w.repos,
                    &did(0),
                    &k,
                    &c,
                    &[create("3khalfhalfhal", "x")],
                )?;
                Err::<(), _>(StorageError::Corrupt(
                    "the request fails after writing".into(),
                ))
            })
            .await;
        assert!(err.is_err());
        let found = db
            .read(|s| {
                Ok::<_, StorageError>(
                    s.get_record(&did(0), "app.bsky.feed.post", "3khalfhalfhal")?
                        .is_some(),
                )
            })
            .await
            .unwrap();
        assert!(!found);
        // And the cached repo did not run ahead of the database: the next write still works.
        let (k, c) = (key.clone(), clock.clone());
        db.write(move |w| {
            w.tx.apply_writes_cached(w.repos, &did(0), &k, &c, &[create("3kafterafter", "x")])
        })
        .await
        .unwrap();
        db.read(|s| {
            let mut car = Vec::new();
            s.export_car(&did(0), &mut car)?;
            read_car(car.as_slice(), &ImportExpectations::default())?;
            Ok::<_, StorageError>(())
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_request_fails_alone() {
        let (_dir, db, key, clock) = open().await;
        let (k, c) = (key.clone(), clock.clone());
        db.write(move |w| w.tx.create_repo(&did(0), &k, &c, &[]))
            .await
            .unwrap();
        let (k, c) = (key.clone(), clock.clone());
        let failed = db
            .write(move |w| {
                w.tx.apply_writes_cached(
                    w.repos,
                    &did(0),
                    &k,
                    &c,
                    &[create("3kpanicpanicp", "x")],
                )?;
                if w.tx.head(&did(0))?.is_some() {
                    panic!("a bug in some request");
                }
                Ok::<_, StorageError>(())
            })
            .await;
        assert!(failed.is_err());
        // Its write was rolled back, and the writer still works.
        let (k, c) = (key.clone(), clock.clone());
        db.write(move |w| {
            w.tx.apply_writes_cached(w.repos, &did(0), &k, &c, &[create("3kafterpanic1", "x")])
        })
        .await
        .unwrap();
        let found = db
            .read(|s| {
                Ok::<_, StorageError>(
                    s.get_record(&did(0), "app.bsky.feed.post", "3kpanicpanicp")?
                        .is_some(),
                )
            })
            .await
            .unwrap();
        assert!(!found);
    }

    #[tokio::test]
    async fn a_closed_database_refuses_writes() {
        let (_dir, db, _key, _clock) = open().await;
        db.close();
        assert!(matches!(
            db.write(|_| Ok::<_, StorageError>(())).await,
            Err(StorageError::Closed)
        ));
    }
}
