//! `StoreActor`: the only writer. It runs on its own thread and commits messages in batches.
//!
//! Each `Ingest` joins the pending batch. The batch is committed when it reaches the maximum
//! size, or as soon as the mailbox has been drained (the flush is queued behind the messages
//! already waiting), so a burst shares one transaction while a lone message is committed at
//! once. Only after the commit is each sender answered: `Created` rows are on disk. If the commit
//! fails, every message of the batch gets the error and nothing is stored.
//!
//! Between batches the actor runs the work the store declares for that time
//! ([`MessageWriter::between_batches`]): while ingest is quiet, steps back to back, each queued
//! behind whatever messages arrived meanwhile; while it is busy, one short step per interval. It
//! also deletes expired messages in small slices and proves writability for readiness, both
//! queued behind the messages waiting.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::feed::FeedNews;
use crate::config::Retention;
use crate::domain::NewMessage;
use crate::domain::timestamp::now_micros;
use crate::metrics::Metrics;
use crate::storage::{
    InsertOutcome, Load, MessageWriter, ProbeReport, Progress, StorageError, StorageErrorKind,
};

/// How long a failed commit keeps readiness at 503 when probes pass (no traffic can prove the
/// store healthy while the service is out of rotation, so this must end by itself).
const FAILURE_STICKS_FOR: Duration = Duration::from_secs(2);

/// Store one message and answer on `reply` once it is committed (or failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ingest {
    pub message: NewMessage,
    pub reply: oneshot::Sender<Result<InsertOutcome, StorageError>>,
    /// The message's place in the bounded queue, released once it is answered.
    pub permit: OwnedSemaphorePermit,
}

/// Commit whatever is pending.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

/// Prove the database takes a durable write.
#[derive(Message)]
#[rtype(result = "Result<ProbeReport, StorageError>")]
pub struct ProbeWritable;

/// Delete one more slice of expired messages.
#[derive(Message)]
#[rtype(result = "()")]
struct Expire;

/// Run one more step of the store's work between batches.
#[derive(Message)]
#[rtype(result = "()")]
struct Upkeep;

/// Commit what is pending and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

struct Pending {
    reply: oneshot::Sender<Result<InsertOutcome, StorageError>>,
    _permit: OwnedSemaphorePermit,
}

pub struct StoreActor {
    writer: Box<dyn MessageWriter>,
    max_batch: usize,
    retention: Option<Retention>,
    metrics: Metrics,
    batch: Vec<NewMessage>,
    waiting: Vec<Pending>,
    flush_queued: bool,
    last_commit: Instant,
    /// Told after each commit that stored messages.
    feed: FeedNews,
    /// How often the store's work between batches is due, when it declares any.
    upkeep_interval: Option<Duration>,
    /// The last commit that failed for want of disk space, and when: readiness reports it for
    /// [`FAILURE_STICKS_FOR`] unless a commit succeeds meanwhile, because a probe's tiny write
    /// can still fit where a batch no longer does. (Other causes the probe finds by itself.)
    last_commit_failure: Option<(Instant, StorageError)>,
}

impl StoreActor {
    pub fn new(
        mut writer: Box<dyn MessageWriter>,
        max_batch: usize,
        retention: Option<Retention>,
        metrics: Metrics,
        feed: FeedNews,
    ) -> Self {
        let upkeep_interval = writer.between_batches().map(|upkeep| upkeep.interval());
        Self {
            writer,
            max_batch,
            retention,
            metrics,
            batch: Vec::with_capacity(max_batch),
            waiting: Vec::with_capacity(max_batch),
            flush_queued: false,
            last_commit: Instant::now(),
            feed,
            upkeep_interval,
            last_commit_failure: None,
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let result = self.writer.insert_batch(&self.batch);
        self.metrics
            .store_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .store_batch_size
            .observe(self.batch.len() as f64);
        self.batch.clear();
        match result {
            Ok(outcomes) => {
                self.last_commit = Instant::now();
                self.last_commit_failure = None;
                if outcomes.contains(&InsertOutcome::Created) {
                    self.feed.committed();
                }
                for (pending, outcome) in self.waiting.drain(..).zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                self.metrics.store_commit_failures.inc();
                if error.kind == StorageErrorKind::Full {
                    self.last_commit_failure = Some((Instant::now(), error.clone()));
                }
                tracing::error!(error = %error, "storing a batch failed; answering 503");
                for pending in self.waiting.drain(..) {
                    let _ = pending.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

impl Actor for StoreActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(interval) = self.upkeep_interval {
            ctx.run_interval(interval, |act, ctx| {
                if act.is_quiet() {
                    ctx.notify(Upkeep);
                } else {
                    act.upkeep(Load::Busy);
                }
            });
        }
        if let Some(retention) = self.retention {
            ctx.notify(Expire);
            ctx.run_interval(retention.interval, |_, ctx| ctx.notify(Expire));
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> actix::Running {
        self.flush();
        actix::Running::Stop
    }
}

impl Handler<Ingest> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: Ingest, ctx: &mut Self::Context) {
        self.batch.push(msg.message);
        self.waiting.push(Pending {
            reply: msg.reply,
            _permit: msg.permit,
        });
        if self.batch.len() >= self.max_batch {
            self.flush();
        } else if !self.flush_queued {
            self.flush_queued = true;
            ctx.notify(Flush);
        }
    }
}

impl Handler<Flush> for StoreActor {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Self::Context) {
        self.flush_queued = false;
        self.flush();
    }
}

/// Expired messages deleted per transaction: small enough that ingest batches, which queue
/// behind each slice, barely wait.
const EXPIRE_SLICE: usize = 1000;

impl Handler<Expire> for StoreActor {
    type Result = ();

    fn handle(&mut self, _: Expire, ctx: &mut Self::Context) {
        let Some(retention) = self.retention else {
            return;
        };
        let max_age = i64::try_from(retention.max_age.as_micros()).unwrap_or(i64::MAX);
        let cutoff = now_micros().saturating_sub(max_age);
        match self.writer.delete_before(cutoff, EXPIRE_SLICE) {
            Ok(deleted) => {
                self.metrics.retention_deleted.inc_by(deleted as u64);
                if deleted == EXPIRE_SLICE {
                    // More to delete: continue after whatever ingest is waiting.
                    ctx.notify(Expire);
                }
            }
            Err(error) => tracing::error!(error = %error, "deleting expired messages failed"),
        }
    }
}

impl StoreActor {
    /// No batch is pending and none was committed for an upkeep interval.
    fn is_quiet(&self) -> bool {
        self.batch.is_empty()
            && self
                .upkeep_interval
                .is_some_and(|interval| self.last_commit.elapsed() >= interval)
    }

    /// One step of the store's work between batches.
    fn upkeep(&mut self, load: Load) -> Progress {
        let Some(upkeep) = self.writer.between_batches() else {
            return Progress::Done;
        };
        upkeep.step(load).unwrap_or_else(|error| {
            tracing::debug!(error = %error, "store upkeep failed; will retry");
            Progress::Done
        })
    }
}

impl Handler<Upkeep> for StoreActor {
    type Result = ();

    fn handle(&mut self, _: Upkeep, ctx: &mut Self::Context) {
        // Queued behind whatever arrived meanwhile; stop as soon as ingest resumes.
        if self.is_quiet() && self.upkeep(Load::Quiet) == Progress::MoreWaiting {
            ctx.notify(Upkeep);
        }
    }
}

impl Handler<ProbeWritable> for StoreActor {
    type Result = Result<ProbeReport, StorageError>;

    fn handle(&mut self, _: ProbeWritable, _: &mut Self::Context) -> Self::Result {
        let report = self.writer.probe()?;
        match &self.last_commit_failure {
            Some((when, failure)) if when.elapsed() < FAILURE_STICKS_FOR => Err(failure.clone()),
            _ => Ok(report),
        }
    }
}

impl Handler<Drain> for StoreActor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) {
        self.flush();
        if let Err(error) = self.writer.close() {
            tracing::warn!(error = %error, "the store could not be left tidy for the next start");
        }
        ctx.stop();
    }
}
