//! Background WAL checkpoints, so the writer never stops to copy pages into the database file.
//!
//! The writer's own automatic checkpoint is off. This task, on its own thread and connection,
//! copies committed WAL frames into the database without blocking anyone (`PASSIVE`) once the
//! WAL passes [`PASSIVE_AT_BYTES`]. Under continuous writes a passive checkpoint never catches up,
//! so the WAL would grow forever; past [`RESTART_AT_BYTES`] it follows up with `RESTART`, which
//! briefly holds off the writer while the last few frames are copied, then lets the WAL start
//! over from its beginning (and `journal_size_limit` trims the file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT_MS, FileIdentity, Role, TrackedConnection, from_sqlite};
use crate::storage::{Maintenance, StorageError};

/// WAL size from which committed frames are copied into the database.
const PASSIVE_AT_BYTES: u64 = 16 << 20;
/// WAL size from which the WAL is made to start over.
const RESTART_AT_BYTES: u64 = 64 << 20;
/// How often the WAL size is looked at.
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint task; see the module documentation.
pub struct Checkpointer {
    connection: TrackedConnection,
    wal_path: PathBuf,
}

impl Checkpointer {
    pub(super) fn new(path: PathBuf, home: FileIdentity) -> Self {
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        Self {
            connection: TrackedConnection::new(path, home, open_checkpointer, Role::Reader),
            wal_path: wal.into(),
        }
    }

    fn checkpoint(&mut self, mode: &str) -> Result<(), StorageError> {
        let conn = self.connection.get()?;
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
            .map_err(from_sqlite)
    }
}

impl Maintenance for Checkpointer {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn run_once(&mut self) -> Result<(), StorageError> {
        let wal_bytes = std::fs::metadata(&self.wal_path).map_or(0, |m| m.len());
        if wal_bytes < PASSIVE_AT_BYTES {
            return Ok(());
        }
        let result = self.checkpoint("PASSIVE").and_then(|()| {
            if wal_bytes >= RESTART_AT_BYTES {
                self.checkpoint("RESTART")
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
