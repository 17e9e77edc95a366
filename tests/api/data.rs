//! Data in and out: HTTP and command-line export, import (NDJSON and the old SQLite schema),
//! and retention.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use webhook_processor::domain::timestamp::{format_micros, now_micros};

use crate::binary::command;
use crate::helpers::{TestApp, spawn_app_on, spawn_app_with};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async http_export_streams_every_matching_message_as_ndjson_in_order,
    async http_export_needs_the_read_token_when_one_is_set,
    async export_then_import_round_trips_exactly,
    async an_invalid_line_stops_the_import_before_anything_is_stored_unless_asked,
    async with_commit_every_an_invalid_line_keeps_the_chunks_committed_before_it_and_says_so,
    async retention_deletes_old_messages_in_the_background_and_keeps_the_stats_right,
}

/// `n` varied messages: several senders, Unicode and null texts, fractional timestamps.
fn messages(n: usize, ts_of: impl Fn(usize) -> String) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let text = match i % 4 {
                0 => Value::Null,
                1 => json!(format!("héllo №{i} \"quoted\" \\ back")),
                2 => json!(format!("line\nbreak {i} 🚀")),
                _ => json!(format!("plain {i}")),
            };
            json!({"message_id": format!("id-{i:05}"), "from": format!("+1555{:04}", i % 7),
                   "to": "+14155550100", "ts": ts_of(i), "text": text})
        })
        .collect()
}

fn ts_2025(i: usize) -> String {
    format!(
        "2025-01-15T10:{:02}:{:02}.{:03}Z",
        (i / 60) % 60,
        i % 60,
        i % 1000
    )
}

fn ndjson(bodies: &[Value]) -> String {
    bodies.iter().map(|b| format!("{b}\n")).collect()
}

/// The expected export: the messages in listing order (instant, then id).
fn in_listing_order(mut bodies: Vec<Value>) -> Vec<Value> {
    bodies.sort_by_key(|b| {
        let ts = webhook_processor::domain::Timestamp::parse(b["ts"].as_str().unwrap()).unwrap();
        (ts.micros(), b["message_id"].as_str().unwrap().to_owned())
    });
    bodies
}

/// Runs the binary with `args` on `database`, in its folder; whether it succeeded, its output
/// and its errors.
fn run(database: &TestDatabase, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = command(database.dir(), &[("DATABASE_URL", &database.url())])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // A command that stops early (refusing its database, say) closes its input: what it
        // printed says why.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn http_export_streams_every_matching_message_as_ndjson_in_order(store: Store) {
    let app = spawn_app_with(store, &[]).await;
    let bodies = messages(2600, ts_2025);
    app.database.preload(&bodies);

    let response = app.get("/messages/export").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        exported,
        in_listing_order(bodies.clone()),
        "every row, in order, across slices"
    );

    let (status, filtered) = (
        app.get("/messages/export?from=%2B15550003&q=PLAIN")
            .await
            .status(),
        app.get("/messages/export?from=%2B15550003&q=PLAIN")
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(status.as_u16(), 200);
    let expected = bodies
        .iter()
        .filter(|b| {
            b["from"] == "+15550003" && b["text"].as_str().is_some_and(|t| t.starts_with("plain"))
        })
        .count();
    assert_eq!(filtered.lines().count(), expected);
    assert!(expected > 0);

    let (status, body) = app.get_json("/messages/export?since=yesterday").await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "since"]));
}

async fn http_export_needs_the_read_token_when_one_is_set(store: Store) {
    let app: TestApp = spawn_app_with(store, &[("API_TOKEN", "t0k")]).await;
    assert_eq!(app.get("/messages/export").await.status().as_u16(), 401);
    let allowed = app
        .client
        .get(app.url("/messages/export"))
        .bearer_auth("t0k")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
}

async fn export_then_import_round_trips_exactly(store: Store) {
    let (a, b) = (TestDatabase::new(store), TestDatabase::new(store));
    let bodies = messages(3000, ts_2025);
    let (ok, _, stderr) = run(&a, &["import", "/dev/stdin"], Some(&ndjson(&bodies)));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("imported 3000 new message(s), skipped 0 duplicate(s)"),
        "{stderr}"
    );

    let (ok, first, _) = run(&a, &["export"], None);
    assert!(ok);
    let exported: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        exported == in_listing_order(bodies),
        "the export is the input, in listing order"
    );

    std::fs::write(b.dir().join("export.ndjson"), &first).unwrap();
    let (ok, _, stderr) = run(&b, &["import", "export.ndjson"], None);
    assert!(ok, "{stderr}");
    let (_, second, _) = run(&b, &["export"], None);
    assert!(second == first, "export → import → export is the identity");

    let (ok, _, stderr) = run(&b, &["import", "export.ndjson"], None);
    assert!(ok);
    assert!(
        stderr.contains("imported 0 new message(s), skipped 3000 duplicate(s)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r'),
        "no progress bar when stderr is not a terminal: {stderr:?}"
    );

    let (ok, filtered, _) = run(
        &b,
        &[
            "export",
            "--from",
            "+15550001",
            "--since",
            "2025-01-15T10:10:00Z",
        ],
        None,
    );
    assert!(ok);
    assert!(
        filtered
            .lines()
            .all(|l| l.contains("\"from\":\"+15550001\""))
    );
    assert!(filtered.lines().count() > 10);
}

/// On PostgreSQL an import ends with `VACUUM (ANALYZE)`: the planner knows the new rows, and
/// counts answer from the indexes alone (every page all-visible) without waiting for
/// autovacuum.
#[test]
fn an_import_leaves_postgresql_tables_analyzed_and_all_visible() {
    if !Store::Postgres.runs_here() {
        return;
    }
    let database = TestDatabase::new(Store::Postgres);
    let (ok, _, stderr) = run(
        &database,
        &["import", "/dev/stdin"],
        Some(&ndjson(&messages(3000, ts_2025))),
    );
    assert!(ok, "{stderr}");
    let state = database
        .postgres()
        .psql(
            "SELECT c.relpages > 0 AND c.relallvisible = c.relpages, \
             (SELECT count(*) > 0 FROM pg_stats WHERE tablename = 'messages') \
             FROM pg_class c WHERE c.relname = 'messages'",
        )
        .expect("psql answers");
    assert_eq!(
        state.trim(),
        "t|t",
        "messages: (every page all-visible, statistics gathered)"
    );
}

async fn an_invalid_line_stops_the_import_before_anything_is_stored_unless_asked(store: Store) {
    let database = TestDatabase::new(store);
    let mut input = ndjson(&messages(5, ts_2025));
    input.push_str("{\"message_id\": \"bad\", \"from\": \"123\"}\n\nnot json\n");
    std::fs::write(database.dir().join("in.ndjson"), &input).unwrap();

    let (ok, _, stderr) = run(&database, &["import", "in.ndjson"], None);
    assert!(!ok);
    assert!(stderr.contains("line 6: from:"), "{stderr}");
    assert!(stderr.contains("line 6: to: Field required"), "{stderr}");
    assert!(
        stderr.contains("line 8: record: JSON decode error"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let (_, exported, _) = run(&database, &["export"], None);
    assert_eq!(exported, "", "all or nothing");

    let (ok, _, stderr) = run(&database, &["import", "in.ndjson", "--skip-invalid"], None);
    assert!(ok, "{stderr}");
    assert!(
        stderr
            .contains("imported 5 new message(s), skipped 0 duplicate(s) and 2 invalid record(s)"),
        "{stderr}"
    );
}

async fn with_commit_every_an_invalid_line_keeps_the_chunks_committed_before_it_and_says_so(
    store: Store,
) {
    let database = TestDatabase::new(store);
    let mut input = ndjson(&messages(5, ts_2025));
    input.push_str("not json\n");
    input.push_str(&ndjson(&messages(8, ts_2025)[5..]));
    std::fs::write(database.dir().join("in.ndjson"), &input).unwrap();

    let args = ["import", "in.ndjson", "--commit-every", "2"];
    let (ok, _, stderr) = run(&database, &args, None);
    assert!(!ok);
    assert!(
        stderr.contains("the 4 new message(s) committed before it stay imported"),
        "{stderr}"
    );
    let (_, exported, _) = run(&database, &["export"], None);
    assert_eq!(
        exported.lines().count(),
        4,
        "two chunks of two, not the third one the bad line broke: {exported}"
    );
}

#[actix_web::test]
async fn the_original_services_database_migrates_with_the_same_validation() {
    let database = TestDatabase::new(Store::Sqlite);
    let old = rusqlite::Connection::open(database.dir().join("old.db")).unwrap();
    old.execute_batch(
        "CREATE TABLE messages (message_id TEXT PRIMARY KEY, from_msisdn TEXT NOT NULL,
             to_msisdn TEXT NOT NULL, ts TEXT NOT NULL, text TEXT, created_at TEXT NOT NULL);
         INSERT INTO messages VALUES ('a', '+911', '+1', '2025-01-15T10:00:00.5Z', 'Hello', '2025-01-15T10:00:01Z');
         INSERT INTO messages VALUES ('b', '+911', '+1', '2025-01-15T10:00:00Z', NULL, '2025-01-15T10:00:02Z');
         INSERT INTO messages VALUES ('c', 'nope', '+1', '2025-01-15T10:00:00Z', 'x', '2025-01-15T10:00:03Z');",
    )
    .unwrap();
    drop(old);

    let (ok, _, stderr) = run(&database, &["import", "--from-sqlite", "old.db"], None);
    assert!(!ok, "row c is invalid");
    assert!(stderr.contains("row 3: from:"), "{stderr}");

    let (ok, _, stderr) = run(
        &database,
        &["import", "--from-sqlite", "old.db", "--skip-invalid"],
        None,
    );
    assert!(ok, "{stderr}");
    let (_, exported, _) = run(&database, &["export"], None);
    assert_eq!(
        exported,
        "{\"message_id\":\"b\",\"from\":\"+911\",\"to\":\"+1\",\"ts\":\"2025-01-15T10:00:00Z\",\"text\":null}\n\
         {\"message_id\":\"a\",\"from\":\"+911\",\"to\":\"+1\",\"ts\":\"2025-01-15T10:00:00.5Z\",\"text\":\"Hello\"}\n"
    );
    let db = rusqlite::Connection::open(database.sqlite_path()).unwrap();
    let created: String = db
        .query_row(
            "SELECT created_at FROM messages WHERE message_id = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        created, "2025-01-15T10:00:01Z",
        "the original receipt time is kept"
    );

    let (ok, _, stderr) = run(&database, &["import", "--from-sqlite", "missing.db"], None);
    assert!(!ok);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

async fn retention_deletes_old_messages_in_the_background_and_keeps_the_stats_right(store: Store) {
    let old = messages(2500, |i| format!("2020-03-01T00:00:{:02}.{i:04}Z", i % 60));
    let recent_ts = format_micros(now_micros() - 3_600_000_000);
    let recent: Vec<Value> = messages(30, |_| recent_ts.clone())
        .into_iter()
        .map(|mut b| {
            b["message_id"] = json!(format!("new-{}", b["message_id"].as_str().unwrap()));
            b
        })
        .collect();
    let database = TestDatabase::new(store);
    database.preload(&[old, recent.clone()].concat());

    let app = spawn_app_on(
        database,
        &[("RETENTION_DAYS", "30"), ("RETENTION_INTERVAL_SECS", "1")],
    )
    .await;
    let mut stats = Value::Null;
    for _ in 0..100 {
        stats = app.get_json("/stats").await.1;
        if stats["total_messages"] == 30 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stats["total_messages"], 30, "{stats}");
    assert_eq!(stats["first_message_ts"], json!(recent_ts));
    let listed = app.get_json("/messages?limit=100").await.1;
    assert_eq!(listed["total"], 30);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("retention_deleted_total 2500"),
        "{metrics}"
    );
}
