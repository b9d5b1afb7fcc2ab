//! The wire-level pieces of the AT Protocol OAuth profile
//! (<https://atproto.com/specs/oauth>): OAuth 2.1 with PAR, PKCE, DPoP and
//! `private_key_jwt` client authentication, and the atproto rules for client
//! ids and client metadata documents.
//!
//! # What this crate owns
//!
//! - [`jwk`]: EC public JWKs (`P-256` / `ES256`, `secp256k1` / `ES256K`), their
//!   RFC 7638 thumbprints, and compact-JWS verification with them. JOSE
//!   signatures are accepted in either S form (WebCrypto and `jose` do not
//!   normalise to low-S), unlike [`pds_crypto::PublicKey::verify`], which
//!   keeps the atproto repository rule.
//! - [`dpop`]: checking a DPoP proof (RFC 9449) against one request.
//! - [`nonce`]: stateless, rotating server DPoP nonces.
//! - [`pkce`]: `S256` code challenges and verifiers (RFC 7636).
//! - [`client_auth`]: RFC 7523 client assertions (`private_key_jwt`).
//! - [`client_metadata`]: classifying a `client_id`, the implied metadata of a
//!   loopback development client, and validating a fetched client metadata
//!   document; redirect URI matching.
//! - [`OAuthError`], whose [`OAuthError::code`] is the `error` of an OAuth JSON
//!   error body.
//!
//! # What it must not touch
//!
//! No I/O of any kind: no network (the caller fetches client metadata and
//! `jwks_uri` documents), no storage (the caller remembers DPoP `jti`s, used
//! codes and sessions), no HTTP server types, no clock (every time check takes
//! `now` in unix seconds from the caller) and no environment. Token issuance,
//! scopes policy and sessions belong to the server.

mod error;
mod jws;

pub mod client_auth;
pub mod client_metadata;
pub mod dpop;
pub mod jwk;
pub mod nonce;
pub mod pkce;

pub use error::OAuthError;

/// Seconds a timestamp from a client may lie in the future of `now` (clock
/// skew) before it is refused.
pub const CLOCK_SKEW_SECS: i64 = 30;

#[cfg(test)]
mod test_util;
