//! `GET /metrics` and the middleware that counts and times every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpResponse, get};

use super::auth::MetricsAccess;
use crate::actors::{ReaderPool, StoreHandle};
use crate::error::ErrorBody;
use crate::metrics::{Metrics, UNMATCHED_PATH};

/// Prometheus metrics
///
/// The service's metrics in the Prometheus text format. Open, unless
/// `METRICS_REQUIRE_TOKEN=true`, which makes it need the `API_TOKEN` bearer token too.
#[utoipa::path(
    operation_id = "metrics",
    tag = "operations",
    security(("api_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String,
            example = "http_requests_total{path=\"/webhook\",status=\"200\"} 1\n"),
        (status = 401, description = "`METRICS_REQUIRE_TOKEN` is on and the bearer token is \
            missing or wrong", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`")),
            example = json!({"detail": "missing or invalid bearer token"})),
    )
)]
#[get("/metrics")]
pub async fn scrape(
    _: MetricsAccess,
    metrics: Data<Metrics>,
    store: Data<StoreHandle>,
    readers: Data<ReaderPool>,
) -> HttpResponse {
    metrics
        .store_queue_depth
        .set(i64::try_from(store.queue_depth()).unwrap_or(i64::MAX));
    // When the database cannot answer, the last position read stays.
    if let Ok(head) = readers.feed_head().await {
        metrics
            .feed_head
            .set(i64::try_from(head).unwrap_or(i64::MAX));
    }
    metrics.protocol_errors_seen(crate::telemetry::protocol_errors());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

/// Counts `http_requests_total{path,status}` by route pattern and observes the latency.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<Data<Metrics>>().cloned();
    let path = req
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_PATH.to_owned());
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        metrics
            .http_requests
            .with_label_values(&[path.as_str(), response.status().as_str()])
            .inc();
        metrics
            .request_latency_ms
            .observe(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(response)
}
