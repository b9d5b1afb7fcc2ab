//! The store: opening the database, reading repos, and writing commits in transactions.

use std::io::Write as IoWrite;
use std::path::Path;

use pds_crypto::Keypair;
use pds_repo::import::VerifiedRepo;
use pds_repo::{Cid, CommitData, Repo, Write, WriteAction};
use pds_syntax::{Tid, TidClock};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::blocks::RepoBlocks;
use crate::schema::Durability;
use crate::{Result, StorageError, schema};

/// Recently written repos, kept loaded between commits. Bounded: the least recently used are
/// dropped past the capacity. A cached repo is used only if it is still at the stored head, so
/// a rolled-back transaction can never leave a wrong repo in use.
pub struct RepoCache {
    capacity: usize,
    tick: u64,
    repos: std::collections::HashMap<String, (u64, Repo)>,
}

impl RepoCache {
    pub fn new(capacity: usize) -> Self {
        RepoCache {
            capacity,
            tick: 0,
            repos: std::collections::HashMap::new(),
        }
    }

    fn take(&mut self, did: &str) -> Option<Repo> {
        self.repos.remove(did).map(|(_, repo)| repo)
    }

    fn put(&mut self, did: &str, repo: Repo) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        self.repos.insert(did.to_owned(), (self.tick, repo));
        if self.repos.len() > self.capacity {
            // Drop the oldest eighth in one pass, so eviction stays rare.
            let mut ticks: Vec<u64> = self.repos.values().map(|(t, _)| *t).collect();
            let cut = self.repos.len() / 8;
            ticks.select_nth_unstable(cut);
            let threshold = ticks[cut];
            self.repos.retain(|_, (t, _)| *t > threshold);
        }
    }

    /// Forgets everything (after a failed transaction).
    pub fn clear(&mut self) {
        self.repos.clear();
    }

    pub fn len(&self) -> usize {
        self.repos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
    }
}

/// Where a repo stands: its latest commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHead {
    pub did: String,
    pub commit_cid: Cid,
    pub rev: String,
    /// The MST root of that commit.
    pub data: Cid,
}

/// The size of a stored repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoCounts {
    pub blocks: u64,
    pub records: u64,
}

/// One row of the record index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    pub collection: String,
    pub rkey: String,
    pub cid: Cid,
}

fn cid_from(bytes: Vec<u8>) -> Result<Cid> {
    Cid::try_from(bytes).map_err(|e| StorageError::Corrupt(format!("bad CID in the database: {e}")))
}

fn read_head(conn: &Connection, did: &str) -> Result<Option<RepoHead>> {
    let row = conn
        .prepare_cached("SELECT commit_cid, rev, data_cid FROM repo_root WHERE did = ?1")?
        .query_row([did], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    row.map(|(commit, rev, data)| {
        Ok(RepoHead {
            did: did.to_owned(),
            commit_cid: cid_from(commit)?,
            rev,
            data: cid_from(data)?,
        })
    })
    .transpose()
}

fn record_cid_in(
    conn: &Connection,
    did: &str,
    collection: &str,
    rkey: &str,
) -> Result<Option<Cid>> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT cid FROM record WHERE did = ?1 AND collection = ?2 AND rkey = ?3")?
        .query_row((did, collection, rkey), |r| r.get(0))
        .optional()?;
    bytes.map(cid_from).transpose()
}

/// A handle on the database. Reads go through `&self`; writes through [`Store::transaction`].
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, Durability::default())
    }

    /// [`Store::open`] with a chosen durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Store> {
        let mut conn = Connection::open(path)?;
        schema::configure(&conn, durability)?;
        schema::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// Opens a connection for reads only (it never takes the write lock).
    pub fn open_reader(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store { conn })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The latest commit of `did`'s repo, if it has one.
    pub fn head(&self, did: &str) -> Result<Option<RepoHead>> {
        read_head(&self.conn, did)
    }

    /// The blocks of `did`'s repo, for the repo code to read.
    pub fn blocks<'a>(&'a self, did: &'a str) -> RepoBlocks<'a> {
        RepoBlocks {
            conn: &self.conn,
            did,
        }
    }

    /// How many blocks `did`'s repo stores and how many records it indexes (what a migrating
    /// account checks after importing its repo).
    pub fn repo_counts(&self, did: &str) -> Result<RepoCounts> {
        let count = |sql: &str| -> Result<u64> {
            let n: i64 = self
                .conn
                .prepare_cached(sql)?
                .query_row([did], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or_default())
        };
        Ok(RepoCounts {
            blocks: count("SELECT COUNT(*) FROM repo_block WHERE did = ?1")?,
            records: count("SELECT COUNT(*) FROM record WHERE did = ?1")?,
        })
    }

    /// A record's CID and bytes.
    pub fn get_record(
        &self,
        did: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<Option<(Cid, Vec<u8>)>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT b.cid, b.bytes FROM record r JOIN repo_block b ON b.did = r.did AND b.cid = r.cid
                 WHERE r.did = ?1 AND r.collection = ?2 AND r.rkey = ?3",
            )?
            .query_row((did, collection, rkey), |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .optional()?;
        row.map(|(cid, bytes)| Ok((cid_from(cid)?, bytes)))
            .transpose()
    }

    /// The collections of `did`'s repo that hold at least one record, in order: one index seek
    /// per collection, however many records each holds.
    pub fn collections(&self, did: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT collection FROM record WHERE did = ?1 AND collection > ?2 ORDER BY collection LIMIT 1",
        )?;
        let mut out: Vec<String> = Vec::new();
        loop {
            let after = out.last().map_or("", String::as_str);
            match stmt.query_row((did, after), |r| r.get(0)).optional()? {
                Some(collection) => out.push(collection),
                None => return Ok(out),
            }
        }
    }

    /// Records of one collection in rkey order (descending if `reverse`), strictly after the
    /// `cursor` rkey in that order.
    pub fn list_records(
        &self,
        did: &str,
        collection: &str,
        cursor: Option<&str>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<RecordEntry>> {
        let sql = match (reverse, cursor.is_some()) {
            (false, false) => {
                "SELECT rkey, cid FROM record WHERE did = ?1 AND collection = ?2 ORDER BY rkey ASC LIMIT ?3"
            }
            (false, true) => {
                "SELECT rkey, cid FROM record WHERE did = ?1 AND collection = ?2 AND rkey > ?4 ORDER BY rkey ASC LIMIT ?3"
            }
            (true, false) => {
                "SELECT rkey, cid FROM record WHERE did = ?1 AND collection = ?2 ORDER BY rkey DESC LIMIT ?3"
            }
            (true, true) => {
                "SELECT rkey, cid FROM record WHERE did = ?1 AND collection = ?2 AND rkey < ?4 ORDER BY rkey DESC LIMIT ?3"
            }
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, Vec<u8>)> = match cursor {
            Some(c) => stmt
                .query_map((did, collection, limit, c), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?,
            None => stmt
                .query_map((did, collection, limit), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?,
        };
        rows.into_iter()
            .map(|(rkey, cid)| {
                Ok(RecordEntry {
                    collection: collection.to_owned(),
                    rkey,
                    cid: cid_from(cid)?,
                })
            })
            .collect()
    }

    /// Writes `did`'s whole repo as a CAR to `out`, from one consistent snapshot.
    pub fn export_car<W: IoWrite>(&self, did: &str, out: W) -> Result<u64> {
        // A read transaction pins the snapshot while the export streams.
        let tx = self.conn.unchecked_transaction()?;
        let head =
            read_head(&tx, did)?.ok_or_else(|| StorageError::RepoNotFound(did.to_owned()))?;
        let blocks = RepoBlocks { conn: &tx, did };
        let count = pds_repo::export::write_car(&blocks, &head.commit_cid, out)?;
        tx.finish()?;
        Ok(count)
    }

    /// Starts a write transaction. It takes the write lock at once, so two writers never
    /// deadlock upgrading a read lock.
    pub fn transaction(&mut self) -> Result<StoreTx<'_>> {
        Ok(StoreTx {
            tx: self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?,
        })
    }
}

/// A write transaction: any number of commits to any repos, all durable at [`StoreTx::commit`]
/// or none of them.
pub struct StoreTx<'c> {
    tx: Transaction<'c>,
}

impl StoreTx<'_> {
    pub fn head(&self, did: &str) -> Result<Option<RepoHead>> {
        read_head(&self.tx, did)
    }

    pub fn blocks<'a>(&'a self, did: &'a str) -> RepoBlocks<'a> {
        RepoBlocks {
            conn: &self.tx,
            did,
        }
    }

    /// The CID `collection/rkey` of `did`'s repo points to as of this transaction (for swap
    /// checks, which must see the state the write will apply to).
    pub fn record_cid(&self, did: &str, collection: &str, rkey: &str) -> Result<Option<Cid>> {
        record_cid_in(&self.tx, did, collection, rkey)
    }

    /// Creates `did`'s repo with a first commit holding `writes`.
    pub fn create_repo(
        &self,
        did: &str,
        key: &Keypair,
        clock: &TidClock,
        writes: &[Write],
    ) -> Result<CommitData> {
        if self.head(did)?.is_some() {
            return Err(StorageError::RepoExists(did.to_owned()));
        }
        let rev = clock.next_after(None);
        let (_, data) = Repo::create(&self.blocks(did), did, key, &rev, writes)?;
        self.persist_commit(&data)?;
        Ok(data)
    }

    /// Applies `writes` to `did`'s repo as one new commit.
    pub fn apply_writes(
        &self,
        did: &str,
        key: &Keypair,
        clock: &TidClock,
        writes: &[Write],
    ) -> Result<CommitData> {
        self.apply_writes_cached(&mut RepoCache::new(0), did, key, clock, writes)
    }

    /// [`StoreTx::apply_writes`] through a cache of loaded repos, so a busy account's MST nodes
    /// stay in memory between commits instead of being read and decoded for every write.
    pub fn apply_writes_cached(
        &self,
        cache: &mut RepoCache,
        did: &str,
        key: &Keypair,
        clock: &TidClock,
        writes: &[Write],
    ) -> Result<CommitData> {
        let head = self
            .head(did)?
            .ok_or_else(|| StorageError::RepoNotFound(did.to_owned()))?;
        let blocks = self.blocks(did);
        let mut repo = match cache.take(did) {
            // Only a repo at the stored head is reused; anything else is stale.
            Some(repo) if *repo.commit_cid() == head.commit_cid => repo,
            _ => Repo::load(&blocks, &head.commit_cid)?,
        };
        let prev_rev =
            Tid::new(&head.rev).map_err(|e| StorageError::Corrupt(format!("rev of {did}: {e}")))?;
        let rev = clock.next_after(Some(&prev_rev));
        let data = repo.apply_writes(&blocks, writes, key, &rev)?;
        // Cached only once the commit is stored: a failed write leaves nothing behind.
        self.persist_commit(&data)?;
        cache.put(did, repo);
        Ok(data)
    }

    /// Stores a commit computed by `pds-repo`: its blocks, the new head, the record index, and
    /// drops the blocks the repo no longer uses.
    pub fn persist_commit(&self, data: &CommitData) -> Result<()> {
        let did = data.did.as_str();
        {
            let mut put = self.tx.prepare_cached(
                // A block the repo already holds keeps its first rev: it has been in the repo
                // ever since (a removed block's row is deleted), so whoever synced past that rev
                // has it, and getRepo?since= does not send it again.
                "INSERT INTO repo_block (did, cid, rev, bytes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (did, cid) DO NOTHING",
            )?;
            for (cid, bytes) in &data.new_blocks {
                put.execute((did, cid.to_bytes(), &data.rev, bytes))?;
            }
            let mut drop_block = self
                .tx
                .prepare_cached("DELETE FROM repo_block WHERE did = ?1 AND cid = ?2")?;
            for cid in &data.removed_cids {
                drop_block.execute((did, cid.to_bytes()))?;
            }
            let mut upsert = self.tx.prepare_cached(
                "INSERT INTO record (did, collection, rkey, cid, rev) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (did, collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev",
            )?;
            let mut delete = self.tx.prepare_cached(
                "DELETE FROM record WHERE did = ?1 AND collection = ?2 AND rkey = ?3",
            )?;
            for op in &data.ops {
                let (collection, rkey) = op
                    .path
                    .split_once('/')
                    .ok_or_else(|| StorageError::Corrupt(format!("op path {:?}", op.path)))?;
                match (op.action, op.cid) {
                    (WriteAction::Delete, _) => delete.execute((did, collection, rkey))?,
                    (_, Some(cid)) => {
                        upsert.execute((did, collection, rkey, cid.to_bytes(), &data.rev))?
                    }
                    (_, None) => {
                        return Err(StorageError::Corrupt(format!(
                            "{} op without a CID",
                            op.path
                        )));
                    }
                };
            }
            // A record block goes when no record of the repo points to it any more.
            let mut release = self.tx.prepare_cached(
                "DELETE FROM repo_block WHERE did = ?1 AND cid = ?2
                 AND NOT EXISTS (SELECT 1 FROM record WHERE did = ?1 AND cid = ?2)",
            )?;
            for cid in &data.released_records {
                release.execute((did, cid.to_bytes()))?;
            }
        }
        self.set_head(did, &data.commit_cid, &data.rev, &data.data)
    }

    fn set_head(&self, did: &str, commit: &Cid, rev: &str, data: &Cid) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO repo_root (did, commit_cid, rev, data_cid) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (did) DO UPDATE SET commit_cid = excluded.commit_cid, rev = excluded.rev,
                 data_cid = excluded.data_cid",
            )?
            .execute((did, commit.to_bytes(), rev, data.to_bytes()))?;
        Ok(())
    }

    /// Replaces `repo.commit.did`'s repo (if any) with a verified import.
    pub fn import_repo(&self, repo: &VerifiedRepo) -> Result<()> {
        let did = repo.commit.did.as_str();
        self.delete_repo(did)?;
        let rev = repo.commit.rev.as_str();
        {
            let mut put = self.tx.prepare_cached(
                "INSERT INTO repo_block (did, cid, rev, bytes) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (cid, bytes) in repo.blocks() {
                put.execute((did, cid.to_bytes(), rev, bytes))?;
            }
            let mut rec = self.tx.prepare_cached(
                "INSERT INTO record (did, collection, rkey, cid, rev) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (path, cid) in &repo.records {
                let (collection, rkey) = path
                    .split_once('/')
                    .ok_or_else(|| StorageError::Corrupt(format!("record path {path:?}")))?;
                rec.execute((did, collection, rkey, cid.to_bytes(), rev))?;
            }
        }
        self.set_head(did, &repo.commit_cid, rev, &repo.commit.data)
    }

    /// Removes every trace of `did`'s repo.
    pub fn delete_repo(&self, did: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM repo_block WHERE did = ?1", [did])?;
        self.tx
            .execute("DELETE FROM record WHERE did = ?1", [did])?;
        self.tx
            .execute("DELETE FROM repo_root WHERE did = ?1", [did])?;
        Ok(())
    }

    /// Runs `f` inside a savepoint: if it fails, its changes are undone and the rest of the
    /// transaction stands. This is how one group commit holds many independent requests.
    pub fn isolated<T, E: From<StorageError>>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.tx
            .execute_batch("SAVEPOINT request")
            .map_err(|e| E::from(e.into()))?;
        match f(self) {
            Ok(value) => {
                self.tx
                    .execute_batch("RELEASE request")
                    .map_err(|e| E::from(e.into()))?;
                Ok(value)
            }
            Err(e) => {
                self.tx
                    .execute_batch("ROLLBACK TO request; RELEASE request")
                    .map_err(|e| E::from(e.into()))?;
                Err(e)
            }
        }
    }

    /// The underlying connection, for tables other layers own (they run inside the same
    /// transaction).
    pub fn connection(&self) -> &Connection {
        &self.tx
    }

    /// Makes every change of the transaction durable.
    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }
}
