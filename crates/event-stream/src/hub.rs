//! Live fan-out: one tailer reads each new event from the log once and hands its frame to
//! every subscriber.
//!
//! # How a subscription stays gap-free
//!
//! A subscription registers its bounded live queue *before* it reads anything from the log.
//! From then on the tailer pushes every event it reads into that queue, so every event is either
//! committed before a page read (and replayed from the log) or pushed into the queue later. The
//! subscription replays pages after its cursor until a page comes back short (it has reached
//! the head), then switches to its queue, dropping the frames whose seq it already sent.
//!
//! # Slow subscribers
//!
//! The tailer never waits for a subscriber and memory stays bounded: when a queue is full, the
//! tailer drops the subscriber's slot. The subscription then registers a new queue and catches
//! up from the log, as during its replay. A burst of events (a page larger than what the queue
//! has room for) therefore costs a fast subscriber a detour through the log, not its connection.
//! A subscriber that was live must be caught up again within
//! [`HubConfig::slow_consumer_grace`] of the overflow; if not (it reads slower than events
//! arrive, or stopped reading), it is ended with a `ConsumerTooSlow` error frame, as the
//! reference ends one whose buffer is full.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::frame::{CONSUMER_TOO_SLOW, FUTURE_CURSOR, Frame, OUTDATED_CURSOR};
use crate::{Error, Result, Seq, log};

/// A read of the log, run by a [`LogReader`].
pub type LogQuery = Box<dyn FnOnce(&Connection) + Send + 'static>;

/// What [`LogReader::run`] returns.
pub type ReadFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

/// How the hub reads the log: the server provides connections, the hub provides the queries.
pub trait LogReader: Send + Sync + 'static {
    /// Runs `query` on a connection that sees every transaction committed before this call,
    /// somewhere blocking is allowed (not on an async worker thread). The future completes once
    /// the query has run, or with the error that kept it from running.
    fn run(&self, query: LogQuery) -> ReadFuture;
}

/// The server's database: queries run on its read pool.
impl LogReader for pds_storage::Database {
    fn run(&self, query: LogQuery) -> ReadFuture {
        let db = self.clone();
        Box::pin(async move {
            db.read(move |store| {
                query(store.connection());
                Ok::<(), Error>(())
            })
            .await
        })
    }
}

/// Runs a query through `reader` and returns its result.
async fn read<T: Send + 'static>(
    reader: &dyn LogReader,
    query: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (send, receive) = oneshot::channel();
    reader
        .run(Box::new(move |conn| {
            // The subscriber may have gone away meanwhile; then nobody needs the answer.
            let _ = send.send(query(conn));
        }))
        .await?;
    receive.await.map_err(|_| Error::ReaderGone)?
}

/// Tuning of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Frames that may wait for one subscriber (the reference's buffer holds 500). A subscriber
    /// whose queue is full when the next event arrives catches up from the log.
    pub subscriber_queue: usize,
    /// Events per read of the log, for replays and for the tailer.
    pub page_size: usize,
    /// How long a live subscriber whose queue overflowed has to catch up with the live events
    /// before it is ended with `ConsumerTooSlow`.
    pub slow_consumer_grace: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            subscriber_queue: 500,
            page_size: 200,
            slow_consumer_grace: Duration::from_secs(10),
        }
    }
}

// Where a subscriber's slot stands. The tailer stores LAGGED, the subscription swaps REPLAYING
// for LIVE with a compare-and-swap: "the queue overflowed" and "the subscription went live"
// happen in one order or the other, never unnoticed.
/// Replaying from the log.
const REPLAYING: u8 = 0;
/// Reading the live queue.
const LIVE: u8 = 1;
/// The queue overflowed; the tailer dropped the slot and noted when.
const LAGGED: u8 = 2;

/// The live tail of the event log and its subscribers. Cheap to clone; the tailer task stops
/// when the last clone and the last [`Subscription`] are gone, or at [`Hub::close`].
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    reader: Box<dyn LogReader>,
    config: HubConfig,
    /// Wakes the tailer. `notify_one` keeps a permit when the tailer is busy, so a commit during
    /// a read is never missed, and many commits cost one more read.
    wake: Arc<Notify>,
    subscribers: Mutex<Subscribers>,
    /// What [`SlotState::lagged_at`] counts from.
    epoch: Instant,
    /// The seq of the last event the tailer handed out (the head at start).
    latest: AtomicI64,
}

#[derive(Default)]
struct Subscribers {
    next_id: u64,
    slots: HashMap<u64, Slot>,
    closed: bool,
    /// Every open [`Subscription`]'s position (the seq it last handed out), by subscription:
    /// what [`Hub::stats`] reads. Kept apart from the slots, which come and go while a
    /// subscription catches up.
    positions: HashMap<u64, Arc<AtomicI64>>,
    next_subscription: u64,
}

/// The tailer's side of one subscriber.
struct Slot {
    queue: mpsc::Sender<Frame>,
    state: Arc<SlotState>,
}

/// What the tailer and the subscription both see of a slot.
struct SlotState {
    /// `REPLAYING`, `LIVE` or `LAGGED`.
    phase: AtomicU8,
    /// When the queue overflowed, in milliseconds since the hub's epoch (set before `LAGGED`).
    lagged_at: AtomicU64,
}

/// The subscription's side of its slot.
struct Registration {
    id: u64,
    queue: mpsc::Receiver<Frame>,
    state: Arc<SlotState>,
}

impl Hub {
    /// Starts the hub: reads the log's head (events up to it are history, served by replay),
    /// then spawns the tailer on the current tokio runtime.
    pub async fn start(reader: impl LogReader, config: HubConfig) -> Result<Hub> {
        let config = HubConfig {
            subscriber_queue: config.subscriber_queue.max(1),
            page_size: config.page_size.max(1),
            ..config
        };
        let reader: Box<dyn LogReader> = Box::new(reader);
        let head = read(&*reader, log::head).await?.unwrap_or(0);
        let shared = Arc::new(Shared {
            reader,
            config,
            wake: Arc::new(Notify::new()),
            subscribers: Mutex::default(),
            epoch: Instant::now(),
            latest: AtomicI64::new(head),
        });
        tokio::spawn(tail(Arc::downgrade(&shared), shared.wake.clone(), head));
        Ok(Hub { shared })
    }

    /// Tells the hub that a transaction committed (maybe with events). Cheap, callable from any
    /// thread; call it after every commit that may have appended events.
    pub fn notify_committed(&self) {
        self.shared.wake.notify_one();
    }

    /// A new subscriber. Without a cursor it gets the events committed from now on. With one,
    /// it gets every kept event after the cursor, then the live events, with no gap and no
    /// duplicate; first an `#info` `OutdatedCursor` if events after the cursor were trimmed,
    /// or only a `FutureCursor` error if the cursor is beyond the last event.
    pub fn subscribe(&self, cursor: Option<Seq>) -> Subscription {
        let state = if cursor.is_some() { REPLAYING } else { LIVE };
        let live = self.shared.register(state);
        let start = cursor.unwrap_or_else(|| self.latest_seq());
        let (position_id, position) = self.shared.add_position(start);
        let phase = match (&live, cursor) {
            (None, _) => Phase::Ended,
            (Some(_), Some(cursor)) => Phase::Start(cursor),
            (Some(_), None) => Phase::Live,
        };
        Subscription {
            shared: self.shared.clone(),
            phase,
            last_sent: cursor.unwrap_or(0),
            live,
            page: VecDeque::new(),
            replay_reached_head: false,
            next_live: None,
            catch_up_deadline: None,
            position_id,
            position,
        }
    }

    /// The seq of the newest event seen by the hub: it grows when new events are committed
    /// (e.g. to tell relays there is something new).
    pub fn latest_seq(&self) -> Seq {
        self.shared.latest.load(Ordering::Acquire)
    }

    /// Subscribers currently registered for live events.
    pub fn subscriber_count(&self) -> usize {
        self.shared.subscribers().slots.len()
    }

    /// What an operator watches: open subscriptions, the head, how far behind the slowest one
    /// is, and the fullest live queue. Takes the subscribers' lock once; cheap.
    pub fn stats(&self) -> HubStats {
        let latest_seq = self.latest_seq();
        let subscribers = self.shared.subscribers();
        let slowest_seq = subscribers
            .positions
            .values()
            .map(|p| p.load(Ordering::Relaxed))
            .min();
        let max_queue_depth = subscribers
            .slots
            .values()
            .map(|slot| slot.queue.max_capacity() - slot.queue.capacity())
            .max()
            .unwrap_or(0);
        HubStats {
            subscriptions: subscribers.positions.len(),
            live_queues: subscribers.slots.len(),
            latest_seq,
            slowest_seq,
            max_queue_depth,
        }
    }

    /// Stops the tailer and ends every subscription (each returns what its queue still holds,
    /// then `None`). For shutdown; new subscriptions end at once.
    pub fn close(&self) {
        {
            let mut subscribers = self.shared.subscribers();
            subscribers.closed = true;
            subscribers.slots.clear();
        }
        self.shared.wake.notify_one();
    }
}

/// A snapshot of the hub for monitoring (see [`Hub::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Open subscriptions (connected subscribers), whether live, replaying or catching up.
    pub subscriptions: usize,
    /// Subscriptions with a registered live queue (as [`Hub::subscriber_count`]).
    pub live_queues: usize,
    /// The seq of the newest event the hub has handed out.
    pub latest_seq: Seq,
    /// The lowest seq any open subscription has reached (its cursor, or the head when it
    /// subscribed, until it is sent something); `None` without subscriptions.
    pub slowest_seq: Option<Seq>,
    /// The most frames waiting in one live queue.
    pub max_queue_depth: usize,
}

impl HubStats {
    /// Events between the head and the slowest subscription (0 without subscriptions).
    pub fn lag(&self) -> u64 {
        self.slowest_seq.map_or(0, |slowest| {
            u64::try_from(self.latest_seq.saturating_sub(slowest)).unwrap_or(0)
        })
    }
}

impl Shared {
    fn subscribers(&self) -> MutexGuard<'_, Subscribers> {
        // A panic while holding this lock leaves the map consistent (no multi-step updates).
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, phase: u8) -> Option<Registration> {
        let mut subscribers = self.subscribers();
        if subscribers.closed {
            return None;
        }
        let (send, receive) = mpsc::channel(self.config.subscriber_queue);
        let state = Arc::new(SlotState {
            phase: AtomicU8::new(phase),
            lagged_at: AtomicU64::new(0),
        });
        let id = subscribers.next_id;
        subscribers.next_id += 1;
        subscribers.slots.insert(
            id,
            Slot {
                queue: send,
                state: state.clone(),
            },
        );
        Some(Registration {
            id,
            queue: receive,
            state,
        })
    }

    fn unregister(&self, id: u64) {
        self.subscribers().slots.remove(&id);
    }

    fn add_position(&self, seq: Seq) -> (u64, Arc<AtomicI64>) {
        let position = Arc::new(AtomicI64::new(seq));
        let mut subscribers = self.subscribers();
        let id = subscribers.next_subscription;
        subscribers.next_subscription += 1;
        subscribers.positions.insert(id, position.clone());
        (id, position)
    }

    /// Pushes `frames` (in seq order) to every subscriber, dropping those that cannot take them.
    fn deliver(&self, frames: &[Frame]) {
        let now = self.millis(Instant::now());
        self.subscribers()
            .slots
            .retain(|_, slot| deliver_to(slot, frames, now));
    }

    fn millis(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        read(&*self.reader, query).await
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the tailer see that the hub is gone.
        self.wake.notify_one();
    }
}

/// Whether the slot keeps up; false drops it. `now` is in the hub's milliseconds.
fn deliver_to(slot: &Slot, frames: &[Frame], now: u64) -> bool {
    for frame in frames {
        match slot.queue.try_send(frame.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                slot.state.lagged_at.store(now, Ordering::Relaxed);
                // Release: whoever sees LAGGED sees `lagged_at`.
                slot.state.phase.store(LAGGED, Ordering::Release);
                return false;
            }
            // The subscription was dropped.
            Err(TrySendError::Closed(_)) => return false,
        }
    }
    true
}

/// How often the tailer looks at the log without being woken: a safety net for events
/// committed by something that does not call [`Hub::notify_committed`] (another process on the
/// same database), at the cost of one small query per interval.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The tailer: after each wake-up, reads the log from where it left off until it has seen
/// everything committed, handing each page to the subscribers.
async fn tail(hub: Weak<Shared>, wake: Arc<Notify>, mut position: Seq) {
    let mut failures = 0u32;
    loop {
        // Woken or timed out: either way, look.
        let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
        loop {
            let Some(shared) = hub.upgrade() else { return };
            if shared.subscribers().closed {
                return;
            }
            let page_size = shared.config.page_size;
            match shared
                .read(move |conn| log::after(conn, position, page_size))
                .await
            {
                Ok(frames) => {
                    failures = 0;
                    let Some(last) = frames.last() else { break };
                    position = last.seq().unwrap_or(position);
                    shared.deliver(&frames);
                    shared.latest.store(position, Ordering::Release);
                    if frames.len() < page_size {
                        break;
                    }
                }
                Err(e) => {
                    // Keep the position and try again: subscribers wait rather than miss events.
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, after = position, "firehose: reading new events failed");
                    drop(shared);
                    let backoff = 50u64.saturating_mul(1 << failures.min(7));
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                }
            }
        }
    }
}

/// One subscriber's stream of frames (see [`Hub::subscribe`]). Dropping it unsubscribes.
pub struct Subscription {
    shared: Arc<Shared>,
    phase: Phase,
    /// The seq of the last event handed out (at first, the cursor). Later frames with a seq up
    /// to it are duplicates of the replay.
    last_sent: Seq,
    /// The live queue; `None` once ended.
    live: Option<Registration>,
    /// The rest of the last page read from the log.
    page: VecDeque<Frame>,
    /// The last page read was short: the replay has reached the head as of that read.
    replay_reached_head: bool,
    /// The first live frame, taken from the queue while dropping duplicates.
    next_live: Option<Frame>,
    /// Catching up after an overflow while live: be live again by then or be ended.
    catch_up_deadline: Option<Instant>,
    /// `last_sent` as [`Hub::stats`] sees it, under this id in `Subscribers::positions`.
    position_id: u64,
    position: Arc<AtomicI64>,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A cursor still to check against the log.
    Start(Seq),
    /// Reading pages from the log: the replay of a cursor, or catching up after an overflow.
    Replay,
    Live,
    Ended,
}

impl Subscription {
    /// The next frame to send, in order; `None` when the subscription is over (after an error
    /// frame, or when the hub closed). Cancel-safe: dropping the future loses no frame.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            match self.phase {
                Phase::Ended => return None,
                Phase::Start(cursor) => {
                    let bounds = match self.shared.read(log::bounds).await {
                        Ok(bounds) => bounds,
                        Err(e) => return Some(self.fail(e)),
                    };
                    if cursor > bounds.head.unwrap_or(0) {
                        self.end();
                        return Some(Frame::error(FUTURE_CURSOR, Some("Cursor in the future.")));
                    }
                    self.phase = Phase::Replay;
                    if cursor < bounds.trimmed_through {
                        // The replay starts at the oldest kept event, after a warning.
                        return Some(Frame::info(
                            OUTDATED_CURSOR,
                            Some("Requested cursor exceeded limit. Possibly missing events"),
                        ));
                    }
                }
                Phase::Replay => {
                    if let Some(frame) = self.page.pop_front() {
                        self.sent(frame.seq().unwrap_or(self.last_sent));
                        return Some(frame);
                    }
                    if self.catch_up_deadline.is_some_and(|d| Instant::now() > d) {
                        return Some(self.too_slow());
                    }
                    if self.replay_reached_head {
                        self.join_live();
                        continue;
                    }
                    let (after, limit) = (self.last_sent, self.shared.config.page_size);
                    match self
                        .shared
                        .read(move |conn| log::after(conn, after, limit))
                        .await
                    {
                        Ok(page) => {
                            self.replay_reached_head = page.len() < limit;
                            self.page = page.into();
                        }
                        Err(e) => return Some(self.fail(e)),
                    }
                }
                Phase::Live => {
                    let Some(live) = &mut self.live else {
                        self.phase = Phase::Ended;
                        continue;
                    };
                    let lagged_at = live.lagged_at(&self.shared);
                    let deadline = lagged_at.map(|t| t + self.shared.config.slow_consumer_grace);
                    if deadline.is_some_and(|d| Instant::now() > d) {
                        // Too far behind for too long: what its queue holds is not worth sending.
                        return Some(self.too_slow());
                    }
                    let frame = match self.next_live.take() {
                        Some(frame) => Some(frame),
                        None => live.queue.recv().await,
                    };
                    match frame {
                        Some(frame) => {
                            let seq = frame.seq().unwrap_or(Seq::MAX);
                            if seq > self.last_sent {
                                self.sent(seq);
                                return Some(frame);
                            }
                        }
                        None => {
                            // The queue is drained and its sender gone: the tailer dropped the
                            // slot (overflow) or the hub closed.
                            match live.lagged_at(&self.shared) {
                                Some(lagged_at) => self.catch_up(lagged_at),
                                None => {
                                    self.end();
                                    return None;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The replay has reached the head: switch to the live queue, or, if it overflowed while
    /// the replay ran, register a new one and page from the log again.
    fn join_live(&mut self) {
        let Some(live) = &mut self.live else {
            self.phase = Phase::Ended;
            return;
        };
        // Drop the frames the replay already sent, making room before going live, and keep the
        // first new one.
        while let Ok(frame) = live.queue.try_recv() {
            if frame.seq().is_some_and(|seq| seq > self.last_sent) {
                self.next_live = Some(frame);
                break;
            }
        }
        let joined =
            live.state
                .phase
                .compare_exchange(REPLAYING, LIVE, Ordering::AcqRel, Ordering::Acquire);
        if joined.is_ok() {
            self.phase = Phase::Live;
            self.catch_up_deadline = None;
            return;
        }
        // LAGGED: the queue misses events. Page from the log again.
        self.next_live = None;
        self.reregister();
    }

    /// The live queue overflowed at `lagged_at`: catch up from the log, in time.
    fn catch_up(&mut self, lagged_at: Instant) {
        self.catch_up_deadline = Some(lagged_at + self.shared.config.slow_consumer_grace);
        self.phase = Phase::Replay;
        self.reregister();
    }

    /// A new queue first, then the log: whatever the new queue misses is committed before the
    /// next page is read.
    fn reregister(&mut self) {
        if let Some(old) = self.live.take() {
            self.shared.unregister(old.id);
        }
        self.live = self.shared.register(REPLAYING);
        self.replay_reached_head = false;
        if self.live.is_none() {
            self.end();
        }
    }

    fn sent(&mut self, seq: Seq) {
        self.last_sent = seq;
        self.position.store(seq, Ordering::Relaxed);
    }

    fn end(&mut self) {
        if let Some(live) = self.live.take() {
            self.shared.unregister(live.id);
        }
        self.page.clear();
        self.next_live = None;
        self.phase = Phase::Ended;
    }

    fn too_slow(&mut self) -> Frame {
        tracing::debug!(
            last_sent = self.last_sent,
            "firehose: ending a subscriber that is too slow"
        );
        self.end();
        Frame::error(CONSUMER_TOO_SLOW, Some("Stream consumer too slow"))
    }

    fn fail(&mut self, e: Error) -> Frame {
        tracing::warn!(error = %e, "firehose: reading the event log for a subscriber failed");
        self.end();
        Frame::error("InternalServerError", Some("Internal Server Error"))
    }
}

impl Registration {
    /// When the tailer dropped this queue for overflowing, if it did.
    fn lagged_at(&self, shared: &Shared) -> Option<Instant> {
        (self.state.phase.load(Ordering::Acquire) == LAGGED).then(|| {
            let millis = self.state.lagged_at.load(Ordering::Relaxed);
            shared.epoch + Duration::from_millis(millis)
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subscribers = self.shared.subscribers();
        if let Some(live) = self.live.take() {
            subscribers.slots.remove(&live.id);
        }
        subscribers.positions.remove(&self.position_id);
    }
}
