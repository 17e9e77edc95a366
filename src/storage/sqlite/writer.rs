//! The single SQLite writer: one connection, one transaction per batch.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::{BUSY_TIMEOUT_MS, SCHEMA, TrackedConnection, from_sqlite};
use crate::domain::NewMessage;
use crate::domain::timestamp::{format_micros, now_micros};
use crate::storage::{InsertOutcome, MessageWriter, ProbeReport, StorageError};

const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (message_id, from_msisdn, to_msisdn, ts, ts_us, text, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (message_id) DO NOTHING";

const TOUCH_HEALTH_PROBE: &str = "UPDATE health_probe SET probed_at = ?1 WHERE id = 1";

/// Writes batches of messages; see [`MessageWriter`].
pub struct SqliteWriter {
    connection: TrackedConnection,
}

impl SqliteWriter {
    pub fn new(path: PathBuf) -> Self {
        Self {
            connection: TrackedConnection::new(path, open_writer),
        }
    }

    fn try_insert(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError> {
        let conn = self.connection.get()?;
        let created_at = format_micros(now_micros());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(from_sqlite)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(INSERT_MESSAGE).map_err(from_sqlite)?;
            for m in batch {
                let changed = insert
                    .execute(params![
                        m.message_id,
                        m.from,
                        m.to,
                        m.ts.as_str(),
                        m.ts.micros(),
                        m.text,
                        created_at
                    ])
                    .map_err(from_sqlite)?;
                outcomes.push(if changed == 1 {
                    InsertOutcome::Created
                } else {
                    InsertOutcome::Duplicate
                });
            }
        }
        if outcomes.contains(&InsertOutcome::Created) {
            tx.commit().map_err(from_sqlite)?;
        } else {
            // Only duplicates: nothing changed, so nothing needs to reach the disk.
            tx.rollback().map_err(from_sqlite)?;
        }
        Ok(outcomes)
    }

    fn try_probe(&mut self) -> Result<ProbeReport, StorageError> {
        let conn = self.connection.get()?;
        conn.execute(TOUCH_HEALTH_PROBE, [format_micros(now_micros())])
            .map_err(from_sqlite)?;
        Ok(ProbeReport {
            size_bytes: self.connection.files_size(),
        })
    }
}

impl MessageWriter for SqliteWriter {
    fn insert_batch(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError> {
        let result = self.try_insert(batch);
        if result.is_err() {
            self.connection.reset();
        }
        result
    }

    fn probe(&mut self) -> Result<ProbeReport, StorageError> {
        let result = self.try_probe();
        if result.is_err() {
            self.connection.reset();
        }
        result
    }
}

fn open_writer(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(from_sqlite)?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(from_sqlite)?;
    conn.execute_batch(SCHEMA).map_err(from_sqlite)?;
    Ok(conn)
}
