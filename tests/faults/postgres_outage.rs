//! The PostgreSQL server going away under the service and coming back, or turning read-only as
//! after a failover: ingest answers 503 with `Retry-After` (never 200 for what it could not
//! store, never another 5xx), readiness says why within 2 s, and the service recovers by
//! itself, without a restart, once the server is back; nothing acknowledged is lost, nothing is
//! stored twice.

use std::time::{Duration, Instant};

use crate::postgres::{self, StopMode};
use crate::store::{Store, TestDatabase};
use crate::support::{
    Load, LoadPlan, assert_all_acknowledged_stored_once, assert_postgres_aggregates_exact,
    assert_recovers_by_itself, assert_refused, assert_taken, assert_well_formed_503, body, client,
    post_signed, start, stored, wait_for_not_ready, wait_for_readiness,
};

/// How soon readiness must turn 503 once the database is gone or read-only.
const NOT_READY_WITHIN: Duration = Duration::from_secs(2);
/// How soon readiness must be back once the database is.
const READY_AGAIN_WITHIN: Duration = Duration::from_secs(5);
/// The longest a webhook may wait for its 503 while the database is down.
const REFUSED_WITHIN: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn the_database_stopped_and_restarted_under_load_costs_only_503s_and_loses_nothing() {
    let Some(cluster) = postgres::private_cluster("the database stopped under load") else {
        return;
    };
    let database = TestDatabase::on(cluster.database());
    let service = start(&database, &[]);
    let client = client();
    wait_for_readiness(&client, &service, 200, Duration::from_secs(10))
        .await
        .expect("ready");
    let mut acknowledged = Vec::new();

    for mode in [StopMode::Fast, StopMode::Immediate] {
        let mut plan = LoadPlan::new(&format!("{mode:?}"), 6);
        plan.pause_after_503 = Duration::from_millis(20);
        let load = Load::start(service.url("/webhook"), plan);
        actix_web::rt::time::sleep(Duration::from_millis(400)).await;

        let stopping = Instant::now();
        cluster.stop(mode);
        wait_for_not_ready(
            &client,
            &service,
            "database is unreachable",
            NOT_READY_WITHIN,
        )
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let not_ready_after = stopping.elapsed();
        let sent = Instant::now();
        let refused = post_signed(&client, &service, body(&format!("down-{mode:?}"), 16))
            .await
            .expect("answered while the database is down");
        let refused_after = sent.elapsed();
        assert_well_formed_503(&refused);
        assert!(
            refused_after < REFUSED_WITHIN,
            "{mode:?}: a webhook waited {refused_after:?} for its 503"
        );
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;

        cluster.restart();
        let restarted = Instant::now();
        let back = format!("back-{mode:?}");
        assert_recovers_by_itself(&client, &service, READY_AGAIN_WITHIN, &back, 16).await;
        let back_after = restarted.elapsed();
        acknowledged.push(back);
        let tally = load.finish().await;

        tally.assert_only_200_or_503();
        assert_eq!(
            tally.transport_errors, 0,
            "{mode:?}: every request answered"
        );
        assert!(tally.count(503) > 0, "{mode:?}: the outage was met");
        acknowledged.extend(tally.acknowledged);
        eprintln!(
            "database stopped ({mode:?}) under load: statuses {:?}; not ready after \
             {not_ready_after:?}, a webhook refused in {refused_after:?}, ready and \
             taking messages {back_after:?} after the restart",
            tally.statuses
        );
    }

    let stored = stored(&client, &service).await;
    assert_all_acknowledged_stored_once(&stored, &acknowledged);
    assert!(!stored.ids.contains("down-Fast") && !stored.ids.contains("down-Immediate"));
    assert_eq!(
        assert_postgres_aggregates_exact(database.postgres()),
        stored.rows
    );
}

#[actix_web::test]
async fn readiness_follows_the_database_turning_read_only_and_back_without_a_restart() {
    if !Store::Postgres.runs_here() {
        return;
    }
    let database = TestDatabase::new(Store::Postgres);
    let service = start(&database, &[]);
    let client = client();
    assert_taken(&client, &service, "before", 16).await;

    database
        .postgres()
        .switch_read_only(true)
        .expect("the database turns read-only");
    wait_for_not_ready(&client, &service, "database is read-only", NOT_READY_WITHIN)
        .await
        .expect("readiness follows the failover");
    assert_refused(&client, &service, "while-read-only", 16).await;

    database
        .postgres()
        .switch_read_only(false)
        .expect("the database takes writes again");
    assert_recovers_by_itself(&client, &service, READY_AGAIN_WITHIN, "after", 16).await;

    let stored = stored(&client, &service).await;
    assert_all_acknowledged_stored_once(&stored, &["before".to_owned(), "after".to_owned()]);
    assert!(!stored.ids.contains("while-read-only"));
    assert_eq!(assert_postgres_aggregates_exact(database.postgres()), 2);
}
