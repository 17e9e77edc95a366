//! The single SQLite replica's rollout: the old process must have stopped before the new one
//! opens the file (one writer), so from the SIGTERM until the new process is ready, senders get
//! no answer. This measures that gap under a light load, on a database that already holds
//! messages, holds it to a bound, and prints it; and checks that a stop leaves no WAL for the
//! next process to read back first. The gap is timed from the signal to the new process's
//! first ready answer: an upper bound of what a sender retrying at once would see (the old
//! process still answers the requests it holds while it drains). The load checks that nothing
//! it had acknowledged is lost across the restart.

use std::time::{Duration, Instant};

use crate::helpers::message;
use crate::store::{Store, TestDatabase};
use crate::support::{
    Load, LoadPlan, assert_all_acknowledged_stored_once, client, get_json, start, stored,
    wait_for_total, with_suffix,
};

/// Messages in the database before the restart.
const STORED_BEFORE: usize = 10_000;

/// The most the gap may be here, a test build on a busy machine; it is usually a small part
/// of a second (the README gives the figures of a release build).
const GAP_BOUND: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn a_restarted_single_sqlite_process_is_ready_again_within_five_seconds_of_its_sigterm() {
    let database = TestDatabase::new(Store::Sqlite);
    let bodies: Vec<_> = (0..STORED_BEFORE)
        .map(|n| {
            let ts = format!("2025-01-15T10:{:02}:{:02}Z", (n / 60) % 60, n % 60);
            message(
                &format!("before-{n}"),
                "+14155550100",
                "+919876543210",
                &ts,
                None,
            )
        })
        .collect();
    database.preload(&bodies);
    let client = client();
    let mut old = start(&database, &[]);
    let load = Load::start(old.url("/webhook"), LoadPlan::new("gap", 4));
    wait_for_total(
        &client,
        &old,
        STORED_BEFORE as i64 + 50,
        Duration::from_secs(30),
    )
    .await
    .expect("the load runs");

    let signalled = Instant::now();
    old.signal("TERM");
    let status = old
        .wait_for_exit(Duration::from_secs(30))
        .expect("the old process exits");
    let exited_after = signalled.elapsed();
    let new = start(&database, &[]);
    let (ready, body) = get_json(&client, &new, "/health/ready")
        .await
        .expect("the new process answers");
    let gap = signalled.elapsed();
    let tally = load.finish().await;

    assert!(status.success(), "exit status {status:?}");
    assert_eq!(ready, 200, "ready as soon as it listens: {body}");
    tally.assert_only_200_or_503();
    assert_all_acknowledged_stored_once(&stored(&client, &new).await, &tally.acknowledged);
    assert!(
        gap < GAP_BOUND,
        "senders went unanswered for {gap:?} (old process gone after {exited_after:?})"
    );
    eprintln!(
        "sqlite rollout: the old process exited {exited_after:?} after SIGTERM, the new one was \
         ready {:?} later: {gap:?} without an answer ({STORED_BEFORE} messages stored, test \
         build)",
        gap - exited_after
    );
}

/// After a burst the WAL can hold hundreds of MB, most of it already copied into the database;
/// a new process would read it all back before serving. A graceful stop empties it.
#[actix_web::test]
async fn a_graceful_stop_under_load_leaves_the_sqlite_wal_empty_for_the_next_start() {
    let database = TestDatabase::new(Store::Sqlite);
    let client = client();
    let mut service = start(&database, &[]);
    let load = Load::start(service.url("/webhook"), LoadPlan::new("wal", 8));
    wait_for_total(&client, &service, 300, Duration::from_secs(30))
        .await
        .expect("the load runs");
    let wal = with_suffix(&database.sqlite_path(), "-wal");
    let during = std::fs::metadata(&wal).map_or(0, |m| m.len());

    service.signal("TERM");
    let status = service
        .wait_for_exit(Duration::from_secs(30))
        .expect("the service exits");
    let tally = load.finish().await;
    let after = std::fs::metadata(&wal).map_or(0, |m| m.len());

    assert!(status.success(), "exit status {status:?}");
    assert!(during > 0, "the load wrote to the WAL");
    assert_eq!(
        after, 0,
        "the WAL is left empty ({during} bytes during the load)"
    );
    let restarted = start(&database, &[]);
    assert_all_acknowledged_stored_once(&stored(&client, &restarted).await, &tally.acknowledged);
}
