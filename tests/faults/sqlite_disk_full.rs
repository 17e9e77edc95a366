//! A full disk under the SQLite file: the database lives on a small tmpfs. While it is full, ingest answers 503 with
//! `Retry-After` and never 200 for a message it could not store, readiness says why, the
//! process stays alive and keeps serving reads; once there is room again it recovers by itself.

use std::time::Duration;

use crate::binary::RunningBinary;
use crate::store::{Store, TestDatabase};
use crate::support::{
    Load, LoadPlan, assert_all_acknowledged_stored_once, assert_recovers_by_itself, assert_refused,
    assert_refused_while_full, assert_taken, client, fill, get_json, inspect_sqlite_file, start,
    tmpfs_or_skip,
};

/// How soon the service must take messages again once there is room.
const RECOVERY: Duration = Duration::from_secs(5);

/// SIGTERM, then a clean exit within the default drain.
fn stop_cleanly(service: &mut RunningBinary) {
    service.signal("TERM");
    let status = service.wait_for_exit(Duration::from_secs(25));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean stop: {status:?}"
    );
}

#[actix_web::test]
async fn when_its_own_writes_fill_the_disk_ingest_answers_503_and_recovers_when_space_is_added() {
    let Some(disk) = tmpfs_or_skip("1m", "disk full by its own writes") else {
        return;
    };
    let database = TestDatabase::new_in(Store::Sqlite, disk.path());
    let mut service = start(&database, &[]);
    let client = client();

    // 4 KiB texts fill 1 MiB within a few hundred messages.
    let mut plan = LoadPlan::new("fill", 8);
    plan.text_len = 4_000;
    plan.max_per_sender = 400;
    plan.stop_after_503s = 10;
    let tally = Load::start(service.url("/webhook"), plan).join().await;

    assert_refused_while_full(&client, &service, &tally).await;
    let (listed, page) = get_json(&client, &service, "/messages?limit=1")
        .await
        .unwrap();
    assert_eq!(listed, 200, "reads still work on a full disk: {page}");
    assert!(service.child.try_wait().unwrap().is_none(), "still running");
    assert_refused(&client, &service, "while-full", 4_000).await;

    // An operator grows the volume; no restart.
    disk.resize("16m");
    assert_recovers_by_itself(&client, &service, RECOVERY, "after-growth", 4_000).await;

    let mut acknowledged = tally.acknowledged.clone();
    acknowledged.push("after-growth".to_owned());
    let stored = inspect_sqlite_file(&database.sqlite_path());
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
    assert!(!stored.ids.contains("while-full"));
    stop_cleanly(&mut service);
    eprintln!(
        "disk full (own writes, 1 MiB tmpfs): statuses {:?}, {} rows stored",
        tally.statuses, stored.rows
    );
}

#[actix_web::test]
async fn when_another_file_fills_the_disk_ingest_answers_503_and_recovers_once_it_is_deleted() {
    let Some(disk) = tmpfs_or_skip("3m", "disk full by a filler file") else {
        return;
    };
    let database = TestDatabase::new_in(Store::Sqlite, disk.path());
    let mut service = start(&database, &[]);
    let client = client();
    assert_taken(&client, &service, "before-full", 100).await;

    let filler = disk.path().join("filler");
    let filled = fill(&filler);
    assert!(disk.free_bytes() < 64 * 1024, "the disk is full");
    let mut plan = LoadPlan::new("full", 8);
    plan.text_len = 1_000;
    plan.max_per_sender = 200;
    plan.stop_after_503s = 5;
    let tally = Load::start(service.url("/webhook"), plan).join().await;

    assert_refused_while_full(&client, &service, &tally).await;

    std::fs::remove_file(&filler).unwrap();
    assert_recovers_by_itself(&client, &service, RECOVERY, "after-cleanup", 100).await;

    let mut acknowledged = tally.acknowledged.clone();
    acknowledged.extend(["before-full".to_owned(), "after-cleanup".to_owned()]);
    let stored = inspect_sqlite_file(&database.sqlite_path());
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
    stop_cleanly(&mut service);
    eprintln!(
        "disk full (filler of {filled} bytes on a 3 MiB tmpfs): statuses {:?}",
        tally.statuses
    );
}
