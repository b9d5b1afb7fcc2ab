//! The wire form of an MST node and the key-height function.
//!
//! A node is DAG-CBOR `{e: [{k, p, t, v}], l}`: `l` is the subtree left of the first entry,
//! each entry's `t` the subtree to its right (both always present, `null` when empty), `k` the
//! key bytes after the `p` bytes it shares with the previous entry of the same node.

use cid::Cid;
use serde::Serialize;

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
#[derive(Serialize)]
pub(crate) struct NodeData {
    pub e: Vec<EntryData>,
    pub l: Option<Cid>,
}

#[derive(Serialize)]
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
/// canonical DAG-CBOR of exactly the node shape, UTF-8 keys, prefix lengths within the previous
/// key, strictly increasing keys.
///
/// Nodes are read on every write, proof, diff and export, so this is a direct parser of the one
/// canonical encoding rather than a generic decode: it allocates only the keys. Any other
/// encoding (extra fields, non-minimal lengths, other key order) is refused, as the canonical
/// form is the only valid one.
pub fn decode_node(cid: &Cid, bytes: &[u8]) -> Result<DecodedNode> {
    let malformed = |reason: String| RepoError::Malformed {
        what: "MST node",
        cid: Box::new(*cid),
        reason,
    };
    let mut r = NodeReader { bytes, pos: 0 };
    let node = r.node().map_err(|e| malformed(e.to_string()))?;
    if r.pos != bytes.len() {
        return Err(malformed("trailing bytes after the node".into()));
    }
    let mut entries: Vec<DecodedEntry> = Vec::with_capacity(node.entries.len());
    for (i, entry) in node.entries.into_iter().enumerate() {
        let prev = entries.last().map_or("", |e| e.key.as_str());
        let p = usize::try_from(entry.prefix).unwrap_or(usize::MAX);
        if p > prev.len() {
            return Err(malformed(format!(
                "entry {i}: prefix length {p} exceeds the previous key"
            )));
        }
        if i == 0 && p != 0 {
            return Err(malformed("first entry has a non-zero prefix length".into()));
        }
        let mut full = Vec::with_capacity(p + entry.suffix.len());
        full.extend_from_slice(&prev.as_bytes()[..p]);
        full.extend_from_slice(entry.suffix);
        // The encoder always shares the longest common prefix; a shorter `p` is another
        // encoding of the same key, and only the canonical one is valid.
        if common_prefix_len(prev.as_bytes(), &full) != p {
            return Err(malformed(format!(
                "entry {i}: prefix length {p} is not the shared prefix"
            )));
        }
        if i > 0 && full.as_slice() <= prev.as_bytes() {
            return Err(malformed(format!(
                "entry {i}: keys are not in strictly increasing order"
            )));
        }
        let key = String::from_utf8(full)
            .map_err(|_| malformed(format!("entry {i}: key is not UTF-8")))?;
        entries.push(DecodedEntry {
            key,
            value: entry.value,
            right: entry.right,
        });
    }
    Ok(DecodedNode {
        left: node.left,
        entries,
    })
}

/// A node as it is on the wire, borrowing the key suffixes.
struct RawNode<'a> {
    left: Option<Cid>,
    entries: Vec<RawEntry<'a>>,
}

struct RawEntry<'a> {
    suffix: &'a [u8],
    prefix: u64,
    value: Cid,
    right: Option<Cid>,
}

/// A cursor over the canonical DAG-CBOR of one node.
struct NodeReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const CBOR_NULL: u8 = 0xf6;
const TAG_CID: u64 = 42;

impl<'a> NodeReader<'a> {
    fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.bytes.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("truncated")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A header of the given major type, with its argument in minimal form.
    fn header(&mut self, major: u8) -> Result<u64, &'static str> {
        let b = self.byte()?;
        if b >> 5 != major {
            return Err("unexpected CBOR type");
        }
        let (value, min) = match b & 0x1f {
            n @ 0..=23 => return Ok(u64::from(n)),
            24 => (u64::from(self.byte()?), 24),
            25 => (
                u64::from(u16::from_be_bytes(
                    self.take(2)?.try_into().expect("2 bytes"),
                )),
                256,
            ),
            26 => (
                u64::from(u32::from_be_bytes(
                    self.take(4)?.try_into().expect("4 bytes"),
                )),
                65536,
            ),
            27 => (
                u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")),
                1 << 32,
            ),
            _ => return Err("indefinite or reserved length"),
        };
        if value < min {
            return Err("non-minimal integer encoding");
        }
        Ok(value)
    }

    fn key(&mut self, name: u8) -> Result<(), &'static str> {
        // A one-letter text string: 0x61 then the letter.
        if self.take(2)? != [0x61, name] {
            Err("unexpected map key")
        } else {
            Ok(())
        }
    }

    fn len(&mut self, major: u8) -> Result<usize, &'static str> {
        usize::try_from(self.header(major)?).map_err(|_| "length too large")
    }

    fn cid(&mut self) -> Result<Cid, &'static str> {
        if self.header(MAJOR_TAG)? != TAG_CID {
            return Err("unexpected CBOR tag");
        }
        let n = self.len(MAJOR_BYTES)?;
        let bytes = self.take(n)?;
        // Links carry a leading 0x00 (the identity multibase prefix).
        let (&0, mut cid_bytes) = bytes.split_first().ok_or("empty link")? else {
            return Err("link without the 0x00 prefix");
        };
        let cid = Cid::read_bytes(&mut cid_bytes).map_err(|_| "invalid CID")?;
        if !cid_bytes.is_empty() {
            return Err("trailing bytes in a link");
        }
        Ok(cid)
    }

    fn nullable_cid(&mut self) -> Result<Option<Cid>, &'static str> {
        if self.bytes.get(self.pos) == Some(&CBOR_NULL) {
            self.pos += 1;
            return Ok(None);
        }
        self.cid().map(Some)
    }

    fn node(&mut self) -> Result<RawNode<'a>, &'static str> {
        if self.header(MAJOR_MAP)? != 2 {
            return Err("a node is a map of two fields");
        }
        self.key(b'e')?;
        let count = self.len(MAJOR_ARRAY)?;
        // Each entry takes at least 40 bytes: bound the allocation by the input.
        if count > self.bytes.len() / 40 + 1 {
            return Err("entry count exceeds the block size");
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            if self.header(MAJOR_MAP)? != 4 {
                return Err("an entry is a map of four fields");
            }
            self.key(b'k')?;
            let n = self.len(MAJOR_BYTES)?;
            let suffix = self.take(n)?;
            self.key(b'p')?;
            let prefix = self.header(MAJOR_UINT)?;
            self.key(b't')?;
            let right = self.nullable_cid()?;
            self.key(b'v')?;
            let value = self.cid()?;
            entries.push(RawEntry {
                suffix,
                prefix,
                value,
                right,
            });
        }
        self.key(b'l')?;
        let left = self.nullable_cid()?;
        Ok(RawNode { left, entries })
    }
}
