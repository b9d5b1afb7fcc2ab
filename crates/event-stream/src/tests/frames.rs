//! Every event kind encoded, decoded and checked against the bundled `subscribeRepos` lexicon;
//! `#commit` events of real commits verified the way a relay verifies them.

use std::collections::BTreeSet;

use pds_crypto::{Algorithm, Keypair};
use pds_ipld::{Cid, Ipld};
use pds_lexicon::{Catalog, Def};
use pds_repo::mst::Mst;
use pds_repo::{Commit, CommitData, MemoryBlocks, Repo, Write};
use pds_syntax::{Nsid, RecordKey, Tid, TidClock};

use crate::event::MAX_COMMIT_OPS;
use crate::frame::OUTDATED_CURSOR;
use crate::{
    AccountEvent, AccountStatus, DecodedFrame, Error, EventBody, Frame, IdentityEvent, SyncEvent,
    decode_frame,
};

const LEXICON: &str = "com.atproto.sync.subscribeRepos";
const DID: &str = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw";
const TIME: &str = "2024-05-01T12:34:56.789Z";

/// The property names of `#def` in the lexicon.
fn lexicon_keys(def: &str) -> BTreeSet<String> {
    let Some(Def::Object(object)) = Catalog::bundled().def(&format!("{LEXICON}#{def}")) else {
        panic!("{LEXICON}#{def} is not an object in the bundled lexicons")
    };
    object.properties.iter().map(|p| p.name.clone()).collect()
}

fn body_keys(frame: &DecodedFrame) -> BTreeSet<String> {
    let Ipld::Map(map) = &frame.body else {
        panic!("body is not a map")
    };
    map.keys().cloned().collect()
}

/// Decodes a frame, checks its header is `{op: 1, t: #def}` and its body valid against the
/// lexicon's `#def`.
fn decode_valid(frame: &Frame, def: &str) -> DecodedFrame {
    let decoded = decode_frame(frame.bytes()).unwrap();
    assert_eq!(decoded.op(), Some(1));
    assert_eq!(decoded.kind(), Some(format!("#{def}").as_str()));
    let Ipld::Map(header) = &decoded.header else {
        panic!()
    };
    assert_eq!(header.len(), 2, "the header is exactly {{op, t}}");
    Catalog::bundled()
        .validate_value(&format!("{LEXICON}#{def}"), &decoded.body)
        .unwrap_or_else(|e| panic!("#{def} body against the lexicon: {e}"));
    assert_eq!(decoded.seq(), frame.seq());
    decoded
}

fn string<'a>(frame: &'a DecodedFrame, field: &str) -> &'a str {
    match frame.get(field) {
        Some(Ipld::String(s)) => s,
        other => panic!("{field}: {other:?}"),
    }
}

fn link(value: Option<&Ipld>) -> Cid {
    match value {
        Some(Ipld::Link(cid)) => *cid,
        other => panic!("not a link: {other:?}"),
    }
}

fn bytes<'a>(frame: &'a DecodedFrame, field: &str) -> &'a [u8] {
    match frame.get(field) {
        Some(Ipld::Bytes(b)) => b,
        other => panic!("{field}: {other:?}"),
    }
}

// ----------------------------------------------------------------------------------------
// A real repository

fn record(text: &str) -> Vec<u8> {
    let json = serde_json::json!({
        "$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00.000Z"
    });
    pds_ipld::json::json_to_cbor(&json).unwrap()
}

fn posts() -> Nsid {
    Nsid::new("app.bsky.feed.post").unwrap()
}

fn rkey(n: usize) -> RecordKey {
    RecordKey::new(&format!("3k{n:011}")).unwrap()
}

fn post(n: usize, text: &str) -> Write {
    Write::create(posts(), rkey(n), record(text))
}

struct TestRepo {
    store: MemoryBlocks,
    repo: Repo,
    key: Keypair,
    clock: TidClock,
}

impl TestRepo {
    fn create(writes: &[Write]) -> (TestRepo, CommitData) {
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::new();
        let mut store = MemoryBlocks::new();
        let (repo, data) =
            Repo::create(&store, DID, &key, &clock.next_after(None), writes).unwrap();
        store.extend(data.new_blocks.clone());
        (
            TestRepo {
                store,
                repo,
                key,
                clock,
            },
            data,
        )
    }

    fn apply(&mut self, writes: &[Write]) -> CommitData {
        let rev = self
            .clock
            .next_after(Some(&Tid::new(self.repo.rev()).unwrap()));
        let data = self
            .repo
            .apply_writes(&self.store, writes, &self.key, &rev)
            .unwrap();
        self.store.extend(data.new_blocks.clone());
        data
    }
}

/// What a relay does with a `#commit` frame, using nothing but the frame: parse the CAR, check
/// the commit (root, signature, rev), then undo the ops on the tree in the CAR and arrive at
/// `prevData`.
fn verify_like_a_relay(frame: &DecodedFrame, key: &Keypair) {
    let commit_cid = link(frame.get("commit"));
    let (roots, blocks) = pds_ipld::decode_car(bytes(frame, "blocks")).unwrap();
    assert_eq!(roots, [commit_cid], "the CAR's root is the commit");
    assert_eq!(blocks[0].0, commit_cid, "the commit block comes first");
    let event_blocks: MemoryBlocks = blocks.into_iter().collect();
    let commit = Commit::from_block(&commit_cid, event_blocks.get(&commit_cid).unwrap()).unwrap();
    commit.verify(&key.public_key()).unwrap();
    assert_eq!(commit.rev, string(frame, "rev"));
    assert_eq!(commit.did, string(frame, "repo"));

    let Some(Ipld::List(ops)) = frame.get("ops") else {
        panic!("ops")
    };
    let mut tree = Mst::load(commit.data);
    for op in ops.iter().rev() {
        let Ipld::Map(op) = op else { panic!("op") };
        let path = match &op["path"] {
            Ipld::String(path) => path.as_str(),
            other => panic!("path: {other:?}"),
        };
        let action = &op["action"];
        let (cid, prev) = (&op["cid"], op.get("prev"));
        match action {
            Ipld::String(a) if a == "create" => {
                assert!(prev.is_none(), "a create has no prev");
                assert!(event_blocks.contains(&link(Some(cid))), "record of {path}");
                tree.delete(&event_blocks, path).unwrap();
            }
            Ipld::String(a) if a == "update" => {
                assert!(event_blocks.contains(&link(Some(cid))), "record of {path}");
                tree.insert(&event_blocks, path, link(prev)).unwrap();
            }
            Ipld::String(a) if a == "delete" => {
                assert_eq!(cid, &Ipld::Null, "a delete's cid is null");
                tree.insert(&event_blocks, path, link(prev)).unwrap();
            }
            other => panic!("action {other:?}"),
        }
    }
    assert_eq!(
        tree.commit().unwrap().root,
        link(frame.get("prevData")),
        "inverting the ops gives prevData"
    );
}

#[test]
fn commit_frames_match_the_lexicon_and_verify_like_a_relay() {
    let all_keys = lexicon_keys("commit");
    let (mut repo, first) = TestRepo::create(&(0..150).map(|n| post(n, "p")).collect::<Vec<_>>());

    // The first commit: `since` is null, `prevData` absent (there is no previous tree).
    let frame = EventBody::for_commit(&first, &[])
        .unwrap()
        .encode(1, TIME)
        .unwrap();
    let decoded = decode_valid(&frame, "commit");
    let mut first_keys = all_keys.clone();
    first_keys.remove("prevData");
    assert_eq!(body_keys(&decoded), first_keys);
    assert_eq!(decoded.get("since"), Some(&Ipld::Null));
    assert_eq!(decoded.get("tooBig"), Some(&Ipld::Bool(false)));
    assert_eq!(decoded.get("rebase"), Some(&Ipld::Bool(false)));
    assert_eq!(decoded.get("blobs"), Some(&Ipld::List(vec![])));
    assert_eq!(string(&decoded, "time"), TIME);

    let batches: Vec<Vec<Write>> = vec![
        (150..300).map(|n| post(n, "p")).collect(),
        vec![post(1_000, "append")],
        vec![Write::delete(posts(), rkey(150))],
        vec![Write::update(posts(), rkey(7), record("updated"))],
        vec![
            post(1_001, "between"),
            Write::update(posts(), rkey(8), record("u")),
            Write::delete(posts(), rkey(299)),
            Write::delete(posts(), rkey(0)),
        ],
        // Two records with the same content: one block in the CAR.
        vec![post(2_000, "same"), post(2_001, "same")],
        (3_000..3_150).map(|n| post(n, "bulk")).collect(),
    ];
    for (i, writes) in batches.iter().enumerate() {
        let data = repo.apply(writes);
        let seq = 2 + i as i64;
        let event = EventBody::for_commit(&data, &[]).unwrap();
        assert_eq!(event.kind(), "#commit");
        let frame = event.encode(seq, TIME).unwrap();
        let decoded = decode_valid(&frame, "commit");
        assert_eq!(
            body_keys(&decoded),
            all_keys,
            "batch {i}: exactly the lexicon's keys"
        );
        assert_eq!(decoded.seq(), Some(seq));
        assert_eq!(string(&decoded, "since"), data.since.as_deref().unwrap());
        assert_eq!(link(decoded.get("prevData")), data.prev_data.unwrap());
        let Some(Ipld::List(ops)) = decoded.get("ops") else {
            panic!()
        };
        assert_eq!(ops.len(), writes.len());
        verify_like_a_relay(&decoded, &repo.key);
        // Each block is in the CAR once.
        let (_, blocks) = pds_ipld::decode_car(bytes(&decoded, "blocks")).unwrap();
        let unique: BTreeSet<_> = blocks.iter().map(|(cid, _)| *cid).collect();
        assert_eq!(unique.len(), blocks.len(), "batch {i}: no block twice");
    }

    // Deprecated `blobs` still carries what it is given, as links.
    let data = repo.apply(&[post(4_000, "with blob")]);
    let blob = pds_ipld::cid_for_raw(b"an image");
    let frame = EventBody::for_commit(&data, &[blob])
        .unwrap()
        .encode(99, TIME)
        .unwrap();
    let decoded = decode_valid(&frame, "commit");
    assert_eq!(
        decoded.get("blobs"),
        Some(&Ipld::List(vec![Ipld::Link(blob)]))
    );
}

#[test]
fn commits_over_the_sync_limits_are_announced_as_sync() {
    let (mut repo, _) = TestRepo::create(&[post(0, "first")]);

    let too_many: Vec<Write> = (1..=MAX_COMMIT_OPS + 1).map(|n| post(n, "x")).collect();
    let big_record = "x".repeat(1_000_100);
    let over_two_mb: Vec<Write> = (0..3)
        .map(|n| post(10_000 + n, &"y".repeat(800_000 + n)))
        .collect();
    let cases = [
        ("201 ops", too_many),
        (
            "a record over 1,000,000 bytes",
            vec![post(5_000, &big_record)],
        ),
        ("blocks over 2,000,000 bytes", over_two_mb),
    ];
    for (what, writes) in cases {
        let data = repo.apply(&writes);
        assert!(matches!(
            crate::CommitEvent::from_commit_data(&data, &[]),
            Err(Error::CommitTooLarge(_))
        ));
        let event = EventBody::for_commit(&data, &[]).unwrap();
        assert_eq!(event.kind(), "#sync", "{what}");
        let frame = event.encode(7, TIME).unwrap();
        let decoded = decode_valid(&frame, "sync");
        assert_eq!(body_keys(&decoded), lexicon_keys("sync"));
        assert_eq!(string(&decoded, "rev"), data.rev);
        let (roots, blocks) = pds_ipld::decode_car(bytes(&decoded, "blocks")).unwrap();
        assert_eq!(roots, [data.commit_cid]);
        assert_eq!(blocks.len(), 1, "{what}: only the commit block");
    }

    // Exactly at the op limit it is still a #commit.
    let at_limit: Vec<Write> = (20_000..20_000 + MAX_COMMIT_OPS)
        .map(|n| post(n, "z"))
        .collect();
    let data = repo.apply(&at_limit);
    assert_eq!(EventBody::for_commit(&data, &[]).unwrap().kind(), "#commit");
}

#[test]
fn sync_identity_account_and_info_frames_round_trip() {
    let (repo, data) = TestRepo::create(&[post(1, "hello")]);

    let sync = SyncEvent::from_commit_data(&data).unwrap();
    let frame = EventBody::Sync(sync).encode(41, TIME).unwrap();
    let decoded = decode_valid(&frame, "sync");
    assert_eq!(body_keys(&decoded), lexicon_keys("sync"));
    assert_eq!(string(&decoded, "did"), DID);
    assert_eq!(string(&decoded, "rev"), repo.repo.rev());
    let (roots, blocks) = pds_ipld::decode_car(bytes(&decoded, "blocks")).unwrap();
    assert_eq!(roots, [data.commit_cid]);
    assert_eq!(blocks.len(), 1);
    Commit::from_block(&data.commit_cid, &blocks[0].1)
        .unwrap()
        .verify(&repo.key.public_key())
        .unwrap();
    // A block that is not the commit's, or not a commit, is refused.
    let record_cid = data.ops[0].cid.unwrap();
    let record_bytes = repo.store.get(&record_cid).unwrap();
    assert!(SyncEvent::from_commit_block(&data.commit_cid, record_bytes).is_err());
    assert!(SyncEvent::from_commit_block(&record_cid, record_bytes).is_err());

    let with_handle = IdentityEvent::new(DID, Some("alice.test")).unwrap();
    let decoded = decode_valid(
        &EventBody::Identity(with_handle).encode(42, TIME).unwrap(),
        "identity",
    );
    assert_eq!(body_keys(&decoded), lexicon_keys("identity"));
    assert_eq!(string(&decoded, "handle"), "alice.test");
    let without = IdentityEvent::new(DID, None).unwrap();
    let decoded = decode_valid(
        &EventBody::Identity(without).encode(43, TIME).unwrap(),
        "identity",
    );
    assert_eq!(
        body_keys(&decoded),
        ["did", "seq", "time"].map(String::from).into()
    );
    let invalid = IdentityEvent::new(DID, Some("handle.invalid")).unwrap();
    decode_valid(
        &EventBody::Identity(invalid).encode(44, TIME).unwrap(),
        "identity",
    );

    let active = AccountEvent::new(DID, true, None).unwrap();
    let decoded = decode_valid(
        &EventBody::Account(active).encode(45, TIME).unwrap(),
        "account",
    );
    assert_eq!(
        body_keys(&decoded),
        ["active", "did", "seq", "time"].map(String::from).into()
    );
    assert_eq!(decoded.get("active"), Some(&Ipld::Bool(true)));
    for status in AccountStatus::ALL {
        assert_eq!(AccountStatus::parse(status.as_str()), Some(status));
        let event = AccountEvent::new(DID, false, Some(status)).unwrap();
        let decoded = decode_valid(
            &EventBody::Account(event).encode(46, TIME).unwrap(),
            "account",
        );
        assert_eq!(body_keys(&decoded), lexicon_keys("account"));
        assert_eq!(string(&decoded, "status"), status.as_str());
        assert_eq!(decoded.get("active"), Some(&Ipld::Bool(false)));
    }
    assert_eq!(AccountStatus::parse("active"), None);

    let info = Frame::info(OUTDATED_CURSOR, Some("Requested cursor exceeded limit."));
    let decoded = decode_frame(info.bytes()).unwrap();
    assert_eq!(decoded.kind(), Some("#info"));
    assert_eq!(body_keys(&decoded), lexicon_keys("info"));
    Catalog::bundled()
        .validate_value(&format!("{LEXICON}#info"), &decoded.body)
        .unwrap();
}

#[test]
fn events_from_bad_values_are_refused() {
    for did in ["", "alice", "did:", "did:plc:", "DID:plc:abc"] {
        assert!(
            matches!(IdentityEvent::new(did, None), Err(Error::InvalidEvent(_))),
            "{did:?}"
        );
        assert!(
            matches!(
                AccountEvent::new(did, true, None),
                Err(Error::InvalidEvent(_))
            ),
            "{did:?}"
        );
    }
    for handle in ["", "no_underscores.test", "alice", "-a.test"] {
        assert!(
            matches!(
                IdentityEvent::new(DID, Some(handle)),
                Err(Error::InvalidEvent(_))
            ),
            "{handle:?}"
        );
    }
    // CommitData without its commit block cannot be announced.
    let (_, mut data) = TestRepo::create(&[post(1, "x")]);
    data.new_blocks.retain(|(cid, _)| *cid != data.commit_cid);
    assert!(matches!(
        EventBody::for_commit(&data, &[]),
        Err(Error::InvalidEvent(_))
    ));
}
