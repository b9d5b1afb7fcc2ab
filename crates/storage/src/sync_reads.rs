//! The reads behind `com.atproto.sync.*`: a repo's blocks as a CAR stream (all of them, or only
//! those written after a rev), blocks picked by CID, and pages of repo heads.
//!
//! Why the CAR is read straight from `repo_block` rather than by walking the MST
//! ([`crate::Store::export_car`]): a walk must remember every record CID it has written to skip
//! records shared by several keys, so its memory grows with the repo. The table holds exactly
//! the repo's blocks, once each (the store keeps it so: every commit adds what it wrote and drops
//! what it no longer uses), so reading it in index order streams the same set with constant
//! memory, as the reference PDS does. The commit block still comes first, so a reader can check
//! the signature before the rest arrives.

use std::io::Write as IoWrite;

use pds_ipld::car::CarWriter;
use pds_repo::Cid;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::store::{RepoHead, Store};
use crate::{Result, StorageError};

/// A BLOB column of a row, borrowed.
fn blob<'r>(row: &'r Row<'_>, index: usize) -> Result<&'r [u8]> {
    Ok(row
        .get_ref(index)?
        .as_blob()
        .map_err(rusqlite::Error::from)?)
}

/// The CAR writer's errors are the data model's; storage reports them as repo errors.
fn car_error(e: pds_ipld::Error) -> StorageError {
    StorageError::Repo(e.into())
}

fn cid_from(bytes: &[u8]) -> Result<Cid> {
    Cid::try_from(bytes).map_err(|e| StorageError::Corrupt(format!("bad CID in the database: {e}")))
}

/// Calls `each` with every block of `did`'s repo, or with those written by commits after the
/// rev `since`, in index order (by CID for the whole repo, by rev then for a diff). Rows are
/// read one at a time: memory stays constant however large the repo. Returns the count.
pub fn for_each_block(
    conn: &Connection,
    did: &str,
    since: Option<&str>,
    each: &mut dyn FnMut(&Cid, &[u8]) -> Result<()>,
) -> Result<u64> {
    let mut stmt;
    let mut rows = match since {
        None => {
            stmt = conn
                .prepare_cached("SELECT cid, bytes FROM repo_block WHERE did = ?1 ORDER BY cid")?;
            stmt.query([did])?
        }
        Some(since) => {
            stmt = conn.prepare_cached(
                "SELECT cid, bytes FROM repo_block WHERE did = ?1 AND rev > ?2 ORDER BY rev",
            )?;
            stmt.query((did, since))?
        }
    };
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let cid = cid_from(blob(row, 0)?)?;
        each(&cid, blob(row, 1)?)?;
        count += 1;
    }
    Ok(count)
}

/// Writes `did`'s repo as a CAR with the head commit as its root: every block, or with `since`
/// only the blocks of the commits after that rev (what a consumer at `since` lacks; nothing if
/// it is already at the head). The commit block, when included, comes first. One read
/// transaction pins the snapshot for the whole stream, so the CAR is one consistent state
/// however long `out` takes. Returns the number of blocks.
pub fn write_repo_car<W: IoWrite>(
    store: &Store,
    did: &str,
    since: Option<&str>,
    out: W,
) -> Result<u64> {
    let tx = store.connection().unchecked_transaction()?;
    let head = store
        .head(did)?
        .ok_or_else(|| StorageError::RepoNotFound(did.to_owned()))?;
    let mut car = CarWriter::new(out, &[head.commit_cid]).map_err(car_error)?;
    let mut count = 0u64;
    let commit_included = since.is_none_or(|since| head.rev.as_str() > since);
    if commit_included {
        let bytes = block(&tx, did, &head.commit_cid)?.ok_or_else(|| {
            StorageError::Corrupt(format!("the head commit of {did} is not stored"))
        })?;
        car.write_block(&head.commit_cid, &bytes)
            .map_err(car_error)?;
        count += 1;
    }
    count += for_each_block(&tx, did, since, &mut |cid, bytes| {
        if commit_included && *cid == head.commit_cid {
            return Ok(());
        }
        car.write_block(cid, bytes).map_err(car_error)
    })?;
    if commit_included {
        // for_each_block counted the commit a second time.
        count -= 1;
    }
    car.finish().map_err(car_error)?;
    tx.finish()?;
    Ok(count)
}

fn block(conn: &Connection, did: &str, cid: &Cid) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM repo_block WHERE did = ?1 AND cid = ?2")?
        .query_row((did, cid.to_bytes()), |r| r.get(0))
        .optional()?)
}

/// What [`blocks_by_cid`] found.
#[derive(Debug, Default)]
pub struct FoundBlocks {
    /// The blocks the repo holds, in the order asked, each once.
    pub found: Vec<(Cid, Vec<u8>)>,
    /// The CIDs it does not hold.
    pub missing: Vec<Cid>,
}

/// The blocks of `did`'s repo with these CIDs, and the CIDs the repo does not hold.
pub fn blocks_by_cid(conn: &Connection, did: &str, cids: &[Cid]) -> Result<FoundBlocks> {
    let mut out = FoundBlocks::default();
    for cid in cids {
        if out.found.iter().any(|(c, _)| c == cid) || out.missing.contains(cid) {
            continue;
        }
        match block(conn, did, cid)? {
            Some(bytes) => out.found.push((*cid, bytes)),
            None => out.missing.push(*cid),
        }
    }
    Ok(out)
}

/// Up to `limit` repo heads in DID order, strictly after the DID `after`.
pub fn repo_heads(conn: &Connection, after: Option<&str>, limit: usize) -> Result<Vec<RepoHead>> {
    let mut stmt = conn.prepare_cached(
        "SELECT did, commit_cid, rev, data_cid FROM repo_root WHERE did > ?1 ORDER BY did LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query((after.unwrap_or(""), limit))?;
    let mut heads = Vec::new();
    while let Some(row) = rows.next()? {
        heads.push(RepoHead {
            did: row.get(0)?,
            commit_cid: cid_from(blob(row, 1)?)?,
            rev: row.get(2)?,
            data: cid_from(blob(row, 3)?)?,
        });
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use pds_crypto::{Algorithm, Keypair};
    use pds_repo::Write;
    use pds_repo::import::{ImportExpectations, read_car};
    use pds_syntax::{Nsid, RecordKey, TidClock};

    use super::*;

    const ALICE: &str = "did:plc:alicealicealicealicealic";
    const BOB: &str = "did:plc:bobbobbobbobbobbobbobbobb";

    fn create(rkey: &str, text: &str) -> Write {
        let record = pds_ipld::json::json_to_cbor(
            &serde_json::json!({"$type": "app.bsky.feed.post", "text": text}),
        )
        .unwrap();
        Write::create(
            Nsid::new("app.bsky.feed.post").unwrap(),
            RecordKey::new(rkey).unwrap(),
            record,
        )
    }

    fn car_cids(car: &[u8]) -> (Vec<Cid>, Vec<Cid>) {
        let (roots, blocks) = pds_ipld::car::decode_car(car).unwrap();
        (roots, blocks.iter().map(|(cid, _)| *cid).collect())
    }

    struct Repo {
        _dir: tempfile::TempDir,
        store: Store,
        key: Keypair,
        clock: TidClock,
    }

    fn repo_with(writes: &[Write]) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("repos.sqlite")).unwrap();
        let key = Keypair::generate(Algorithm::K256);
        let clock = TidClock::new();
        let tx = store.transaction().unwrap();
        tx.create_repo(ALICE, &key, &clock, writes).unwrap();
        tx.create_repo(BOB, &key, &clock, &[create("3kbob", "other")])
            .unwrap();
        tx.commit().unwrap();
        Repo {
            _dir: dir,
            store,
            key,
            clock,
        }
    }

    fn apply(repo: &mut Repo, writes: &[Write]) -> String {
        let tx = repo.store.transaction().unwrap();
        let commit = tx
            .apply_writes(ALICE, &repo.key, &repo.clock, writes)
            .unwrap();
        tx.commit().unwrap();
        commit.rev
    }

    #[test]
    fn whole_repo_car_has_the_same_blocks_as_the_mst_export_commit_first() {
        let repo = repo_with(&[create("3kaaa", "a"), create("3kbbb", "b")]);
        let mut ours = Vec::new();
        let count = write_repo_car(&repo.store, ALICE, None, &mut ours).unwrap();
        let mut walked = Vec::new();
        repo.store.export_car(ALICE, &mut walked).unwrap();
        let (roots, cids) = car_cids(&ours);
        let (walked_roots, walked_cids) = car_cids(&walked);
        assert_eq!(roots, walked_roots);
        assert_eq!(cids[0], roots[0], "the commit comes first");
        assert_eq!(count as usize, cids.len());
        let ours: HashSet<Cid> = cids.into_iter().collect();
        assert_eq!(ours, walked_cids.into_iter().collect::<HashSet<_>>());
        // And it verifies as a repository.
        let expect = ImportExpectations {
            did: Some(ALICE),
            signing_key: Some(&repo.key.public_key()),
            ..Default::default()
        };
        let mut car = Vec::new();
        write_repo_car(&repo.store, ALICE, None, &mut car).unwrap();
        read_car(&car[..], &expect).unwrap();
    }

    #[test]
    fn since_holds_exactly_the_blocks_of_later_commits() {
        let mut repo = repo_with(&[create("3kaaa", "a")]);
        let first = repo.store.head(ALICE).unwrap().unwrap();
        let mut before = Vec::new();
        write_repo_car(&repo.store, ALICE, None, &mut before).unwrap();
        apply(&mut repo, &[create("3kbbb", "b")]);
        let last = apply(&mut repo, &[create("3kccc", "c")]);

        let mut diff = Vec::new();
        write_repo_car(&repo.store, ALICE, Some(&first.rev), &mut diff).unwrap();
        let mut now = Vec::new();
        write_repo_car(&repo.store, ALICE, None, &mut now).unwrap();
        let (roots, diff_cids) = car_cids(&diff);
        let head = repo.store.head(ALICE).unwrap().unwrap();
        assert_eq!(roots, vec![head.commit_cid]);
        assert_eq!(diff_cids[0], head.commit_cid);
        let before: HashSet<Cid> = car_cids(&before).1.into_iter().collect();
        let now: HashSet<Cid> = car_cids(&now).1.into_iter().collect();
        let diff: HashSet<Cid> = diff_cids.into_iter().collect();
        assert_eq!(diff, now.difference(&before).copied().collect());

        // At the head (or past it): the root and nothing else.
        for since in [last.as_str(), "7zzzzzzzzzzzz"] {
            let mut empty = Vec::new();
            let count = write_repo_car(&repo.store, ALICE, Some(since), &mut empty).unwrap();
            assert_eq!(count, 0);
            assert_eq!(car_cids(&empty), (vec![head.commit_cid], vec![]));
        }
        assert!(matches!(
            write_repo_car(&repo.store, "did:plc:nobody", None, Vec::new()),
            Err(StorageError::RepoNotFound(_))
        ));
    }

    #[test]
    fn blocks_by_cid_are_per_repo_in_order_and_report_the_missing() {
        let repo = repo_with(&[create("3kaaa", "a")]);
        let alice = repo.store.head(ALICE).unwrap().unwrap();
        let bob = repo.store.head(BOB).unwrap().unwrap();
        let conn = repo.store.connection();
        let asked = [alice.data, alice.commit_cid, alice.data, bob.commit_cid];
        let FoundBlocks { found, missing } = blocks_by_cid(conn, ALICE, &asked).unwrap();
        let found: Vec<Cid> = found.into_iter().map(|(c, _)| c).collect();
        assert_eq!(found, vec![alice.data, alice.commit_cid]);
        assert_eq!(
            missing,
            vec![bob.commit_cid],
            "Bob's blocks are not Alice's"
        );
    }

    #[test]
    fn repo_heads_page_by_did() {
        let repo = repo_with(&[]);
        let conn = repo.store.connection();
        let all = repo_heads(conn, None, 10).unwrap();
        let dids: Vec<&str> = all.iter().map(|h| h.did.as_str()).collect();
        assert_eq!(dids, vec![ALICE, BOB]);
        assert_eq!(all[0], repo.store.head(ALICE).unwrap().unwrap());
        let first = repo_heads(conn, None, 1).unwrap();
        assert_eq!(first[0].did, ALICE);
        let second = repo_heads(conn, Some(ALICE), 1).unwrap();
        assert_eq!(second[0].did, BOB);
        assert!(repo_heads(conn, Some(BOB), 1).unwrap().is_empty());
    }
}
