//! The actors behind the HTTP layer, and the handles handlers use to talk to them.
//!
//! - [`store::StoreActor`]: the single writer, on its own thread, behind a bounded queue.
//! - [`reader::ReaderActor`]: a pool of read-only threads for queries.
//! - [`health::HealthActor`]: probes the database and caches readiness.
//! - [`maintenance::MaintenanceActor`]: the store's own background work, on its own thread.
//! - [`feed::FeedNews`]: tells what waits for new messages when some may have been committed.
//!
//! Handlers only see [`StoreHandle`], [`ReaderPool`] and [`HealthHandle`]; which database sits
//! behind the actors is decided by the [`Storage`] given to [`spawn`].
//!
//! Searches (`q`) can walk many rows, so at most half the readers (rounded up) run one at a
//! time: the others stay free for `/stats` and listings however many searches arrive. A search
//! waits for a turn outside the readers, for at most the read timeout (by then a running one
//! has ended), and is otherwise answered as a read that ran out of time.

pub mod feed;
pub mod health;
pub mod maintenance;
pub mod reader;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, MailboxError, SyncArbiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::config::Config;
use crate::domain::{
    FeedPage, FeedQuery, MessageFilter, MessagePage, MessageQuery, MessageSlice, NewMessage,
    Position, Stats,
};
use crate::metrics::Metrics;
use crate::storage::{InsertOutcome, MessageReader, Storage, StorageError, StorageErrorKind};
use feed::FeedNews;
use health::{GetReadiness, HealthActor, Readiness};
use maintenance::MaintenanceActor;
use reader::{GetFeedHead, GetStats, ListMessages, ReadFeed, ReaderActor, ScanMessages};
use store::{Drain, Ingest, StoreActor};

/// The longest a query may wait for a reader before it is answered 503.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The running actors.
pub struct Actors {
    pub store: StoreHandle,
    pub readers: ReaderPool,
    pub feed: FeedNews,
    pub health: HealthHandle,
    store_thread: Arbiter,
    maintenance_thread: Option<Arbiter>,
}

/// Starts every actor on `storage`. Must run inside an actix `System`.
pub fn spawn(storage: &dyn Storage, config: &Config, metrics: &Metrics) -> Actors {
    let readers = ReaderPool::start(
        (0..config.readers).map(|_| storage.reader()).collect(),
        config.read_timeout(),
    );
    let feed = FeedNews::start(readers.clone(), metrics.clone());

    let store_thread = Arbiter::new();
    let store = StoreActor::new(
        storage.writer(),
        config.store_max_batch,
        config.retention(),
        metrics.clone(),
        feed.clone(),
    );
    let store_addr = StoreActor::start_in_arbiter(&store_thread.handle(), |_| store);

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
        readers,
        feed,
        health: HealthHandle {
            addr: health_addr,
            stopping: Arc::new(watch::channel(false).0),
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

/// Sends queries to the [`ReaderActor`] pool, letting at most half of its readers search at
/// once.
#[derive(Clone)]
pub struct ReaderPool {
    addr: Addr<ReaderActor>,
    searches: Arc<Semaphore>,
    search_wait: Duration,
}

impl ReaderPool {
    /// Starts one thread per reader; a search waits at most `search_wait` for its turn.
    pub fn start(readers: Vec<Box<dyn MessageReader>>, search_wait: Duration) -> Self {
        let threads = readers.len().max(1);
        let search_slots = threads.div_ceil(2);
        let readers = std::sync::Mutex::new(readers);
        let addr = SyncArbiter::start(threads, move || {
            let reader = readers
                .lock()
                .expect("reader threads start one at a time")
                .pop()
                .expect("one reader was made per thread");
            ReaderActor::new(reader)
        });
        Self {
            addr,
            searches: Arc::new(Semaphore::new(search_slots)),
            search_wait,
        }
    }

    pub async fn list(&self, query: MessageQuery) -> Result<MessagePage, StorageError> {
        let _turn = self.turn(&query.filter).await?;
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
        let _turn = self.turn(&filter).await?;
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

    /// A read of the feed.
    pub async fn feed(&self, query: FeedQuery) -> Result<FeedPage, StorageError> {
        flatten(self.addr.send(ReadFeed(query)).timeout(QUERY_TIMEOUT).await)
    }

    /// The newest feed position.
    pub async fn feed_head(&self) -> Result<u64, StorageError> {
        flatten(self.addr.send(GetFeedHead).timeout(QUERY_TIMEOUT).await)
    }

    /// For a search, one of the search slots, held until the read ends; nothing otherwise.
    async fn turn(
        &self,
        filter: &MessageFilter,
    ) -> Result<Option<OwnedSemaphorePermit>, StorageError> {
        if filter.q.is_none() {
            return Ok(None);
        }
        let waiting = Arc::clone(&self.searches).acquire_owned();
        match tokio::time::timeout(self.search_wait, waiting).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(StorageError::new(
                StorageErrorKind::TimedOut,
                "no search slot came free in time",
            )),
        }
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
    /// Set once, when a stop begins; shared by every clone, and awaitable.
    stopping: Arc<watch::Sender<bool>>,
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
    /// requests are still served, and whatever waits for news (held feed requests, streams)
    /// ends.
    pub fn begin_stopping(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether a stop has begun; cheap enough to ask on every request.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once a stop has begun.
    pub async fn stopping(&self) {
        let mut stopping = self.stopping.subscribe();
        // The sender lives as long as this handle, so waiting cannot fail.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use super::ReaderPool;
    use crate::domain::{
        FeedPage, FeedQuery, MessageFilter, MessagePage, MessageQuery, MessageSlice, Position,
        Stats,
    };
    use crate::storage::{MessageReader, StorageError, StorageErrorKind};

    /// Searches that block until released, counting how many run at once.
    #[derive(Default)]
    struct Gate {
        running: AtomicUsize,
        most: AtomicUsize,
        released: Mutex<bool>,
        opened: Condvar,
    }

    impl Gate {
        fn release(&self) {
            *self.released.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    struct GatedReader(Arc<Gate>);

    impl MessageReader for GatedReader {
        fn list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError> {
            if query.filter.q.is_some() {
                let gate = &self.0;
                let now = gate.running.fetch_add(1, Ordering::SeqCst) + 1;
                gate.most.fetch_max(now, Ordering::SeqCst);
                let released = gate.released.lock().unwrap();
                drop(gate.opened.wait_while(released, |open| !*open).unwrap());
                gate.running.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(MessagePage {
                data: Vec::new(),
                total: 0,
                next: None,
            })
        }

        fn scan(
            &mut self,
            _: &MessageFilter,
            _: Option<&Position>,
            _: usize,
        ) -> Result<MessageSlice, StorageError> {
            Ok(MessageSlice {
                messages: Vec::new(),
                next: None,
            })
        }

        fn stats(&mut self) -> Result<Stats, StorageError> {
            Ok(Stats {
                total_messages: 0,
                senders_count: 0,
                messages_per_sender: Vec::new(),
                first_message_ts: None,
                last_message_ts: None,
            })
        }

        fn feed(&mut self, query: &FeedQuery) -> Result<FeedPage, StorageError> {
            Ok(FeedPage {
                entries: Vec::new(),
                next_after: query.after,
                head: 0,
                oldest: None,
            })
        }

        fn feed_head(&mut self) -> Result<u64, StorageError> {
            Ok(0)
        }
    }

    fn search() -> MessageQuery {
        MessageQuery {
            filter: MessageFilter {
                q: Some("x".to_owned()),
                ..MessageFilter::default()
            },
            limit: 1,
            offset: 0,
            after: None,
        }
    }

    #[actix_web::test]
    async fn searches_take_at_most_half_the_readers_and_a_late_one_gives_up_in_time() {
        let gate = Arc::new(Gate::default());
        let readers: Vec<Box<dyn MessageReader>> = (0..4)
            .map(|_| Box::new(GatedReader(Arc::clone(&gate))) as Box<dyn MessageReader>)
            .collect();
        let pool = ReaderPool::start(readers, Duration::from_millis(300));
        let running: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                actix_web::rt::spawn(async move { pool.list(search()).await })
            })
            .collect();
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;

        let late = pool.list(search()).await.unwrap_err();
        assert_eq!(late.kind, StorageErrorKind::TimedOut, "{late}");
        let stats = actix_web::rt::time::timeout(Duration::from_secs(2), pool.stats()).await;
        assert!(
            stats.is_ok(),
            "a reader is free for /stats while searches run"
        );
        let listing = MessageQuery {
            filter: MessageFilter::default(),
            ..search()
        };
        let listed = actix_web::rt::time::timeout(Duration::from_secs(2), pool.list(listing));
        assert!(listed.await.is_ok(), "and for a listing");

        gate.release();
        for search in running {
            search.await.unwrap().unwrap();
        }
        assert_eq!(gate.most.load(Ordering::SeqCst), 2, "half of four readers");
    }
}
