//! The account tables. They live in the same database as the repos (see `pds-storage`), so
//! creating an account and its repo is one transaction.

use rusqlite::Connection;

const V1: &str = "
CREATE TABLE account (
    did                TEXT PRIMARY KEY,
    handle             TEXT NOT NULL UNIQUE,  -- lowercase
    email              TEXT UNIQUE,           -- lowercase
    email_confirmed_at TEXT,
    password_scrypt    TEXT NOT NULL,
    signing_key        BLOB NOT NULL,         -- the account's k256 private key (repo commits)
    created_at         TEXT NOT NULL,
    deactivated_at     TEXT,
    takedown_ref       TEXT
);
-- Live refresh tokens: a token works while its row exists; refreshing replaces the row.
CREATE TABLE refresh_token (
    id                TEXT PRIMARY KEY,       -- the JWT's jti
    did               TEXT NOT NULL,
    expires_at        INTEGER NOT NULL,       -- unix seconds
    app_password_name TEXT
);
CREATE INDEX refresh_token_did ON refresh_token (did);
CREATE TABLE app_password (
    did             TEXT NOT NULL,
    name            TEXT NOT NULL,
    password_scrypt TEXT NOT NULL,
    privileged      INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (did, name)
);
CREATE TABLE invite_code (
    code           TEXT PRIMARY KEY,
    available_uses INTEGER NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    for_account    TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE TABLE invite_code_use (
    code    TEXT NOT NULL,
    used_by TEXT NOT NULL,
    used_at TEXT NOT NULL,
    PRIMARY KEY (code, used_by)
);
CREATE TABLE email_token (
    purpose      TEXT NOT NULL,
    did          TEXT NOT NULL,
    token        TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    PRIMARY KEY (purpose, did)
);
";

/// `com.atproto.server.deactivateAccount`'s `deleteAfter`: kept with the account, as the reference.
const V2: &str = "ALTER TABLE account ADD COLUMN delete_after TEXT;";
/// The operator's `disableAccountInvites`: codes made for the account stop working, and it gets
/// no new ones, until `enableAccountInvites`.
const V3: &str = "ALTER TABLE account ADD COLUMN invites_disabled INTEGER NOT NULL DEFAULT 0;";

/// Creates or upgrades the account tables.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    pds_storage::migrate_component(conn, "accounts", &[V1, V2, V3])
}
