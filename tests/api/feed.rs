//! The change feed in one service, on every store: consumers of `/messages/feed` and
//! `/messages/stream` racing concurrent writers each end with every stored message once, in
//! position order. (Several replicas, timings and stops: `../faults/feed.rs`.)
use std::time::{Duration, Instant};

use crate::feed_follow::{
    Random, WritePlan, assert_exactly_the_stored, assert_in_commit_order, race,
};
use crate::helpers::{SECRET, long_run, spawn_app};
use crate::store::{Store, store_tests};

store_tests! {
    async a_page_consumer_and_a_reconnecting_stream_consumer_racing_writers_each_see_every_stored_message_once_in_position_order,
}

async fn a_page_consumer_and_a_reconnecting_stream_consumer_racing_writers_each_see_every_stored_message_once_in_position_order(
    store: Store,
) {
    let app = spawn_app(store).await;
    let mut random = Random::seeded("feed race");
    let plan = WritePlan {
        writers: 6,
        duration: Duration::from_secs(if long_run() { 30 } else { 3 }),
        max_per_writer: if long_run() { 100_000 } else { 400 },
    };
    let started = Instant::now();

    let bases = [app.address.clone()];
    let (pages, stream, written) = race(&app.client, &bases, SECRET, &plan, &mut random).await;

    let stored = app.stored_messages().await;
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
        "feed race on {store:?}: {} stored in {:?} ({} acknowledged, statuses {:?}); pages in \
         {} requests, the stream in {} connections",
        stored.len(),
        started.elapsed(),
        written.acknowledged.len(),
        written.statuses,
        pages.connections,
        stream.connections
    );
}
