//! Background WAL checkpoints, so the writer never stops to copy pages into the database file.
//!
//! The writer's own automatic checkpoint is off. This task, on its own thread and connection,
//! copies committed WAL frames into the database without blocking anyone (`PASSIVE`) every
//! [`INTERVAL`]. Under continuous writes a passive checkpoint never catches up, so the WAL would
//! grow forever; once it holds more than [`RESTART_AT_BYTES`] the task follows up with `RESTART`,
//! which briefly holds off the writer while the last few frames are copied, then lets the WAL
//! start over from its beginning (and `journal_size_limit` trims the file back to that size).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT_MS, FileIdentity, Role, TrackedConnection, from_sqlite};
use crate::storage::{Maintenance, StorageError};

/// WAL content from which the WAL is made to start over.
pub const RESTART_AT_BYTES: i64 = 256 << 20;
/// How often the WAL size is looked at.
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint task; see the module documentation.
pub struct Checkpointer {
    connection: TrackedConnection,
}

impl Checkpointer {
    pub(super) fn new(path: PathBuf, home: FileIdentity) -> Self {
        Self {
            connection: TrackedConnection::new(path, home, open_checkpointer, Role::Reader),
        }
    }

    /// Runs one checkpoint; returns the bytes of WAL content it found.
    fn checkpoint(&mut self, mode: &str) -> Result<i64, StorageError> {
        let conn = self.connection.get()?;
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .map_err(from_sqlite)?;
        let frames: i64 = conn
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
                row.get(1)
            })
            .map_err(from_sqlite)?;
        Ok(frames.max(0) * page_size)
    }
}

impl Maintenance for Checkpointer {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_once(&mut self) -> Result<(), StorageError> {
        let result = self.checkpoint("PASSIVE").and_then(|wal_bytes| {
            if wal_bytes >= RESTART_AT_BYTES {
                self.checkpoint("RESTART").map(drop)
            } else {
                Ok(())
            }
        });
        self.connection.settle(result)
    }
}

fn open_checkpointer(path: &Path) -> Result<Connection, StorageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(from_sqlite)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(from_sqlite)?;
    Ok(conn)
}
