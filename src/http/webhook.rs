//! `POST /webhook`: verify, validate, store, answer `{"status": "ok"}` once committed.

use actix_web::web::Data;
use actix_web::{HttpResponse, post};
use serde_json::json;
use tracing_actix_web::RootSpan;

use super::signature::VerifiedBody;
use crate::actors::StoreHandle;
use crate::domain::NewMessage;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::storage::InsertOutcome;

#[post("/webhook")]
pub async fn receive(
    body: Result<VerifiedBody, ApiError>,
    store: Data<StoreHandle>,
    metrics: Data<Metrics>,
    span: RootSpan,
) -> Result<HttpResponse, ApiError> {
    let outcome = ingest(body, &store, &metrics, &span).await;
    let result = result_label(&outcome);
    metrics.count_webhook(result);
    span.record("result", result);
    if let Ok(stored) = &outcome {
        span.record("dup", *stored == InsertOutcome::Duplicate);
    }
    outcome.map(|_| HttpResponse::Ok().json(json!({"status": "ok"})))
}

async fn ingest(
    body: Result<VerifiedBody, ApiError>,
    store: &StoreHandle,
    metrics: &Metrics,
    span: &RootSpan,
) -> Result<InsertOutcome, ApiError> {
    let body = body?;
    metrics
        .signatures_verified
        .with_label_values(&[body.scheme.as_str(), body.secret.as_str()])
        .inc();
    let message = NewMessage::from_json(&body.bytes)?;
    span.record("message_id", message.message_id.as_str());
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
        Err(ApiError::Overloaded) => "overloaded",
        Err(_) => "unavailable",
    }
}
