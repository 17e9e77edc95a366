//! `kill -9` under load: a crash at any moment loses no acknowledged message, stores none twice,
//! leaves a sound database, and the service comes back ready on it. On every store; the SQLite
//! file's own check and lock, on SQLite.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::store::{Store, TestDatabase, store_tests};
use crate::support::{
    Load, LoadPlan, assert_all_acknowledged_stored_once, body, client, get_json,
    inspect_sqlite_file, long_run, post_signed, start, stored, wait_for_readiness,
};

store_tests! {
    async kill_9_at_several_moments_under_load_loses_no_acknowledged_message,
}

async fn kill_9_at_several_moments_under_load_loses_no_acknowledged_message(store: Store) {
    let database = TestDatabase::new(store);
    let client = client();
    // Kills land early (startup, first commits), mid-load and later (bigger WAL, checkpoints).
    let delays_ms: &[u64] = if long_run() {
        &[20, 80, 150, 300, 500, 800, 1200, 2000, 3000, 5000]
    } else {
        &[60, 250, 600, 1100]
    };
    let mut acknowledged = HashSet::new();

    for (round, delay) in delays_ms.iter().enumerate() {
        let mut service = start(&database, &[]);
        wait_for_readiness(&client, &service, 200, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("round {round}: restarted service is not ready: {e}"));
        assert_all_acknowledged_stored_once(&stored(&client, &service).await, &acknowledged);

        let load = Load::start(
            service.url("/webhook"),
            LoadPlan::new(&format!("r{round}"), 12),
        );
        actix_web::rt::time::sleep(Duration::from_millis(*delay)).await;
        service.signal("KILL");
        let killed_at = Instant::now();
        service
            .wait_for_exit(Duration::from_secs(10))
            .expect("the process dies on SIGKILL");
        let tally = load.finish().await;

        tally.assert_only_200_or_503();
        eprintln!(
            "crash round {round}: killed {delay} ms into the load; statuses {:?}, \
             {} requests cut by the kill, reaped in {:?}",
            tally.statuses,
            tally.transport_errors,
            killed_at.elapsed()
        );
        acknowledged.extend(tally.acknowledged);
    }

    let service = start(&database, &[]);
    wait_for_readiness(&client, &service, 200, Duration::from_secs(10))
        .await
        .expect("the service is ready after the last crash");
    let stored = stored(&client, &service).await;
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
    if store == Store::Sqlite {
        // SQLite's own check of the file, which a crash must leave sound.
        let file = inspect_sqlite_file(&database.sqlite_path());
        assert_all_acknowledged_stored_once(&file, &acknowledged);
    }
    assert!(
        acknowledged.len() >= 50,
        "the load ran: only {} acknowledged",
        acknowledged.len()
    );
    eprintln!(
        "crash: {} acknowledged over {} kills, {} rows stored (the rest were in flight)",
        acknowledged.len(),
        delays_ms.len(),
        stored.rows
    );

    // What the API reports agrees with the file, and redelivery still deduplicates.
    let (status, stats) = get_json(&client, &service, "/stats").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(stats["total_messages"].as_i64(), Some(stored.rows));
    let some_acknowledged = acknowledged.iter().next().expect("at least one").clone();
    let again = post_signed(&client, &service, body(&some_acknowledged, 16))
        .await
        .unwrap();
    assert_eq!(again.status, 200, "a redelivery is acknowledged: {again:?}");
    assert_eq!(
        service.exported().len() as i64,
        stored.rows,
        "a redelivery after the crash adds no row"
    );
}

/// The service holds its shared lock on the SQLite file for as long as it runs, so no other
/// process (a maintenance script, `import` run beside it) can take the file exclusively: one
/// that could would, on closing, checkpoint and delete the WAL the service is still writing to,
/// and messages acknowledged afterwards would be lost at the next crash.
#[actix_web::test]
async fn no_other_process_can_take_the_sqlite_file_while_the_service_writes() {
    let database = TestDatabase::new(Store::Sqlite);
    let client = client();
    let mut service = start(&database, &[]);
    wait_for_readiness(&client, &service, 200, Duration::from_secs(10))
        .await
        .expect("ready");
    let first = post_signed(&client, &service, body("before", 16))
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{first:?}");

    let other = rusqlite::Connection::open(database.sqlite_path()).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    other
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .unwrap();
    let taken = other.query_row("SELECT count(*) FROM messages", [], |row| {
        row.get::<_, i64>(0)
    });
    assert!(
        taken.is_err(),
        "another process took the database exclusively: the service had lost its lock"
    );
    drop(other);

    let second = post_signed(&client, &service, body("after", 16))
        .await
        .unwrap();
    assert_eq!(second.status, 200, "{second:?}");
    service.signal("KILL");
    service
        .wait_for_exit(Duration::from_secs(10))
        .expect("the process dies on SIGKILL");
    let acknowledged: HashSet<String> = ["before", "after"].map(str::to_owned).into();
    let file = inspect_sqlite_file(&database.sqlite_path());
    assert_all_acknowledged_stored_once(&file, &acknowledged);
}
