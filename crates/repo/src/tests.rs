//! Repository behaviour end to end in memory: commits, batches, the firehose proof, export and
//! verified import.

use pds_crypto::{Algorithm, Keypair};
use pds_ipld::car::{CarReader, encode_car};
use pds_syntax::{Nsid, RecordKey, TidClock};

use crate::import::{ImportExpectations, read_car};
use crate::mst::{Mst, encode_node, key_height, read};
use crate::*;

const DID: &str = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw";

fn record(text: &str) -> Vec<u8> {
    let json = serde_json::json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00.000Z"});
    pds_ipld::json::json_to_cbor(&json).unwrap()
}

fn post(rkey: &str, text: &str) -> Write {
    Write::create(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new(rkey).unwrap(),
        record(text),
    )
}

struct Fixture {
    store: MemoryBlocks,
    repo: Repo,
    key: Keypair,
    clock: TidClock,
}

impl Fixture {
    fn new(writes: &[Write]) -> Fixture {
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::new();
        let mut store = MemoryBlocks::new();
        let (repo, data) =
            Repo::create(&store, DID, &key, &clock.next_after(None), writes).unwrap();
        store.extend(data.new_blocks);
        Fixture {
            store,
            repo,
            key,
            clock,
        }
    }

    fn apply(&mut self, writes: &[Write]) -> Result<CommitData> {
        let rev = self
            .clock
            .next_after(Some(&pds_syntax::Tid::new(self.repo.rev()).unwrap()));
        let data = self
            .repo
            .apply_writes(&self.store, writes, &self.key, &rev)?;
        self.store.extend(data.new_blocks.clone());
        // Every record in these tests is distinct, so a released record is unreferenced.
        for cid in data.removed_cids.iter().chain(&data.released_records) {
            self.store.remove(cid);
        }
        Ok(data)
    }

    fn car(&self) -> Vec<u8> {
        export::to_car_bytes(&self.store, self.repo.commit_cid()).unwrap()
    }
}

fn many_posts(n: usize) -> Vec<Write> {
    (0..n)
        .map(|i| post(&format!("3k{i:011}"), &format!("post {i}")))
        .collect()
}

#[test]
fn writes_commit_and_read_back() {
    let mut f = Fixture::new(&many_posts(50));
    let first_rev = f.repo.rev().to_owned();
    let data = f
        .apply(&[
            post("3kzzzzzzzzzzz", "new"),
            Write::update(
                Nsid::new("app.bsky.feed.post").unwrap(),
                RecordKey::new("3k00000000001").unwrap(),
                record("edited"),
            ),
            Write::delete(
                Nsid::new("app.bsky.feed.post").unwrap(),
                RecordKey::new("3k00000000002").unwrap(),
            ),
        ])
        .unwrap();
    assert!(data.rev.as_str() > first_rev.as_str());
    assert_eq!(data.since.as_deref(), Some(first_rev.as_str()));
    let actions: Vec<_> = data.ops.iter().map(|o| o.action).collect();
    assert_eq!(
        actions,
        [
            WriteAction::Create,
            WriteAction::Update,
            WriteAction::Delete
        ]
    );
    assert!(data.ops[1].prev.is_some() && data.ops[2].cid.is_none() && data.ops[0].prev.is_none());

    let root = *f.repo.data();
    assert_eq!(
        read::get(&f.store, &root, "app.bsky.feed.post/3kzzzzzzzzzzz").unwrap(),
        Some(pds_ipld::cid_for_cbor(&record("new")))
    );
    assert_eq!(
        read::get(&f.store, &root, "app.bsky.feed.post/3k00000000001").unwrap(),
        Some(pds_ipld::cid_for_cbor(&record("edited")))
    );
    assert_eq!(
        read::get(&f.store, &root, "app.bsky.feed.post/3k00000000002").unwrap(),
        None
    );
    f.repo.commit().verify(&f.key.public_key()).unwrap();

    // The stored blocks are exactly what the new commit reaches: nothing leaked, nothing lost.
    let (_, blocks) = pds_ipld::car::decode_car(&f.car()).unwrap();
    assert_eq!(
        blocks.len(),
        f.store.len(),
        "dropped blocks must be exactly the unreachable ones"
    );
}

#[test]
fn conflicting_writes_are_refused_and_leave_the_repo_unchanged() {
    let mut f = Fixture::new(&many_posts(3));
    let before = *f.repo.commit_cid();
    let dup = f
        .apply(&[post("3kzzzzzzzzzzz", "a"), post("3k00000000000", "exists")])
        .unwrap_err();
    assert!(matches!(dup, RepoError::WriteConflict(_)), "{dup}");
    let missing = f
        .apply(&[Write::delete(
            Nsid::new("app.bsky.feed.post").unwrap(),
            RecordKey::new("3kabsentabsen").unwrap(),
        )])
        .unwrap_err();
    assert!(matches!(missing, RepoError::WriteConflict(_)));
    let twice = f
        .apply(&[post("3kaaaaaaaaaaa", "x"), post("3kaaaaaaaaaaa", "y")])
        .unwrap_err();
    assert!(matches!(twice, RepoError::WriteConflict(_)));
    assert_eq!(*f.repo.commit_cid(), before);
    // The half-applied batch left nothing behind in the tree.
    f.apply(&[post("3kzzzzzzzzzzz", "a")]).unwrap();
    let root = *f.repo.data();
    assert_eq!(
        read::list(&f.store, &root, None, None, false, 100)
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn rev_must_increase() {
    let mut f = Fixture::new(&[]);
    let old = pds_syntax::Tid::new(f.repo.rev()).unwrap();
    let err = f
        .repo
        .apply_writes(&f.store, &[post("3kaaaaaaaaaaa", "x")], &f.key, &old)
        .unwrap_err();
    assert!(matches!(err, RepoError::InvalidCommit(_)));
}

#[test]
fn commit_signatures() {
    let f = Fixture::new(&many_posts(2));
    let commit = f.repo.commit().clone();
    commit.verify(&f.key.public_key()).unwrap();
    let other = Keypair::generate(Algorithm::P256);
    assert!(matches!(
        commit.verify(&other.public_key()),
        Err(RepoError::BadSignature(_))
    ));
    let mut tampered = commit.clone();
    tampered.rev = f.clock.next().to_string();
    assert!(tampered.verify(&f.key.public_key()).is_err());
    // The commit block has the canonical field set, `prev` present as null.
    let (cid, bytes) = commit.to_block().unwrap();
    let json = pds_ipld::json::cbor_to_json(&bytes).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["data", "did", "prev", "rev", "sig", "version"]);
    assert!(json["prev"].is_null() && json["version"] == 3);
    assert_eq!(Commit::from_block(&cid, &bytes).unwrap(), commit);
}

/// What a relay does with a `#commit`: load the new tree from the event's blocks alone, undo each
/// op, and arrive at `prevData`.
#[test]
fn commit_blocks_let_a_consumer_invert_the_commit() {
    let mut f = Fixture::new(&many_posts(300));
    let batches: Vec<Vec<Write>> = vec![
        vec![post("3kzzzzzzzzzzz", "append")],
        vec![Write::delete(
            Nsid::new("app.bsky.feed.post").unwrap(),
            RecordKey::new("3k00000000150").unwrap(),
        )],
        vec![
            post("3k00000000150x", "between"),
            Write::update(
                Nsid::new("app.bsky.feed.post").unwrap(),
                RecordKey::new("3k00000000007").unwrap(),
                record("u"),
            ),
            Write::delete(
                Nsid::new("app.bsky.feed.post").unwrap(),
                RecordKey::new("3k00000000299").unwrap(),
            ),
        ],
        many_posts(320).split_off(300),
    ];
    for writes in batches {
        let data = f.apply(&writes).unwrap();
        let event: MemoryBlocks = data.event_blocks().cloned().collect();
        let commit =
            Commit::from_block(&data.commit_cid, event.get(&data.commit_cid).unwrap()).unwrap();
        commit.verify(&f.key.public_key()).unwrap();
        let mut tree = Mst::load(commit.data);
        for op in data.ops.iter().rev() {
            match op.prev {
                Some(prev) => tree.insert(&event, &op.path, prev).unwrap(),
                None => tree.delete(&event, &op.path).unwrap(),
            };
        }
        assert_eq!(Some(tree.commit().unwrap().root), data.prev_data);
        for op in &data.ops {
            if let Some(cid) = op.cid {
                assert!(
                    event.contains(&cid),
                    "record block of {} is in the event",
                    op.path
                );
            }
        }
    }
}

#[test]
fn export_is_deterministic_and_import_round_trips() {
    let mut f = Fixture::new(&many_posts(200));
    f.apply(&[Write::delete(
        Nsid::new("app.bsky.feed.post").unwrap(),
        RecordKey::new("3k00000000010").unwrap(),
    )])
    .unwrap();
    let car = f.car();
    assert_eq!(car, f.car(), "same repo, same bytes");
    let mut reader = CarReader::new(car.as_slice()).unwrap();
    assert_eq!(reader.roots(), &[*f.repo.commit_cid()]);
    assert_eq!(
        reader.next().unwrap().unwrap().0,
        *f.repo.commit_cid(),
        "commit block first"
    );

    let pubkey = f.key.public_key();
    let expect = ImportExpectations {
        did: Some(DID),
        signing_key: Some(&pubkey),
        ..Default::default()
    };
    let verified = read_car(car.as_slice(), &expect).unwrap();
    assert_eq!(verified.commit_cid, *f.repo.commit_cid());
    assert_eq!(verified.records.len(), 199);
    assert_eq!(verified.block_count(), f.store.len());
}

fn expect_reject(car: &[u8], expect: &ImportExpectations<'_>, what: &str) -> RepoError {
    match read_car(car, expect) {
        Ok(_) => panic!("{what}: a bad repo was accepted"),
        Err(e) => e,
    }
}

#[test]
fn import_rejects_bad_repos() {
    let f = Fixture::new(&many_posts(100));
    let pubkey = f.key.public_key();
    let expect = ImportExpectations {
        did: Some(DID),
        signing_key: Some(&pubkey),
        ..Default::default()
    };
    let car = f.car();
    let (roots, blocks) = pds_ipld::car::decode_car(&car).unwrap();
    let commit_cid = roots[0];

    // Missing blocks: drop each kind in turn (a record, an MST node, the commit).
    let record_cid = pds_ipld::cid_for_cbor(&record("post 5"));
    let node_cid = *f.repo.data();
    for (missing, what) in [
        (record_cid, "record"),
        (node_cid, "MST root"),
        (commit_cid, "commit"),
    ] {
        let kept = blocks.iter().filter(|(c, _)| *c != missing).cloned();
        let bad = encode_car(&roots, kept).unwrap();
        let err = expect_reject(&bad, &expect, what);
        assert!(
            matches!(&err, RepoError::MissingBlock(c) if **c == missing),
            "{what}: {err}"
        );
    }

    // Signed by another key; claimed by another DID.
    let other = Keypair::generate(Algorithm::K256).public_key();
    let err = expect_reject(
        &car,
        &ImportExpectations {
            did: Some(DID),
            signing_key: Some(&other),
            ..Default::default()
        },
        "wrong key",
    );
    assert!(matches!(err, RepoError::BadSignature(_)), "{err}");
    let err = expect_reject(
        &car,
        &ImportExpectations {
            did: Some("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"),
            signing_key: None,
            ..Default::default()
        },
        "wrong did",
    );
    assert!(matches!(err, RepoError::InvalidCommit(_)), "{err}");

    // A root that is not the commit, or two roots.
    let bad = encode_car(&[record_cid], blocks.clone()).unwrap();
    expect_reject(&bad, &expect, "record as root");
    let bad = encode_car(&[commit_cid, record_cid], blocks.clone()).unwrap();
    expect_reject(&bad, &expect, "two roots");

    // Garbage and truncation never panic.
    expect_reject(b"not a car at all", &expect, "garbage");
    for cut in [1, 10, car.len() / 2, car.len() - 1] {
        expect_reject(&car[..cut], &expect, "truncated");
    }
}

#[test]
fn import_rejects_a_non_canonical_tree_even_when_signed() {
    // Two keys of different heights placed in one node: sorted, signed, but not the MST.
    let low = (0..)
        .map(|i| format!("app.bsky.feed.post/3k{i:011}"))
        .find(|k| key_height(k.as_bytes()) == 0)
        .unwrap();
    let high = (0..)
        .map(|i| format!("app.bsky.feed.post/3k{i:011}"))
        .find(|k| key_height(k.as_bytes()) == 1)
        .unwrap();
    let rec = record("x");
    let rec_cid = pds_ipld::cid_for_cbor(&rec);
    let (a, b) = if low < high { (low, high) } else { (high, low) };
    let node = encode_node(
        None,
        &[(a.as_str(), rec_cid, None), (b.as_str(), rec_cid, None)],
    )
    .unwrap();
    let node_cid = pds_ipld::cid_for_cbor(&node);
    let key = Keypair::generate(Algorithm::K256);
    let commit = UnsignedCommit::new(DID, node_cid, TidClock::new().next().as_str())
        .sign(&key)
        .unwrap();
    let (commit_cid, commit_bytes) = commit.to_block().unwrap();
    let car = encode_car(
        &[commit_cid],
        vec![(commit_cid, commit_bytes), (node_cid, node), (rec_cid, rec)],
    )
    .unwrap();
    let pubkey = key.public_key();
    let err = expect_reject(
        &car,
        &ImportExpectations {
            did: Some(DID),
            signing_key: Some(&pubkey),
            ..Default::default()
        },
        "non-canonical",
    );
    assert!(matches!(err, RepoError::InvalidMst(_)), "{err}");
}

#[test]
fn import_rejects_invalid_record_paths() {
    let rec = record("x");
    let rec_cid = pds_ipld::cid_for_cbor(&rec);
    let mut mst = Mst::new();
    mst.insert(&MemoryBlocks::new(), "not a path", rec_cid)
        .unwrap();
    let tree = mst.commit().unwrap();
    let key = Keypair::generate(Algorithm::K256);
    let commit = UnsignedCommit::new(DID, tree.root, TidClock::new().next().as_str())
        .sign(&key)
        .unwrap();
    let (commit_cid, commit_bytes) = commit.to_block().unwrap();
    let mut blocks = tree.new_blocks;
    blocks.push((commit_cid, commit_bytes));
    blocks.push((rec_cid, rec));
    let car = encode_car(&[commit_cid], blocks).unwrap();
    let err = expect_reject(&car, &ImportExpectations::default(), "bad path");
    assert!(matches!(err, RepoError::InvalidPath(_)), "{err}");
}

#[test]
fn import_rejects_a_rev_from_the_future() {
    let key = Keypair::generate(Algorithm::K256);
    let tree = Mst::new().commit().unwrap();
    let far = pds_syntax::Tid::from_parts(
        pds_syntax::Tid::now().timestamp_micros() + 86_400_000_000,
        0,
    );
    let commit = UnsignedCommit::new(DID, tree.root, far.as_str())
        .sign(&key)
        .unwrap();
    let (commit_cid, commit_bytes) = commit.to_block().unwrap();
    let mut blocks = tree.new_blocks;
    blocks.push((commit_cid, commit_bytes));
    let car = encode_car(&[commit_cid], blocks).unwrap();
    let err = expect_reject(&car, &ImportExpectations::default(), "future rev");
    assert!(matches!(err, RepoError::InvalidCommit(_)), "{err}");
}
