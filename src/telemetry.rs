//! Logging: every event is one JSON line on stdout.
//!
//! A line holds `ts` (ISO-8601 UTC), `level`, `message`, the fields of every enclosing span
//! (for a request: `request_id`, `method`, `path`, `status`, `latency_ms`, and for `/webhook`
//! `message_id`, `dup`, `result`) and the event's own fields, all at the top level.
//!
//! The HTTP layer (actix-http) logs a connection it closes for a protocol error (a malformed
//! request line or header, a duplicate `Content-Length`, a head too large) as an error, before
//! any route or request id exists. Any client can cause those at will, so they are written at
//! `DEBUG` instead, and counted ([`protocol_errors`], exported as
//! `http_protocol_errors_total`): the error log stays for the service's own failures.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogLevel;
use crate::domain::timestamp::{format_micros, now_micros};

/// Installs the JSON logger for the whole process. Later calls (as in tests) are ignored.
pub fn init(level: LogLevel) {
    let subscriber = Registry::default().with(JsonLines {
        level: level.filter(),
    });
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Protocol errors the HTTP layer reported since the process started.
static PROTOCOL_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many connections the HTTP layer closed for a protocol error, since the process started
/// (0 when the JSON logger is not installed).
pub fn protocol_errors() -> u64 {
    PROTOCOL_ERRORS.load(Ordering::Relaxed)
}

/// Where the HTTP layer's own events come from.
const HTTP_LAYER: &str = "actix_http::";

/// Whether an event is the HTTP layer reporting a failed connection: an error a client caused.
fn is_protocol_error(metadata: &Metadata<'_>) -> bool {
    *metadata.level() == Level::ERROR && metadata.target().starts_with(HTTP_LAYER)
}

/// The level an event is written at: the HTTP layer's protocol errors at `DEBUG`.
fn written_level(metadata: &Metadata<'_>) -> Level {
    if is_protocol_error(metadata) {
        Level::DEBUG
    } else {
        *metadata.level()
    }
}

/// Writes each event at or above `level` as one JSON object per line to stdout.
pub struct JsonLines {
    level: LevelFilter,
}

/// A span's recorded fields, kept in its extensions until it closes.
#[derive(Default)]
struct SpanFields(Map<String, Value>);

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        // Protocol errors are always seen, to be counted, whatever is written.
        *metadata.level() <= self.level || is_protocol_error(metadata)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if is_protocol_error(event.metadata()) {
            PROTOCOL_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        let level = written_level(event.metadata());
        if level > self.level {
            return;
        }
        let mut line = Map::new();
        line.insert("ts".to_owned(), Value::from(format_micros(now_micros())));
        line.insert("level".to_owned(), Value::from(level.as_str()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut fields = SpanFields(line);
        event.record(&mut fields);
        let mut bytes = serde_json::to_vec(&fields.0).unwrap_or_default();
        bytes.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&bytes);
    }
}
