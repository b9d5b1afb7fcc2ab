//! The authorization server's tables: pushed authorization requests on their way to a code,
//! the grants (one app signed in to one account, with its rotating refresh token), and the
//! browsers ("devices") people have signed in on, with the accounts signed in on each.
//!
//! Plain functions over a SQLite connection, run through the database's writer or readers as
//! the account functions are. Refresh tokens and authorization codes are stored as SHA-256
//! hashes: the database alone never gives anyone a working credential.

use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const SCHEMA_V1: &str = "
-- A pushed authorization request (PAR), from the push to the token request that uses its code.
CREATE TABLE oauth_request (
    id           TEXT PRIMARY KEY,    -- the request_uri's random part
    client_id    TEXT NOT NULL,
    client_auth  TEXT NOT NULL,       -- JSON ClientAuth: how the client authenticated at PAR
    parameters   TEXT NOT NULL,       -- JSON AuthorizationParameters
    dpop_jkt     TEXT,                -- the key the client proved at PAR, if any
    did          TEXT,                -- the account, once someone approved
    code_hash    TEXT UNIQUE,         -- sha256 of the code, once approved
    expires_at   INTEGER NOT NULL     -- unix seconds: the request, then the code
) WITHOUT ROWID;

-- A grant: an app's session with an account, refreshed (and rotated) until it ends.
CREATE TABLE oauth_grant (
    id                    TEXT PRIMARY KEY,
    did                   TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    client_name           TEXT,
    client_auth           TEXT NOT NULL,
    scope                 TEXT NOT NULL,    -- as granted (permission sets by name)
    permissions           TEXT NOT NULL,    -- the same, permission sets expanded: what is enforced
    dpop_jkt              TEXT NOT NULL,
    refresh_hash          TEXT NOT NULL UNIQUE,
    previous_refresh_hash TEXT UNIQUE,    -- the token rotated out last: its reuse ends the grant
    created_at            INTEGER NOT NULL,
    refreshed_at          INTEGER NOT NULL,
    refresh_expires_at    INTEGER NOT NULL,
    grant_expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX oauth_grant_did ON oauth_grant (did);

-- A browser someone signed in on, known by a cookie.
CREATE TABLE oauth_device (
    id           TEXT PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The accounts signed in on a device, and when each last gave its password there.
CREATE TABLE oauth_device_account (
    device_id        TEXT NOT NULL REFERENCES oauth_device (id) ON DELETE CASCADE,
    did              TEXT NOT NULL,
    authenticated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, did)
) WITHOUT ROWID;
";

const SCHEMA_V2: &str = "
-- The code a grant was made from: the code presented again ends the grant (RFC 6749 4.1.2).
ALTER TABLE oauth_grant ADD COLUMN code_hash TEXT;
CREATE INDEX oauth_grant_code ON oauth_grant (code_hash);

-- What an account has let an app do: it is asked again only for more, or when the app asks
-- (prompt=consent). Forgotten when the account revokes the app.
CREATE TABLE oauth_authorized_client (
    did           TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    permissions   TEXT NOT NULL,   -- every permission approved so far, permission sets expanded
    authorized_at INTEGER NOT NULL,
    PRIMARY KEY (did, client_id)
) WITHOUT ROWID;
";

/// Creates or upgrades the OAuth tables.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    pds_storage::migrate_component(conn, "oauth", &[SCHEMA_V1, SCHEMA_V2])
}

/// The SHA-256 of a secret token, hex: what is stored in its place.
pub fn token_hash(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// How a client authenticated: kept from the push to the token request, and from there on
/// the grant, since every later request must authenticate the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum ClientAuth {
    /// A public client: no credential of its own.
    None,
    /// `private_key_jwt`, with the key (its thumbprint) that signed the assertion.
    PrivateKeyJwt { key_thumbprint: String },
}

impl ClientAuth {
    pub fn is_confidential(&self) -> bool {
        matches!(self, ClientAuth::PrivateKeyJwt { .. })
    }
}

/// The parameters of an authorization request, as pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationParameters {
    pub redirect_uri: String,
    pub scope: String,
    /// `scope` with its permission sets expanded, as fetched when the request was pushed.
    pub permissions: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub response_mode: ResponseMode,
    pub login_hint: Option<String>,
    pub prompt: Option<String>,
}

/// How the authorization response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub fn parse(s: &str) -> Option<ResponseMode> {
        match s {
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }
}

/// A stored authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub id: String,
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub parameters: AuthorizationParameters,
    pub dpop_jkt: Option<String>,
    pub did: Option<String>,
    pub expires_at: i64,
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and enums: serialising them cannot fail.
    serde_json::to_string(value).expect("serialisable")
}

const REQUEST_COLUMNS: &str = "id, client_id, client_auth, parameters, dpop_jkt, did, expires_at";

fn request_from_row(row: &Row<'_>) -> rusqlite::Result<AuthorizationRequest> {
    Ok(AuthorizationRequest {
        id: row.get(0)?,
        client_id: row.get(1)?,
        client_auth: json_column(row, 2)?,
        parameters: json_column(row, 3)?,
        dpop_jkt: row.get(4)?,
        did: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

/// Stores a pushed request.
pub fn insert_request(conn: &Connection, request: &AuthorizationRequest) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO oauth_request (id, client_id, client_auth, parameters, dpop_jkt, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((
        &request.id,
        &request.client_id,
        to_json(&request.client_auth),
        to_json(&request.parameters),
        &request.dpop_jkt,
        request.expires_at,
    ))?;
    Ok(())
}

/// A pending (not yet approved, not expired) request.
pub fn pending_request(
    conn: &Connection,
    id: &str,
    now: i64,
) -> rusqlite::Result<Option<AuthorizationRequest>> {
    conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM oauth_request
         WHERE id = ?1 AND code_hash IS NULL AND expires_at > ?2"
    ))?
    .query_row((id, now), request_from_row)
    .optional()
}

/// Approves a pending request for `did`: the code (hashed) now stands for it until
/// `code_expires_at`. False if the request was no longer pending.
pub fn approve_request(
    conn: &Connection,
    id: &str,
    did: &str,
    code: &str,
    code_expires_at: i64,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE oauth_request SET did = ?2, code_hash = ?3, expires_at = ?4
             WHERE id = ?1 AND code_hash IS NULL AND expires_at > ?5",
        )?
        .execute((id, did, token_hash(code), code_expires_at, now))?;
    Ok(changed == 1)
}

/// Removes a request (denied, or its code used).
pub fn delete_request(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM oauth_request WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Takes the request a code stands for, deleting it: a code works once, and a second try
/// finds nothing whatever the first one's outcome. A code presented again after it was
/// redeemed also ends the grant it was redeemed for: one of the two parties holding it is not
/// the app.
pub fn take_code(
    conn: &Connection,
    code: &str,
    now: i64,
) -> rusqlite::Result<Option<AuthorizationRequest>> {
    let hash = token_hash(code);
    let found = conn
        .prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM oauth_request WHERE code_hash = ?1"
        ))?
        .query_row([&hash], request_from_row)
        .optional()?;
    let Some(request) = found else {
        let ended = conn
            .prepare_cached("DELETE FROM oauth_grant WHERE code_hash = ?1")?
            .execute([&hash])?;
        if ended > 0 {
            tracing::warn!("oauth: a redeemed code was presented again; its grant is ended");
        }
        return Ok(None);
    };
    delete_request(conn, &request.id)?;
    Ok((request.expires_at > now).then_some(request))
}

/// A grant: one app signed in to one account.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub did: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_auth: ClientAuth,
    pub scope: String,
    pub permissions: String,
    pub dpop_jkt: String,
    pub created_at: i64,
    pub refreshed_at: i64,
    pub refresh_expires_at: i64,
    pub grant_expires_at: i64,
}

const GRANT_COLUMNS: &str = "id, did, client_id, client_name, client_auth, scope, dpop_jkt, \
     created_at, refreshed_at, refresh_expires_at, grant_expires_at, permissions";

fn grant_from_row(row: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: row.get(0)?,
        did: row.get(1)?,
        client_id: row.get(2)?,
        client_name: row.get(3)?,
        client_auth: json_column(row, 4)?,
        scope: row.get(5)?,
        dpop_jkt: row.get(6)?,
        created_at: row.get(7)?,
        refreshed_at: row.get(8)?,
        refresh_expires_at: row.get(9)?,
        grant_expires_at: row.get(10)?,
        permissions: row.get(11)?,
    })
}

/// Stores a new grant with its first refresh token, and the code it was made from.
pub fn insert_grant(
    conn: &Connection,
    grant: &Grant,
    refresh_token: &str,
    code: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO oauth_grant (id, did, client_id, client_name, client_auth, scope, dpop_jkt,
             refresh_hash, created_at, refreshed_at, refresh_expires_at, grant_expires_at,
             permissions, code_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(rusqlite::params![
        grant.id,
        grant.did,
        grant.client_id,
        grant.client_name,
        to_json(&grant.client_auth),
        grant.scope,
        grant.dpop_jkt,
        token_hash(refresh_token),
        grant.created_at,
        grant.refreshed_at,
        grant.refresh_expires_at,
        grant.grant_expires_at,
        grant.permissions,
        token_hash(code),
    ])?;
    Ok(())
}

/// A live grant by id (what an access token names).
pub fn live_grant(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<Option<Grant>> {
    conn.prepare_cached(&format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grant WHERE id = ?1 AND grant_expires_at > ?2"
    ))?
    .query_row((id, now), grant_from_row)
    .optional()
}

/// What a presented refresh token turned out to be.
#[derive(Debug)]
pub enum RefreshLookup {
    /// The grant's current refresh token.
    Current(Grant),
    /// A token this grant already rotated out: someone replays it, so the grant is ended.
    Reused {
        grant_id: String,
    },
    Unknown,
}

pub fn find_by_refresh_token(conn: &Connection, token: &str) -> rusqlite::Result<RefreshLookup> {
    let hash = token_hash(token);
    if let Some(grant) = conn
        .prepare_cached(&format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grant WHERE refresh_hash = ?1"
        ))?
        .query_row([&hash], grant_from_row)
        .optional()?
    {
        return Ok(RefreshLookup::Current(grant));
    }
    let reused: Option<String> = conn
        .prepare_cached("SELECT id FROM oauth_grant WHERE previous_refresh_hash = ?1")?
        .query_row([&hash], |r| r.get(0))
        .optional()?;
    Ok(match reused {
        Some(grant_id) => RefreshLookup::Reused { grant_id },
        None => RefreshLookup::Unknown,
    })
}

/// Rotates a grant's refresh token: `old` must still be the current one (two concurrent
/// refreshes cannot both win). False if it no longer was.
pub fn rotate_refresh_token(
    conn: &Connection,
    grant_id: &str,
    old: &str,
    new: &str,
    now: i64,
    refresh_expires_at: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE oauth_grant SET previous_refresh_hash = refresh_hash, refresh_hash = ?3,
                 refreshed_at = ?4, refresh_expires_at = ?5
             WHERE id = ?1 AND refresh_hash = ?2",
        )?
        .execute((
            grant_id,
            token_hash(old),
            token_hash(new),
            now,
            refresh_expires_at,
        ))?;
    Ok(changed == 1)
}

/// Ends a grant: its refresh token and every access token it issued stop working.
pub fn delete_grant(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM oauth_grant WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Ends a grant only if it belongs to `did` (the account page's revoke button), and forgets
/// what the account let that app do: signing in to it again asks again.
pub fn revoke_grant_of(conn: &Connection, id: &str, did: &str) -> rusqlite::Result<bool> {
    let client_id: Option<String> = conn
        .prepare_cached("DELETE FROM oauth_grant WHERE id = ?1 AND did = ?2 RETURNING client_id")?
        .query_row([id, did], |r| r.get(0))
        .optional()?;
    let Some(client_id) = client_id else {
        return Ok(false);
    };
    conn.prepare_cached("DELETE FROM oauth_authorized_client WHERE did = ?1 AND client_id = ?2")?
        .execute([did, &client_id])?;
    Ok(true)
}

/// Ends everything OAuth an account has here: its grants (every app is signed out), its
/// sign-ins on browsers, and what it let apps do. For a password change, a takedown and the
/// account's deletion.
pub fn end_account_sessions(conn: &Connection, did: &str) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM oauth_grant WHERE did = ?1",
        "DELETE FROM oauth_device_account WHERE did = ?1",
        "DELETE FROM oauth_authorized_client WHERE did = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([did])?;
    }
    Ok(())
}

/// Everything `did` has approved for `client_id` so far (permission sets expanded), if it
/// ever approved it.
pub fn authorized_permissions(
    conn: &Connection,
    did: &str,
    client_id: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT permissions FROM oauth_authorized_client WHERE did = ?1 AND client_id = ?2",
    )?
    .query_row([did, client_id], |r| r.get(0))
    .optional()
}

/// Notes that `did` approved `permissions` (expanded) for `client_id`, beside what it approved
/// before.
pub fn remember_authorization(
    conn: &Connection,
    did: &str,
    client_id: &str,
    permissions: &str,
    now: i64,
) -> rusqlite::Result<()> {
    let mut all: Vec<&str> = permissions.split_whitespace().collect();
    let before = authorized_permissions(conn, did, client_id)?.unwrap_or_default();
    all.extend(before.split_whitespace());
    all.sort_unstable();
    all.dedup();
    conn.prepare_cached(
        "INSERT INTO oauth_authorized_client (did, client_id, permissions, authorized_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (did, client_id) DO UPDATE SET
             permissions = excluded.permissions, authorized_at = excluded.authorized_at",
    )?
    .execute((did, client_id, all.join(" "), now))?;
    Ok(())
}

/// An account's live grants, newest first.
pub fn grants_of(conn: &Connection, did: &str, now: i64) -> rusqlite::Result<Vec<Grant>> {
    conn.prepare_cached(&format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grant WHERE did = ?1 AND grant_expires_at > ?2
         ORDER BY created_at DESC, id"
    ))?
    .query_map((did, now), grant_from_row)?
    .collect()
}

/// Creates a device, or notes that it was seen.
pub fn touch_device(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO oauth_device (id, created_at, last_seen_at) VALUES (?1, ?2, ?2)
         ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )?
    .execute((id, now))?;
    Ok(())
}

/// Records that `did` gave its password on `device` now.
pub fn sign_in_on_device(
    conn: &Connection,
    device: &str,
    did: &str,
    now: i64,
) -> rusqlite::Result<()> {
    touch_device(conn, device, now)?;
    conn.prepare_cached(
        "INSERT INTO oauth_device_account (device_id, did, authenticated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id, did) DO UPDATE SET authenticated_at = excluded.authenticated_at",
    )?
    .execute((device, did, now))?;
    Ok(())
}

/// Signs one account (or, with `None`, every account) out of a device.
pub fn sign_out_of_device(
    conn: &Connection,
    device: &str,
    did: Option<&str>,
) -> rusqlite::Result<()> {
    match did {
        Some(did) => conn
            .prepare_cached("DELETE FROM oauth_device_account WHERE device_id = ?1 AND did = ?2")?
            .execute([device, did])?,
        None => conn
            .prepare_cached("DELETE FROM oauth_device_account WHERE device_id = ?1")?
            .execute([device])?,
    };
    Ok(())
}

/// The accounts signed in on a device since `since` (older sign-ins must give the password
/// again), most recent first.
pub fn device_accounts(
    conn: &Connection,
    device: &str,
    since: i64,
) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT did FROM oauth_device_account WHERE device_id = ?1 AND authenticated_at > ?2
         ORDER BY authenticated_at DESC, did",
    )?
    .query_map((device, since), |r| r.get(0))?
    .collect()
}

/// Deletes what has expired: requests and codes, grants, and device sign-ins older than
/// `device_since`.
pub fn purge_expired(conn: &Connection, now: i64, device_since: i64) -> rusqlite::Result<usize> {
    let mut purged = conn
        .prepare_cached("DELETE FROM oauth_request WHERE expires_at <= ?1")?
        .execute([now])?;
    purged += conn
        .prepare_cached(
            "DELETE FROM oauth_grant WHERE grant_expires_at <= ?1 OR refresh_expires_at <= ?1",
        )?
        .execute([now])?;
    purged += conn
        .prepare_cached("DELETE FROM oauth_device_account WHERE authenticated_at <= ?1")?
        .execute([device_since])?;
    purged += conn
        .prepare_cached(
            "DELETE FROM oauth_device WHERE last_seen_at <= ?1
             AND id NOT IN (SELECT device_id FROM oauth_device_account)",
        )?
        .execute([device_since])?;
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        conn
    }

    fn request(id: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            id: id.into(),
            client_id: "http://localhost".into(),
            client_auth: ClientAuth::None,
            parameters: AuthorizationParameters {
                redirect_uri: "http://127.0.0.1/cb".into(),
                scope: "atproto".into(),
                permissions: "atproto".into(),
                state: Some("s".into()),
                code_challenge: "c".repeat(43),
                response_mode: ResponseMode::Query,
                login_hint: None,
                prompt: None,
            },
            dpop_jkt: Some("jkt".into()),
            did: None,
            expires_at: 100,
        }
    }

    #[test]
    fn a_code_is_issued_once_and_used_once() {
        let conn = conn();
        insert_request(&conn, &request("r1")).unwrap();
        assert!(pending_request(&conn, "r1", 50).unwrap().is_some());
        assert!(
            pending_request(&conn, "r1", 100).unwrap().is_none(),
            "expired"
        );
        assert!(approve_request(&conn, "r1", "did:plc:a", "code-1", 160, 50).unwrap());
        // Approved: no longer pending, and cannot be approved twice.
        assert!(pending_request(&conn, "r1", 50).unwrap().is_none());
        assert!(!approve_request(&conn, "r1", "did:plc:b", "code-2", 160, 50).unwrap());
        assert!(take_code(&conn, "code-2", 60).unwrap().is_none());
        let taken = take_code(&conn, "code-1", 60).unwrap().unwrap();
        assert_eq!(taken.did.as_deref(), Some("did:plc:a"));
        assert!(
            take_code(&conn, "code-1", 60).unwrap().is_none(),
            "used once"
        );
    }

    #[test]
    fn an_expired_code_is_consumed_but_refused() {
        let conn = conn();
        insert_request(&conn, &request("r1")).unwrap();
        assert!(approve_request(&conn, "r1", "did:plc:a", "code", 70, 50).unwrap());
        assert!(take_code(&conn, "code", 70).unwrap().is_none());
        assert!(take_code(&conn, "code", 60).unwrap().is_none());
    }

    fn grant(id: &str) -> Grant {
        Grant {
            id: id.into(),
            did: "did:plc:a".into(),
            client_id: "https://app.example/client.json".into(),
            client_name: Some("App".into()),
            client_auth: ClientAuth::PrivateKeyJwt {
                key_thumbprint: "t".into(),
            },
            scope: "atproto".into(),
            permissions: "atproto".into(),
            dpop_jkt: "jkt".into(),
            created_at: 1,
            refreshed_at: 1,
            refresh_expires_at: 1000,
            grant_expires_at: 2000,
        }
    }

    #[test]
    fn refresh_tokens_rotate_and_a_reused_one_is_recognised() {
        let conn = conn();
        insert_grant(&conn, &grant("g1"), "rt-1", "code-1").unwrap();
        assert!(matches!(
            find_by_refresh_token(&conn, "rt-1").unwrap(),
            RefreshLookup::Current(g) if g.client_auth.is_confidential()
        ));
        assert!(rotate_refresh_token(&conn, "g1", "rt-1", "rt-2", 5, 1005).unwrap());
        assert!(!rotate_refresh_token(&conn, "g1", "rt-1", "rt-3", 5, 1005).unwrap());
        assert!(matches!(
            find_by_refresh_token(&conn, "rt-1").unwrap(),
            RefreshLookup::Reused { grant_id } if grant_id == "g1"
        ));
        assert!(matches!(
            find_by_refresh_token(&conn, "rt-2").unwrap(),
            RefreshLookup::Current(_)
        ));
        assert!(matches!(
            find_by_refresh_token(&conn, "nope").unwrap(),
            RefreshLookup::Unknown
        ));
        assert!(!revoke_grant_of(&conn, "g1", "did:plc:other").unwrap());
        assert_eq!(grants_of(&conn, "did:plc:a", 5).unwrap().len(), 1);
        assert!(delete_grant(&conn, "g1").unwrap());
        assert!(live_grant(&conn, "g1", 5).unwrap().is_none());
    }

    #[test]
    fn devices_remember_recent_sign_ins() {
        let conn = conn();
        sign_in_on_device(&conn, "d1", "did:plc:a", 10).unwrap();
        sign_in_on_device(&conn, "d1", "did:plc:b", 20).unwrap();
        assert_eq!(
            device_accounts(&conn, "d1", 0).unwrap(),
            vec!["did:plc:b".to_string(), "did:plc:a".to_string()]
        );
        assert_eq!(
            device_accounts(&conn, "d1", 15).unwrap(),
            vec!["did:plc:b".to_string()]
        );
        sign_out_of_device(&conn, "d1", Some("did:plc:b")).unwrap();
        assert_eq!(
            device_accounts(&conn, "d1", 0).unwrap(),
            vec!["did:plc:a".to_string()]
        );
        assert_eq!(purge_expired(&conn, 0, 15).unwrap(), 1);
        assert!(device_accounts(&conn, "d1", 0).unwrap().is_empty());
    }

    #[test]
    fn approvals_accumulate_and_revoking_the_app_forgets_them() {
        let conn = conn();
        assert_eq!(
            authorized_permissions(&conn, "did:plc:a", "app").unwrap(),
            None
        );
        remember_authorization(&conn, "did:plc:a", "app", "atproto repo:x.y.z", 1).unwrap();
        remember_authorization(&conn, "did:plc:a", "app", "atproto blob:*/*", 2).unwrap();
        assert_eq!(
            authorized_permissions(&conn, "did:plc:a", "app")
                .unwrap()
                .as_deref(),
            Some("atproto blob:*/* repo:x.y.z")
        );
        let mut g = grant("g1");
        g.client_id = "app".into();
        insert_grant(&conn, &g, "rt-1", "code-1").unwrap();
        assert!(revoke_grant_of(&conn, "g1", "did:plc:a").unwrap());
        assert_eq!(
            authorized_permissions(&conn, "did:plc:a", "app").unwrap(),
            None
        );
    }

    #[test]
    fn a_redeemed_code_presented_again_ends_its_grant() {
        let conn = conn();
        insert_grant(&conn, &grant("g1"), "rt-1", "code-1").unwrap();
        assert!(take_code(&conn, "code-2", 5).unwrap().is_none());
        assert!(live_grant(&conn, "g1", 5).unwrap().is_some());
        assert!(take_code(&conn, "code-1", 5).unwrap().is_none());
        assert!(live_grant(&conn, "g1", 5).unwrap().is_none());
    }
}
