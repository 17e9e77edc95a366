//! The change feed across replicas, against the binary: two replicas on one PostgreSQL
//! database, writers sending to both, a page consumer and a reconnecting stream consumer
//! reading from either: each ends with every stored message once, in strictly increasing
//! position (the race of `../api/feed_follow.rs`). Without a PostgreSQL server the test is
//! skipped, or fails under `REQUIRE_POSTGRES_TESTS=1`.

use std::time::{Duration, Instant};

use crate::feed_follow::{
    Random, WritePlan, assert_exactly_the_stored, assert_in_commit_order, race,
};
use crate::postgres_replicas::two_replicas;
use crate::store::{Store, TestDatabase};
use crate::support::{SECRET, client, long_run};

#[actix_web::test]
async fn two_replicas_racing_writers_consumers_of_either_see_every_stored_message_once_in_position_order()
 {
    if !Store::Postgres.runs_here() {
        return;
    }
    let database = TestDatabase::new(Store::Postgres);
    let replicas = two_replicas(&database, &[]);
    let client = client();
    let mut random = Random::seeded("feed race on two replicas");
    let plan = WritePlan {
        writers: 8,
        duration: Duration::from_secs(if long_run() { 30 } else { 3 }),
        max_per_writer: if long_run() { 100_000 } else { 400 },
    };
    let started = Instant::now();

    let bases: Vec<String> = replicas.iter().map(|replica| replica.url("")).collect();
    let (pages, stream, written) = race(&client, &bases, SECRET, &plan, &mut random).await;

    let stored = replicas[0].exported();
    assert_exactly_the_stored("the page consumer", &pages, &stored);
    assert_exactly_the_stored("the stream consumer", &stream, &stored);
    assert_in_commit_order(&pages, &written);
    assert_eq!(stream.gaps, 0, "nothing was deleted");
    assert!(
        stored.len() >= 50,
        "the writers stored enough to race: {}",
        stored.len()
    );
    eprintln!(
        "feed race on two replicas: {} stored in {:?} ({} acknowledged, statuses {:?}); pages \
         in {} requests, the stream in {} connections",
        stored.len(),
        started.elapsed(),
        written.acknowledged.len(),
        written.statuses,
        pages.connections,
        stream.connections
    );
}
