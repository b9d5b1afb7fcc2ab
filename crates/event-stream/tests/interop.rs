//! The community's commit-proof fixtures (`firehose/commit-proof-fixtures.json` in
//! `../shared/interop-tests`, or `$ATPROTO_INTEROP_TESTS`), carried through a `#commit` frame:
//! for each fixture's commit, the frame's `blocks` hold every block the fixture says a proof
//! needs, and a consumer holding only the frame can invert the ops back to `prevData`, which is
//! the fixture's root before the commit.

use pds_crypto::{Algorithm, Keypair};
use pds_event_stream::{EventBody, decode_frame};
use pds_ipld::{Cid, Ipld};
use pds_repo::mst::{Mst, read};
use pds_repo::{
    BlockSource, CommitData, MemoryBlocks, Overlay, RepoOp, UnsignedCommit, WriteAction,
};
use pds_syntax::TidClock;
use serde_json::Value;

const DID: &str = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw";

fn cid(value: &Value) -> Cid {
    value.as_str().unwrap().parse().unwrap()
}

fn strings(fixture: &Value, field: &str) -> Vec<String> {
    fixture[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The commit that applies the fixture's adds and dels to the tree of its keys, as
/// `pds_repo::Repo::apply_writes` describes one: new blocks (nodes and the signed commit),
/// the covering proofs of the touched keys, and the ops. The fixture's paths are not
/// `collection/rkey` record paths, so the tree is driven directly.
fn fixture_commit(fixture: &Value, key: &Keypair) -> CommitData {
    let leaf = cid(&fixture["leafValue"]);
    let (keys, adds, dels) = (
        strings(fixture, "keys"),
        strings(fixture, "adds"),
        strings(fixture, "dels"),
    );
    let mut store = MemoryBlocks::new();
    let mut mst = Mst::new();
    for k in &keys {
        mst.insert(&store, k, leaf).unwrap();
    }
    let before = mst.commit().unwrap();
    store.extend(before.new_blocks);

    let mut ops = Vec::new();
    for path in &adds {
        assert_eq!(mst.insert(&store, path, leaf).unwrap(), None);
        ops.push(RepoOp {
            action: WriteAction::Create,
            path: path.clone(),
            cid: Some(leaf),
            prev: None,
        });
    }
    for path in &dels {
        assert_eq!(mst.delete(&store, path).unwrap(), Some(leaf));
        ops.push(RepoOp {
            action: WriteAction::Delete,
            path: path.clone(),
            cid: None,
            prev: Some(leaf),
        });
    }
    let after = mst.commit().unwrap();
    let clock = TidClock::new();
    let since = clock.next_after(None);
    let rev = clock.next_after(Some(&since));
    let commit = UnsignedCommit::new(DID, after.root, rev.as_str())
        .sign(key)
        .unwrap();
    let (commit_cid, commit_bytes) = commit.to_block().unwrap();
    let mut new_blocks = after.new_blocks;
    new_blocks.push((commit_cid, commit_bytes));

    let fresh: MemoryBlocks = new_blocks.iter().cloned().collect();
    let view = Overlay {
        top: &fresh,
        base: &store,
    };
    let mut proof_blocks = Vec::new();
    for op in &ops {
        for c in read::covering_proof(&view, &after.root, &op.path).unwrap() {
            if !fresh.contains(&c) && !proof_blocks.iter().any(|(p, _)| *p == c) {
                proof_blocks.push((c, store.require_block(&c).unwrap().into_owned()));
            }
        }
    }
    CommitData {
        did: DID.to_owned(),
        commit_cid,
        rev: rev.to_string(),
        since: Some(since.to_string()),
        data: after.root,
        prev_data: Some(before.root),
        new_blocks,
        removed_cids: Vec::new(),
        released_records: Vec::new(),
        proof_blocks,
        ops,
    }
}

fn link(value: Option<&Ipld>) -> Cid {
    match value {
        Some(Ipld::Link(cid)) => *cid,
        other => panic!("not a link: {other:?}"),
    }
}

#[test]
fn commit_proof_fixtures_through_a_commit_frame() {
    let fixtures = pds_interop_vectors::json_array("firehose/commit-proof-fixtures.json");
    let key = Keypair::generate(Algorithm::K256);
    for fixture in &fixtures {
        let name = fixture["comment"].as_str().unwrap();
        let data = fixture_commit(fixture, &key);
        assert_eq!(
            data.data,
            cid(&fixture["rootAfterCommit"]),
            "{name}: root after"
        );

        let frame = EventBody::for_commit(&data, &[])
            .unwrap()
            .encode(1, "2024-05-01T12:34:56.789Z")
            .unwrap();
        let decoded = decode_frame(frame.bytes()).unwrap();
        assert_eq!(decoded.kind(), Some("#commit"), "{name}");
        let prev_data = link(decoded.get("prevData"));
        assert_eq!(
            prev_data,
            cid(&fixture["rootBeforeCommit"]),
            "{name}: prevData"
        );

        // Only what the frame carries from here on.
        let Some(Ipld::Bytes(car)) = decoded.get("blocks") else {
            panic!("{name}: blocks")
        };
        let (roots, blocks) = pds_ipld::decode_car(car).unwrap();
        assert_eq!(roots, [link(decoded.get("commit"))], "{name}: CAR root");
        let blocks: MemoryBlocks = blocks.into_iter().collect();
        for required in fixture["blocksInProof"].as_array().unwrap() {
            assert!(
                blocks.contains(&cid(required)),
                "{name}: blocks lack {required}"
            );
        }
        let commit =
            pds_repo::Commit::from_block(&roots[0], blocks.get(&roots[0]).unwrap()).unwrap();
        commit.verify(&key.public_key()).unwrap();

        let Some(Ipld::List(ops)) = decoded.get("ops") else {
            panic!("{name}: ops")
        };
        let mut tree = Mst::load(commit.data);
        for op in ops.iter().rev() {
            let Ipld::Map(op) = op else {
                panic!("{name}: op")
            };
            let Some(Ipld::String(path)) = op.get("path") else {
                panic!("{name}: path")
            };
            match op.get("prev") {
                Some(prev) => tree.insert(&blocks, path, link(Some(prev))).unwrap(),
                None => tree
                    .delete(&blocks, path)
                    .unwrap_or_else(|e| panic!("{name}: undo create {path}: {e}")),
            };
        }
        assert_eq!(tree.commit().unwrap().root, prev_data, "{name}: inverted");
    }
}
