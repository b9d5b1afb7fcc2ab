//! Writing a whole repository as a CAR file.
//!
//! The order is deterministic and stream-friendly: the commit block first, then the MST
//! depth-first in key order, each node before its contents and each record block right after
//! its key, so a reader can verify and consume the repo as it arrives. A record block shared by
//! several keys is written once.

use std::collections::HashSet;
use std::io::Write;

use cid::Cid;
use pds_ipld::car::CarWriter;

use crate::commit::Commit;
use crate::mst::read::{self, WalkItem};
use crate::{BlockSource, RepoError, Result};

/// Calls `emit` with every block of the repo at `commit_cid`, in CAR order. Returns the count.
pub fn for_each_block(
    store: &dyn BlockSource,
    commit_cid: &Cid,
    emit: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>,
) -> Result<u64> {
    let commit_bytes = store.require_block(commit_cid)?;
    let commit = Commit::from_block(commit_cid, &commit_bytes)?;
    emit(commit_cid, &commit_bytes)?;
    let mut count = 1u64;
    let mut records_written: HashSet<Cid> = HashSet::new();
    // Our own repos were verified when written or imported: skip the per-key shape checks.
    read::walk_trusted(store, &commit.data, &mut |item| {
        match item {
            WalkItem::Node { cid, bytes } => emit(cid, bytes)?,
            WalkItem::Leaf { value, .. } => {
                if !records_written.insert(*value) {
                    return Ok(());
                }
                let bytes = store.require_block(value)?;
                emit(value, &bytes)?;
            }
        }
        count += 1;
        Ok(())
    })?;
    Ok(count)
}

/// Writes the repo at `commit_cid` as a CAR v1 stream to `out`. Returns the number of blocks.
pub fn write_car<W: Write>(store: &dyn BlockSource, commit_cid: &Cid, out: W) -> Result<u64> {
    let mut car = CarWriter::new(out, &[*commit_cid])?;
    let count = for_each_block(store, commit_cid, &mut |cid, bytes| {
        car.write_block(cid, bytes).map_err(RepoError::from)
    })?;
    car.finish()?;
    Ok(count)
}

/// The repo at `commit_cid` as CAR bytes.
pub fn to_car_bytes(store: &dyn BlockSource, commit_cid: &Cid) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_car(store, commit_cid, &mut out)?;
    Ok(out)
}
