//! Resolving AT Protocol identities from the outside world, safely.
//!
//! # What this crate owns
//!
//! - [`SafeHttpClient`]: the one outbound HTTP client for URLs that users
//!   influence (handle domains, did:web hosts; later OAuth client metadata).
//!   Time limits, a response size limit enforced while streaming, no
//!   redirects, and an address policy ([`AddressPolicy`], [`classify`])
//!   applied to the addresses DNS actually returned, so neither a literal
//!   `127.0.0.1` nor a public name pointing at the server's own network gets
//!   through (outside dev mode).
//! - [`StreamingHttpClient`]: the same rules for requests whose bodies
//!   stream both ways (service proxying), with the time limits left to the
//!   caller.
//! - DID resolution ([`DidResolver`]): `did:plc` from the operator's PLC
//!   directory, hostname-level `did:web` from `/.well-known/did.json`, parsed
//!   into a [`DidDocument`] (handle, atproto signing key, PDS endpoint, any
//!   service by id) whose `id` must be the DID asked for.
//! - Handle resolution ([`HandleResolver`]): DNS TXT `_atproto.<handle>` and
//!   `https://<handle>/.well-known/atproto-did`, with DNS behind the
//!   [`DnsResolver`] trait ([`HickoryDns`] for real, [`StaticDns`] for
//!   tests), and bidirectional verification
//!   ([`IdentityResolver::resolve_handle_verified`]).
//! - [`IdentityResolver`]: both, behind TTL caches (positive and negative,
//!   bounded, purgeable). This is what the server uses.
//! - [`IdentityError`]: one error type whose variants stay distinct for the
//!   XRPC layer.
//!
//! # What it must not touch
//!
//! No storage, no server state, no XRPC: it answers "what does the outside
//! world say about this DID or handle". It writes nothing to the PLC
//! directory (creating and signing PLC operations is a separate concern),
//! it does not decide which handles this server hosts, and it does not
//! install process-wide state (no global TLS provider, no global DNS
//! configuration). Everything it fetches goes through [`SafeHttpClient`].
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), pds_identity::IdentityError> {
//! use pds_identity::{IdentityConfig, IdentityResolver};
//! use pds_syntax::Handle;
//!
//! let resolver = IdentityResolver::new(IdentityConfig::new("https://plc.directory", false))?;
//! let did = resolver.resolve_handle_verified(&Handle::new("alice.example.com").unwrap()).await?;
//! let doc = resolver.resolve_did(&did).await?;
//! println!("{did} is hosted at {:?}", doc.pds_endpoint());
//! # Ok(()) }
//! ```

mod cached;
mod dns;
mod document;
mod error;
mod http;
mod net;
mod resolve;

pub use cached::{CacheConfig, IdentityConfig, IdentityResolver};
pub use dns::{BoxFuture, DnsResolver, HickoryDns, StaticDns};
pub use document::{DidDocument, Service, VerificationMethod};
pub use error::IdentityError;
pub use http::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT, HttpConfig, SafeHttpClient, StreamingHttpClient,
    tls_config,
};
pub use net::{AddressPolicy, BlockReason, classify};
pub use resolve::{DidResolver, HandleResolver};
