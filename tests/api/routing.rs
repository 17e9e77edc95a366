//! Unknown paths and wrong methods answer JSON errors.

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::store::{Store, store_tests};

store_tests! {
    async an_unknown_path_is_a_json_404,
    async a_wrong_method_is_a_json_405_naming_the_allowed_one,
    async every_response_carries_a_request_id_and_echoes_a_given_one,
}

async fn an_unknown_path_is_a_json_404(store: Store) {
    let app = spawn_app(store).await;
    for path in ["/", "/nope", "/webhook/extra", "/messages/1"] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "not found"})
        );
    }
}

async fn a_wrong_method_is_a_json_405_naming_the_allowed_one(store: Store) {
    let app = spawn_app(store).await;
    let cases = [
        (reqwest::Method::GET, "/webhook", "POST, OPTIONS"),
        (reqwest::Method::PUT, "/webhook", "POST, OPTIONS"),
        (reqwest::Method::POST, "/messages", "GET, HEAD, OPTIONS"),
        (reqwest::Method::DELETE, "/stats", "GET, HEAD, OPTIONS"),
        (reqwest::Method::POST, "/health/live", "GET, HEAD, OPTIONS"),
        (reqwest::Method::POST, "/health/ready", "GET, HEAD, OPTIONS"),
        (reqwest::Method::POST, "/metrics", "GET, HEAD, OPTIONS"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "method not allowed"})
        );
    }
}

async fn every_response_carries_a_request_id_and_echoes_a_given_one(store: Store) {
    let app = spawn_app(store).await;
    let generated = app.get("/health/live").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32, "a generated id: {id}");

    let echoed = app
        .client
        .get(app.url("/nope"))
        .header("X-Request-ID", "client-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-abc-123");

    let unsafe_id = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-ID", "has \"quotes\"")
        .send()
        .await
        .unwrap();
    assert_ne!(unsafe_id.headers()["x-request-id"], "has \"quotes\"");
}
