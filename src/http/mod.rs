//! The HTTP contract: routes, middleware and the answers for unknown paths and methods.
//!
//! Every route is registered in [`endpoints`], through `utoipa-actix-web`, so that each one is
//! also in the OpenAPI document (see [`openapi`]); the `405` and `OPTIONS` answers are derived
//! from that document, so they cover exactly the same paths.

pub mod auth;
pub mod docs;
pub mod feed;
pub mod health;
pub mod log_budget;
pub mod messages;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod request_log;
pub mod signature;
pub mod status;
pub mod stopping;
pub mod webhook;

use actix_web::guard;
use actix_web::web::{self, ServiceConfig};
use utoipa_actix_web::service_config::ServiceConfig as DocumentedConfig;

use crate::error::ApiError;

/// Registers every route. Each path answers `OPTIONS` with `204` and `Allow`, and other
/// methods it does not answer with a JSON `405` (with `Allow`); any other path answers a JSON
/// `404`. `HEAD` reaches the routes as `GET` ([`methods::answer_head_as_get`]).
pub fn routes(cfg: &mut ServiceConfig) {
    endpoints(&mut DocumentedConfig::new(cfg));
    for (path, allow) in &openapi::document().allowed_methods {
        let allow = allow.as_str();
        cfg.route(
            path,
            web::route()
                .guard(guard::Options())
                .to(move || async move { methods::options(allow) }),
        );
        cfg.route(
            path,
            web::route()
                .to(move || async move { Err::<(), _>(ApiError::MethodNotAllowed { allow }) }),
        );
    }
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}

/// Every endpoint the service answers. Register routes only here, and only with `service`:
/// it takes nothing but handlers annotated with `#[utoipa::path]`, and what it registers is
/// what the OpenAPI document describes.
pub fn endpoints(cfg: &mut DocumentedConfig) {
    cfg.service(webhook::receive)
        .service(messages::list)
        .service(messages::export)
        .service(feed::feed)
        .service(feed::stream)
        .service(messages::stats)
        .service(health::live)
        .service(health::ready)
        .service(metrics::scrape)
        .service(openapi::serve)
        .service(docs::page)
        .service(docs::asset);
}
