//! The actors behind the HTTP layer, and the handles handlers use to talk to them.
//!
//! - [`store::StoreActor`]: the single writer, on its own thread, behind a bounded queue.
//! - [`reader::ReaderActor`]: a pool of read-only threads for queries.
//! - [`health::HealthActor`]: probes the database and caches readiness.
//! - [`maintenance::MaintenanceActor`]: the store's own background work, on its own thread.
//!
//! Handlers only see [`StoreHandle`], [`ReaderPool`] and [`HealthHandle`]; which database sits
//! behind the actors is decided by the [`Storage`] given to [`spawn`].

pub mod health;
pub mod maintenance;
pub mod reader;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, MailboxError, SyncArbiter};
use tokio::sync::{Semaphore, oneshot};

use crate::config::Config;
use crate::domain::{
    MessageFilter, MessagePage, MessageQuery, MessageSlice, NewMessage, Position, Stats,
};
use crate::metrics::Metrics;
use crate::storage::{InsertOutcome, Storage, StorageError, StorageErrorKind};
use health::{GetReadiness, HealthActor, Readiness};
use maintenance::MaintenanceActor;
use reader::{GetStats, ListMessages, ReaderActor, ScanMessages};
use store::{Drain, Ingest, StoreActor};

/// The longest a query may wait for a reader before it is answered 503.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The running actors.
pub struct Actors {
    pub store: StoreHandle,
    pub readers: ReaderPool,
    pub health: HealthHandle,
    store_thread: Arbiter,
    maintenance_thread: Option<Arbiter>,
}

/// Starts every actor on `storage`. Must run inside an actix `System`.
pub fn spawn(storage: &dyn Storage, config: &Config, metrics: &Metrics) -> Actors {
    let store_thread = Arbiter::new();
    let store = StoreActor::new(
        storage.writer(),
        config.store_max_batch,
        config.retention(),
        metrics.clone(),
    );
    let store_addr = StoreActor::start_in_arbiter(&store_thread.handle(), |_| store);

    let readers: Vec<_> = (0..config.readers).map(|_| storage.reader()).collect();
    let readers = std::sync::Mutex::new(readers);
    let reader_addr = SyncArbiter::start(config.readers, move || {
        let reader = readers
            .lock()
            .expect("reader threads start one at a time")
            .pop()
            .expect("one reader was made per thread");
        ReaderActor::new(reader)
    });

    let maintenance_thread = storage.background().map(|task| {
        let thread = Arbiter::new();
        MaintenanceActor::start_in_arbiter(&thread.handle(), |_| MaintenanceActor::new(task));
        thread
    });

    let health_addr = HealthActor::new(
        store_addr.clone(),
        config.health_probe_interval(),
        metrics.clone(),
    )
    .start();

    metrics
        .store_queue_capacity
        .set(i64::try_from(config.store_queue_capacity).unwrap_or(i64::MAX));
    Actors {
        store: StoreHandle {
            addr: store_addr,
            queue: Arc::new(Semaphore::new(config.store_queue_capacity)),
            capacity: config.store_queue_capacity,
        },
        readers: ReaderPool { addr: reader_addr },
        health: HealthHandle {
            addr: health_addr,
            stopping: Arc::new(AtomicBool::new(false)),
        },
        store_thread,
        maintenance_thread,
    }
}

impl Actors {
    /// Commits what the store still holds, then stops its thread.
    pub async fn drain(self) {
        self.store.drain().await;
        self.store_thread.stop();
        if let Some(thread) = self.maintenance_thread {
            thread.stop();
        }
    }
}

/// Why a message could not be stored; the sender should retry.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the store queue is full")]
    Overloaded,
    #[error(transparent)]
    Unavailable(#[from] StorageError),
}

/// Sends messages to the [`StoreActor`] through its bounded queue.
#[derive(Clone)]
pub struct StoreHandle {
    addr: Addr<StoreActor>,
    queue: Arc<Semaphore>,
    capacity: usize,
}

impl StoreHandle {
    /// Stores one message and resolves once it is committed, or with why it was not.
    pub async fn ingest(&self, message: NewMessage) -> Result<InsertOutcome, IngestError> {
        let permit = Arc::clone(&self.queue)
            .try_acquire_owned()
            .map_err(|_| IngestError::Overloaded)?;
        let (reply, answer) = oneshot::channel();
        self.addr.do_send(Ingest {
            message,
            reply,
            permit,
        });
        let outcome = answer.await.unwrap_or_else(|_| {
            Err(StorageError::new(
                StorageErrorKind::Other,
                "the store stopped before answering",
            ))
        })?;
        Ok(outcome)
    }

    /// Messages accepted and not yet answered.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.queue.available_permits()
    }

    async fn drain(&self) {
        let _ = self.addr.send(Drain).await;
    }
}

/// Sends queries to the [`ReaderActor`] pool.
#[derive(Clone)]
pub struct ReaderPool {
    addr: Addr<ReaderActor>,
}

impl ReaderPool {
    pub async fn list(&self, query: MessageQuery) -> Result<MessagePage, StorageError> {
        flatten(
            self.addr
                .send(ListMessages(query))
                .timeout(QUERY_TIMEOUT)
                .await,
        )
    }

    /// The next `limit` messages of an export, after `after`.
    pub async fn scan(
        &self,
        filter: MessageFilter,
        after: Option<Position>,
        limit: usize,
    ) -> Result<MessageSlice, StorageError> {
        let scan = ScanMessages {
            filter,
            after,
            limit,
        };
        flatten(self.addr.send(scan).timeout(QUERY_TIMEOUT).await)
    }

    pub async fn stats(&self) -> Result<Stats, StorageError> {
        flatten(self.addr.send(GetStats).timeout(QUERY_TIMEOUT).await)
    }
}

fn flatten<T>(answer: Result<Result<T, StorageError>, MailboxError>) -> Result<T, StorageError> {
    answer.unwrap_or_else(|e| {
        Err(StorageError::new(
            StorageErrorKind::Other,
            format!("reader pool: {e}"),
        ))
    })
}

/// Why a stopping service is not ready, whatever its database says.
pub const STOPPING_REASON: &str = "shutting down";

/// Reads the readiness cached by the [`HealthActor`], and whether the service is stopping.
#[derive(Clone)]
pub struct HealthHandle {
    addr: Addr<HealthActor>,
    /// Set once, when a stop begins; shared by every clone.
    stopping: Arc<AtomicBool>,
}

impl HealthHandle {
    /// Not ready with [`STOPPING_REASON`] once [`HealthHandle::begin_stopping`] was called;
    /// otherwise what the last database probe found.
    pub async fn readiness(&self) -> Readiness {
        if self.is_stopping() {
            return Readiness::NotReady(STOPPING_REASON.to_owned());
        }
        self.addr
            .send(GetReadiness)
            .await
            .unwrap_or_else(|_| Readiness::NotReady("health monitor stopped".to_owned()))
    }

    /// Marks the service as stopping, for good: readiness answers 503 from now on, while
    /// requests are still served.
    pub fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether a stop has begun; cheap enough to ask on every request.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}
