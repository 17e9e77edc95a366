//! The SQLite file made unusable underneath the running binary: moved away, replaced by garbage,
//! made read-only, locked by another process. Each time ingest answers a JSON 503 with
//! `Retry-After` and never a 200 for something it did not store, readiness names the cause, and
//! the service recovers by itself once the cause is gone. (`tests/api/health.rs` covers
//! readiness alone for the first two, in process.)

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::binary::RunningBinary;
use crate::store::{Store, TestDatabase};
use crate::support::{
    Load, LoadPlan, Tally, assert_all_acknowledged_stored_once, assert_well_formed_503, body,
    chmod, client, command_output_as_nobody, get_json, give_to_nobody, inspect_sqlite_file,
    post_signed, start, start_unprivileged, unprivileged_prefix, wait_for_not_ready,
    wait_for_readiness, with_suffix,
};

/// Runs a load, breaks the database with `break_it`, checks the service refuses cleanly and
/// names `reason`, repairs it with `repair`, checks it recovers, and returns the tally. Both
/// are given the database's path and a free path beside it, to move the file aside.
async fn break_under_load_and_repair(
    database: &TestDatabase,
    service: &RunningBinary,
    prefix: &str,
    break_it: impl FnOnce(&Path, &Path),
    reason: &str,
    repair: impl FnOnce(&Path, &Path),
) -> Tally {
    let client = client();
    let db = database.sqlite_path();
    let aside = db.with_file_name("aside.db");
    let load = Load::start(service.url("/webhook"), LoadPlan::new(prefix, 8));
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;

    break_it(&db, &aside);
    wait_for_not_ready(&client, service, reason, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{prefix}: readiness names the cause: {e}"));
    let refused = post_signed(&client, service, body(&format!("{prefix}-refused"), 16))
        .await
        .unwrap();
    assert_well_formed_503(&refused);
    let (live, _) = get_json(&client, service, "/health/live").await.unwrap();
    assert_eq!(live, 200, "{prefix}: still alive");

    repair(&db, &aside);
    wait_for_readiness(&client, service, 200, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{prefix}: no recovery: {e}"));
    let tally = load.finish().await;
    let accepted = post_signed(&client, service, body(&format!("{prefix}-after"), 16))
        .await
        .unwrap();
    assert_eq!(accepted.status, 200, "{prefix}: {accepted:?}");

    tally.assert_only_200_or_503();
    assert_eq!(
        tally.transport_errors, 0,
        "{prefix}: every request answered"
    );
    assert!(tally.count(503) > 0, "{prefix}: {:?}", tally.statuses);
    let stored = inspect_sqlite_file(&db);
    let mut acknowledged = tally.acknowledged.clone();
    acknowledged.push(format!("{prefix}-after"));
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
    assert!(!stored.ids.contains(&format!("{prefix}-refused")));
    eprintln!("{prefix}: statuses under load {:?}", tally.statuses);
    tally
}

/// Takes write permission away from the database file and its WAL and shared-memory files.
fn make_read_only(db: &Path) {
    for file in [
        db.to_path_buf(),
        with_suffix(db, "-wal"),
        with_suffix(db, "-shm"),
    ] {
        if file.exists() {
            chmod(&file, 0o444);
        }
    }
}

/// [`break_under_load_and_repair`] on a service of its own.
async fn break_a_fresh_service_and_repair(
    prefix: &str,
    break_it: impl FnOnce(&Path, &Path),
    reason: &str,
    repair: impl FnOnce(&Path, &Path),
) -> Tally {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    break_under_load_and_repair(&database, &service, prefix, break_it, reason, repair).await
}

#[actix_web::test]
async fn a_database_moved_away_under_load_gets_no_200_until_it_is_back() {
    break_a_fresh_service_and_repair(
        "moved",
        |db, aside| std::fs::rename(db, aside).unwrap(),
        "database file is missing",
        |db, aside| std::fs::rename(aside, db).unwrap(),
    )
    .await;
}

#[actix_web::test]
async fn a_database_replaced_by_garbage_under_load_gets_no_200_until_it_is_back() {
    break_a_fresh_service_and_repair(
        "garbage",
        |db, aside| {
            // Written beside it and renamed into place, so the path never names an empty file
            // (see the test of an empty file below).
            let garbage = with_suffix(db, ".garbage");
            std::fs::write(&garbage, b"this is not an SQLite database\n".repeat(512)).unwrap();
            std::fs::rename(db, aside).unwrap();
            std::fs::rename(&garbage, db).unwrap();
        },
        REPLACED,
        |db, aside| std::fs::rename(aside, db).unwrap(),
    )
    .await;
}

#[actix_web::test]
async fn an_empty_file_in_place_of_the_database_is_not_adopted_and_loses_nothing() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let client = client();
    let db = database.sqlite_path();
    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let id = format!("before-{n}");
        let answer = post_signed(&client, &service, body(&id, 16)).await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        acknowledged.push(id);
    }

    // The file goes away; an empty one appears in its place (`touch`, or a copy that creates
    // its target before writing it), and only then does the real file come back.
    let aside = database.dir().join("aside.db");
    std::fs::rename(&db, &aside).unwrap();
    wait_for_not_ready(
        &client,
        &service,
        "database file is missing",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    std::fs::File::create(&db).unwrap();
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let (readiness, detail) = get_json(&client, &service, "/health/ready").await.unwrap();
    let during = post_signed(&client, &service, body("on-the-empty-file", 16))
        .await
        .unwrap();
    std::fs::rename(&aside, &db).unwrap();
    wait_for_readiness(&client, &service, 200, Duration::from_secs(5))
        .await
        .expect("ready once the real file is back");
    let stored = inspect_sqlite_file(&db);

    eprintln!(
        "empty file: readiness {readiness} {detail}; ingest {}; after the real file came back \
         {} of {} acknowledged messages are stored",
        during.status,
        acknowledged
            .iter()
            .filter(|id| stored.ids.contains(*id))
            .count(),
        acknowledged.len()
    );
    assert_eq!(
        readiness, 503,
        "an empty file is not a usable database: {detail}"
    );
    assert_eq!(
        detail["detail"], REPLACED,
        "named as another file at the path"
    );
    assert_well_formed_503(&during);
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
}

/// What readiness says once another file sits at the database path.
const REPLACED: &str =
    "database file was replaced while in use; restart the service to use the new file";

#[actix_web::test]
async fn a_backup_renamed_into_place_under_load_is_left_untouched_until_a_restart_uses_it() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let client = client();
    let db = database.sqlite_path();
    for n in 0..3 {
        let answer = post_signed(&client, &service, body(&format!("in-backup-{n}"), 16))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
    }
    let backup = database.dir().join("backup.db");
    {
        let source = Connection::open(&db).unwrap();
        source
            .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
            .unwrap();
    }
    let load = Load::start(service.url("/webhook"), LoadPlan::new("after-backup", 8));
    actix_web::rt::time::sleep(Duration::from_millis(1_500)).await;

    // The usual way to restore a file: copy beside it, then rename into place.
    let restoring = with_suffix(&db, ".restoring");
    std::fs::copy(&backup, &restoring).unwrap();
    std::fs::rename(&restoring, &db).unwrap();
    wait_for_not_ready(&client, &service, REPLACED, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("readiness names the replacement: {e}"));
    let tally = load.finish().await;
    let during = post_signed(&client, &service, body("during-restore", 16))
        .await
        .unwrap();
    assert_well_formed_503(&during);
    tally.assert_only_200_or_503();

    // The service never writes into a file it did not open, so the backup is exactly as made.
    let integrity: String = Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(integrity, "ok", "the restored file stays sound");
    let untouched = inspect_sqlite_file(&db);
    assert_eq!(
        untouched.ids.len(),
        3,
        "only the backup's rows: {:?}",
        untouched.ids
    );

    // A restart opens the restored file and serves from it.
    drop(service);
    let restarted = start(&database, &[]);
    wait_for_readiness(&client, &restarted, 200, Duration::from_secs(5))
        .await
        .expect("ready on the restored file");
    let (stats_status, stats) = get_json(&client, &restarted, "/stats").await.unwrap();
    assert_eq!(stats_status, 200, "{stats}");
    assert_eq!(stats["total_messages"], 3, "{stats}");
    let after = post_signed(&client, &restarted, body("after-restore", 16))
        .await
        .unwrap();
    assert_eq!(after.status, 200, "{after:?}");
    let stored = inspect_sqlite_file(&db);
    for n in 0..3 {
        assert!(stored.ids.contains(&format!("in-backup-{n}")));
    }
    assert!(stored.ids.contains("after-restore"));
    eprintln!(
        "backup restore under load: statuses {:?}; then 503 until a restart, which used the backup",
        tally.statuses
    );
}

/// Starts the service as `nobody`, or says why this test is skipped.
fn unprivileged_or_skip(database: &TestDatabase, test: &str) -> Option<RunningBinary> {
    let prefix = match unprivileged_prefix() {
        Ok(prefix) => prefix,
        Err(why) => {
            crate::binary::skip(test, &format!("cannot drop privileges: {why}"));
            return None;
        }
    };
    give_to_nobody(database.dir());
    Some(start_unprivileged(&prefix, database, &[]).expect("the service starts as nobody"))
}

#[actix_web::test]
async fn a_database_that_comes_back_read_only_answers_503_and_recovers_when_writable() {
    let database = TestDatabase::new(Store::Sqlite);
    let Some(service) = unprivileged_or_skip(&database, "read-only database") else {
        return;
    };
    // The file goes away (its connection is dropped) and comes back without write permission,
    // so the service has to open it again and finds it read-only.
    break_under_load_and_repair(
        &database,
        &service,
        "read-only",
        |db, aside| {
            std::fs::rename(db, aside).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            chmod(aside, 0o444);
            std::fs::rename(aside, db).unwrap();
        },
        "database is read-only",
        |db, _| chmod(db, 0o644),
    )
    .await;
}

#[actix_web::test]
async fn a_database_made_read_only_while_in_use_turns_readiness_503() {
    let database = TestDatabase::new(Store::Sqlite);
    let Some(service) = unprivileged_or_skip(&database, "chmod while in use") else {
        return;
    };
    let client = client();
    let db = database.sqlite_path();
    let first = post_signed(&client, &service, body("before-chmod", 16))
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    make_read_only(&db);
    chmod(db.parent().unwrap(), 0o555);

    let readiness = wait_for_not_ready(
        &client,
        &service,
        "database is read-only",
        Duration::from_secs(5),
    )
    .await;
    let answer = post_signed(&client, &service, body("after-chmod", 16))
        .await
        .unwrap();
    chmod(db.parent().unwrap(), 0o755);
    readiness.expect("readiness notices the database cannot be reopened for writing");
    assert_well_formed_503(&answer);
}

#[test]
fn a_restart_on_a_read_only_database_fails_at_startup_with_one_clear_line() {
    let database = TestDatabase::new(Store::Sqlite);
    let prefix = match unprivileged_prefix() {
        Ok(prefix) => prefix,
        Err(why) => {
            crate::binary::skip(
                "read-only restart",
                &format!("cannot drop privileges: {why}"),
            );
            return;
        }
    };
    give_to_nobody(database.dir());
    drop(start_unprivileged(&prefix, &database, &[]).expect("a first start as nobody"));
    let db = database.sqlite_path();
    make_read_only(&db);

    let output = command_output_as_nobody(&prefix, &database, Duration::from_secs(20));

    assert!(!output.status.success(), "startup must fail: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("read-only"), "names the cause: {stderr}");
}

#[actix_web::test]
async fn a_database_locked_by_another_process_refuses_writes_keeps_reads_and_recovers() {
    let database = TestDatabase::new(Store::Sqlite);
    // The default probe interval: a longer lock is covered by the test below.
    let service = start(&database, &[("HEALTH_PROBE_INTERVAL_MS", "500")]);
    let client = client();
    let first = post_signed(&client, &service, body("before-lock", 16))
        .await
        .unwrap();
    assert_eq!(first.status, 200);

    let locker = Connection::open(database.sqlite_path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();
    let during = post_signed(&client, &service, body("during-lock", 16))
        .await
        .unwrap();
    let answered_after = locked_at.elapsed();
    let not_ready = wait_for_readiness(&client, &service, 503, Duration::from_secs(10))
        .await
        .expect("readiness turns 503 while the lock is held");
    let (listed, page) = get_json(&client, &service, "/messages").await.unwrap();
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);

    assert_well_formed_503(&during);
    assert!(
        [
            "database is locked by another process",
            "database probe timed out"
        ]
        .contains(&not_ready["detail"].as_str().unwrap_or_default()),
        "{not_ready}"
    );
    assert_eq!(listed, 200, "reads go on under a write lock: {page}");
    assert_eq!(page["total"], 1);
    wait_for_readiness(&client, &service, 200, Duration::from_secs(10))
        .await
        .expect("ready again once the lock is released");
    let after = post_signed(&client, &service, body("after-lock", 16))
        .await
        .unwrap();
    assert_eq!(after.status, 200, "{after:?}");
    let stored = inspect_sqlite_file(&database.sqlite_path());
    assert_all_acknowledged_stored_once(
        &stored,
        &["before-lock".to_owned(), "after-lock".to_owned()],
    );
    assert!(!stored.ids.contains("during-lock"));
    eprintln!(
        "locked: ingest answered 503 after {answered_after:?}; readiness said {}",
        not_ready["detail"]
    );
}

#[actix_web::test]
async fn a_long_lock_is_named_by_readiness_and_ingest_is_refused_within_the_busy_timeout() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = start(&database, &[]);
    let client = client();
    let locker = Connection::open(database.sqlite_path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;

    let (_, readiness) = get_json(&client, &service, "/health/ready").await.unwrap();
    let asked = Instant::now();
    let during = post_signed(&client, &service, body("during-lock", 16))
        .await
        .unwrap();
    let answered_after = asked.elapsed();
    locker.execute_batch("ROLLBACK").unwrap();

    eprintln!("long lock: readiness {readiness}; ingest answered after {answered_after:?}");
    assert_eq!(readiness["detail"], "database is locked by another process");
    assert_well_formed_503(&during);
    // The writer waits at most its 5 s busy timeout for the lock; allow one more for a probe
    // already waiting, and margin for a loaded machine.
    assert!(
        answered_after < Duration::from_secs(15),
        "ingest waited {answered_after:?} for its 503"
    );
}
