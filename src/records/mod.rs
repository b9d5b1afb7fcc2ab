//! Records: the service under the `com.atproto.repo.*` record methods (create, put, delete,
//! applyWrites, get, list, describeRepo).
//!
//! The XRPC handlers parse and shape; this module decides, following the reference PDS:
//!
//! - [`input`]: a method's JSON body or query string, checked against its lexicon (the
//!   reference's messages: `Input/collection must be a valid nsid`), into typed inputs.
//! - [`prepare`]: one record made ready to write, outside the writer thread: `$type` filled in,
//!   lexicon validation as `validate` asks, record key chosen and checked, DAG-CBOR and CID.
//! - [`write`]: who may write (the account itself, active), then one commit through the
//!   database's group-committing writer; swap checks run inside that transaction, against the
//!   head and records as of that transaction.
//! - [`read`]: getRecord, listRecords, describeRepo from the record index.
//! - [`keys`]: the account signing keys, decoded once and reused while the stored key is the same.
//! - [`value`]: records in their JSON form, keys in the order the reference sends them.
//!
//! Errors are [`RecordError`]s; the API edge maps them to XRPC errors, once.

pub mod input;
pub mod keys;
pub mod prepare;
pub mod read;
pub mod value;
pub mod write;

pub use keys::SigningKeys;
pub use value::RecordValue;

use crate::accounts::AccountError;
use pds_storage::StorageError;

/// Why a record request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Bad parameters or input: malformed, or an invalid record (400 `InvalidRequest`, as the
    /// reference reports invalid records).
    #[error("{0}")]
    InvalidRequest(String),
    /// The record itself is not valid: data model or lexicon (400 `InvalidRecord`, naming the
    /// failing field; the reference says `InvalidRequest` with the same message).
    #[error("{0}")]
    InvalidRecord(String),
    /// `swapCommit` or `swapRecord` did not match (400 `InvalidSwap`).
    #[error("{0}")]
    InvalidSwap(String),
    /// The `repo` of a write names no account here (403 `AccountNotFound`).
    #[error("Account not found")]
    AccountNotFound,
    /// The repo's account was taken down (401 `AccountTakedown`).
    #[error("Account has been taken down")]
    AccountTakedown,
    /// The repo's account is deactivated (401 `AccountDeactivated`).
    #[error("Account is deactivated")]
    AccountDeactivated,
    /// The caller is not the repo's account (401 `AuthenticationRequired`).
    #[error("Authentication Required")]
    NotRepoOwner,
    /// getRecord: no such record (or not at the asked CID) (400 `RecordNotFound`).
    #[error("{0}")]
    RecordNotFound(String),
    /// describeRepo: no such repo (400 `RepoNotFound`).
    #[error("{0}")]
    RepoNotFound(String),
    /// describeRepo: the account was taken down (400 `RepoTakendown`).
    #[error("{0}")]
    RepoTakendown(String),
    /// describeRepo: the account is deactivated (400 `RepoDeactivated`).
    #[error("{0}")]
    RepoDeactivated(String),
    /// A record references a blob that cannot be linked to it (not uploaded by the account,
    /// or of another media type than stated).
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Something that should not happen (a stored record that does not decode).
    #[error("{0}")]
    Internal(String),
}

impl From<rusqlite::Error> for RecordError {
    fn from(e: rusqlite::Error) -> Self {
        RecordError::Storage(e.into())
    }
}

/// Whether a record was checked against its lexicon: the `validationStatus` of write outputs.
/// Absent (`None` where it is held) when the client turned validation off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationStatus {
    /// Checked against a known lexicon and valid.
    Valid,
    /// Its collection has no lexicon here, and the client did not require one.
    Unknown,
}

impl ValidationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Valid => "valid",
            ValidationStatus::Unknown => "unknown",
        }
    }
}
