//! `spawn_app()` and the small tools every test uses.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use webhook_processor::config::Config;
use webhook_processor::startup::Application;

use crate::store::{Store, TestDatabase};

pub const SECRET: &str = "testsecret";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// The database it runs on. Tests look at what is stored through the API
    /// ([`TestApp::stored_messages`]), except those about a store itself.
    pub database: TestDatabase,
    /// The `API_TOKEN` the app runs with, if any.
    api_token: Option<String>,
}

/// Starts the app with the default test settings on a fresh database of `store`.
pub async fn spawn_app(store: Store) -> TestApp {
    spawn_app_with(store, &[]).await
}

/// Starts the app on a fresh database of `store`; `overrides` are extra environment-style
/// settings.
pub async fn spawn_app_with(store: Store, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestDatabase::new(store), overrides).await
}

/// Starts the app on `database`, which may already hold data.
pub async fn spawn_app_on(database: TestDatabase, overrides: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("WEBHOOK_SECRET".to_owned(), SECRET.to_owned()),
        ("DATABASE_URL".to_owned(), database.url()),
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("WORKERS".to_owned(), "2".to_owned()),
        ("READERS".to_owned(), "2".to_owned()),
        ("HEALTH_PROBE_INTERVAL_MS".to_owned(), "200".to_owned()),
    ];
    for (name, value) in overrides {
        vars.retain(|(existing, _)| existing != name);
        vars.push(((*name).to_owned(), (*value).to_owned()));
    }
    let api_token = vars
        .iter()
        .find(|(name, value)| name == "API_TOKEN" && !value.is_empty())
        .map(|(_, token)| token.clone());
    let config = Config::from_vars(vars).expect("valid test configuration");
    let app = Application::build(config).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        database,
        api_token,
    }
}

/// True when the long variants were asked for (`FAULTS_LONG=1`).
pub fn long_run() -> bool {
    std::env::var("FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// The hex HMAC-SHA256 of `body` under `secret`.
pub fn sign_with(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn sign(body: &[u8]) -> String {
    sign_with(SECRET, body)
}

/// A valid message body; `id` and `ts` vary per test.
pub fn message(id: &str, from: &str, to: &str, ts: &str, text: Option<&str>) -> Value {
    json!({"message_id": id, "from": from, "to": to, "ts": ts, "text": text})
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs raw bytes to /webhook with the given signature header (none when `None`).
    pub async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/webhook")).body(body);
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        request.send().await.expect("the request is answered")
    }

    /// A correctly signed POST of `body` to /webhook, ready to send.
    pub fn signed_request(&self, body: &Value) -> reqwest::RequestBuilder {
        let bytes = serde_json::to_vec(body).expect("serializable");
        let signature = sign(&bytes);
        self.client
            .post(self.url("/webhook"))
            .header("X-Signature", signature)
            .body(bytes)
    }

    /// POSTs a correctly signed JSON body.
    pub async fn post_signed(&self, body: &Value) -> reqwest::Response {
        self.signed_request(body)
            .send()
            .await
            .expect("the request is answered")
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("the request is answered")
    }

    /// The ids `GET /messages{query}` lists, in order, and its `total`; the answer must be 200.
    pub async fn listed_ids(&self, query: &str) -> (Vec<String>, u64) {
        let (status, body) = self.get_json(&format!("/messages{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let ids = body["data"]
            .as_array()
            .expect("data is a list")
            .iter()
            .map(|m| m["message_id"].as_str().expect("an id").to_owned())
            .collect();
        (ids, body["total"].as_u64().expect("a total"))
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.get(path_and_query).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Every stored message, as `GET /messages/export` lists them (in listing order): what is
    /// really stored, seen the way any store shows it.
    pub async fn stored_messages(&self) -> Vec<Value> {
        let mut request = self.client.get(self.url("/messages/export"));
        if let Some(token) = &self.api_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the export is answered");
        assert_eq!(response.status().as_u16(), 200, "the export succeeds");
        let text = response.text().await.expect("the export is read");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is a message"))
            .collect()
    }

    /// How many messages are stored.
    pub async fn stored_count(&self) -> usize {
        self.stored_messages().await.len()
    }

    /// Waits up to `seconds` for `/health/ready` to answer `status`.
    pub async fn wait_for_readiness(&self, status: u16, seconds: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while std::time::Instant::now() < deadline {
            if self.get("/health/ready").await.status().as_u16() == status {
                return true;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }
}

/// Asserts the FastAPI validation shape and returns the `(loc, type)` pairs.
pub fn validation_errors(body: &Value) -> Vec<(Vec<String>, String)> {
    body["detail"]
        .as_array()
        .expect("detail is a list")
        .iter()
        .map(|e| {
            assert!(e["msg"].is_string(), "every error has a msg: {e}");
            let loc = e["loc"]
                .as_array()
                .expect("loc is a list")
                .iter()
                .map(|p| p.as_str().expect("loc parts are strings").to_owned())
                .collect();
            (
                loc,
                e["type"].as_str().expect("type is a string").to_owned(),
            )
        })
        .collect()
}

/// The value of one series (name and labels exactly as printed) in a Prometheus text page.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}
