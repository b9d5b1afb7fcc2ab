//! The log: transactions, seq assignment, paging, trimming, per-account deletion.

use std::time::SystemTime;

use super::{TestDb, at_hour, did, identity};
use crate::log::{self, after, append, delete_for_account, head, oldest, trim_before};
use crate::{AccountEvent, AccountStatus, Error, EventBody, Retention, decode_frame};

#[test]
fn appends_commit_or_roll_back_with_the_write() {
    let db = TestDb::new();
    let mut conn = db.open();
    assert_eq!(head(&conn).unwrap(), None);

    // A write that fails takes its events, and their seqs, with it.
    {
        let tx = conn.transaction().unwrap();
        assert_eq!(append(&tx, &identity(1), at_hour(0)).unwrap(), 1);
        assert_eq!(append(&tx, &identity(2), at_hour(0)).unwrap(), 2);
        tx.rollback().unwrap();
    }
    assert_eq!(head(&conn).unwrap(), None);
    assert!(after(&conn, 0, 10).unwrap().is_empty());

    let tx = conn.transaction().unwrap();
    assert_eq!(
        append(&tx, &identity(3), at_hour(1)).unwrap(),
        1,
        "seq 1 was not used up"
    );
    // The event is visible to its own transaction only until it commits.
    assert!(after(&db.open(), 0, 10).unwrap().is_empty());
    tx.commit().unwrap();
    assert_eq!(head(&conn).unwrap(), Some(1));

    // A savepoint rolled back (how the server's writer fails one request of a group) too.
    let tx = conn.transaction().unwrap();
    tx.execute_batch("SAVEPOINT request").unwrap();
    assert_eq!(append(&tx, &identity(4), at_hour(1)).unwrap(), 2);
    tx.execute_batch("ROLLBACK TO request; RELEASE request")
        .unwrap();
    assert_eq!(append(&tx, &identity(5), at_hour(1)).unwrap(), 2);
    tx.commit().unwrap();

    // Outside a transaction the event would not share the write's fate: refused.
    assert!(matches!(
        append(&conn, &identity(6), at_hour(1)),
        Err(Error::NotInTransaction)
    ));
    assert_eq!(head(&conn).unwrap(), Some(2));
}

#[test]
fn frames_are_stored_whole_with_seq_and_time() {
    let db = TestDb::new();
    let seqs = db.append(5, at_hour(0));
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let conn = db.open();
    let frames = after(&conn, 0, 100).unwrap();
    assert_eq!(frames.len(), 5);
    for (i, frame) in frames.iter().enumerate() {
        let decoded = decode_frame(frame.bytes()).unwrap();
        assert_eq!(frame.seq(), Some(i as i64 + 1));
        assert_eq!(decoded.seq(), frame.seq(), "the seq is in the stored bytes");
        assert_eq!(
            decoded.get("time"),
            Some(&pds_ipld::Ipld::String("2023-11-14T22:13:20.000Z".into()))
        );
        assert_eq!(
            frame.bytes(),
            identity(i as i64)
                .encode(i as i64 + 1, "2023-11-14T22:13:20.000Z")
                .unwrap()
                .bytes()
        );
    }
    // Pages.
    let page: Vec<_> = after(&conn, 1, 2)
        .unwrap()
        .iter()
        .map(|f| f.seq().unwrap())
        .collect();
    assert_eq!(page, [2, 3]);
    assert!(after(&conn, 5, 10).unwrap().is_empty());
    assert_eq!(after(&conn, -100, 1).unwrap()[0].seq(), Some(1));
    // Migrating again changes nothing.
    log::migrate(&conn).unwrap();
    assert_eq!(after(&conn, 0, 100).unwrap(), frames);
}

#[test]
fn seqs_increase_across_transactions_and_are_never_reused() {
    let db = TestDb::new();
    assert_eq!(db.append(3, at_hour(0)), [1, 2, 3]);
    assert_eq!(db.append(2, at_hour(1)), [4, 5]);
    let conn = db.open();
    // Trim everything: the next event still gets the next seq, not 1 again.
    assert_eq!(trim_before(&conn, at_hour(10), 100).unwrap(), 5);
    assert_eq!(oldest(&conn).unwrap(), None);
    assert_eq!(head(&conn).unwrap(), Some(5));
    assert_eq!(db.append(1, at_hour(11)), [6]);
    assert_eq!(oldest(&conn).unwrap(), Some(6));
}

#[test]
fn trimming_removes_the_oldest_events_in_batches() {
    let db = TestDb::new();
    let conn = db.open();
    for hour in 0..10 {
        db.append(1, at_hour(hour));
    }
    // Events 1..=5 were stored before hour 4.5; two per batch.
    let cutoff = at_hour(4) + std::time::Duration::from_secs(1800);
    assert_eq!(trim_before(&conn, cutoff, 2).unwrap(), 2);
    assert_eq!(oldest(&conn).unwrap(), Some(3));
    assert_eq!(trim_before(&conn, cutoff, 2).unwrap(), 2);
    assert_eq!(trim_before(&conn, cutoff, 2).unwrap(), 1);
    assert_eq!(trim_before(&conn, cutoff, 2).unwrap(), 0);
    assert_eq!(oldest(&conn).unwrap(), Some(6));
    assert_eq!(head(&conn).unwrap(), Some(10));
    assert_eq!(log::bounds(&conn).unwrap().trimmed_through, 5);

    // Only a prefix goes: an event stored "earlier" after a clock step back waits its turn.
    db.append(1, at_hour(1)); // seq 11
    assert_eq!(trim_before(&conn, at_hour(2), 100).unwrap(), 0);
    assert_eq!(oldest(&conn).unwrap(), Some(6));

    // The retention helper: a window back from now.
    let retention = Retention {
        window: std::time::Duration::from_secs(3 * 3600),
        batch: 1,
    };
    assert_eq!(retention.cutoff(at_hour(9)), at_hour(6));
    let mut trimmed = 0;
    while let n @ 1.. = retention.trim_batch(&conn, at_hour(9)).unwrap() {
        trimmed += n;
    }
    assert_eq!(
        trimmed, 1,
        "event 6 (hour 5); event 7 is at hour 6, inside the window"
    );
    assert_eq!(oldest(&conn).unwrap(), Some(7));
    let day = Retention::from_backfill_limit_ms(86_400_000);
    assert_eq!(day.window, std::time::Duration::from_secs(86_400));
    // A cutoff before 1970 trims nothing.
    assert_eq!(day.trim_batch(&conn, SystemTime::UNIX_EPOCH).unwrap(), 0);
}

#[test]
fn deleting_an_account_keeps_only_its_last_event() {
    let db = TestDb::new();
    let mut conn = db.open();
    let tx = conn.transaction().unwrap();
    for i in 0..6 {
        // Accounts 0 and 1 alternate.
        append(&tx, &identity(i % 2), at_hour(0)).unwrap();
    }
    let deleted = EventBody::Account(
        AccountEvent::new(&did(0), false, Some(AccountStatus::Deleted)).unwrap(),
    );
    let keep = append(&tx, &deleted, at_hour(0)).unwrap();
    assert_eq!(delete_for_account(&tx, &did(0), keep).unwrap(), 3);
    tx.commit().unwrap();

    let left: Vec<_> = after(&conn, 0, 100)
        .unwrap()
        .iter()
        .map(|f| f.seq().unwrap())
        .collect();
    assert_eq!(
        left,
        [2, 4, 6, 7],
        "account 1's events and account 0's deletion"
    );
    // Not trimming: no cursor counts as outdated because of it.
    assert_eq!(log::bounds(&conn).unwrap().trimmed_through, 0);
}
