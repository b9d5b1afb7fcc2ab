//! The difference between two trees: which keys were created, updated or deleted, and which
//! node blocks one has that the other lacks. Subtrees with equal CIDs are skipped unread, so the
//! cost follows the size of the change, not of the trees.

use std::collections::HashSet;

use cid::Cid;

use super::{decode_node, read::node_layer};
use crate::{BlockSource, Result};

/// One changed key: `old` is `None` for a create, `new` is `None` for a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    pub old: Option<Cid>,
    pub new: Option<Cid>,
}

#[derive(Debug, Default, Clone)]
pub struct MstDiff {
    /// Changed keys in key order.
    pub changes: Vec<KeyChange>,
    /// Node blocks of the new tree that the old one does not have.
    pub new_nodes: Vec<Cid>,
    /// Node blocks of the old tree that the new one does not have.
    pub removed_nodes: Vec<Cid>,
}

enum Item {
    Tree { cid: Cid, layer: u32 },
    Leaf { key: String, value: Cid },
}

/// A cursor over one tree's items in key order; subtrees stay folded until expanded.
struct Cursor<'a> {
    store: &'a dyn BlockSource,
    /// Items still to visit, the next one last.
    stack: Vec<Item>,
    expanded: Vec<Cid>,
}

impl<'a> Cursor<'a> {
    fn new(store: &'a dyn BlockSource, root: Option<&Cid>) -> Result<Self> {
        let mut stack = Vec::new();
        if let Some(root) = root {
            stack.push(Item::Tree {
                cid: *root,
                layer: node_layer(store, root)?,
            });
        }
        Ok(Cursor {
            store,
            stack,
            expanded: Vec::new(),
        })
    }

    /// Replaces the subtree on top of the stack by its node's items.
    fn expand(&mut self) -> Result<()> {
        let Some(Item::Tree { cid, layer }) = self.stack.pop() else {
            return Ok(());
        };
        let node = decode_node(&cid, &self.store.require_block(&cid)?)?;
        self.expanded.push(cid);
        let sub = layer.saturating_sub(1);
        for entry in node.entries.into_iter().rev() {
            if let Some(right) = entry.right {
                self.stack.push(Item::Tree {
                    cid: right,
                    layer: sub,
                });
            }
            self.stack.push(Item::Leaf {
                key: entry.key,
                value: entry.value,
            });
        }
        if let Some(left) = node.left {
            self.stack.push(Item::Tree {
                cid: left,
                layer: sub,
            });
        }
        Ok(())
    }
}

/// Diffs the tree `old` (None = empty) against the tree `new`. Both trees' blocks must be
/// readable from `store`.
pub fn diff(store: &dyn BlockSource, old: Option<&Cid>, new: Option<&Cid>) -> Result<MstDiff> {
    let mut a = Cursor::new(store, old)?;
    let mut b = Cursor::new(store, new)?;
    let mut changes = Vec::new();
    loop {
        match (a.stack.last(), b.stack.last()) {
            (None, None) => break,
            (Some(Item::Tree { cid: ca, layer: la }), Some(Item::Tree { cid: cb, layer: lb })) => {
                if ca == cb {
                    a.stack.pop();
                    b.stack.pop();
                } else if la > lb {
                    a.expand()?;
                } else if lb > la {
                    b.expand()?;
                } else {
                    a.expand()?;
                    b.expand()?;
                }
            }
            (Some(Item::Tree { .. }), _) => a.expand()?,
            (_, Some(Item::Tree { .. })) => b.expand()?,
            (Some(Item::Leaf { key: ka, value: va }), Some(Item::Leaf { key: kb, value: vb })) => {
                match ka.cmp(kb) {
                    std::cmp::Ordering::Equal => {
                        if va != vb {
                            changes.push(KeyChange {
                                key: ka.clone(),
                                old: Some(*va),
                                new: Some(*vb),
                            });
                        }
                        a.stack.pop();
                        b.stack.pop();
                    }
                    std::cmp::Ordering::Less => {
                        changes.push(KeyChange {
                            key: ka.clone(),
                            old: Some(*va),
                            new: None,
                        });
                        a.stack.pop();
                    }
                    std::cmp::Ordering::Greater => {
                        changes.push(KeyChange {
                            key: kb.clone(),
                            old: None,
                            new: Some(*vb),
                        });
                        b.stack.pop();
                    }
                }
            }
            (Some(Item::Leaf { key, value }), None) => {
                changes.push(KeyChange {
                    key: key.clone(),
                    old: Some(*value),
                    new: None,
                });
                a.stack.pop();
            }
            (None, Some(Item::Leaf { key, value })) => {
                changes.push(KeyChange {
                    key: key.clone(),
                    old: None,
                    new: Some(*value),
                });
                b.stack.pop();
            }
        }
    }
    let old_nodes: HashSet<Cid> = a.expanded.iter().copied().collect();
    let new_nodes_set: HashSet<Cid> = b.expanded.iter().copied().collect();
    let new_nodes = b
        .expanded
        .iter()
        .filter(|c| !old_nodes.contains(c))
        .copied()
        .collect();
    let removed_nodes = a
        .expanded
        .iter()
        .filter(|c| !new_nodes_set.contains(c))
        .copied()
        .collect();
    Ok(MstDiff {
        changes,
        new_nodes,
        removed_nodes,
    })
}
