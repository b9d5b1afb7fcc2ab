//! The database schema and connection settings.

use rusqlite::Connection;

use crate::Result;

/// Bumped whenever the schema changes; `migrate` brings older files forward.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE repo_root (
    did        TEXT PRIMARY KEY,
    commit_cid BLOB NOT NULL,
    rev        TEXT NOT NULL,
    data_cid   BLOB NOT NULL
);
-- Every block of every repo. `rev` is the commit that (last) wrote it, for getRepo?since=.
CREATE TABLE repo_block (
    did   TEXT NOT NULL,
    cid   BLOB NOT NULL,
    rev   TEXT NOT NULL,
    bytes BLOB NOT NULL
);
CREATE UNIQUE INDEX repo_block_cid ON repo_block (did, cid);
CREATE INDEX repo_block_rev ON repo_block (did, rev);
-- The current records of each repo, for getRecord/listRecords without walking the MST.
CREATE TABLE record (
    did        TEXT NOT NULL,
    collection TEXT NOT NULL,
    rkey       TEXT NOT NULL,
    cid        BLOB NOT NULL,
    rev        TEXT NOT NULL,
    PRIMARY KEY (did, collection, rkey)
) WITHOUT ROWID;
CREATE INDEX record_cid ON record (did, cid);
";

/// How hard a commit is pushed to disk before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL `synchronous=NORMAL`: a committed write survives the process crashing (`kill -9`), not
    /// the machine losing power. The reference PDS runs this way (better-sqlite3's default).
    #[default]
    Normal,
    /// WAL `synchronous=FULL`: every commit is fsynced; it survives power loss too.
    Full,
}

/// Applies the settings every connection needs.
pub fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    // WAL: readers never block the writer.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Creates or upgrades the schema.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Brings one server component's own tables up to date: `steps[i]` is the SQL that takes the
/// component from version `i` to `i + 1`. Each component's version is kept in
/// `schema_version`, so components (accounts, blobs, ...) migrate independently, in the same
/// database and in the caller's transaction.
pub fn migrate_component(
    conn: &Connection,
    component: &str,
    steps: &[&str],
) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )?;
    let version: i64 = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let done = usize::try_from(version).unwrap_or(0);
    for step in steps.iter().skip(done) {
        conn.execute_batch(step)?;
    }
    conn.execute(
        "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
         ON CONFLICT (component) DO UPDATE SET version = excluded.version",
        (component, steps.len() as i64),
    )?;
    Ok(())
}
