//! PostgreSQL readers for `/messages`, exports and `/stats`: one connection each, every read
//! one read-only transaction at `REPEATABLE READ`, so a page and its `total` describe the same
//! snapshot, with the read's statement timeout. Readers never wait for writers (MVCC).

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::Client;

use super::connection::{Connection, begin_read, get, query, query_one};
use super::totals;
use super::{feed, listing};
use crate::domain::{
    FeedPage, FeedQuery, MessageFilter, MessagePage, MessageQuery, MessageSlice, Position,
    SenderCount, Stats,
};
use crate::storage::total_cache::TotalCache;
use crate::storage::{MessageReader, StorageError, Tuning};

/// Answers reads; see [`MessageReader`].
pub struct PostgresReader {
    connection: Connection,
    read_timeout: Duration,
    tuning: Tuning,
    totals: Arc<TotalCache>,
}

impl PostgresReader {
    pub fn new(
        connection: Connection,
        read_timeout: Duration,
        tuning: Tuning,
        totals: Arc<TotalCache>,
    ) -> Self {
        Self {
            connection,
            read_timeout,
            tuning,
            totals,
        }
    }
}

impl MessageReader for PostgresReader {
    fn list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError> {
        let (read_timeout, tuning) = (self.read_timeout, self.tuning);
        let totals = Arc::clone(&self.totals);
        let deadline = Instant::now() + read_timeout;
        self.connection
            .transaction(&begin_read(read_timeout), |client| {
                let page = (query.after.as_ref(), query.limit as usize, query.offset);
                let plans = (tuning, totals.as_ref());
                let slice = listing::select(client, &query.filter, page, plans, read_timeout)?;
                let limits = (tuning, read_timeout, deadline);
                let total = totals::count(client, &query.filter, &totals, limits)?;
                Ok(MessagePage {
                    data: slice.messages,
                    total,
                    next: slice.next,
                })
            })
    }

    fn scan(
        &mut self,
        filter: &MessageFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<MessageSlice, StorageError> {
        let (read_timeout, tuning) = (self.read_timeout, self.tuning);
        let totals = Arc::clone(&self.totals);
        self.connection
            .transaction(&begin_read(read_timeout), |client| {
                let plans = (tuning, totals.as_ref());
                listing::select(client, filter, (after, limit, 0), plans, read_timeout)
            })
    }

    fn stats(&mut self) -> Result<Stats, StorageError> {
        self.connection
            .transaction(&begin_read(self.read_timeout), read_stats)
    }

    fn feed(&mut self, query: &FeedQuery) -> Result<FeedPage, StorageError> {
        self.connection
            .transaction(&begin_read(self.read_timeout), |client| {
                feed::read(client, query)
            })
    }

    fn feed_head(&mut self) -> Result<u64, StorageError> {
        self.connection
            .transaction(&begin_read(self.read_timeout), feed::head)
    }
}

/// `/stats` from the aggregates and the two ends of the `ts` index.
fn read_stats(client: &mut Client) -> Result<Stats, StorageError> {
    let totals = query_one(
        client,
        "SELECT message_count, sender_count FROM message_totals WHERE id = 1",
        &[],
    )?;
    let messages_per_sender = query(
        client,
        "SELECT from_msisdn, message_count FROM sender_stats \
         ORDER BY message_count DESC, from_msisdn LIMIT 10",
        &[],
    )?
    .iter()
    .map(|row| {
        Ok(SenderCount {
            from: get(row, 0)?,
            count: get::<i64>(row, 1)?.unsigned_abs(),
        })
    })
    .collect::<Result<Vec<_>, StorageError>>()?;
    let end = |client: &mut Client, order: &str| -> Result<Option<String>, StorageError> {
        let rows = query(
            client,
            &format!("SELECT ts FROM messages ORDER BY ts_us {order}, message_id {order} LIMIT 1"),
            &[],
        )?;
        rows.first().map(|row| get(row, 0)).transpose()
    };
    Ok(Stats {
        total_messages: get::<i64>(&totals, 0)?.unsigned_abs(),
        senders_count: get::<i64>(&totals, 1)?.unsigned_abs(),
        messages_per_sender,
        first_message_ts: end(client, "ASC")?,
        last_message_ts: end(client, "DESC")?,
    })
}
