//! Reading one repo's blocks from the database.

use std::borrow::Cow;

use pds_repo::{BlockSource, Cid, RepoError};
use rusqlite::{Connection, OptionalExtension};

/// The blocks of one repo, readable by the repo code.
pub struct RepoBlocks<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) did: &'a str,
}

impl BlockSource for RepoBlocks<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Cow<'_, [u8]>>, RepoError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT bytes FROM repo_block WHERE did = ?1 AND cid = ?2")
            .map_err(|e| RepoError::Storage(e.to_string()))?;
        stmt.query_row((self.did, cid.to_bytes()), |row| row.get::<_, Vec<u8>>(0))
            .optional()
            .map(|bytes| bytes.map(Cow::Owned))
            .map_err(|e| RepoError::Storage(e.to_string()))
    }
}
