//! Read-only questions about a committed tree, answered from its blocks: lookups, ordered
//! listing, the proof blocks for a key, and a full walk that checks the tree is canonical.

use cid::Cid;

use super::{DecodedNode, decode_node, key_height};
use crate::{BlockSource, RepoError, Result};

/// The deepest tree we accept: heights come from 256-bit hashes in 2-bit steps.
const MAX_LAYER: u32 = 128;

fn load(store: &dyn BlockSource, cid: &Cid) -> Result<DecodedNode> {
    decode_node(cid, &store.require_block(cid)?)
}

/// The layer of the node `cid`: the height of its keys, or one above its left child if it has
/// none (only the empty root has neither).
pub fn node_layer(store: &dyn BlockSource, cid: &Cid) -> Result<u32> {
    let mut cid = *cid;
    let mut depth = 0u32;
    loop {
        let node = load(store, &cid)?;
        if let Some(first) = node.entries.first() {
            return Ok(key_height(first.key.as_bytes()) + depth);
        }
        match node.left {
            Some(left) if depth < MAX_LAYER => {
                cid = left;
                depth += 1;
            }
            Some(_) => {
                return Err(RepoError::InvalidMst(
                    "tree deeper than any key height".into(),
                ));
            }
            None => return Ok(depth),
        }
    }
}

/// The value under `key` in the tree rooted at `root`.
pub fn get(store: &dyn BlockSource, root: &Cid, key: &str) -> Result<Option<Cid>> {
    Ok(search_path(store, root, key)?.1)
}

/// The node CIDs visited searching for `key` from the root, and the key's value if found.
fn search_path(store: &dyn BlockSource, root: &Cid, key: &str) -> Result<(Vec<Cid>, Option<Cid>)> {
    let mut path = Vec::new();
    let mut next = Some(*root);
    while let Some(cid) = next {
        if path.len() > MAX_LAYER as usize {
            return Err(RepoError::InvalidMst(
                "tree deeper than any key height".into(),
            ));
        }
        path.push(cid);
        let node = load(store, &cid)?;
        let i = node.entries.partition_point(|e| e.key.as_str() < key);
        if let Some(entry) = node.entries.get(i)
            && entry.key == key
        {
            return Ok((path, Some(entry.value)));
        }
        next = if i == 0 {
            node.left
        } else {
            node.entries[i - 1].right
        };
    }
    Ok((path, None))
}

/// Entries with `after < key < before`, in key order (or reverse), at most `limit` of them.
pub fn list(
    store: &dyn BlockSource,
    root: &Cid,
    after: Option<&str>,
    before: Option<&str>,
    reverse: bool,
    limit: usize,
) -> Result<Vec<(String, Cid)>> {
    let mut out = Vec::new();
    if limit > 0 {
        list_node(store, root, after, before, reverse, limit, &mut out, 0)?;
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn list_node(
    store: &dyn BlockSource,
    cid: &Cid,
    after: Option<&str>,
    before: Option<&str>,
    reverse: bool,
    limit: usize,
    out: &mut Vec<(String, Cid)>,
    depth: u32,
) -> Result<()> {
    if depth > MAX_LAYER {
        return Err(RepoError::InvalidMst(
            "tree deeper than any key height".into(),
        ));
    }
    let node = load(store, cid)?;
    let n = node.entries.len();
    let gap = |i: usize| {
        if i == 0 {
            node.left
        } else {
            node.entries[i - 1].right
        }
    };
    // The gap before entry i spans (key[i-1], key[i]); visit it only if that overlaps the range.
    let gap_in_range = |i: usize| {
        let lo = if i == 0 {
            None
        } else {
            Some(node.entries[i - 1].key.as_str())
        };
        let hi = node.entries.get(i).map(|e| e.key.as_str());
        let above_after = match (hi, after) {
            (Some(hi), Some(after)) => hi > after,
            _ => true,
        };
        let below_before = match (lo, before) {
            (Some(lo), Some(before)) => lo < before,
            _ => true,
        };
        above_after && below_before
    };
    let key_in_range = |key: &str| after.is_none_or(|a| key > a) && before.is_none_or(|b| key < b);
    let order: Box<dyn Iterator<Item = usize>> = if reverse {
        Box::new((0..=n).rev())
    } else {
        Box::new(0..=n)
    };
    for i in order {
        // In forward order the gap before entry i comes first; in reverse, entry i comes first.
        if reverse && i < n && key_in_range(&node.entries[i].key) {
            out.push((node.entries[i].key.clone(), node.entries[i].value));
        }
        if out.len() >= limit {
            return Ok(());
        }
        if let Some(sub) = gap(i)
            && gap_in_range(i)
        {
            list_node(store, &sub, after, before, reverse, limit, out, depth + 1)?;
        }
        if out.len() >= limit {
            return Ok(());
        }
        if !reverse && i < n && key_in_range(&node.entries[i].key) {
            out.push((node.entries[i].key.clone(), node.entries[i].value));
        }
        if out.len() >= limit {
            return Ok(());
        }
    }
    Ok(())
}

/// The node CIDs that prove `key`'s presence (its value) or absence in the tree, and that let a
/// consumer undo a write of `key`: the search paths to the key and to its nearest neighbours on
/// each side. This is the "covering proof" firehose `#commit` events carry for each op.
pub fn covering_proof(store: &dyn BlockSource, root: &Cid, key: &str) -> Result<Vec<Cid>> {
    let mut cids = search_path(store, root, key)?.0;
    if let Some((left, _)) = list(store, root, None, Some(key), true, 1)?.pop() {
        cids.extend(search_path(store, root, &left)?.0);
    }
    if let Some((right, _)) = list(store, root, Some(key), None, false, 1)?.pop() {
        cids.extend(search_path(store, root, &right)?.0);
    }
    cids.sort_unstable();
    cids.dedup();
    Ok(cids)
}

/// One step of [`walk`].
pub enum WalkItem<'a> {
    /// An MST node block, before anything below it.
    Node { cid: &'a Cid, bytes: &'a [u8] },
    /// A key and its value, in key order.
    Leaf { key: &'a str, value: &'a Cid },
}

/// Walks the whole tree depth-first in key order (each node before its contents), checking on
/// the way that it is the one canonical tree for its keys: every key on its node's layer, keys
/// in order across nodes, no empty node except an empty root, the root on the highest layer.
/// Returns the number of keys.
pub fn walk(
    store: &dyn BlockSource,
    root: &Cid,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<()>,
) -> Result<u64> {
    Walker {
        store,
        visit,
        checked: true,
        last_key: String::new(),
        count: 0,
    }
    .run(root)
}

/// Like [`walk`] without the canonical-shape checks (a sha256 per key), for trees this server
/// built or already verified, such as its own repos on export.
pub fn walk_trusted(
    store: &dyn BlockSource,
    root: &Cid,
    visit: &mut dyn FnMut(WalkItem<'_>) -> Result<()>,
) -> Result<u64> {
    Walker {
        store,
        visit,
        checked: false,
        last_key: String::new(),
        count: 0,
    }
    .run(root)
}

struct Walker<'a, 'v> {
    store: &'a dyn BlockSource,
    visit: &'v mut dyn FnMut(WalkItem<'_>) -> Result<()>,
    checked: bool,
    /// The previous key in walk order, in one reused buffer.
    last_key: String,
    count: u64,
}

impl Walker<'_, '_> {
    fn run(mut self, root: &Cid) -> Result<u64> {
        let bytes = self.store.require_block(root)?;
        let node = decode_node(root, &bytes)?;
        let layer = match (node.entries.first(), node.left) {
            (Some(first), _) => key_height(first.key.as_bytes()),
            (None, None) => 0,
            (None, Some(_)) => {
                return Err(RepoError::InvalidMst(
                    "root node has no keys but a subtree".into(),
                ));
            }
        };
        self.node(root, &bytes, node, layer, true)?;
        Ok(self.count)
    }

    fn node(
        &mut self,
        cid: &Cid,
        bytes: &[u8],
        node: DecodedNode,
        layer: u32,
        is_root: bool,
    ) -> Result<()> {
        if !is_root && node.entries.is_empty() && node.left.is_none() {
            return Err(RepoError::InvalidMst(format!(
                "empty node {cid} inside the tree"
            )));
        }
        (self.visit)(WalkItem::Node { cid, bytes })?;
        self.child(cid, node.left, layer)?;
        for entry in &node.entries {
            if self.checked {
                let height = key_height(entry.key.as_bytes());
                if height != layer {
                    return Err(RepoError::InvalidMst(format!(
                        "key {:?} of height {height} is in a node on layer {layer}",
                        entry.key
                    )));
                }
                if self.count > 0 && entry.key.as_str() <= self.last_key.as_str() {
                    return Err(RepoError::InvalidMst(format!(
                        "key {:?} is out of order",
                        entry.key
                    )));
                }
                self.last_key.clear();
                self.last_key.push_str(&entry.key);
            }
            self.count += 1;
            (self.visit)(WalkItem::Leaf {
                key: &entry.key,
                value: &entry.value,
            })?;
            self.child(cid, entry.right, layer)?;
        }
        Ok(())
    }

    /// Walks the subtree `child` of the node `parent` on `layer`, if there is one.
    fn child(&mut self, parent: &Cid, child: Option<Cid>, layer: u32) -> Result<()> {
        let Some(child) = child else { return Ok(()) };
        let Some(sub_layer) = layer.checked_sub(1) else {
            return Err(RepoError::InvalidMst(format!(
                "node {parent} on layer 0 has a subtree"
            )));
        };
        let bytes = self.store.require_block(&child)?;
        let node = decode_node(&child, &bytes)?;
        self.node(&child, &bytes, node, sub_layer, false)
    }
}
