//! HTTP as its own tools expect it: `HEAD` answers as `GET` without a body, and `OPTIONS`
//! names the allowed methods.

use reqwest::Method;

use crate::helpers::{message, spawn_app};

/// Every `GET` route, with a URL that reaches it.
const GET_ROUTES: [&str; 9] = [
    "/messages",
    "/messages/export",
    "/stats",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/swagger-ui.css",
];

#[actix_web::test]
async fn head_on_every_get_route_answers_as_get_without_a_body() {
    let app = spawn_app().await;
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
}

#[actix_web::test]
async fn options_answers_204_with_allow_and_no_cors() {
    let app = spawn_app().await;
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
