//! News of the feed: tells held feed requests and open streams when new messages may have been
//! committed, on this replica or any other, so they read again.
//!
//! The newest position is published on a watch channel. While anyone is watching, a small task
//! reads it through the reader pool at once after each local commit and every
//! [`POLL_INTERVAL`] otherwise (the commits of other replicas sharing the database); while
//! nobody watches, it waits and reads nothing. So a held request costs no work while it waits,
//! and hears of a commit within about the interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use tokio::time::Instant;

use super::{HealthHandle, ReaderPool};
use crate::domain::{FeedPage, FeedQuery};
use crate::metrics::Metrics;
use crate::storage::StorageError;

/// How often the newest position is read while someone watches.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where news of the feed is published; cheap to clone.
#[derive(Clone)]
pub struct FeedNews {
    inner: Arc<Inner>,
}

struct Inner {
    head: watch::Sender<u64>,
    watchers: AtomicUsize,
    /// Wakes the reading task when the first watcher arrives.
    someone_watches: Notify,
    /// A local commit stored messages.
    committed: Notify,
    metrics: Metrics,
}

impl FeedNews {
    /// News of the feed read through `readers`; starts its task on the current runtime.
    pub fn start(readers: ReaderPool, metrics: Metrics) -> Self {
        let news = Self {
            inner: Arc::new(Inner {
                head: watch::channel(0).0,
                watchers: AtomicUsize::new(0),
                someone_watches: Notify::new(),
                committed: Notify::new(),
                metrics,
            }),
        };
        actix_web::rt::spawn(Arc::clone(&news.inner).read_while_watched(readers));
        news
    }

    /// Called after a local commit that stored messages.
    pub fn committed(&self) {
        self.inner.committed.notify_one();
    }

    /// Starts watching; counted in `feed_consumers` until the returned guard is dropped.
    pub fn watch(&self) -> Watching {
        self.inner.metrics.feed_consumers.inc();
        if self.inner.watchers.fetch_add(1, Ordering::SeqCst) == 0 {
            self.inner.someone_watches.notify_one();
        }
        Watching {
            inner: Arc::clone(&self.inner),
            head: self.inner.head.subscribe(),
        }
    }
}

impl Inner {
    async fn read_while_watched(self: Arc<Self>, readers: ReaderPool) {
        loop {
            if self.watchers.load(Ordering::SeqCst) == 0 {
                self.someone_watches.notified().await;
                continue;
            }
            tokio::select! {
                () = self.committed.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            if let Ok(head) = readers.feed_head().await {
                self.metrics
                    .feed_head
                    .set(i64::try_from(head).unwrap_or(i64::MAX));
                self.head.send_if_modified(|seen| {
                    let newer = head > *seen;
                    *seen = head.max(*seen);
                    newer
                });
            }
        }
    }
}

/// A consumer watching the feed.
pub struct Watching {
    inner: Arc<Inner>,
    head: watch::Receiver<u64>,
}

impl Watching {
    /// Resolves once the newest position is known to be beyond `seen`.
    pub async fn beyond(&mut self, seen: u64) {
        // The sender lives as long as the news, which this guard keeps alive.
        let _ = self.head.wait_for(|head| *head > seen).await;
    }

    /// A held feed request: `last`, a read of `query` that found nothing, is read again after
    /// each commit beyond the newest position it saw, each time after the position the read
    /// before looked up to, until a read finds messages, `until` passes or the service begins
    /// to stop. Answers the last read and the position it was made after.
    pub async fn read_until_found(
        &mut self,
        readers: &ReaderPool,
        health: &HealthHandle,
        mut query: FeedQuery,
        mut last: FeedPage,
        until: Instant,
    ) -> Result<(FeedPage, u64), StorageError> {
        while last.entries.is_empty() {
            tokio::select! {
                () = self.beyond(last.head) => {}
                () = tokio::time::sleep_until(until) => break,
                () = health.stopping() => break,
            }
            query.after = last.next_after;
            last = readers.feed(query.clone()).await?;
        }
        Ok((last, query.after))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.inner.metrics.feed_consumers.dec();
        self.inner.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}
