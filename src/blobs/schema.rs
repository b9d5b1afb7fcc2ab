//! The blob tables. They live in the shared database beside the repos, so linking a record's
//! blobs happens in the same transaction as the commit that writes the record.

use rusqlite::Connection;

const V1: &str = "
-- One row per blob an account uploaded and that is still stored.
CREATE TABLE blob (
    did          TEXT NOT NULL,
    cid          TEXT NOT NULL,             -- base32 CID string: CIDv1, raw codec, sha2-256
    mime_type    TEXT NOT NULL,
    size         INTEGER NOT NULL,          -- bytes
    created_at   INTEGER NOT NULL,          -- unix ms of the latest upload; GC grace counts from it
    linked       INTEGER NOT NULL DEFAULT 0, -- 1 while a record_blob row points at it
    takedown_ref TEXT,
    PRIMARY KEY (did, cid)
) WITHOUT ROWID;
-- What the garbage collector looks at: unreferenced blobs, oldest first.
CREATE INDEX blob_unlinked ON blob (created_at) WHERE linked = 0;
-- Which record references which blob. A row may name a blob that is not (yet) stored: after a
-- repo import, until the blob is uploaded again (com.atproto.repo.listMissingBlobs).
CREATE TABLE record_blob (
    did        TEXT NOT NULL,
    blob_cid   TEXT NOT NULL,
    record_uri TEXT NOT NULL,               -- at://<did>/<collection>/<rkey>
    rev        TEXT NOT NULL,               -- the repo rev that wrote the record
    PRIMARY KEY (did, blob_cid, record_uri)
) WITHOUT ROWID;
CREATE INDEX record_blob_record ON record_blob (did, record_uri);
";

const V2: &str = "
-- Holds on deleting blob files: while one is in force (a `pds backup` copying the blobs its
-- database snapshot references), the collector and account deletion delete no file. Another
-- process places it, so it lives here, in the database both share.
CREATE TABLE blob_deletion_hold (
    holder   TEXT PRIMARY KEY,              -- who holds it, e.g. `backup <pid>`
    until_ms INTEGER NOT NULL               -- unix ms; a holder that died stops holding then
) WITHOUT ROWID;
";

/// Creates or upgrades the blob tables.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    pds_storage::migrate_component(conn, "blobs", &[V1, V2])
}
