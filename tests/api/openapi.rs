//! `GET /openapi.json` and `GET /docs`: the document describes exactly the routes the server
//! answers, with the bounds the parsers use, and the viewer loads nothing from elsewhere.
//!
//! The document does not depend on the store, so the tests that read only the document run on
//! SQLite; those that compare it with the answers the service sends run on every store.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use webhook_processor::domain::message::MAX_TEXT_CHARS;
use webhook_processor::domain::msisdn::MSISDN_PATTERN;
use webhook_processor::domain::query::{DEFAULT_LIMIT, MAX_LIMIT};
use webhook_processor::http::signature::{SIGNATURE_HEADER, SIGNATURE_TIMESTAMP_HEADER};
use webhook_processor::signing::standard;

use crate::helpers::{TestApp, message, sign, spawn_app, spawn_app_with};
use crate::store::{Store, store_tests};

store_tests! {
    async the_errors_the_server_sends_are_documented_with_their_shape,
    async every_documented_operation_is_answered_and_other_methods_get_405,
}

const METHODS: [&str; 9] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace", "query",
];

/// The contract's operations; the document must list exactly these.
const CONTRACT: [(&str, &str); 12] = [
    ("post", "/webhook"),
    ("get", "/messages"),
    ("get", "/messages/export"),
    ("get", "/messages/feed"),
    ("get", "/messages/stream"),
    ("get", "/stats"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/docs/{file}"),
];

/// The settings under which `/webhook` reads, and so documents, every signature header.
pub const EVERY_SIGNATURE_HEADER: [(&str, &str); 2] = [
    (
        "STANDARD_WEBHOOK_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    ("X_SIGNATURE_TIMESTAMP", "optional"),
];

/// The document `app` serves, checked to be served as JSON.
pub async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    response.json().await.expect("the document is JSON")
}

/// Every `(method, path)` the document describes.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("paths is an object")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| ((*method).to_owned(), path.clone()))
        })
        .collect()
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let operation = &doc["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    operation
}

fn parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .expect("the operation has parameters")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("parameter {name} is documented"))
}

/// Follows a local `$ref` (`#/components/schemas/Name`) to what it names.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} resolves"))
        }
        None => value,
    }
}

/// Every `$ref` anywhere in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, found)),
        _ => {}
    }
}

#[actix_web::test]
async fn openapi_json_is_an_openapi_3_document_of_exactly_the_contract() {
    let app = spawn_app(Store::Sqlite).await;
    let doc = document(&app).await;

    let version = doc["openapi"].as_str().expect("openapi names the version");
    assert!(version.starts_with("3."), "OpenAPI 3: {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let expected: BTreeSet<_> = CONTRACT
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(operations(&doc), expected);

    // What makes the document usable by generators and viewers, beyond being JSON.
    let mut ids = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let op = operation(&doc, &method, &path);
        let at = format!("{method} {path}");
        assert!(op["summary"].is_string(), "{at} has a summary");
        let id = op["operationId"].as_str().expect("an operationId");
        assert!(
            ids.insert(id.to_owned()),
            "{at}: operationId {id} is unique"
        );
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{at} documents a response");
        for (status, response) in responses {
            assert!(
                status.len() == 3 && status.parse::<u16>().is_ok(),
                "{at}: {status}"
            );
            assert!(
                response["description"].is_string(),
                "{at} {status} has a description"
            );
            assert!(
                response["headers"]["X-Request-ID"].is_object(),
                "{at} {status} documents X-Request-ID"
            );
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            let place = p["in"].as_str().expect("a parameter says where it is");
            assert!(
                ["query", "header", "path", "cookie"].contains(&place),
                "{at}"
            );
            if place == "path" {
                assert_eq!(p["required"], true, "{at}: path parameters are required");
                assert!(path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())));
            }
        }
        for requirement in op["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    doc["components"]["securitySchemes"][scheme].is_object(),
                    "{at}: security scheme {scheme} is declared"
                );
            }
        }
    }
    let mut found = Vec::new();
    references(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in &found {
        let pointer = reference.strip_prefix('#').expect("only local references");
        assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
    }
}

#[actix_web::test]
async fn the_document_describes_parameters_bodies_errors_and_the_token() {
    let app = spawn_app_with(
        Store::Sqlite,
        &[
            ("API_TOKEN", "t0ken"),
            EVERY_SIGNATURE_HEADER[0],
            EVERY_SIGNATURE_HEADER[1],
        ],
    )
    .await;
    let doc = document(&app).await;

    let webhook = operation(&doc, "post", "/webhook");
    for header in [
        "X-Signature",
        "X-Signature-Timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "X-Request-ID",
    ] {
        assert_eq!(parameter(webhook, header)["in"], "header", "{header}");
    }
    let body = &webhook["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        resolve(&doc, body)["required"],
        serde_json::json!(["message_id", "from", "to", "ts"])
    );
    for status in ["200", "400", "401", "408", "413", "422", "503"] {
        assert!(
            webhook["responses"][status].is_object(),
            "/webhook {status}"
        );
    }
    assert!(
        webhook["responses"]["503"]["headers"]["Retry-After"].is_object(),
        "503 documents Retry-After"
    );

    let list = operation(&doc, "get", "/messages");
    for name in [
        "limit", "offset", "cursor", "from", "to", "since", "until", "q",
    ] {
        assert_eq!(parameter(list, name)["in"], "query", "{name}");
    }
    let export = operation(&doc, "get", "/messages/export");
    for name in ["from", "to", "since", "until", "q"] {
        assert_eq!(parameter(export, name)["in"], "query", "{name}");
    }
    assert!(export["responses"]["200"]["content"]["application/x-ndjson"].is_object());

    let page = resolve(
        &doc,
        &list["responses"]["200"]["content"]["application/json"]["schema"],
    );
    let page_fields: Vec<&String> = page["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        page_fields,
        ["data", "limit", "next_cursor", "offset", "total"]
    );

    // The two error shapes.
    let error = resolve(
        &doc,
        &list["responses"]["401"]["content"]["application/json"]["schema"],
    );
    assert_eq!(error["properties"]["detail"]["type"], "string");
    let invalid = resolve(
        &doc,
        &list["responses"]["422"]["content"]["application/json"]["schema"],
    );
    let problem = resolve(&doc, &invalid["properties"]["detail"]["items"]);
    for field in ["loc", "msg", "type"] {
        assert!(
            problem["properties"][field].is_object(),
            "validation errors have {field}"
        );
    }

    // The token (set here): required by the reads, not by /metrics, absent elsewhere.
    let scheme = &doc["components"]["securitySchemes"]["api_token"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    for path in ["/messages", "/messages/export", "/stats"] {
        assert_eq!(
            operation(&doc, "get", path)["security"],
            serde_json::json!([{"api_token": []}]),
            "{path}"
        );
    }
    for (method, path) in [
        ("get", "/metrics"),
        ("post", "/webhook"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ] {
        assert!(
            operation(&doc, method, path)["security"].is_null(),
            "{path} is open"
        );
    }
}

#[actix_web::test]
async fn the_documented_bounds_and_names_are_the_ones_the_code_checks() {
    let app = spawn_app_with(Store::Sqlite, &EVERY_SIGNATURE_HEADER).await;
    let doc = document(&app).await;

    let list = operation(&doc, "get", "/messages");
    let limit = &parameter(list, "limit")["schema"];
    assert_eq!(limit["minimum"], 1);
    assert_eq!(limit["maximum"], MAX_LIMIT);
    assert_eq!(limit["default"], DEFAULT_LIMIT);
    assert_eq!(parameter(list, "offset")["schema"]["minimum"], 0);
    for name in ["from", "to"] {
        assert_eq!(
            parameter(list, name)["schema"]["pattern"],
            MSISDN_PATTERN,
            "{name}"
        );
    }
    let message = &doc["components"]["schemas"]["Message"];
    assert_eq!(message["properties"]["from"]["pattern"], MSISDN_PATTERN);
    assert_eq!(message["properties"]["to"]["pattern"], MSISDN_PATTERN);
    assert_eq!(message["properties"]["text"]["maxLength"], MAX_TEXT_CHARS);

    let webhook = operation(&doc, "post", "/webhook");
    for header in [
        SIGNATURE_HEADER,
        SIGNATURE_TIMESTAMP_HEADER,
        standard::ID_HEADER,
        standard::TIMESTAMP_HEADER,
        standard::SIGNATURE_HEADER,
    ] {
        let documented = webhook["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"].as_str().unwrap().eq_ignore_ascii_case(header));
        assert!(
            documented,
            "the verifier reads {header}; the document names it"
        );
    }

    // Each documented /messages parameter that can be malformed is really read: a bad value is
    // a 422 at its name.
    for (name, bad) in [
        ("limit", "0"),
        ("offset", "-1"),
        ("cursor", "forged"),
        ("from", "123"),
        ("to", "abc"),
        ("since", "yesterday"),
        ("until", "2025-13-01T00:00:00Z"),
    ] {
        let (status, body) = app.get_json(&format!("/messages?{name}={bad}")).await;
        assert_eq!(status, 422, "{name}={bad}");
        assert_eq!(body["detail"][0]["loc"], serde_json::json!(["query", name]));
    }
}

async fn the_errors_the_server_sends_are_documented_with_their_shape(store: Store) {
    let app = spawn_app_with(
        store,
        &[("API_TOKEN", "t0ken"), ("METRICS_REQUIRE_TOKEN", "true")],
    )
    .await;
    let doc = document(&app).await;
    let valid =
        serde_json::to_vec(&message("m1", "+1", "+2", "2025-01-15T10:00:00Z", None)).unwrap();
    let invalid = br#"{"message_id": "", "from": "1"}"#.to_vec();
    let oversized = vec![b' '; 70 * 1024];
    let client = &app.client;
    let cases = [
        (
            "post",
            "/webhook",
            client.post(app.url("/webhook")).body(valid.clone()),
            401,
        ),
        (
            "post",
            "/webhook",
            client
                .post(app.url("/webhook"))
                .header("X-Signature", sign(&invalid))
                .body(invalid.clone()),
            422,
        ),
        (
            "post",
            "/webhook",
            client
                .post(app.url("/webhook"))
                .header("X-Signature", sign(&oversized))
                .body(oversized.clone()),
            413,
        ),
        (
            "post",
            "/webhook",
            client
                .post(app.url("/webhook"))
                .header("X-Signature", sign(&valid))
                .body(valid.clone()),
            200,
        ),
        ("get", "/messages", client.get(app.url("/messages")), 401),
        (
            "get",
            "/messages",
            client
                .get(app.url("/messages?limit=500"))
                .bearer_auth("t0ken"),
            422,
        ),
        (
            "get",
            "/messages",
            client.get(app.url("/messages")).bearer_auth("t0ken"),
            200,
        ),
        (
            "get",
            "/messages/export",
            client
                .get(app.url("/messages/export?since=x"))
                .bearer_auth("t0ken"),
            422,
        ),
        ("get", "/stats", client.get(app.url("/stats")), 401),
        ("get", "/metrics", client.get(app.url("/metrics")), 401),
        (
            "get",
            "/docs/{file}",
            client.get(app.url("/docs/secrets.txt")),
            404,
        ),
    ];
    for (method, path, request, expected) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(status, expected, "{method} {path}");
        let documented = &operation(&doc, method, path)["responses"][status.to_string()];
        assert!(documented.is_object(), "{method} {path} documents {status}");
        for header in documented["headers"].as_object().unwrap().keys() {
            assert!(
                response.headers().contains_key(header.as_str()),
                "{method} {path} {status} sends the documented {header}"
            );
        }
        let schema = resolve(&doc, &documented["content"]["application/json"]["schema"]);
        let body: Value = response.json().await.unwrap();
        if status >= 400 {
            let detail_type = &schema["properties"]["detail"]["type"];
            let sent = match &body["detail"] {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                other => panic!("{method} {path} {status}: `detail` is {other}: {body}"),
            };
            assert_eq!(detail_type, sent, "{method} {path} {status}: {body}");
        }
    }
}

async fn every_documented_operation_is_answered_and_other_methods_get_405(store: Store) {
    let app = spawn_app(store).await;
    let doc = document(&app).await;

    for (method, path) in operations(&doc) {
        let op = operation(&doc, &method, &path);
        let mut url = path.clone();
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let name = p["name"].as_str().unwrap();
                let example = p["example"]
                    .as_str()
                    .expect("path parameters have an example");
                url = url.replace(&format!("{{{name}}}"), example);
            }
        }
        let response = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{method} {url} is served: {status}"
        );
        assert!(
            op["responses"][status.to_string()].is_object(),
            "{method} {url}: the answer {status} is documented"
        );

        let documented: Vec<String> = METHODS
            .iter()
            .filter(|m| doc["paths"][&path].get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        for other in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if documented.iter().any(|m| m == other) {
                continue;
            }
            let response = app
                .client
                .request(other.parse().unwrap(), app.url(&url))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 405, "{other} {url}");
            let mut allow = documented.clone();
            if documented.iter().any(|m| m == "GET") {
                allow.push("HEAD".to_owned());
            }
            allow.push("OPTIONS".to_owned());
            assert_eq!(
                response.headers()["allow"],
                allow.join(", "),
                "{other} {url}"
            );
        }
    }
}

/// Where the source registers a route, as `(method, path)`; `None` for the method when the
/// registration does not say (a `resource`, `scope` or `route` call).
fn registrations_in(source: &str) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    for (at, _) in source.match_indices("(\"/") {
        let before = &source[..at];
        let path_end = source[at + 2..].find('"').expect("a closed string") + at + 2;
        let path = source[at + 2..path_end].to_owned();
        let word_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &before[word_start..];
        let attribute = before[..word_start].ends_with("#[");
        match word {
            "get" | "post" | "put" | "patch" | "delete" | "head" | "options" | "trace"
                if attribute =>
            {
                found.push((Some(word.to_owned()), path));
            }
            "route" | "resource" | "scope" | "new" | "external_resource" => {
                found.push((None, path));
            }
            _ => {}
        }
    }
    found
}

fn rust_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[actix_web::test]
async fn every_route_in_the_source_is_in_the_openapi_document() {
    let app = spawn_app(Store::Sqlite).await;
    let doc = document(&app).await;
    let documented = operations(&doc);

    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut routes = 0;
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for (method, path) in registrations_in(&source) {
            let Some(method) = method else {
                panic!(
                    "{}: registers {path} outside `http::endpoints`, so the OpenAPI document \
                     cannot describe it; give it a handler with #[utoipa::path] and register that",
                    file.display()
                );
            };
            assert!(
                documented.contains(&(method.clone(), path.clone())),
                "{}: {method} {path} is served but not in /openapi.json",
                file.display()
            );
            routes += 1;
        }
    }
    assert_eq!(routes, CONTRACT.len(), "the scan found every route handler");
}

#[test]
fn the_source_scan_finds_each_kind_of_registration() {
    let source = r#"
        #[get("/a")] async fn a() {}
        #[post("/b/{id}")] async fn b() {}
        cfg.route("/c", web::get().to(c));
        App::new().service(web::resource("/d"));
        web::scope("/e");
        let text = format!("see (\"/x\")");
    "#;
    assert_eq!(
        registrations_in(source),
        [
            (Some("get".to_owned()), "/a".to_owned()),
            (Some("post".to_owned()), "/b/{id}".to_owned()),
            (None, "/c".to_owned()),
            (None, "/d".to_owned()),
            (None, "/e".to_owned()),
        ]
    );
}

#[actix_web::test]
async fn the_document_and_the_docs_need_no_token_even_when_one_is_set() {
    let app = spawn_app_with(
        Store::Sqlite,
        &[("API_TOKEN", "t0ken"), ("METRICS_REQUIRE_TOKEN", "true")],
    )
    .await;
    for path in ["/openapi.json", "/docs", "/docs/swagger-ui.css"] {
        assert_eq!(app.get(path).await.status().as_u16(), 200, "{path}");
    }
}

/// The values of `attribute="..."` in an HTML page.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn docs_is_an_html_page_that_loads_only_files_of_this_service() {
    let app = spawn_app(Store::Sqlite).await;
    let response = app.get("/docs").await;
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(
        !policy.contains("http"),
        "the policy allows no other origin: {policy}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("<div id=\"swagger-ui\">"));

    let mut loaded = attribute_values(&html, "src");
    loaded.extend(attribute_values(&html, "href"));
    assert!(loaded.len() >= 4, "{loaded:?}");
    for url in &loaded {
        assert!(
            !url.contains(':') && !url.starts_with('/') && url.starts_with("docs/"),
            "{url} is a relative URL under /docs/"
        );
        let file = app.get(&format!("/{url}")).await;
        assert_eq!(file.status().as_u16(), 200, "{url}");
        let kind = file.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = match url.rsplit('.').next().unwrap() {
            "js" => "javascript",
            "css" => "text/css",
            "png" => "image/png",
            other => panic!("unexpected file type {other}"),
        };
        assert!(kind.contains(expected), "{url}: {kind}");
    }

    let initializer = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "openapi.json""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    assert!(!initializer.contains("://"), "{initializer}");
}
