//! The methods every resource answers besides its own: `HEAD` and `OPTIONS`.
//!
//! RFC 9110 asks that `HEAD` on a resource answer exactly as `GET` would, without the body
//! (uptime checkers and `curl -I` rely on it). [`answer_head_as_get`] runs a `HEAD` request
//! as a `GET`; the HTTP layer, which still knows the request was `HEAD`, sends the status and
//! headers and never the body. A streamed body (an export) is not produced at all. `OPTIONS`
//! answers `204` with `Allow` ([`allow`]); no CORS headers are sent.

use actix_web::body::{self, BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::ALLOW;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

/// Runs a `HEAD` request as the `GET` of the same resource; see the module's note.
pub async fn answer_head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let head = req.method() == Method::HEAD;
    if head {
        req.head_mut().method = Method::GET;
    }
    let response = next.call(req).await?.map_into_boxed_body();
    if head && response.response().body().size() == BodySize::Stream {
        return Ok(response.map_body(|_, _| BoxBody::new(body::None::new())));
    }
    Ok(response)
}

/// The methods a resource documented with `documented` (`GET`, or `POST`...) answers, as an
/// `Allow` header value: `HEAD` wherever `GET` is, and `OPTIONS` everywhere.
pub fn allow(documented: &[&str]) -> String {
    let mut methods: Vec<&str> = documented.to_vec();
    if documented.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.push("OPTIONS");
    methods.join(", ")
}

/// The answer to `OPTIONS`: `204` and the resource's `Allow`.
pub fn options(allow: &'static str) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((ALLOW, allow))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::allow;

    #[test]
    fn head_goes_with_get_and_options_with_everything() {
        assert_eq!(allow(&["GET"]), "GET, HEAD, OPTIONS");
        assert_eq!(allow(&["POST"]), "POST, OPTIONS");
    }
}
