//! POST /webhook: signature, validation, size limit, idempotency, backpressure.

use serde_json::{Value, json};

use crate::helpers::{message, sign, sign_with, spawn_app, spawn_app_with, validation_errors};
use crate::store::{Store, store_tests};

store_tests! {
    async a_valid_signed_message_is_stored_and_answered_ok,
    async the_signature_may_be_upper_case_hex_and_content_type_is_not_required,
    async webhook_returns_401_and_stores_nothing_when_the_signature_is_not_valid,
    async the_signature_is_checked_before_the_body_is_parsed,
    async webhook_returns_422_in_the_fastapi_shape_for_each_bad_body,
    async webhook_lists_every_problem_in_one_422,
    async text_may_be_null_or_absent_and_unknown_fields_are_ignored,
    async webhook_returns_413_for_a_body_over_the_limit_declared_or_streamed,
    async a_repeated_delivery_is_answered_ok_and_stored_once,
    async concurrent_copies_of_one_message_are_all_ok_and_stored_once,
    async webhook_returns_503_with_retry_after_when_the_store_queue_is_full,
}

fn example() -> Value {
    message(
        "m1",
        "+919876543210",
        "+14155550100",
        "2025-01-15T10:00:00Z",
        Some("Hello"),
    )
}

async fn a_valid_signed_message_is_stored_and_answered_ok(store: Store) {
    let app = spawn_app(store).await;

    let response = app.post_signed(&example()).await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    assert_eq!(app.stored_messages().await, vec![example()]);
}

async fn the_signature_may_be_upper_case_hex_and_content_type_is_not_required(store: Store) {
    let app = spawn_app(store).await;
    let body = serde_json::to_vec(&example()).unwrap();
    let response = app
        .client
        .post(app.url("/webhook"))
        .header("X-Signature", sign(&body).to_uppercase())
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(app.stored_count().await, 1);
}

async fn webhook_returns_401_and_stores_nothing_when_the_signature_is_not_valid(store: Store) {
    let app = spawn_app(store).await;
    let body = serde_json::to_vec(&example()).unwrap();
    let good = sign(&body);
    let cases: Vec<(Option<String>, Vec<u8>, &str)> = vec![
        (None, body.clone(), "missing header"),
        (Some(String::new()), body.clone(), "empty header"),
        (Some("not-hex".into()), body.clone(), "not hex"),
        (Some(good[..62].into()), body.clone(), "truncated"),
        (Some(format!("sha256={good}")), body.clone(), "prefixed"),
        (
            Some(sign_with("other-secret", &body)),
            body.clone(),
            "wrong secret",
        ),
        (
            Some(good.clone()),
            [&body[..], b" "].concat(),
            "body tampered after signing",
        ),
        (Some("0".repeat(64)), body.clone(), "all zeros"),
    ];
    for (signature, body, why) in cases {
        let response = app.post_raw(body, signature.as_deref()).await;
        assert_eq!(response.status().as_u16(), 401, "{why}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "invalid signature"}),
            "{why}"
        );
    }
    assert_eq!(app.stored_count().await, 0);
}

async fn the_signature_is_checked_before_the_body_is_parsed(store: Store) {
    let app = spawn_app(store).await;
    let response = app
        .post_raw(b"not json".to_vec(), Some(&"ab".repeat(32)))
        .await;
    assert_eq!(
        response.status().as_u16(),
        401,
        "a bad body with a bad signature is a 401"
    );
}

async fn webhook_returns_422_in_the_fastapi_shape_for_each_bad_body(store: Store) {
    let app = spawn_app(store).await;
    let with = |field: &str, value: Value| {
        let mut body = example();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = example();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(Vec<u8>, &str, &str, &str)> = vec![
        (b"not json".to_vec(), "body", "json_invalid", "not JSON"),
        (b"[]".to_vec(), "body", "model_attributes_type", "an array"),
        (b"null".to_vec(), "body", "model_attributes_type", "null"),
        (
            without("message_id").to_string().into(),
            "message_id",
            "missing",
            "no message_id",
        ),
        (
            with("message_id", json!("")).to_string().into(),
            "message_id",
            "string_too_short",
            "empty message_id",
        ),
        (
            with("message_id", json!(7)).to_string().into(),
            "message_id",
            "string_type",
            "numeric message_id",
        ),
        (
            without("from").to_string().into(),
            "from",
            "missing",
            "no from",
        ),
        (
            with("from", json!("919876543210")).to_string().into(),
            "from",
            "string_pattern_mismatch",
            "from without +",
        ),
        (
            with("from", json!("+1234567890123456")).to_string().into(),
            "from",
            "string_pattern_mismatch",
            "16 digits",
        ),
        (
            with("to", json!("+1 415")).to_string().into(),
            "to",
            "string_pattern_mismatch",
            "space in to",
        ),
        (
            with("to", json!(null)).to_string().into(),
            "to",
            "string_type",
            "null to",
        ),
        (
            with("ts", json!("2025-01-15T10:00:00")).to_string().into(),
            "ts",
            "datetime_parsing",
            "no Z",
        ),
        (
            with("ts", json!("2025-01-15T10:00:00+05:30"))
                .to_string()
                .into(),
            "ts",
            "datetime_parsing",
            "offset",
        ),
        (
            with("ts", json!("2025-02-30T10:00:00Z")).to_string().into(),
            "ts",
            "datetime_parsing",
            "30 February",
        ),
        (
            with("text", json!("x".repeat(4097))).to_string().into(),
            "text",
            "string_too_long",
            "text too long",
        ),
        (
            with("text", json!(["a"])).to_string().into(),
            "text",
            "string_type",
            "text is a list",
        ),
    ];
    for (body, field, kind, why) in cases {
        let signature = sign(&body);
        let response = app.post_raw(body, Some(&signature)).await;
        assert_eq!(response.status().as_u16(), 422, "{why}");
        let errors = validation_errors(&response.json().await.unwrap());
        let loc = if field == "body" {
            vec!["body".to_owned()]
        } else {
            vec!["body".to_owned(), field.to_owned()]
        };
        assert_eq!(errors, vec![(loc, kind.to_owned())], "{why}");
    }
    assert_eq!(app.stored_count().await, 0);
}

async fn webhook_lists_every_problem_in_one_422(store: Store) {
    let app = spawn_app(store).await;
    let response = app
        .post_signed(&json!({"message_id": "", "from": "x", "ts": "soon", "text": 5}))
        .await;
    assert_eq!(response.status().as_u16(), 422);
    let fields: Vec<String> = validation_errors(&response.json().await.unwrap())
        .into_iter()
        .map(|(loc, _)| loc[1].clone())
        .collect();
    assert_eq!(fields, ["message_id", "from", "to", "ts", "text"]);
}

async fn text_may_be_null_or_absent_and_unknown_fields_are_ignored(store: Store) {
    let app = spawn_app(store).await;
    let mut body = message("n1", "+1", "+2", "2025-01-15T10:00:00Z", None);
    body["unexpected"] = json!({"deep": [1, 2, 3]});
    assert_eq!(app.post_signed(&body).await.status().as_u16(), 200);
    body.as_object_mut().unwrap().remove("text");
    body["message_id"] = json!("n2");
    assert_eq!(app.post_signed(&body).await.status().as_u16(), 200);
    let texts: Vec<Value> = app
        .stored_messages()
        .await
        .into_iter()
        .map(|message| message["text"].clone())
        .collect();
    assert_eq!(texts, vec![Value::Null, Value::Null]);
}

async fn webhook_returns_413_for_a_body_over_the_limit_declared_or_streamed(store: Store) {
    let app = spawn_app_with(store, &[("MAX_BODY_BYTES", "1024")]).await;
    let mut body = example();
    body["text"] = json!("x".repeat(2000));
    let bytes = serde_json::to_vec(&body).unwrap();
    let signature = sign(&bytes);

    let declared = app.post_raw(bytes.clone(), Some(&signature)).await;
    assert_eq!(declared.status().as_u16(), 413);
    let detail = declared.json::<Value>().await.unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("1024"),
        "{detail}"
    );

    // Without Content-Length (chunked), the limit still holds while streaming.
    let stream = futures_util::stream::iter(
        bytes
            .chunks(100)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let chunked = app
        .client
        .post(app.url("/webhook"))
        .header("X-Signature", signature)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status().as_u16(), 413);
    assert_eq!(app.stored_count().await, 0);
}

async fn a_repeated_delivery_is_answered_ok_and_stored_once(store: Store) {
    let app = spawn_app(store).await;
    for _ in 0..3 {
        assert_eq!(app.post_signed(&example()).await.status().as_u16(), 200);
    }
    assert_eq!(app.stored_count().await, 1);
}

async fn concurrent_copies_of_one_message_are_all_ok_and_stored_once(store: Store) {
    let app = spawn_app(store).await;
    let body = example();
    let copies = (0..64).map(|_| app.post_signed(&body));
    let statuses: Vec<u16> = futures_util::future::join_all(copies)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.stored_count().await, 1);
}

async fn webhook_returns_503_with_retry_after_when_the_store_queue_is_full(store: Store) {
    let app = spawn_app_with(store, &[("STORE_QUEUE_CAPACITY", "1")]).await;
    // Another process holds the write lock, so the first message waits in the queue.
    let blocker = app.database.hold_write_lock();
    let waiting = app.signed_request(&example()).send();
    let waiting = actix_web::rt::spawn(async move { waiting.await.unwrap().status().as_u16() });
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;

    let second = app
        .post_signed(&message("m2", "+1", "+2", "2025-01-15T10:00:00Z", None))
        .await;

    assert_eq!(second.status().as_u16(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    assert!(second.json::<Value>().await.unwrap()["detail"].is_string());
    drop(blocker);
    assert_eq!(
        waiting.await.unwrap(),
        200,
        "the queued message is stored once the lock goes"
    );
    assert_eq!(app.stored_count().await, 1);
}

#[actix_web::test]
async fn webhook_returns_503_and_never_200_when_the_sqlite_file_is_gone() {
    let app = spawn_app(Store::Sqlite).await;
    std::fs::remove_file(app.database.sqlite_path()).unwrap();

    let response = app.post_signed(&example()).await;

    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.json::<Value>().await.unwrap();
    let detail = body["detail"].as_str().unwrap_or_else(|| panic!("{body}"));
    // The reason, not the machinery: no path, no SQL, no SQLite error text.
    let path = app.database.sqlite_path();
    for leak in [
        path.to_str().unwrap(),
        "app.db",
        "SELECT",
        "INSERT",
        "sqlite",
        "SQLITE",
    ] {
        assert!(!detail.contains(leak), "{leak:?} in {detail:?}");
    }
}
