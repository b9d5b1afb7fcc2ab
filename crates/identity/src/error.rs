//! The crate's single error type.

use std::net::IpAddr;

use thiserror::Error;

use crate::net::BlockReason;

/// Everything that can go wrong while resolving a DID or a handle.
///
/// The variants stay distinct because the XRPC layer maps them to different
/// answers (e.g. "not found" vs. "upstream failure"). Only [`NotFound`],
/// [`InvalidDocument`], [`DidMismatch`] and [`UnsupportedDid`] are
/// definitive answers about the identity; the others describe the path to it
/// (network, DNS, limits) and are never cached.
///
/// [`NotFound`]: IdentityError::NotFound
/// [`InvalidDocument`]: IdentityError::InvalidDocument
/// [`DidMismatch`]: IdentityError::DidMismatch
/// [`UnsupportedDid`]: IdentityError::UnsupportedDid
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    /// The DID or handle does not exist: the PLC directory or did:web host
    /// answered 404/410, the handle has no `did=` record and no well-known
    /// answer, or a host name has no addresses.
    #[error("not found: {0}")]
    NotFound(String),

    /// A DID document (or a handle's well-known answer) is not what atproto
    /// requires: bad JSON, missing or mistyped fields.
    #[error("invalid DID document: {0}")]
    InvalidDocument(String),

    /// The document's `id` is not the DID that was asked for.
    #[error("DID document id {found:?} does not match the requested DID {expected:?}")]
    DidMismatch {
        /// The DID that was resolved.
        expected: String,
        /// The `id` the document carries.
        found: String,
    },

    /// The DID method (or this form of it) cannot be resolved: anything but
    /// `did:plc` and hostname-level `did:web`.
    #[error("unsupported DID: {0}")]
    UnsupportedDid(String),

    /// The handle resolved to a DID whose document does not claim the handle
    /// as its primary (first) `at://` alias.
    #[error("handle {handle} is not verified by the DID document of {did}")]
    HandleNotVerified {
        /// The handle that was resolved.
        handle: String,
        /// The DID it pointed to.
        did: String,
    },

    /// The request would have gone to an address the policy refuses
    /// (loopback, private, link-local, ...). Checked on the resolved
    /// addresses, so a public name pointing inside is caught too.
    #[error("refusing to connect to {host} ({addr}): {reason} address")]
    BlockedAddress {
        /// The host name (or literal) from the URL.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Which range it is in.
        reason: BlockReason,
    },

    /// The connection, the request or the DNS lookup took longer than
    /// allowed.
    #[error("timed out: {0}")]
    Timeout(String),

    /// The response body is larger than the limit (bytes).
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },

    /// The server answered with a status other than 200 (redirects included:
    /// identity fetches do not follow them).
    #[error("HTTP status {status} from {url}")]
    HttpStatus {
        /// The URL that was fetched.
        url: String,
        /// The status code.
        status: u16,
    },

    /// DNS lookup failed for a reason other than "no such record"
    /// (server failure, unreadable system configuration, ...).
    #[error("DNS failure: {0}")]
    Dns(String),

    /// The HTTP request failed below the HTTP layer: connection refused, TLS
    /// error, malformed response, or a URL the client will not fetch.
    #[error("request failed: {0}")]
    Transport(String),
}

impl IdentityError {
    /// Whether this is a definitive answer about the identity (worth caching
    /// as a negative result) rather than a failure on the way to it.
    pub fn is_definitive(&self) -> bool {
        matches!(
            self,
            IdentityError::NotFound(_)
                | IdentityError::InvalidDocument(_)
                | IdentityError::DidMismatch { .. }
                | IdentityError::UnsupportedDid(_)
        )
    }
}
