//! `GET /docs`: Swagger UI for the OpenAPI document, served entirely from the binary.
//!
//! The viewer's files come from the `utoipa-swagger-ui` crate built with its `vendored`
//! feature: its build script unpacks a Swagger UI release that is itself shipped on crates.io,
//! and embeds it, so neither the build nor the page ever fetches anything from elsewhere. The
//! page and its files name only relative URLs on this service, and a `Content-Security-Policy`
//! of `'self'` makes the browser refuse anything else. Open without a token, like `/health`:
//! it describes the contract and holds no data.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, ContentEncoding,
    X_CONTENT_TYPE_OPTIONS,
};
use actix_web::web::{Bytes, Path};
use actix_web::{HttpResponse, get};
use utoipa_swagger_ui::Config;

use crate::error::{ApiError, ErrorBody};

/// The files the page loads, all under `/docs/`. Anything else there is a 404.
pub const ASSETS: [&str; 5] = [
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
    "favicon-32x32.png",
];

/// Only this service's own origin; inline styles and `data:` images are what Swagger UI
/// renders with.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Relative URLs, so the page also works behind a reverse proxy that adds a path prefix.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>WebhookProcessor API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/swagger-ui-standalone-preset.js"></script>
  <script src="docs/swagger-initializer.js"></script>
</body>
</html>
"#;

/// What `swagger-initializer.js` tells the viewer: load `/openapi.json` (relative to the page),
/// without the bar for loading other documents, and never send the document to the public
/// validator.
static VIEWER_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["openapi.json"])
            .use_base_layout()
            .validator_url("none")
            .try_it_out_enabled(false),
    )
});

/// Interactive documentation
///
/// Swagger UI for `/openapi.json`. Every file it loads is served by this service.
#[utoipa::path(
    operation_id = "docs_page",
    tag = "documentation",
    responses((status = 200, description = "The viewer's page", content_type = "text/html",
        body = String))
)]
#[get("/docs")]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

/// A file of the documentation viewer
///
/// The scripts, style sheet and icon `/docs` loads.
#[utoipa::path(
    operation_id = "docs_file",
    tag = "documentation",
    params(("file" = String, Path, description = "One of the files `/docs` loads",
        example = "swagger-ui-bundle.js")),
    responses(
        (status = 200, description = "The file: a script, the style sheet or the icon",
            content(
                (String = "text/javascript"),
                (String = "text/css"),
                (String = "image/png"),
            )),
        (status = 404, description = "Not one of the viewer's files", body = ErrorBody,
            example = json!({"detail": "not found"})),
    )
)]
#[get("/docs/{file}")]
pub async fn asset(file: Path<String>) -> Result<HttpResponse, ApiError> {
    let name = file.into_inner();
    if !ASSETS.contains(&name.as_str()) {
        return Err(ApiError::NotFound);
    }
    // The files and the configuration are fixed at build time, and the tests fetch each one.
    let asset = utoipa_swagger_ui::serve(&name, Arc::clone(&VIEWER_CONFIG))
        .expect("the embedded viewer files are UTF-8 and the configuration serializes")
        .ok_or(ApiError::NotFound)?;
    let mut response = HttpResponse::Ok();
    if asset.gzpipped {
        response.insert_header((CONTENT_ENCODING, ContentEncoding::Gzip));
    }
    Ok(response
        .content_type(asset.content_type)
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(match asset.bytes {
            // The embedded files are sent as they are, not copied for every request.
            Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            Cow::Owned(bytes) => Bytes::from(bytes),
        }))
}
