//! Logs: one JSON line per request with the contract's fields, and never the secret.

use serde_json::Value;

use crate::binary::RunningBinary;
use crate::helpers::{message, sign_with};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async each_request_logs_one_json_line_with_the_contract_fields_and_never_the_secret,
}

const SECRET: &str = "very-secret-value";

async fn each_request_logs_one_json_line_with_the_contract_fields_and_never_the_secret(
    store: Store,
) {
    let database = TestDatabase::new(store);
    let service = RunningBinary::start(&database, SECRET, &[]);
    let client = reqwest::Client::new();
    let body =
        serde_json::to_vec(&message("log-1", "+1", "+2", "2025-01-15T10:00:00Z", None)).unwrap();
    for _ in 0..2 {
        let response = client
            .post(service.url("/webhook"))
            .header("X-Signature", sign_with(SECRET, &body))
            .header("X-Request-ID", "req-log-test")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "req-log-test");
    }
    client
        .post(service.url("/webhook"))
        .header("X-Signature", "00")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    client.get(service.url("/messages")).send().await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));

    let events = service.log_events();
    let finished: Vec<&Value> = events
        .iter()
        .filter(|e| e["message"] == "request finished")
        .collect();
    assert_eq!(finished.len(), 4, "one line per request: {finished:#?}");
    for event in &finished {
        for field in [
            "ts",
            "level",
            "request_id",
            "method",
            "path",
            "status",
            "latency_ms",
        ] {
            assert!(!event[field].is_null(), "{field} missing in {event}");
        }
        assert!(event["ts"].as_str().unwrap().ends_with('Z'));
    }
    let webhook: Vec<_> = finished
        .iter()
        .filter(|e| e["path"] == "/webhook")
        .collect();
    assert_eq!(
        (
            webhook[0]["request_id"].as_str(),
            webhook[0]["message_id"].as_str()
        ),
        (Some("req-log-test"), Some("log-1"))
    );
    assert_eq!(
        (webhook[0]["dup"].as_bool(), webhook[0]["result"].as_str()),
        (Some(false), Some("created"))
    );
    assert_eq!(
        (webhook[1]["dup"].as_bool(), webhook[1]["result"].as_str()),
        (Some(true), Some("duplicate"))
    );
    assert_eq!(webhook[2]["result"], "invalid_signature");
    assert_eq!(webhook[2]["status"], 401);

    let signature_errors = events
        .iter()
        .filter(|e| {
            e["level"] == "ERROR"
                && e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("invalid signature")
        })
        .count();
    assert_eq!(
        signature_errors, 1,
        "a rejected signature logs one error line"
    );

    let everything = service.lines.lock().unwrap().join("\n");
    assert!(
        !everything.contains(SECRET),
        "the secret must never be logged"
    );
}
