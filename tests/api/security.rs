//! Secret rotation, Standard Webhooks, replay protection, the read token and body timeouts.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::{SECRET, TestApp, message, metric_value, sign_with, spawn_app_with};
use crate::store::{Store, store_tests};

store_tests! {
    async during_a_rotation_both_secrets_verify_and_the_metric_says_which,
    async standard_webhooks_signatures_are_accepted_when_enabled_and_checked_strictly,
    async standard_webhooks_rotation_and_tolerance_follow_their_settings,
    async standard_webhooks_headers_are_not_trusted_unless_enabled,
    async optional_replay_protection_checks_a_signed_timestamp_when_one_is_sent,
    async required_replay_protection_refuses_a_request_without_a_timestamp,
    async with_an_api_token_reads_need_the_bearer_token_and_probes_stay_open,
    async metrics_can_be_put_behind_the_token_too,
    async a_body_that_stops_arriving_is_answered_408_after_the_client_timeout,
}

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn body(id: &str) -> Vec<u8> {
    serde_json::to_vec(&message(id, "+1", "+2", "2025-01-15T10:00:00Z", None)).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn standard_signature(key_b64: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = BASE64.decode(key_b64).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The `X-Signature` header of `body` under the test secret.
fn x_signature(body: &[u8]) -> [(&'static str, String); 1] {
    [("X-Signature", sign_with(SECRET, body))]
}

/// Posts to /webhook and returns the status, having checked that a refusal carries the
/// contract's body (the same for every way a signature can be wrong).
async fn post(app: &TestApp, body: Vec<u8>, headers: &[(&str, String)]) -> u16 {
    let mut request = app.client.post(app.url("/webhook")).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 401 {
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"detail": "invalid signature"}));
    }
    status
}

async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    metric_value(&app.get("/metrics").await.text().await.unwrap(), series)
}

async fn during_a_rotation_both_secrets_verify_and_the_metric_says_which(store: Store) {
    let app = spawn_app_with(
        store,
        &[
            ("WEBHOOK_SECRET", "new"),
            ("WEBHOOK_SECRET_PREVIOUS", "old"),
        ],
    )
    .await;
    let signed = |secret: &str, id: &str| {
        let body = body(id);
        (sign_with(secret, &body), body)
    };
    let (sig, b) = signed("new", "a");
    assert_eq!(post(&app, b, &[("X-Signature", sig)]).await, 200);
    let (sig, b) = signed("old", "b");
    assert_eq!(post(&app, b, &[("X-Signature", sig)]).await, 200);
    let (sig, b) = signed("older", "c");
    assert_eq!(post(&app, b, &[("X-Signature", sig)]).await, 401);

    let current = r#"webhook_signatures_verified_total{scheme="x-signature",secret="current"}"#;
    let previous = r#"webhook_signatures_verified_total{scheme="x-signature",secret="previous"}"#;
    assert_eq!(metric(&app, current).await, Some(1.0));
    assert_eq!(metric(&app, previous).await, Some(1.0));
}

async fn standard_webhooks_signatures_are_accepted_when_enabled_and_checked_strictly(store: Store) {
    let app = spawn_app_with(store, &[("STANDARD_WEBHOOK_SECRET", WHSEC)]).await;
    let key = &WHSEC[6..];
    let fresh = now().to_string();
    let headers = |id: &str, timestamp: &str, signature: String| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_owned()),
            ("webhook-signature", signature),
        ]
    };

    let b = body("std-1");
    let good = standard_signature(key, "msg_1", &fresh, &b);
    assert_eq!(
        post(&app, b.clone(), &headers("msg_1", &fresh, good.clone())).await,
        200
    );

    let several = format!("v1,bm9wZQ== {good}");
    assert_eq!(
        post(&app, b.clone(), &headers("msg_1", &fresh, several)).await,
        200,
        "one of several"
    );

    let stale = (now() - 301).to_string();
    let stale_sig = standard_signature(key, "msg_1", &stale, &b);
    let future = (now() + 301).to_string();
    let future_sig = standard_signature(key, "msg_1", &future, &b);
    let truncated = good[..good.len() - 8].to_owned();
    let rejected = [
        (
            headers("msg_1", &stale, stale_sig),
            "older than the tolerance",
        ),
        (
            headers("msg_1", &future, future_sig),
            "newer than the tolerance",
        ),
        (
            headers("msg_1", &fresh, "v1,".to_owned()),
            "empty signature",
        ),
        (headers("msg_1", &fresh, truncated), "truncated signature"),
        (
            headers("msg_2", &fresh, good.clone()),
            "signature of another id",
        ),
        (headers("", &fresh, good.clone()), "empty id"),
        (
            headers("msg_1", "soon", good.clone()),
            "non-numeric timestamp",
        ),
        (
            vec![("webhook-signature", good.clone())],
            "no id or timestamp",
        ),
    ];
    for (headers, why) in rejected {
        assert_eq!(post(&app, b.clone(), &headers).await, 401, "{why}");
    }

    // X-Signature senders keep working beside it.
    let b = body("x-1");
    assert_eq!(post(&app, b.clone(), &x_signature(&b)).await, 200);
    let verified =
        r#"webhook_signatures_verified_total{scheme="standard-webhooks",secret="current"}"#;
    assert_eq!(metric(&app, verified).await, Some(2.0));
}

async fn standard_webhooks_rotation_and_tolerance_follow_their_settings(store: Store) {
    const OLD: &str = "whsec_b2xkLXNlY3JldC1rZXktZm9yLXJvdGF0aW9u";
    let app = spawn_app_with(
        store,
        &[
            ("STANDARD_WEBHOOK_SECRET", WHSEC),
            ("STANDARD_WEBHOOK_SECRET_PREVIOUS", OLD),
            ("SIGNATURE_TOLERANCE_SECS", "30"),
        ],
    )
    .await;
    let send = |key: &'static str, id: &str, timestamp: i64| {
        let b = body(id);
        let timestamp = timestamp.to_string();
        let signature = standard_signature(&key[6..], id, &timestamp, &b);
        let headers = vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ];
        (b, headers)
    };
    let (b, headers) = send(OLD, "msg_old", now());
    assert_eq!(post(&app, b, &headers).await, 200, "the previous secret");
    let (b, headers) = send(WHSEC, "msg_new", now() - 20);
    assert_eq!(post(&app, b, &headers).await, 200, "20 s is within 30");
    let (b, headers) = send(WHSEC, "msg_late", now() - 45);
    assert_eq!(post(&app, b, &headers).await, 401, "45 s is not");

    let series = |slot: &str| {
        format!(
            r#"webhook_signatures_verified_total{{scheme="standard-webhooks",secret="{slot}"}}"#
        )
    };
    assert_eq!(metric(&app, &series("previous")).await, Some(1.0));
    assert_eq!(metric(&app, &series("current")).await, Some(1.0));
}

async fn standard_webhooks_headers_are_not_trusted_unless_enabled(store: Store) {
    let app = spawn_app_with(store, &[]).await;
    let b = body("std-off");
    let fresh = now().to_string();
    let signature = standard_signature(&WHSEC[6..], "msg_1", &fresh, &b);
    let headers = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", fresh),
        ("webhook-signature", signature),
    ];
    assert_eq!(post(&app, b, &headers).await, 401);
}

async fn optional_replay_protection_checks_a_signed_timestamp_when_one_is_sent(store: Store) {
    let app = spawn_app_with(store, &[("X_SIGNATURE_TIMESTAMP", "optional")]).await;
    let signed_with_time =
        |b: &[u8], timestamp: &str| sign_with(SECRET, &[timestamp.as_bytes(), b".", b].concat());
    let fresh = now().to_string();

    let b = body("r1");
    let headers = [
        ("X-Signature", signed_with_time(&b, &fresh)),
        ("X-Signature-Timestamp", fresh.clone()),
    ];
    assert_eq!(
        post(&app, b, &headers).await,
        200,
        "timestamp signed with the body"
    );

    let b = body("r2");
    let stale = (now() - 600).to_string();
    let headers = [
        ("X-Signature", signed_with_time(&b, &stale)),
        ("X-Signature-Timestamp", stale),
    ];
    assert_eq!(
        post(&app, b, &headers).await,
        401,
        "a replay after the tolerance"
    );

    let b = body("r3");
    let headers = [
        ("X-Signature", sign_with(SECRET, &b)),
        ("X-Signature-Timestamp", fresh),
    ];
    assert_eq!(
        post(&app, b, &headers).await,
        401,
        "a timestamp the signature does not cover"
    );

    let b = body("r4");
    assert_eq!(
        post(&app, b.clone(), &x_signature(&b)).await,
        200,
        "old senders"
    );
}

async fn required_replay_protection_refuses_a_request_without_a_timestamp(store: Store) {
    let app = spawn_app_with(store, &[("X_SIGNATURE_TIMESTAMP", "required")]).await;
    let b = body("q1");
    assert_eq!(post(&app, b.clone(), &x_signature(&b)).await, 401);
    let fresh = now().to_string();
    let signature = sign_with(SECRET, &[fresh.as_bytes(), b".", &b].concat());
    let headers = [("X-Signature", signature), ("X-Signature-Timestamp", fresh)];
    assert_eq!(post(&app, b, &headers).await, 200);
}

async fn with_an_api_token_reads_need_the_bearer_token_and_probes_stay_open(store: Store) {
    let app = spawn_app_with(store, &[("API_TOKEN", "read-token")]).await;
    for path in ["/messages", "/stats", "/messages/feed", "/messages/stream"] {
        let denied = app.get(path).await;
        assert_eq!(denied.status().as_u16(), 401, "{path}");
        assert_eq!(denied.headers()["www-authenticate"], "Bearer");
        assert_eq!(
            denied.json::<Value>().await.unwrap()["detail"],
            "missing or invalid bearer token"
        );
        let wrong = app
            .client
            .get(app.url(path))
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
        let allowed = app
            .client
            .get(app.url(path))
            .bearer_auth("read-token")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status().as_u16(), 200, "{path}");
    }
    for path in ["/health/live", "/health/ready", "/metrics"] {
        assert_eq!(
            app.get(path).await.status().as_u16(),
            200,
            "{path} stays open"
        );
    }
    // Ingest keeps its HMAC and needs no token.
    let b = body("t1");
    assert_eq!(post(&app, b.clone(), &x_signature(&b)).await, 200);
}

async fn metrics_can_be_put_behind_the_token_too(store: Store) {
    let app = spawn_app_with(
        store,
        &[
            ("API_TOKEN", "read-token"),
            ("METRICS_REQUIRE_TOKEN", "true"),
        ],
    )
    .await;
    assert_eq!(app.get("/metrics").await.status().as_u16(), 401);
    let allowed = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("read-token")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
}

async fn a_body_that_stops_arriving_is_answered_408_after_the_client_timeout(store: Store) {
    let app = spawn_app_with(store, &[("CLIENT_TIMEOUT_SECS", "1")]).await;
    let b = body("slow");
    let signature = sign_with(SECRET, &b);
    let address = app.address.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let answer = actix_web::rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
            b.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&b[..10]).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(app.stored_count().await, 0);
}
