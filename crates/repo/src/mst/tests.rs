//! Property tests of the tree against a `BTreeMap` model.

use std::collections::{BTreeMap, HashSet};

use cid::Cid;
use proptest::prelude::*;

use super::diff::diff;
use super::read::{self, WalkItem};
use super::*;
use crate::MemoryBlocks;

fn key(i: u16) -> String {
    // A mix of shared prefixes and lengths, like real repo paths.
    match i % 3 {
        0 => format!("app.bsky.feed.post/3k{i:05}"),
        1 => format!("app.bsky.feed.like/{i}"),
        _ => format!(
            "com.example.thing/{:x}",
            u32::from(i).wrapping_mul(2654435761)
        ),
    }
}

fn value(i: u8) -> Cid {
    pds_ipld::cid_for_cbor(&[0x61, i])
}

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u8),
    Delete(u16),
}

fn ops(max_key: u16, len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0..max_key, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            1 => (0..max_key).prop_map(Op::Delete),
        ],
        0..len,
    )
}

/// Applies ops to a tree (committing into `store` every `commit_every` ops) and to a model.
fn apply(
    ops: &[Op],
    mst: &mut Mst,
    store: &mut MemoryBlocks,
    model: &mut BTreeMap<String, Cid>,
    commit_every: usize,
) {
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Put(k, v) => {
                let prev = mst.insert(store, &key(k), value(v)).unwrap();
                assert_eq!(prev, model.insert(key(k), value(v)));
            }
            Op::Delete(k) => {
                let prev = mst.delete(store, &key(k)).unwrap();
                assert_eq!(prev, model.remove(&key(k)));
            }
        }
        if commit_every > 0 && n % commit_every == 0 {
            store.extend(mst.commit().unwrap().new_blocks);
        }
    }
    store.extend(mst.commit().unwrap().new_blocks);
}

fn bulk_root(model: &BTreeMap<String, Cid>) -> Cid {
    let entries = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
    Mst::from_entries(entries).unwrap().commit().unwrap().root
}

fn node_set(store: &MemoryBlocks, root: &Cid) -> HashSet<Cid> {
    let mut nodes = HashSet::new();
    read::walk(store, root, &mut |item| {
        if let WalkItem::Node { cid, .. } = item {
            nodes.insert(*cid);
        }
        Ok(())
    })
    .unwrap();
    nodes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The root depends only on the final contents, not on the order of inserts and deletes or
    /// on when the tree was committed and reloaded.
    #[test]
    fn root_is_canonical(ops in ops(400, 600), commit_every in 0usize..50) {
        let mut store = MemoryBlocks::new();
        let mut mst = Mst::new();
        let mut model = BTreeMap::new();
        apply(&ops, &mut mst, &mut store, &mut model, commit_every);
        let root = mst.root_cid().unwrap();
        prop_assert_eq!(root, bulk_root(&model));

        // Reloaded from blocks, it reads back exactly the model and passes the canonical walk.
        let mut leaves = Vec::new();
        let count = read::walk(&store, &root, &mut |item| {
            if let WalkItem::Leaf { key, value } = item {
                leaves.push((key.to_owned(), *value));
            }
            Ok(())
        }).unwrap();
        prop_assert_eq!(count as usize, model.len());
        prop_assert_eq!(leaves, model.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());
        let mut reloaded = Mst::load(root);
        for (k, v) in &model {
            prop_assert_eq!(reloaded.get(&store, k).unwrap(), Some(*v));
            prop_assert_eq!(read::get(&store, &root, k).unwrap(), Some(*v));
        }
        prop_assert_eq!(read::get(&store, &root, "zzz/absent").unwrap(), None);
    }

    /// Removing every key in any order ends in the empty tree.
    #[test]
    fn delete_everything(keys in prop::collection::btree_set(0u16..2000, 0..300), seed in any::<u64>()) {
        let mut store = MemoryBlocks::new();
        let mut mst = Mst::new();
        for &k in &keys {
            mst.insert(&store, &key(k), value(1)).unwrap();
        }
        store.extend(mst.commit().unwrap().new_blocks);
        let mut order: Vec<u16> = keys.iter().copied().collect();
        // A cheap deterministic shuffle.
        let mut s = seed | 1;
        for i in (1..order.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        for k in order {
            prop_assert_eq!(mst.delete(&store, &key(k)).unwrap(), Some(value(1)));
        }
        prop_assert_eq!(mst.commit().unwrap().root, Mst::new().commit().unwrap().root);
    }

    /// diff(a, b) lists exactly the changed keys, and applying it to a gives b.
    #[test]
    fn diff_applied_gives_target(base in ops(300, 300), change in ops(300, 60)) {
        let mut store = MemoryBlocks::new();
        let mut mst = Mst::new();
        let mut model = BTreeMap::new();
        apply(&base, &mut mst, &mut store, &mut model, 0);
        let a = mst.root_cid().unwrap();
        let model_a = model.clone();
        apply(&change, &mut mst, &mut store, &mut model, 0);
        let b = mst.root_cid().unwrap();

        let d = diff(&store, Some(&a), Some(&b)).unwrap();
        let mut patched = model_a.clone();
        let mut replay = Mst::load(a);
        for c in &d.changes {
            prop_assert_eq!(model_a.get(&c.key).copied(), c.old);
            match c.new {
                Some(v) => { patched.insert(c.key.clone(), v); replay.insert(&store, &c.key, v).unwrap(); }
                None => { patched.remove(&c.key); replay.delete(&store, &c.key).unwrap(); }
            }
        }
        prop_assert_eq!(&patched, &model);
        prop_assert_eq!(replay.commit().unwrap().root, b);

        let nodes_a = node_set(&store, &a);
        let nodes_b = node_set(&store, &b);
        let new: HashSet<Cid> = d.new_nodes.iter().copied().collect();
        let removed: HashSet<Cid> = d.removed_nodes.iter().copied().collect();
        prop_assert_eq!(new, nodes_b.difference(&nodes_a).copied().collect::<HashSet<_>>());
        prop_assert_eq!(removed, nodes_a.difference(&nodes_b).copied().collect::<HashSet<_>>());
    }

    /// Range listing matches the model in both directions.
    #[test]
    fn list_matches_model(
        ops in ops(300, 300),
        after in prop::option::of(0u16..300),
        before in prop::option::of(0u16..300),
        reverse in any::<bool>(),
        limit in 1usize..80,
    ) {
        let mut store = MemoryBlocks::new();
        let mut mst = Mst::new();
        let mut model = BTreeMap::new();
        apply(&ops, &mut mst, &mut store, &mut model, 0);
        let root = mst.root_cid().unwrap();
        let (after, before) = (after.map(key), before.map(key));
        let got = read::list(&store, &root, after.as_deref(), before.as_deref(), reverse, limit).unwrap();
        let in_range = model.iter().filter(|(k, _)| {
            after.as_ref().is_none_or(|a| *k > a) && before.as_ref().is_none_or(|b| *k < b)
        }).map(|(k, v)| (k.clone(), *v));
        let expected: Vec<_> = if reverse {
            in_range.rev().take(limit).collect()
        } else {
            in_range.take(limit).collect()
        };
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn empty_tree_root_is_the_known_empty_node() {
    // The empty node `{e: [], l: null}`.
    let root = Mst::new().commit().unwrap().root;
    assert_eq!(
        root.to_string(),
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    );
}

#[test]
fn committing_twice_writes_nothing_new() {
    let mut mst = Mst::new();
    let store = MemoryBlocks::new();
    mst.insert(&store, "com.example.a/1", value(1)).unwrap();
    assert!(!mst.commit().unwrap().new_blocks.is_empty());
    assert!(mst.commit().unwrap().new_blocks.is_empty());
}

#[test]
fn walk_rejects_a_key_on_the_wrong_layer() {
    // Find a key of height 0 and one of height >= 1, then put the high one in a layer-0 node
    // next to the low one: structurally sorted, but not the canonical tree.
    let low = (0..)
        .map(key)
        .find(|k| key_height(k.as_bytes()) == 0)
        .unwrap();
    let high = (0..)
        .map(key)
        .find(|k| key_height(k.as_bytes()) >= 1)
        .unwrap();
    let (a, b) = if low < high { (low, high) } else { (high, low) };
    let bytes = encode_node(
        None,
        &[(a.as_str(), value(1), None), (b.as_str(), value(1), None)],
    )
    .unwrap();
    let cid = pds_ipld::cid_for_cbor(&bytes);
    let store: MemoryBlocks = [(cid, bytes)].into_iter().collect();
    let err = read::walk(&store, &cid, &mut |_| Ok(())).unwrap_err();
    assert!(matches!(err, RepoError::InvalidMst(_)), "{err}");
}

#[test]
fn walk_rejects_an_empty_inner_node() {
    let empty = encode_node(None, &[]).unwrap();
    let empty_cid = pds_ipld::cid_for_cbor(&empty);
    let high = (0..)
        .map(key)
        .find(|k| key_height(k.as_bytes()) == 1)
        .unwrap();
    let root = encode_node(Some(empty_cid), &[(high.as_str(), value(1), None)]).unwrap();
    let root_cid = pds_ipld::cid_for_cbor(&root);
    let store: MemoryBlocks = [(empty_cid, empty), (root_cid, root)].into_iter().collect();
    assert!(read::walk(&store, &root_cid, &mut |_| Ok(())).is_err());
}

#[test]
fn decode_rejects_unsorted_and_bad_prefixes() {
    let bytes = encode_node(None, &[("b/1", value(1), None), ("a/1", value(1), None)]).unwrap();
    let cid = pds_ipld::cid_for_cbor(&bytes);
    assert!(decode_node(&cid, &bytes).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Corrupted node bytes never panic the decoder, and whatever it accepts re-encodes to the
    /// very same bytes: only the canonical encoding gets through.
    #[test]
    fn node_decoder_accepts_only_canonical_bytes(
        keys in prop::collection::btree_set(0u16..500, 1..12),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut entries: Vec<(String, Cid, Option<Cid>)> =
            keys.iter().map(|&k| (key(k), value(k as u8), (k % 3 == 0).then(|| value(1)))).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let refs: Vec<(&str, Cid, Option<Cid>)> = entries.iter().map(|(k, v, t)| (k.as_str(), *v, *t)).collect();
        let mut bytes = encode_node(Some(value(9)), &refs).unwrap();
        let cid = pds_ipld::cid_for_cbor(&bytes);
        let good = decode_node(&cid, &bytes).unwrap();
        prop_assert_eq!(good.entries.len(), entries.len());
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(node) = decode_node(&cid, &bytes) {
            let refs: Vec<(&str, Cid, Option<Cid>)> =
                node.entries.iter().map(|e| (e.key.as_str(), e.value, e.right)).collect();
            prop_assert_eq!(encode_node(node.left, &refs).unwrap(), bytes);
        }
    }
}
