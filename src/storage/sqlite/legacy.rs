//! Reads the `messages` table of a database written by the original Python/FastAPI service
//! (`message_id, from_msisdn, to_msisdn, ts, text, created_at`), for `import --from-sqlite`.
//!
//! Rows are read in `rowid` order, a slice at a time, so memory stays constant however large
//! the table is. Values come back untyped (as JSON values), to be validated like any delivery.

use std::collections::VecDeque;
use std::path::Path;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, params};
use serde_json::Value;

use super::from_sqlite;
use crate::storage::StorageError;

const SLICE: i64 = 10_000;

/// One row of the old table.
pub struct LegacyRow {
    /// The row's `rowid`, to point at it in error reports.
    pub rowid: i64,
    pub message_id: Value,
    pub from: Value,
    pub to: Value,
    pub ts: Value,
    pub text: Value,
    pub created_at: Option<String>,
}

/// The rows of an old database, in `rowid` order.
pub struct LegacyMessages {
    conn: Connection,
    after_rowid: i64,
    buffer: VecDeque<LegacyRow>,
    exhausted: bool,
}

impl LegacyMessages {
    /// Opens `path` read-only and checks it has the expected table.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(from_sqlite)?;
        conn.query_row(
            "SELECT message_id, from_msisdn, to_msisdn, ts, text, created_at FROM messages LIMIT 0",
            [],
            |_| Ok(()),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(()),
            other => Err(from_sqlite(other)),
        })?;
        Ok(Self {
            conn,
            after_rowid: i64::MIN,
            buffer: VecDeque::new(),
            exhausted: false,
        })
    }

    /// How many rows the table holds.
    pub fn total_rows(&self) -> Result<u64, StorageError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM messages", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(i64::unsigned_abs)
            .map_err(from_sqlite)
    }

    fn fill(&mut self) -> Result<(), StorageError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT rowid, message_id, from_msisdn, to_msisdn, ts, text, created_at \
                 FROM messages WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            )
            .map_err(from_sqlite)?;
        let rows = statement
            .query_map(params![self.after_rowid, SLICE], |row| {
                Ok(LegacyRow {
                    rowid: row.get(0)?,
                    message_id: json(row.get(1)?),
                    from: json(row.get(2)?),
                    to: json(row.get(3)?),
                    ts: json(row.get(4)?),
                    text: json(row.get(5)?),
                    created_at: match row.get::<_, SqlValue>(6)? {
                        SqlValue::Text(text) => Some(text),
                        _ => None,
                    },
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(from_sqlite)?;
        self.exhausted = rows.len() < SLICE as usize;
        if let Some(last) = rows.last() {
            self.after_rowid = last.rowid;
        }
        self.buffer.extend(rows);
        Ok(())
    }
}

impl Iterator for LegacyMessages {
    type Item = Result<LegacyRow, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty()
            && !self.exhausted
            && let Err(error) = self.fill()
        {
            self.exhausted = true;
            return Some(Err(error));
        }
        self.buffer.pop_front().map(Ok)
    }
}

/// An SQL value as the JSON value a request body would have carried; a blob is no string.
fn json(value: SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(n) => Value::from(n),
        SqlValue::Real(x) => Value::from(x),
        SqlValue::Text(text) => Value::String(text),
        SqlValue::Blob(_) => Value::Array(Vec::new()),
    }
}
