//! The directory's SQLite store: every operation of every DID, with its
//! CID, `nullified` flag and acceptance time.
//!
//! One table. A submission runs in one `BEGIN IMMEDIATE` transaction: read
//! the DID's log, validate, insert, mark nullified entries, commit. The
//! immediate transaction takes SQLite's write lock first, so submissions
//! (for the same DID or not, from this process or another one on the same
//! file) are serialized and never validate against a stale log.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::PlcError;
use crate::log::{self, LogEntry};
use crate::op::SignedOp;
use crate::time::Timestamp;
use crate::validate;

/// Where the store gets the time it stamps operations with.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS plc_operation (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    did        TEXT    NOT NULL,
    cid        TEXT    NOT NULL,
    operation  TEXT    NOT NULL,  -- the signed operation's JSON
    nullified  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL   -- milliseconds since the Unix epoch
);
CREATE UNIQUE INDEX IF NOT EXISTS plc_operation_did_cid ON plc_operation (did, cid);
CREATE INDEX IF NOT EXISTS plc_operation_did_seq ON plc_operation (did, seq);
";

/// The directory's database. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    clock: Clock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, stamping
    /// operations with the system clock.
    pub fn open(path: &Path) -> Result<Store, PlcError> {
        Store::open_with_clock(path, Arc::new(Timestamp::now))
    }

    /// Like [`Store::open`] with another clock (tests use one they move by
    /// hand to cross the 72-hour recovery window).
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Store, PlcError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL: readers do not block the writer. synchronous=FULL: an
        // acknowledged operation survives power loss, not just a crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            clock,
        })
    }

    /// The store's current time.
    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Validates `op` as a submission for `did` and stores it, stamped with
    /// the store's clock. Returns the new log entry.
    pub fn submit(&self, did: &str, op: &SignedOp) -> Result<LogEntry, PlcError> {
        self.submit_at(did, op, self.now())
    }

    /// [`Store::submit`] at a given time. The entry is stamped `now`, or 1 ms
    /// after the DID's newest entry if the clock has not moved past it, so a
    /// DID's `createdAt` values strictly increase.
    pub fn submit_at(
        &self,
        did: &str,
        op: &SignedOp,
        now: Timestamp,
    ) -> Result<LogEntry, PlcError> {
        validate::check_submission(op)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let log = read_log(&tx, did)?;
        let now = match log.iter().map(|e| e.created_at).max() {
            Some(newest) if newest >= now => newest.plus_millis(1),
            _ => now,
        };
        let accepted = log::validate_next_op(did, &log, op, now)?;
        let json = serde_json::to_string(op).expect("an operation serializes");
        let cid = accepted.cid.to_string();
        tx.execute(
            "INSERT INTO plc_operation (did, cid, operation, nullified, created_at)
             VALUES (?1, ?2, ?3, 0, ?4)",
            params![did, cid, json, now.as_millis()],
        )?;
        for nullified in &accepted.nullified {
            tx.execute(
                "UPDATE plc_operation SET nullified = 1 WHERE did = ?1 AND cid = ?2",
                params![did, nullified],
            )?;
        }
        tx.commit()?;
        if !accepted.nullified.is_empty() {
            tracing::info!(did, cid, nullified = ?accepted.nullified, "recovery operation");
        }
        Ok(LogEntry {
            did: did.to_owned(),
            operation: op.clone(),
            cid,
            nullified: false,
            created_at: now,
        })
    }

    /// The DID's audit log: every entry, nullified ones included, oldest
    /// first. Empty for an unknown DID.
    pub fn audit_log(&self, did: &str) -> Result<Vec<LogEntry>, PlcError> {
        read_log(&self.conn(), did)
    }

    /// The DID's active operations (its current history), oldest first.
    pub fn active_log(&self, did: &str) -> Result<Vec<SignedOp>, PlcError> {
        Ok(self
            .audit_log(did)?
            .into_iter()
            .filter(|e| !e.nullified)
            .map(|e| e.operation)
            .collect())
    }

    /// The DID's newest active entry (possibly a tombstone).
    pub fn last_entry(&self, did: &str) -> Result<Option<LogEntry>, PlcError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT did, cid, operation, nullified, created_at FROM plc_operation
                 WHERE did = ?1 AND nullified = 0 ORDER BY seq DESC LIMIT 1",
                [did],
                row_to_raw,
            )
            .optional()?;
        row.map(RawEntry::into_entry).transpose()
    }

    /// Checks that the database answers.
    pub fn health_check(&self) -> Result<(), PlcError> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

struct RawEntry {
    did: String,
    cid: String,
    operation: String,
    nullified: bool,
    created_at: i64,
}

impl RawEntry {
    fn into_entry(self) -> Result<LogEntry, PlcError> {
        let operation: SignedOp = serde_json::from_str(&self.operation).map_err(|e| {
            PlcError::Storage(format!("stored operation {} does not parse: {e}", self.cid))
        })?;
        Ok(LogEntry {
            did: self.did,
            operation,
            cid: self.cid,
            nullified: self.nullified,
            created_at: Timestamp::from_millis(self.created_at),
        })
    }
}

fn row_to_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok(RawEntry {
        did: row.get(0)?,
        cid: row.get(1)?,
        operation: row.get(2)?,
        nullified: row.get(3)?,
        created_at: row.get(4)?,
    })
}

fn read_log(conn: &Connection, did: &str) -> Result<Vec<LogEntry>, PlcError> {
    let mut stmt = conn.prepare_cached(
        "SELECT did, cid, operation, nullified, created_at FROM plc_operation
         WHERE did = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([did], row_to_raw)?;
    let mut log = Vec::new();
    for row in rows {
        log.push(row?.into_entry()?);
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use pds_crypto::{Algorithm, Keypair};

    use super::*;
    use crate::op::{PlcData, UnsignedOp};

    fn data(rotation: &[&Keypair], handle: &str) -> PlcData {
        PlcData::atproto(
            handle,
            "https://pds.test",
            &rotation[0].did_key(),
            rotation.iter().map(|k| k.did_key()).collect(),
        )
    }

    #[test]
    fn submit_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plc.sqlite");
        let key = Keypair::generate(Algorithm::K256);
        let genesis = UnsignedOp::genesis(data(&[&key], "a.test")).sign(&key);
        let did = genesis.did().unwrap();
        {
            let store = Store::open(&path).unwrap();
            store.health_check().unwrap();
            assert!(store.audit_log(&did).unwrap().is_empty());
            assert!(store.last_entry(&did).unwrap().is_none());
            let entry = store.submit(&did, &genesis).unwrap();
            assert_eq!(entry.cid, genesis.cid().to_string());
            let update = UnsignedOp::update(data(&[&key], "b.test"), &genesis.cid()).sign(&key);
            store.submit(&did, &update).unwrap();
            // Rejections leave nothing behind.
            let err = store.submit(&did, &update).unwrap_err();
            assert!(err.is_rejection(), "{err}");
            assert_eq!(store.audit_log(&did).unwrap().len(), 2);
        }
        let store = Store::open(&path).unwrap();
        let log = store.audit_log(&did).unwrap();
        assert_eq!(log.len(), 2);
        assert!(log[0].created_at < log[1].created_at);
        assert_eq!(log[1].operation.data().unwrap().handle(), Some("b.test"));
        assert_eq!(store.active_log(&did).unwrap().len(), 2);
        assert_eq!(store.last_entry(&did).unwrap().unwrap(), log[1]);
        log::verify_audit_log(&log).unwrap();
    }

    #[test]
    fn clock_is_injectable_and_stamps_increase() {
        let dir = tempfile::tempdir().unwrap();
        let time = Arc::new(AtomicI64::new(1_000));
        let t = time.clone();
        let store = Store::open_with_clock(
            &dir.path().join("plc.sqlite"),
            Arc::new(move || Timestamp::from_millis(t.load(Ordering::SeqCst))),
        )
        .unwrap();
        let recovery = Keypair::generate(Algorithm::K256);
        let pds = Keypair::generate(Algorithm::K256);
        let genesis = UnsignedOp::genesis(data(&[&recovery, &pds], "a.test")).sign(&pds);
        let did = genesis.did().unwrap();
        assert_eq!(
            store.submit(&did, &genesis).unwrap().created_at.as_millis(),
            1_000
        );
        // The clock did not move: the next entry is still later.
        let evil =
            UnsignedOp::update(data(&[&recovery, &pds], "evil.test"), &genesis.cid()).sign(&pds);
        assert_eq!(
            store.submit(&did, &evil).unwrap().created_at.as_millis(),
            1_001
        );
        // Past the window the recovery key is too late...
        time.store(1_001 + log::RECOVERY_WINDOW_MS + 1, Ordering::SeqCst);
        let fix = UnsignedOp::update(data(&[&recovery], "a.test"), &genesis.cid()).sign(&recovery);
        assert!(matches!(
            store.submit(&did, &fix),
            Err(PlcError::LateRecovery { .. })
        ));
        // ...inside it, it wins.
        time.store(1_001 + log::RECOVERY_WINDOW_MS, Ordering::SeqCst);
        store.submit(&did, &fix).unwrap();
        let log = store.audit_log(&did).unwrap();
        assert_eq!(
            log.iter().map(|e| e.nullified).collect::<Vec<_>>(),
            [false, true, false]
        );
        log::verify_audit_log(&log).unwrap();
    }

    #[test]
    fn concurrent_submits_for_one_did_are_serialized() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plc.sqlite")).unwrap();
        let key = Keypair::generate(Algorithm::K256);
        let genesis = UnsignedOp::genesis(data(&[&key], "a.test")).sign(&key);
        let did = genesis.did().unwrap();
        store.submit(&did, &genesis).unwrap();
        // Sixteen different updates all naming the genesis as prev: exactly
        // one can win; the rest would be forks by the same key.
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let (store, did, key) = (store.clone(), did.clone(), key.clone());
                    let prev = genesis.cid();
                    s.spawn(move || {
                        let op = UnsignedOp::update(data(&[&key], &format!("h{i}.test")), &prev)
                            .sign(&key);
                        store.submit(&did, &op)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        let log = store.audit_log(&did).unwrap();
        assert_eq!(log.len(), 2);
        log::verify_audit_log(&log).unwrap();
    }
}
