//! Keys and signatures as the AT Protocol uses them.
//!
//! # What this crate owns
//!
//! - Key pairs on the two atproto curves: secp256k1 ([`Algorithm::K256`],
//!   JOSE `ES256K`) and NIST P-256 ([`Algorithm::P256`], JOSE `ES256`).
//! - ECDSA over SHA-256 with deterministic nonces (RFC 6979). Signatures are
//!   always the 64-byte compact `r || s` form and always low-S: [`Keypair::sign`]
//!   normalises, and [`PublicKey::verify`] rejects high-S and anything that
//!   is not exactly 64 bytes (DER-encoded signatures are invalid in atproto).
//! - Public key encodings: `did:key:z...` and the DID-document `Multikey`
//!   `publicKeyMultibase` (`z` + base58btc of the multicodec varint —
//!   `0xe7 0x01` for secp256k1-pub, `0x80 0x24` for p256-pub — followed by the
//!   33-byte compressed point), plus the legacy bare-point multibase form.
//! - Compact JSON Web Signatures ([`jws`]): `ES256K`/`ES256` for inter-service
//!   auth and `HS256` for session tokens.
//!
//! # What it must not touch
//!
//! No I/O of any kind (files, network, clock, environment); the only outside
//! input is operating-system randomness for [`Keypair::generate`]. It depends
//! on no other workspace crate. Token expiry and claim semantics belong to the
//! callers.
//!
//! # Example
//!
//! ```
//! use pds_crypto::{Algorithm, Keypair, PublicKey, verify_with_did_key};
//!
//! let key = Keypair::generate(Algorithm::K256);
//! let sig = key.sign(b"commit bytes");
//! assert_eq!(sig.len(), 64);
//! let did_key = key.did_key(); // "did:key:zQ3s..."
//! verify_with_did_key(&did_key, b"commit bytes", &sig).unwrap();
//!
//! let public = PublicKey::from_multikey(&key.public_key().multikey()).unwrap();
//! assert!(public.verify(b"other bytes", &sig).is_err());
//! ```

mod base58;
mod error;
pub mod jws;
mod keys;

pub use error::CryptoError;
pub use keys::{Algorithm, Keypair, PublicKey, verify_with_did_key};
