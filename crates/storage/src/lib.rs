//! SQLite storage of repositories: every account's blocks, its current commit (the head), and an
//! index of its records, in one database file.
//!
//! Owns: the schema, durability settings (WAL; `synchronous` NORMAL or FULL), and persisting what
//! `pds-repo` computes. A commit's blocks, the new head and the record index change in one
//! SQLite transaction, so after a crash a repo is either at the old commit or the new one,
//! never in between. A [`StoreTx`] can hold several commits (of several accounts) so a writer
//! can group concurrent writes into one fsync.
//!
//! Why one database and not one per account: a write and the firehose event it causes must be
//! committed atomically, and SQLite makes transactions across attached WAL databases
//! non-atomic; one file also keeps a group commit to one fsync.
//!
//! Must not touch: the MST or commit formats (that is `pds-repo`), accounts, HTTP.

mod blocks;
mod database;
mod schema;
mod store;
pub mod sync_reads;

pub use blocks::RepoBlocks;
pub use database::{Database, DatabaseOptions, Stats, Writer};
pub use schema::{Durability, migrate_component};
pub use store::{RecordEntry, RepoCache, RepoCounts, RepoHead, Store, StoreTx};

/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Repo(#[from] pds_repo::RepoError),
    #[error("no repository for {0}")]
    RepoNotFound(String),
    #[error("a repository for {0} already exists")]
    RepoExists(String),
    #[error("the stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The writer thread is gone (the database is shutting down).
    #[error("the database is closed")]
    Closed,
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
