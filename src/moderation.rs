//! The operator's takedowns of single records (`com.atproto.admin.updateSubjectStatus` with a
//! `strongRef`): a taken-down record is not served by `com.atproto.repo.getRecord` or
//! `listRecords`, as in the reference. It stays in the signed repo (a repo cannot drop a record
//! without a new commit from its owner), so the sync API still carries it.
//!
//! Account takedowns live on the account row (`crate::accounts`), blob takedowns on the blob row
//! (`crate::blobs`). Owns the `record_takedown` table; must not change repos.

use rusqlite::{Connection, OptionalExtension};

const SCHEMA_V1: &str = "
-- Records the operator took down, by AT-URI, with the CID that was current then and the
-- operator's reference (a report id, a note).
CREATE TABLE record_takedown (
    uri          TEXT PRIMARY KEY,   -- at://<did>/<collection>/<rkey>
    cid          TEXT NOT NULL,
    takedown_ref TEXT NOT NULL
) WITHOUT ROWID;
";

/// Creates or upgrades the moderation tables.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    pds_storage::migrate_component(conn, "moderation", &[SCHEMA_V1])
}

/// Takes the record at `uri` (currently `cid`) down with `reference`, or restores it (`None`).
pub fn set_record_takedown(
    conn: &Connection,
    uri: &str,
    cid: &str,
    reference: Option<&str>,
) -> rusqlite::Result<()> {
    match reference {
        Some(reference) => conn
            .prepare_cached(
                "INSERT INTO record_takedown (uri, cid, takedown_ref) VALUES (?1, ?2, ?3)
                 ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, takedown_ref = excluded.takedown_ref",
            )?
            .execute((uri, cid, reference))?,
        None => conn
            .prepare_cached("DELETE FROM record_takedown WHERE uri = ?1")?
            .execute([uri])?,
    };
    Ok(())
}

/// The takedown reference of the record at `uri`, if it is taken down.
pub fn record_takedown(conn: &Connection, uri: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT takedown_ref FROM record_takedown WHERE uri = ?1")?
        .query_row([uri], |r| r.get(0))
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takedown_is_set_changed_and_lifted() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let uri = "at://did:plc:a/app.bsky.feed.post/1";
        assert_eq!(record_takedown(&conn, uri).unwrap(), None);
        set_record_takedown(&conn, uri, "bafy1", Some("report-1")).unwrap();
        set_record_takedown(&conn, uri, "bafy1", Some("report-2")).unwrap();
        assert_eq!(
            record_takedown(&conn, uri).unwrap().as_deref(),
            Some("report-2")
        );
        set_record_takedown(&conn, uri, "bafy1", None).unwrap();
        assert_eq!(record_takedown(&conn, uri).unwrap(), None);
    }
}
