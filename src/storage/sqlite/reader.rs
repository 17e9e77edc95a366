//! Read-only SQLite connections for `/messages` and `/stats`.
//!
//! Each page and its `total` are read in one transaction, so they describe the same snapshot.
//! `total` comes from the maintained aggregates when the filters allow (none, or `from` alone)
//! and from `COUNT(*)` otherwise.

use std::path::{Path, PathBuf};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};

use super::{BUSY_TIMEOUT_MS, FileIdentity, Role, TrackedConnection, from_sqlite};
use crate::domain::{
    MessageFilter, MessagePage, MessageQuery, MessageSlice, Position, SenderCount, Stats,
    StoredMessage, TextSearch,
};
use crate::storage::{MessageReader, StorageError};

/// Answers reads; see [`MessageReader`].
pub struct SqliteReader {
    connection: TrackedConnection,
}

impl SqliteReader {
    pub(super) fn new(path: PathBuf, home: FileIdentity) -> Self {
        Self {
            connection: TrackedConnection::new(path, home, open_reader, Role::Reader),
        }
    }

    fn try_list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError> {
        let conn = self.connection.get()?;
        let tx = conn.transaction().map_err(from_sqlite)?;
        let total = count(&tx, &query.filter)?;
        let slice = select(
            &tx,
            &query.filter,
            query.after.as_ref(),
            query.limit as usize,
            query.offset,
        )?;
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
        let conn = self.connection.get()?;
        select(conn, filter, after, limit, 0)
    }

    fn try_stats(&mut self) -> Result<Stats, StorageError> {
        let conn = self.connection.get()?;
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
}

/// ` WHERE ...` (or nothing) and its arguments, for the filters in `filter` and, when given,
/// only the rows after `after` in listing order.
fn where_clause(filter: &MessageFilter, after: Option<&Position>) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(from) = &filter.from {
        conditions.push("from_msisdn = ?");
        args.push(Value::Text(from.clone()));
    }
    if let Some(to) = &filter.to {
        conditions.push("to_msisdn = ?");
        args.push(Value::Text(to.clone()));
    }
    if let Some(since) = &filter.since {
        conditions.push("ts_us >= ?");
        args.push(Value::Integer(since.micros()));
    }
    if let Some(until) = &filter.until {
        conditions.push("ts_us < ?");
        args.push(Value::Integer(until.micros()));
    }
    if let Some(after) = after {
        conditions.push("(ts_us, message_id) > (?, ?)");
        args.push(Value::Integer(after.ts_us));
        args.push(Value::Text(after.message_id.clone()));
    }
    if let Some(q) = &filter.q {
        conditions.push("text_contains(text, ?)");
        args.push(Value::Text(TextSearch::new(q).needle().to_owned()));
    }
    if conditions.is_empty() {
        return (String::new(), args);
    }
    (format!(" WHERE {}", conditions.join(" AND ")), args)
}

/// Up to `limit` rows matching `filter` in listing order, after `after` and then `offset` rows,
/// and the position of the last one when more follow.
fn select(
    conn: &Connection,
    filter: &MessageFilter,
    after: Option<&Position>,
    limit: usize,
    offset: u64,
) -> Result<MessageSlice, StorageError> {
    // One row more than asked for tells whether more follow.
    let (condition, mut args) = where_clause(filter, after);
    args.push(Value::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
    ));
    args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT message_id, from_msisdn, to_msisdn, ts, text, ts_us FROM messages{condition} \
         ORDER BY ts_us, message_id LIMIT ? OFFSET ?"
    );
    let mut statement = conn.prepare_cached(&sql).map_err(from_sqlite)?;
    let mut rows = statement
        .query_map(params_from_iter(args), |row| {
            Ok((
                StoredMessage {
                    message_id: row.get(0)?,
                    from: row.get(1)?,
                    to: row.get(2)?,
                    ts: row.get(3)?,
                    text: row.get(4)?,
                },
                row.get::<_, i64>(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(from_sqlite)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|(message, ts_us)| Position {
            ts_us: *ts_us,
            message_id: message.message_id.clone(),
        });
    Ok(MessageSlice {
        messages: rows.into_iter().map(|(message, _)| message).collect(),
        next,
    })
}

/// The number of rows matching `filter`, from the aggregates when they answer it exactly.
fn count(conn: &Connection, filter: &MessageFilter) -> Result<u64, StorageError> {
    let (condition, args) = where_clause(filter, None);
    let total: i64 = match filter {
        MessageFilter {
            from: None,
            to: None,
            since: None,
            until: None,
            q: None,
        } => conn.query_row(
            "SELECT message_count FROM message_totals WHERE id = 1",
            [],
            |row| row.get(0),
        ),
        MessageFilter {
            from: Some(from),
            to: None,
            since: None,
            until: None,
            q: None,
        } => conn
            .query_row(
                "SELECT message_count FROM sender_stats WHERE from_msisdn = ?",
                [from],
                |row| row.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default),
        _ => conn.query_row(
            &format!("SELECT COUNT(*) FROM messages{condition}"),
            params_from_iter(args),
            |row| row.get(0),
        ),
    }
    .map_err(from_sqlite)?;
    Ok(total.unsigned_abs())
}

fn open_reader(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(from_sqlite)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(from_sqlite)?;
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
