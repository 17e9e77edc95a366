//! Kubernetes probes: `/health/live` answers while the process serves; `/health/ready` answers
//! 200 only while the last database probe could write (see `HealthActor`) and no stop has
//! begun.

use actix_web::web::{Data, Json};
use actix_web::{HttpResponse, get};

use super::status::{StatusOk, StatusReady};
use crate::actors::HealthHandle;
use crate::actors::health::Readiness;
use crate::error::{ApiError, ErrorBody};

/// Liveness
///
/// Answers while the process serves requests; touches nothing else. Open without a token.
#[utoipa::path(
    operation_id = "liveness",
    tag = "health",
    responses((status = 200, description = "The process is serving", body = StatusOk))
)]
#[get("/health/live")]
pub async fn live() -> Json<StatusOk> {
    Json(StatusOk::default())
}

/// Readiness
///
/// `200` while the last durable write probe of the database (every
/// `HEALTH_PROBE_INTERVAL_MS`) succeeded, `503` naming the reason otherwise, and `503`
/// `shutting down` from SIGTERM on, while the service still serves for `SHUTDOWN_DELAY_SECS`.
/// Open without a token.
#[utoipa::path(
    operation_id = "readiness",
    tag = "health",
    responses(
        (status = 200, description = "The database is writable", body = StatusReady),
        (status = 503, description = "The database is not writable (locked, missing, \
            read-only, ...), or the service is shutting down", body = ErrorBody,
            example = json!({"detail": "database is locked by another process"})),
    )
)]
#[get("/health/ready")]
pub async fn ready(health: Data<HealthHandle>) -> Result<HttpResponse, ApiError> {
    match health.readiness().await {
        Readiness::Ready => Ok(HttpResponse::Ok().json(StatusReady::default())),
        Readiness::NotReady(reason) => Err(ApiError::NotReady(reason)),
    }
}
