//! A full disk under PostgreSQL's tables: the service's tables live in a tablespace on a small
//! tmpfs (the catalogs and the WAL stay on the cluster's disk), so its own writes fill it. While
//! it is full, ingest answers 503 with `Retry-After` and never 200 for a message it could not
//! store, readiness says why, and once there is room again the service recovers by itself.

use std::time::Duration;

use crate::postgres;
use crate::store::TestDatabase;
use crate::support::{
    Load, LoadPlan, assert_all_acknowledged_stored_once, assert_postgres_aggregates_exact,
    assert_recovers_by_itself, assert_refused, assert_refused_while_full, assert_taken, client,
    fill, start, stored, tmpfs_or_skip,
};

/// Room left beside the filler for the load to fill.
const ROOM: u64 = 256 * 1024;

#[actix_web::test]
async fn when_its_writes_fill_the_tables_disk_ingest_answers_503_and_recovers_when_space_is_freed()
{
    const TEST: &str = "PostgreSQL disk full";
    let Some(disk) = tmpfs_or_skip("8m", TEST) else {
        return;
    };
    let Some(cluster) = postgres::private_cluster(TEST) else {
        return;
    };
    let tables = disk.path().join("tables");
    std::fs::create_dir(&tables).unwrap();
    let mut postgres = cluster.database();
    postgres
        .put_new_tables_in(&tables)
        .expect("the tables go to the small disk");
    let database = TestDatabase::on(postgres);
    let service = start(&database, &[]);
    let client = client();
    assert_taken(&client, &service, "before-full", 100).await;

    // Another file takes all but a little room, which the service's own writes then fill.
    let filler = disk.path().join("filler");
    let filled = fill(&filler);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .and_then(|file| file.set_len(filled.saturating_sub(ROOM)))
        .expect("the filler leaves some room");
    let mut plan = LoadPlan::new("fill", 8);
    plan.text_len = 900;
    plan.max_per_sender = 400;
    plan.stop_after_503s = 5;
    let tally = Load::start(service.url("/webhook"), plan).join().await;

    assert_refused_while_full(&client, &service, &tally).await;
    assert_refused(&client, &service, "while-full", 900).await;

    std::fs::remove_file(&filler).unwrap();
    assert_recovers_by_itself(
        &client,
        &service,
        Duration::from_secs(5),
        "after-cleanup",
        100,
    )
    .await;

    let mut acknowledged = tally.acknowledged.clone();
    acknowledged.extend(["before-full".to_owned(), "after-cleanup".to_owned()]);
    let stored = stored(&client, &service).await;
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
    assert!(!stored.ids.contains("while-full"));
    assert_eq!(
        assert_postgres_aggregates_exact(database.postgres()),
        stored.rows
    );
    eprintln!(
        "PostgreSQL tables' disk full (8 MiB tmpfs, {ROOM} bytes left beside a filler): \
         statuses {:?}, {} rows stored",
        tally.statuses, stored.rows
    );
}
