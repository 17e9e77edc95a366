//! `POST /webhook`: verify, validate, store, answer `{"status": "ok"}` once committed.

use actix_web::web::Data;
use actix_web::{HttpResponse, post};
use tracing_actix_web::RootSpan;

use super::request_log::capped;
use super::signature::{SignatureHeaders, VerifiedBody};
use super::status::StatusOk;
use crate::actors::StoreHandle;
use crate::domain::{Message, NewMessage};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::metrics::Metrics;
use crate::storage::InsertOutcome;

/// Store a signed message
///
/// The signature is checked before the body is parsed, and `Content-Type` is ignored: the
/// signed bytes are parsed as JSON whatever the header says. A `Content-Encoding` other than
/// `identity` is refused (`415`): the body is never decompressed. `200` is sent only once the row is
/// committed; a redelivered `message_id` gets `200` and no second row.
#[utoipa::path(
    operation_id = "store_message",
    tag = "ingest",
    params(SignatureHeaders),
    request_body(
        content = Message,
        description = "One JSON object without duplicate keys; unknown fields are ignored. \
            At most `MAX_BODY_BYTES` (64 KiB)."
    ),
    responses(
        (status = 200, description = "Stored now, or stored before (a redelivery)",
            body = StatusOk),
        (status = 400, description = "The body could not be read", body = ErrorBody),
        (status = 401, description = "Signature missing, malformed, stale or wrong",
            body = ErrorBody, example = json!({"detail": "invalid signature"})),
        (status = 408, description = "The body did not arrive within `CLIENT_TIMEOUT_SECS`; \
            the connection is closed", body = ErrorBody),
        (status = 413, description = "The body is larger than `MAX_BODY_BYTES`",
            body = ErrorBody),
        (status = 415, description = "`Content-Encoding` other than `identity`: the body \
            must arrive as it was signed", body = ErrorBody),
        (status = 422, description = "Not JSON, not an object, duplicate keys, or fields that \
            break the rules; every problem is listed", body = ValidationErrorBody),
        (status = 503, description = "The store queue is full or the database is failing; \
            nothing was stored", body = ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait: `1`"))),
    )
)]
#[post("/webhook")]
pub async fn receive(
    body: Result<VerifiedBody, ApiError>,
    store: Data<StoreHandle>,
    metrics: Data<Metrics>,
    span: RootSpan,
) -> Result<HttpResponse, ApiError> {
    let outcome = ingest(body, &store, &span).await;
    let result = result_label(&outcome);
    metrics.count_webhook(result);
    span.record("result", result);
    if let Ok(stored) = &outcome {
        span.record("dup", *stored == InsertOutcome::Duplicate);
    }
    outcome.map(|_| HttpResponse::Ok().json(StatusOk::default()))
}

async fn ingest(
    body: Result<VerifiedBody, ApiError>,
    store: &StoreHandle,
    span: &RootSpan,
) -> Result<InsertOutcome, ApiError> {
    let VerifiedBody(body) = body?;
    let message = NewMessage::from_json(&body)?;
    span.record("message_id", capped(&message.message_id).as_ref());
    Ok(store.ingest(message).await?)
}

/// The `webhook_requests_total{result}` value of an outcome.
fn result_label(outcome: &Result<InsertOutcome, ApiError>) -> &'static str {
    match outcome {
        Ok(InsertOutcome::Created) => "created",
        Ok(InsertOutcome::Duplicate) => "duplicate",
        Err(ApiError::InvalidSignature) => "invalid_signature",
        Err(ApiError::Validation(_)) => "validation_error",
        Err(ApiError::PayloadTooLarge { .. }) => "payload_too_large",
        Err(ApiError::RequestTimeout) => "timeout",
        Err(ApiError::BadRequest) => "bad_request",
        Err(ApiError::UnsupportedEncoding) => "unsupported_encoding",
        Err(ApiError::Overloaded) => "overloaded",
        Err(_) => "unavailable",
    }
}
