//! HTTP as its own tools expect it: `HEAD` answers as `GET` without a body, `OPTIONS` names
//! the allowed methods, and a body sent with a `Content-Encoding` is refused, not misread.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{message, sign, spawn_app};
use crate::store::{Store, store_tests};

store_tests! {
    async head_on_every_get_route_answers_as_get_without_a_body,
    async a_webhook_body_with_a_content_encoding_is_refused_with_415_and_not_stored,
    async options_answers_204_with_allow_and_no_cors,
}

/// Every `GET` route, with a URL that reaches it.
const GET_ROUTES: [&str; 10] = [
    "/messages",
    "/messages/export",
    "/messages/feed",
    "/stats",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/swagger-ui.css",
];

async fn head_on_every_get_route_answers_as_get_without_a_body(store: Store) {
    let app = spawn_app(store).await;
    let stored = message("m1", "+1", "+2", "2025-01-15T10:00:00Z", Some("hi"));
    assert_eq!(app.post_signed(&stored).await.status().as_u16(), 200);
    for path in GET_ROUTES {
        let get = app.get(path).await;
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        for header in ["content-type", "cache-control", "content-encoding"] {
            assert_eq!(
                head.headers().get(header),
                get.headers().get(header),
                "HEAD {path}: {header}"
            );
        }
        assert!(head.headers().contains_key("x-request-id"), "HEAD {path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path}: no body"
        );
    }
    // The stream never ends as a GET; as a HEAD it answers at once, with its headers only.
    let head = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.client.head(app.url("/messages/stream")).send(),
    )
    .await
    .expect("HEAD /messages/stream answers at once")
    .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        head.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), head.bytes())
        .await
        .expect("HEAD /messages/stream ends at once")
        .unwrap();
    assert!(body.is_empty(), "HEAD /messages/stream: no body");
}

async fn options_answers_204_with_allow_and_no_cors(store: Store) {
    let app = spawn_app(store).await;
    for (path, allow) in [
        ("/webhook", "POST, OPTIONS"),
        ("/messages", "GET, HEAD, OPTIONS"),
        ("/docs/{file}", "GET, HEAD, OPTIONS"),
        ("/health/ready", "GET, HEAD, OPTIONS"),
    ] {
        let url = app.url(&path.replace("{file}", "swagger-ui.css"));
        let response = app
            .client
            .request(Method::OPTIONS, url)
            .header("Origin", "https://elsewhere.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 204, "{path}");
        assert_eq!(response.headers()["allow"], allow, "{path}");
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{path}: no CORS"
        );
    }
    let unknown = app
        .client
        .request(Method::OPTIONS, app.url("/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

async fn a_webhook_body_with_a_content_encoding_is_refused_with_415_and_not_stored(store: Store) {
    let app = spawn_app(store).await;
    let body =
        serde_json::to_vec(&message("enc", "+1", "+2", "2025-01-15T10:00:00Z", None)).unwrap();
    for encoding in ["gzip", "br", "deflate", "identity, gzip", "x-unknown"] {
        let response = app
            .client
            .post(app.url("/webhook"))
            .header("X-Signature", sign(&body))
            .header("Content-Encoding", encoding)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 415, "{encoding}");
        let detail: Value = response.json().await.unwrap();
        assert!(detail["detail"].is_string(), "{encoding}: {detail}");
    }
    assert_eq!(
        app.stored_count().await,
        0,
        "nothing labelled as encoded is stored"
    );
    let identity = app
        .client
        .post(app.url("/webhook"))
        .header("X-Signature", sign(&body))
        .header("Content-Encoding", "Identity")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        identity.status().as_u16(),
        200,
        "identity is the body as it is"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("webhook_requests_total{result=\"unsupported_encoding\"} 5"),
        "{metrics}"
    );
}
