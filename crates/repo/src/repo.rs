//! A repository: the MST of an account's records under its latest signed commit, and the one
//! operation that changes it, [`Repo::apply_writes`].

use std::collections::HashSet;

use cid::Cid;
use pds_crypto::Keypair;
use pds_syntax::{Nsid, RecordKey, Tid};

use crate::commit::{Commit, UnsignedCommit};
use crate::mst::{Mst, read};
use crate::{BlockSource, MemoryBlocks, Overlay, RepoError, Result};

/// What a write does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteAction {
    Create,
    Update,
    Delete,
}

impl WriteAction {
    /// The name the firehose and the XRPC API use.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAction::Create => "create",
            WriteAction::Update => "update",
            WriteAction::Delete => "delete",
        }
    }
}

/// One record write of a batch. `record` is the record's DAG-CBOR (absent for deletes).
#[derive(Debug, Clone)]
pub struct Write {
    pub action: WriteAction,
    pub collection: Nsid,
    pub rkey: RecordKey,
    pub record: Option<Vec<u8>>,
}

impl Write {
    pub fn create(collection: Nsid, rkey: RecordKey, record: Vec<u8>) -> Self {
        Write {
            action: WriteAction::Create,
            collection,
            rkey,
            record: Some(record),
        }
    }
    pub fn update(collection: Nsid, rkey: RecordKey, record: Vec<u8>) -> Self {
        Write {
            action: WriteAction::Update,
            collection,
            rkey,
            record: Some(record),
        }
    }
    pub fn delete(collection: Nsid, rkey: RecordKey) -> Self {
        Write {
            action: WriteAction::Delete,
            collection,
            rkey,
            record: None,
        }
    }
    /// The record's MST key, `collection/rkey`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection, self.rkey)
    }
}

/// One applied write, as the firehose reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoOp {
    pub action: WriteAction,
    pub path: String,
    /// The new record CID (None for deletes).
    pub cid: Option<Cid>,
    /// The record CID before the write (None for creates).
    pub prev: Option<Cid>,
}

/// Everything one commit changed: what to persist, what to drop, and what to announce.
#[derive(Debug, Clone)]
pub struct CommitData {
    pub did: String,
    pub commit_cid: Cid,
    pub rev: String,
    /// The rev of the commit this one follows (None for the first commit).
    pub since: Option<String>,
    /// The new MST root.
    pub data: Cid,
    /// The MST root before this commit (None for the first commit).
    pub prev_data: Option<Cid>,
    /// Blocks to store: the commit, new MST nodes, new record blocks.
    pub new_blocks: Vec<(Cid, Vec<u8>)>,
    /// Blocks this repo no longer references: replaced MST nodes and the previous commit.
    pub removed_cids: Vec<Cid>,
    /// Record CIDs that an update or delete stopped pointing to. Identical records share a CID,
    /// so the store drops one only if no other record path still uses it (it has that index;
    /// scanning the tree here would cost a full walk per delete).
    pub released_records: Vec<Cid>,
    /// Blocks not in `new_blocks` that a firehose consumer needs to check the commit: unchanged
    /// MST nodes on the paths that prove each op (see [`read::covering_proof`]).
    pub proof_blocks: Vec<(Cid, Vec<u8>)>,
    pub ops: Vec<RepoOp>,
}

impl CommitData {
    /// The blocks of the firehose `#commit` event: the commit, new nodes and records, proofs.
    pub fn event_blocks(&self) -> impl Iterator<Item = &(Cid, Vec<u8>)> {
        self.new_blocks.iter().chain(self.proof_blocks.iter())
    }
}

/// An account's repository at its latest commit.
#[derive(Debug, Clone)]
pub struct Repo {
    commit: Commit,
    commit_cid: Cid,
    mst: Mst,
}

impl Repo {
    /// Opens the repository whose latest commit is `commit_cid`.
    pub fn load(store: &dyn BlockSource, commit_cid: &Cid) -> Result<Repo> {
        let commit = Commit::from_block(commit_cid, &store.require_block(commit_cid)?)?;
        let mst = Mst::load(commit.data);
        Ok(Repo {
            commit,
            commit_cid: *commit_cid,
            mst,
        })
    }

    /// Creates a repository: its first commit holds `writes` (all creates), signed with `key`.
    pub fn create(
        store: &dyn BlockSource,
        did: &str,
        key: &Keypair,
        rev: &Tid,
        writes: &[Write],
    ) -> Result<(Repo, CommitData)> {
        pds_syntax::Did::new(did).map_err(|e| RepoError::InvalidCommit(format!("did: {e}")))?;
        let mut mst = Mst::new();
        let (ops, mut new_blocks, _) = apply_to_mst(&mut mst, store, writes)?;
        let mst_commit = mst.commit()?;
        new_blocks.extend(mst_commit.new_blocks);
        let commit = UnsignedCommit::new(did, mst_commit.root, rev.as_str()).sign(key)?;
        let (commit_cid, commit_bytes) = commit.to_block()?;
        new_blocks.push((commit_cid, commit_bytes));
        let data = CommitData {
            did: did.to_owned(),
            commit_cid,
            rev: rev.to_string(),
            since: None,
            data: mst_commit.root,
            prev_data: None,
            new_blocks,
            removed_cids: Vec::new(),
            released_records: Vec::new(),
            proof_blocks: Vec::new(),
            ops,
        };
        Ok((
            Repo {
                commit,
                commit_cid,
                mst,
            },
            data,
        ))
    }

    pub fn did(&self) -> &str {
        &self.commit.did
    }
    pub fn commit(&self) -> &Commit {
        &self.commit
    }
    pub fn commit_cid(&self) -> &Cid {
        &self.commit_cid
    }
    pub fn rev(&self) -> &str {
        &self.commit.rev
    }
    /// The MST root of the latest commit.
    pub fn data(&self) -> &Cid {
        &self.commit.data
    }

    /// The record CID stored at `collection/rkey`.
    pub fn get_record_cid(&mut self, store: &dyn BlockSource, path: &str) -> Result<Option<Cid>> {
        self.mst.get(store, path)
    }

    /// Applies a batch of writes as one new commit with revision `rev`, signed with `key`.
    ///
    /// Nothing is persisted: the caller stores `new_blocks` (and may drop `removed_cids`) in one
    /// transaction. If that fails, the caller must [`Repo::load`] the repo again. On an error
    /// here the repo is left at its previous commit.
    pub fn apply_writes(
        &mut self,
        store: &dyn BlockSource,
        writes: &[Write],
        key: &Keypair,
        rev: &Tid,
    ) -> Result<CommitData> {
        if rev.as_str() <= self.commit.rev.as_str() {
            return Err(RepoError::InvalidCommit(format!(
                "rev {rev} does not follow the current rev {}",
                self.commit.rev
            )));
        }
        match self.apply_writes_inner(store, writes, key, rev) {
            Ok(data) => Ok(data),
            Err(e) => {
                // Forget half-applied in-memory changes.
                self.mst = Mst::load(self.commit.data);
                Err(e)
            }
        }
    }

    fn apply_writes_inner(
        &mut self,
        store: &dyn BlockSource,
        writes: &[Write],
        key: &Keypair,
        rev: &Tid,
    ) -> Result<CommitData> {
        let prev_data = self.commit.data;
        let (ops, mut new_blocks, released_records) = apply_to_mst(&mut self.mst, store, writes)?;
        let mst_commit = self.mst.commit()?;
        new_blocks.extend(mst_commit.new_blocks);

        let commit =
            UnsignedCommit::new(&self.commit.did, mst_commit.root, rev.as_str()).sign(key)?;
        let (commit_cid, commit_bytes) = commit.to_block()?;
        new_blocks.push((commit_cid, commit_bytes));

        let fresh: MemoryBlocks = new_blocks.iter().cloned().collect();
        let view = Overlay {
            top: &fresh,
            base: store,
        };

        let mut removed_cids = mst_commit.removed;
        removed_cids.push(self.commit_cid);
        // A record CID written again by this commit is still in use.
        let released_records = released_records
            .into_iter()
            .filter(|cid| !fresh.contains(cid))
            .collect();

        let mut proof_cids = HashSet::new();
        for op in &ops {
            proof_cids.extend(read::covering_proof(&view, &mst_commit.root, &op.path)?);
        }
        let mut proof_blocks = Vec::new();
        for cid in proof_cids {
            if !fresh.contains(&cid) {
                proof_blocks.push((cid, store.require_block(&cid)?.into_owned()));
            }
        }
        proof_blocks.sort_by_key(|(cid, _)| *cid);

        let data = CommitData {
            did: self.commit.did.clone(),
            commit_cid,
            rev: rev.to_string(),
            since: Some(self.commit.rev.clone()),
            data: mst_commit.root,
            prev_data: Some(prev_data),
            new_blocks,
            removed_cids,
            released_records,
            proof_blocks,
            ops,
        };
        self.commit = commit;
        self.commit_cid = commit_cid;
        Ok(data)
    }
}

/// The ops, the new record blocks, and the record CIDs that were overwritten or deleted.
type AppliedWrites = (Vec<RepoOp>, Vec<(Cid, Vec<u8>)>, Vec<Cid>);

/// Applies writes to the tree and returns the ops, the new record blocks, and the CIDs of
/// records that were overwritten or deleted.
fn apply_to_mst(mst: &mut Mst, store: &dyn BlockSource, writes: &[Write]) -> Result<AppliedWrites> {
    let mut ops = Vec::with_capacity(writes.len());
    let mut blocks = Vec::with_capacity(writes.len());
    let mut replaced = Vec::new();
    let mut seen = HashSet::with_capacity(writes.len());
    for write in writes {
        let path = write.path();
        if !seen.insert(path.clone()) {
            return Err(RepoError::WriteConflict(format!(
                "{path} is written twice in one commit"
            )));
        }
        let record = match (write.action, &write.record) {
            (WriteAction::Delete, _) => None,
            (_, Some(bytes)) => {
                let cid = pds_ipld::cid_for_cbor(bytes);
                blocks.push((cid, bytes.clone()));
                Some(cid)
            }
            (_, None) => {
                return Err(RepoError::WriteConflict(format!(
                    "{path}: a create or update needs a record"
                )));
            }
        };
        let prev = match (write.action, record) {
            (WriteAction::Create, Some(cid)) => {
                if mst.get(store, &path)?.is_some() {
                    return Err(RepoError::WriteConflict(format!(
                        "record {path} already exists"
                    )));
                }
                mst.insert(store, &path, cid)?
            }
            (WriteAction::Update, Some(cid)) => {
                if mst.get(store, &path)?.is_none() {
                    return Err(RepoError::WriteConflict(format!(
                        "record {path} does not exist"
                    )));
                }
                mst.insert(store, &path, cid)?
            }
            (WriteAction::Delete, _) => {
                let prev = mst.delete(store, &path)?;
                if prev.is_none() {
                    return Err(RepoError::WriteConflict(format!(
                        "record {path} does not exist"
                    )));
                }
                prev
            }
            (_, None) => unreachable!("checked above"),
        };
        if let Some(prev) = prev
            && Some(prev) != record
        {
            replaced.push(prev);
        }
        ops.push(RepoOp {
            action: write.action,
            path,
            cid: record,
            prev,
        });
    }
    Ok((ops, blocks, replaced))
}
