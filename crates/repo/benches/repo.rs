//! Repository benchmarks: MST inserts (one batch, one key per commit), root recomputation,
//! whole-repo CAR export and verified import, each beside the machine's limits measured in the
//! same run (sha256 over the same bytes, k256 signing).
//!
//! `cargo bench -p pds-repo` (set `BENCH_KEYS` for another tree size; default 100,000).
//! Every figure is the median of several runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pds_crypto::{Algorithm, Keypair};
use pds_repo::import::{ImportExpectations, read_car};
use pds_repo::mst::Mst;
use pds_repo::{MemoryBlocks, Repo, Write, export};
use pds_syntax::{Nsid, RecordKey, Tid, TidClock};

const RUNS: usize = 5;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn record(i: usize) -> Vec<u8> {
    let json = serde_json::json!({
        "$type": "app.bsky.feed.post",
        "text": format!("benchmark post number {i}, with a little text like a real post has"),
        "createdAt": "2026-11-21T00:00:00.000Z",
    });
    pds_ipld::json::json_to_cbor(&json).unwrap()
}

fn main() {
    let n: usize = std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let clock = TidClock::new();
    let rkeys: Vec<String> = (0..n).map(|_| clock.next().to_string()).collect();
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();
    let entries: Vec<(String, pds_repo::Cid)> = rkeys
        .iter()
        .zip(&records)
        .map(|(rkey, rec)| {
            (
                format!("app.bsky.feed.post/{rkey}"),
                pds_ipld::cid_for_cbor(rec),
            )
        })
        .collect();
    println!("# pds-repo benchmarks, {n} keys, median of {RUNS} runs");

    // Limits of this machine, measured now.
    let key = Keypair::generate(Algorithm::K256);
    let msg = [7u8; 200];
    let sign = time(RUNS, || (0..2000).map(|_| key.sign(&msg)[0]).sum::<u8>());
    let sign_rate = rate(2000, sign);
    println!("k256_sign={sign_rate:.0} signatures/s");

    // MST: n inserts into an empty tree, one commit.
    let empty = MemoryBlocks::new();
    let batch = time(RUNS, || {
        let mut mst = Mst::new();
        for (k, v) in &entries {
            mst.insert(&empty, k, *v).unwrap();
        }
        mst.commit().unwrap().root
    });
    println!("mst_insert_one_batch={:.0} keys/s", rate(n, batch));

    // Root recomputation: the canonical tree and its root from the n entries, from scratch.
    let rebuild = time(RUNS, || {
        Mst::from_entries(entries.clone())
            .unwrap()
            .commit()
            .unwrap()
            .root
    });
    println!(
        "mst_root_recompute={:.1} ms ({:.0} keys/s)",
        rebuild.as_secs_f64() * 1e3,
        rate(n, rebuild)
    );

    // One key per commit into the n-key tree: load the path, insert, re-encode, store.
    let mut store = MemoryBlocks::new();
    let mut big = Mst::from_entries(entries.clone()).unwrap();
    let tree = big.commit().unwrap();
    store.extend(tree.new_blocks);
    let per_commit_keys = 2000;
    let extra: Vec<(String, pds_repo::Cid)> = (0..per_commit_keys)
        .map(|i| {
            (
                format!("app.bsky.feed.post/{}", clock.next()),
                pds_ipld::cid_for_cbor(&record(i)),
            )
        })
        .collect();
    // Measure only the inserts, not the store clone.
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let mut mst = Mst::load(tree.root);
        let mut s = store.clone();
        let start = Instant::now();
        for (k, v) in &extra {
            mst.insert(&s, k, *v).unwrap();
            s.extend(mst.commit().unwrap().new_blocks);
        }
        runs.push(start.elapsed());
    }
    println!(
        "mst_insert_one_per_commit={:.0} keys/s (into {n} keys)",
        rate(per_commit_keys, median(runs))
    );

    // A whole repo of n records, then full commits (sign + proofs) of one record each.
    let did = "did:plc:benchbenchbenchbenchbenc";
    let writes: Vec<Write> = rkeys
        .iter()
        .zip(&records)
        .map(|(rkey, rec)| {
            Write::create(
                Nsid::new("app.bsky.feed.post").unwrap(),
                RecordKey::new(rkey).unwrap(),
                rec.clone(),
            )
        })
        .collect();
    let mut repo_store = MemoryBlocks::new();
    let (mut repo, data) = Repo::create(&repo_store, did, &key, &clock.next(), &writes).unwrap();
    repo_store.extend(data.new_blocks);
    let commits = 1000;
    let start = Instant::now();
    for i in 0..commits {
        let w = Write::create(
            Nsid::new("app.bsky.feed.post").unwrap(),
            RecordKey::new(clock.next().as_str()).unwrap(),
            record(i),
        );
        let rev = clock.next_after(Some(&Tid::new(repo.rev()).unwrap()));
        let data = repo.apply_writes(&repo_store, &[w], &key, &rev).unwrap();
        repo_store.extend(data.new_blocks);
    }
    println!(
        "repo_commit_one_record={:.0} commits/s (signed, with proofs, into {n} records)",
        rate(commits, start.elapsed())
    );

    // Export the repo to CAR, and import it back with full verification.
    let car = export::to_car_bytes(&repo_store, repo.commit_cid()).unwrap();
    let mb = car.len() as f64 / 1e6;
    let records_total = n + commits;
    let sha = time(RUNS, || pds_ipld::sha256(&car));
    println!("car_size={mb:.1} MB");
    println!("sha256_same_bytes={:.0} MB/s", mb / sha.as_secs_f64());
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let exp = time(runs, || {
        export::to_car_bytes(&repo_store, repo.commit_cid())
            .unwrap()
            .len()
    });
    println!(
        "export_car={:.0} MB/s, {:.0} records/s ({:.1}x the sha256 time)",
        mb / exp.as_secs_f64(),
        rate(records_total, exp),
        exp.as_secs_f64() / sha.as_secs_f64()
    );
    if std::env::var_os("BENCH_BREAKDOWN").is_some() {
        let root = *repo.data();
        breakdown(&car, &repo_store, &root);
    }
    let pubkey = key.public_key();
    let expect = ImportExpectations {
        did: Some(did),
        signing_key: Some(&pubkey),
        ..Default::default()
    };
    let imp = time(runs, || {
        read_car(car.as_slice(), &expect).unwrap().records.len()
    });
    println!(
        "import_verified={:.0} MB/s, {:.0} records/s ({:.1}x the sha256 time)",
        mb / imp.as_secs_f64(),
        rate(records_total, imp),
        imp.as_secs_f64() / sha.as_secs_f64()
    );
}

#[allow(dead_code)]
fn breakdown(car: &[u8], store: &MemoryBlocks, root: &pds_repo::Cid) {
    let t = Instant::now();
    let (_, blocks) = pds_ipld::car::decode_car(car).unwrap();
    println!("  car_read={:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let mut m = MemoryBlocks::new();
    m.extend(blocks.clone());
    println!("  hashmap_insert={:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let mut n = 0;
    pds_repo::mst::read::walk(store, root, &mut |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    println!(
        "  walk={:.1} ms ({n} items)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    for (cid, b) in &blocks {
        if b.len() > 60 && cid.codec() == 0x71 {
            let v: Result<pds_ipld::Ipld, _> = pds_ipld::from_cbor(b);
            black_box(v.ok());
        }
    }
    println!(
        "  ipld_decode_all={:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
