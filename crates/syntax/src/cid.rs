//! The loose CID check of the `cid` Lexicon string format.
//!
//! Real CID parsing (multibase, multicodec, multihash) belongs to the IPLD
//! layer; this is the cheap shape check atproto specifies for strings that
//! merely carry a CID.

/// Whether `s` looks like a CIDv1 string: 8 to 256 characters from
/// `[A-Za-z0-9+=]`, and not a legacy CIDv0 (which atproto does not use).
pub fn is_valid_cid_syntax(s: &str) -> bool {
    (8..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=')
        && !is_cid_v0(s)
}

/// A CIDv0 is a bare base58btc SHA-256 multihash: always 46 characters
/// starting with `Qm` (the multihash prefix 0x12 0x20 in base58).
fn is_cid_v0(s: &str) -> bool {
    s.len() == 46 && s.starts_with("Qm")
}
