//! How long events are kept: the backfill window (`PDS_REPO_BACKFILL_LIMIT_MS`, a day by
//! default). Events older than the window are trimmed; a subscriber whose cursor falls before
//! what is left gets an `#info` `OutdatedCursor` and the oldest kept event next.
//!
//! The server schedules trimming (say every few minutes) and runs each batch in its own write
//! transaction:
//!
//! ```no_run
//! # async fn example(db: pds_storage::Database) -> pds_event_stream::Result<()> {
//! use pds_event_stream::Retention;
//! let retention = Retention::new(std::time::Duration::from_secs(24 * 3600));
//! loop {
//!     let now = std::time::SystemTime::now();
//!     let trimmed = db.write(move |w| retention.trim_batch(w.tx.connection(), now)).await?;
//!     if trimmed == 0 {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::{Result, log};

/// The retention policy of the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How far back a cursor may reach.
    pub window: Duration,
    /// Most events deleted per batch: small enough that a batch never holds up writes for long.
    pub batch: usize,
}

impl Retention {
    /// Keeps `window` of events, trimming 500 at a time.
    pub fn new(window: Duration) -> Retention {
        Retention { window, batch: 500 }
    }

    /// The reference's setting: `PDS_REPO_BACKFILL_LIMIT_MS` in milliseconds.
    pub fn from_backfill_limit_ms(ms: u64) -> Retention {
        Retention::new(Duration::from_millis(ms))
    }

    /// Events stored before this instant are due for trimming at `now`.
    pub fn cutoff(&self, now: SystemTime) -> SystemTime {
        now.checked_sub(self.window).unwrap_or(UNIX_EPOCH)
    }

    /// Trims one batch of due events and returns how many went; 0 means none is left.
    pub fn trim_batch(&self, conn: &Connection, now: SystemTime) -> Result<usize> {
        log::trim_before(conn, self.cutoff(now), self.batch.max(1))
    }
}
