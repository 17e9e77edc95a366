//! The embedded SQLite store: one file in WAL mode, `synchronous=FULL`, schema from `schema.sql`.
//!
//! Every connection remembers which file it opened (device and inode). Before each use it checks
//! that the path still names that file, and reopens when it does not, so a database that is
//! removed or replaced underneath the service is noticed at once instead of writes going to an
//! unlinked file that no restart would find.

mod aggregates;
mod checkpoint;
mod clause;
mod deadline;
mod feed;
#[cfg(test)]
mod fixture;
mod hours;
pub mod legacy;
mod listing;
mod reader;
mod text_index;
mod totals;
mod upgrade;
mod upkeep;
mod writer;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use reader::SqliteReader;
pub use writer::SqliteWriter;

use super::{
    DEFAULT_READ_TIMEOUT, MessageReader, MessageWriter, Storage, StorageError, StorageErrorKind,
    Tuning, Upkeep,
};
use crate::metrics::Metrics;

/// The whole schema, applied at every start; each statement is idempotent.
const SCHEMA: &str = include_str!("../../../schema.sql");

/// How long a connection waits for a lock held by another connection.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Readiness reasons that name a cause the store-neutral kinds cannot (they are documented).
const FILE_MISSING: &str = "database file is missing";
const FILE_REPLACED: &str =
    "database file was replaced while in use; restart the service to use the new file";
const NOT_A_DATABASE: &str = "database file is not a usable database";

/// An SQLite database file.
#[derive(Clone)]
pub struct SqliteStorage {
    path: PathBuf,
    home: FileIdentity,
    totals: Arc<crate::storage::total_cache::TotalCache>,
    /// The WAL's content as the background checkpoint last saw it.
    wal_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// Where the text index reports its progress.
    metrics: Metrics,
    /// How its readers plan pages.
    tuning: Tuning,
    /// The longest a read may run.
    read_timeout: Duration,
}

impl SqliteStorage {
    /// Creates the parent folder and the database when missing, switches it to WAL and applies
    /// the schema. Later connections never create the file: a database that disappears while the
    /// service runs is reported, not silently recreated empty.
    pub fn initialize(path: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StorageError::new(
                    StorageErrorKind::ReadOnly,
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(from_sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(from_sqlite)?;
        upgrade::apply_schema(&mut conn)?;
        let home = FileIdentity::of(&path)?;
        Ok(Self {
            path,
            home,
            totals: Arc::default(),
            wal_bytes: Arc::default(),
            metrics: Metrics::new(),
            tuning: Tuning::default(),
            read_timeout: DEFAULT_READ_TIMEOUT,
        })
    }

    /// The same store, reporting the text index's progress to `metrics`.
    pub fn reporting_to(mut self, metrics: &Metrics) -> Self {
        self.metrics = metrics.clone();
        self
    }

    /// The same store, its readers planning pages with `tuning`.
    pub fn planned_with(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    /// The same store, its reads interrupted once they run for `timeout`.
    pub fn reading_within(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Uses an existing database, applying the schema; never creates one.
    pub fn open_existing(path: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let path = path.into();
        FileIdentity::of(&path)?;
        Self::initialize(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SqliteStorage {
    /// The writer, as itself rather than behind [`MessageWriter`] (its upkeep steps are its own).
    fn sqlite_writer(&self) -> SqliteWriter {
        SqliteWriter::new(
            self.path.clone(),
            self.home,
            Arc::clone(&self.wal_bytes),
            self.metrics.clone(),
        )
    }
}

impl Storage for SqliteStorage {
    fn writer(&self) -> Box<dyn MessageWriter> {
        Box::new(self.sqlite_writer())
    }

    fn reader(&self) -> Box<dyn MessageReader> {
        Box::new(SqliteReader::new(
            self.path.clone(),
            self.home,
            self.tuning,
            Arc::clone(&self.totals),
            self.read_timeout,
        ))
    }

    fn background(&self) -> Option<Box<dyn Upkeep>> {
        Some(Box::new(checkpoint::Checkpointer::new(
            self.path.clone(),
            self.home,
            Arc::clone(&self.wal_bytes),
        )))
    }
}

/// Which file a connection opened, to notice when the path names another file (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> Result<Self, StorageError> {
        let metadata = std::fs::metadata(path).map_err(|e| {
            StorageError::new(
                StorageErrorKind::Unreachable,
                format!("{}: {e}", path.display()),
            )
            .because(FILE_MISSING)
        })?;
        Ok(Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

/// What a connection is for, which decides what it checks and does when the file is lost.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Reads, or checkpoints: keeps its connection for when the file comes back.
    Reader,
    /// The single writer: also checks the file is still writable (an open connection would go
    /// on writing to a file whose permissions were taken away, and the next start would fail);
    /// and when the file is lost, checkpoints the WAL into the file it had and empties it, once,
    /// so the WAL left at the path can never be replayed into whatever file appears there next.
    Writer,
}

/// A connection to the service's one database file.
///
/// The file is the one found at the path when the service started (its "home"). Before every
/// use the path is checked: if it is gone, or names another file, the connection is not used
/// (the store answers that the file is missing or was replaced) and no other file is ever opened in its place; the
/// connection is kept, and work resumes when the home file is back at the path. A failed
/// connection is reopened, on the home file only.
struct TrackedConnection {
    path: PathBuf,
    home: FileIdentity,
    open: fn(&Path) -> Result<Connection, StorageError>,
    role: Role,
    current: Option<Connection>,
    wal_emptied: bool,
}

impl TrackedConnection {
    fn new(
        path: PathBuf,
        home: FileIdentity,
        open: fn(&Path) -> Result<Connection, StorageError>,
        role: Role,
    ) -> Self {
        Self {
            path,
            home,
            open,
            role,
            current: None,
            wal_emptied: false,
        }
    }

    /// The connection, once the path is checked to still name the home file.
    fn get(&mut self) -> Result<&mut Connection, StorageError> {
        if let Err(error) = self.check_home() {
            // Unreachable: the path names no file, or another one.
            if error.kind == StorageErrorKind::Unreachable {
                self.lost();
            }
            return Err(error);
        }
        self.wal_emptied = false;
        if self.current.is_none() {
            let conn = (self.open)(&self.path)?;
            // The path could have changed while it was being opened.
            self.check_home()?;
            self.current = Some(conn);
        }
        Ok(self.current.as_mut().expect("a connection was just opened"))
    }

    /// Whether the path still names the home file; after a commit, this says whether the
    /// commit went into the file the service is answering for.
    fn check_home(&self) -> Result<(), StorageError> {
        let identity = FileIdentity::of(&self.path)?;
        if identity != self.home {
            return Err(StorageError::new(
                StorageErrorKind::Unreachable,
                format!(
                    "{} is no longer the file opened at startup",
                    self.path.display()
                ),
            )
            .because(FILE_REPLACED));
        }
        if self.role == Role::Writer {
            // Asked of the kernel, not by opening the file: closing any descriptor of the file
            // would drop every POSIX lock this process holds on it, SQLite's included, and let
            // another process delete the WAL under an open connection.
            rustix::fs::access(&self.path, rustix::fs::Access::WRITE_OK).map_err(|e| {
                StorageError::new(
                    StorageErrorKind::ReadOnly,
                    format!("{}: {e}", self.path.display()),
                )
            })?;
        }
        Ok(())
    }

    fn lost(&mut self) {
        if self.role == Role::Writer
            && !self.wal_emptied
            && let Some(conn) = &self.current
        {
            self.wal_emptied = true;
            let emptied = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            if let Err(error) = emptied {
                tracing::error!(error = %error, "emptying the WAL of the lost database failed");
            }
        }
    }

    /// Bytes taken by the database file and its WAL and shared-memory files.
    fn files_size(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| self.file_len(suffix))
            .sum()
    }

    /// Bytes taken by the WAL file (0 when there is none).
    fn wal_file_len(&self) -> u64 {
        self.file_len("-wal")
    }

    /// Bytes taken by the database file with `suffix` appended to its name (0 when missing).
    fn file_len(&self, suffix: &str) -> u64 {
        let mut name = self.path.clone().into_os_string();
        name.push(suffix);
        std::fs::metadata(name).map_or(0, |metadata| metadata.len())
    }

    /// Settles a use of the connection: after a failure that may lie in the connection itself,
    /// it is dropped so the next use opens a fresh one on the home file. Failures that lie
    /// elsewhere (the file's whereabouts or permissions, a lock held by another process, a full
    /// disk) keep it: reopening would not help, and would itself wait for the lock.
    fn settle<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(error) = &result
            && error.kind == StorageErrorKind::Other
        {
            self.current = None;
        }
        result
    }
}

/// Opens `path` (never creating it) for one thread's use, waiting up to [`BUSY_TIMEOUT_MS`] for
/// locks held by other connections.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StorageError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(from_sqlite)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(from_sqlite)?;
    Ok(conn)
}

/// Runs `work` with `conn` waiting at most `wait` for locks, then restores the usual wait.
fn with_busy_timeout<T>(
    conn: &mut Connection,
    wait: Duration,
    work: impl FnOnce(&mut Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    conn.busy_timeout(wait).map_err(from_sqlite)?;
    let result = work(conn);
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(from_sqlite)?;
    result
}

/// Classifies an SQLite error into a public kind, keeping its text for the logs.
fn from_sqlite(error: rusqlite::Error) -> StorageError {
    let kind = match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StorageErrorKind::Full,
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            StorageErrorKind::ReadOnly
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StorageErrorKind::Locked,
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            return StorageError::new(StorageErrorKind::Other, error.to_string())
                .because(NOT_A_DATABASE);
        }
        Some(ErrorCode::OperationInterrupted) => StorageErrorKind::TimedOut,
        _ => StorageErrorKind::Other,
    };
    StorageError::new(kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::fixture::temp_db;
    use super::*;
    use crate::domain::{MessageQuery, NewMessage};
    use crate::signing::cursor::CursorCodec;
    use crate::storage::{InsertOutcome, Load};

    fn message(id: &str, from: &str, ts: &str, text: &str) -> NewMessage {
        let body = serde_json::json!({"message_id": id, "from": from, "to": "+14155550100",
                                      "ts": ts, "text": text});
        NewMessage::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn initialize_creates_the_parent_folder_and_is_idempotent() {
        let (dir, storage) = temp_db();
        assert!(storage.path().exists());
        SqliteStorage::initialize(dir.path().join("nested/app.db")).unwrap();
    }

    #[test]
    fn a_batch_reports_created_and_duplicate_in_order() {
        let (_dir, storage) = temp_db();
        let mut writer = storage.writer();
        let a = message("a", "+1", "2025-01-15T10:00:00Z", "x");
        let b = message("b", "+1", "2025-01-15T10:00:01Z", "y");
        let outcomes = writer.insert_batch(&[a.clone(), b, a.clone()]).unwrap();
        use InsertOutcome::*;
        assert_eq!(outcomes, vec![Created, Created, Duplicate]);
        assert_eq!(writer.insert_batch(&[a]).unwrap(), vec![Duplicate]);
    }

    #[test]
    fn a_batch_of_only_duplicates_writes_nothing_to_disk() {
        let (_dir, storage) = temp_db();
        let mut writer = storage.writer();
        let batch = [
            message("a", "+1", "2025-01-15T10:00:00Z", "x"),
            message("b", "+2", "2025-01-15T10:00:01Z", "y"),
        ];
        writer.insert_batch(&batch).unwrap();
        let wal = |storage: &SqliteStorage| {
            let mut name = storage.path().as_os_str().to_owned();
            name.push("-wal");
            std::fs::read(name).unwrap()
        };
        let before = wal(&storage);
        use InsertOutcome::*;
        assert_eq!(
            writer.insert_batch(&batch).unwrap(),
            vec![Duplicate, Duplicate]
        );
        assert_eq!(wal(&storage), before, "the WAL is byte for byte the same");
    }

    #[test]
    fn tidying_keeps_the_wal_under_load_and_empties_it_when_quiet() {
        let (_dir, storage) = temp_db();
        let mut writer = storage.writer();
        writer
            .insert_batch(&[message("a", "+1", "2025-01-15T10:00:00Z", "x")])
            .unwrap();
        let wal_len = |storage: &SqliteStorage| {
            let mut name = storage.path().as_os_str().to_owned();
            name.push("-wal");
            std::fs::metadata(name).unwrap().len()
        };
        let written = wal_len(&storage);
        assert!(written > 0);
        let upkeep = writer
            .between_batches()
            .expect("the SQLite writer has upkeep");
        // A busy step indexes the new row's text, which only adds to the WAL.
        upkeep.step(Load::Busy).unwrap();
        assert!(
            wal_len(&storage) >= written,
            "a small WAL waits for a quiet moment"
        );
        // The WAL is tidied at most every half second.
        std::thread::sleep(std::time::Duration::from_millis(600));
        upkeep.step(Load::Quiet).unwrap();
        assert_eq!(
            wal_len(&storage),
            0,
            "copied into the database and truncated"
        );
        let mut reader = storage.reader();
        assert_eq!(reader.stats().unwrap().total_messages, 1);
    }

    #[test]
    fn stats_follow_inserts_and_ignore_duplicates() {
        let (_dir, storage) = temp_db();
        let mut writer = storage.writer();
        let batch = [
            message("a", "+2", "2025-01-15T10:00:00.5Z", "x"),
            message("b", "+1", "2025-01-15T10:00:00Z", "y"),
            message("c", "+2", "2025-01-15T11:00:00Z", "z"),
        ];
        writer.insert_batch(&batch).unwrap();
        writer.insert_batch(&batch).unwrap();
        let stats = storage.reader().stats().unwrap();
        assert_eq!((stats.total_messages, stats.senders_count), (3, 2));
        let top: Vec<_> = stats
            .messages_per_sender
            .iter()
            .map(|s| (s.from.as_str(), s.count))
            .collect();
        assert_eq!(top, vec![("+2", 2), ("+1", 1)]);
        assert_eq!(
            stats.first_message_ts.as_deref(),
            Some("2025-01-15T10:00:00Z")
        );
        assert_eq!(
            stats.last_message_ts.as_deref(),
            Some("2025-01-15T11:00:00Z")
        );
    }

    #[test]
    fn the_ten_busiest_senders_match_a_full_count_as_counts_rise_and_fall() {
        let (_dir, storage) = temp_db();
        let mut writer = storage.writer();
        // 40 senders with counts spread over several ranks, many ties; older rows first.
        let mut n = 0;
        let mut batch = Vec::new();
        for sender in 0..40_i64 {
            for _ in 0..(sender * 37 % 23 + sender % 5 + 1) {
                n += 1;
                let ts = format!("2025-01-{:02}T00:00:00Z", 1 + n % 28);
                batch.push(message(
                    &format!("m{n}"),
                    &format!("+{}", 100 + sender),
                    &ts,
                    "x",
                ));
            }
        }
        writer.insert_batch(&batch).unwrap();
        let mut reader = storage.reader();
        let expected = |kept: &[NewMessage]| {
            let mut counts = std::collections::BTreeMap::<String, u64>::new();
            kept.iter()
                .for_each(|m| *counts.entry(m.from.clone()).or_default() += 1);
            let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.truncate(10);
            ranked
        };
        let top = |reader: &mut Box<dyn MessageReader>| -> Vec<(String, u64)> {
            let stats = reader.stats().unwrap();
            stats
                .messages_per_sender
                .into_iter()
                .map(|s| (s.from, s.count))
                .collect()
        };
        assert_eq!(top(&mut reader), expected(&batch));

        // Retention removes the first half of January; counts fall, some senders vanish.
        let cutoff = crate::domain::Timestamp::parse("2025-01-15T00:00:00Z").unwrap();
        while writer.delete_before(cutoff.micros(), 7).unwrap() > 0 {}
        let kept: Vec<NewMessage> = batch
            .into_iter()
            .filter(|m| m.ts.micros() >= cutoff.micros())
            .collect();
        assert_eq!(top(&mut reader), expected(&kept));
        let stats = reader.stats().unwrap();
        assert_eq!(stats.total_messages, kept.len() as u64);
    }

    #[test]
    fn a_removed_database_file_is_reported_missing() {
        let (_dir, storage) = temp_db();
        let mut writer = storage.writer();
        writer.probe().unwrap();
        std::fs::remove_file(storage.path()).unwrap();
        let error = writer.probe().unwrap_err();
        assert_eq!(
            (error.kind, error.reason()),
            (StorageErrorKind::Unreachable, FILE_MISSING)
        );
        let mut reader = storage.reader();
        let query = MessageQuery::from_pairs([], &CursorCodec::new(b"k")).unwrap();
        assert_eq!(reader.list(&query).unwrap_err().reason(), FILE_MISSING);
    }
}
