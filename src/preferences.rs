//! The account's app preferences (`app.bsky.actor.getPreferences` / `putPreferences`): a list of
//! objects, each with a `$type`, that the Bluesky app stores on the user's PDS (feeds, content
//! filters, muted words, ...). The PDS keeps them as given, per account, and only in the
//! `app.bsky` namespace.
//!
//! As the reference: `putPreferences` replaces the account's whole list; preferences of
//! `app.bsky.actor.defs#personalDetailsPref` (birth date) are kept from app-password sessions:
//! they are neither shown to nor replaced by them.

use rusqlite::Connection;
use serde_json::Value;

use crate::accounts::AccountError;
use crate::auth::Scope;

/// The namespace `putPreferences` accepts and `getPreferences` returns.
const NAMESPACE: &str = "app.bsky";
/// Preferences only a session made with the account password may read or write.
const FULL_ACCESS_ONLY: &[&str] = &["app.bsky.actor.defs#personalDetailsPref"];
/// Most preferences kept per account, and the largest one: the app stores a few dozen small
/// objects; these limits only stop abuse of the server as storage.
pub const MAX_PREFERENCES: usize = 500;
pub const MAX_PREFERENCE_BYTES: usize = 64 * 1024;

const SCHEMA_V1: &str = "
CREATE TABLE account_pref (
    did   TEXT NOT NULL,
    idx   INTEGER NOT NULL,  -- order as given
    type  TEXT NOT NULL,
    value TEXT NOT NULL,     -- the preference object, JSON
    PRIMARY KEY (did, idx)
) WITHOUT ROWID;
";

/// What is wrong with a `putPreferences` input (400 `InvalidRequest`).
#[derive(Debug, thiserror::Error)]
pub enum PreferenceError {
    #[error("{0}")]
    Invalid(String),
    /// An app-password session tried to set a full-access-only preference.
    #[error("Do not have authorization to set preferences.")]
    NotAuthorized,
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<rusqlite::Error> for PreferenceError {
    fn from(e: rusqlite::Error) -> Self {
        PreferenceError::Account(AccountError::Db(e))
    }
}

impl From<pds_storage::StorageError> for PreferenceError {
    fn from(e: pds_storage::StorageError) -> Self {
        PreferenceError::Account(AccountError::Storage(e))
    }
}

/// Creates or upgrades the preferences table.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    pds_storage::migrate_component(conn, "preferences", &[SCHEMA_V1])
}

fn in_namespace(pref_type: &str) -> bool {
    pref_type
        .strip_prefix(NAMESPACE)
        .is_some_and(|rest| rest.starts_with('.'))
}

fn visible_to(scope: Scope, pref_type: &str) -> bool {
    scope == Scope::Full || !FULL_ACCESS_ONLY.contains(&pref_type)
}

/// The account's preferences that `scope` may see, in the order they were stored.
pub fn get(conn: &Connection, did: &str, scope: Scope) -> Result<Vec<Value>, PreferenceError> {
    let mut stmt =
        conn.prepare_cached("SELECT type, value FROM account_pref WHERE did = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([did], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut prefs = Vec::new();
    for row in rows {
        let (pref_type, json) = row?;
        if in_namespace(&pref_type) && visible_to(scope, &pref_type) {
            let value = serde_json::from_str(&json).map_err(|e| {
                PreferenceError::Invalid(format!("stored preference is not JSON: {e}"))
            })?;
            prefs.push(value);
        }
    }
    Ok(prefs)
}

/// Checks a `putPreferences` list: objects with an `app.bsky.*` `$type`, within the limits,
/// none that `scope` may not set.
pub fn check(
    preferences: &[Value],
    scope: Scope,
) -> Result<Vec<(String, String)>, PreferenceError> {
    if preferences.len() > MAX_PREFERENCES {
        return Err(PreferenceError::Invalid(format!(
            "At most {MAX_PREFERENCES} preferences are kept"
        )));
    }
    let mut checked = Vec::with_capacity(preferences.len());
    for pref in preferences {
        let pref_type = pref
            .get("$type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PreferenceError::Invalid("Preference is missing a $type".into()))?;
        if !in_namespace(pref_type) {
            return Err(PreferenceError::Invalid(format!(
                "Some preferences are not in the {NAMESPACE} namespace"
            )));
        }
        if !visible_to(scope, pref_type) {
            return Err(PreferenceError::NotAuthorized);
        }
        let json = pref.to_string();
        if json.len() > MAX_PREFERENCE_BYTES {
            return Err(PreferenceError::Invalid(format!(
                "A preference is larger than {MAX_PREFERENCE_BYTES} bytes"
            )));
        }
        checked.push((pref_type.to_owned(), json));
    }
    Ok(checked)
}

/// Replaces the account's preferences with `checked` (from [`check`]); the ones `scope` may
/// not see are kept as they were.
pub fn put(
    conn: &Connection,
    did: &str,
    scope: Scope,
    checked: &[(String, String)],
) -> Result<(), PreferenceError> {
    let kept: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare_cached("SELECT type, value FROM account_pref WHERE did = ?1 ORDER BY idx")?;
        let rows = stmt.query_map([did], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<(String, String)>>>()?
            .into_iter()
            .filter(|(t, _)| !visible_to(scope, t) || !in_namespace(t))
            .collect()
    };
    conn.prepare_cached("DELETE FROM account_pref WHERE did = ?1")?
        .execute([did])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO account_pref (did, idx, type, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (idx, (pref_type, json)) in kept.iter().chain(checked).enumerate() {
        insert.execute((did, idx as i64, pref_type, json))?;
    }
    Ok(())
}

/// The audience OAuth `rpc:` scopes name for the preference methods: they are AppView methods
/// this server answers itself, so apps ask for them at the AppView (`did#bsky_appview`).
pub fn scope_audience(state: &crate::state::AppState) -> String {
    let did = match &state.config.appview {
        Some(appview) => appview.did.as_str(),
        None => state.config.server.service_did.as_str(),
    };
    format!("{did}#bsky_appview")
}
