//! `HealthActor`: decides readiness by asking the writer to prove, on a short interval, that the
//! database takes a durable write. `/health/ready` reads the cached answer, so a probe never
//! blocks a request, and readiness follows the database within one interval plus the timeout.
//!
//! Only one probe is ever outstanding: while the writer is stuck (say, waiting for a lock held by
//! another process), readiness turns 503 once the probe is older than the timeout, but no further
//! probes pile up in the writer's mailbox in front of the messages waiting there.

use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult, WrapFuture,
};

use super::store::{ProbeWritable, StoreActor};
use crate::metrics::Metrics;

/// Whether the service can take messages now, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

/// Ask for the current readiness.
#[derive(Message)]
#[rtype(result = "Readiness")]
pub struct GetReadiness;

pub struct HealthActor {
    store: Addr<StoreActor>,
    interval: Duration,
    timeout: Duration,
    metrics: Metrics,
    readiness: Readiness,
    /// When the outstanding probe was sent, if one is.
    probing_since: Option<Instant>,
}

impl HealthActor {
    /// Starts as ready: startup has just applied the schema and opened the writer.
    pub fn new(store: Addr<StoreActor>, interval: Duration, metrics: Metrics) -> Self {
        metrics.database_ready.set(1);
        Self {
            store,
            interval,
            timeout: interval.max(Duration::from_secs(1)),
            metrics,
            readiness: Readiness::Ready,
            probing_since: None,
        }
    }

    fn probe(&mut self, ctx: &mut Context<Self>) {
        if let Some(since) = self.probing_since {
            if since.elapsed() > self.timeout {
                self.set(Readiness::NotReady("database probe timed out".to_owned()));
            }
            return;
        }
        self.probing_since = Some(Instant::now());
        let probe = self.store.send(ProbeWritable);
        ctx.spawn(probe.into_actor(self).map(|answer, act, _| {
            act.probing_since = None;
            let readiness = match answer {
                Ok(Ok(report)) => {
                    act.metrics
                        .database_size_bytes
                        .set(i64::try_from(report.size_bytes).unwrap_or(i64::MAX));
                    Readiness::Ready
                }
                Ok(Err(error)) => {
                    if act.readiness == Readiness::Ready {
                        tracing::error!(error = %error, "database probe failed; not ready");
                    }
                    Readiness::NotReady(error.reason().to_owned())
                }
                Err(_) => Readiness::NotReady("the writer has stopped".to_owned()),
            };
            act.set(readiness);
        }));
    }

    fn set(&mut self, readiness: Readiness) {
        if readiness == Readiness::Ready && self.readiness != Readiness::Ready {
            tracing::info!("database probe succeeded; ready again");
        }
        self.metrics
            .database_ready
            .set(i64::from(readiness == Readiness::Ready));
        self.readiness = readiness;
    }
}

impl Actor for HealthActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // At once too, so the database metrics are filled in from the start.
        self.probe(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.probe(ctx));
    }
}

impl Handler<GetReadiness> for HealthActor {
    type Result = MessageResult<GetReadiness>;

    fn handle(&mut self, _: GetReadiness, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.readiness.clone())
    }
}
