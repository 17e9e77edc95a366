//! Standard Webhooks senders as the official libraries make them: the `standardwebhooks` and
//! `svix` Python packages' signatures are accepted, under the specification's `webhook-*`
//! header names and under Svix's `svix-*` ones alike, by exactly the same rules.
//!
//! The signatures are fixtures recorded from the libraries' own signing code (each checked by
//! the library's own verifier first), not computed here, so the test needs no Python. To record
//! them again:
//!
//! ```sh
//! pip install standardwebhooks==1.1.0 svix==2.9.1
//! python3 tests/api/standard_webhooks_vectors.py > tests/api/standard_webhooks_vectors.json
//! ```

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app_with};
use crate::store::{Store, store_tests};

store_tests! {
    async what_the_official_libraries_sign_is_stored_under_either_header_family,
}

/// The secret the fixtures were signed with (the libraries' own test secret).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Recorded by `standard_webhooks_vectors.py`: `[{library, body, headers}]`.
const VECTORS: &str = include_str!("standard_webhooks_vectors.json");

/// The vector both libraries' test suites check their signing against: this id, timestamp
/// and body, signed with [`SECRET`], give this signature.
const PUBLISHED_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const PUBLISHED_TIMESTAMP: &str = "1614265330";
const PUBLISHED_BODY: &str = r#"{"test": 2432232314}"#;
const PUBLISHED_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// Seconds from the fixtures' timestamps to well past now, so they stay within the tolerance.
const CENTURY: &str = "3153600000";

/// Header names and values, as sent.
type Headers = Vec<(String, String)>;

async fn post(app: &TestApp, body: &str, headers: &[(String, String)]) -> u16 {
    let mut request = app.client.post(app.url("/webhook")).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// The recorded vectors: which library, the body, and its headers.
fn vectors() -> Vec<(String, String, Headers)> {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    vectors
        .iter()
        .map(|v| {
            let headers = v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                v["library"].as_str().unwrap().to_owned(),
                v["body"].as_str().unwrap().to_owned(),
                headers,
            )
        })
        .collect()
}

/// `headers` with the `webhook-` prefix of each name swapped for `svix-`, or the reverse.
fn renamed(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = match name.strip_prefix("webhook-") {
                Some(rest) => format!("svix-{rest}"),
                None => format!("webhook-{}", name.strip_prefix("svix-").unwrap()),
            };
            (name, value.clone())
        })
        .collect()
}

async fn what_the_official_libraries_sign_is_stored_under_either_header_family(store: Store) {
    let app = spawn_app_with(
        store,
        &[
            ("STANDARD_WEBHOOK_SECRET", SECRET),
            ("SIGNATURE_TOLERANCE_SECS", CENTURY),
        ],
    )
    .await;
    let vectors = vectors();
    assert_eq!(vectors.len(), 2, "one per library");
    for (library, body, headers) in &vectors {
        assert_eq!(post(&app, body, headers).await, 200, "{library}");
        // The same signature under the other family's names means the same.
        assert_eq!(
            post(&app, body, &renamed(headers)).await,
            200,
            "{library}, renamed"
        );
    }
    let stored: Vec<String> = app
        .stored_messages()
        .await
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, ["standardwebhooks-1", "svix-1"]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"webhook_signatures_verified_total{scheme="standard-webhooks",secret="current"} 4"#
        ),
        "{metrics}"
    );
}

#[actix_web::test]
async fn the_libraries_published_vector_verifies_under_svix_names() {
    let app = spawn_app_with(
        Store::Sqlite,
        &[
            ("STANDARD_WEBHOOK_SECRET", SECRET),
            ("SIGNATURE_TOLERANCE_SECS", CENTURY),
        ],
    )
    .await;
    let headers = |signature: &str| {
        vec![
            ("svix-id".to_owned(), PUBLISHED_ID.to_owned()),
            ("svix-timestamp".to_owned(), PUBLISHED_TIMESTAMP.to_owned()),
            ("svix-signature".to_owned(), signature.to_owned()),
        ]
    };
    // Verified, then refused for its content: the body is not a message of the contract.
    assert_eq!(
        post(&app, PUBLISHED_BODY, &headers(PUBLISHED_SIGNATURE)).await,
        422
    );
    let altered = PUBLISHED_SIGNATURE.replace("g0h", "g1h");
    assert_eq!(post(&app, PUBLISHED_BODY, &headers(&altered)).await, 401);
}

#[actix_web::test]
async fn svix_headers_follow_the_same_rules_as_webhook_headers() {
    let (_, body, headers) = vectors().pop().unwrap();
    assert!(headers.iter().all(|(name, _)| name.starts_with("svix-")));
    let without = |missing: &str| -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(name, _)| name != missing)
            .cloned()
            .collect()
    };
    // The recorded timestamp is long past: outside the default five minutes.
    let strict = spawn_app_with(Store::Sqlite, &[("STANDARD_WEBHOOK_SECRET", SECRET)]).await;
    assert_eq!(post(&strict, &body, &headers).await, 401, "stale");
    let app = spawn_app_with(
        Store::Sqlite,
        &[
            ("STANDARD_WEBHOOK_SECRET", SECRET),
            ("SIGNATURE_TOLERANCE_SECS", CENTURY),
        ],
    )
    .await;
    let tampered = body.replace("signed by", "forged by");
    for (case, body, headers) in [
        ("tampered body", tampered.as_str(), headers.clone()),
        ("no svix-id", body.as_str(), without("svix-id")),
        (
            "no svix-timestamp",
            body.as_str(),
            without("svix-timestamp"),
        ),
    ] {
        assert_eq!(post(&app, body, &headers).await, 401, "{case}");
    }
    let disabled = spawn_app_with(Store::Sqlite, &[("SIGNATURE_TOLERANCE_SECS", CENTURY)]).await;
    assert_eq!(post(&disabled, &body, &headers).await, 401, "not enabled");
    assert_eq!(app.stored_count().await, 0);
    // What every refusal above altered is accepted as it was made.
    assert_eq!(post(&app, &body, &headers).await, 200, "as recorded");
}

/// With Standard Webhooks on, any header of either family makes the request one: a partial or
/// malformed set is refused even beside a valid `X-Signature`, never ignored in its favour.
#[actix_web::test]
async fn a_partial_standard_webhooks_set_beside_a_valid_x_signature_is_refused() {
    let app = spawn_app_with(Store::Sqlite, &[("STANDARD_WEBHOOK_SECRET", SECRET)]).await;
    let body = crate::helpers::message("partial", "+1", "+2", "2025-01-15T10:00:00Z", None);
    for (case, name, value) in [
        ("a lone webhook-id", "webhook-id", "msg_1"),
        ("a lone webhook-signature", "webhook-signature", "v1,AAAA"),
        ("a lone svix-timestamp", "svix-timestamp", "1736935200"),
        ("a malformed svix-id", "svix-id", ""),
    ] {
        let answer = app
            .signed_request(&body)
            .header(name, value)
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status().as_u16(), 401, "{case}");
    }
    assert_eq!(app.stored_count().await, 0);
    // The same X-Signature alone is accepted.
    assert_eq!(app.post_signed(&body).await.status().as_u16(), 200);
}
