//! Two lookups in the record index of `pds-storage` (its `record` table) that its API does not
//! offer yet: a record's current CID inside a write transaction (for swaps and putRecord), and
//! the collections of a repo (describeRepo). Plain reads of the documented schema
//! (crates/storage/src/schema.rs); they belong in `pds-storage` once it grows them.

use pds_ipld::Cid;
use rusqlite::{Connection, OptionalExtension};

use super::RecordError;

/// The CID `collection/rkey` of `did`'s repo points to now, as `conn` sees it.
pub fn record_cid(
    conn: &Connection,
    did: &str,
    collection: &str,
    rkey: &str,
) -> Result<Option<Cid>, RecordError> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT cid FROM record WHERE did = ?1 AND collection = ?2 AND rkey = ?3")?
        .query_row((did, collection, rkey), |r| r.get(0))
        .optional()?;
    bytes
        .map(|b| {
            Cid::try_from(b)
                .map_err(|e| RecordError::Internal(format!("bad CID in the record index: {e}")))
        })
        .transpose()
}

/// The collections of `did`'s repo that hold at least one record, in order. One index seek per
/// collection, however many records each holds.
pub fn collections(conn: &Connection, did: &str) -> Result<Vec<String>, RecordError> {
    let mut stmt = conn.prepare_cached(
        "SELECT collection FROM record WHERE did = ?1 AND collection > ?2
         ORDER BY collection LIMIT 1",
    )?;
    let mut out: Vec<String> = Vec::new();
    loop {
        let after = out.last().map_or("", String::as_str);
        let next: Option<String> = stmt.query_row((did, after), |r| r.get(0)).optional()?;
        match next {
            Some(collection) => out.push(collection),
            None => return Ok(out),
        }
    }
}
