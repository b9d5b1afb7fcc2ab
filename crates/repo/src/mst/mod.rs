//! The Merkle Search Tree: the ordered map from `collection/rkey` to record CID at the heart of a
//! repository.
//!
//! The tree's shape is a pure function of its set of keys: every key lives on the layer given by
//! [`key_height`]; a node on layer `L` holds, in order, the keys of height `L` in its range, and
//! the gaps between them are subtrees on layer `L - 1` (absent when the gap has no keys). The root
//! is on the layer of the highest key; an empty tree is a single empty node. Because the shape is
//! canonical, two trees with the same contents have the same root CID, which is what lets every
//! implementation agree.
//!
//! [`Mst`] is the mutable, lazily loaded form used to apply writes: only the nodes on the paths
//! that change are read from the block store, and only changed nodes are re-encoded by
//! [`Mst::commit`]. Read-only questions about a committed tree (listing, proofs, diffs, structure
//! checks) are answered from blocks by the functions in [`read`] and [`diff`].

pub mod diff;
mod node;
pub mod read;

pub use node::{
    DecodedEntry, DecodedNode, common_prefix_len, decode_node, encode_node, key_height,
};

use cid::Cid;

use crate::{BlockSource, RepoError, Result};

/// A pointer to a subtree: its CID while unchanged since loading (or since the last commit),
/// its decoded node once loaded. At least one of the two is always present.
#[derive(Debug, Clone)]
struct Child {
    cid: Option<Cid>,
    node: Option<Box<Node>>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    left: Option<Child>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: Cid,
    right: Option<Child>,
}

impl Child {
    fn stored(cid: Cid) -> Self {
        Child {
            cid: Some(cid),
            node: None,
        }
    }

    fn fresh(node: Node) -> Self {
        Child {
            cid: None,
            node: Some(Box::new(node)),
        }
    }

    /// Loads the node if needed and returns it for reading or changing. The caller marks it dirty
    /// (clears `cid`) only if it really changes it, so a failed lookup costs no re-encoding.
    fn load(&mut self, store: &dyn BlockSource) -> Result<&mut Node> {
        if self.node.is_none() {
            let cid = self.cid.expect("a child has a CID or a node");
            let bytes = store.require_block(&cid)?;
            self.node = Some(Box::new(Node::from_decoded(decode_node(&cid, &bytes)?)));
        }
        Ok(self.node.as_mut().expect("just loaded"))
    }

    /// Takes the node out, loading it if needed; the old CID (if any) goes to `stale`.
    fn into_node(mut self, store: &dyn BlockSource, stale: &mut Vec<Cid>) -> Result<Node> {
        self.load(store)?;
        if let Some(cid) = self.cid {
            stale.push(cid);
        }
        Ok(*self.node.expect("just loaded"))
    }

    fn mark_dirty(&mut self, stale: &mut Vec<Cid>) {
        if let Some(cid) = self.cid.take() {
            stale.push(cid);
        }
    }
}

impl Node {
    fn from_decoded(decoded: DecodedNode) -> Node {
        Node {
            left: decoded.left.map(Child::stored),
            entries: decoded
                .entries
                .into_iter()
                .map(|e| Entry {
                    key: e.key,
                    value: e.value,
                    right: e.right.map(Child::stored),
                })
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// Index of the first entry whose key is >= `key`.
    fn lower_bound(&self, key: &str) -> usize {
        self.entries.partition_point(|e| e.key.as_str() < key)
    }

    /// The subtree in the gap just before entry `i` (after the last entry when `i == len`).
    fn gap_mut(&mut self, i: usize) -> &mut Option<Child> {
        if i == 0 {
            &mut self.left
        } else {
            &mut self.entries[i - 1].right
        }
    }

    /// Turns the node into a subtree pointer, or `None` if nothing is left in it.
    fn into_child(self) -> Option<Child> {
        if self.is_empty() {
            None
        } else {
            Some(Child::fresh(self))
        }
    }
}

/// A mutable Merkle Search Tree over a block store.
#[derive(Debug, Clone)]
pub struct Mst {
    root: Child,
    /// The root's layer; `None` until the root has been loaded.
    layer: Option<u32>,
    /// CIDs of nodes replaced since the last commit.
    stale: Vec<Cid>,
}

/// What [`Mst::commit`] produced.
#[derive(Debug, Default)]
pub struct MstCommit {
    /// The root CID of the tree.
    pub root: Cid,
    /// Every node block that was (re-)encoded, children before parents.
    pub new_blocks: Vec<(Cid, Vec<u8>)>,
    /// CIDs of node blocks the tree no longer uses.
    pub removed: Vec<Cid>,
}

impl Default for Mst {
    fn default() -> Self {
        Self::new()
    }
}

impl Mst {
    /// An empty tree.
    pub fn new() -> Self {
        Mst {
            root: Child::fresh(Node::default()),
            layer: Some(0),
            stale: Vec::new(),
        }
    }

    /// A tree whose root node is `root`; nodes are read from the store when first needed.
    pub fn load(root: Cid) -> Self {
        Mst {
            root: Child::stored(root),
            layer: None,
            stale: Vec::new(),
        }
    }

    /// The root CID if nothing changed since loading or the last commit.
    pub fn root_cid(&self) -> Option<Cid> {
        self.root.cid
    }

    fn root_layer(&mut self, store: &dyn BlockSource) -> Result<u32> {
        if let Some(layer) = self.layer {
            return Ok(layer);
        }
        let layer = match self.root.cid {
            Some(cid) => read::node_layer(store, &cid)?,
            None => 0,
        };
        self.layer = Some(layer);
        Ok(layer)
    }

    /// The value stored under `key`.
    pub fn get(&mut self, store: &dyn BlockSource, key: &str) -> Result<Option<Cid>> {
        let mut node = self.root.load(store)?;
        loop {
            let i = node.lower_bound(key);
            if let Some(entry) = node.entries.get(i)
                && entry.key == key
            {
                return Ok(Some(entry.value));
            }
            match node.gap_mut(i) {
                Some(child) => node = child.load(store)?,
                None => return Ok(None),
            }
        }
    }

    /// Sets `key` to `value`, returning the previous value if the key existed.
    pub fn insert(
        &mut self,
        store: &dyn BlockSource,
        key: &str,
        value: Cid,
    ) -> Result<Option<Cid>> {
        check_key(key)?;
        let height = key_height(key.as_bytes());
        let layer = self.root_layer(store)?;
        if height > layer {
            // The key belongs above the current root: split the whole tree around it and put it in
            // a new root, with the two halves lifted to the layer just below.
            let old_root = std::mem::replace(&mut self.root, Child::fresh(Node::default()));
            let (left, right) = split(Some(old_root), layer, key, store, &mut self.stale)?;
            let left = lift(left, layer, height - 1);
            let right = lift(right, layer, height - 1);
            self.root = Child::fresh(Node {
                left,
                entries: vec![Entry {
                    key: key.to_owned(),
                    value,
                    right,
                }],
            });
            self.layer = Some(height);
            return Ok(None);
        }
        let (previous, changed) = insert_at(
            &mut self.root,
            layer,
            key,
            height,
            value,
            store,
            &mut self.stale,
        )?;
        if changed {
            self.root.mark_dirty(&mut self.stale);
        }
        Ok(previous)
    }

    /// Removes `key`, returning its value if it existed.
    pub fn delete(&mut self, store: &dyn BlockSource, key: &str) -> Result<Option<Cid>> {
        let layer = self.root_layer(store)?;
        let removed = delete_at(&mut self.root, layer, key, store, &mut self.stale)?;
        if removed.is_some() {
            self.root.mark_dirty(&mut self.stale);
            self.trim_root(store)?;
        }
        Ok(removed)
    }

    /// A root with no entries but a subtree is not canonical: the subtree becomes the root.
    fn trim_root(&mut self, store: &dyn BlockSource) -> Result<()> {
        let mut layer = self.layer.unwrap_or(0);
        loop {
            let node = self.root.load(store)?;
            if !node.entries.is_empty() {
                break;
            }
            match node.left.take() {
                Some(child) => {
                    self.root.mark_dirty(&mut self.stale);
                    self.root = child;
                    layer = layer.saturating_sub(1);
                }
                None => {
                    layer = 0;
                    break;
                }
            }
        }
        self.layer = Some(layer);
        Ok(())
    }

    /// Encodes every changed node and returns the root CID with the new and dropped blocks.
    pub fn commit(&mut self) -> Result<MstCommit> {
        let mut new_blocks = Vec::new();
        let root = write_child(&mut self.root, &mut new_blocks)?;
        let mut removed = std::mem::take(&mut self.stale);
        removed.sort_unstable();
        removed.dedup();
        // A node can be rebuilt identical to one that was replaced (e.g. an insert then a delete
        // of the same key): it is not removed then.
        let new: std::collections::HashSet<Cid> = new_blocks.iter().map(|(c, _)| *c).collect();
        removed.retain(|c| !new.contains(c));
        Ok(MstCommit {
            root,
            new_blocks,
            removed,
        })
    }

    /// Builds a tree from sorted or unsorted `(key, value)` pairs in one pass (import, tests).
    pub fn from_entries(mut entries: Vec<(String, Cid)>) -> Result<Mst> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in entries.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(RepoError::InvalidMst(format!(
                    "duplicate key {:?}",
                    pair[0].0
                )));
            }
        }
        let mut keyed = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            check_key(&key)?;
            let height = key_height(key.as_bytes());
            keyed.push((key, value, height));
        }
        let layer = keyed.iter().map(|k| k.2).max().unwrap_or(0);
        let root = build(&mut keyed.into_iter().peekable(), layer);
        Ok(Mst {
            root: Child::fresh(root),
            layer: Some(layer),
            stale: Vec::new(),
        })
    }
}

/// MST keys are repo paths; the tree itself only needs them non-empty and bounded.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(RepoError::InvalidPath(key.to_owned()));
    }
    Ok(())
}

/// Builds the canonical node on `layer` from sorted keys, stopping at the first key that belongs
/// to an ancestor (a height above `layer`).
fn build(
    iter: &mut std::iter::Peekable<impl Iterator<Item = (String, Cid, u32)>>,
    layer: u32,
) -> Node {
    let mut node = Node::default();
    loop {
        // Keys below this layer before the next entry of this layer form the gap subtree.
        if iter.peek().is_some_and(|(_, _, h)| *h < layer) {
            let gap = build(iter, layer - 1).into_child();
            *node.gap_mut(node.entries.len()) = gap;
        }
        match iter.peek() {
            Some((_, _, h)) if *h == layer => {
                let (key, value, _) = iter.next().expect("peeked");
                node.entries.push(Entry {
                    key,
                    value,
                    right: None,
                });
            }
            _ => return node,
        }
    }
}

/// Wraps a subtree on layer `from` in key-less nodes until it sits on layer `to`.
fn lift(mut child: Option<Child>, from: u32, to: u32) -> Option<Child> {
    if child.is_some() {
        for _ in from..to {
            child = Some(Child::fresh(Node {
                left: child,
                entries: Vec::new(),
            }));
        }
    }
    child
}

/// Inserts into the subtree `child` on `layer` (height <= layer). Returns the previous value and
/// whether anything changed.
fn insert_at(
    child: &mut Child,
    layer: u32,
    key: &str,
    height: u32,
    value: Cid,
    store: &dyn BlockSource,
    stale: &mut Vec<Cid>,
) -> Result<(Option<Cid>, bool)> {
    let node = child.load(store)?;
    let i = node.lower_bound(key);
    if let Some(entry) = node.entries.get_mut(i)
        && entry.key == key
    {
        let previous = entry.value;
        entry.value = value;
        return Ok((Some(previous), previous != value));
    }
    if height == layer {
        let gap = node.gap_mut(i).take();
        let sub_layer = layer.checked_sub(1);
        let (left, right) = match sub_layer {
            Some(l) => split(gap, l, key, store, stale)?,
            None if gap.is_none() => (None, None),
            None => return Err(RepoError::InvalidMst("subtree below layer 0".into())),
        };
        *node.gap_mut(i) = left;
        node.entries.insert(
            i,
            Entry {
                key: key.to_owned(),
                value,
                right,
            },
        );
        return Ok((None, true));
    }
    let gap = node.gap_mut(i);
    let sub = gap.get_or_insert_with(|| Child::fresh(Node::default()));
    let (previous, changed) = insert_at(sub, layer - 1, key, height, value, store, stale)?;
    if changed {
        sub.mark_dirty(stale);
    }
    Ok((previous, changed))
}

/// Splits the subtree on `layer` into the parts below and above `key` (which it must not hold).
fn split(
    child: Option<Child>,
    layer: u32,
    key: &str,
    store: &dyn BlockSource,
    stale: &mut Vec<Cid>,
) -> Result<(Option<Child>, Option<Child>)> {
    let Some(child) = child else {
        return Ok((None, None));
    };
    let mut node = child.into_node(store, stale)?;
    let i = node.lower_bound(key);
    if node.entries.get(i).is_some_and(|e| e.key == key) {
        return Err(RepoError::InvalidMst(format!(
            "key {key:?} found below its layer"
        )));
    }
    let gap = node.gap_mut(i).take();
    let (gap_left, gap_right) = match layer.checked_sub(1) {
        Some(l) => split(gap, l, key, store, stale)?,
        None if gap.is_none() => (None, None),
        None => return Err(RepoError::InvalidMst("subtree below layer 0".into())),
    };
    let right_entries = node.entries.split_off(i);
    *node.gap_mut(i) = gap_left;
    let right = Node {
        left: gap_right,
        entries: right_entries,
    };
    Ok((node.into_child(), right.into_child()))
}

/// Joins two subtrees on `layer` where every key of `left` sorts before every key of `right`.
fn merge(
    left: Option<Child>,
    right: Option<Child>,
    layer: u32,
    store: &dyn BlockSource,
    stale: &mut Vec<Cid>,
) -> Result<Option<Child>> {
    let (left, right) = match (left, right) {
        (None, other) | (other, None) => return Ok(other),
        (Some(l), Some(r)) => (l, r),
    };
    let mut left = left.into_node(store, stale)?;
    let mut right = right.into_node(store, stale)?;
    let seam_left = left.gap_mut(left.entries.len()).take();
    let seam_right = right.left.take();
    let seam = match layer.checked_sub(1) {
        Some(l) => merge(seam_left, seam_right, l, store, stale)?,
        None if seam_left.is_none() && seam_right.is_none() => None,
        None => return Err(RepoError::InvalidMst("subtree below layer 0".into())),
    };
    let n = left.entries.len();
    *left.gap_mut(n) = seam;
    left.entries.append(&mut right.entries);
    Ok(left.into_child())
}

/// Deletes `key` from the subtree on `layer`, returning its value if it was there.
fn delete_at(
    child: &mut Child,
    layer: u32,
    key: &str,
    store: &dyn BlockSource,
    stale: &mut Vec<Cid>,
) -> Result<Option<Cid>> {
    let node = child.load(store)?;
    let i = node.lower_bound(key);
    if node.entries.get(i).is_some_and(|e| e.key == key) {
        let removed = node.entries.remove(i);
        let left = node.gap_mut(i).take();
        let merged = match layer.checked_sub(1) {
            Some(l) => merge(left, removed.right, l, store, stale)?,
            None if left.is_none() && removed.right.is_none() => None,
            None => return Err(RepoError::InvalidMst("subtree below layer 0".into())),
        };
        *node.gap_mut(i) = merged;
        return Ok(Some(removed.value));
    }
    let Some(sub_layer) = layer.checked_sub(1) else {
        return Ok(None);
    };
    let gap = node.gap_mut(i);
    let Some(sub) = gap.as_mut() else {
        return Ok(None);
    };
    let removed = delete_at(sub, sub_layer, key, store, stale)?;
    if removed.is_some() {
        sub.mark_dirty(stale);
        if sub.node.as_ref().is_some_and(|n| n.is_empty()) {
            *gap = None;
        }
    }
    Ok(removed)
}

/// Encodes the subtree's changed nodes (children first) and returns its CID.
fn write_child(child: &mut Child, out: &mut Vec<(Cid, Vec<u8>)>) -> Result<Cid> {
    if let Some(cid) = child.cid {
        return Ok(cid);
    }
    let node = child.node.as_mut().expect("a dirty child is loaded");
    let left = match node.left.as_mut() {
        Some(c) => Some(write_child(c, out)?),
        None => None,
    };
    let mut entries = Vec::with_capacity(node.entries.len());
    for entry in node.entries.iter_mut() {
        let right = match entry.right.as_mut() {
            Some(c) => Some(write_child(c, out)?),
            None => None,
        };
        entries.push((entry.key.as_str(), entry.value, right));
    }
    let bytes = encode_node(left, &entries)?;
    let cid = pds_ipld::cid_for_cbor(&bytes);
    out.push((cid, bytes));
    child.cid = Some(cid);
    Ok(cid)
}

#[cfg(test)]
mod tests;
