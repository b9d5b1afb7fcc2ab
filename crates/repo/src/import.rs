//! Reading a whole repository from a CAR file, with full verification.
//!
//! Nothing is trusted: every block must hash to its CID, the root must be a version 3 commit for
//! the expected DID signed by the expected key, the MST must be the one canonical tree for its
//! keys, every key a valid `collection/rkey`, and every record present and valid DAG-CBOR. Only
//! blocks reachable from the commit are kept. On any failure nothing is returned, so a caller
//! that stores only what this returns never stores part of a bad repo.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;

use cid::Cid;
use pds_crypto::PublicKey;
use pds_ipld::car::{CarBuffer, CarLimits};

use crate::block_source::{CidHasher, CidKey};
use crate::commit::Commit;
use crate::mst::read::{self, WalkItem};
use crate::{BlockSource, RepoError, Result};

/// A repository that passed every check. It holds the CAR it came from; only the blocks the
/// commit reaches are handed out.
pub struct VerifiedRepo {
    pub commit_cid: Cid,
    pub commit: Commit,
    /// Every record as `(collection/rkey, record CID)`, in key order.
    pub records: Vec<(String, Cid)>,
    car: CarBuffer,
    /// The commit, the MST nodes and the distinct record blocks.
    reachable: Vec<Cid>,
}

impl std::fmt::Debug for VerifiedRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedRepo")
            .field("commit_cid", &self.commit_cid)
            .field("records", &self.records.len())
            .field("blocks", &self.reachable.len())
            .finish()
    }
}

impl VerifiedRepo {
    /// Every block reachable from the commit, and nothing else (unreferenced blocks in the CAR
    /// are dropped).
    pub fn blocks(&self) -> impl Iterator<Item = (&Cid, &[u8])> {
        self.reachable
            .iter()
            .map(|cid| (cid, self.car.get(cid).expect("verified present")))
    }

    /// The number of reachable blocks.
    pub fn block_count(&self) -> usize {
        self.reachable.len()
    }
}

impl BlockSource for CarBuffer {
    fn get_block(&self, cid: &Cid) -> Result<Option<Cow<'_, [u8]>>> {
        Ok(self.get(cid).map(Cow::Borrowed))
    }
}

/// What the importer expects of the repo.
#[derive(Debug, Clone)]
pub struct ImportExpectations<'a> {
    /// The account the repo must belong to.
    pub did: Option<&'a str>,
    /// The key the commit must be signed with.
    pub signing_key: Option<&'a PublicKey>,
    /// The largest CAR accepted, in bytes.
    pub max_car_bytes: u64,
}

/// Imports are refused above this size unless the caller says otherwise.
pub const DEFAULT_MAX_CAR_BYTES: u64 = 1 << 30;

impl Default for ImportExpectations<'_> {
    fn default() -> Self {
        ImportExpectations {
            did: None,
            signing_key: None,
            max_car_bytes: DEFAULT_MAX_CAR_BYTES,
        }
    }
}

/// Reads a CAR and verifies it as a complete repository.
pub fn read_car<R: Read>(input: R, expect: &ImportExpectations<'_>) -> Result<VerifiedRepo> {
    let car = CarBuffer::read(input, expect.max_car_bytes, CarLimits::default())?;
    verify_car(car, expect)
}

/// Verifies a repository held in a parsed CAR (every block already matched its CID).
pub fn verify_car(car: CarBuffer, expect: &ImportExpectations<'_>) -> Result<VerifiedRepo> {
    let commit_cid = match car.roots() {
        [root] => *root,
        [] => return Err(RepoError::InvalidCommit("the CAR names no root".into())),
        _ => {
            return Err(RepoError::InvalidCommit(
                "the CAR names more than one root".into(),
            ));
        }
    };
    let commit = Commit::from_block(&commit_cid, &car.require_block(&commit_cid)?)?;
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

    let mut reachable: Vec<Cid> = vec![commit_cid];
    let mut records = Vec::new();
    let mut checked_records: HashSet<CidKey, CidHasher> = HashSet::default();
    read::walk(&car, &commit.data, &mut |item| {
        match item {
            WalkItem::Node { cid, .. } => reachable.push(*cid),
            WalkItem::Leaf { key, value } => {
                check_record_path(key)?;
                if checked_records.insert(CidKey(*value)) {
                    check_record_block(value, &car.require_block(value)?)?;
                    reachable.push(*value);
                }
                records.push((key.to_owned(), *value));
            }
        }
        Ok(())
    })?;
    Ok(VerifiedRepo {
        commit_cid,
        commit,
        records,
        car,
        reachable,
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
