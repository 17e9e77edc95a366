//! The feed on SQLite: messages by position (`seq`), read in one transaction with the newest and
//! oldest positions. The single writer gives positions in the order it commits, so every
//! position up to the head a read sees is already visible to it.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::from_sqlite;
use crate::domain::{FeedEntry, FeedPage, FeedQuery, Message};
use crate::storage::{FEED_SCAN_WINDOW, StorageError, feed_page};

/// The newest position given.
pub fn head(conn: &Connection) -> Result<u64, StorageError> {
    conn.query_row(
        "SELECT feed_head FROM message_totals WHERE id = 1",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(i64::unsigned_abs)
    .map_err(from_sqlite)
}

/// A read of the feed; see [`crate::storage::MessageReader::feed`]. Runs inside a read
/// transaction.
pub fn read(conn: &Connection, query: &FeedQuery) -> Result<FeedPage, StorageError> {
    let head = head(conn)?;
    let oldest: Option<i64> = conn
        .query_row("SELECT min(seq) FROM messages", [], |row| row.get(0))
        .optional()
        .map_err(from_sqlite)?
        .flatten();
    let window_end = head.min(query.after.saturating_add(FEED_SCAN_WINDOW));
    let mut sql = String::from(
        "SELECT seq, message_id, from_msisdn, to_msisdn, ts, text FROM messages \
         INDEXED BY messages_by_seq WHERE seq > ? AND seq <= ?",
    );
    let mut args = vec![
        Value::Integer(i64::try_from(query.after).unwrap_or(i64::MAX)),
        Value::Integer(i64::try_from(window_end).unwrap_or(i64::MAX)),
    ];
    if let Some(from) = &query.from {
        sql.push_str(" AND from_msisdn = ?");
        args.push(Value::Text(from.clone()));
    }
    if let Some(to) = &query.to {
        sql.push_str(" AND to_msisdn = ?");
        args.push(Value::Text(to.clone()));
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    args.push(Value::Integer(i64::from(query.limit)));
    let entries = conn
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_map(params_from_iter(args), |row| {
                    Ok(FeedEntry {
                        seq: row.get::<_, i64>(0)?.unsigned_abs(),
                        message: Message {
                            message_id: row.get(1)?,
                            from: row.get(2)?,
                            to: row.get(3)?,
                            ts: row.get(4)?,
                            text: row.get(5)?,
                        },
                    })
                })?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(from_sqlite)?;
    Ok(feed_page(
        query,
        entries,
        window_end,
        head,
        oldest.map(i64::unsigned_abs),
    ))
}
