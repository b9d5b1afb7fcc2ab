//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong while parsing keys, verifying signatures or
/// handling JSON Web Signatures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// Private key bytes are not 32 bytes, or are not a valid scalar
    /// (zero or not below the curve order).
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(&'static str),

    /// Public key bytes are not a valid point encoding for the curve.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(&'static str),

    /// A `did:key` or multibase string could not be parsed.
    #[error("invalid did:key or multikey: {0}")]
    InvalidMultikey(&'static str),

    /// The multicodec prefix names a key type atproto does not use.
    #[error("unsupported key type (multicodec prefix {0:#04x} {1:#04x})")]
    UnsupportedKeyType(u8, u8),

    /// A signature is not exactly 64 bytes (r || s). DER is not accepted.
    #[error("signature must be 64 bytes (compact r||s), got {0}")]
    InvalidSignatureLength(usize),

    /// The signature's `s` is in the upper half of the curve order, which
    /// atproto forbids to rule out signature malleability.
    #[error("signature is not low-S")]
    HighS,

    /// The signature is well-formed but does not verify.
    #[error("signature verification failed")]
    BadSignature,

    /// A JWS token is structurally wrong (segments, base64url, JSON).
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),

    /// A JWS header names an algorithm other than the one expected.
    #[error("token algorithm mismatch: expected {expected}, found {found}")]
    AlgorithmMismatch {
        /// The algorithm the key or secret requires.
        expected: &'static str,
        /// The `alg` the token header carries.
        found: String,
    },
}
