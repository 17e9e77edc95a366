//! All configuration, read once at startup from the environment into one [`Config`].
//!
//! A `.env` file in the working directory is loaded first when present; variables already set in
//! the environment win. Every value is checked here, so a bad setting stops the process at
//! startup with one clear line instead of failing later.
//!
//! Each setting is declared once, in the `settings!` block below: its field, its type, its
//! default and what it means. The [`Config`] field, the [`SETTINGS`] table `--help` prints, and
//! (through a test) the README's configuration table all come from that one line. A default is
//! written as the text an operator would set, and an absent variable is read as if it had that
//! text, through the same parser as the environment: the documented default is the real one.

mod setting;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use setting::{Setting, WhenAbsent, settings_help};
use setting::{ascii_upper_case, settings};
use values::StandardKeys;
pub use values::{LogLevel, STRONG_SECRET_BYTES, Secret, TimestampMode};

use crate::signing::standard;
use crate::storage::{DatabaseUrl, Opening, StoreSettings};

settings! {
    /// The service's settings, each read from the environment variable named like its field,
    /// upper-cased. Built only by [`Config::from_vars`] and [`Config::from_env`], which validate
    /// it.
    #[derive(Debug, Deserialize)]
    pub struct Config {
        /// The Standard Webhooks keys, decoded once while validating.
        #[serde(skip)]
        standard_keys: Option<StandardKeys>,
    }

    #[serde(deserialize_with = "required_secret")]
    webhook_secret: Secret = Required,
        "HMAC-SHA256 key senders sign `X-Signature` with; non-empty; never logged";
    database_url: DatabaseUrl = Text("sqlite:///./data/app.db"),
        "`sqlite:///relative/path` or `sqlite:////absolute/path` (the folder is created when \
        missing), or `postgres://user:password@host:port/dbname` with libpq's options \
        (`sslmode` `disable`, `prefer`, `require`, `verify-ca` or `verify-full`, \
        `application_name`, `connect_timeout`, ...)";
    database_ca_file: Option<PathBuf> = Unset,
        "PostgreSQL: a PEM file of the CA certificate(s) to check the server's certificate \
        against, instead of the system's trusted roots";
    write_timeout_ms: u64 = Text("10000"),
        "PostgreSQL: the longest a write transaction may take; past it the batch is answered \
        `503` and the connection made again";
    log_level: LogLevel = Text("INFO"),
        "`DEBUG`, `INFO`, `WARNING` (or `WARN`), `ERROR`, any case";
    host: String = Text("0.0.0.0"),
        "listen address";
    port: u16 = Text("8000"),
        "listen port (`0` picks a free one and logs it)";
    workers: usize = Computed("(number of CPUs)", number_of_cpus),
        "HTTP worker threads";
    readers: usize = Computed("(number of CPUs)", number_of_cpus),
        "reader threads (one read-only connection each)";
    store_queue_capacity: usize = Text("8192"),
        "messages waiting for the writer before ingest answers 503";
    store_max_batch: usize = Text("1024"),
        "most messages committed in one transaction";
    max_body_bytes: usize = Text("65536"),
        "largest accepted webhook body";
    shutdown_delay_secs: u64 = Text("0"),
        "on SIGTERM, how long to keep serving, with `/health/ready` answering `503` and every \
        answer closing its connection, before no longer accepting: the time load balancers \
        need to stop sending here (see Running several replicas); `0` for a single replica";
    shutdown_timeout_secs: u64 = Text("20"),
        "how long a stop waits for in-flight requests";
    health_probe_interval_ms: u64 = Text("500"),
        "how often readiness re-checks that the database takes writes";
    client_timeout_secs: u64 = Text("10"),
        "time allowed for a request's headers, and then for its body (`408` after)";
    read_timeout_ms: u64 = Text("5000"),
        "the longest a read may run inside the database; past it the work is stopped and the \
        client answered `503` + `Retry-After`";
    webhook_secret_previous: Option<Secret> = Unset,
        "during a secret rotation, the old secret, still accepted";
    standard_webhook_secret: Option<Secret> = Unset,
        "a `whsec_…` secret; when set, Standard Webhooks signatures are accepted beside \
        `X-Signature`";
    standard_webhook_secret_previous: Option<Secret> = Unset,
        "the old `whsec_…` secret during a rotation";
    signature_tolerance_secs: u64 = Text("300"),
        "how far a signed timestamp may be from now, either way";
    x_signature_timestamp: TimestampMode = Text("off"),
        "`off`, `optional` or `required`: replay protection for `X-Signature` senders";
    retention_days: Option<u32> = Unset,
        "when set, messages whose `ts` is older than this many days are deleted in the \
        background";
    retention_interval_secs: u64 = Text("60"),
        "how often the retention sweep starts";
    api_token: Option<Secret> = Unset,
        "when set, `/messages`, `/messages/export` and `/stats` require \
        `Authorization: Bearer <token>`; unset logs a warning";
    metrics_require_token: bool = Text("false"),
        "also require the token for `/metrics`";
}

/// The default of `WORKERS` and `READERS`.
fn number_of_cpus() -> String {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .to_string()
}

/// A configuration problem, worded for the operator.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads `.env` (when present) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        load_dot_env()?;
        Self::from_vars(std::env::vars())
    }

    /// Reads the settings from `(NAME, value)` pairs, as if they were the environment.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        deserialize::<Self>(vars)?.validate()
    }

    fn validate(mut self) -> Result<Self, ConfigError> {
        // An empty optional secret means "not set", as deployment tools often write them.
        for secret in [
            &mut self.webhook_secret_previous,
            &mut self.standard_webhook_secret,
            &mut self.standard_webhook_secret_previous,
            &mut self.api_token,
        ] {
            if secret.as_ref().is_some_and(|s| s.0.is_empty()) {
                *secret = None;
            }
        }
        for (name, secret) in [
            ("WEBHOOK_SECRET", Some(&self.webhook_secret)),
            (
                "WEBHOOK_SECRET_PREVIOUS",
                self.webhook_secret_previous.as_ref(),
            ),
            ("API_TOKEN", self.api_token.as_ref()),
        ] {
            if secret.is_some_and(Secret::is_placeholder) {
                return Err(ConfigError(format!(
                    "{name} is the placeholder from the documentation: set a real secret \
                     (for example `openssl rand -hex 32`)"
                )));
            }
        }
        self.standard_keys = self.decode_standard_keys()?;
        let at_least_one = [
            ("WORKERS", self.workers),
            ("READERS", self.readers),
            ("STORE_QUEUE_CAPACITY", self.store_queue_capacity),
            ("STORE_MAX_BATCH", self.store_max_batch),
            ("MAX_BODY_BYTES", self.max_body_bytes),
            (
                "HEALTH_PROBE_INTERVAL_MS",
                self.health_probe_interval_ms as usize,
            ),
            ("CLIENT_TIMEOUT_SECS", self.client_timeout_secs as usize),
            ("WRITE_TIMEOUT_MS", self.write_timeout_ms as usize),
            ("READ_TIMEOUT_MS", self.read_timeout_ms as usize),
            (
                "RETENTION_DAYS",
                self.retention_days.map_or(1, |d| d as usize),
            ),
            (
                "RETENTION_INTERVAL_SECS",
                self.retention_interval_secs as usize,
            ),
        ];
        for (name, value) in at_least_one {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        Ok(self)
    }

    /// What an operator should hear at startup about this configuration: weak secrets (shorter
    /// than [`STRONG_SECRET_BYTES`]) and reads open to anyone.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (name, secret) in [
            ("WEBHOOK_SECRET", Some(&self.webhook_secret)),
            (
                "WEBHOOK_SECRET_PREVIOUS",
                self.webhook_secret_previous.as_ref(),
            ),
            ("API_TOKEN", self.api_token.as_ref()),
        ] {
            if secret.is_some_and(|s| s.0.len() < STRONG_SECRET_BYTES) {
                warnings.push(format!(
                    "{name} is shorter than {STRONG_SECRET_BYTES} bytes: a short secret can be \
                     guessed; use a random one (for example `openssl rand -hex 32`)"
                ));
            }
        }
        if self.api_token.is_none() {
            warnings.push(
                "API_TOKEN is not set: /messages, /messages/export and /stats are open to \
                 anyone who can reach them"
                    .to_owned(),
            );
        }
        warnings
    }

    /// The Standard Webhooks keys, when both secrets that are set decode; an error names the
    /// variable at fault.
    fn decode_standard_keys(&self) -> Result<Option<StandardKeys>, ConfigError> {
        let decode = |name: &str, secret: &Option<Secret>| {
            secret
                .as_ref()
                .map(|secret| standard::decode_secret(&secret.0))
                .transpose()
                .map_err(|e| ConfigError(format!("{name} {e}")))
        };
        let current = decode("STANDARD_WEBHOOK_SECRET", &self.standard_webhook_secret)?;
        let previous = decode(
            "STANDARD_WEBHOOK_SECRET_PREVIOUS",
            &self.standard_webhook_secret_previous,
        )?;
        match current {
            Some(current) => Ok(Some(StandardKeys { current, previous })),
            None if previous.is_some() => Err(ConfigError(
                "STANDARD_WEBHOOK_SECRET_PREVIOUS needs STANDARD_WEBHOOK_SECRET".to_owned(),
            )),
            None => Ok(None),
        }
    }

    /// The key bytes of the Standard Webhooks secrets (the current one, then the previous one
    /// during a rotation), when that scheme is enabled.
    pub fn standard_webhook_keys(&self) -> Option<(&[u8], Option<&[u8]>)> {
        let keys = self.standard_keys.as_ref()?;
        Some((&keys.current, keys.previous.as_deref()))
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.client_timeout_secs)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }

    pub fn health_probe_interval(&self) -> Duration {
        Duration::from_millis(self.health_probe_interval_ms)
    }

    /// The longest a read may run inside the database.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    /// How the service opens and works its store.
    pub fn store_settings(&self) -> StoreSettings {
        StoreSettings {
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            ca_file: given_path(&self.database_ca_file),
            ..StoreSettings::new(Opening::CreateIfMissing)
        }
        .reading_within(self.read_timeout())
    }

    /// How long messages are kept and how often the sweep runs, when retention is on.
    pub fn retention(&self) -> Option<Retention> {
        self.retention_days.map(|days| Retention {
            max_age: Duration::from_secs(u64::from(days) * 86_400),
            interval: Duration::from_secs(self.retention_interval_secs),
        })
    }
}

/// A path setting, where an empty value means unset, as deployment tools often write them.
fn given_path(path: &Option<PathBuf>) -> Option<PathBuf> {
    path.clone().filter(|path| !path.as_os_str().is_empty())
}

/// The retention policy: delete messages whose `ts` is older than `max_age`, checking every
/// `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub interval: Duration,
}

/// Loads `.env` from the working directory when there is one; set variables are kept.
fn load_dot_env() -> Result<(), ConfigError> {
    // Only the working directory: a `.env` in some parent folder is not this service's.
    match dotenvy::from_path(".env") {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(dotenvy::Error::LineParse(line, _)) => {
            let content = std::fs::read_to_string(".env").unwrap_or_default();
            Err(ConfigError(unparsable_line(&content, &line)))
        }
        Err(e) => Err(ConfigError(format!(".env: {e}"))),
    }
}

/// The error for a line of `content` that could not be parsed: it names the file and the
/// line's number, never the line, which may hold a secret.
fn unparsable_line(content: &str, line: &str) -> String {
    match content.find(line) {
        Some(at) => {
            let number = content[..at].matches('\n').count() + 1;
            format!(".env: line {number} cannot be parsed (its content is not shown)")
        }
        None => ".env: a line cannot be parsed (its content is not shown)".to_owned(),
    }
}

/// Reads `T` from the variables, where every absent setting that has a default reads as if its
/// variable were set to that default, so a default goes through the same parser as a value from
/// the environment.
fn deserialize<T: serde::de::DeserializeOwned>(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    for setting in SETTINGS {
        // envy matches a variable to a field by its lower-cased name: so does this.
        let name = setting.name.to_lowercase();
        if vars.iter().any(|(given, _)| given.to_lowercase() == name) {
            continue;
        }
        if let Some(value) = setting.when_absent.value() {
            vars.push((setting.name.to_owned(), value));
        }
    }
    envy::from_iter(vars).map_err(|e| match e {
        envy::Error::MissingValue(field) => {
            ConfigError(format!("{} is required", field.to_uppercase()))
        }
        envy::Error::Custom(message) => ConfigError(message),
    })
}

/// Reads the part of the configuration a command needs from `.env` (when present) and then the
/// process environment.
fn partial_from_env<T: serde::de::DeserializeOwned>() -> Result<T, ConfigError> {
    load_dot_env()?;
    deserialize(std::env::vars())
}

/// `WEBHOOK_SECRET`, which must not be empty wherever it is read.
fn required_secret<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    let secret = Secret::deserialize(deserializer)?;
    if secret.0.is_empty() {
        return Err(serde::de::Error::custom("WEBHOOK_SECRET must not be empty"));
    }
    Ok(secret)
}

/// The part of the configuration the `healthcheck` command needs: where the service listens.
/// Read like [`Config`], with the same defaults.
#[derive(Debug, Deserialize)]
pub struct ServiceAddress {
    pub host: String,
    pub port: u16,
}

impl ServiceAddress {
    pub fn from_env() -> Result<Self, ConfigError> {
        partial_from_env()
    }

    /// The address to connect to: a wildcard listen address means this machine.
    pub fn connect_host(&self) -> &str {
        match self.host.as_str() {
            "" | "0.0.0.0" => "127.0.0.1",
            "::" | "[::]" => "::1",
            host => host,
        }
    }
}

/// The part of the configuration the `export` and `import` commands need. Read like
/// [`Config`], with the same default.
#[derive(Debug, Deserialize)]
pub struct DatabaseLocation {
    pub database_url: DatabaseUrl,
    pub database_ca_file: Option<PathBuf>,
    pub write_timeout_ms: u64,
    pub read_timeout_ms: u64,
}

impl DatabaseLocation {
    pub fn from_env() -> Result<Self, ConfigError> {
        partial_from_env()
    }

    /// How a command opens the store.
    pub fn store_settings(&self, opening: Opening) -> StoreSettings {
        StoreSettings {
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            ca_file: given_path(&self.database_ca_file),
            ..StoreSettings::new(opening)
        }
        .reading_within(Duration::from_millis(self.read_timeout_ms))
    }
}

/// The part of the configuration the `sign` command needs. Read like [`Config`].
#[derive(Debug, Deserialize)]
pub struct SigningSecret {
    #[serde(deserialize_with = "required_secret")]
    pub webhook_secret: Secret,
}

impl SigningSecret {
    pub fn from_env() -> Result<Self, ConfigError> {
        partial_from_env()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn only_the_secret_is_required() {
        let config = config(&[("WEBHOOK_SECRET", "s")]).unwrap();
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite(std::path::PathBuf::from("./data/app.db"))
        );
        assert_eq!(config.log_level, LogLevel::Info);
        assert_eq!((config.host.as_str(), config.port), ("0.0.0.0", 8000));
        assert_eq!(config.max_body_bytes, 65536);
    }

    #[test]
    fn a_missing_or_empty_secret_is_a_clear_error() {
        assert_eq!(
            config(&[]).unwrap_err().to_string(),
            "WEBHOOK_SECRET is required"
        );
        assert!(
            config(&[("WEBHOOK_SECRET", "")])
                .unwrap_err()
                .to_string()
                .contains("WEBHOOK_SECRET must not be empty")
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let config = config(&[
            ("WEBHOOK_SECRET", "hunter2"),
            ("WEBHOOK_SECRET_PREVIOUS", "hunter1"),
            ("API_TOKEN", "tok3n"),
            ("STANDARD_WEBHOOK_SECRET", STANDARD_SECRET),
        ])
        .unwrap();
        let debug = format!("{config:?}");
        for secret in ["hunter2", "hunter1", "tok3n", STANDARD_SECRET] {
            assert!(!debug.contains(secret), "{secret} leaked");
        }
        let key = standard::decode_secret(STANDARD_SECRET).unwrap();
        let key = format!("{key:?}");
        assert!(
            !debug.contains(&key[1..key.len() - 1]),
            "the decoded key leaked"
        );
    }

    #[test]
    fn optional_secrets_left_empty_are_unset_and_standard_ones_must_decode() {
        let unset = config(&[
            ("WEBHOOK_SECRET", "s"),
            ("WEBHOOK_SECRET_PREVIOUS", ""),
            ("API_TOKEN", ""),
        ])
        .unwrap();
        assert!(unset.webhook_secret_previous.is_none() && unset.api_token.is_none());
        assert!(unset.standard_webhook_keys().is_none());
        let error = config(&[
            ("WEBHOOK_SECRET", "s"),
            ("STANDARD_WEBHOOK_SECRET", "whsec_!!"),
        ])
        .unwrap_err();
        assert!(
            error.to_string().starts_with("STANDARD_WEBHOOK_SECRET "),
            "{error}"
        );
        let standard = config(&[
            ("WEBHOOK_SECRET", "s"),
            ("STANDARD_WEBHOOK_SECRET", STANDARD_SECRET),
        ])
        .unwrap();
        assert_eq!(standard.standard_webhook_keys().unwrap().0.len(), 24);
    }

    #[test]
    fn timestamp_mode_is_off_unless_asked() {
        assert_eq!(
            config(&[("WEBHOOK_SECRET", "s")])
                .unwrap()
                .x_signature_timestamp,
            TimestampMode::Off
        );
        let required = config(&[
            ("WEBHOOK_SECRET", "s"),
            ("X_SIGNATURE_TIMESTAMP", "required"),
        ]);
        assert_eq!(
            required.unwrap().x_signature_timestamp,
            TimestampMode::Required
        );
        assert!(config(&[("WEBHOOK_SECRET", "s"), ("X_SIGNATURE_TIMESTAMP", "maybe")]).is_err());
    }

    #[test]
    fn every_documented_default_is_the_real_default() {
        let baseline = format!("{:?}", config(&[("WEBHOOK_SECRET", "s")]).unwrap());
        for setting in SETTINGS {
            let WhenAbsent::Text(default) = setting.when_absent else {
                continue;
            };
            let explicit = config(&[("WEBHOOK_SECRET", "s"), (setting.name, default)]);
            assert_eq!(
                format!("{:?}", explicit.unwrap()),
                baseline,
                "{} documents {:?}",
                setting.name,
                setting.default
            );
        }
    }

    /// A setting's row in the README's configuration table: a default value is code, a note in
    /// parentheses is not.
    fn readme_row(setting: &Setting) -> String {
        let default = match setting.when_absent {
            WhenAbsent::Text(value) => format!("`{value}`"),
            _ => setting.default.to_owned(),
        };
        format!("| `{}` | {default} | {} |", setting.name, setting.meaning)
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../README.md");
        for setting in SETTINGS {
            let row = readme_row(setting);
            assert!(
                readme.lines().any(|line| line == row),
                "README's configuration table lacks this row for {}:\n{row}",
                setting.name
            );
        }
        let rows: Vec<String> = SETTINGS.iter().map(readme_row).collect();
        let table = format!(
            "| variable | default | meaning |\n|---|---|---|\n{}\n\n",
            rows.join("\n")
        );
        assert!(
            readme.contains(&table),
            "README's configuration table has other rows or another order; it should read:\n{table}"
        );
    }

    #[test]
    fn the_read_timeout_defaults_to_the_stores_default() {
        let settings = config(&[("WEBHOOK_SECRET", "s")]).unwrap().store_settings();
        assert_eq!(settings.read_timeout, crate::storage::DEFAULT_READ_TIMEOUT);
        assert!(config(&[("WEBHOOK_SECRET", "s"), ("READ_TIMEOUT_MS", "0")]).is_err());
    }

    #[test]
    fn the_documented_placeholder_secrets_are_refused() {
        let example = include_str!("../../k8s/secret.example.yaml");
        let placeholder = example
            .lines()
            .find_map(|line| line.trim().strip_prefix("WEBHOOK_SECRET: "))
            .expect("the example Secret holds a placeholder");
        for name in ["WEBHOOK_SECRET", "WEBHOOK_SECRET_PREVIOUS", "API_TOKEN"] {
            let mut vars = vec![(name, placeholder)];
            if name != "WEBHOOK_SECRET" {
                vars.push(("WEBHOOK_SECRET", "a-real-secret"));
            }
            let error = config(&vars).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("{name} is the placeholder")),
                "{error}"
            );
            assert!(
                !error.contains(placeholder),
                "the value is not echoed: {error}"
            );
        }
    }

    #[test]
    fn short_secrets_and_open_reads_are_warned_about_not_refused() {
        let strong = "s".repeat(STRONG_SECRET_BYTES);
        let quiet = config(&[("WEBHOOK_SECRET", &strong), ("API_TOKEN", &strong)]).unwrap();
        assert!(quiet.warnings().is_empty(), "{:?}", quiet.warnings());
        let weak = config(&[("WEBHOOK_SECRET", "short")]).unwrap();
        let warnings = weak.warnings();
        assert!(warnings[0].starts_with("WEBHOOK_SECRET is shorter than 32 bytes"));
        assert!(warnings[1].contains("/messages, /messages/export and /stats"));
        assert!(!warnings.iter().any(|w| w.contains("short\"")));
    }

    #[test]
    fn an_unparsable_env_line_is_named_by_its_number_never_shown() {
        let content = "PORT=8000\nWEBHOOK_SECRET=\"hunter2\nLOG_LEVEL=INFO\n";
        let line = "WEBHOOK_SECRET=\"hunter2\nLOG_LEVEL=INFO\n";
        let error = unparsable_line(content, line);
        assert_eq!(
            error,
            ".env: line 2 cannot be parsed (its content is not shown)"
        );
    }

    #[test]
    fn a_variable_set_in_any_case_wins_over_the_default() {
        let config = config(&[("WEBHOOK_SECRET", "s"), ("port", "9000")]).unwrap();
        assert_eq!(config.port, 9000);
    }

    #[test]
    fn log_levels_are_case_insensitive() {
        for (value, level) in [
            ("debug", LogLevel::Debug),
            ("Info", LogLevel::Info),
            ("WARNING", LogLevel::Warning),
            ("warn", LogLevel::Warning),
            ("ERROR", LogLevel::Error),
        ] {
            let config = config(&[("WEBHOOK_SECRET", "s"), ("LOG_LEVEL", value)]).unwrap();
            assert_eq!(config.log_level, level);
        }
        assert!(config(&[("WEBHOOK_SECRET", "s"), ("LOG_LEVEL", "loud")]).is_err());
    }

    #[test]
    fn numbers_must_parse_and_be_positive() {
        assert!(config(&[("WEBHOOK_SECRET", "s"), ("PORT", "http")]).is_err());
        assert!(config(&[("WEBHOOK_SECRET", "s"), ("WORKERS", "0")]).is_err());
    }
}
