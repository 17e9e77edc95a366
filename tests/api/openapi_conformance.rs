//! The OpenAPI document matches the server it came from: its security follows the running
//! configuration, and every parameter is described the way the server reads it, so tools
//! generating requests from it (clients, fuzzers) are answered as the document says.

use serde_json::{Value, json};

use crate::helpers::{message, spawn_app, spawn_app_with};
use crate::openapi::{EVERY_SIGNATURE_HEADER, document};
use crate::store::{Store, store_tests};

store_tests! {
    async an_empty_cursor_is_read_as_absent_as_documented,
}

const READS: [&str; 3] = ["/messages", "/messages/export", "/stats"];

/// Environment-style settings a test app starts with.
type Settings<'a> = &'a [(&'a str, &'a str)];

fn parameter<'a>(doc: &'a Value, path: &str, name: &str) -> &'a Value {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} documents {name}"))
}

#[actix_web::test]
async fn security_is_declared_exactly_where_the_configuration_asks_for_the_token() {
    let token = [("API_TOKEN", "t0ken")];
    let everything = [("API_TOKEN", "t0ken"), ("METRICS_REQUIRE_TOKEN", "true")];
    let configurations: [(Settings, bool, bool); 3] = [
        (&[], false, false),
        (&token, true, false),
        (&everything, true, true),
    ];
    for (settings, reads, metrics) in configurations {
        let app = spawn_app_with(Store::Sqlite, settings).await;
        let doc = document(&app).await;
        let required = json!([{"api_token": []}]);
        for path in READS {
            let security = &doc["paths"][path]["get"]["security"];
            assert_eq!(
                *security == required,
                reads,
                "{settings:?} {path}: {security}"
            );
            // What the document says is what the server does without a token.
            let status = app.get(path).await.status().as_u16();
            assert_eq!(status == 401, reads, "{settings:?} {path}");
        }
        let security = &doc["paths"]["/metrics"]["get"]["security"];
        assert_eq!(
            *security == required,
            metrics,
            "{settings:?} /metrics: {security}"
        );
        assert_eq!(app.get("/metrics").await.status() == 401, metrics);
        let scheme = &doc["components"]["securitySchemes"]["api_token"];
        assert_eq!(
            scheme.is_object(),
            reads,
            "{settings:?}: the scheme only when used"
        );
    }
}

#[actix_web::test]
async fn since_and_until_carry_the_same_z_only_pattern_as_ts() {
    let app = spawn_app(Store::Sqlite).await;
    let doc = document(&app).await;
    let ts = &doc["components"]["schemas"]["Message"]["properties"]["ts"]["pattern"];
    assert!(ts.is_string());
    assert!(
        !ts.as_str().unwrap().contains("\\d"),
        "ASCII digits only: {ts}"
    );
    for path in ["/messages", "/messages/export"] {
        for name in ["since", "until"] {
            let schema = &parameter(&doc, path, name)["schema"];
            assert_eq!(&schema["pattern"], ts, "{path} {name}");
        }
    }
    // An offset instead of `Z` is refused as the pattern says.
    let (status, _) = app
        .get_json("/messages?since=2025-01-15T10:00:00%2B01:00")
        .await;
    assert_eq!(status, 422);
}

async fn an_empty_cursor_is_read_as_absent_as_documented(store: Store) {
    let app = spawn_app(store).await;
    let doc = document(&app).await;
    let cursor = parameter(&doc, "/messages", "cursor");
    assert!(
        cursor["description"]
            .as_str()
            .unwrap()
            .contains("Empty means absent")
    );
    for n in 0..3 {
        let body = message(&format!("c{n}"), "+1", "+2", "2025-01-15T10:00:00Z", None);
        assert_eq!(app.post_signed(&body).await.status().as_u16(), 200);
    }
    let (status, with_empty) = app.get_json("/messages?cursor=&limit=2").await;
    assert_eq!(status, 200, "{with_empty}");
    let (_, without) = app.get_json("/messages?limit=2").await;
    assert_eq!(with_empty, without, "?cursor= reads as no cursor");
}

#[actix_web::test]
async fn q_documents_the_length_the_server_accepts() {
    let app = spawn_app(Store::Sqlite).await;
    let doc = document(&app).await;
    for path in ["/messages", "/messages/export"] {
        assert_eq!(
            parameter(&doc, path, "q")["schema"]["maxLength"],
            4096,
            "{path}"
        );
    }
}

#[actix_web::test]
async fn the_docs_files_declare_the_content_types_they_are_served_with() {
    let app = spawn_app(Store::Sqlite).await;
    let doc = document(&app).await;
    let content = &doc["paths"]["/docs/{file}"]["get"]["responses"]["200"]["content"];
    for file in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
        "favicon-32x32.png",
    ] {
        let response = app.get(&format!("/docs/{file}")).await;
        let served = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content[&served].is_object(),
            "{file} is served as {served}: {content}"
        );
    }
}

#[actix_web::test]
async fn a_long_request_id_is_replaced_not_refused_as_documented() {
    let app = spawn_app(Store::Sqlite).await;
    let doc = document(&app).await;
    let documented = parameter(&doc, "/messages", "X-Request-ID");
    assert!(documented["schema"]["maxLength"].is_null(), "{documented}");
    assert!(
        documented["description"]
            .as_str()
            .unwrap()
            .contains("replaced")
    );
    let long = "r".repeat(200);
    let response = app
        .client
        .get(app.url("/messages"))
        .header("X-Request-ID", &long)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_ne!(response.headers()["x-request-id"], long.as_str());
}

#[actix_web::test]
async fn webhook_documents_exactly_the_signature_headers_the_configuration_reads() {
    let headers = |doc: &Value| -> Vec<String> {
        doc["paths"]["/webhook"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header" && p["name"] != "X-Request-ID")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let plain = document(&spawn_app(Store::Sqlite).await).await;
    assert_eq!(headers(&plain), ["X-Signature"]);
    let every = spawn_app_with(Store::Sqlite, &EVERY_SIGNATURE_HEADER).await;
    let documented = headers(&document(&every).await);
    for name in [
        "X-Signature",
        "X-Signature-Timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
    ] {
        assert!(
            documented.iter().any(|d| d == name),
            "{name}: {documented:?}"
        );
    }
    // Where they are read, a malformed one is refused, even beside a valid X-Signature.
    let body = serde_json::to_vec(&crate::helpers::message(
        "m1",
        "+1",
        "+2",
        "2025-01-15T10:00:00Z",
        None,
    ))
    .unwrap();
    for header in ["webhook-timestamp", "svix-id", "X-Signature-Timestamp"] {
        let response = every
            .client
            .post(every.url("/webhook"))
            .header("X-Signature", crate::helpers::sign(&body))
            .header(header, "")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "an empty {header}");
    }
}
