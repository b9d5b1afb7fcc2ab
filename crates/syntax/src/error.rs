//! The crate's single error type.

/// Why a string was rejected as an identifier.
///
/// One variant per identifier kind, so callers can tell *what* was being
/// parsed; the `&'static str` says *why*. The rejected input is deliberately
/// not included: it can be up to 8 KiB of untrusted text and usually ends up
/// in logs or in an XRPC error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("invalid DID: {0}")]
    Did(&'static str),
    #[error("invalid handle: {0}")]
    Handle(&'static str),
    #[error("invalid at-identifier: {0}")]
    AtIdentifier(&'static str),
    #[error("invalid NSID: {0}")]
    Nsid(&'static str),
    #[error("invalid record key: {0}")]
    RecordKey(&'static str),
    #[error("invalid AT-URI: {0}")]
    AtUri(&'static str),
    #[error("invalid TID: {0}")]
    Tid(&'static str),
    #[error("invalid datetime: {0}")]
    Datetime(&'static str),
    #[error("invalid language tag: {0}")]
    Language(&'static str),
}
