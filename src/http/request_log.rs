//! Request ids and the one access-log line per request.
//!
//! [`assign_request_id`] takes the caller's `X-Request-ID` when it is a sane token (or makes
//! one), stores it for the request and echoes it in the response. [`AccessLog`] opens the root
//! span every log line of the request carries (`request_id`, `method`, `path`, and what handlers
//! record: `message_id`, `dup`, `result`) and closes it with one line holding `status` and
//! `latency_ms`. Values the client chose are cut to [`MAX_LOGGED_CHARS`] characters.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied request id that is kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The most characters a value the client chose (a path, a `message_id`) adds to a log line.
pub const MAX_LOGGED_CHARS: usize = 128;

/// `value` as a log line may hold it: at most [`MAX_LOGGED_CHARS`] characters, a longer one
/// cut and marked with `…`, so a client cannot make one line as long as its request.
pub fn capped(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_LOGGED_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]).into(),
        None => value.into(),
    }
}

/// This request's id.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// When the request started, for `latency_ms`.
#[derive(Clone, Copy)]
struct Started(Instant);

/// Reuses a well-formed incoming `X-Request-ID` or generates one, and echoes it back.
pub async fn assign_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let header = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    req.extensions_mut().insert(RequestId(id));
    let mut response = next.call(req).await?;
    response.headers_mut().insert(REQUEST_ID_HEADER, header);
    Ok(response)
}

/// Visible ASCII without spaces or quotes, so an id cannot forge or break a log line.
fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Builds the request's root span and writes the access-log line when it ends.
pub struct AccessLog;

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        // ERROR level, so the span (and its request_id) exists at every LOG_LEVEL.
        tracing::error_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            path = %capped(request.path()),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            message_id = tracing::field::Empty,
            dup = tracing::field::Empty,
            result = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, started) = match outcome {
            Ok(response) => (
                response.status(),
                response.request().extensions().get::<Started>().copied(),
            ),
            Err(error) => (error.as_response_error().status_code(), None),
        };
        span.record("status", status.as_u16());
        if let Some(Started(started)) = started {
            let micros = started.elapsed().as_micros();
            span.record("latency_ms", micros as f64 / 1000.0);
        }
        // A 503 asks the client to retry (a full queue is backpressure working as intended, a
        // failing database is logged as an error where it fails); other 5xx are errors.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!("request finished");
        } else if status.is_server_error() {
            tracing::error!("request finished");
        } else {
            tracing::info!("request finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_LOGGED_CHARS, capped, is_sane_request_id};

    #[test]
    fn a_logged_client_value_is_cut_on_a_character_boundary() {
        assert_eq!(capped("short"), "short");
        let long = "é".repeat(MAX_LOGGED_CHARS + 10);
        let cut = capped(&long);
        assert_eq!(cut.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn keeps_ordinary_ids_and_refuses_ones_that_could_break_a_log_line() {
        assert!(is_sane_request_id("req-123_abc.DEF"));
        assert!(is_sane_request_id(&"a".repeat(128)));
        for bad in [
            "",
            "has space",
            "quote\"",
            "back\\slash",
            "new\nline",
            "é",
            &"a".repeat(129),
        ] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
    }
}
