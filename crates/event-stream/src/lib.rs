//! The repository event stream (`com.atproto.sync.subscribeRepos`, "the firehose"): its events,
//! their wire frames, the durable log they are kept in, and the live fan-out to subscribers.
//!
//! # What this crate owns
//!
//! - **Events** ([`event`]): `#commit`, `#sync`, `#identity` and `#account`, built from what
//!   happened ([`EventBody::for_commit`] from a [`pds_repo::CommitData`], the others from plain
//!   values), with the field names, optionality and nullability of the lexicon and the Sync 1.1
//!   size limits (a commit over them is announced as `#sync`, never as a `tooBig` `#commit`).
//! - **Frames** ([`frame`]): the bytes of one WebSocket binary message, a DAG-CBOR header
//!   (`{op: 1, t: "#commit"}` or `{op: -1}`) followed by the DAG-CBOR body; the `#info` and error
//!   frames; and [`decode_frame`], the reading side, for tests and tools.
//! - **The log** ([`log`]): the event table in the server's SQLite database. [`log::append`] runs
//!   inside the caller's write transaction, so an event commits or rolls back with the write that
//!   caused it; it assigns the next `seq` and stores the finished frame, so serving an event is a
//!   copy. Pages after a cursor, the head, trimming and per-account deletion.
//! - **Fan-out** ([`hub`]): [`Hub`] reads each new row once (after [`Hub::notify_committed`])
//!   and hands the frame to every live [`Subscription`]; a subscription with a cursor replays the
//!   log first and joins the live tail with no gap and no duplicate. Memory per subscriber is
//!   bounded and the tailer never waits: a subscriber whose queue overflows catches up from the
//!   log, and one that is still behind after [`HubConfig::slow_consumer_grace`] is ended with
//!   `ConsumerTooSlow`. [`Hub::stats`] tells an operator how many subscribers there are and how
//!   far behind the slowest one is.
//! - **Retention** ([`retention`]): which events fall out of the backfill window.
//!
//! # What it must not touch
//!
//! HTTP and WebSockets (the server sends [`Frame::bytes`] as binary messages and closes the
//! connection when [`Subscription::next`] returns `None`); deciding *when* events happen (the
//! server appends them where it writes repos, handles and account states); connection pooling
//! and transactions (the server's writer owns the transaction [`log::append`] runs in, and the
//! hub reads through the [`LogReader`] the server gives it). It never writes repo data.
//!
//! # Wiring it into the server
//!
//! ```no_run
//! # async fn example(db: pds_storage::Database, data: pds_repo::CommitData) -> pds_event_stream::Result<()> {
//! use pds_event_stream::{EventBody, Hub, HubConfig, log};
//!
//! // Start-up: the tables (in the writer's transaction or on their own), then the hub.
//! db.write(|w| log::migrate(w.tx.connection())).await?;
//! let hub = Hub::start(db.clone(), HubConfig::default()).await?;
//! let notify = hub.clone();
//! db.on_commit(move || notify.notify_committed());
//!
//! // Where a commit is written, in the same write request:
//! db.write(move |w| {
//!     // ... persist the commit ...
//!     let event = EventBody::for_commit(&data, &[])?;
//!     log::append(w.tx.connection(), &event, std::time::SystemTime::now())
//! })
//! .await?;
//!
//! // subscribeRepos: one subscription per WebSocket.
//! let mut subscription = hub.subscribe(Some(0));
//! while let Some(frame) = subscription.next().await {
//!     // socket.send(Message::Binary(frame.into_bytes())).await?;
//! #   let _ = frame;
//! }
//! // ... then close the socket.
//! # Ok(()) }
//! ```
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `pds-ipld` | Canonical DAG-CBOR encoding, CIDs, and the CAR writer for `blocks`. |
//! | `serde_ipld_dagcbor` | Decoding two DAG-CBOR values back to back (a frame); `pds-ipld` decodes one. |
//! | `pds-repo` | [`pds_repo::CommitData`] (what a `#commit` announces) and commit block decoding for `#sync`. |
//! | `pds-storage` | [`pds_storage::migrate_component`] for the tables, and [`LogReader`] for its `Database`. |
//! | `pds-syntax` | Checking the DIDs and handles events are built from. |
//! | `rusqlite` | The log's SQL, on connections the server owns. |
//! | `serde` | The event bodies are serde structs (DAG-CBOR sorts their keys canonically). |
//! | `bytes` | [`Frame`] bytes shared by every subscriber without copying (axum's WebSocket messages take `Bytes`). |
//! | `tokio` | The hub: its tailer task, bounded queues (`sync`), back-off (`time`). |
//! | `tracing` | Logging the hub's read failures and ended subscribers. |
//! | `thiserror` | [`Error`], the one error type. |

pub mod event;
pub mod frame;
pub mod hub;
pub mod log;
pub mod retention;
mod time;

pub use event::{AccountEvent, AccountStatus, CommitEvent, EventBody, IdentityEvent, SyncEvent};
pub use frame::{DecodedFrame, Frame, decode_frame};
pub use hub::{Hub, HubConfig, HubStats, LogQuery, LogReader, ReadFuture, Subscription};
pub use retention::Retention;

/// A position in the stream: the `seq` of an event. The first event is 1; seqs only grow, and
/// one is never used twice (not even after the events before it are trimmed).
pub type Seq = i64;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Storage(#[from] pds_storage::StorageError),
    #[error(transparent)]
    Ipld(#[from] pds_ipld::Error),
    #[error(transparent)]
    Repo(#[from] pds_repo::RepoError),
    /// An event built from values that break the lexicon (a bad DID, a commit block that is not
    /// one, ...).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// A commit over the Sync 1.1 limits for a `#commit` event. [`EventBody::for_commit`]
    /// announces such a commit as `#sync` instead.
    #[error("commit too large for a #commit event: {0}")]
    CommitTooLarge(String),
    /// Bytes that are not a frame (see [`decode_frame`]).
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// [`log::append`] was called on a connection with no open transaction: the event would be
    /// committed on its own, apart from the write that caused it.
    #[error("events must be appended inside the write's transaction")]
    NotInTransaction,
    /// The [`LogReader`] did not run a query it was given.
    #[error("the event log reader dropped a query")]
    ReaderGone,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
