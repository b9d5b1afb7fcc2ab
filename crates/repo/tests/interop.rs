//! The community's MST and commit-proof vectors (`../shared/interop-tests`, or
//! `$ATPROTO_INTEROP_TESTS`): key heights, common prefixes, and for each commit fixture the root
//! CIDs before and after, the blocks the commit must carry, and that those blocks alone let a
//! consumer undo the commit in any order.

use pds_repo::mst::{Mst, common_prefix_len, key_height, read};
use pds_repo::{BlockSource, Cid, MemoryBlocks};
use serde_json::Value;

fn read_json(rel: &str) -> Value {
    Value::Array(pds_interop_vectors::json_array(rel))
}

fn cid(s: &Value) -> Cid {
    s.as_str().unwrap().parse().unwrap()
}

#[test]
fn key_heights() {
    let cases = read_json("mst/key_heights.json");
    let cases = cases.as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let key = case["key"].as_str().unwrap();
        assert_eq!(
            key_height(key.as_bytes()) as u64,
            case["height"].as_u64().unwrap(),
            "key {key:?}"
        );
    }
}

#[test]
fn example_keys_encode_their_height() {
    // The example keys are named `<letter><height>/<digits>`.
    let keys = pds_interop_vectors::lines("mst/example_keys.txt");
    assert!(keys.len() > 100);
    for key in &keys {
        let expected: u32 = key[1..2].parse().unwrap();
        assert_eq!(key_height(key.as_bytes()), expected, "key {key:?}");
    }
}

#[test]
fn common_prefixes() {
    let cases = read_json("mst/common_prefix.json");
    for case in cases.as_array().unwrap() {
        let (l, r) = (
            case["left"].as_str().unwrap(),
            case["right"].as_str().unwrap(),
        );
        assert_eq!(
            common_prefix_len(l.as_bytes(), r.as_bytes()) as u64,
            case["len"].as_u64().unwrap(),
            "{l:?} {r:?}"
        );
    }
}

fn store_commit(mst: &mut Mst, store: &mut MemoryBlocks) -> Cid {
    let commit = mst.commit().unwrap();
    store.extend(commit.new_blocks);
    commit.root
}

#[test]
fn commit_proof_fixtures() {
    let fixtures = read_json("firehose/commit-proof-fixtures.json");
    let fixtures = fixtures.as_array().unwrap();
    assert!(!fixtures.is_empty());
    for fixture in fixtures {
        let name = fixture["comment"].as_str().unwrap();
        let leaf = cid(&fixture["leafValue"]);
        let strings = |field: &str| -> Vec<String> {
            fixture[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let (keys, adds, dels) = (strings("keys"), strings("adds"), strings("dels"));

        // Incremental inserts reach the expected root.
        let mut store = MemoryBlocks::new();
        let mut mst = Mst::new();
        for key in &keys {
            mst.insert(&store, key, leaf).unwrap();
        }
        let before = store_commit(&mut mst, &mut store);
        assert_eq!(
            before,
            cid(&fixture["rootBeforeCommit"]),
            "{name}: root before"
        );
        // So does building the tree in one pass.
        let mut bulk = Mst::from_entries(keys.iter().map(|k| (k.clone(), leaf)).collect()).unwrap();
        assert_eq!(bulk.commit().unwrap().root, before, "{name}: bulk build");

        for key in &adds {
            mst.insert(&store, key, leaf).unwrap();
        }
        for key in &dels {
            assert_eq!(
                mst.delete(&store, key).unwrap(),
                Some(leaf),
                "{name}: delete {key}"
            );
        }
        let after = store_commit(&mut mst, &mut store);
        assert_eq!(
            after,
            cid(&fixture["rootAfterCommit"]),
            "{name}: root after"
        );

        // The covering proofs of the touched keys hold every block the fixture requires...
        let mut proof = MemoryBlocks::new();
        for key in adds.iter().chain(&dels) {
            for c in read::covering_proof(&store, &after, key).unwrap() {
                proof.insert(c, store.require_block(&c).unwrap().into_owned());
            }
        }
        for required in fixture["blocksInProof"].as_array().unwrap() {
            assert!(
                proof.contains(&cid(required)),
                "{name}: proof lacks {required}"
            );
        }

        // ...and are enough to invert the commit, whatever the order of the inverse ops.
        let inverse: Vec<(bool, &String)> = adds
            .iter()
            .map(|k| (true, k))
            .chain(dels.iter().map(|k| (false, k)))
            .collect();
        for order in permutations(inverse.len()) {
            let mut inverted = Mst::load(after);
            for &i in &order {
                let (was_add, key) = inverse[i];
                if was_add {
                    inverted
                        .delete(&proof, key)
                        .unwrap_or_else(|e| panic!("{name}: undo add {key}: {e}"));
                } else {
                    inverted
                        .insert(&proof, key, leaf)
                        .unwrap_or_else(|e| panic!("{name}: undo del {key}: {e}"));
                }
            }
            assert_eq!(
                inverted.commit().unwrap().root,
                before,
                "{name}: inverted in order {order:?}"
            );
        }
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for perm in permutations(n - 1) {
        for pos in 0..=perm.len() {
            let mut p = perm.clone();
            p.insert(pos, n - 1);
            out.push(p);
        }
    }
    out
}
