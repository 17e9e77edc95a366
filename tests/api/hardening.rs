//! What a security review found, each closed: searches that are always answered correctly and
//! cost a bounded time, reads with a deadline, and responses holding messages kept out of caches.

use crate::binary::{RunningBinary, command};
use crate::helpers::{message, sign_with, spawn_app, spawn_app_on, validation_errors};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async a_search_holding_a_nul_finds_the_text_holding_it_and_is_never_a_5xx,
    async a_search_longer_than_any_text_is_a_422_and_one_as_long_is_searched,
    async a_read_past_the_read_timeout_is_stopped_and_answered_503_with_retry_after,
    async responses_holding_messages_are_never_stored_by_caches,
}

/// `count` messages to preload, each with a text.
fn many_messages(count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| {
            let text = format!("message number {i} about nothing in particular");
            message(
                &format!("m{i}"),
                "+1",
                "+2",
                "2025-01-15T10:00:00Z",
                Some(&text),
            )
        })
        .collect()
}

async fn a_search_holding_a_nul_finds_the_text_holding_it_and_is_never_a_5xx(store: Store) {
    let app = spawn_app(store).await;
    for (id, text) in [("nul", "abc\u{0}def"), ("plain", "abcdef")] {
        let response = app
            .post_signed(&message(id, "+1", "+2", "2025-01-15T10:00:00Z", Some(text)))
            .await;
        assert_eq!(response.status().as_u16(), 200, "{id}");
    }
    for (q, want) in [
        ("abc%00", vec!["nul"]),
        ("C%00D", vec!["nul"]),
        ("abc%00xyz", vec![]),
        ("%00", vec!["nul"]),
        ("abcdef", vec!["plain"]),
    ] {
        let (ids, total) = app.listed_ids(&format!("?q={q}")).await;
        assert_eq!(ids, want, "q={q}");
        assert_eq!(total, want.len() as u64, "q={q}");
    }
}

async fn a_search_longer_than_any_text_is_a_422_and_one_as_long_is_searched(store: Store) {
    let app = spawn_app(store).await;
    let longest = "x".repeat(4096);
    let stored = message("long", "+1", "+2", "2025-01-15T10:00:00Z", Some(&longest));
    assert_eq!(app.post_signed(&stored).await.status().as_u16(), 200);

    let (status, body) = app.get_json(&format!("/messages?q={longest}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1);
    for path in ["/messages", "/messages/export"] {
        let (status, body) = app.get_json(&format!("{path}?q={longest}x")).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(
            validation_errors(&body),
            [(
                vec!["query".to_owned(), "q".to_owned()],
                "string_too_long".to_owned()
            )],
            "{path}"
        );
    }
}

async fn a_read_past_the_read_timeout_is_stopped_and_answered_503_with_retry_after(store: Store) {
    let database = TestDatabase::new(store);
    database.preload(&many_messages(20_000));
    // PostgreSQL answers even a small read in about a millisecond (a round trip per
    // statement), so its deadline is a few.
    let deadline = match store {
        Store::Sqlite => "1",
        Store::Postgres => "5",
    };
    let app = spawn_app_on(database, &[("READ_TIMEOUT_MS", deadline)]).await;

    // Two characters can only be walked: every row is looked at, far longer than 1 ms.
    let response = app.get("/messages?q=zz").await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("longer than allowed"),
        "{body}"
    );
    let (status, _) = app.get_json("/stats").await;
    assert_eq!(status, 200, "a read within the deadline is answered");
}

#[actix_web::test]
async fn a_malformed_env_line_is_named_by_its_number_and_its_secret_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-value-never-to-print";
    let env = format!("PORT=0\nWEBHOOK_SECRET=\"{secret}\nLOG_LEVEL=INFO\n");
    std::fs::write(dir.path().join(".env"), env).unwrap();
    let output = command(dir.path(), &[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(".env: line 2"), "{stderr}");
    assert!(!stderr.contains(secret), "the secret was echoed: {stderr}");
}

#[actix_web::test]
async fn the_documented_placeholder_secret_stops_startup_and_a_short_one_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let placeholder = "REPLACE-ME-with-a-long-random-secret";
    let output = command(dir.path(), &[("WEBHOOK_SECRET", placeholder)])
        .output()
        .unwrap();
    assert!(!output.status.success(), "the placeholder is refused");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("WEBHOOK_SECRET is the placeholder"),
        "{stderr}"
    );

    let database = TestDatabase::new(Store::Sqlite);
    let service = RunningBinary::start(&database, "short", &[]);
    let warnings: Vec<String> = service
        .log_events()
        .iter()
        .filter(|event| event["level"] == "WARN")
        .filter_map(|event| event["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("WEBHOOK_SECRET is shorter than 32 bytes")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("/messages, /messages/export and /stats are open")),
        "the warning names every open read: {warnings:?}"
    );
}

async fn responses_holding_messages_are_never_stored_by_caches(store: Store) {
    let app = spawn_app(store).await;
    let stored = message("m1", "+1", "+2", "2025-01-15T10:00:00Z", Some("hi"));
    assert_eq!(app.post_signed(&stored).await.status().as_u16(), 200);
    for path in ["/messages", "/messages/export", "/stats"] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
}

#[actix_web::test]
async fn rejected_signatures_log_a_few_lines_a_second_and_client_values_are_cut_short() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = RunningBinary::start(&database, "secret", &[]);
    let client = reqwest::Client::new();
    let long_id = "i".repeat(20_000);
    let body =
        serde_json::to_vec(&message(&long_id, "+1", "+2", "2025-01-15T10:00:00Z", None)).unwrap();
    let rejected = (0..40).map(|_| {
        client
            .post(service.url("/webhook"))
            .header("X-Signature", "0".repeat(64))
            .body(body.clone())
            .send()
    });
    for response in futures_util::future::join_all(rejected).await {
        assert_eq!(response.unwrap().status().as_u16(), 401);
    }
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let late = client
        .post(service.url("/webhook"))
        .header("X-Signature", "0".repeat(64))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(late.status().as_u16(), 401);
    let stored = client
        .post(service.url(&format!("/{}", "p".repeat(5_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status().as_u16(), 404);
    let accepted = client
        .post(service.url("/webhook"))
        .header("X-Signature", sign_with("secret", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 200);
    let metrics = client.get(service.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("webhook_requests_total{result=\"invalid_signature\"} 41"),
        "every rejection is counted"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));

    let events = service.log_events();
    let lines: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            e["level"] == "ERROR"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("invalid signature"))
        })
        .collect();
    assert!(
        (2..=11).contains(&lines.len()),
        "a few lines a second, not one per rejection: {}",
        lines.len()
    );
    let told = lines.last().unwrap()["held_back"].as_u64().unwrap_or(0);
    assert!(
        told >= 25,
        "the last line tells how many were not logged: {told}"
    );
    let everything = service.lines.lock().unwrap();
    let longest = everything.iter().map(String::len).max().unwrap();
    assert!(
        longest < 2_000,
        "no log line carries a client's whole value: {longest}"
    );
}

/// Sends `request` as raw bytes and returns the answer's head and body as text.
fn raw_exchange(address: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    // The server may answer and close before all of a large request is written.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn protocol_errors_any_client_can_cause_are_counted_not_logged_as_errors() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = RunningBinary::start(&database, "secret", &[]);
    let address = service.url("").trim_start_matches("http://").to_owned();
    let big_header = format!(
        "GET /health/live HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let many_headers = format!(
        "GET /health/live HTTP/1.1\r\n{}\r\n",
        (0..100)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: [(&str, &[u8], &str); 7] = [
        (
            "a NUL in a header",
            b"GET /health/live HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
            "400",
        ),
        ("a garbage request line", b"GARBAGE\r\n\r\n", "400"),
        (
            "two Content-Length",
            b"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
            "400",
        ),
        (
            "a bare CR in a header",
            b"GET /health/live HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
            "400",
        ),
        (
            "a Content-Length that is not a number",
            b"POST /webhook HTTP/1.1\r\nContent-Length: two\r\n\r\nab",
            "400",
        ),
        ("a 200 KB header", big_header.as_bytes(), "431"),
        ("more than 96 headers", many_headers.as_bytes(), "431"),
    ];
    for (case, request, status) in &cases {
        let answer = raw_exchange(&address, request).to_ascii_lowercase();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(
            head.lines().next().unwrap_or_default().contains(status),
            "{case}: {answer}"
        );
        assert!(
            body.is_empty() && !head.contains("x-request-id"),
            "{case}: the HTTP layer's own answer has no body and no request id: {answer}"
        );
    }
    // A malformed chunked body is a 400 either way: from the HTTP layer (empty) when its decoder
    // meets the bad chunk first, or the contract's JSON when the route was already reading the
    // body (which one depends on how the bytes arrive).
    let chunked = format!(
        "POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Signature: {}\r\n\r\nzz\r\n",
        "0".repeat(64)
    );
    let answer = raw_exchange(&address, chunked.as_bytes());
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.1 400")
            && (body.is_empty() || body == "{\"detail\":\"the request body could not be read\"}"),
        "a malformed chunked body: {answer:?}"
    );
    let metrics = reqwest::get(service.url("/metrics")).await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let counted = crate::helpers::metric_value(&metrics, "http_protocol_errors_total").unwrap();
    assert!(
        counted >= cases.len() as f64,
        "every protocol error is counted: {counted}"
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let errors: Vec<serde_json::Value> = service
        .log_events()
        .into_iter()
        .filter(|e| e["level"] == "ERROR")
        .collect();
    assert!(errors.is_empty(), "no ERROR line: {errors:?}");
}

/// With `Expect: 100-continue` the HTTP layer says `100 Continue` before any route runs (no
/// hook lets the service answer first); the oversized body's `413` follows without waiting
/// for the body, in the contract's JSON, and the connection is closed.
#[actix_web::test]
async fn an_oversized_body_announced_with_expect_continue_gets_100_then_413_and_a_close() {
    let database = TestDatabase::new(Store::Sqlite);
    let service = RunningBinary::start(&database, "secret", &[]);
    let address = service.url("").trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Signature: \
         {}\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
        "0".repeat(64)
    );
    let started = std::time::Instant::now();
    let answer = raw_exchange(&address, request.as_bytes());
    let (continued, rest) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("two answers: {answer:?}"));
    assert_eq!(continued, "HTTP/1.1 100 Continue");
    assert!(
        rest.starts_with("HTTP/1.1 413") && rest.to_ascii_lowercase().contains("connection: close"),
        "{rest:?}"
    );
    assert!(
        rest.ends_with("{\"detail\":\"request body is larger than the limit of 65536 bytes\"}"),
        "{rest:?}"
    );
    // The connection was closed (read to its end) well before raw_exchange's 5 s timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}
