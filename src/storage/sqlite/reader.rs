//! Read-only SQLite connections for `/messages` and `/stats`.
//!
//! Each page and its `total` are read in one transaction, so they describe the same snapshot.
//! How a page is chosen and read is `listing`'s business; how its total is counted, `totals`'.
//! Every read runs under a [`Deadline`] of the store's read timeout, enforced inside SQLite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::deadline::Deadline;
use super::totals;
use super::{FileIdentity, Role, TrackedConnection, connect, from_sqlite};
use super::{feed, listing};
use crate::domain::{
    FeedPage, FeedQuery, MessageFilter, MessagePage, MessageQuery, MessageSlice, Position,
    SenderCount, Stats, TextSearch,
};
use crate::storage::Tuning;
use crate::storage::total_cache::TotalCache;
use crate::storage::{MessageReader, StorageError};

/// Answers reads; see [`MessageReader`].
pub struct SqliteReader {
    connection: TrackedConnection,
    tuning: Tuning,
    totals: Arc<TotalCache>,
    read_timeout: Duration,
}

impl SqliteReader {
    pub(super) fn new(
        path: PathBuf,
        home: FileIdentity,
        tuning: Tuning,
        totals: Arc<TotalCache>,
        read_timeout: Duration,
    ) -> Self {
        Self {
            connection: TrackedConnection::new(path, home, open_reader, Role::Reader),
            tuning,
            totals,
            read_timeout,
        }
    }

    fn try_list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError> {
        let tuning = self.tuning;
        let totals = Arc::clone(&self.totals);
        let deadline = Deadline::after(self.read_timeout);
        let conn = self.connection.get()?;
        // One read transaction, so the page and the total describe the same snapshot.
        let (total, slice) = deadline.enforce(conn, |conn| {
            in_read_transaction(conn, |conn| {
                let (slice, found) = listing::select(
                    conn,
                    &query.filter,
                    query.after.as_ref(),
                    query.limit as usize,
                    query.offset,
                    tuning,
                    deadline,
                )?;
                let total = totals::count(conn, &query.filter, found, tuning, deadline, &totals)?;
                Ok((total, slice))
            })
        })?;
        Ok(MessagePage {
            data: slice.messages,
            total,
            next: slice.next,
        })
    }

    fn try_scan(
        &mut self,
        filter: &MessageFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<MessageSlice, StorageError> {
        let (tuning, deadline) = (self.tuning, Deadline::after(self.read_timeout));
        let conn = self.connection.get()?;
        deadline.enforce(conn, |conn| {
            listing::select(conn, filter, after, limit, 0, tuning, deadline).map(|(slice, _)| slice)
        })
    }

    fn try_stats(&mut self) -> Result<Stats, StorageError> {
        let deadline = Deadline::after(self.read_timeout);
        let conn = self.connection.get()?;
        deadline.enforce(conn, read_stats)
    }
}

/// The aggregates, in one transaction.
fn read_stats(conn: &mut Connection) -> Result<Stats, StorageError> {
    let tx = conn.transaction().map_err(from_sqlite)?;
    let (total_messages, senders_count): (i64, i64) = tx
        .query_row(
            "SELECT message_count, sender_count FROM message_totals WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(from_sqlite)?;
    let messages_per_sender = tx
        .prepare_cached(
            "SELECT from_msisdn, message_count FROM sender_stats \
                 ORDER BY message_count DESC, from_msisdn LIMIT 10",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| {
                    Ok(SenderCount {
                        from: row.get(0)?,
                        count: row.get::<_, i64>(1)?.unsigned_abs(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(from_sqlite)?;
    let first_message_ts = tx
        .query_row(
            "SELECT ts FROM messages ORDER BY ts_us, message_id LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(from_sqlite)?;
    let last_message_ts = tx
        .query_row(
            "SELECT ts FROM messages ORDER BY ts_us DESC, message_id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(from_sqlite)?;
    Ok(Stats {
        total_messages: total_messages.unsigned_abs(),
        senders_count: senders_count.unsigned_abs(),
        messages_per_sender,
        first_message_ts,
        last_message_ts,
    })
}

impl MessageReader for SqliteReader {
    fn list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError> {
        let result = self.try_list(query);
        self.connection.settle(result)
    }

    fn scan(
        &mut self,
        filter: &MessageFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<MessageSlice, StorageError> {
        let result = self.try_scan(filter, after, limit);
        self.connection.settle(result)
    }

    fn stats(&mut self) -> Result<Stats, StorageError> {
        let result = self.try_stats();
        self.connection.settle(result)
    }

    fn feed(&mut self, query: &FeedQuery) -> Result<FeedPage, StorageError> {
        let result = self
            .connection
            .get()
            .and_then(|conn| in_read_transaction(conn, |conn| feed::read(conn, query)));
        self.connection.settle(result)
    }

    fn feed_head(&mut self) -> Result<u64, StorageError> {
        let result = self.connection.get().and_then(|conn| feed::head(conn));
        self.connection.settle(result)
    }
}

/// Runs `read` inside `BEGIN` … `COMMIT` on the connection itself (the budgeted reads need it
/// mutably, which a `Transaction` guard would not allow).
fn in_read_transaction<T>(
    conn: &mut Connection,
    read: impl FnOnce(&mut Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    conn.execute_batch("BEGIN").map_err(from_sqlite)?;
    let result = read(conn);
    let ended = conn.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let value = result?;
    ended.map_err(from_sqlite)?;
    Ok(value)
}

fn open_reader(path: &Path) -> Result<Connection, StorageError> {
    let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // `text_contains(text, lowered_needle)`: the `q` filter, with exactly the semantics of
    // `TextSearch` (Unicode case-insensitive, no wildcards).
    conn.create_scalar_function(
        "text_contains",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text = ctx.get_raw(0).as_str_or_null().unwrap_or_default();
            let needle = ctx.get_raw(1).as_str().unwrap_or_default();
            Ok(text.is_some_and(|text| TextSearch::contains(text, needle)))
        },
    )
    .map_err(from_sqlite)?;
    Ok(conn)
}
