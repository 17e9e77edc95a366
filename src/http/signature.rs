//! `VerifiedBody`: the raw request body, extracted only when its signature is valid.
//!
//! The signature headers are checked for shape (and a signed timestamp for freshness) before
//! the body is read. The body is read once, within `CLIENT_TIMEOUT_SECS` and never past the size
//! limit (a `Content-Length` over it is refused before reading). Its HMAC is compared in
//! constant time before anything parses it. Every failure is the same `401 invalid signature`
//! to the sender; the log line says which check failed (at most a few such lines a second:
//! any client can cause them; the metrics count every one). A body sent with a `Content-Encoding`
//! other than `identity` is refused (`415`) before anything else: it is never decompressed,
//! and its encoded bytes are not the contract's JSON.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap};
use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use utoipa::IntoParams;

use super::log_budget::LogBudget;
use crate::config::{Config, TimestampMode};
use crate::domain::timestamp::now_secs;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::signing::{KeyRing, SecretSlot, decode_hex_signature, standard, timestamp_is_fresh};

/// The header carrying the hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "x-signature";
/// The optional header carrying the Unix time an `X-Signature` was made.
pub const SIGNATURE_TIMESTAMP_HEADER: &str = "x-signature-timestamp";

/// The signature headers of `POST /webhook`, as the OpenAPI document lists them. A request
/// carries `X-Signature` (and `X-Signature-Timestamp` when replay protection is on) or, when
/// `STANDARD_WEBHOOK_SECRET` is set, the three Standard Webhooks headers (named `webhook-*` or
/// `svix-*`). A test checks these
/// names against the ones the verifier reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(
    dead_code,
    reason = "only describes the headers; the verifier reads them"
)]
pub struct SignatureHeaders {
    /// Hex HMAC-SHA256 (64 digits, either case) of the raw body with `WEBHOOK_SECRET` (or
    /// `WEBHOOK_SECRET_PREVIOUS`); with `X-Signature-Timestamp`, of `{timestamp}.{body}`.
    /// Required unless the request is signed the Standard Webhooks way.
    #[param(
        rename = "X-Signature",
        nullable = false,
        pattern = "^[0-9a-fA-F]{64}$"
    )]
    x_signature: Option<String>,
    /// Unix seconds when the `X-Signature` was made, within `SIGNATURE_TOLERANCE_SECS` of
    /// now. Checked when `X_SIGNATURE_TIMESTAMP` is `optional` (if present) or `required`.
    #[param(
        rename = "X-Signature-Timestamp",
        nullable = false,
        pattern = "^[0-9]+$",
        example = "1736935200"
    )]
    x_signature_timestamp: Option<String>,
    /// Standard Webhooks: the message id the signature covers (non-empty).
    #[param(
        rename = "webhook-id",
        nullable = false,
        example = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    )]
    webhook_id: Option<String>,
    /// Standard Webhooks: Unix seconds, within `SIGNATURE_TOLERANCE_SECS` of now.
    #[param(
        rename = "webhook-timestamp",
        nullable = false,
        pattern = "^[0-9]+$",
        example = "1736935200"
    )]
    webhook_timestamp: Option<String>,
    /// Standard Webhooks: space-separated `v1,<base64 HMAC-SHA256 of
    /// {webhook-id}.{webhook-timestamp}.{body}>` entries; any one may match.
    #[param(rename = "webhook-signature", nullable = false)]
    webhook_signature: Option<String>,
    /// `webhook-id` as Svix-built senders name it; the same rules apply.
    #[param(
        rename = "svix-id",
        nullable = false,
        example = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    )]
    svix_id: Option<String>,
    /// `webhook-timestamp` as Svix-built senders name it; the same rules apply.
    #[param(
        rename = "svix-timestamp",
        nullable = false,
        pattern = "^[0-9]+$",
        example = "1736935200"
    )]
    svix_timestamp: Option<String>,
    /// `webhook-signature` as Svix-built senders name it, over
    /// `{svix-id}.{svix-timestamp}.{body}`; the same rules apply.
    #[param(rename = "svix-signature", nullable = false)]
    svix_signature: Option<String>,
}

/// Which signature scheme a request used, as the metrics label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    XSignature,
    StandardWebhooks,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::XSignature => "x-signature",
            Self::StandardWebhooks => "standard-webhooks",
        }
    }
}

/// A request body whose signature was valid (counted in `webhook_signatures_verified_total` by
/// scheme and secret).
#[derive(Debug)]
pub struct VerifiedBody(pub Bytes);

/// Everything needed to verify a delivery; built once from the configuration.
pub struct WebhookVerifier {
    x_signature: KeyRing,
    x_timestamp: TimestampMode,
    standard: Option<KeyRing>,
    tolerance_secs: u64,
    max_body_bytes: usize,
    body_timeout: Duration,
    /// Rejections are logged at most this often; every one is counted in the metrics.
    rejections_logged: LogBudget,
}

/// Rejected signatures logged per second at most.
const REJECTIONS_LOGGED_PER_SECOND: u32 = 5;

/// What the headers claim, checked for shape and freshness, before the body is read.
enum Claim {
    XSignature {
        tag: [u8; 32],
        timestamp: Option<String>,
    },
    Standard {
        id: String,
        timestamp: String,
        signatures: Vec<Vec<u8>>,
    },
}

impl WebhookVerifier {
    pub fn from_config(config: &Config) -> Self {
        Self {
            x_signature: KeyRing::new(
                config.webhook_secret.expose(),
                config.webhook_secret_previous.as_ref().map(|s| s.expose()),
            ),
            x_timestamp: config.x_signature_timestamp,
            standard: config
                .standard_webhook_keys()
                .map(|(current, previous)| KeyRing::new(current, previous)),
            tolerance_secs: config.signature_tolerance_secs,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.client_timeout(),
            rejections_logged: LogBudget::new(REJECTIONS_LOGGED_PER_SECOND),
        }
    }

    /// The answer to a rejected signature, logged as an error within the log budget.
    fn rejected(&self, problem: &'static str) -> ApiError {
        match self.rejections_logged.admit() {
            Some(0) => tracing::error!(problem, "invalid signature: {problem}"),
            Some(held_back) => tracing::error!(
                problem,
                held_back,
                "invalid signature: {problem} ({held_back} more since the last such line, \
                 not logged)"
            ),
            None => {}
        }
        ApiError::InvalidSignature
    }

    fn claim(&self, headers: &HeaderMap, now: i64) -> Result<Claim, &'static str> {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().map_err(|_| "malformed"))
        };
        // Any header of a family makes the request a Standard Webhooks one: a malformed or
        // partial set is refused, never ignored beside an `X-Signature`.
        let family = || {
            standard::HEADER_FAMILIES.iter().find(|names| {
                [names.signature, names.id, names.timestamp]
                    .iter()
                    .any(|name| headers.contains_key(*name))
            })
        };
        if self.standard.is_some()
            && let Some(names) = family()
        {
            let signatures = header(names.signature).ok_or("missing signature")?;
            let id = header(names.id).ok_or("missing id")??;
            let timestamp = header(names.timestamp).ok_or("missing timestamp")??;
            if id.is_empty() {
                return Err("missing id");
            }
            if !timestamp_is_fresh(timestamp, now, self.tolerance_secs) {
                return Err("timestamp outside the tolerance");
            }
            return Ok(Claim::Standard {
                id: id.to_owned(),
                timestamp: timestamp.to_owned(),
                signatures: standard::v1_signatures(signatures?),
            });
        }
        let tag = header(SIGNATURE_HEADER).ok_or("missing")??;
        let tag = decode_hex_signature(tag.as_bytes()).ok_or("malformed")?;
        let timestamp = match (self.x_timestamp, header(SIGNATURE_TIMESTAMP_HEADER)) {
            (TimestampMode::Off, _) | (TimestampMode::Optional, None) => None,
            (TimestampMode::Required, None) => return Err("missing timestamp"),
            (_, Some(timestamp)) => {
                let timestamp = timestamp?;
                if !timestamp_is_fresh(timestamp, now, self.tolerance_secs) {
                    return Err("timestamp outside the tolerance");
                }
                Some(timestamp.to_owned())
            }
        };
        Ok(Claim::XSignature { tag, timestamp })
    }

    fn check(&self, claim: &Claim, body: &[u8]) -> Option<(Scheme, SecretSlot)> {
        match claim {
            Claim::XSignature { tag, timestamp } => {
                let slot = match timestamp {
                    None => self.x_signature.verify(&[body], tag),
                    Some(timestamp) => self
                        .x_signature
                        .verify(&[timestamp.as_bytes(), b".", body], tag),
                };
                slot.map(|slot| (Scheme::XSignature, slot))
            }
            Claim::Standard {
                id,
                timestamp,
                signatures,
            } => {
                let keys = self.standard.as_ref()?;
                standard::verify(keys, id, timestamp, body, signatures)
                    .map(|slot| (Scheme::StandardWebhooks, slot))
            }
        }
    }
}

/// Whether the body arrives as it is: no `Content-Encoding`, or `identity`.
fn unencoded(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_ENCODING).all(|value| {
        value
            .to_str()
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("identity"))
    })
}

/// Reads the whole body, refusing it once it passes `limit` bytes.
async fn read_body(
    mut payload: Payload,
    declared_length: Option<usize>,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    if declared_length.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared_length.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::warn!(error = %e, "reading the request body failed");
            ApiError::BadRequest
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl FromRequest for VerifiedBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let verifier = req
            .app_data::<Data<WebhookVerifier>>()
            .expect("the WebhookVerifier is registered with the app")
            .clone();
        let metrics = req
            .app_data::<Data<Metrics>>()
            .expect("the Metrics are registered with the app")
            .clone();
        let unencoded = unencoded(req.headers());
        let claim = verifier.claim(req.headers(), now_secs());
        let declared_length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let payload = payload.take();
        Box::pin(async move {
            if !unencoded {
                return Err(ApiError::UnsupportedEncoding);
            }
            let claim = claim.map_err(|problem| verifier.rejected(problem))?;
            let reading = read_body(payload, declared_length, verifier.max_body_bytes);
            let body = tokio::time::timeout(verifier.body_timeout, reading)
                .await
                .map_err(|_| ApiError::RequestTimeout)??;
            let (scheme, secret) = verifier
                .check(&claim, &body)
                .ok_or_else(|| verifier.rejected("does not match the body"))?;
            metrics
                .signatures_verified
                .with_label_values(&[scheme.as_str(), secret.as_str()])
                .inc();
            Ok(Self(body.freeze()))
        })
    }
}
