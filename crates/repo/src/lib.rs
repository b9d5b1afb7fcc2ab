//! AT Protocol repositories: the Merkle Search Tree (MST), signed v3 commits, and whole-repo CAR
//! import and export.
//!
//! Owns: the structure of a repository. [`mst::Mst`] maps `collection/rkey` keys to record CIDs
//! and is byte-exact with every other implementation (root CIDs are pinned by the community's
//! interop vectors); [`commit`] signs and verifies commits; [`repo::Repo`] applies batches of
//! writes and produces a [`repo::CommitData`] describing everything the commit added or removed
//! (blocks, ops, the proof blocks a firehose consumer needs); [`export`] and [`import`] move a
//! whole repository in and out as a CAR file, with full verification on the way in.
//!
//! Must not touch: storage engines, the network, accounts. Blocks are read through the
//! [`BlockSource`] trait and written by the caller from `CommitData`, so the storage layer decides
//! transactions and durability. Everything here is synchronous and pure over its inputs.

pub mod block_source;
pub mod commit;
pub mod export;
pub mod import;
pub mod mst;
pub mod repo;

pub use block_source::{BlockSource, MemoryBlocks, Overlay};
pub use cid::Cid;
pub use commit::{Commit, UnsignedCommit};
pub use repo::{CommitData, Repo, RepoOp, Write, WriteAction};

/// Everything that can go wrong with a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A block the structure points to is not in the store (or the CAR).
    #[error("missing block {0}")]
    MissingBlock(Box<Cid>),
    /// A block exists but is not what its position requires (bad CBOR, wrong shape).
    #[error("malformed {what} {cid}: {reason}")]
    Malformed {
        what: &'static str,
        cid: Box<Cid>,
        reason: String,
    },
    /// The MST is not in the one canonical shape its keys define.
    #[error("invalid MST: {0}")]
    InvalidMst(String),
    /// A key that is not a valid `collection/rkey` repo path.
    #[error("invalid record path {0:?}")]
    InvalidPath(String),
    /// Create of a key that exists, update or delete of one that does not.
    #[error("{0}")]
    WriteConflict(String),
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
    #[error("bad commit signature: {0}")]
    BadSignature(String),
    #[error(transparent)]
    Ipld(#[from] pds_ipld::Error),
    /// An error of the block store behind [`BlockSource`].
    #[error("storage: {0}")]
    Storage(String),
}

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

impl RepoError {
    /// A block that should be there is not.
    pub fn missing(cid: &Cid) -> RepoError {
        RepoError::MissingBlock(Box::new(*cid))
    }

    /// A block that is not what its place requires.
    pub fn malformed(what: &'static str, cid: &Cid, reason: impl Into<String>) -> RepoError {
        RepoError::Malformed {
            what,
            cid: Box::new(*cid),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests;
