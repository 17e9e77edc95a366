//! Logging: every event is one JSON line on stdout.
//!
//! A line holds `ts` (ISO-8601 UTC), `level`, `message`, the fields of every enclosing span
//! (for a request: `request_id`, `method`, `path`, `status`, `latency_ms`, and for `/webhook`
//! `message_id`, `dup`, `result`) and the event's own fields, all at the top level.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogLevel;
use crate::domain::timestamp::{format_micros, now_micros};

/// Installs the JSON logger for the whole process. Later calls (as in tests) are ignored.
pub fn init(level: LogLevel) {
    let subscriber = Registry::default().with(JsonLines.with_filter(level.filter()));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Writes each event as one JSON object per line to stdout.
pub struct JsonLines;

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
        let mut line = Map::new();
        line.insert("ts".to_owned(), Value::from(format_micros(now_micros())));
        line.insert(
            "level".to_owned(),
            Value::from(event.metadata().level().as_str()),
        );
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
