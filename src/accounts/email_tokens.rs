//! Account management by e-mailed code: confirming and changing the e-mail address, resetting a
//! forgotten password, deleting an account; and signing keys reserved for accounts migrating in.
//!
//! Shaped as the reference PDS:
//!
//! - A code ("token") is 10 random base32 characters shown `XXXXX-XXXXX` (50 bits), one per
//!   (purpose, account): asking again replaces it. It lasts 15 minutes ([`TOKEN_TTL_MS`]) and
//!   works once: the change it allows and its deletion are one transaction. A wrong code is
//!   400 `InvalidToken`, a right one that is too old 400 `ExpiredToken`.
//! - Codes are typed by people: case, spaces and the dash do not matter.
//!
//! Unlike the reference, the `email_token.token` column holds the SHA-256 of the code, not the
//! code: a copy of the database does not hand out live codes, and finding the account of a
//! password-reset code is an index lookup on a hash, which says nothing about the code. Codes
//! checked against a known account are compared in constant time.
//!
//! Every function takes the current time (`now_ms`, unix milliseconds) from its caller, so tests
//! can move time, and runs on a connection inside the caller's transaction.

use data_encoding::HEXLOWER;
use pds_crypto::{Algorithm, Keypair};
use pds_storage::{StorageError, StoreTx};
use rusqlite::{Connection, OptionalExtension};

use super::AccountError;

/// How long a code lasts (the reference's 15 minutes).
pub const TOKEN_TTL_MS: i64 = 15 * 60 * 1000;
/// Codes are deleted this long after they expire (until then a late attempt is told
/// `ExpiredToken`, which says to ask for a new one, not `InvalidToken`).
pub const PURGE_AFTER_MS: i64 = 24 * 60 * 60 * 1000;
/// How long an unused reserved signing key is kept. The reference keeps them forever; a
/// migration that has not finished in a week is restarted with a new reservation, and the table
/// (written without authentication) cannot grow without bound.
pub const RESERVATION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Passwords set by a reset: the account-creation minimum and the reference's maximum.
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_NEW_PASSWORD_LEN: usize = 256;
/// The longest password checked against a stored one (the reference's limit for old passwords).
pub const MAX_PASSWORD_LEN: usize = 512;

const V1: &str = "
-- Signing keys reserved (com.atproto.server.reserveSigningKey) for an account about to migrate
-- in: createAccount uses the key whose did:key the old server put in the DID document.
CREATE TABLE reserved_signing_key (
    did        TEXT PRIMARY KEY,   -- the DID it is reserved for, or its own did:key if none was named
    key        BLOB NOT NULL,      -- k256 private key
    created_at TEXT NOT NULL
);
CREATE INDEX reserved_signing_key_created ON reserved_signing_key (created_at);
-- resetPassword finds the account by its code.
CREATE INDEX email_token_by_token ON email_token (purpose, token);
";

/// Creates or upgrades this component's tables. Needs the account tables
/// ([`super::schema::migrate`]) first.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    pds_storage::migrate_component(conn, "email_tokens", &[V1])
}

/// What a code is for; the names are the reference's `email_token.purpose` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmEmail,
    UpdateEmail,
    ResetPassword,
    DeleteAccount,
    PlcOperation,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ConfirmEmail => "confirm_email",
            Purpose::UpdateEmail => "update_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::DeleteAccount => "delete_account",
            Purpose::PlcOperation => "plc_operation",
        }
    }
}

/// Why an e-mailed-code flow was refused or failed; the API edge maps each to its XRPC error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Token is invalid")]
    InvalidToken,
    #[error("Token is expired")]
    ExpiredToken,
    /// updateEmail without a code, for an account whose address is confirmed.
    #[error("confirmation token required")]
    TokenRequired,
    /// confirmEmail for another address than the account's.
    #[error("invalid email")]
    EmailMismatch,
    #[error("account does not have an email address")]
    NoEmail,
    #[error("This email address is already in use, please use a different email.")]
    EmailTaken,
    #[error("This email address is not supported, please use a different email.")]
    InvalidEmail,
    #[error("{0}")]
    InvalidPassword(String),
    #[error("Invalid did or password")]
    BadCredentials,
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Blob(#[from] crate::blobs::BlobError),
    #[error("stored key is invalid: {0}")]
    Key(String),
    #[error(transparent)]
    Mail(#[from] crate::mailer::MailError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for crate::api::ApiError {
    fn from(e: Error) -> Self {
        use crate::api::ApiError;
        use axum::http::StatusCode;
        let message = e.to_string();
        let bad =
            |name: &'static str| ApiError::new(StatusCode::BAD_REQUEST, name, message.clone());
        match e {
            Error::InvalidToken => bad("InvalidToken"),
            Error::ExpiredToken => ApiError::expired_token(message),
            Error::TokenRequired => bad("TokenRequired"),
            Error::EmailMismatch => bad("InvalidEmail"),
            Error::EmailTaken => bad("EmailNotAvailable"),
            Error::InvalidEmail | Error::NoEmail | Error::InvalidRequest(_) => {
                ApiError::invalid_request(message)
            }
            Error::InvalidPassword(_) => bad("InvalidPassword"),
            Error::BadCredentials => ApiError::authentication_required(message),
            Error::Account(inner) => inner.into(),
            Error::Blob(inner) => inner.into(),
            Error::Mail(inner) => inner.into(),
            Error::Db(_) | Error::Storage(_) | Error::Key(_) => ApiError::internal(message),
        }
    }
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new code: `XXXXX-XXXXX`, upper-case base32 (`A-Z`, `2-7`).
pub fn generate() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    let text = data_encoding::BASE32_NOPAD.encode(&bytes);
    format!("{}-{}", &text[..5], &text[5..10])
}

/// A code as typed, in its one canonical form; `None` if it cannot be one of ours.
pub fn canonical(input: &str) -> Option<String> {
    let mut chars = String::with_capacity(10);
    for c in input.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = c.to_ascii_uppercase();
        if !matches!(c, 'A'..='Z' | '2'..='7') || chars.len() == 10 {
            return None;
        }
        chars.push(c);
    }
    (chars.len() == 10).then(|| format!("{}-{}", &chars[..5], &chars[5..]))
}

/// What is stored for a code.
fn digest(canonical: &str) -> String {
    HEXLOWER.encode(&pds_ipld::sha256(canonical.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `ms` as an atproto datetime, `YYYY-MM-DDTHH:MM:SS.mmmZ` (what `Datetime::now` writes).
pub fn datetime_from_ms(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// SQL for a stored datetime column as unix milliseconds (NULL if it does not parse).
const MS_OF: &str = "CAST(round((julianday({}) - 2440587.5) * 86400000.0) AS INTEGER)";

fn ms_of(column: &str) -> String {
    MS_OF.replace("{}", column)
}

/// Makes a code for `did` and `purpose`, replacing any earlier one, and returns it. Also drops
/// every code that expired more than [`PURGE_AFTER_MS`] ago, whoever's it was.
pub fn create(conn: &Connection, did: &str, purpose: Purpose, now_ms: i64) -> Result<String> {
    let sql = format!(
        "DELETE FROM email_token WHERE coalesce({}, 0) <= ?1",
        ms_of("requested_at")
    );
    conn.prepare_cached(&sql)?
        .execute([now_ms - TOKEN_TTL_MS - PURGE_AFTER_MS])?;
    let token = generate();
    conn.prepare_cached(
        "INSERT INTO email_token (purpose, did, token, requested_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (purpose, did) DO UPDATE SET token = excluded.token, requested_at = excluded.requested_at",
    )?
    .execute((purpose.as_str(), did, digest(&token), datetime_from_ms(now_ms)))?;
    Ok(token)
}

/// Checks a code for `did` and `purpose`: [`Error::InvalidToken`] unless it is the live one,
/// [`Error::ExpiredToken`] if it is right but too old. Does not use it up ([`consume`] does).
pub fn check(
    conn: &Connection,
    did: &str,
    purpose: Purpose,
    token: &str,
    now_ms: i64,
) -> Result<()> {
    let given = canonical(token).map(|t| digest(&t));
    let sql = format!(
        "SELECT token, {} FROM email_token WHERE purpose = ?1 AND did = ?2",
        ms_of("requested_at")
    );
    let stored: Option<(String, Option<i64>)> = conn
        .prepare_cached(&sql)?
        .query_row((purpose.as_str(), did), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (Some(given), Some((stored, requested_ms))) = (given, stored) else {
        return Err(Error::InvalidToken);
    };
    if !constant_time_eq(given.as_bytes(), stored.as_bytes()) {
        return Err(Error::InvalidToken);
    }
    expiry(requested_ms, now_ms)
}

fn expiry(requested_ms: Option<i64>, now_ms: i64) -> Result<()> {
    match requested_ms {
        Some(at) if now_ms - at < TOKEN_TTL_MS => Ok(()),
        _ => Err(Error::ExpiredToken),
    }
}

/// The account a code for `purpose` was made for (password resets name no account).
pub fn find_did(conn: &Connection, purpose: Purpose, token: &str, now_ms: i64) -> Result<String> {
    let given = canonical(token)
        .map(|t| digest(&t))
        .ok_or(Error::InvalidToken)?;
    let sql = format!(
        "SELECT did, {} FROM email_token WHERE purpose = ?1 AND token = ?2",
        ms_of("requested_at")
    );
    let (did, requested_ms): (String, Option<i64>) = conn
        .prepare_cached(&sql)?
        .query_row((purpose.as_str(), &given), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(Error::InvalidToken)?;
    expiry(requested_ms, now_ms)?;
    Ok(did)
}

/// Uses up the code of `did` for `purpose`.
pub fn consume(conn: &Connection, did: &str, purpose: Purpose) -> Result<()> {
    conn.prepare_cached("DELETE FROM email_token WHERE purpose = ?1 AND did = ?2")?
        .execute((purpose.as_str(), did))?;
    Ok(())
}

/// Checks and uses up a code in one step (inside the transaction of what it allows).
pub fn redeem(
    conn: &Connection,
    did: &str,
    purpose: Purpose,
    token: &str,
    now_ms: i64,
) -> Result<()> {
    check(conn, did, purpose, token, now_ms)?;
    consume(conn, did, purpose)
}

/// Drops every code of `did`.
pub fn delete_all(conn: &Connection, did: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM email_token WHERE did = ?1")?
        .execute([did])?;
    Ok(())
}

/// Whether an address is one we can store and send to: `local@domain.tld`, no spaces, no
/// control characters, at most 254 bytes (RFC 5321's path limit).
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

/// The account's e-mail address, for the flows that send to it; refuses a taken-down account.
pub fn account_email(conn: &Connection, did: &str) -> Result<(super::Account, String)> {
    let account = super::not_taken_down(conn, did)?;
    let email = account.email.clone().ok_or(Error::NoEmail)?;
    Ok((account, email))
}

/// confirmEmail: marks the address confirmed if `email` is the account's and `token` its live
/// confirmation code.
pub fn confirm_email(
    conn: &Connection,
    did: &str,
    email: &str,
    token: &str,
    now_ms: i64,
) -> Result<()> {
    let account = super::not_taken_down(conn, did)?;
    let email = email.trim().to_lowercase();
    if account.email.as_deref() != Some(email.as_str()) {
        return Err(Error::EmailMismatch);
    }
    redeem(conn, did, Purpose::ConfirmEmail, token, now_ms)?;
    conn.prepare_cached("UPDATE account SET email_confirmed_at = ?2 WHERE did = ?1")?
        .execute((did, datetime_from_ms(now_ms)))?;
    Ok(())
}

/// updateEmail: sets a new address (unconfirmed), needing the update code when the current one
/// is confirmed. Every outstanding code of the account goes (they were sent to the old
/// address). Setting the address the account already has changes nothing but uses the code.
pub fn update_email(
    conn: &Connection,
    did: &str,
    email: &str,
    token: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    let email = email.trim().to_lowercase();
    if !is_valid_email(&email) {
        return Err(Error::InvalidEmail);
    }
    let account = super::not_taken_down(conn, did)?;
    if account.email_confirmed {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or(Error::TokenRequired)?;
        check(conn, did, Purpose::UpdateEmail, token, now_ms)?;
    }
    if account.email.as_deref() == Some(email.as_str()) {
        return consume(conn, did, Purpose::UpdateEmail);
    }
    if super::by_email(conn, &email)?.is_some() {
        return Err(Error::EmailTaken);
    }
    conn.prepare_cached("UPDATE account SET email = ?2, email_confirmed_at = NULL WHERE did = ?1")?
        .execute((did, &email))?;
    delete_all(conn, did)
}

/// resetPassword, inside the write: uses up the reset code, stores the new password hash (made
/// beforehand, off the writer) and revokes every refresh token of the account. Returns the DID.
pub fn reset_password(
    conn: &Connection,
    token: &str,
    password_scrypt: &str,
    now_ms: i64,
) -> Result<String> {
    let did = find_did(conn, Purpose::ResetPassword, token, now_ms)?;
    set_password(conn, &did, password_scrypt)?;
    Ok(did)
}

/// A new password for `did` (its hash made beforehand, off the writer): every refresh token of
/// the account is revoked and an outstanding reset code goes, as the reference does; app
/// passwords stay.
pub fn set_password(conn: &Connection, did: &str, password_scrypt: &str) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE account SET password_scrypt = ?2 WHERE did = ?1")?
        .execute((did, password_scrypt))?;
    if changed == 0 {
        return Err(AccountError::NotFound.into());
    }
    consume(conn, did, Purpose::ResetPassword)?;
    conn.prepare_cached("DELETE FROM refresh_token WHERE did = ?1")?
        .execute([did])?;
    // A new password also signs every OAuth app and browser out.
    crate::oauth::store::end_account_sessions(conn, did)?;
    Ok(())
}

/// The operator sets `did`'s e-mail address (unconfirmed); outstanding codes go (they were sent
/// to the old address). An address another account has is refused.
pub fn set_email(conn: &Connection, did: &str, email: &str) -> Result<()> {
    let email = email.trim().to_lowercase();
    if !is_valid_email(&email) {
        return Err(Error::InvalidEmail);
    }
    let account = super::by_did(conn, did)?.ok_or(AccountError::NotFound)?;
    if account.email.as_deref() == Some(email.as_str()) {
        return Ok(());
    }
    if super::by_email(conn, &email)?.is_some() {
        return Err(Error::EmailTaken);
    }
    conn.prepare_cached("UPDATE account SET email = ?2, email_confirmed_at = NULL WHERE did = ?1")?
        .execute((did, &email))?;
    delete_all(conn, did)
}

/// Checks a new password's length.
pub fn check_new_password(password: &str) -> Result<()> {
    if password.len() > MAX_NEW_PASSWORD_LEN {
        return Err(Error::InvalidRequest("Invalid password length.".into()));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::InvalidPassword(format!(
            "use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// deleteAccount, inside one write transaction: uses up the deletion code, then removes the
/// account row, its sessions (refresh tokens), app passwords, codes, reserved key, preferences,
/// the operator's takedowns of its records, blob rows and its repo (blocks, records, head). The blob files go after the commit
/// (`Blobs::delete_account_files`).
pub fn delete_account(tx: &StoreTx<'_>, did: &str, token: &str, now_ms: i64) -> Result<()> {
    redeem(tx.connection(), did, Purpose::DeleteAccount, token, now_ms)?;
    remove_account(tx, did)
}

/// Removes the account `did` and everything it has here (see [`delete_account`]), inside the
/// caller's write transaction: for the operator's `com.atproto.admin.deleteAccount`, which
/// needs no code.
pub fn remove_account(tx: &StoreTx<'_>, did: &str) -> Result<()> {
    let conn = tx.connection();
    for sql in [
        "DELETE FROM refresh_token WHERE did = ?1",
        "DELETE FROM app_password WHERE did = ?1",
        "DELETE FROM email_token WHERE did = ?1",
        "DELETE FROM reserved_signing_key WHERE did = ?1",
        "DELETE FROM account_pref WHERE did = ?1",
        // The operator's takedowns of its records: `at://<did>/...`.
        "DELETE FROM record_takedown WHERE uri >= 'at://' || ?1 || '/' AND uri < 'at://' || ?1 || '0'",
    ] {
        conn.prepare_cached(sql)?.execute([did])?;
    }
    crate::oauth::store::end_account_sessions(conn, did)?;
    crate::blobs::delete_account_rows(conn, did)?;
    tx.delete_repo(did)?;
    let deleted = conn
        .prepare_cached("DELETE FROM account WHERE did = ?1")?
        .execute([did])?;
    if deleted == 0 {
        return Err(AccountError::NotFound.into());
    }
    Ok(())
}

/// reserveSigningKey: the did:key of the signing key reserved for `did`, reserving `candidate`
/// if none is (the same DID asking again gets the same key, as the reference). Without a DID the
/// key is reserved under its own did:key. Drops reservations older than [`RESERVATION_TTL_MS`].
pub fn reserve_signing_key(
    conn: &Connection,
    did: Option<&str>,
    candidate: &Keypair,
    now_ms: i64,
) -> Result<String> {
    // Timestamps are fixed-format UTC text, which sorts in time order: a plain comparison
    // uses the index (a computed one would scan the whole table on the writer thread).
    conn.prepare_cached("DELETE FROM reserved_signing_key WHERE created_at < ?1")?
        .execute([datetime_from_ms(now_ms - RESERVATION_TTL_MS)])?;
    if let Some(did) = did
        && let Some(existing) = reserved_key(conn, did)?
    {
        return Ok(existing.did_key());
    }
    let did_key = candidate.did_key();
    conn.prepare_cached(
        "INSERT INTO reserved_signing_key (did, key, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (did) DO NOTHING",
    )?
    .execute((
        did.unwrap_or(&did_key),
        candidate.private_bytes().to_vec(),
        datetime_from_ms(now_ms),
    ))?;
    Ok(did_key)
}

/// The key reserved under `did_or_key` (a DID, or the did:key of a key reserved without one).
pub fn reserved_key(conn: &Connection, did_or_key: &str) -> Result<Option<Keypair>> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT key FROM reserved_signing_key WHERE did = ?1")?
        .query_row([did_or_key], |r| r.get(0))
        .optional()?;
    bytes
        .map(|b| {
            Keypair::from_private_bytes(Algorithm::K256, &b).map_err(|e| Error::Key(e.to_string()))
        })
        .transpose()
}

/// Forgets a reservation once an account has taken its key.
pub fn clear_reserved_key(conn: &Connection, did_or_key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM reserved_signing_key WHERE did = ?1")?
        .execute([did_or_key])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{self, NewAccount};

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    const OTHER: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    const T0: i64 = 1_700_000_000_000;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        accounts::schema::migrate(&conn).unwrap();
        crate::oauth::store::migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        // Twice is harmless.
        migrate(&conn).unwrap();
        conn
    }

    fn add_account(conn: &Connection, did: &str, handle: &str, email: &str) {
        let key = Keypair::generate(Algorithm::K256);
        accounts::insert(
            conn,
            &NewAccount {
                did,
                handle,
                email: Some(email),
                password_scrypt: "old-hash",
                signing_key: &key,
                created_at: "2024-01-01T00:00:00.000Z",
                deactivated: false,
            },
        )
        .unwrap();
    }

    #[test]
    fn codes_have_the_reference_shape_and_forgiving_input() {
        for _ in 0..50 {
            let t = generate();
            assert_eq!(t.len(), 11, "{t}");
            assert_eq!(&t[5..6], "-");
            assert!(
                t.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7' | '-')),
                "{t}"
            );
            assert_eq!(canonical(&t).as_deref(), Some(t.as_str()));
        }
        assert_ne!(generate(), generate());
        assert_eq!(canonical(" abcde-fgh23 ").as_deref(), Some("ABCDE-FGH23"));
        assert_eq!(canonical("ABCDEFGH23").as_deref(), Some("ABCDE-FGH23"));
        for bad in [
            "",
            "ABCDE-FGH2",
            "ABCDE-FGH234",
            "ABCDE-FGH18",
            "ÄBCDE-FGH23",
            "ABCDE_FGH23",
        ] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn datetimes_from_milliseconds() {
        assert_eq!(datetime_from_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(datetime_from_ms(T0 + 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            datetime_from_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        // SQLite reads them back to the millisecond.
        let conn = Connection::open_in_memory().unwrap();
        for ms in [0, T0 + 123, 951_782_400_999, 4_102_444_799_999] {
            let back: i64 = conn
                .query_row(
                    &format!("SELECT {}", ms_of("?1")),
                    [datetime_from_ms(ms)],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(back, ms);
        }
        // Datetime::now writes the same shape.
        let now = pds_syntax::Datetime::now().to_string();
        assert_eq!(now.len(), datetime_from_ms(T0).len(), "{now}");
    }

    #[test]
    fn codes_work_once_for_their_account_and_purpose_and_expire() {
        let conn = db();
        let token = create(&conn, DID, Purpose::ConfirmEmail, T0).unwrap();
        // Stored hashed.
        let stored: String = conn
            .query_row("SELECT token FROM email_token", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token);
        assert_eq!(stored.len(), 64);

        let wrong = |r: Result<()>| assert!(matches!(r, Err(Error::InvalidToken)), "{r:?}");
        wrong(check(&conn, DID, Purpose::ConfirmEmail, "AAAAA-AAAAA", T0));
        wrong(check(&conn, DID, Purpose::ConfirmEmail, "garbage", T0));
        wrong(check(&conn, DID, Purpose::UpdateEmail, &token, T0));
        wrong(check(&conn, OTHER, Purpose::ConfirmEmail, &token, T0));
        check(&conn, DID, Purpose::ConfirmEmail, &token.to_lowercase(), T0).unwrap();
        check(
            &conn,
            DID,
            Purpose::ConfirmEmail,
            &token,
            T0 + TOKEN_TTL_MS - 1,
        )
        .unwrap();
        assert!(matches!(
            check(&conn, DID, Purpose::ConfirmEmail, &token, T0 + TOKEN_TTL_MS),
            Err(Error::ExpiredToken)
        ));
        // A wrong code stays wrong after expiry (expiry says nothing about codes never sent).
        wrong(check(
            &conn,
            DID,
            Purpose::ConfirmEmail,
            "AAAAA-AAAAA",
            T0 + TOKEN_TTL_MS,
        ));

        redeem(&conn, DID, Purpose::ConfirmEmail, &token, T0 + 1).unwrap();
        wrong(redeem(&conn, DID, Purpose::ConfirmEmail, &token, T0 + 2));

        // Asking again replaces the code.
        let first = create(&conn, DID, Purpose::ResetPassword, T0).unwrap();
        let second = create(&conn, DID, Purpose::ResetPassword, T0 + 10).unwrap();
        assert!(matches!(
            find_did(&conn, Purpose::ResetPassword, &first, T0 + 20),
            Err(Error::InvalidToken)
        ));
        assert_eq!(
            find_did(&conn, Purpose::ResetPassword, &second, T0 + 20).unwrap(),
            DID
        );
        assert!(matches!(
            find_did(
                &conn,
                Purpose::ResetPassword,
                &second,
                T0 + 10 + TOKEN_TTL_MS
            ),
            Err(Error::ExpiredToken)
        ));
        // Creating a code clears out everyone's codes a day after they expired.
        let later = T0 + 10 + TOKEN_TTL_MS + PURGE_AFTER_MS;
        create(&conn, OTHER, Purpose::ConfirmEmail, later - 1).unwrap();
        assert!(matches!(
            find_did(&conn, Purpose::ResetPassword, &second, later - 1),
            Err(Error::ExpiredToken)
        ));
        create(&conn, OTHER, Purpose::ConfirmEmail, later).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM email_token", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn confirm_and_update_email() {
        let conn = db();
        add_account(&conn, DID, "alice.test", "alice@example.com");
        add_account(&conn, OTHER, "bob.test", "bob@example.com");
        let confirmed = |conn: &Connection| {
            accounts::by_did(conn, DID)
                .unwrap()
                .unwrap()
                .email_confirmed
        };

        let token = create(&conn, DID, Purpose::ConfirmEmail, T0).unwrap();
        assert!(matches!(
            confirm_email(&conn, DID, "bob@example.com", &token, T0),
            Err(Error::EmailMismatch)
        ));
        confirm_email(&conn, DID, "ALICE@example.com", &token, T0).unwrap();
        assert!(confirmed(&conn));

        // Confirmed: updating needs the update code.
        assert!(matches!(
            update_email(&conn, DID, "new@example.com", None, T0),
            Err(Error::TokenRequired)
        ));
        assert!(matches!(
            update_email(&conn, DID, "new@example.com", Some("AAAAA-AAAAA"), T0),
            Err(Error::InvalidToken)
        ));
        let token = create(&conn, DID, Purpose::UpdateEmail, T0).unwrap();
        assert!(matches!(
            update_email(&conn, DID, "Bob@Example.com", Some(&token), T0),
            Err(Error::EmailTaken)
        ));
        assert!(matches!(
            update_email(&conn, DID, "not an address", Some(&token), T0),
            Err(Error::InvalidEmail)
        ));
        let pending = create(&conn, DID, Purpose::DeleteAccount, T0).unwrap();
        update_email(&conn, DID, "New@Example.com", Some(&token), T0).unwrap();
        let account = accounts::by_did(&conn, DID).unwrap().unwrap();
        assert_eq!(account.email.as_deref(), Some("new@example.com"));
        assert!(!account.email_confirmed);
        // Every code sent to the old address is gone.
        assert!(check(&conn, DID, Purpose::DeleteAccount, &pending, T0).is_err());
        // Unconfirmed: no code needed.
        update_email(&conn, DID, "newer@example.com", None, T0).unwrap();
    }

    #[test]
    fn reset_password_revokes_sessions() {
        let conn = db();
        add_account(&conn, DID, "alice.test", "alice@example.com");
        accounts::store_refresh_token(&conn, "t1", DID, i64::MAX, None).unwrap();
        accounts::store_refresh_token(&conn, "t2", OTHER, i64::MAX, None).unwrap();
        let token = create(&conn, DID, Purpose::ResetPassword, T0).unwrap();
        assert_eq!(reset_password(&conn, &token, "new-hash", T0).unwrap(), DID);
        assert_eq!(accounts::password_hash(&conn, DID).unwrap(), "new-hash");
        assert!(
            accounts::take_refresh_token(&conn, "t1", DID)
                .unwrap()
                .is_none()
        );
        assert!(
            accounts::take_refresh_token(&conn, "t2", OTHER)
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            reset_password(&conn, &token, "again", T0),
            Err(Error::InvalidToken)
        ));
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(&"x".repeat(MAX_NEW_PASSWORD_LEN + 1)).is_err());
        check_new_password("long enough").unwrap();
    }

    #[test]
    fn reserved_keys() {
        let conn = db();
        let k1 = Keypair::generate(Algorithm::K256);
        let k2 = Keypair::generate(Algorithm::K256);
        // For a DID: the same key every time it asks.
        assert_eq!(
            reserve_signing_key(&conn, Some(DID), &k1, T0).unwrap(),
            k1.did_key()
        );
        assert_eq!(
            reserve_signing_key(&conn, Some(DID), &k2, T0).unwrap(),
            k1.did_key()
        );
        assert_eq!(
            reserved_key(&conn, DID).unwrap().unwrap().private_bytes(),
            k1.private_bytes()
        );
        // Without one: under its own did:key.
        assert_eq!(
            reserve_signing_key(&conn, None, &k2, T0).unwrap(),
            k2.did_key()
        );
        assert!(reserved_key(&conn, &k2.did_key()).unwrap().is_some());
        clear_reserved_key(&conn, &k2.did_key()).unwrap();
        assert!(reserved_key(&conn, &k2.did_key()).unwrap().is_none());
        // Old reservations go.
        let k3 = Keypair::generate(Algorithm::K256);
        reserve_signing_key(&conn, None, &k3, T0 + RESERVATION_TTL_MS + 1).unwrap();
        assert!(reserved_key(&conn, DID).unwrap().is_none());
    }

    #[test]
    fn email_addresses() {
        for ok in ["a@b.co", "first.last+tag@example.com", "x@sub.example.org"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@.b.co",
            "a@b.co.",
            "a b@c.co",
            "a@b..co",
            "a\n@b.co",
            "<a@b.co>",
            "a@b.co,c@d.co",
        ] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
        assert!(!is_valid_email(&format!("{}@example.com", "a".repeat(65))));
    }
}
