//! The wire form of an MST node and the key-height function.
//!
//! A node is DAG-CBOR `{e: [{k, p, t, v}], l}`: `l` is the subtree left of the first entry,
//! each entry's `t` the subtree to its right (both always present, `null` when empty), `k` the
//! key bytes after the `p` bytes it shares with the previous entry of the same node.

use cid::Cid;
use serde::{Deserialize, Serialize};

use crate::{RepoError, Result};

/// A key's height (the layer it lives on): the number of leading zero bits of sha256(key),
/// counted in 2-bit chunks, so each layer up holds about a quarter of the keys below it.
pub fn key_height(key: &[u8]) -> u32 {
    let digest = pds_ipld::sha256(key);
    let mut zeros = 0u32;
    for byte in digest {
        if byte == 0 {
            zeros += 8;
        } else {
            zeros += byte.leading_zeros();
            break;
        }
    }
    zeros / 2
}

/// The number of leading bytes two keys share.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

// Field order matches DAG-CBOR's canonical order (shorter keys first, then bytewise), which the
// encoder also enforces.
#[derive(Serialize, Deserialize)]
pub(crate) struct NodeData {
    pub e: Vec<EntryData>,
    pub l: Option<Cid>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct EntryData {
    #[serde(with = "serde_bytes")]
    pub k: Vec<u8>,
    pub p: u64,
    pub t: Option<Cid>,
    pub v: Cid,
}

/// A node with full keys, as the tree code uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedNode {
    pub left: Option<Cid>,
    pub entries: Vec<DecodedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEntry {
    pub key: String,
    pub value: Cid,
    pub right: Option<Cid>,
}

/// Encodes a node (keys in order, full form) into its canonical bytes.
pub fn encode_node(left: Option<Cid>, entries: &[(&str, Cid, Option<Cid>)]) -> Result<Vec<u8>> {
    let mut e = Vec::with_capacity(entries.len());
    let mut prev: &[u8] = &[];
    for (key, value, right) in entries {
        let key = key.as_bytes();
        let p = common_prefix_len(prev, key);
        e.push(EntryData {
            k: key[p..].to_vec(),
            p: p as u64,
            t: *right,
            v: *value,
        });
        prev = key;
    }
    Ok(pds_ipld::to_cbor(&NodeData { e, l: left })?)
}

/// Decodes a node block, rebuilding full keys. Checks what a single node can show on its own:
/// strict DAG-CBOR, UTF-8 keys, prefix lengths within the previous key, strictly increasing keys.
pub fn decode_node(cid: &Cid, bytes: &[u8]) -> Result<DecodedNode> {
    let malformed = |reason: String| RepoError::Malformed {
        what: "MST node",
        cid: Box::new(*cid),
        reason,
    };
    let data: NodeData = pds_ipld::from_cbor(bytes).map_err(|e| malformed(e.to_string()))?;
    let mut entries: Vec<DecodedEntry> = Vec::with_capacity(data.e.len());
    for (i, entry) in data.e.into_iter().enumerate() {
        let prev = entries.last().map_or("", |e| e.key.as_str());
        let p = usize::try_from(entry.p).unwrap_or(usize::MAX);
        if p > prev.len() {
            return Err(malformed(format!(
                "entry {i}: prefix length {p} exceeds the previous key"
            )));
        }
        if i == 0 && p != 0 {
            return Err(malformed("first entry has a non-zero prefix length".into()));
        }
        let mut full = Vec::with_capacity(p + entry.k.len());
        full.extend_from_slice(&prev.as_bytes()[..p]);
        full.extend_from_slice(&entry.k);
        if i > 0 && full.as_slice() <= prev.as_bytes() {
            return Err(malformed(format!(
                "entry {i}: keys are not in strictly increasing order"
            )));
        }
        let key = String::from_utf8(full)
            .map_err(|_| malformed(format!("entry {i}: key is not UTF-8")))?;
        entries.push(DecodedEntry {
            key,
            value: entry.v,
            right: entry.t,
        });
    }
    Ok(DecodedNode {
        left: data.l,
        entries,
    })
}
