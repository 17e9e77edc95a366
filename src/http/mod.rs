//! The HTTP contract: routes, middleware and the answers for unknown paths and methods.

pub mod auth;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod request_log;
pub mod signature;
pub mod webhook;

use actix_web::web::{self, ServiceConfig};

use crate::error::ApiError;

/// Registers every route. Each path answers 405 (with `Allow`) to other methods, and any other
/// path answers 404, both as JSON.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(webhook::receive)
        .service(messages::list)
        .service(messages::export)
        .service(messages::stats)
        .service(health::live)
        .service(health::ready)
        .service(metrics::export);
    for (path, allow) in [
        ("/webhook", "POST"),
        ("/messages", "GET"),
        ("/messages/export", "GET"),
        ("/stats", "GET"),
        ("/health/live", "GET"),
        ("/health/ready", "GET"),
        ("/metrics", "GET"),
    ] {
        cfg.route(
            path,
            web::route()
                .to(move || async move { Err::<(), _>(ApiError::MethodNotAllowed { allow }) }),
        );
    }
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}
