//! Background WAL checkpoints, so the writer never stops to copy pages into the database file.
//!
//! The writer's own automatic checkpoint is off. This task, on its own thread and connection,
//! copies committed WAL frames into the database without blocking anyone (`PASSIVE`) every
//! [`INTERVAL`]. Under continuous writes it never quite catches up (frames keep coming while it
//! copies), so the WAL could never start over and would grow forever: when ingest is quiet (or
//! the WAL passes 512 MiB) the writer itself checkpoints between two batches
//! ([`super::writer`]), copying the frames this task has not, after which its next transaction
//! starts the WAL over from the beginning (when quiet, it also truncates the file). That is far
//! cheaper than a `RESTART` checkpoint from here, which must wait for the write lock and then
//! holds off the writer while it copies. Under load even the writer's own copy costs tens of
//! milliseconds (over 100 ms at a million rows), hence the wait for a quiet moment; but the WAL
//! cannot be left to grow either (every page read looks it up in the WAL index, which slows with
//! its size: a WAL of gigabytes made p99 latency ten times worse in the benchmark), hence the
//! bound.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{FileIdentity, Role, TrackedConnection, connect, from_sqlite};
use crate::storage::{Load, Progress, StorageError, Upkeep};

/// How often the WAL size is looked at.
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint task; see the module documentation.
pub struct Checkpointer {
    connection: TrackedConnection,
    /// Bytes of frames the WAL held at the last checkpoint, for the writer to read.
    wal_bytes: Arc<AtomicU64>,
    /// The database's page size, read once.
    page_size: Option<i64>,
}

impl Checkpointer {
    pub(super) fn new(path: PathBuf, home: FileIdentity, wal_bytes: Arc<AtomicU64>) -> Self {
        Self {
            connection: TrackedConnection::new(path, home, open_checkpointer, Role::Reader),
            wal_bytes,
            page_size: None,
        }
    }

    fn checkpoint(&mut self) -> Result<(), StorageError> {
        let conn = self.connection.get()?;
        let page_size = match self.page_size {
            Some(page_size) => page_size,
            None => *self.page_size.insert(
                conn.query_row("PRAGMA page_size", [], |row| row.get(0))
                    .map_err(from_sqlite)?,
            ),
        };
        let frames: i64 = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .map_err(from_sqlite)?;
        self.wal_bytes.store(
            (frames.max(0) * page_size).unsigned_abs(),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

impl Upkeep for Checkpointer {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn step(&mut self, _: Load) -> Result<Progress, StorageError> {
        let result = self.checkpoint();
        self.connection.settle(result).map(|()| Progress::Done)
    }
}

fn open_checkpointer(path: &Path) -> Result<Connection, StorageError> {
    connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
}
