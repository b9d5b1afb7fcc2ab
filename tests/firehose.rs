//! The firehose (`com.atproto.sync.subscribeRepos`) on the real binary, consumed the way a relay
//! consumes it: over a WebSocket, every frame decoded, every commit's signature checked against
//! the account's key from its DID document, every commit checked against the one before it
//! (`since`, `prevData`) and, Sync 1.1 style, from its own blocks alone (its ops undone on its
//! own proof blocks give `prevData`). Repos rebuilt from the stream alone end equal to getRepo.
//! Plus: replay then live with writes going on (no gap, no duplicate), account and identity
//! events, and the cursor errors.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Account, Socket, next_frame, next_frame_where, subscribe};
use common::{
    PASSWORD, TestServer, create_account, deletion_code, http, plc_signing_key as signing_key, post,
};
use pds_crypto::PublicKey;
use pds_event_stream::DecodedFrame;
use pds_ipld::car::{CarBuffer, CarLimits, decode_car};
use pds_ipld::{Cid, Ipld};
use pds_repo::mst::Mst;
use pds_repo::{Commit, MemoryBlocks};
use serde_json::{Value, json};

const POST: &str = "app.bsky.feed.post";

/// Frames until `done` says the last one read was the last one wanted.
fn read_until(
    socket: &mut Socket,
    mut done: impl FnMut(&DecodedFrame) -> bool,
) -> Vec<DecodedFrame> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(socket).expect("the stream ended early");
        let stop = done(&frame);
        frames.push(frame);
        if stop {
            return frames;
        }
    }
}

fn string<'a>(frame: &'a DecodedFrame, field: &str) -> Option<&'a str> {
    match frame.get(field)? {
        Ipld::String(s) => Some(s),
        _ => None,
    }
}

fn link(value: Option<&Ipld>) -> Option<Cid> {
    match value? {
        Ipld::Link(cid) => Some(*cid),
        _ => None,
    }
}

fn field<'a>(map: &'a Ipld, key: &str) -> Option<&'a Ipld> {
    match map {
        Ipld::Map(m) => m.get(key),
        _ => None,
    }
}

fn post_record(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": "2024-05-01T12:00:00.000Z"})
}

/// createRecord; returns (rkey, cid, commit rev).
fn create(server: &TestServer, account: &Account, text: &str) -> (String, String, String) {
    let (status, body) = post(
        server,
        "com.atproto.repo.createRecord",
        Some(&account.token),
        json!({"repo": account.did, "collection": POST, "record": post_record(text)}),
    );
    assert_eq!(status, 200, "{body}");
    let uri = body["uri"].as_str().unwrap();
    (
        uri.rsplit('/').next().unwrap().to_owned(),
        body["cid"].as_str().unwrap().to_owned(),
        body["commit"]["rev"].as_str().unwrap().to_owned(),
    )
}

fn latest_rev(server: &TestServer, did: &str) -> String {
    let body: Value = http()
        .get(server.url(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["rev"].as_str().unwrap().to_owned()
}

/// What a relay keeps per account: every block the stream brought, and the last commit.
#[derive(Default)]
struct RebuiltRepo {
    blocks: MemoryBlocks,
    last: Option<(Cid, Commit)>,
    /// The record paths and CIDs, as the ops said.
    records: BTreeMap<String, Cid>,
    commits: usize,
}

/// Checks one `#commit` as a relay would and applies it to the repo rebuilt so far.
fn apply_commit(frame: &DecodedFrame, repo: &mut RebuiltRepo, key: &PublicKey) {
    let Some(Ipld::Bytes(car)) = frame.get("blocks") else {
        panic!("#commit without blocks")
    };
    let (roots, blocks) = decode_car(car).expect("the blocks are a CAR");
    let commit_cid = link(frame.get("commit")).expect("commit link");
    assert_eq!(roots, vec![commit_cid], "the CAR's root is the commit");
    let event_blocks: MemoryBlocks = blocks.iter().cloned().collect();
    let commit_bytes = blocks
        .iter()
        .find(|(cid, _)| *cid == commit_cid)
        .map(|(_, b)| b.clone())
        .expect("the commit block is in the CAR");
    let commit = Commit::from_block(&commit_cid, &commit_bytes).unwrap();
    commit
        .verify(key)
        .expect("the commit is signed by the account's key");
    assert_eq!(string(frame, "repo"), Some(commit.did.as_str()));
    assert_eq!(string(frame, "rev"), Some(commit.rev.as_str()));
    assert_eq!(frame.get("tooBig"), Some(&Ipld::Bool(false)));
    assert_eq!(frame.get("rebase"), Some(&Ipld::Bool(false)));

    // The chain: `since` is the previous rev, `prevData` the previous MST root.
    let prev_data = link(frame.get("prevData"));
    match &repo.last {
        Some((_, prev)) => {
            assert_eq!(string(frame, "since"), Some(prev.rev.as_str()));
            assert_eq!(prev_data, Some(prev.data), "prevData is the previous root");
            assert!(commit.rev > prev.rev, "revs only grow");
        }
        None => assert_eq!(frame.get("since"), Some(&Ipld::Null)),
    }

    let Some(Ipld::List(ops)) = frame.get("ops") else {
        panic!("#commit without ops")
    };
    // Sync 1.1: the ops, undone on the event's own blocks, lead back to prevData.
    if let Some(prev_data) = prev_data {
        let mut inverted = Mst::load(commit.data);
        for op in ops {
            let path = match field(op, "path") {
                Some(Ipld::String(p)) => p.clone(),
                other => panic!("op path {other:?}"),
            };
            let prev = link(field(op, "prev"));
            let undone = match prev {
                Some(prev) => inverted.insert(&event_blocks, &path, prev).map(|_| ()),
                None => inverted.delete(&event_blocks, &path).map(|_| ()),
            };
            undone.expect("the event's blocks cover its ops");
        }
        assert_eq!(
            inverted.commit().unwrap().root,
            prev_data,
            "ops invert to prevData"
        );
    }

    // Applied forward on everything received so far, they give the commit's root.
    for (cid, bytes) in blocks {
        repo.blocks.insert(cid, bytes);
    }
    for op in ops {
        let (Some(Ipld::String(action)), Some(Ipld::String(path))) =
            (field(op, "action"), field(op, "path"))
        else {
            panic!("op {op:?}")
        };
        let cid = link(field(op, "cid"));
        match action.as_str() {
            "create" | "update" => {
                let cid = cid.expect("a create or update names its record");
                assert!(
                    repo.blocks.get(&cid).is_some(),
                    "the record block of {path} came with the commit"
                );
                repo.records.insert(path.clone(), cid);
            }
            "delete" => {
                assert_eq!(
                    field(op, "cid"),
                    Some(&Ipld::Null),
                    "a delete's cid is null"
                );
                repo.records.remove(path);
            }
            other => panic!("action {other}"),
        }
    }
    let entries: Vec<(String, Cid)> = repo.records.iter().map(|(p, c)| (p.clone(), *c)).collect();
    let root = Mst::from_entries(entries).unwrap().commit().unwrap().root;
    assert_eq!(
        root, commit.data,
        "the rebuilt records give the commit's root"
    );
    repo.last = Some((commit_cid, commit));
    repo.commits += 1;
}

#[test]
fn the_stream_rebuilds_every_repo_and_ends_equal_to_get_repo() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");

    // A mix of every kind of write, interleaved between the two accounts.
    let mut alice_rkeys = Vec::new();
    for i in 0..30 {
        let (rkey, _, _) = create(&server, &alice, &format!("alice {i}"));
        alice_rkeys.push(rkey);
        create(&server, &bob, &format!("bob {i}"));
    }
    for rkey in &alice_rkeys[..5] {
        let (status, body) = post(
            &server,
            "com.atproto.repo.putRecord",
            Some(&alice.token),
            json!({"repo": alice.did, "collection": POST, "rkey": rkey, "record": post_record("edited")}),
        );
        assert_eq!(status, 200, "{body}");
    }
    for rkey in &alice_rkeys[5..10] {
        let (status, body) = post(
            &server,
            "com.atproto.repo.deleteRecord",
            Some(&alice.token),
            json!({"repo": alice.did, "collection": POST, "rkey": rkey}),
        );
        assert_eq!(status, 200, "{body}");
    }
    let writes: Vec<Value> = (0..50)
        .map(|i| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post_record(&format!("batch {i}"))}))
        .chain(alice_rkeys[10..12].iter().map(|rkey| {
            json!({"$type": "com.atproto.repo.applyWrites#delete", "collection": POST, "rkey": rkey})
        }))
        .collect();
    let (status, body) = post(
        &server,
        "com.atproto.repo.applyWrites",
        Some(&alice.token),
        json!({"repo": alice.did, "writes": writes}),
    );
    assert_eq!(status, 200, "{body}");

    let accounts = [&alice, &bob];
    let keys: HashMap<String, PublicKey> = accounts
        .iter()
        .map(|a| (a.did.clone(), signing_key(&server, &a.did)))
        .collect();
    let final_revs: HashMap<String, String> = accounts
        .iter()
        .map(|a| (a.did.clone(), latest_rev(&server, &a.did)))
        .collect();

    // From the start of the log until both accounts' latest commits have come.
    let mut socket = subscribe(&server, Some(0));
    let mut reached = HashMap::new();
    let frames = read_until(&mut socket, |frame| {
        if frame.kind() == Some("#commit") {
            let did = string(frame, "repo").unwrap().to_owned();
            let rev = string(frame, "rev").unwrap();
            if final_revs.get(&did).map(String::as_str) == Some(rev) {
                reached.insert(did, ());
            }
        }
        reached.len() == accounts.len()
    });

    let mut repos: HashMap<String, RebuiltRepo> = HashMap::new();
    let mut last_seq = 0;
    let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
    for frame in &frames {
        assert_eq!(frame.op(), Some(1), "no error frames: {frame:?}");
        let seq = frame.seq().expect("every event has a seq");
        assert!(
            seq > last_seq,
            "seqs strictly increase ({last_seq} then {seq})"
        );
        last_seq = seq;
        let kind = frame.kind().unwrap().to_owned();
        let did = match kind.as_str() {
            "#commit" => string(frame, "repo"),
            _ => string(frame, "did"),
        }
        .unwrap()
        .to_owned();
        assert!(
            matches!(frame.get("time"), Some(Ipld::String(t)) if t.ends_with('Z')),
            "{frame:?}"
        );
        kinds.entry(did.clone()).or_default().push(kind.clone());
        if kind == "#commit" {
            apply_commit(frame, repos.entry(did.clone()).or_default(), &keys[&did]);
        }
    }

    // A new account is announced as the reference does: identity, account, commit, sync.
    for account in accounts {
        let seen = &kinds[&account.did];
        assert_eq!(
            &seen[..4],
            ["#identity", "#account", "#commit", "#sync"],
            "{seen:?}"
        );
    }
    let first_account = frames
        .iter()
        .find(|f| f.kind() == Some("#account"))
        .unwrap();
    assert_eq!(first_account.get("active"), Some(&Ipld::Bool(true)));
    let first_identity = frames
        .iter()
        .find(|f| f.kind() == Some("#identity"))
        .unwrap();
    assert_eq!(string(first_identity, "handle"), Some("alice.test"));

    // Each rebuilt repo equals the exported one.
    for account in accounts {
        let rebuilt = &repos[&account.did];
        let car = http()
            .get(server.url(&format!(
                "/xrpc/com.atproto.sync.getRepo?did={}",
                account.did
            )))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        let (roots, _) = decode_car(&car).unwrap();
        let (last_cid, last_commit) = rebuilt.last.as_ref().unwrap();
        assert_eq!(
            roots,
            vec![*last_cid],
            "the stream ends at getRepo's commit"
        );
        let buffer = CarBuffer::parse(car.to_vec(), CarLimits::default()).unwrap();
        let exported = pds_repo::import::verify_car(
            buffer,
            &pds_repo::import::ImportExpectations {
                did: Some(&account.did),
                signing_key: Some(&keys[&account.did]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(exported.commit.data, last_commit.data);
        let exported_records: BTreeMap<String, Cid> = exported.records.into_iter().collect();
        assert_eq!(exported_records, rebuilt.records);
    }
    assert_eq!(repos[&alice.did].commits, 1 + 30 + 5 + 5 + 1);
    assert_eq!(repos[&alice.did].records.len(), 30 - 5 - 2 + 50);
}

/// The record whose commit marks the end of the stream in the handover test.
const END_MARKER: &str = "com.example.test.marker/endmarker";

/// Collects every seq of one subscription up to the commit that writes [`END_MARKER`].
fn collect_seqs(mut socket: Socket) -> Vec<i64> {
    let mut seqs = Vec::new();
    loop {
        let frame = next_frame(&mut socket).expect("the stream ended early");
        assert_eq!(frame.op(), Some(1), "{frame:?}");
        seqs.push(frame.seq().unwrap());
        let Some(Ipld::List(ops)) = frame.get("ops") else {
            continue;
        };
        if ops
            .iter()
            .any(|op| field(op, "path") == Some(&Ipld::String(END_MARKER.to_owned())))
        {
            return seqs;
        }
    }
}

#[test]
fn replay_joins_the_live_stream_with_no_gap_and_no_duplicate_under_writes() {
    let server = Arc::new(TestServer::start());
    let accounts: Vec<Arc<Account>> = (0..3)
        .map(|i| Arc::new(create_account(&server, &format!("writer{i}"))))
        .collect();
    for account in &accounts {
        for i in 0..20 {
            create(&server, account, &format!("before {i}"));
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = accounts
        .iter()
        .map(|account| {
            let (server, account, stop) = (server.clone(), account.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    create(&server, &account, &format!("during {n}"));
                    n += 1;
                }
                n
            })
        })
        .collect();

    // Subscribers join while the writers write: from the start, from a cursor in the middle of
    // the log, and live only.
    let full = {
        let socket = subscribe(&server, Some(0));
        thread::spawn(move || collect_seqs(socket))
    };
    thread::sleep(Duration::from_millis(400));
    let middle_cursor = 30;
    let middle = {
        let socket = subscribe(&server, Some(middle_cursor));
        thread::spawn(move || collect_seqs(socket))
    };
    thread::sleep(Duration::from_millis(400));
    let live = {
        let socket = subscribe(&server, None);
        thread::spawn(move || collect_seqs(socket))
    };
    thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let written: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        written > 10,
        "the writers wrote while subscribers joined ({written})"
    );

    // One last write marks the end of the stream for everyone.
    let (status, body) = post(
        &server,
        "com.atproto.repo.putRecord",
        Some(&accounts[0].token),
        json!({"repo": accounts[0].did, "collection": "com.example.test.marker", "rkey": "endmarker", "record": {"text": "the end"}}),
    );
    assert_eq!(status, 200, "{body}");

    let full = full.join().unwrap();
    let middle = middle.join().unwrap();
    let live = live.join().unwrap();

    // The full stream is every event, in order, each once: seqs 1, 2, 3, ... with no hole (nothing
    // here rolls back, so no seq is skipped).
    let expected: Vec<i64> = (1..=*full.last().unwrap()).collect();
    assert_eq!(full, expected);
    // The others are exact suffixes of it.
    let after_cursor: Vec<i64> = full
        .iter()
        .copied()
        .filter(|s| *s > middle_cursor)
        .collect();
    assert_eq!(middle, after_cursor);
    let start = live.first().copied().unwrap();
    let from_start: Vec<i64> = full.iter().copied().filter(|s| *s >= start).collect();
    assert_eq!(live, from_start);
    assert!(
        start > middle_cursor,
        "the live subscriber started at the head, not the start"
    );
}

#[test]
fn cursor_errors_and_plain_http() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    create(&server, &alice, "one");

    // A cursor ahead of the head: an error frame, then the server closes.
    let mut socket = subscribe(&server, Some(1_000_000));
    let frame = next_frame(&mut socket).expect("an error frame");
    assert_eq!(frame.op(), Some(-1));
    assert_eq!(string(&frame, "error"), Some("FutureCursor"));
    assert!(
        next_frame(&mut socket).is_none(),
        "the stream ends after the error"
    );

    // Not a WebSocket, or a cursor that is not a number: XRPC errors.
    let url = server.url("/xrpc/com.atproto.sync.subscribeRepos");
    let res = http().get(&url).send().unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().unwrap();
    assert_eq!(body["error"], "InvalidRequest", "{body}");
    let res = http().get(format!("{url}?cursor=abc")).send().unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // The stream keeps going for well-behaved subscribers.
    let mut socket = subscribe(&server, Some(0));
    let first = next_frame(&mut socket).unwrap();
    assert_eq!(first.seq(), Some(1));
}

#[test]
fn handle_changes_and_deletions_are_announced() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    let bob = create_account(&server, "bob");
    create(&server, &alice, "alice was here");
    create(&server, &bob, "bob stays");

    let mut socket = subscribe(&server, None);
    let (status, body) = post(
        &server,
        "com.atproto.identity.updateHandle",
        Some(&alice.token),
        json!({"handle": "alice2.test"}),
    );
    assert_eq!(status, 200, "{body}");
    let frame = next_frame_where(&mut socket, |f| f.kind() != Some("#commit"));
    assert_eq!(frame.kind(), Some("#identity"));
    assert_eq!(string(&frame, "did"), Some(alice.did.as_str()));
    assert_eq!(string(&frame, "handle"), Some("alice2.test"));

    let (status, body) = post(
        &server,
        "com.atproto.server.requestAccountDelete",
        Some(&alice.token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let token = deletion_code(&server, &alice.email);
    let (status, body) = post(
        &server,
        "com.atproto.server.deleteAccount",
        None,
        json!({"did": alice.did, "password": PASSWORD, "token": token}),
    );
    assert_eq!(status, 200, "{body}");
    let frame = next_frame(&mut socket).unwrap();
    assert_eq!(frame.kind(), Some("#account"));
    assert_eq!(string(&frame, "did"), Some(alice.did.as_str()));
    assert_eq!(frame.get("active"), Some(&Ipld::Bool(false)));
    assert_eq!(string(&frame, "status"), Some("deleted"));
    let deleted_at = frame.seq().unwrap();

    // Replayed from the start, the deleted account's earlier events are gone; bob's remain.
    let mut replay = subscribe(&server, Some(0));
    let started = Instant::now();
    let frames = read_until(&mut replay, |f| f.seq() == Some(deleted_at));
    assert!(started.elapsed() < Duration::from_secs(10));
    let about = |f: &DecodedFrame| {
        string(f, "repo")
            .or_else(|| string(f, "did"))
            .unwrap()
            .to_owned()
    };
    let alices: Vec<&DecodedFrame> = frames.iter().filter(|f| about(f) == alice.did).collect();
    assert_eq!(alices.len(), 1, "only the deletion is left of alice");
    assert_eq!(alices[0].kind(), Some("#account"));
    assert!(frames.iter().filter(|f| about(f) == bob.did).count() >= 5);
}

#[test]
fn deactivation_and_activation_are_announced() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    create(&server, &alice, "before the pause");
    let head_rev = latest_rev(&server, &alice.did);
    let mut socket = subscribe(&server, None);

    let (status, body) = post(
        &server,
        "com.atproto.server.deactivateAccount",
        Some(&alice.token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let frame = next_frame_where(&mut socket, |f| f.kind() != Some("#commit"));
    assert_eq!(frame.kind(), Some("#account"));
    assert_eq!(frame.get("active"), Some(&Ipld::Bool(false)));
    assert_eq!(string(&frame, "status"), Some("deactivated"));

    // Deactivated: not served to others, not writable.
    let res = http()
        .get(server.url(&format!("/xrpc/com.atproto.sync.getRepo?did={}", alice.did)))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.json::<Value>().unwrap()["error"], "RepoDeactivated");
    let (status, body) = post(
        &server,
        "com.atproto.repo.createRecord",
        Some(&alice.token),
        json!({"repo": alice.did, "collection": POST, "record": post_record("during the pause")}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("AccountDeactivated"))
    );

    // Back: identity, account and sync events, and the repo is served again.
    let (status, body) = post(
        &server,
        "com.atproto.server.activateAccount",
        Some(&alice.token),
        json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let frames: Vec<DecodedFrame> = (0..3).map(|_| next_frame(&mut socket).unwrap()).collect();
    let kinds: Vec<&str> = frames.iter().map(|f| f.kind().unwrap()).collect();
    assert_eq!(kinds, ["#identity", "#account", "#sync"]);
    assert_eq!(string(&frames[0], "handle"), Some("alice.test"));
    assert_eq!(frames[1].get("active"), Some(&Ipld::Bool(true)));
    assert_eq!(string(&frames[2], "rev"), Some(head_rev.as_str()));
    let Some(Ipld::Bytes(car)) = frames[2].get("blocks") else {
        panic!("#sync without blocks")
    };
    let (roots, blocks) = decode_car(car).unwrap();
    assert_eq!(blocks.len(), 1, "a #sync carries the commit block alone");
    assert_eq!(roots[0], blocks[0].0);
    let commit = Commit::from_block(&blocks[0].0, &blocks[0].1).unwrap();
    commit
        .verify(&signing_key(&server, &alice.did))
        .expect("the announced commit is the account's");
    let res = http()
        .get(server.url(&format!("/xrpc/com.atproto.sync.getRepo?did={}", alice.did)))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    create(&server, &alice, "after the pause");
}

#[test]
fn shutdown_ends_the_streams_promptly() {
    let server = TestServer::start();
    let alice = create_account(&server, "alice");
    create(&server, &alice, "hello");
    let mut socket = subscribe(&server, None);
    let started = Instant::now();
    let (status, _dir) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an open subscription held the shutdown for {:?}",
        started.elapsed()
    );
    // The stream ends cleanly (a close, not a reset), after at most the event written just
    // before subscribing, which the hub may not have handed out yet when the subscription began.
    let mut frames = 0;
    while next_frame(&mut socket).is_some() {
        frames += 1;
        assert!(frames <= 1, "the stream was not closed");
    }
}
