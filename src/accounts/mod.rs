//! Accounts: who is hosted here, their handles, e-mail, passwords, signing keys, sessions.
//!
//! Plain functions over a SQLite connection: callers run them through the database's writer
//! (changes) or readers (lookups), so an account change and the repo change it goes with share
//! one transaction. Handles and e-mail addresses are stored lowercase.

pub mod app_passwords;
pub mod email_tokens;
pub mod invites;
pub mod migration;
pub mod password;
pub mod plc_operations;
pub mod schema;
pub mod service;
pub mod status;

use pds_crypto::{Algorithm, Keypair};
use rusqlite::{Connection, OptionalExtension, Row};

/// What can go wrong with accounts; mapped to XRPC errors at the API edge.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("handle already taken")]
    HandleTaken,
    #[error("email already taken")]
    EmailTaken,
    #[error("an account with this DID already exists")]
    DidTaken,
    #[error("account not found")]
    NotFound,
    #[error("invalid identifier or password")]
    BadCredentials,
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Storage(#[from] pds_storage::StorageError),
    #[error("stored key is invalid: {0}")]
    Key(String),
    #[error("invalid handle: {0}")]
    InvalidHandle(String),
    #[error("handle {0} is not under a domain this server offers")]
    UnsupportedDomain(String),
    #[error("invalid password: {0}")]
    InvalidPassword(String),
    #[error("invalid email address")]
    InvalidEmail,
    #[error("invalid recovery key: {0}")]
    InvalidRecoveryKey(String),
    /// The DID directory refused or failed.
    #[error("the DID directory: {0}")]
    Plc(String),
    /// No invite code, or one that cannot be used (the message says which).
    #[error("{0}")]
    InvalidInviteCode(String),
    /// The operator took the account down.
    #[error("Account has been taken down")]
    TakenDown,
    /// An app password request that cannot be honoured (the message says why).
    #[error("{0}")]
    AppPassword(String),
    /// A request this server does not honour as asked (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
    /// The document of a DID an account brings could not be fetched or is not valid.
    #[error("{0}")]
    UnresolvableDid(String),
    /// The document of a DID an account brings does not point here as it must (the message
    /// lists what is wrong).
    #[error("{0}")]
    IncompatibleDidDoc(String),
}

pub type Result<T, E = AccountError> = std::result::Result<T, E>;

/// An account as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub did: String,
    pub handle: String,
    pub email: Option<String>,
    pub email_confirmed: bool,
    pub created_at: String,
    pub deactivated: bool,
    pub takendown: bool,
}

impl Account {
    /// Active: neither deactivated by its owner nor taken down by the operator.
    pub fn active(&self) -> bool {
        !self.deactivated && !self.takendown
    }

    /// The status name the API reports for an inactive account.
    pub fn status(&self) -> Option<&'static str> {
        if self.takendown {
            Some("takendown")
        } else if self.deactivated {
            Some("deactivated")
        } else {
            None
        }
    }
}

const ACCOUNT_COLUMNS: &str = "did, handle, email, email_confirmed_at IS NOT NULL, created_at, deactivated_at IS NOT NULL, takedown_ref IS NOT NULL";

fn account_from(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        did: row.get(0)?,
        handle: row.get(1)?,
        email: row.get(2)?,
        email_confirmed: row.get(3)?,
        created_at: row.get(4)?,
        deactivated: row.get(5)?,
        takendown: row.get(6)?,
    })
}

/// A new account's row.
pub struct NewAccount<'a> {
    pub did: &'a str,
    pub handle: &'a str,
    pub email: Option<&'a str>,
    pub password_scrypt: &'a str,
    pub signing_key: &'a Keypair,
    pub created_at: &'a str,
    /// Migrating accounts start deactivated until their repo and identity are moved.
    pub deactivated: bool,
}

pub fn insert(conn: &Connection, new: &NewAccount<'_>) -> Result<()> {
    if by_did(conn, new.did)?.is_some() {
        return Err(AccountError::DidTaken);
    }
    if by_handle(conn, new.handle)?.is_some() {
        return Err(AccountError::HandleTaken);
    }
    if let Some(email) = new.email
        && by_email(conn, email)?.is_some()
    {
        return Err(AccountError::EmailTaken);
    }
    conn.prepare_cached(
        "INSERT INTO account (did, handle, email, password_scrypt, signing_key, created_at, deactivated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?7 THEN ?6 END)",
    )?
    .execute((
        new.did,
        new.handle.to_lowercase(),
        new.email.map(str::to_lowercase),
        new.password_scrypt,
        new.signing_key.private_bytes().to_vec(),
        new.created_at,
        new.deactivated,
    ))?;
    Ok(())
}

pub fn by_did(conn: &Connection, did: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE did = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([did], account_from)
        .optional()?)
}

pub fn by_handle(conn: &Connection, handle: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE handle = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([handle.to_lowercase()], account_from)
        .optional()?)
}

/// The DIDs of accounts whose e-mail address contains `email` (all accounts without it), in DID
/// order after `after`, at most `limit`: `com.atproto.admin.searchAccounts`.
pub fn search(
    conn: &Connection,
    email: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>> {
    let pattern = email.map(|e| {
        let escaped = e
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let mut stmt = conn.prepare_cached(
        "SELECT did FROM account
         WHERE (?1 IS NULL OR email LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR did > ?2)
         ORDER BY did LIMIT ?3",
    )?;
    let dids = stmt
        .query_map((pattern, after, limit as i64), |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(dids)
}

pub fn by_email(conn: &Connection, email: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account WHERE email = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([email.to_lowercase()], account_from)
        .optional()?)
}

/// The account, unless the operator took it down (what the reference calls `checkTakedown`).
pub fn not_taken_down(conn: &Connection, did: &str) -> Result<Account> {
    let account = by_did(conn, did)?.ok_or(AccountError::NotFound)?;
    if account.takendown {
        return Err(AccountError::TakenDown);
    }
    Ok(account)
}

/// Changes an account's handle. [`AccountError::HandleTaken`] if another account has it.
pub fn set_handle(conn: &Connection, did: &str, handle: &str) -> Result<()> {
    let handle = handle.to_lowercase();
    if let Some(other) = by_handle(conn, &handle)?
        && other.did != did
    {
        return Err(AccountError::HandleTaken);
    }
    let changed = conn
        .prepare_cached("UPDATE account SET handle = ?2 WHERE did = ?1")?
        .execute((did, &handle))?;
    if changed == 0 {
        return Err(AccountError::NotFound);
    }
    Ok(())
}

/// Deactivates an account at `at` (its owner's choice: the repo stops being served and
/// written, the data stays), with the date after which the owner wants it deleted, if any.
/// Deactivating an already deactivated account keeps its first date.
pub fn deactivate(
    conn: &Connection,
    did: &str,
    at: &str,
    delete_after: Option<&str>,
) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE account SET deactivated_at = COALESCE(deactivated_at, ?2), delete_after = ?3
             WHERE did = ?1",
        )?
        .execute((did, at, delete_after))?;
    if changed == 0 {
        return Err(AccountError::NotFound);
    }
    Ok(())
}

/// Takes the account down (`Some(reference)`: the operator's reference for the action, e.g. a
/// report number) or restores it (`None`). A takedown also ends every session.
pub fn set_takedown(conn: &Connection, did: &str, reference: Option<&str>) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE account SET takedown_ref = ?2 WHERE did = ?1")?
        .execute((did, reference))?;
    if changed == 0 {
        return Err(AccountError::NotFound);
    }
    if reference.is_some() {
        conn.prepare_cached("DELETE FROM refresh_token WHERE did = ?1")?
            .execute([did])?;
        crate::oauth::store::end_account_sessions(conn, did)?;
    }
    Ok(())
}

/// The operator's reference of the account's takedown, if it is taken down; `None` if there
/// is no such account.
pub fn takedown_ref(conn: &Connection, did: &str) -> Result<Option<Option<String>>> {
    Ok(conn
        .prepare_cached("SELECT takedown_ref FROM account WHERE did = ?1")?
        .query_row([did], |r| r.get(0))
        .optional()?)
}

/// Reactivates a deactivated account (a no-op for an active one).
pub fn activate(conn: &Connection, did: &str) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE account SET deactivated_at = NULL, delete_after = NULL WHERE did = ?1",
        )?
        .execute([did])?;
    if changed == 0 {
        return Err(AccountError::NotFound);
    }
    Ok(())
}

/// Finds an account by what a person types to log in: a handle, a DID or an e-mail address.
pub fn by_identifier(conn: &Connection, identifier: &str) -> Result<Option<Account>> {
    if identifier.starts_with("did:") {
        by_did(conn, identifier)
    } else if identifier.contains('@') {
        by_email(conn, identifier)
    } else {
        by_handle(conn, identifier)
    }
}

/// The stored password hash of an account.
pub fn password_hash(conn: &Connection, did: &str) -> Result<String> {
    conn.prepare_cached("SELECT password_scrypt FROM account WHERE did = ?1")?
        .query_row([did], |r| r.get(0))
        .optional()?
        .ok_or(AccountError::NotFound)
}

/// The account's repo signing key.
pub fn signing_key(conn: &Connection, did: &str) -> Result<Keypair> {
    let bytes: Vec<u8> = conn
        .prepare_cached("SELECT signing_key FROM account WHERE did = ?1")?
        .query_row([did], |r| r.get(0))
        .optional()?
        .ok_or(AccountError::NotFound)?;
    Keypair::from_private_bytes(Algorithm::K256, &bytes)
        .map_err(|e| AccountError::Key(e.to_string()))
}

/// An app password's stored hash.
#[derive(Debug, Clone)]
pub struct AppPasswordHash {
    pub name: String,
    pub hash: String,
    pub privileged: bool,
}

/// The app passwords of an account, to check a login against.
pub fn app_password_hashes(conn: &Connection, did: &str) -> Result<Vec<AppPasswordHash>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, password_scrypt, privileged FROM app_password WHERE did = ?1",
    )?;
    let rows = stmt.query_map([did], |r| {
        Ok(AppPasswordHash {
            name: r.get(0)?,
            hash: r.get(1)?,
            privileged: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a refresh token so it can be used (once) and revoked.
pub fn store_refresh_token(
    conn: &Connection,
    id: &str,
    did: &str,
    expires_at: i64,
    app_password: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_token (id, did, expires_at, app_password_name) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((id, did, expires_at, app_password))?;
    Ok(())
}

/// Consumes a refresh token: true if it existed (and so was valid), after which it is gone.
pub fn take_refresh_token(
    conn: &Connection,
    id: &str,
    did: &str,
) -> Result<Option<Option<String>>> {
    let app_password: Option<Option<String>> = conn
        .prepare_cached(
            "DELETE FROM refresh_token WHERE id = ?1 AND did = ?2 RETURNING app_password_name",
        )?
        .query_row((id, did), |r| r.get(0))
        .optional()?;
    Ok(app_password)
}

/// Revokes one refresh token.
pub fn revoke_refresh_token(conn: &Connection, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM refresh_token WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Drops refresh tokens that have expired (housekeeping).
pub fn purge_expired_refresh_tokens(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM refresh_token WHERE expires_at < ?1")?
        .execute([now])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_refresh_tokens_are_purged_and_live_ones_kept() {
        let conn = Connection::open_in_memory().unwrap();
        schema::migrate(&conn).unwrap();
        crate::oauth::store::migrate(&conn).unwrap();
        store_refresh_token(&conn, "old", "did:plc:a", 100, None).unwrap();
        store_refresh_token(&conn, "live", "did:plc:a", 300, Some("app")).unwrap();
        assert_eq!(purge_expired_refresh_tokens(&conn, 200).unwrap(), 1);
        assert_eq!(take_refresh_token(&conn, "old", "did:plc:a").unwrap(), None);
        assert_eq!(
            take_refresh_token(&conn, "live", "did:plc:a").unwrap(),
            Some(Some("app".into()))
        );
    }
}
