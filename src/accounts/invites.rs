//! Invite codes: when the server requires them (`PDS_INVITE_REQUIRED`), creating an account
//! takes a code that is not disabled and has uses left, and uses one up in the same transaction
//! that creates the account.
//!
//! Shaped as the reference PDS: codes look like `<hostname with dots as dashes>-xxxxx-xxxxx`
//! (lowercase base32), are made by the admin (`createdBy` = `admin`) for an account or for
//! `admin`, and each use is recorded (code, DID, time). A code made for an account that was
//! taken down no longer works.

use rusqlite::{Connection, OptionalExtension};

use super::{AccountError, Result};

/// `forAccount` and `createdBy` of codes the admin made for nobody in particular.
pub const ADMIN: &str = "admin";

const NOT_AVAILABLE: &str = "Provided invite code not available";

/// One use of a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCodeUse {
    pub used_by: String,
    pub used_at: String,
}

/// A code and what became of it (`com.atproto.server.defs#inviteCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteCode {
    pub code: String,
    /// How many accounts it may create in all.
    pub available: i64,
    pub disabled: bool,
    pub for_account: String,
    pub created_by: String,
    pub created_at: String,
    /// Newest first.
    pub uses: Vec<InviteCodeUse>,
}

/// A new code: `hostname` with `.` as `-`, then ten random base32 characters in two groups,
/// e.g. `pds-example-com-abcde-fgh23` (50 bits of randomness).
pub fn generate(hostname: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    let text = data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase();
    format!(
        "{}-{}-{}",
        hostname.replace('.', "-"),
        &text[..5],
        &text[5..10]
    )
}

/// Stores codes, `use_count` uses each: for each `(account, codes)` pair, those codes for that
/// account.
pub fn create(
    conn: &Connection,
    accounts: &[(String, Vec<String>)],
    use_count: i64,
    created_by: &str,
    created_at: &str,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO invite_code (code, available_uses, disabled, for_account, created_by, created_at)
         VALUES (?1, ?2, 0, ?3, ?4, ?5)",
    )?;
    for (account, codes) in accounts {
        // `disableAccountInvites`: the account gets no new codes (those it has keep working).
        if account != ADMIN && account_invites_disabled(conn, account)? {
            return Err(AccountError::Refused(format!(
                "invite codes are disabled for {account}"
            )));
        }
        for code in codes {
            stmt.execute((code, use_count, account, created_by, created_at))?;
        }
    }
    Ok(())
}

/// Refuses (with [`AccountError::InvalidInviteCode`]) a code that does not exist, is disabled,
/// has no uses left, or was made for an account that has been taken down.
pub fn check_available(conn: &Connection, code: &str) -> Result<()> {
    let found: Option<(i64, bool, bool)> = conn
        .prepare_cached(
            "SELECT i.available_uses, i.disabled, a.takedown_ref IS NOT NULL
             FROM invite_code i LEFT JOIN account a ON a.did = i.for_account
             WHERE i.code = ?1",
        )?
        .query_row([code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((available, disabled, owner_taken_down)) = found else {
        return Err(AccountError::InvalidInviteCode(NOT_AVAILABLE.into()));
    };
    if disabled || owner_taken_down {
        return Err(AccountError::InvalidInviteCode(NOT_AVAILABLE.into()));
    }
    let used: i64 = conn
        .prepare_cached("SELECT count(*) FROM invite_code_use WHERE code = ?1")?
        .query_row([code], |r| r.get(0))?;
    if used >= available {
        return Err(AccountError::InvalidInviteCode(NOT_AVAILABLE.into()));
    }
    Ok(())
}

/// The operator stops (`true`) or allows again `did`'s invite codes. `false` if there is no such
/// account.
pub fn set_account_invites_disabled(conn: &Connection, did: &str, disabled: bool) -> Result<bool> {
    Ok(conn
        .prepare_cached("UPDATE account SET invites_disabled = ?2 WHERE did = ?1")?
        .execute((did, disabled))?
        > 0)
}

/// Whether the operator disabled `did`'s invite codes.
pub fn account_invites_disabled(conn: &Connection, did: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT invites_disabled FROM account WHERE did = ?1")?
        .query_row([did], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// Checks the code and records that `did` used it. Run it in the transaction that creates the
/// account, so two sign-ups cannot both take a code's last use.
pub fn consume(conn: &Connection, code: &str, did: &str, now: &str) -> Result<()> {
    check_available(conn, code)?;
    conn.prepare_cached(
        "INSERT INTO invite_code_use (code, used_by, used_at) VALUES (?1, ?2, ?3)",
    )?
    .execute((code, did, now))?;
    Ok(())
}

/// The codes made for `did`, oldest first, each with its uses.
pub fn for_account(conn: &Connection, did: &str) -> Result<Vec<InviteCode>> {
    let mut stmt = conn.prepare_cached(
        "SELECT code, available_uses, disabled, for_account, created_by, created_at
         FROM invite_code WHERE for_account = ?1 ORDER BY created_at, code",
    )?;
    let codes = stmt
        .query_map([did], code_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_uses(conn, codes)
}

/// How [`list`] orders the codes (`com.atproto.admin.getInviteCodes`' `sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    Recent,
    /// Most used first.
    Usage,
}

/// Every code, `limit` of them after the first `offset` in `sort` order, each with its uses.
pub fn list(conn: &Connection, sort: Sort, offset: usize, limit: usize) -> Result<Vec<InviteCode>> {
    let order = match sort {
        Sort::Recent => "i.created_at DESC, i.code DESC",
        Sort::Usage => {
            "(SELECT COUNT(*) FROM invite_code_use u WHERE u.code = i.code) DESC, i.created_at DESC, i.code DESC"
        }
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT i.code, i.available_uses, i.disabled, i.for_account, i.created_by, i.created_at
         FROM invite_code i ORDER BY {order} LIMIT ?1 OFFSET ?2"
    ))?;
    let codes = stmt
        .query_map((limit as i64, offset as i64), code_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_uses(conn, codes)
}

/// Disables `codes`, and every code made for one of `accounts`. Returns how many changed.
pub fn disable(conn: &Connection, codes: &[String], accounts: &[String]) -> Result<usize> {
    let mut changed = 0;
    let mut by_code = conn
        .prepare_cached("UPDATE invite_code SET disabled = 1 WHERE code = ?1 AND disabled = 0")?;
    for code in codes {
        changed += by_code.execute([code])?;
    }
    let mut by_account = conn.prepare_cached(
        "UPDATE invite_code SET disabled = 1 WHERE for_account = ?1 AND disabled = 0",
    )?;
    for account in accounts {
        changed += by_account.execute([account])?;
    }
    Ok(changed)
}

fn code_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InviteCode> {
    Ok(InviteCode {
        code: r.get(0)?,
        available: r.get(1)?,
        disabled: r.get(2)?,
        for_account: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        uses: Vec::new(),
    })
}

/// `codes`, each with its uses, newest first.
fn with_uses(conn: &Connection, mut codes: Vec<InviteCode>) -> Result<Vec<InviteCode>> {
    let mut stmt = conn.prepare_cached(
        "SELECT used_by, used_at FROM invite_code_use WHERE code = ?1 ORDER BY used_at DESC",
    )?;
    for code in &mut codes {
        code.uses = stmt
            .query_map([&code.code], |r| {
                Ok(InviteCodeUse {
                    used_by: r.get(0)?,
                    used_at: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2024-01-01T00:00:00.000Z";

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::accounts::schema::migrate(&conn).unwrap();
        conn
    }

    fn refused(r: Result<()>) -> bool {
        matches!(r, Err(AccountError::InvalidInviteCode(_)))
    }

    #[test]
    fn codes_have_the_reference_shape() {
        let code = generate("pds.example.com");
        let rest = code.strip_prefix("pds-example-com-").unwrap();
        assert_eq!(rest.len(), 11, "{code}");
        assert_eq!(&rest[5..6], "-");
        assert!(
            rest.chars()
                .all(|c| matches!(c, 'a'..='z' | '2'..='7' | '-'))
        );
        assert_ne!(generate("x"), generate("x"));
    }

    #[test]
    fn uses_are_counted_and_recorded() {
        let conn = db();
        let accounts = [(ADMIN.to_owned(), vec!["two-uses".to_owned()])];
        create(&conn, &accounts, 2, ADMIN, T).unwrap();
        assert!(refused(check_available(&conn, "no-such-code")));
        consume(&conn, "two-uses", "did:plc:a", T).unwrap();
        consume(&conn, "two-uses", "did:plc:b", "2024-01-02T00:00:00.000Z").unwrap();
        assert!(refused(consume(&conn, "two-uses", "did:plc:c", T)));
        let codes = for_account(&conn, ADMIN).unwrap();
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].available, 2);
        let users: Vec<_> = codes[0].uses.iter().map(|u| u.used_by.as_str()).collect();
        assert_eq!(users, ["did:plc:b", "did:plc:a"]);
    }

    #[test]
    fn disabled_codes_and_taken_down_owners_refuse() {
        let conn = db();
        let owner = "did:plc:owner";
        create(
            &conn,
            &[(owner.to_owned(), vec!["c1".into(), "c2".into()])],
            1,
            ADMIN,
            T,
        )
        .unwrap();
        check_available(&conn, "c1").unwrap();
        conn.execute("UPDATE invite_code SET disabled = 1 WHERE code = 'c1'", [])
            .unwrap();
        assert!(refused(check_available(&conn, "c1")));
        conn.execute(
            "INSERT INTO account (did, handle, password_scrypt, signing_key, created_at, takedown_ref)
             VALUES (?1, 'owner.test', 'x', x'00', ?2, 'takedown-1')",
            (owner, T),
        )
        .unwrap();
        assert!(refused(check_available(&conn, "c2")));
        assert_eq!(for_account(&conn, owner).unwrap().len(), 2);
        assert!(for_account(&conn, "did:plc:nobody").unwrap().is_empty());
    }
}
