//! The OpenAPI 3.1 document of the HTTP contract, served at `GET /openapi.json`.
//!
//! It is built from the code, never written by hand: every handler carries a `#[utoipa::path]`
//! annotation (its path and method are read from the handler's own route attribute), its
//! schemas are derived from the types the handlers send, and [`super::endpoints`] registers
//! each handler through `utoipa-actix-web`, which refuses at compile time a handler without an
//! annotation and collects the annotation of every one it registers. The document therefore
//! lists exactly the routes the server answers; the answers to other methods (`405`) are
//! derived from it in turn. Open without a token, like `/health`: it describes the contract and
//! holds no data.
//!
//! The document served says what the running configuration asks for ([`Served`]): the reads
//! need the bearer token only when `API_TOKEN` is set, and `/metrics` only when
//! `METRICS_REQUIRE_TOKEN` is on too (otherwise they carry no `security`), and `/webhook` lists
//! only the signature headers the server reads (`X-Signature-Timestamp` unless
//! `X_SIGNATURE_TIMESTAMP` is `off`, the Standard Webhooks headers when
//! `STANDARD_WEBHOOK_SECRET` is set). A client or fuzzer generating requests from the document
//! is answered as it says.

use std::sync::LazyLock;

use actix_web::App;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpResponse, get};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use super::signature::SIGNATURE_TIMESTAMP_HEADER;
use crate::config::{Config, TimestampMode};
use crate::signing::standard;

/// The name of the bearer-token security scheme in the document.
pub const TOKEN_SCHEME: &str = "api_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "WebhookProcessor",
        description = "Receives HMAC-signed webhook messages, stores each exactly once, and \
            serves them back.\n\nEvery error body is JSON: `{\"detail\": \"...\"}`, or for \
            validation errors `{\"detail\": [{\"loc\": [...], \"msg\": \"...\", \"type\": \
            \"...\"}]}` listing every problem found. Every response carries `X-Request-ID`. \
            Every path answers `405` with `Allow` to other methods, and any other path `404`."
    ),
    tags(
        (name = "ingest", description = "Signed deliveries"),
        (name = "read", description = "Stored messages and aggregates; they need the \
            `API_TOKEN` bearer token when one is configured"),
        (name = "health", description = "Probes for orchestrators"),
        (name = "operations", description = "Metrics"),
        (name = "documentation", description = "This document and its viewer"),
    ),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// Declares the `API_TOKEN` bearer scheme the read operations refer to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "`Authorization: Bearer <API_TOKEN>`. Required by `/messages`, \
                 `/messages/export` and `/stats` when `API_TOKEN` is set (else they are open), \
                 and by `/metrics` when `METRICS_REQUIRE_TOKEN=true` as well.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(TOKEN_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Which operations need the bearer token, as the running configuration says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// `/messages`, `/messages/export` and `/stats` (`API_TOKEN` is set).
    pub reads: bool,
    /// `/metrics` (`METRICS_REQUIRE_TOKEN` is on as well).
    pub metrics: bool,
}

/// The document as a running server serves it: made once, from its configuration.
pub struct Served(Bytes);

impl Served {
    /// The document for a server running with `config`, whose reads need the token as
    /// `access` says.
    pub fn for_config(config: &Config, access: Access) -> Self {
        let mut api = secured(document().api.clone(), access);
        let mut unread: Vec<&str> = Vec::new();
        if config.x_signature_timestamp == TimestampMode::Off {
            unread.push(SIGNATURE_TIMESTAMP_HEADER);
        }
        if config.standard_webhook_keys().is_none() {
            for names in &standard::HEADER_FAMILIES {
                unread.extend([names.id, names.timestamp, names.signature]);
            }
        }
        for item in api.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                if let Some(parameters) = operation.parameters.as_mut() {
                    parameters.retain(|p| match p {
                        RefOr::T(p) => {
                            !(p.parameter_in == ParameterIn::Header
                                && unread.iter().any(|name| p.name.eq_ignore_ascii_case(name)))
                        }
                        RefOr::Ref(_) => true,
                    });
                }
            }
        }
        Self(Bytes::from(
            serde_json::to_vec_pretty(&api).expect("the OpenAPI document serializes"),
        ))
    }
}

/// The document, built once, and what is derived from it.
pub struct Document {
    /// Every operation that can need the token says so (`security`), and `/webhook` names every
    /// signature header the verifier can read.
    pub api: utoipa::openapi::OpenApi,
    /// Each path and the methods it answers, as an `Allow` header value (`GET, HEAD, OPTIONS`
    /// for a documented `GET`).
    pub allowed_methods: Vec<(String, String)>,
}

static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(super::endpoints)
        .split_for_parts();
    describe_request_ids(&mut api);
    let allowed_methods = api
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods: Vec<&str> = operations(item).map(|(method, _)| method).collect();
            (path.clone(), super::methods::allow(&methods))
        })
        .collect();
    Document {
        api,
        allowed_methods,
    }
});

/// `api` with `security` only on the operations `access` says need the token, and without the
/// token's scheme when none does.
fn secured(mut api: utoipa::openapi::OpenApi, access: Access) -> utoipa::openapi::OpenApi {
    for (path, item) in api.paths.paths.iter_mut() {
        let needed = if path == "/metrics" {
            access.metrics
        } else {
            access.reads
        };
        for operation in operations_mut(item) {
            if operation.security.is_some() {
                operation.security = needed
                    .then(|| vec![SecurityRequirement::new(TOKEN_SCHEME, Vec::<String>::new())]);
            }
        }
    }
    if !access.reads
        && !access.metrics
        && let Some(components) = api.components.as_mut()
    {
        components.security_schemes.remove(TOKEN_SCHEME);
    }
    api
}

/// The OpenAPI document of every route [`super::routes`] registers.
pub fn document() -> &'static Document {
    &DOCUMENT
}

/// Each operation of a path item, with its method as HTTP spells it.
fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("HEAD", &item.head),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("TRACE", &item.trace),
        ("QUERY", &item.query),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_ref()?)))
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.head,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
        &mut item.options,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// `X-Request-ID` is taken (when sane) and echoed by a middleware for every route, so it is
/// added to every operation and response here rather than to each annotation.
fn describe_request_ids(api: &mut utoipa::openapi::OpenApi) {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let parameter = ParameterBuilder::new()
        .name(REQUEST_ID_HEADER_NAME)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Kept and echoed when it is 1 to 128 visible ASCII characters without `\"` or \
             `\\`; any other value (longer, empty, or with other characters) is not refused \
             but replaced by a new id. It appears on every log line of the request.",
        ))
        .schema(Some(string()))
        .build();
    let header = HeaderBuilder::new()
        .schema(Some(string()))
        .description(Some(
            "The request's id: the caller's when it was kept, else a new one.",
        ))
        .build();
    for item in api.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(parameter.clone()));
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .insert(REQUEST_ID_HEADER_NAME.to_owned(), RefOr::T(header.clone()));
                }
            }
        }
    }
}

/// `X-Request-ID` as the document spells it.
const REQUEST_ID_HEADER_NAME: &str = "X-Request-ID";

/// OpenAPI document
///
/// This service's OpenAPI 3.1 document, generated from its code.
#[utoipa::path(
    operation_id = "openapi_document",
    tag = "documentation",
    responses((status = 200, description = "The document", content_type = "application/json",
        body = Object))
)]
#[get("/openapi.json")]
pub async fn serve(served: Data<Served>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(served.0.clone())
}

#[cfg(test)]
mod tests {
    use super::REQUEST_ID_HEADER_NAME;
    use crate::http::request_log::REQUEST_ID_HEADER;

    #[test]
    fn the_documented_request_id_header_is_the_one_the_middleware_reads() {
        assert!(REQUEST_ID_HEADER_NAME.eq_ignore_ascii_case(REQUEST_ID_HEADER.as_str()));
    }
}
