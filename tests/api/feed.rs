//! The change feed in one service, on every store: consumers of `/messages/feed` and
//! `/messages/stream` racing concurrent writers each end with every stored message once, in
//! position order; retention never moves a kept message's position, never gives a deleted one
//! again, and tells a consumer far behind where the feed now starts; an SQLite database written
//! before positions existed gets them in the order its rows were stored; bad parameters are
//! `422`s naming what is wrong. (Several replicas, timings and stops: `../faults/feed.rs`.)

use std::time::{Duration, Instant};

use serde_json::Value;
use webhook_processor::domain::timestamp::{format_micros, now_micros};

use crate::feed_follow::{
    Event, Random, WritePlan, assert_the_race_lost_nothing, feed_head, parse_event, race,
};
use crate::helpers::{
    SECRET, TestApp, message, metric_value, spawn_app, spawn_app_on, validation_errors,
};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async a_page_consumer_and_a_reconnecting_stream_consumer_racing_writers_each_see_every_stored_message_once_in_position_order,
    async retention_keeps_the_positions_of_the_messages_it_keeps_and_tells_a_consumer_far_behind,
    async after_retention_deleted_the_newest_messages_new_ones_get_new_positions,
    async feed_and_stream_answer_422_naming_each_bad_parameter,
    async a_filtered_feed_gives_only_matching_messages_and_moves_on_past_the_others,
}

async fn a_page_consumer_and_a_reconnecting_stream_consumer_racing_writers_each_see_every_stored_message_once_in_position_order(
    store: Store,
) {
    let app = spawn_app(store).await;
    let mut random = Random::seeded("feed race");
    let started = Instant::now();

    let bases = [app.address.clone()];
    let plan = WritePlan::for_a_race(6);
    let raced = race(&app.client, &bases, SECRET, &plan, &mut random).await;

    let stored = app.stored_messages().await;
    let head = feed_head(&app.client, &app.address).await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    let what = format!("feed race on {store:?}");
    assert_the_race_lost_nothing(&what, &raced, &stored, started.elapsed());
    assert_eq!(
        metric_value(&metrics, "feed_head_position"),
        Some(head as f64),
        "the metric shows the head"
    );
}

/// A message at `ts`; its text says which.
fn at(id: &str, ts: &str) -> Value {
    message(id, "+4930123456", "+14155550100", ts, Some(id))
}

/// An hour ago: kept by a retention of one day.
fn recent_ts() -> String {
    format_micros(now_micros() - 3_600_000_000)
}

/// Starts the app on `database` with a retention of one day swept every second, and waits
/// until `/stats` counts `kept` messages.
async fn spawn_sweeping(database: TestDatabase, kept: usize) -> TestApp {
    let app = spawn_app_on(
        database,
        &[("RETENTION_DAYS", "1"), ("RETENTION_INTERVAL_SECS", "1")],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, stats) = app.get_json("/stats").await;
        if stats["total_messages"] == kept {
            return app;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not leave {kept} messages: {stats}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `(seq, message_id)` pairs of a feed page.
fn positions_of(page: &Value) -> Vec<(u64, String)> {
    page["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|entry| {
            (
                entry["seq"].as_u64().expect("a seq"),
                entry["message_id"].as_str().expect("an id").to_owned(),
            )
        })
        .collect()
}

async fn a_filtered_feed_gives_only_matching_messages_and_moves_on_past_the_others(store: Store) {
    let app = spawn_app(store).await;
    // Positions 1..=6: senders A, B, A, B, B, B; the last four to recipient Y.
    let sent = [
        ("m1", "+1000", "+2000"),
        ("m2", "+1111", "+2000"),
        ("m3", "+1000", "+2999"),
        ("m4", "+1111", "+2999"),
        ("m5", "+1111", "+2999"),
        ("m6", "+1111", "+2999"),
    ];
    for (id, from, to) in sent {
        let body = message(id, from, to, "2025-01-15T10:00:00Z", None);
        assert_eq!(app.post_signed(&body).await.status().as_u16(), 200, "{id}");
    }
    let (_, from_a) = app.get_json("/messages/feed?from=%2B1000").await;
    assert_eq!(
        positions_of(&from_a),
        [(1, "m1".to_owned()), (3, "m3".to_owned())]
    );
    assert_eq!(
        from_a["next_after"], 6,
        "the read looked up to the head, past messages that did not match: {from_a}"
    );
    let (_, a_to_y) = app.get_json("/messages/feed?from=%2B1000&to=%2B2999").await;
    assert_eq!(positions_of(&a_to_y), [(3, "m3".to_owned())]);
    let (_, b_to_y) = app
        .get_json("/messages/feed?from=%2B1111&to=%2B2999&after=4&limit=1")
        .await;
    assert_eq!(positions_of(&b_to_y), [(5, "m5".to_owned())]);
    assert_eq!(
        b_to_y["next_after"], 5,
        "a full page continues after its last message: {b_to_y}"
    );
}

/// The events `/messages/stream` sends first, after `after`, until at least `count` messages
/// came.
async fn first_events(app: &TestApp, after: u64, count: usize) -> Vec<Event> {
    let mut response = app
        .client
        .get(app.url(&format!("/messages/stream?after={after}")))
        .send()
        .await
        .expect("the stream answers");
    assert_eq!(response.status().as_u16(), 200);
    let mut events = Vec::new();
    let mut pending = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while events
        .iter()
        .filter(|e| matches!(e, Event::Message(_)))
        .count()
        < count
    {
        assert!(
            Instant::now() < deadline,
            "{count} messages streamed in time"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the stream sends")
            .expect("the stream goes on")
            .expect("the stream is open");
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            events.push(parse_event(&event));
        }
    }
    events
}

async fn retention_keeps_the_positions_of_the_messages_it_keeps_and_tells_a_consumer_far_behind(
    store: Store,
) {
    // Stored in this order: the oldest rows first, a late delivery of an old message among the
    // recent ones, then more recent ones.
    let recent = recent_ts();
    let mut bodies: Vec<Value> = (0..10)
        .map(|i| {
            at(
                &format!("expired-{i}"),
                &format!("2020-03-01T10:00:{i:02}Z"),
            )
        })
        .collect();
    bodies.extend((0..5).map(|i| at(&format!("kept-{i}"), &recent)));
    bodies.push(at("expired-late", "2019-06-01T00:00:00Z"));
    bodies.extend((5..10).map(|i| at(&format!("kept-{i}"), &recent)));
    let database = TestDatabase::new(store);
    database.preload(&bodies);
    let before = database.positions();
    let head_before = before.last().expect("positions were given").0;
    let kept_before: Vec<(u64, String)> = before
        .iter()
        .filter(|(_, id)| id.starts_with("kept-"))
        .cloned()
        .collect();

    let app = spawn_sweeping(database, 10).await;
    let (status, page) = app.get_json("/messages/feed?after=0&limit=1000").await;

    assert_eq!(status, 200);
    assert_eq!(
        positions_of(&page),
        kept_before,
        "the kept messages keep their positions"
    );
    let oldest = kept_before[0].0;
    assert_eq!(page["oldest"], oldest, "{page}");
    assert_eq!(page["head"], head_before, "the head stays: {page}");
    assert_eq!(
        page["skipped_deleted"], true,
        "a consumer at 0 is told that messages were deleted before it read them: {page}"
    );
    for after in [1, oldest - 2] {
        let (_, page) = app
            .get_json(&format!("/messages/feed?after={after}&limit=3"))
            .await;
        assert_eq!(page["skipped_deleted"], true, "after={after}: {page}");
        assert_eq!(positions_of(&page), kept_before[..3], "after={after}");
    }
    let (_, page) = app
        .get_json(&format!("/messages/feed?after={}&limit=3", oldest - 1))
        .await;
    assert_eq!(
        page["skipped_deleted"], false,
        "nothing was skipped right before the oldest kept: {page}"
    );
    assert_eq!(positions_of(&page), kept_before[..3]);

    let events = first_events(&app, 0, 2).await;
    assert!(
        matches!(events[0], Event::Gap),
        "a stream from 0 begins with a gap event"
    );
    let streamed: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message(received) => Some(received.seq),
            _ => None,
        })
        .collect();
    assert_eq!(streamed[..2], [kept_before[0].0, kept_before[1].0]);
    let events = first_events(&app, oldest - 1, 1).await;
    assert!(
        matches!(&events[0], Event::Message(received) if received.seq == oldest),
        "the stream right before the oldest kept begins with it"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Gap)),
        "and no gap event"
    );
    eprintln!(
        "retention on {store:?}: positions {:?} kept of {head_before}",
        kept_before.iter().map(|(seq, _)| seq).collect::<Vec<_>>()
    );
}

/// SQLite gives a deleted row's rowid again once it was the highest; the feed must not give a
/// position twice, or a consumer that had read it would skip the new message.
async fn after_retention_deleted_the_newest_messages_new_ones_get_new_positions(store: Store) {
    let expired: Vec<Value> = (0..5)
        .map(|i| {
            at(
                &format!("expired-{i}"),
                &format!("2020-03-01T10:00:{i:02}Z"),
            )
        })
        .collect();
    let database = TestDatabase::new(store);
    database.preload(&expired);
    let head_before = database.positions().last().expect("positions were given").0;

    let app = spawn_sweeping(database, 0).await;
    let (_, emptied) = app.get_json("/messages/feed?after=0").await;
    let recent = recent_ts();
    for i in 0..3 {
        let body = at(&format!("new-{i}"), &recent);
        assert_eq!(app.post_signed(&body).await.status().as_u16(), 200);
    }
    let (_, caught_up) = app
        .get_json(&format!("/messages/feed?after={head_before}"))
        .await;

    assert_eq!(emptied["data"], Value::Array(vec![]), "{emptied}");
    assert_eq!(emptied["head"], head_before, "{emptied}");
    assert_eq!(emptied["oldest"], Value::Null, "{emptied}");
    assert_eq!(
        emptied["next_after"], head_before,
        "a consumer at 0 moves past the deleted positions: {emptied}"
    );
    let positions = positions_of(&caught_up);
    let ids: Vec<&str> = positions.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["new-0", "new-1", "new-2"],
        "a consumer that had read up to the old head gets every new message: {caught_up}"
    );
    assert!(
        positions.iter().all(|(seq, _)| *seq > head_before),
        "positions above every one given before ({head_before}): {positions:?}"
    );
    assert_eq!(caught_up["skipped_deleted"], false, "{caught_up}");
}

/// The first SQLite schema with `seq`, taken back to the one before it: what a database
/// written by the previous version looks like.
const WITHOUT_POSITIONS: &str = "
    DROP INDEX messages_by_seq;
    ALTER TABLE messages DROP COLUMN seq;
    ALTER TABLE message_totals DROP COLUMN feed_head;";

#[actix_web::test]
async fn an_sqlite_database_written_before_positions_gets_them_in_the_order_its_rows_were_stored() {
    // Stored in neither id nor ts order.
    let stored = [
        ("m-c", "2025-03-01T00:00:00Z"),
        ("m-a", "1999-12-31T23:59:59Z"),
        ("m-e", "2025-01-01T00:00:00Z"),
        ("m-b", "2030-06-01T12:00:00Z"),
        ("m-d", "1970-01-01T00:00:00Z"),
    ];
    let database = TestDatabase::new(Store::Sqlite);
    database.preload(&stored.map(|(id, ts)| at(id, ts)));
    rusqlite::Connection::open(database.sqlite_path())
        .expect("the database opens")
        .execute_batch(WITHOUT_POSITIONS)
        .expect("the database is taken back to the previous schema");

    let app = spawn_app_on(database, &[]).await;
    let (status, page) = app.get_json("/messages/feed").await;
    let later = at("m-later", "1980-01-01T00:00:00Z");
    assert_eq!(app.post_signed(&later).await.status().as_u16(), 200);
    let (_, after_upgrade) = app.get_json("/messages/feed?after=5").await;

    assert_eq!(status, 200);
    let expected: Vec<(u64, String)> = (1..)
        .zip(stored.iter().map(|(id, _)| (*id).to_owned()))
        .collect();
    assert_eq!(
        positions_of(&page),
        expected,
        "positions in the order the rows were stored: {page}"
    );
    assert_eq!(page["head"], 5, "{page}");
    assert_eq!(
        positions_of(&after_upgrade),
        [(6, "m-later".to_owned())],
        "a message stored after the upgrade comes after every upgraded row"
    );
}

async fn feed_and_stream_answer_422_naming_each_bad_parameter(store: Store) {
    let app = spawn_app(store).await;
    let cases = [
        ("after=-1", "after", "greater_than_equal"),
        ("after=abc", "after", "int_parsing"),
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=1001", "limit", "less_than_equal"),
        ("limit=1.5", "limit", "int_parsing"),
        ("wait=-1", "wait", "greater_than_equal"),
        ("wait=61", "wait", "less_than_equal"),
        ("from=919876543210", "from", "string_pattern_mismatch"),
        ("to=%2B1-415", "to", "string_pattern_mismatch"),
    ];
    for path in ["/messages/feed", "/messages/stream"] {
        for (query, param, kind) in cases {
            let (status, body) = app.get_json(&format!("{path}?{query}")).await;
            assert_eq!(status, 422, "{path}?{query}");
            assert_eq!(
                validation_errors(&body),
                [(vec!["query".to_owned(), param.to_owned()], kind.to_owned())],
                "{path}?{query}"
            );
        }
        let (status, body) = app.get_json(&format!("{path}?after=-1&limit=0")).await;
        assert_eq!(status, 422);
        assert_eq!(validation_errors(&body).len(), 2, "{path}: every bad one");
    }
    // Only decimal digits, at most 19 (what the document declares): a sign or a 20-digit
    // number that fits in 64 bits is refused too.
    for bad in [
        "abc",
        "-1",
        "+5",
        "1.5",
        "18446744073709551615",
        "99999999999999999999999",
    ] {
        let response = app
            .client
            .get(app.url("/messages/stream"))
            .header("Last-Event-ID", bad)
            .send()
            .await
            .expect("the stream answers");
        assert_eq!(response.status().as_u16(), 422, "Last-Event-ID: {bad}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(
            validation_errors(&body),
            [(
                vec!["header".to_owned(), "Last-Event-ID".to_owned()],
                "int_parsing".to_owned()
            )],
            "Last-Event-ID: {bad}"
        );
    }
}
