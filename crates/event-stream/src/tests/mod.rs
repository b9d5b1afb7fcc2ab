//! Tests of the whole crate against real SQLite databases in temporary directories: frames of
//! real commits checked against the lexicon, the log's transactions, and the hub under a
//! concurrent writer.

mod frames;
mod hub;
mod log;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::{EventBody, IdentityEvent, Seq};

/// A database file with the event log's tables.
pub(crate) struct TestDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestDb {
    pub fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pds.sqlite");
        crate::log::migrate(&open(&path)).unwrap();
        TestDb { _dir: dir, path }
    }

    /// A connection of its own, as a writer or reader thread has.
    pub fn open(&self) -> Connection {
        open(&self.path)
    }

    /// The server's database on the same file (its read pool is the hub's reader).
    pub fn database(&self) -> pds_storage::Database {
        pds_storage::Database::open(&self.path, pds_storage::DatabaseOptions::default()).unwrap()
    }

    /// Appends `count` events, one transaction each, at `time`; returns their seqs.
    pub fn append(&self, count: usize, time: SystemTime) -> Vec<Seq> {
        let mut conn = self.open();
        (0..count)
            .map(|i| {
                let tx = conn.transaction().unwrap();
                let seq = crate::log::append(&tx, &identity(i as i64), time).unwrap();
                tx.commit().unwrap();
                seq
            })
            .collect()
    }
}

fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// A small event about account `n`.
pub(crate) fn identity(n: i64) -> EventBody {
    EventBody::Identity(IdentityEvent::new(&did(n), Some(&format!("user{n}.test"))).unwrap())
}

pub(crate) fn did(n: i64) -> String {
    format!("did:plc:test{:020}", n.rem_euclid(1000))
}

/// `hours` after a fixed instant.
pub(crate) fn at_hour(hours: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + hours * 3600)
}
