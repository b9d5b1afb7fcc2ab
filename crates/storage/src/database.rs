//! The database as the server uses it: one writer thread with group commit, and a pool of
//! read connections.
//!
//! Every write request is a closure run on the writer thread. The writer takes all requests
//! waiting at that moment (up to a limit), runs each in its own savepoint inside one
//! transaction, commits once, and only then answers them: one fsync for many requests, and no
//! request is acknowledged before its data is durable. A request that fails rolls back alone.
//!
//! Why one writer: SQLite allows one writer at a time anyway; owning it on one thread removes
//! lock waits and lets the writer keep each busy repo loaded in memory ([`RepoCache`]) between
//! commits. Reads never wait for writes (WAL) and run on tokio's blocking pool with pooled
//! connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::schema::Durability;
use crate::store::{RepoCache, Store, StoreTx};
use crate::{Result, StorageError};

/// Tuning knobs, with defaults that suit a small server.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// Most requests committed together.
    pub max_batch: usize,
    /// Repos kept loaded by the writer.
    pub repo_cache: usize,
    /// Read connections kept open.
    pub readers: usize,
    /// What an acknowledged write survives.
    pub durability: Durability,
    /// The WAL size past which the writer folds it back itself (see `WalLimit`).
    pub wal_restart_bytes: u64,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions {
            max_batch: 256,
            repo_cache: 1024,
            readers: 8,
            durability: Durability::default(),
            wal_restart_bytes: WAL_RESTART_BYTES,
        }
    }
}

/// What a write request sees on the writer thread: the open transaction and the repo cache.
pub struct Writer<'a, 'tx> {
    pub tx: &'a StoreTx<'tx>,
    pub repos: &'a mut RepoCache,
}

/// A request waiting for the writer: run it, then tell it whether its batch was committed.
trait Job: Send {
    /// Runs the request; `isolate`: in a savepoint of its own (else the caller rolls the whole
    /// transaction back if it fails). Returns whether it succeeded.
    fn run(&mut self, writer: &mut Writer<'_, '_>, isolate: bool) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct WriteJob<F, T, E> {
    work: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for WriteJob<F, T, E>
where
    F: FnOnce(&mut Writer<'_, '_>) -> Result<T, E> + Send,
    T: Send,
    E: From<StorageError> + Send,
{
    fn run(&mut self, writer: &mut Writer<'_, '_>, isolate: bool) -> bool {
        let work = self.work.take().expect("a job runs once");
        let repos = &mut *writer.repos;
        // A request that panics must not take the writer (and so every later write) with it:
        // it fails alone and its changes are rolled back like any other failure. The repo it
        // was changing is not put back in the cache (a taken repo returns only on success).
        let guarded = |tx: &StoreTx<'_>| {
            let run = std::panic::AssertUnwindSafe(|| work(&mut Writer { tx, repos }));
            std::panic::catch_unwind(run).unwrap_or_else(|_| {
                Err(StorageError::Corrupt("the request failed unexpectedly".into()).into())
            })
        };
        let outcome = if isolate {
            writer.tx.isolated(guarded)
        } else {
            guarded(writer.tx)
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let outcome = match (committed, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(e), Some(Ok(_))) => {
                Err(StorageError::Corrupt(format!("commit failed: {e}")).into())
            }
            (_, Some(Err(e))) => Err(e),
            (_, None) => Err(StorageError::Closed.into()),
        };
        // The requester may have gone away; its write still happened (or not) as reported.
        let _ = self.reply.send(outcome);
    }
}

/// Called on the writer thread after every transaction that committed (see
/// [`Database::on_commit`]).
type CommitListener = Arc<dyn Fn() + Send + Sync>;

struct Inner {
    path: PathBuf,
    on_commit: Arc<Mutex<Option<CommitListener>>>,
    stats: Arc<Stats>,
    jobs: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    readers: Mutex<Vec<Store>>,
    max_readers: usize,
    /// One per pooled read connection: ordinary reads wait for one, so that they never
    /// outnumber the pool (opening a connection costs more than most reads) nor the threads
    /// worth running at once.
    read_slots: tokio::sync::Semaphore,
}

/// Counters of the writer's work: how well group commit is batching.
#[derive(Debug, Default)]
pub struct Stats {
    /// Transactions committed (each one fsync).
    pub commits: std::sync::atomic::AtomicU64,
    /// Requests run in them.
    pub requests: std::sync::atomic::AtomicU64,
}

/// A shared handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

impl Database {
    /// Opens (creating or upgrading) the database at `path` and starts its writer thread.
    pub fn open(path: &Path, options: DatabaseOptions) -> Result<Database> {
        let store = Store::open_with(path, options.durability)?;
        // Checkpoints (copying the WAL back into the database file) run on their own thread,
        // not inside the writer's commits, where they would stall every waiting request.
        store
            .connection()
            .pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoint_conn = Store::open_with(path, options.durability)?;
        let (send, recv) = mpsc::channel::<Box<dyn Job>>();
        let stats = Arc::new(Stats::default());
        let (stop_checkpoints, checkpoint_stop) = mpsc::channel::<()>();
        let checkpoint_stats = stats.clone();
        let checkpointer = std::thread::Builder::new()
            .name("pds-db-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, &checkpoint_stats, checkpoint_stop))?;
        let writer_stats = stats.clone();
        let writer_path = path.to_owned();
        let on_commit: Arc<Mutex<Option<CommitListener>>> = Arc::default();
        let writer_on_commit = on_commit.clone();
        let writer = std::thread::Builder::new()
            .name("pds-db-writer".into())
            .spawn(move || {
                writer_loop(
                    (writer_path, options.wal_restart_bytes),
                    store,
                    recv,
                    options.max_batch,
                    options.repo_cache,
                    &writer_stats,
                    &writer_on_commit,
                )
            })?;
        Ok(Database {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                on_commit,
                stats,
                jobs: Mutex::new(Some(send)),
                writer: Mutex::new(Some(writer)),
                checkpointer: Mutex::new(Some((stop_checkpoints, checkpointer))),
                readers: Mutex::new(Vec::new()),
                max_readers: options.readers,
                read_slots: tokio::sync::Semaphore::new(options.readers.max(1)),
            }),
        })
    }

    /// Runs `work` on the writer thread inside the next group commit, and returns its result
    /// once that commit is durable. If `work` fails, its changes are rolled back and its error
    /// (any type a storage error converts into) comes back as it was.
    pub async fn write<F, T, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Writer<'_, '_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(WriteJob {
            work: Some(work),
            outcome: None,
            reply,
        });
        {
            let jobs = self.inner.jobs.lock().expect("jobs lock");
            jobs.as_ref()
                .ok_or(StorageError::Closed)?
                .send(job)
                .map_err(|_| StorageError::Closed)?;
        }
        answer.await.map_err(|_| StorageError::Closed)?
    }

    /// Runs `work` with a read connection on the blocking pool. It sees the last committed state.
    /// At most [`DatabaseOptions::readers`] run at once; the others wait their turn. `work` must
    /// be quick: a read that lasts as long as a client takes to receive it (a streamed export)
    /// uses [`Database::read_streaming`].
    pub async fn read<F, T, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let _slot = self
            .inner
            .read_slots
            .acquire()
            .await
            .map_err(|_| E::from(StorageError::Closed))?;
        self.read_streaming(work).await
    }

    /// [`Database::read`] without waiting for a slot: for reads paced by a client (a streamed
    /// repo export), which must not hold up everyone else's reads while a slow client drains
    /// them. Uses a pooled connection if one is free, else opens one.
    pub async fn read_streaming<F, T, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let store = match inner.readers.lock().expect("readers lock").pop() {
                Some(store) => store,
                None => Store::open_reader(&inner.path).map_err(E::from)?,
            };
            let result = work(&store);
            let mut readers = inner.readers.lock().expect("readers lock");
            if readers.len() < inner.max_readers {
                readers.push(store);
            }
            result
        })
        .await
        .map_err(|e| E::from(StorageError::Corrupt(format!("read task failed: {e}"))))?
    }

    /// Sets what runs after each committed transaction, on the writer thread, before the
    /// requests of that transaction are answered. It must be quick (the firehose uses it to wake
    /// its tailer: the new events are durable and visible to readers by then).
    pub fn on_commit(&self, listener: impl Fn() + Send + Sync + 'static) {
        *self.inner.on_commit.lock().expect("listener lock") = Some(Arc::new(listener));
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Stops taking writes, lets the writer finish what it has, and waits for it.
    pub fn close(&self) {
        self.inner.jobs.lock().expect("jobs lock").take();
        if let Some(handle) = self.inner.writer.lock().expect("writer lock").take() {
            let _ = handle.join();
        }
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .expect("checkpoint lock")
            .take();
        if let Some((stop, handle)) = checkpointer {
            drop(stop);
            let _ = handle.join();
        }
    }
}

fn writer_loop(
    (db_path, wal_restart_bytes): (std::path::PathBuf, u64),
    mut store: Store,
    jobs: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    cache: usize,
    stats: &Stats,
    on_commit: &Mutex<Option<CommitListener>>,
) {
    let mut repos = RepoCache::new(cache);
    let mut wal = WalLimit::new(&db_path, &store, wal_restart_bytes);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&mut store, &mut repos, &mut batch);
        if outcome == Ok(true) {
            use std::sync::atomic::Ordering::Relaxed;
            stats.commits.fetch_add(1, Relaxed);
            stats.requests.fetch_add(batch.len() as u64, Relaxed);
            let listener = on_commit.lock().expect("listener lock").clone();
            if let Some(listener) = listener {
                listener();
            }
        }
        if outcome.is_err() {
            // The repos in memory may be ahead of what the database kept.
            repos.clear();
        }
        let committed = outcome.map(|_| ());
        for job in batch {
            job.finish(committed.clone());
        }
        wal.after_commit(&store);
    }
}

/// The WAL past which the writer itself folds it back, unless configured (see [`WalLimit`]).
pub const WAL_RESTART_BYTES: u64 = 64 * 1024 * 1024;
/// How many commits pass between two looks at the WAL's size.
const WAL_CHECK_EVERY: u64 = 256;

/// Keeps the WAL from growing without end under steady writes. The background checkpointer's
/// `PASSIVE` passes copy frames while the writer keeps appending, so they rarely catch up with
/// its end, and SQLite restarts the WAL from the beginning only after a pass that did. Now and
/// then, between two of its own commits (when nothing is being appended), the writer checks the
/// WAL's size and, past its limit ([`WAL_RESTART_BYTES`] by default), runs the pass itself: it then copies everything
/// no reader still needs, the next commit starts the WAL over, and `journal_size_limit` trims the
/// file back.
struct WalLimit {
    path: std::path::PathBuf,
    limit: u64,
    commits: u64,
    /// The WAL was over the limit at the last look.
    over: bool,
}

impl WalLimit {
    fn new(db_path: &Path, store: &Store, limit: u64) -> WalLimit {
        let _ = store
            .connection()
            .pragma_update(None, "journal_size_limit", limit as i64);
        let mut path = db_path.as_os_str().to_owned();
        path.push("-wal");
        WalLimit {
            path: path.into(),
            limit,
            commits: 0,
            over: false,
        }
    }

    fn after_commit(&mut self, store: &Store) {
        self.commits += 1;
        // Once over the limit, every commit tries again until the WAL has started over: a
        // reader still on old frames can keep one pass from finishing.
        if !self.over && !self.commits.is_multiple_of(WAL_CHECK_EVERY) {
            return;
        }
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        self.over = size > self.limit;
        if self.over
            && let Err(e) =
                store
                    .connection()
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "WAL checkpoint by the writer failed; the next one retries");
        }
    }
}

fn run_batch(
    store: &mut Store,
    repos: &mut RepoCache,
    batch: &mut [Box<dyn Job>],
) -> Result<bool, String> {
    // Ok(true): committed; Ok(false): the one request failed and was rolled back.
    let tx = store.transaction().map_err(|e| e.to_string())?;
    // A savepoint per request lets one fail without the others, but costs a copy of every page
    // it touches. A request alone in its batch needs none: if it fails, the whole transaction
    // (only its own changes) is rolled back instead.
    let alone = batch.len() == 1;
    let mut failed_alone = false;
    {
        let mut writer = Writer { tx: &tx, repos };
        for job in batch.iter_mut() {
            let ok = job.run(&mut writer, !alone);
            failed_alone |= alone && !ok;
        }
    }
    if failed_alone {
        // Dropping the transaction rolls it back; the request's own error is its answer.
        drop(tx);
        return Ok(false);
    }
    tx.commit().map(|()| true).map_err(|e| e.to_string())
}

/// How often the checkpointer looks for new commits to copy back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies committed WAL frames back into the database file, in the background, whenever there
/// were commits since the last pass. `PASSIVE` never blocks the writer or readers; it copies what
/// no reader still needs, and the WAL restarts from the beginning once everything was copied.
/// A last full pass runs when the database closes.
fn checkpoint_loop(store: Store, stats: &Stats, stop: mpsc::Receiver<()>) {
    use std::sync::atomic::Ordering::Relaxed;
    let conn = store.connection();
    let mut checkpointed_at = stats.commits.load(Relaxed);
    let checkpoint = |mode: &str| {
        let sql = format!("PRAGMA wal_checkpoint({mode})");
        if let Err(e) = conn.query_row(&sql, [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next pass retries");
        }
    };
    loop {
        match stop.recv_timeout(CHECKPOINT_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The database is closing: the writer has finished, so fold the whole WAL in.
            _ => {
                checkpoint("TRUNCATE");
                return;
            }
        }
        let commits = stats.commits.load(Relaxed);
        if commits != checkpointed_at {
            checkpointed_at = commits;
            checkpoint("PASSIVE");
        }
    }
}
