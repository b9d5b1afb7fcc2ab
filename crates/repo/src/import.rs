//! Reading a whole repository from a CAR file, with full verification.
//!
//! Nothing is trusted: every block must hash to its CID, the root must be a version 3 commit for
//! the expected DID signed by the expected key, the MST must be the one canonical tree for its
//! keys, every key a valid `collection/rkey`, and every record present and valid DAG-CBOR. Only
//! blocks reachable from the commit are kept. On any failure nothing is returned, so a caller
//! that stores only what this returns never stores part of a bad repo.

use std::collections::HashSet;
use std::io::Read;

use cid::Cid;
use pds_crypto::PublicKey;
use pds_ipld::car::CarReader;

use crate::block_source::CidHasher;
use crate::commit::Commit;
use crate::mst::read::{self, WalkItem};
use crate::{BlockSource, MemoryBlocks, RepoError, Result};

/// A repository that passed every check.
#[derive(Debug)]
pub struct VerifiedRepo {
    pub commit_cid: Cid,
    pub commit: Commit,
    /// Every block reachable from the commit, and nothing else.
    pub blocks: MemoryBlocks,
    /// Every record as `(collection/rkey, record CID)`, in key order.
    pub records: Vec<(String, Cid)>,
}

/// What the importer expects of the repo.
#[derive(Debug, Default, Clone)]
pub struct ImportExpectations<'a> {
    /// The account the repo must belong to.
    pub did: Option<&'a str>,
    /// The key the commit must be signed with.
    pub signing_key: Option<&'a PublicKey>,
}

/// Reads a CAR stream and verifies it as a complete repository.
pub fn read_car<R: Read>(input: R, expect: &ImportExpectations<'_>) -> Result<VerifiedRepo> {
    let mut reader = CarReader::new(input)?;
    let roots = reader.roots().to_vec();
    let commit_cid = match roots.as_slice() {
        [root] => *root,
        [] => return Err(RepoError::InvalidCommit("the CAR names no root".into())),
        _ => {
            return Err(RepoError::InvalidCommit(
                "the CAR names more than one root".into(),
            ));
        }
    };
    let mut all = MemoryBlocks::new();
    for block in &mut reader {
        let (cid, bytes) = block?;
        all.insert(cid, bytes);
    }
    verify_blocks(all, &commit_cid, expect)
}

/// Verifies a repository held in `blocks` under the commit `commit_cid`.
pub fn verify_blocks(
    all: MemoryBlocks,
    commit_cid: &Cid,
    expect: &ImportExpectations<'_>,
) -> Result<VerifiedRepo> {
    let commit = Commit::from_block(commit_cid, &all.require_block(commit_cid)?)?;
    if let Some(did) = expect.did
        && commit.did != did
    {
        return Err(RepoError::InvalidCommit(format!(
            "the commit is for {}, not {did}",
            commit.did
        )));
    }
    if let Some(key) = expect.signing_key {
        commit.verify(key)?;
    }
    check_rev_not_in_future(&commit.rev)?;

    // Walk first (borrowing the blocks), then move the reachable ones out: no copies.
    let mut reachable: Vec<Cid> = Vec::new();
    let mut records = Vec::new();
    let mut checked_records: HashSet<Cid, CidHasher> = HashSet::default();
    read::walk(&all, &commit.data, &mut |item| {
        match item {
            WalkItem::Node { cid, .. } => reachable.push(*cid),
            WalkItem::Leaf { key, value } => {
                check_record_path(key)?;
                if checked_records.insert(*value) {
                    check_record_block(value, &all.require_block(value)?)?;
                    reachable.push(*value);
                }
                records.push((key.to_owned(), *value));
            }
        }
        Ok(())
    })?;
    // Keep only what the commit reaches. Usually that is everything, and the map is kept as is.
    let mut all = all;
    let reached = reachable.len() + 1;
    let kept = if reached == all.len() && all.contains(commit_cid) {
        all
    } else {
        let mut kept = MemoryBlocks::new();
        let commit_bytes = all
            .remove(commit_cid)
            .ok_or_else(|| RepoError::missing(commit_cid))?;
        kept.insert(*commit_cid, commit_bytes);
        for cid in reachable {
            if let Some(bytes) = all.remove(&cid) {
                kept.insert(cid, bytes);
            }
        }
        kept
    };
    Ok(VerifiedRepo {
        commit_cid: *commit_cid,
        commit,
        blocks: kept,
        records,
    })
}

/// How far ahead of our clock an imported rev may be (clock skew between hosts).
const MAX_REV_SKEW_MICROS: u64 = 10 * 60 * 1_000_000;

/// Revs must grow with every commit, and the next one we write follows the imported one: a rev
/// from the far future would pull this repo (and the shared TID clock) with it.
fn check_rev_not_in_future(rev: &str) -> Result<()> {
    let rev =
        pds_syntax::Tid::new(rev).map_err(|e| RepoError::InvalidCommit(format!("rev: {e}")))?;
    let now = pds_syntax::Tid::now().timestamp_micros();
    if rev.timestamp_micros() > now + MAX_REV_SKEW_MICROS {
        return Err(RepoError::InvalidCommit(format!(
            "rev {rev} is in the future"
        )));
    }
    Ok(())
}

/// A repo key must be `<collection NSID>/<record key>`.
pub fn check_record_path(path: &str) -> Result<()> {
    let bad = || RepoError::InvalidPath(path.to_owned());
    let (collection, rkey) = path.split_once('/').ok_or_else(bad)?;
    pds_syntax::Nsid::new(collection).map_err(|_| bad())?;
    pds_syntax::RecordKey::new(rkey).map_err(|_| bad())?;
    Ok(())
}

/// A record block must be a DAG-CBOR map that follows the atproto data model.
fn check_record_block(cid: &Cid, bytes: &[u8]) -> Result<()> {
    if cid.codec() != pds_ipld::DAG_CBOR {
        return Err(RepoError::malformed("record", cid, "not DAG-CBOR"));
    }
    pds_ipld::validate::validate_node_cbor(bytes)
        .map_err(|e| RepoError::malformed("record", cid, e.to_string()))
}
