//! The account's records written after a revision the AppView reported, and what a local view
//! of them needs (the handle, the current profile).

use pds_ipld::Ipld;
use pds_syntax::Tid;
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use crate::records::{RecordError, RecordValue};

/// The profile record's collection and key.
pub const PROFILE_COLLECTION: &str = "app.bsky.actor.profile";
pub const PROFILE_RKEY: &str = "self";
pub const POST_COLLECTION: &str = "app.bsky.feed.post";

/// At most this many records newer than the AppView's revision are merged (as the reference):
/// more means the AppView is far behind, and the oldest come first.
pub const MAX_LOCAL_RECORDS: usize = 10;

/// One record of the account.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRecord {
    pub uri: String,
    pub cid: String,
    /// When it was written: the time of its commit's revision, as an AppView's `indexedAt`.
    pub indexed_at: String,
    pub written_micros: u64,
    /// The record in its JSON form.
    pub value: Value,
}

/// The records of the account written after a revision: its profile (if it changed) and its
/// posts, oldest first; `count` includes records of every other collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalRecords {
    pub count: usize,
    pub profile: Option<LocalRecord>,
    pub posts: Vec<LocalRecord>,
}

impl LocalRecords {
    /// The records of `did` written by commits after `rev`, oldest first, at most
    /// [`MAX_LOCAL_RECORDS`]. None when nothing of the repo is as old as `rev`: the revision is
    /// not one of this repo's history (a repo imported here has revisions of its own), so
    /// nothing can be said about what the AppView lacks.
    pub fn since(conn: &Connection, did: &str, rev: &Tid) -> Result<LocalRecords, RecordError> {
        // The blocks later commits wrote (an index walk), joined to the records they hold.
        let mut stmt = conn.prepare_cached(
            "SELECT r.collection, r.rkey, r.cid, r.rev, b.bytes
             FROM repo_block b JOIN record r ON r.did = b.did AND r.cid = b.cid
             WHERE b.did = ?1 AND b.rev > ?2 AND r.rev > ?2
             ORDER BY r.rev, r.collection, r.rkey
             LIMIT ?3",
        )?;
        let rows = stmt
            .query_map((did, rev.as_str(), MAX_LOCAL_RECORDS as i64), |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Vec<u8>>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(LocalRecords::default());
        }
        let known_rev: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM record WHERE did = ?1 AND rev <= ?2)")?
            .query_row((did, rev.as_str()), |row| row.get(0))?;
        if !known_rev {
            return Ok(LocalRecords::default());
        }
        let mut local = LocalRecords::default();
        for (collection, rkey, cid, record_rev, bytes) in rows {
            local.count += 1;
            let is_profile = collection == PROFILE_COLLECTION && rkey == PROFILE_RKEY;
            if !is_profile && collection != POST_COLLECTION {
                continue;
            }
            let uri = format!("at://{did}/{collection}/{rkey}");
            let cid = pds_ipld::Cid::try_from(cid)
                .map_err(|e| RecordError::Internal(format!("stored CID of {uri}: {e}")))?;
            let written_micros = Tid::new(&record_rev)
                .map_err(|e| RecordError::Internal(format!("stored rev of {uri}: {e}")))?
                .timestamp_micros();
            let record = LocalRecord {
                value: record_json(&uri, &bytes)?,
                uri,
                cid: cid.to_string(),
                indexed_at: iso_datetime(written_micros),
                written_micros,
            };
            if is_profile {
                local.profile = Some(record);
            } else {
                local.posts.push(record);
            }
        }
        Ok(local)
    }

    /// How far behind the AppView is, in milliseconds at `now_micros`: the age of the oldest
    /// profile or post it lacks.
    pub fn lag_ms(&self, now_micros: u64) -> Option<u64> {
        let oldest = self
            .profile
            .iter()
            .chain(&self.posts)
            .map(|r| r.written_micros)
            .min()?;
        Some(now_micros.saturating_sub(oldest) / 1000)
    }
}

/// The account's handle and current profile record, for the views of its posts.
pub fn author(conn: &Connection, did: &str) -> Result<(String, Option<Value>), RecordError> {
    let handle = crate::accounts::by_did(conn, did)?.map(|account| account.handle);
    let profile: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT b.bytes FROM record r JOIN repo_block b ON b.did = r.did AND b.cid = r.cid
             WHERE r.did = ?1 AND r.collection = ?2 AND r.rkey = ?3",
        )?
        .query_row((did, PROFILE_COLLECTION, PROFILE_RKEY), |row| row.get(0))
        .optional()?;
    let profile = match profile {
        Some(bytes) => {
            let uri = format!("at://{did}/{PROFILE_COLLECTION}/{PROFILE_RKEY}");
            Some(record_json(&uri, &bytes)?)
        }
        None => None,
    };
    // An account without a handle row is not one of ours; its views say so as AppViews do.
    Ok((
        handle.unwrap_or_else(|| "handle.invalid".to_owned()),
        profile,
    ))
}

fn record_json(uri: &str, bytes: &[u8]) -> Result<Value, RecordError> {
    let value: Ipld = pds_ipld::from_cbor(bytes)
        .map_err(|e| RecordError::Internal(format!("stored record {uri}: {e}")))?;
    serde_json::to_value(RecordValue(value))
        .map_err(|e| RecordError::Internal(format!("stored record {uri}: {e}")))
}

/// `micros` since the epoch as an atproto datetime with milliseconds (`2024-05-01T12:34:56.789Z`).
pub fn iso_datetime(micros: u64) -> String {
    crate::accounts::email_tokens::datetime_from_ms((micros / 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_from_tid_timestamps() {
        assert_eq!(iso_datetime(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_datetime(951_782_400_123_456),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            iso_datetime(1_714_566_896_789_000),
            "2024-05-01T12:34:56.789Z"
        );
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_missing_record() {
        let record = |micros| LocalRecord {
            uri: String::new(),
            cid: String::new(),
            indexed_at: iso_datetime(micros),
            written_micros: micros,
            value: Value::Null,
        };
        let local = LocalRecords {
            count: 3,
            profile: Some(record(5_000_000)),
            posts: vec![record(2_000_000), record(9_000_000)],
        };
        assert_eq!(local.lag_ms(10_000_000), Some(8_000));
        assert_eq!(LocalRecords::default().lag_ms(10_000_000), None);
    }
}
