//! The durable event log: one row per event, in the server's SQLite database.
//!
//! Each row holds the event's finished frame (seq and time baked in), so replaying and tailing
//! are copies. Functions take a plain `&rusqlite::Connection`: the server's writer passes the
//! connection of its open transaction to [`append`], readers pass any read connection.
//!
//! # Sequence numbers
//!
//! `seq` comes from a one-row counter ([`append`] increments it in the caller's transaction), not
//! from `MAX(seq) + 1`: trimming may delete every row, and a seq must never be used twice. A
//! transaction that rolls back takes its increment with it, so no seq is skipped either. SQLite
//! has one writer at a time and the counter is taken inside the write transaction, so events
//! become visible in seq order; the hub's tailer relies on that.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension};

use crate::event::EventBody;
use crate::frame::Frame;
use crate::time::{format_datetime, millis};
use crate::{Error, Result, Seq};

/// The component name under which `pds_storage::migrate_component` versions these tables.
const COMPONENT: &str = "event_stream";

const SCHEMA_V1: &str = "
-- One row per event, in seq order. `frame` is the complete WebSocket message.
CREATE TABLE event_log (
    seq     INTEGER PRIMARY KEY,
    did     TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    frame   BLOB NOT NULL
);
-- delete_for_account.
CREATE INDEX event_log_did ON event_log (did);
-- The last seq handed out, and the highest seq trimmed away (0: none).
CREATE TABLE event_log_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq        INTEGER NOT NULL,
    trimmed_through INTEGER NOT NULL
);
INSERT INTO event_log_state (id, last_seq, trimmed_through) VALUES (1, 0, 0);
";

/// Creates or upgrades the log's tables. Runs in the caller's transaction if one is open, else
/// in its own.
pub fn migrate(conn: &Connection) -> Result<()> {
    in_transaction(conn, |conn| {
        pds_storage::migrate_component(conn, COMPONENT, &[SCHEMA_V1])?;
        Ok(())
    })
}

/// Appends `event` at time `now` and returns its seq. Must run inside the transaction of the
/// write that caused the event ([`Error::NotInTransaction`] otherwise), so both commit or
/// neither does; the caller wakes the hub ([`crate::Hub::notify_committed`]) once committed.
pub fn append(conn: &Connection, event: &EventBody, now: SystemTime) -> Result<Seq> {
    if conn.is_autocommit() {
        return Err(Error::NotInTransaction);
    }
    let seq: Seq = conn
        .prepare_cached("UPDATE event_log_state SET last_seq = last_seq + 1 RETURNING last_seq")?
        .query_row([], |row| row.get(0))?;
    let frame = event.encode(seq, &format_datetime(now))?;
    conn.prepare_cached(
        "INSERT INTO event_log (seq, did, time_ms, frame) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((seq, event.did(), millis(now), frame.bytes().as_ref()))?;
    Ok(seq)
}

/// Up to `limit` stored frames with seq > `cursor`, in seq order.
pub fn after(conn: &Connection, cursor: Seq, limit: usize) -> Result<Vec<Frame>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached("SELECT seq, frame FROM event_log WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let rows = stmt.query_map((cursor, limit), |row| {
        Ok(Frame::stored(row.get(0)?, row.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The last seq handed out (its event may since have been trimmed or deleted); `None` before
/// the first event.
pub fn head(conn: &Connection) -> Result<Option<Seq>> {
    Ok(bounds(conn)?.head)
}

/// The seq of the oldest event kept; `None` if the log is empty.
pub fn oldest(conn: &Connection) -> Result<Option<Seq>> {
    Ok(conn
        .prepare_cached("SELECT MIN(seq) FROM event_log")?
        .query_row([], |row| row.get(0))?)
}

/// Deletes up to `max_rows` of the oldest events, those stored before `before`, and returns how
/// many went. Only a prefix of the log is trimmed: the oldest event not yet due (a clock that
/// stepped back) keeps every later one. Call it again until it returns 0, each call in its own
/// short write transaction, so trimming never holds up other writes for long.
pub fn trim_before(conn: &Connection, before: SystemTime, max_rows: usize) -> Result<usize> {
    let cutoff = millis(before);
    let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
    in_transaction(conn, |conn| {
        // Walk from the oldest row: reads at most `max_rows` rows however long the log is.
        let mut due = 0;
        let mut last_due = None;
        {
            let mut stmt =
                conn.prepare_cached("SELECT seq, time_ms FROM event_log ORDER BY seq LIMIT ?1")?;
            let mut rows = stmt.query([limit])?;
            while let Some(row) = rows.next()? {
                let (seq, time_ms): (Seq, i64) = (row.get(0)?, row.get(1)?);
                if time_ms >= cutoff {
                    break;
                }
                due += 1;
                last_due = Some(seq);
            }
        }
        if let Some(last_due) = last_due {
            conn.prepare_cached("DELETE FROM event_log WHERE seq <= ?1")?
                .execute([last_due])?;
            conn.prepare_cached(
                "UPDATE event_log_state SET trimmed_through = MAX(trimmed_through, ?1)",
            )?
            .execute([last_due])?;
        }
        Ok(due)
    })
}

/// Deletes the events of `did` before `keep` (the reference, deleting an account, keeps only
/// the `#account` event announcing the deletion). Returns how many went. These gaps are
/// deliberate: a cursor inside them is not outdated.
pub fn delete_for_account(conn: &Connection, did: &str, keep: Seq) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM event_log WHERE did = ?1 AND seq < ?2")?
        .execute((did, keep))?)
}

/// What a new subscription checks its cursor against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The last seq handed out.
    pub head: Option<Seq>,
    /// Every event with seq <= this was trimmed (0 if none was).
    pub trimmed_through: Seq,
}

pub(crate) fn bounds(conn: &Connection) -> Result<Bounds> {
    let row = conn
        .prepare_cached("SELECT last_seq, trimmed_through FROM event_log_state WHERE id = 1")?
        .query_row([], |row| Ok((row.get::<_, Seq>(0)?, row.get::<_, Seq>(1)?)))
        .optional()?;
    let (last_seq, trimmed_through) = row.unwrap_or((0, 0));
    Ok(Bounds {
        head: (last_seq > 0).then_some(last_seq),
        trimmed_through,
    })
}

/// Runs `f` in the caller's open transaction, or in a new one if there is none.
fn in_transaction<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    if !conn.is_autocommit() {
        return f(conn);
    }
    let tx = conn.unchecked_transaction()?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}
