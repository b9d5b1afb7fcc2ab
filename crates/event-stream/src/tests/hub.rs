//! The hub: replay then live under a concurrent writer, cursor edge cases, slow subscribers,
//! many subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tokio::time::timeout;

use super::{TestDb, at_hour, identity};
use crate::frame::{CONSUMER_TOO_SLOW, FUTURE_CURSOR, OUTDATED_CURSOR};
use crate::{DecodedFrame, Frame, Hub, HubConfig, Seq, Subscription, decode_frame, log};

const PATIENCE: Duration = Duration::from_secs(60);

async fn next(subscription: &mut Subscription) -> Frame {
    timeout(PATIENCE, subscription.next())
        .await
        .expect("no frame in time")
        .expect("the subscription ended")
}

fn decoded(frame: &Frame) -> DecodedFrame {
    decode_frame(frame.bytes()).unwrap()
}

/// Reads events until `last`; returns their seqs. Any non-event frame fails the test.
async fn collect_until(subscription: &mut Subscription, last: Seq) -> Vec<Seq> {
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        let frame = next(subscription).await;
        let seq = frame
            .seq()
            .unwrap_or_else(|| panic!("not an event: {:?}", decoded(&frame)));
        assert_eq!(decoded(&frame).seq(), Some(seq));
        seqs.push(seq);
    }
    seqs
}

/// Nothing arrives for a while.
async fn assert_quiet(subscription: &mut Subscription) {
    assert!(
        timeout(Duration::from_millis(200), subscription.next())
            .await
            .is_err(),
        "no frame expected"
    );
}

/// A writer thread with its own connection: commits events until seq `to`, one to four per
/// transaction (with a rolled-back transaction now and then), waking the hub after each commit.
fn spawn_writer(db: &TestDb, hub: Hub, to: Seq, pause: Duration) -> JoinHandle<()> {
    let mut conn = db.open();
    std::thread::spawn(move || {
        let mut round = 0i64;
        loop {
            round += 1;
            let tx = conn.transaction().unwrap();
            let head = log::head(&tx).unwrap().unwrap_or(0);
            if head >= to {
                return;
            }
            let count = (1 + round % 4).min(to - head);
            for i in 1..=count {
                assert_eq!(
                    log::append(&tx, &identity(round), SystemTime::now()).unwrap(),
                    head + i
                );
            }
            if round % 7 == 0 {
                tx.rollback().unwrap();
            } else {
                tx.commit().unwrap();
                hub.notify_committed();
            }
            std::thread::sleep(pause);
        }
    })
}

fn assert_contiguous(seqs: &[Seq], first: Seq, last: Seq, who: &str) {
    assert_eq!(seqs.first(), Some(&first), "{who}: first");
    assert_eq!(seqs.last(), Some(&last), "{who}: last");
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{who}: every seq once, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_then_live_with_a_concurrent_writer() {
    let db = TestDb::new();
    db.append(100, SystemTime::now());
    // Small pages and queues: many page reads and switches, not a single gulp.
    let config = HubConfig {
        subscriber_queue: 256,
        page_size: 16,
        ..HubConfig::default()
    };
    let hub = Hub::start(db.database(), config).await.unwrap();
    const LAST: Seq = 2_000;

    let collect = |cursor: Option<Seq>| {
        let mut subscription = hub.subscribe(cursor);
        tokio::spawn(async move { (cursor, collect_until(&mut subscription, LAST).await) })
    };
    let early: Vec<_> = [None, Some(0), Some(37), Some(100)]
        .into_iter()
        .map(collect)
        .collect();
    let writer = spawn_writer(&db, hub.clone(), LAST, Duration::from_micros(300));

    // More subscribers join while the writer runs.
    let mut late = Vec::new();
    for cursor in [Some(0), None, Some(150), None, Some(1)] {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let head = log::head(&db.open()).unwrap().unwrap_or(0);
        late.push((head, collect(cursor.map(|c| c.min(head)))));
    }

    for task in early {
        let (cursor, seqs) = task.await.unwrap();
        // Without a cursor: the events after the 100 already there when it subscribed.
        assert_contiguous(
            &seqs,
            cursor.unwrap_or(100) + 1,
            LAST,
            &format!("early {cursor:?}"),
        );
    }
    for (head_then, task) in late {
        let (cursor, seqs) = task.await.unwrap();
        let who = format!("late {cursor:?}");
        match cursor {
            Some(cursor) => assert_contiguous(&seqs, cursor + 1, LAST, &who),
            // Live only: from about when it subscribed, with nothing missing after that.
            None => {
                assert!(
                    seqs[0] > head_then - 20,
                    "{who}: starts near the head ({})",
                    seqs[0]
                );
                assert_contiguous(&seqs, seqs[0], LAST, &who);
            }
        }
    }
    writer.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_overflowing_during_replay_sends_the_subscriber_back_to_the_log() {
    let db = TestDb::new();
    db.append(50, SystemTime::now());
    let hub = Hub::start(
        db.database(),
        HubConfig {
            subscriber_queue: 4,
            page_size: 10,
            ..HubConfig::default()
        },
    )
    .await
    .unwrap();
    let mut subscription = hub.subscribe(Some(0));
    assert_eq!(next(&mut subscription).await.seq(), Some(1));

    // While it replays, 20 live events overflow its queue of 4.
    db.append(20, SystemTime::now());
    hub.notify_committed();
    let overflowed = async {
        while hub.subscriber_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(PATIENCE, overflowed)
        .await
        .expect("the tailer drops the full queue");

    // Still every event, in order, and no ConsumerTooSlow: it was not live yet.
    let seqs = collect_until(&mut subscription, 70).await;
    assert_contiguous(&seqs, 2, 70, "after the overflow");
    // Reaching the head (this read times out, which loses nothing) it registers again.
    assert_quiet(&mut subscription).await;
    assert_eq!(hub.subscriber_count(), 1, "registered again");
    db.append(3, SystemTime::now());
    hub.notify_committed();
    assert_eq!(collect_until(&mut subscription, 73).await, [71, 72, 73]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outdated_and_future_cursors() {
    let db = TestDb::new();
    for hour in 0..10 {
        db.append(1, at_hour(hour));
    }
    // Events 1..=5 fall out of the window.
    assert_eq!(log::trim_before(&db.open(), at_hour(5), 100).unwrap(), 5);
    let hub = Hub::start(db.database(), HubConfig::default())
        .await
        .unwrap();

    for cursor in [-1, 0, 3, 4] {
        let mut subscription = hub.subscribe(Some(cursor));
        let info = decoded(&next(&mut subscription).await);
        assert_eq!(info.kind(), Some("#info"), "cursor {cursor}");
        assert_eq!(
            info.get("name"),
            Some(&pds_ipld::Ipld::String(OUTDATED_CURSOR.into()))
        );
        assert_eq!(collect_until(&mut subscription, 10).await, [6, 7, 8, 9, 10]);
    }
    // Cursor 5 misses nothing: its next event is the oldest kept.
    let mut subscription = hub.subscribe(Some(5));
    assert_eq!(collect_until(&mut subscription, 10).await, [6, 7, 8, 9, 10]);

    // Beyond the head: one FutureCursor error, then the end.
    let mut future = hub.subscribe(Some(11));
    let error = next(&mut future).await;
    assert!(error.is_error());
    let error = decoded(&error);
    assert_eq!(error.op(), Some(-1));
    assert_eq!(
        error.get("error"),
        Some(&pds_ipld::Ipld::String(FUTURE_CURSOR.into()))
    );
    assert_eq!(
        error.get("message"),
        Some(&pds_ipld::Ipld::String("Cursor in the future.".into()))
    );
    assert!(future.next().await.is_none());
    assert!(future.next().await.is_none());

    // At the head: nothing to replay, then live.
    let mut at_head = hub.subscribe(Some(10));
    assert_quiet(&mut at_head).await;
    db.append(1, SystemTime::now());
    hub.notify_committed();
    assert_eq!(collect_until(&mut at_head, 11).await, [11]);
    assert_eq!(collect_until(&mut subscription, 11).await, [11]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_queue_costs_a_live_subscriber_a_detour_not_its_stream() {
    let db = TestDb::new();
    let hub = Hub::start(
        db.database(),
        HubConfig {
            subscriber_queue: 4,
            ..HubConfig::default()
        },
    )
    .await
    .unwrap();
    let mut subscription = hub.subscribe(None);
    // 50 events in one transaction: one page of 50 for a queue of 4.
    let mut conn = db.open();
    let tx = conn.transaction().unwrap();
    for i in 0..50 {
        log::append(&tx, &identity(i), SystemTime::now()).unwrap();
    }
    tx.commit().unwrap();
    hub.notify_committed();
    assert_contiguous(&collect_until(&mut subscription, 50).await, 1, 50, "burst");
    // Live again afterwards.
    db.append(1, SystemTime::now());
    hub.notify_committed();
    assert_eq!(collect_until(&mut subscription, 51).await, [51]);
    assert_eq!(hub.subscriber_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_ended_and_the_others_keep_going() {
    let db = TestDb::new();
    let database = db.database();
    let grace = Duration::from_millis(500);
    let hub = Hub::start(
        database.clone(),
        HubConfig {
            subscriber_queue: 8,
            page_size: 200,
            slow_consumer_grace: grace,
        },
    )
    .await
    .unwrap();
    // The server's wiring: the writer thread wakes the hub after each commit.
    let notify = hub.clone();
    database.on_commit(move || notify.notify_committed());

    let mut stalled = hub.subscribe(None);
    let mut reader = hub.subscribe(None);
    let reading = tokio::spawn(async move {
        let seqs = collect_until(&mut reader, 100).await;
        (reader, seqs)
    });
    for i in 0..100 {
        let seq = database
            .write(move |w| log::append(w.tx.connection(), &identity(i), SystemTime::now()))
            .await
            .unwrap();
        assert_eq!(seq, i + 1);
    }
    let (_reader, seqs) = reading.await.unwrap();
    assert_contiguous(&seqs, 1, 100, "the reader");

    // The stalled one's queue was dropped by the tailer, never waited for; it holds nothing.
    assert_eq!(hub.subscriber_count(), 1, "only the reader is registered");
    tokio::time::sleep(grace * 2).await;
    let error = next(&mut stalled).await;
    assert!(error.is_error());
    assert_eq!(
        decoded(&error).get("error"),
        Some(&pds_ipld::Ipld::String(CONSUMER_TOO_SLOW.into()))
    );
    assert!(stalled.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_subscribers_at_once() {
    let db = TestDb::new();
    db.append(40, SystemTime::now());
    let hub = Hub::start(db.database(), HubConfig::default())
        .await
        .unwrap();
    const LAST: Seq = 400;
    let done = Arc::new(AtomicI64::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let cursor = match i % 3 {
                0 => None,
                1 => Some(0),
                _ => Some(i % 40),
            };
            let mut subscription = hub.subscribe(cursor);
            let done = done.clone();
            tokio::spawn(async move {
                let seqs = collect_until(&mut subscription, LAST).await;
                done.fetch_add(1, Ordering::Relaxed);
                (cursor, seqs)
            })
        })
        .collect();
    assert_eq!(hub.subscriber_count(), 100);
    let writer = spawn_writer(&db, hub.clone(), LAST, Duration::from_micros(500));
    for task in tasks {
        let (cursor, seqs) = task.await.unwrap();
        assert_contiguous(
            &seqs,
            cursor.unwrap_or(40) + 1,
            LAST,
            &format!("{cursor:?}"),
        );
    }
    assert_eq!(done.load(Ordering::Relaxed), 100);
    writer.join().unwrap();
    // Dropped subscriptions unregister.
    assert_eq!(hub.subscriber_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_hub_ends_every_subscription() {
    let db = TestDb::new();
    db.append(3, SystemTime::now());
    let hub = Hub::start(db.database(), HubConfig::default())
        .await
        .unwrap();
    let mut live = hub.subscribe(None);
    let mut replaying = hub.subscribe(Some(0));
    assert_eq!(next(&mut replaying).await.seq(), Some(1));
    hub.close();
    assert!(timeout(PATIENCE, live.next()).await.unwrap().is_none());
    // The replay may finish what the log holds; then it ends instead of going live.
    while let Some(frame) = timeout(PATIENCE, replaying.next()).await.unwrap() {
        assert!(frame.seq().is_some_and(|seq| seq <= 3));
    }
    assert!(hub.subscribe(None).next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_subscriptions_and_the_slowest_position() {
    let db = TestDb::new();
    db.append(10, SystemTime::now());
    let hub = Hub::start(db.database(), HubConfig::default())
        .await
        .unwrap();
    let idle = hub.stats();
    assert_eq!(
        (idle.subscriptions, idle.latest_seq, idle.slowest_seq),
        (0, 10, None)
    );
    assert_eq!(idle.lag(), 0);

    // Live from the head: not behind. A cursor at 3: seven behind until it reads.
    let live = hub.subscribe(None);
    let mut behind = hub.subscribe(Some(3));
    let stats = hub.stats();
    assert_eq!(stats.subscriptions, 2);
    assert_eq!(stats.live_queues, 2);
    assert_eq!(stats.slowest_seq, Some(3));
    assert_eq!(stats.lag(), 7);
    assert_eq!(collect_until(&mut behind, 6).await, [4, 5, 6]);
    assert_eq!(hub.stats().lag(), 4);

    // New events wait in the live subscriber's queue until it reads them.
    db.append(5, SystemTime::now());
    hub.notify_committed();
    let delivered = async {
        while hub.stats().latest_seq < 15 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(PATIENCE, delivered)
        .await
        .expect("the tailer reads the new events");
    let stats = hub.stats();
    assert_eq!(stats.max_queue_depth, 5);
    assert_eq!((stats.slowest_seq, stats.lag()), (Some(6), 9));

    drop(live);
    drop(behind);
    let gone = hub.stats();
    assert_eq!(
        (gone.subscriptions, gone.live_queues, gone.lag()),
        (0, 0, 0)
    );
}
