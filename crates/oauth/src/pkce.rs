//! PKCE (RFC 7636) with the `S256` method, the only one atproto allows
//! (`plain` is refused by the profile).
//!
//! `code_verifier = 43*128unreserved` (RFC 7636 §4.1, unreserved being
//! `[A-Za-z0-9-._~]`); `code_challenge = BASE64URL(SHA256(ASCII(code_verifier)))`
//! without padding (§4.2), so always 43 characters.

use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only `code_challenge_method` accepted.
pub const S256: &str = "S256";

/// True for a well-formed `S256` challenge: 43 base64url characters encoding
/// 32 bytes (canonical, no padding).
pub fn is_valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && BASE64URL_NOPAD
            .decode(challenge.as_bytes())
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// True for a well-formed verifier: 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The `S256` challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()))
}

/// True when `verifier` is well-formed and its `S256` challenge is
/// `challenge` (compared in constant time).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !is_valid_verifier(verifier) {
        return false;
    }
    let computed = s256_challenge(verifier);
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert!(is_valid_verifier(VERIFIER));
        assert!(is_valid_challenge(CHALLENGE));
        assert!(verify_s256(VERIFIER, CHALLENGE));
    }

    #[test]
    fn mismatches() {
        assert!(!verify_s256(
            VERIFIER,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!verify_s256(&format!("{VERIFIER}x"), CHALLENGE));
        assert!(!verify_s256(VERIFIER, VERIFIER)); // "plain" is not accepted
        assert!(!verify_s256(VERIFIER, ""));
    }

    #[test]
    fn verifier_shape() {
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"~._-".repeat(32)));
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!is_valid_verifier(&format!("{}=", "a".repeat(42))));
        assert!(!is_valid_verifier(&format!("{}é", "a".repeat(41))));
        // A short verifier never verifies, even against its own challenge.
        assert!(!verify_s256("short", &s256_challenge("short")));
    }

    #[test]
    fn challenge_shape() {
        assert!(!is_valid_challenge(&CHALLENGE[..42]));
        assert!(!is_valid_challenge(&format!("{CHALLENGE}=")));
        assert!(!is_valid_challenge(&format!("{}+", &CHALLENGE[..42])));
        // 43 characters whose last one carries non-zero trailing bits.
        assert!(!is_valid_challenge(&format!("{}N", &CHALLENGE[..42])));
        assert!(!is_valid_challenge(VERIFIER.replace('-', "+").as_str()));
    }
}
