//! The events of `com.atproto.sync.subscribeRepos`, as the lexicon and the Sync 1.1 spec define
//! them, and their encoding as frames.
//!
//! An [`EventBody`] is everything about an event except the two things the log decides when it
//! stores it: `seq` and `time`. [`EventBody::encode`] adds those and produces the frame.
//!
//! Field names and presence follow the lexicon exactly, including its deprecated but required
//! fields: `#commit` always carries `rebase: false`, `tooBig: false` and `blobs`, and `since`
//! is `null` (not absent) for a repo's first commit. Optional fields (`prevData`, an op's
//! `prev`, `handle`, `status`) are left out when there is no value, as the reference does.

use std::collections::HashSet;

use pds_ipld::{Cid, CidKey};
use pds_repo::{Commit, CommitData, RepoOp};
use serde::{Serialize, Serializer};

use crate::frame::Frame;
use crate::{Error, Result, Seq};

/// Most record operations one `#commit` may carry (Sync 1.1).
pub const MAX_COMMIT_OPS: usize = 200;
/// Largest `blocks` CAR of a `#commit`, header and CIDs included (Sync 1.1; the lexicon's
/// `maxLength`).
pub const MAX_COMMIT_BLOCKS_BYTES: usize = 2_000_000;
/// Largest single block in a `#commit`'s `blocks` (Sync 1.1's record limit).
pub const MAX_BLOCK_BYTES: usize = 1_000_000;

/// An event to append to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventBody {
    /// Boxed: CIDs make it several times larger than the other events.
    Commit(Box<CommitEvent>),
    Sync(SyncEvent),
    Identity(IdentityEvent),
    Account(AccountEvent),
}

impl EventBody {
    /// The event announcing a new commit: a `#commit`, or, for a commit over the Sync 1.1
    /// limits (more than [`MAX_COMMIT_OPS`] ops, a block over [`MAX_BLOCK_BYTES`], `blocks`
    /// over [`MAX_COMMIT_BLOCKS_BYTES`]), a `#sync` with just the commit block. The spec
    /// deprecates `tooBig` commits: consumers that get a `#sync` fetch the repo instead. Writes
    /// should be limited so that this never happens; it is logged when it does.
    ///
    /// `blobs` is deprecated: the spec asks producers to send it empty, as the reference does,
    /// so pass `&[]` unless a consumer needs otherwise.
    pub fn for_commit(data: &CommitData, blobs: &[Cid]) -> Result<EventBody> {
        match CommitEvent::from_commit_data(data, blobs) {
            Ok(event) => Ok(EventBody::Commit(Box::new(event))),
            Err(Error::CommitTooLarge(why)) => {
                tracing::warn!(did = %data.did, rev = %data.rev, "announcing a commit as #sync: {why}");
                Ok(EventBody::Sync(SyncEvent::from_commit_data(data)?))
            }
            Err(e) => Err(e),
        }
    }

    /// The account the event is about (`repo` of a `#commit`, `did` of the others).
    pub fn did(&self) -> &str {
        match self {
            EventBody::Commit(e) => &e.repo,
            EventBody::Sync(e) => &e.did,
            EventBody::Identity(e) => &e.did,
            EventBody::Account(e) => &e.did,
        }
    }

    /// The frame header's `t`: `"#commit"`, `"#sync"`, `"#identity"` or `"#account"`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Commit(_) => "#commit",
            EventBody::Sync(_) => "#sync",
            EventBody::Identity(_) => "#identity",
            EventBody::Account(_) => "#account",
        }
    }

    /// The event's frame, with its `seq` and `time` (a lexicon datetime) filled in. The log
    /// calls this; it is public for tests that need a frame without a database.
    pub fn encode(&self, seq: Seq, time: &str) -> Result<Frame> {
        let t = self.kind();
        match self {
            EventBody::Commit(e) => Frame::message(
                seq,
                t,
                &CommitBody {
                    seq,
                    rebase: false,
                    too_big: false,
                    repo: &e.repo,
                    commit: &e.commit,
                    rev: &e.rev,
                    since: e.since.as_deref(),
                    blocks: &e.blocks,
                    ops: e.ops.iter().map(OpBody::from).collect(),
                    blobs: &e.blobs,
                    prev_data: e.prev_data.as_ref(),
                    time,
                },
            ),
            EventBody::Sync(e) => Frame::message(
                seq,
                t,
                &SyncBody {
                    seq,
                    did: &e.did,
                    blocks: &e.blocks,
                    rev: &e.rev,
                    time,
                },
            ),
            EventBody::Identity(e) => Frame::message(
                seq,
                t,
                &IdentityBody {
                    seq,
                    did: &e.did,
                    time,
                    handle: e.handle.as_deref(),
                },
            ),
            EventBody::Account(e) => Frame::message(
                seq,
                t,
                &AccountBody {
                    seq,
                    did: &e.did,
                    time,
                    active: e.active,
                    status: e.status.map(AccountStatus::as_str),
                },
            ),
        }
    }
}

/// A `#commit`: a new commit of a repo, with the blocks a consumer needs to verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEvent {
    repo: String,
    commit: Cid,
    rev: String,
    since: Option<String>,
    /// CAR v1, roots = [commit]: the commit block first, then the new MST nodes and records
    /// and the unchanged nodes that prove each op (`CommitData::event_blocks`).
    blocks: Vec<u8>,
    ops: Vec<RepoOp>,
    blobs: Vec<Cid>,
    prev_data: Option<Cid>,
}

impl CommitEvent {
    /// The `#commit` of `data`. Fails with [`Error::CommitTooLarge`] over the Sync 1.1 limits
    /// (see [`EventBody::for_commit`], which falls back to `#sync` then).
    pub fn from_commit_data(data: &CommitData, blobs: &[Cid]) -> Result<CommitEvent> {
        if data.ops.len() > MAX_COMMIT_OPS {
            return Err(Error::CommitTooLarge(format!(
                "{} ops (at most {MAX_COMMIT_OPS})",
                data.ops.len()
            )));
        }
        if let Some((cid, bytes)) = data
            .event_blocks()
            .find(|(_, bytes)| bytes.len() > MAX_BLOCK_BYTES)
        {
            return Err(Error::CommitTooLarge(format!(
                "block {cid} of {} bytes (at most {MAX_BLOCK_BYTES})",
                bytes.len()
            )));
        }
        let commit_block = commit_block(data)?;
        let mut car = pds_ipld::CarWriter::new(Vec::new(), &[data.commit_cid])?;
        // The commit first, so a streaming reader meets it before what it points to; each block
        // once (two records with the same content share a block).
        car.write_block(&data.commit_cid, commit_block)?;
        let mut written = HashSet::from([CidKey(data.commit_cid)]);
        for (cid, bytes) in data.event_blocks() {
            if written.insert(CidKey(*cid)) {
                car.write_block(cid, bytes)?;
            }
        }
        let blocks = car.finish()?;
        if blocks.len() > MAX_COMMIT_BLOCKS_BYTES {
            return Err(Error::CommitTooLarge(format!(
                "blocks of {} bytes (at most {MAX_COMMIT_BLOCKS_BYTES})",
                blocks.len()
            )));
        }
        Ok(CommitEvent {
            repo: data.did.clone(),
            commit: data.commit_cid,
            rev: data.rev.clone(),
            since: data.since.clone(),
            blocks,
            ops: data.ops.clone(),
            blobs: blobs.to_vec(),
            prev_data: data.prev_data,
        })
    }

    /// The CID of the commit announced.
    pub fn commit(&self) -> &Cid {
        &self.commit
    }

    pub fn rev(&self) -> &str {
        &self.rev
    }
}

/// A `#sync`: "this is the repo's current commit", with only the commit block; consumers
/// whose state differs fetch the whole repo. Emitted after an import or migration, when a
/// repo's history cannot be announced commit by commit, and for over-limit commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEvent {
    did: String,
    rev: String,
    /// CAR v1 with the commit block alone, roots = [commit].
    blocks: Vec<u8>,
}

impl SyncEvent {
    /// The `#sync` of a commit, from its block: `did` and `rev` are read from the commit, so
    /// they always match it. Fails if the bytes do not hash to `commit_cid` or are not a
    /// commit.
    pub fn from_commit_block(commit_cid: &Cid, block: &[u8]) -> Result<SyncEvent> {
        if !pds_ipld::verify_cid(commit_cid, block) {
            return Err(Error::InvalidEvent(format!(
                "the commit block does not hash to {commit_cid}"
            )));
        }
        let commit = Commit::from_block(commit_cid, block)?;
        let blocks = pds_ipld::encode_car(&[*commit_cid], [(*commit_cid, block.to_vec())])?;
        Ok(SyncEvent {
            did: commit.did,
            rev: commit.rev,
            blocks,
        })
    }

    /// The `#sync` of the commit `data` made.
    pub fn from_commit_data(data: &CommitData) -> Result<SyncEvent> {
        SyncEvent::from_commit_block(&data.commit_cid, commit_block(data)?)
    }
}

/// An `#identity`: the account's DID document or handle may have changed; `handle` is the
/// current one (`handle.invalid` if it no longer verifies), when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityEvent {
    did: String,
    handle: Option<String>,
}

impl IdentityEvent {
    pub fn new(did: &str, handle: Option<&str>) -> Result<IdentityEvent> {
        check_did(did)?;
        if let Some(handle) = handle {
            pds_syntax::Handle::new(handle)
                .map_err(|e| Error::InvalidEvent(format!("handle {handle:?}: {e}")))?;
        }
        Ok(IdentityEvent {
            did: did.to_owned(),
            handle: handle.map(str::to_owned),
        })
    }
}

/// An `#account`: the account's hosting status at this server. `active` says whether its repo
/// may be fetched and redistributed; `status` says why not (or, for `desynchronized` and
/// `throttled`, qualifies an active account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    did: String,
    active: bool,
    status: Option<AccountStatus>,
}

impl AccountEvent {
    /// The reference sends `active: true` with no status for an active account, and
    /// `active: false` with the status otherwise.
    pub fn new(did: &str, active: bool, status: Option<AccountStatus>) -> Result<AccountEvent> {
        check_did(did)?;
        Ok(AccountEvent {
            did: did.to_owned(),
            active,
            status,
        })
    }
}

/// The lexicon's known values of an `#account` event's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Takendown,
    Suspended,
    Deleted,
    Deactivated,
    Desynchronized,
    Throttled,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 6] = [
        AccountStatus::Takendown,
        AccountStatus::Suspended,
        AccountStatus::Deleted,
        AccountStatus::Deactivated,
        AccountStatus::Desynchronized,
        AccountStatus::Throttled,
    ];

    /// The wire value, e.g. `"takendown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Takendown => "takendown",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Deleted => "deleted",
            AccountStatus::Deactivated => "deactivated",
            AccountStatus::Desynchronized => "desynchronized",
            AccountStatus::Throttled => "throttled",
        }
    }

    /// The status named by its wire value.
    pub fn parse(s: &str) -> Option<AccountStatus> {
        AccountStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

fn check_did(did: &str) -> Result<()> {
    pds_syntax::Did::new(did)
        .map(drop)
        .map_err(|e| Error::InvalidEvent(format!("did {did:?}: {e}")))
}

fn commit_block(data: &CommitData) -> Result<&[u8]> {
    data.new_blocks
        .iter()
        .find(|(cid, _)| *cid == data.commit_cid)
        .map(|(_, bytes)| bytes.as_slice())
        .ok_or_else(|| {
            Error::InvalidEvent(format!(
                "commit block {} is not in the commit's blocks",
                data.commit_cid
            ))
        })
}

// The bodies as they are encoded. DAG-CBOR sorts the keys, so declaration order is free.

#[derive(Serialize)]
struct CommitBody<'a> {
    seq: Seq,
    rebase: bool,
    #[serde(rename = "tooBig")]
    too_big: bool,
    repo: &'a str,
    commit: &'a Cid,
    rev: &'a str,
    since: Option<&'a str>,
    #[serde(serialize_with = "as_bytes")]
    blocks: &'a [u8],
    ops: Vec<OpBody<'a>>,
    blobs: &'a [Cid],
    #[serde(rename = "prevData", skip_serializing_if = "Option::is_none")]
    prev_data: Option<&'a Cid>,
    time: &'a str,
}

#[derive(Serialize)]
struct OpBody<'a> {
    action: &'static str,
    path: &'a str,
    /// `null` for a delete.
    cid: Option<&'a Cid>,
    /// Absent for a create.
    #[serde(skip_serializing_if = "Option::is_none")]
    prev: Option<&'a Cid>,
}

impl<'a> From<&'a RepoOp> for OpBody<'a> {
    fn from(op: &'a RepoOp) -> Self {
        OpBody {
            action: op.action.as_str(),
            path: &op.path,
            cid: op.cid.as_ref(),
            prev: op.prev.as_ref(),
        }
    }
}

#[derive(Serialize)]
struct SyncBody<'a> {
    seq: Seq,
    did: &'a str,
    #[serde(serialize_with = "as_bytes")]
    blocks: &'a [u8],
    rev: &'a str,
    time: &'a str,
}

#[derive(Serialize)]
struct IdentityBody<'a> {
    seq: Seq,
    did: &'a str,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    handle: Option<&'a str>,
}

#[derive(Serialize)]
struct AccountBody<'a> {
    seq: Seq,
    did: &'a str,
    time: &'a str,
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
}

/// `blocks` is a CBOR byte string, not an array of numbers.
fn as_bytes<S: Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}
