//! Kubernetes probes: `/health/live` answers while the process serves; `/health/ready` answers
//! 200 only while the last database probe could write (see `HealthActor`).

use actix_web::web::{Data, Json};
use actix_web::{HttpResponse, get};
use serde_json::{Value, json};

use crate::actors::HealthHandle;
use crate::actors::health::Readiness;
use crate::error::ApiError;

#[get("/health/live")]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[get("/health/ready")]
pub async fn ready(health: Data<HealthHandle>) -> Result<HttpResponse, ApiError> {
    match health.readiness().await {
        Readiness::Ready => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Readiness::NotReady(reason) => Err(ApiError::NotReady(reason)),
    }
}
