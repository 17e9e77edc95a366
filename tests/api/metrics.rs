//! GET /metrics.

use crate::helpers::{message, metric_value as value_of, sign, spawn_app};
use crate::store::{Store, store_tests};

store_tests! {
    async metrics_count_requests_by_route_pattern_and_webhooks_by_result,
}

async fn metrics_count_requests_by_route_pattern_and_webhooks_by_result(store: Store) {
    let app = spawn_app(store).await;
    let body = message("m1", "+1", "+2", "2025-01-15T10:00:00Z", None);
    app.post_signed(&body).await;
    app.post_signed(&body).await;
    app.post_raw(b"{}".to_vec(), None).await;
    let invalid = br#"{"message_id": "m2"}"#.to_vec();
    let answer = app.post_raw(invalid.clone(), Some(&sign(&invalid))).await;
    assert_eq!(answer.status().as_u16(), 422);
    let too_large = vec![b' '; 64 * 1024 + 1];
    let answer = app
        .post_raw(too_large.clone(), Some(&sign(&too_large)))
        .await;
    assert_eq!(answer.status().as_u16(), 413);
    for path in ["/wp-login.php", "/.env", "/a/b/c"] {
        app.get(path).await;
    }

    let response = app.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let cases = [
        (r#"http_requests_total{path="/webhook",status="200"}"#, 2.0),
        (r#"http_requests_total{path="/webhook",status="401"}"#, 1.0),
        (r#"http_requests_total{path="unmatched",status="404"}"#, 3.0),
        (r#"webhook_requests_total{result="created"}"#, 1.0),
        (r#"webhook_requests_total{result="duplicate"}"#, 1.0),
        (r#"webhook_requests_total{result="invalid_signature"}"#, 1.0),
        (r#"webhook_requests_total{result="validation_error"}"#, 1.0),
        (r#"webhook_requests_total{result="payload_too_large"}"#, 1.0),
        (r#"webhook_requests_total{result="overloaded"}"#, 0.0),
        ("store_commit_failures_total", 0.0),
        ("store_queue_depth", 0.0),
        ("store_queue_capacity", 8192.0),
        ("database_ready", 1.0),
    ];
    for (series, expected) in cases {
        assert_eq!(value_of(&text, series), Some(expected), "{series}");
    }
    assert!(!text.contains("wp-login"), "raw paths never become labels");
    assert!(value_of(&text, "request_latency_ms_count").unwrap() >= 8.0);
    assert!(value_of(&text, "database_size_bytes").unwrap() > 0.0);
    for series in ["text_indexed_total", "text_index_backlog_rows"] {
        assert!(value_of(&text, series).is_some(), "{series}");
    }
    assert!(text.contains(r#"request_latency_ms_bucket{le="+Inf"}"#));
    assert!(value_of(&text, "store_batch_size_count").unwrap() >= 1.0);
    assert!(text.contains("store_commit_duration_seconds_bucket"));
}
