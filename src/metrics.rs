//! The Prometheus metrics the service exposes at `/metrics`, in one registry per running
//! application.
//!
//! Label values are always bounded: `path` is a route pattern (unknown paths share one value),
//! `status` an HTTP status, `result` one of [`WEBHOOK_RESULTS`]. Durations and sizes are in
//! base units (seconds, bytes), as Prometheus' own tools expect, with one exception the
//! service's contract names: `request_latency_ms` ([`UNIT_EXCEPTION`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every value of `webhook_requests_total{result}`.
pub const WEBHOOK_RESULTS: [&str; 10] = [
    "created",
    "duplicate",
    "invalid_signature",
    "validation_error",
    "payload_too_large",
    "timeout",
    "bad_request",
    "unsupported_encoding",
    "overloaded",
    "unavailable",
];

/// The one metric whose name carries an abbreviated unit: the contract names it, so it stays,
/// and `promtool check metrics` is allowed exactly this complaint (see `.ci/check-metrics`).
pub const UNIT_EXCEPTION: &str = "request_latency_ms";

/// The `path` label of requests that matched no route.
pub const UNMATCHED_PATH: &str = "unmatched";

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_protocol_errors: IntCounter,
    /// The process-wide protocol-error count `http_protocol_errors` was last brought up to.
    protocol_errors_counted: Arc<AtomicU64>,
    pub request_latency_ms: Histogram,
    pub webhook_requests: IntCounterVec,
    pub signatures_verified: IntCounterVec,
    pub store_queue_depth: IntGauge,
    pub store_queue_capacity: IntGauge,
    pub store_batch_size: Histogram,
    pub store_commit_seconds: Histogram,
    pub store_commit_failures: IntCounter,
    pub database_ready: IntGauge,
    pub database_size_bytes: IntGauge,
    pub retention_deleted: IntCounter,
    pub text_indexed: IntCounter,
    pub text_index_backlog: IntGauge,
    pub feed_consumers: IntGauge,
    pub feed_head: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = Self {
            http_requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by route pattern and status",
                ),
                &["path", "status"],
            )
            .expect("valid metric"),
            http_protocol_errors: IntCounter::new(
                "http_protocol_errors_total",
                "Connections the HTTP layer closed for a protocol error before any route ran",
            )
            .expect("valid metric"),
            protocol_errors_counted: Arc::default(),
            request_latency_ms: Histogram::with_opts(
                HistogramOpts::new("request_latency_ms", "HTTP request latency in milliseconds")
                    .buckets(vec![
                        0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
                        5000.0, 10000.0,
                    ]),
            )
            .expect("valid metric"),
            webhook_requests: IntCounterVec::new(
                Opts::new("webhook_requests_total", "POST /webhook outcomes"),
                &["result"],
            )
            .expect("valid metric"),
            signatures_verified: IntCounterVec::new(
                Opts::new(
                    "webhook_signatures_verified_total",
                    "Valid webhook signatures by scheme and by the secret that matched",
                ),
                &["scheme", "secret"],
            )
            .expect("valid metric"),
            store_queue_depth: IntGauge::new(
                "store_queue_depth",
                "Messages accepted for storing and not yet answered",
            )
            .expect("valid metric"),
            store_queue_capacity: IntGauge::new(
                "store_queue_capacity",
                "Queue depth at which ingest answers 503",
            )
            .expect("valid metric"),
            store_batch_size: Histogram::with_opts(
                HistogramOpts::new("store_batch_size", "Messages per write transaction")
                    .buckets(prometheus::exponential_buckets(1.0, 2.0, 13).expect("valid")),
            )
            .expect("valid metric"),
            store_commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "store_commit_duration_seconds",
                    "Time to write and commit one batch, in seconds",
                )
                .buckets(vec![
                    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ]),
            )
            .expect("valid metric"),
            store_commit_failures: IntCounter::new(
                "store_commit_failures_total",
                "Write transactions that failed; their messages were answered 503",
            )
            .expect("valid metric"),
            database_ready: IntGauge::new(
                "database_ready",
                "1 when the last readiness probe could write to the database",
            )
            .expect("valid metric"),
            database_size_bytes: IntGauge::new(
                "database_size_bytes",
                "Bytes the database files take on disk",
            )
            .expect("valid metric"),
            retention_deleted: IntCounter::new(
                "retention_deleted_total",
                "Messages deleted because they were older than RETENTION_DAYS",
            )
            .expect("valid metric"),
            text_indexed: IntCounter::new(
                "text_indexed_total",
                "Messages added to the text-search index",
            )
            .expect("valid metric"),
            text_index_backlog: IntGauge::new(
                "text_index_backlog_rows",
                "Messages stored but not yet in the text-search index (searched directly)",
            )
            .expect("valid metric"),
            feed_consumers: IntGauge::new(
                "feed_consumers",
                "Feed requests held waiting for new messages, and open feed streams (a stream \
                 whose client went away counts until its heartbeats find it gone)",
            )
            .expect("valid metric"),
            feed_head: IntGauge::new(
                "feed_head_position",
                "The newest feed position given to a message, as this replica last read it",
            )
            .expect("valid metric"),
            registry,
        };
        for result in WEBHOOK_RESULTS {
            metrics.webhook_requests.with_label_values(&[result]);
        }
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 17] = [
            Box::new(self.http_requests.clone()),
            Box::new(self.http_protocol_errors.clone()),
            Box::new(self.request_latency_ms.clone()),
            Box::new(self.webhook_requests.clone()),
            Box::new(self.signatures_verified.clone()),
            Box::new(self.store_queue_depth.clone()),
            Box::new(self.store_queue_capacity.clone()),
            Box::new(self.store_batch_size.clone()),
            Box::new(self.store_commit_seconds.clone()),
            Box::new(self.store_commit_failures.clone()),
            Box::new(self.database_ready.clone()),
            Box::new(self.database_size_bytes.clone()),
            Box::new(self.retention_deleted.clone()),
            Box::new(self.text_indexed.clone()),
            Box::new(self.text_index_backlog.clone()),
            Box::new(self.feed_consumers.clone()),
            Box::new(self.feed_head.clone()),
        ];
        for collector in collectors {
            self.registry
                .register(collector)
                .expect("each metric is registered once");
        }
    }

    /// Counts one `/webhook` outcome; `result` must be one of [`WEBHOOK_RESULTS`].
    pub fn count_webhook(&self, result: &'static str) {
        self.webhook_requests.with_label_values(&[result]).inc();
    }

    /// Brings `http_protocol_errors_total` up to `seen`, the count since the process started.
    /// Scrapes at the same moment each add only what the other has not (`fetch_max`).
    pub fn protocol_errors_seen(&self, seen: u64) {
        let counted = self
            .protocol_errors_counted
            .fetch_max(seen, Ordering::Relaxed);
        if seen > counted {
            self.http_protocol_errors.inc_by(seen - counted);
        }
    }

    /// The registry in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{Metrics, UNIT_EXCEPTION};

    #[test]
    fn scrapes_at_the_same_moment_count_each_protocol_error_once() {
        let metrics = Metrics::new();
        let seen_up_to = 20_000;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for seen in 1..=seen_up_to {
                        metrics.protocol_errors_seen(seen);
                    }
                });
            }
        });
        assert_eq!(metrics.http_protocol_errors.get(), seen_up_to);
    }

    #[test]
    fn only_the_documented_exception_names_an_abbreviated_unit() {
        let page = Metrics::new().render();
        let names: Vec<&str> = page
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|line| line.split(' ').next())
            .collect();
        assert!(names.len() > 10, "{names:?}");
        for name in names {
            let abbreviated = name
                .split('_')
                .any(|word| ["ms", "us", "ns", "sec", "secs", "kb", "mb"].contains(&word));
            assert_eq!(abbreviated, name == UNIT_EXCEPTION, "{name}");
        }
    }

    #[test]
    fn the_live_metrics_check_allows_exactly_that_exception() {
        let script = include_str!("../.ci/check-metrics");
        let allowed = format!(
            "allowed=\"{UNIT_EXCEPTION} metric names should not contain abbreviated units\""
        );
        assert!(script.contains(&allowed), "{allowed}");
    }
}
