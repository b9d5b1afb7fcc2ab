//! App passwords: extra passwords an account hands to apps, each named, revocable on its own,
//! and giving a session with less power than the account password (no account management;
//! DMs only when privileged).
//!
//! Shaped as the reference PDS: the password is 16 random base32 characters shown as
//! `xxxx-xxxx-xxxx-xxxx` (80 bits), returned once and stored scrypt-hashed in the account
//! password format, salted with the first 16 bytes of sha256(DID) (hex). That salt is the
//! reference's, so a reference server's `app_password` rows keep working here, and a login
//! needs one scrypt to test a password against all of an account's app passwords ([`find`]).
//! Revoking one also revokes the refresh tokens of the sessions it opened.

use data_encoding::HEXLOWER;
use rusqlite::Connection;

use super::{AccountError, AppPasswordHash, Result, password};

/// Longest name accepted, in bytes. The lexicon sets no limit; this keeps rows small.
pub const MAX_NAME_LEN: usize = 200;
/// Most app passwords one account may have. No person needs more, and each one is a row to
/// keep and to list.
pub const MAX_PER_ACCOUNT: usize = 100;

/// An app password as `listAppPasswords` shows it (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub name: String,
    pub created_at: String,
    pub privileged: bool,
}

/// A new app password: `xxxx-xxxx-xxxx-xxxx`, lowercase base32 (`a-z`, `2-7`).
pub fn generate() -> String {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    let text = data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase();
    debug_assert_eq!(text.len(), 16);
    let chunks: Vec<&str> = (0..4).map(|i| &text[i * 4..i * 4 + 4]).collect();
    chunks.join("-")
}

/// The salt of `did`'s app passwords (hex text): the first 16 bytes of sha256(did).
pub fn salt(did: &str) -> String {
    HEXLOWER.encode(&pds_ipld::sha256(did.as_bytes())[..16])
}

/// The stored form of an app password. About 50 ms of scrypt: call it on a blocking thread.
pub fn hash(did: &str, app_password: &str) -> String {
    password::hash_with_salt(app_password, &salt(did))
}

/// The app password among `stored` that `candidate` is, if any. Hashes once for all the rows
/// salted the usual way (in constant time per comparison); rows with another salt (imported
/// from elsewhere) are checked one by one. Call it on a blocking thread.
pub fn find(did: &str, candidate: &str, stored: Vec<AppPasswordHash>) -> Option<AppPasswordHash> {
    let salt = salt(did);
    let prefix = format!("{salt}:");
    let mut ours = None;
    for row in stored {
        let matches = if row.hash.starts_with(&prefix) {
            let hashed = ours.get_or_insert_with(|| hash(did, candidate));
            constant_time_eq(hashed.as_bytes(), row.hash.as_bytes())
        } else {
            password::verify(candidate, &row.hash)
        };
        if matches {
            return Some(row);
        }
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a requested name: not blank, not too long, no control characters.
pub fn check_name(name: &str) -> Result<()> {
    let refuse = |why: &str| Err(AccountError::AppPassword(why.to_owned()));
    if name.trim().is_empty() {
        return refuse("An app password needs a name");
    }
    if name.len() > MAX_NAME_LEN {
        return refuse("App password name is too long");
    }
    if name.chars().any(char::is_control) {
        return refuse("App password name must not contain control characters");
    }
    Ok(())
}

/// Stores a new app password (already hashed with [`hash`]). Refuses a name the account already
/// uses and an account that already has [`MAX_PER_ACCOUNT`].
pub fn insert(
    conn: &Connection,
    did: &str,
    name: &str,
    password_scrypt: &str,
    privileged: bool,
    created_at: &str,
) -> Result<()> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM app_password WHERE did = ?1")?
        .query_row([did], |r| r.get(0))?;
    if count >= MAX_PER_ACCOUNT as i64 {
        return Err(AccountError::AppPassword(format!(
            "An account can have at most {MAX_PER_ACCOUNT} app passwords: revoke one first"
        )));
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO app_password (did, name, password_scrypt, privileged, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (did, name) DO NOTHING",
        )?
        .execute((did, name, password_scrypt, privileged, created_at))?;
    if inserted == 0 {
        return Err(AccountError::AppPassword(format!(
            "An app password named {name:?} already exists"
        )));
    }
    Ok(())
}

/// The account's app passwords, newest first (as the reference lists them).
pub fn list(conn: &Connection, did: &str) -> Result<Vec<AppPassword>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, created_at, privileged FROM app_password WHERE did = ?1
         ORDER BY created_at DESC, name",
    )?;
    let rows = stmt.query_map([did], |r| {
        Ok(AppPassword {
            name: r.get(0)?,
            created_at: r.get(1)?,
            privileged: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes an app password and every refresh token of the sessions it opened. Revoking a name
/// that does not exist does nothing (as the reference). Returns whether one was revoked.
pub fn revoke(conn: &Connection, did: &str, name: &str) -> Result<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM app_password WHERE did = ?1 AND name = ?2")?
        .execute((did, name))?;
    conn.prepare_cached("DELETE FROM refresh_token WHERE did = ?1 AND app_password_name = ?2")?
        .execute((did, name))?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::accounts::schema::migrate(&conn).unwrap();
        crate::oauth::store::migrate(&conn).unwrap();
        conn
    }

    #[test]
    fn generated_passwords_have_the_reference_shape() {
        for _ in 0..50 {
            let p = generate();
            assert_eq!(p.len(), 19, "{p}");
            for (i, c) in p.chars().enumerate() {
                if i % 5 == 4 {
                    assert_eq!(c, '-', "{p}");
                } else {
                    assert!(matches!(c, 'a'..='z' | '2'..='7'), "{p}");
                }
            }
        }
        assert_ne!(generate(), generate());
    }

    #[test]
    fn hashes_use_the_did_salt_and_find_matches_once() {
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let (a, b) = (generate(), generate());
        let stored = vec![
            AppPasswordHash {
                name: "a".into(),
                hash: hash(did, &a),
                privileged: false,
            },
            AppPasswordHash {
                name: "b".into(),
                hash: hash(did, &b),
                privileged: true,
            },
            // A row salted some other way (e.g. imported) still verifies.
            AppPasswordHash {
                name: "c".into(),
                hash: password::hash("imported-pass"),
                privileged: false,
            },
        ];
        assert!(stored[0].hash.starts_with(&format!("{}:", salt(did))));
        assert_eq!(salt(did).len(), 32);
        // The stored form is the account-password form: `verify` accepts it.
        assert!(password::verify(&a, &stored[0].hash));
        assert_eq!(find(did, &b, stored.clone()).unwrap().name, "b");
        assert_eq!(
            find(did, "imported-pass", stored.clone()).unwrap().name,
            "c"
        );
        assert!(find(did, "nope-nope-nope-nope", stored.clone()).is_none());
        // Under another DID these rows have a foreign salt: checked one by one, still right.
        let other = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(find(other, &a, stored.clone()).unwrap().name, "a");
        assert!(find(other, "nope-nope-nope-nope", stored).is_none());
    }

    #[test]
    fn insert_list_revoke() {
        let conn = db();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        insert(&conn, did, "one", "h1", false, "2024-01-01T00:00:00.000Z").unwrap();
        insert(&conn, did, "two", "h2", true, "2024-01-02T00:00:00.000Z").unwrap();
        // Same name for another account is fine; for this one it is refused.
        insert(
            &conn,
            "did:plc:other",
            "one",
            "h3",
            false,
            "2024-01-03T00:00:00.000Z",
        )
        .unwrap();
        assert!(matches!(
            insert(&conn, did, "one", "h4", false, "2024-01-04T00:00:00.000Z"),
            Err(AccountError::AppPassword(_))
        ));
        let names: Vec<_> = list(&conn, did)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["two", "one"]);
        assert!(list(&conn, did).unwrap()[0].privileged);

        crate::accounts::store_refresh_token(&conn, "t1", did, 1, Some("one")).unwrap();
        crate::accounts::store_refresh_token(&conn, "t2", did, 1, Some("two")).unwrap();
        crate::accounts::store_refresh_token(&conn, "t3", did, 1, None).unwrap();
        assert!(revoke(&conn, did, "one").unwrap());
        assert!(!revoke(&conn, did, "one").unwrap());
        assert_eq!(list(&conn, did).unwrap().len(), 1);
        // Only that password's refresh tokens are gone.
        assert!(
            crate::accounts::take_refresh_token(&conn, "t1", did)
                .unwrap()
                .is_none()
        );
        assert!(
            crate::accounts::take_refresh_token(&conn, "t2", did)
                .unwrap()
                .is_some()
        );
        assert!(
            crate::accounts::take_refresh_token(&conn, "t3", did)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn limits() {
        let conn = db();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        for i in 0..MAX_PER_ACCOUNT {
            insert(
                &conn,
                did,
                &format!("p{i}"),
                "h",
                false,
                "2024-01-01T00:00:00.000Z",
            )
            .unwrap();
        }
        assert!(matches!(
            insert(&conn, did, "more", "h", false, "2024-01-01T00:00:00.000Z"),
            Err(AccountError::AppPassword(_))
        ));
        assert!(check_name("phone").is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
