//! The types of setting values that are more than a number or a text: secrets (never shown in
//! `Debug`), the replay-protection mode, the log level.

use std::fmt;

use serde::{Deserialize, Deserializer};
use tracing::level_filters::LevelFilter;

/// The decoded Standard Webhooks keys. Its `Debug` output never shows them.
pub(super) struct StandardKeys {
    pub(super) current: Vec<u8>,
    pub(super) previous: Option<Vec<u8>>,
}

impl fmt::Debug for StandardKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StandardKeys([redacted])")
    }
}

/// A secret value (signing key, token). Its `Debug` output never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub(super) String);

/// Secrets shorter than this many bytes are warned about at startup (not refused).
pub const STRONG_SECRET_BYTES: usize = 32;

/// What the documentation's placeholders for secrets start with (`k8s/secret.example.yaml`):
/// a secret holding it was copied without being replaced.
const PLACEHOLDER: &str = "replace-me";

impl Secret {
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether this is a placeholder from the documentation rather than a secret.
    pub(super) fn is_placeholder(&self) -> bool {
        self.0.to_ascii_lowercase().contains(PLACEHOLDER)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Replay protection for `X-Signature` senders, by an `X-Signature-Timestamp` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampMode {
    /// The header is ignored; the signature covers the body (the original contract).
    #[default]
    Off,
    /// When the header is present, the signature covers `{timestamp}.{body}` and the timestamp
    /// must be within the tolerance; requests without it are verified as with `off`.
    Optional,
    /// The header must be present and is checked as with `optional`.
    Required,
}

/// The least severe log level written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warning,
    Error,
}

impl LogLevel {
    pub fn filter(self) -> LevelFilter {
        match self {
            Self::Debug => LevelFilter::DEBUG,
            Self::Info => LevelFilter::INFO,
            Self::Warning => LevelFilter::WARN,
            Self::Error => LevelFilter::ERROR,
        }
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        match value.to_ascii_uppercase().as_str() {
            "DEBUG" => Ok(Self::Debug),
            "INFO" => Ok(Self::Info),
            "WARNING" | "WARN" => Ok(Self::Warning),
            "ERROR" => Ok(Self::Error),
            _ => Err(serde::de::Error::custom(format!(
                "LOG_LEVEL {value:?}: expected DEBUG, INFO, WARNING or ERROR"
            ))),
        }
    }
}
