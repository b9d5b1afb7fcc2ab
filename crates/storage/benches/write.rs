//! Durable record writes through the group-committing [`Database`]: records per second at
//! concurrency 1 and 16, spread over 20 accounts, with group commit on and (for comparison) off.
//! Each write is a full commit: MST update, signed commit, proof blocks, SQLite WAL with
//! `synchronous` NORMAL (survives a process crash, as the reference) and FULL (survives power loss). `cargo bench -p pds-storage --bench write`.

use std::sync::Arc;
use std::time::Instant;

use pds_crypto::{Algorithm, Keypair};
use pds_repo::Write;
use pds_storage::{Database, DatabaseOptions, Durability};
use pds_syntax::{Nsid, RecordKey, TidClock};

const ACCOUNTS: usize = 20;

fn post(i: usize) -> Vec<u8> {
    let json = serde_json::json!({
        "$type": "app.bsky.feed.post",
        "text": format!("benchmark post {i}, about as long as a short real post"),
        "createdAt": "2026-11-21T00:00:00.000Z",
    });
    pds_ipld::json::json_to_cbor(&json).unwrap()
}

async fn run(concurrency: usize, writes: usize, max_batch: usize, durability: Durability) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let options = DatabaseOptions {
        max_batch,
        durability,
        ..Default::default()
    };
    let db = Database::open(&dir.path().join("pds.sqlite"), options).unwrap();
    let key = Arc::new(Keypair::generate(Algorithm::K256));
    let clock = Arc::new(TidClock::new());
    let dids: Arc<Vec<String>> = Arc::new(
        (0..ACCOUNTS)
            .map(|i| format!("did:plc:bench{i:019}"))
            .collect(),
    );
    for did in dids.iter() {
        let (key, clock, did) = (key.clone(), clock.clone(), did.clone());
        db.write(move |w| w.tx.create_repo(&did, &key, &clock, &[]))
            .await
            .unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (db, key, clock, dids) = (db.clone(), key.clone(), clock.clone(), dids.clone());
        tasks.push(tokio::spawn(async move {
            for n in (t..writes).step_by(concurrency) {
                let did = dids[n % ACCOUNTS].clone();
                let (key, clock) = (key.clone(), clock.clone());
                let write = Write::create(
                    Nsid::new("app.bsky.feed.post").unwrap(),
                    RecordKey::new(clock.next().as_str()).unwrap(),
                    post(n),
                );
                db.write(move |w| {
                    w.tx.apply_writes_cached(w.repos, &did, &key, &clock, &[write])
                })
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = writes as f64 / start.elapsed().as_secs_f64();
    db.close();
    rate
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("# durable record writes, {ACCOUNTS} accounts, median of 3 runs");
    for durability in [Durability::Normal, Durability::Full] {
        for (concurrency, writes, batch, label) in [
            (1, 2000, 256, "group commit"),
            (16, 5000, 256, "group commit"),
            (16, 2000, 1, "one commit per write"),
        ] {
            let rates: Vec<f64> = (0..3)
                .map(|_| rt.block_on(run(concurrency, writes, batch, durability)))
                .collect();
            println!(
                "create_record_c{concurrency}={:.0} records/s ({label}, {durability:?})",
                median(rates)
            );
        }
    }
}
