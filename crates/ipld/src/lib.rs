//! The AT Protocol data model: DAG-CBOR, CIDs, the JSON form, and CAR v1 files.
//!
//! Owns: turning values into canonical DAG-CBOR bytes and back, computing the CIDs of those bytes
//! (CIDv1, sha2-256; codec `dag-cbor` 0x71 for records and repo nodes, `raw` 0x55 for blobs),
//! converting between the JSON and CBOR forms of the atproto data model (`$link`, `$bytes`, blob
//! refs), and reading/writing CAR v1 streams.
//!
//! Must not touch: repositories, keys, storage or the network. It knows bytes and values, nothing
//! about what they mean to a PDS.

use cid::Cid as CidT;
use multihash::Multihash;
use sha2::{Digest, Sha256};

pub use cid::Cid;
pub use ipld_core::ipld::Ipld;

pub mod car;
pub mod json;
pub mod validate;

pub use car::{Block, CarBuffer, CarLimits, CarReader, CarWriter, decode_car, encode_car};
pub use json::{
    BlobRef, cbor_to_json, collect_blob_refs, ipld_to_json, json_to_cbor, json_to_ipld,
    validate_data_model, validate_node, validate_record,
};

/// Multicodec code of DAG-CBOR: records, MST nodes and commits.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec code of raw bytes: blobs.
pub const RAW: u64 = 0x55;
/// Multihash code of sha2-256, the only hash atproto uses.
pub const SHA2_256: u64 = 0x12;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("DAG-CBOR encoding failed: {0}")]
    Encode(String),
    #[error("invalid DAG-CBOR: {0}")]
    Decode(String),
    #[error("invalid data model value: {0}")]
    DataModel(String),
    #[error("invalid CID: {0}")]
    Cid(String),
    #[error("invalid CAR: {0}")]
    Car(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The sha2-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn cid_of(codec: u64, bytes: &[u8]) -> Cid {
    let digest = sha256(bytes);
    // A 32-byte digest always fits the 64-byte multihash buffer.
    let mh = Multihash::<64>::wrap(SHA2_256, &digest).expect("sha256 digest fits a multihash");
    CidT::new_v1(codec, mh)
}

/// The CID of DAG-CBOR bytes (a record, an MST node, a commit).
pub fn cid_for_cbor(bytes: &[u8]) -> Cid {
    cid_of(DAG_CBOR, bytes)
}

/// The CID of a blob's raw bytes.
pub fn cid_for_raw(bytes: &[u8]) -> Cid {
    cid_of(RAW, bytes)
}

/// True if `cid` is a CID atproto accepts for blocks: v1, sha2-256, dag-cbor or raw.
pub fn is_atproto_cid(cid: &Cid) -> bool {
    cid.version() == cid::Version::V1
        && (cid.codec() == DAG_CBOR || cid.codec() == RAW)
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
}

/// Checks that `bytes` hash to `cid` (the CID's own hash function must be sha2-256).
pub fn verify_cid(cid: &Cid, bytes: &[u8]) -> bool {
    cid.hash().code() == SHA2_256 && cid.hash().digest() == sha256(bytes)
}

/// Parses a CID from its string form (base32 `b...` for CIDv1).
pub fn parse_cid(s: &str) -> Result<Cid> {
    // Decoding base58/base36 text costs the square of its length: refuse what no real CID is
    // (a sha2-256 CIDv1 is 59 characters in base32) before decoding anything.
    if s.len() > MAX_CID_STRING_LEN {
        return Err(Error::Cid(format!(
            "CID string of {} characters is too long",
            s.len()
        )));
    }
    s.parse::<Cid>().map_err(|e| {
        let shown: String = s.chars().take(64).collect();
        Error::Cid(format!("{shown:?}: {e}"))
    })
}

/// The longest CID string accepted (generous: any hash atproto uses fits in half of it).
pub const MAX_CID_STRING_LEN: usize = 128;

/// A CID as a hash-map key that hashes only what varies (codec and digest), for the maps of
/// blocks that imports, exports and commits build. Equality is full CID equality, and the maps
/// use a seeded hasher, so crafted blocks cannot aim at one bucket.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct CidKey(pub Cid);

impl std::hash::Hash for CidKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.codec());
        state.write(self.0.hash().digest());
    }
}

/// The seeded hasher for [`CidKey`] maps.
pub type CidHasher = foldhash::fast::RandomState;

/// A map keyed by CID.
pub type CidMap<V> = std::collections::HashMap<CidKey, V, CidHasher>;

/// Encodes a value as canonical DAG-CBOR (map keys sorted length-first, CIDs as tag 42).
pub fn to_cbor<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// Decodes strict DAG-CBOR: unsorted or duplicate map keys, indefinite lengths and trailing bytes
/// are errors.
pub fn from_cbor<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// Encodes a value and returns its CID together with the bytes.
pub fn encode_block<T: serde::Serialize + ?Sized>(value: &T) -> Result<(Cid, Vec<u8>)> {
    let bytes = to_cbor(value)?;
    Ok((cid_for_cbor(&bytes), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_cid_strings_are_refused_before_decoding() {
        // 60,000 base58 digits would take seconds to decode; the length check answers at once.
        let long = format!("z{}", "2".repeat(60_000));
        let start = std::time::Instant::now();
        let err = parse_cid(&long).unwrap_err().to_string();
        assert!(start.elapsed() < std::time::Duration::from_millis(50));
        assert!(err.len() < 200, "the error does not echo the input: {err}");
        assert!(parse_cid("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm").is_ok());
    }
}
