//! The single SQLite writer: one connection, one transaction per batch. Its work between
//! batches (text indexing, emptying the WAL) is in [`super::upkeep`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::aggregates::{CountChanges, Positions};
use super::text_index;
use super::upkeep::UpkeepState;
use super::{FileIdentity, Role, TrackedConnection, connect, from_sqlite, with_busy_timeout};
use crate::domain::NewMessage;
use crate::domain::timestamp::{format_micros, now_micros};
use crate::metrics::Metrics;
use crate::storage::{
    ImportAborted, ImportReport, ImportRow, ImportRows, InsertOutcome, MessageWriter, ProbeReport,
    StorageError, Upkeep, import_in_chunks,
};

const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (message_id, from_msisdn, to_msisdn, ts, ts_us, text, created_at, seq) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (message_id) DO NOTHING";

/// The oldest messages by `ts`, a bounded number at a time, so each transaction stays short.
const DELETE_BEFORE: &str = "DELETE FROM messages WHERE rowid IN \
     (SELECT rowid FROM messages WHERE ts_us < ?1 ORDER BY ts_us LIMIT ?2) \
     RETURNING rowid, from_msisdn, to_msisdn, ts_us";

/// During an import, aggregate changes are written once this many keys are pending.
const MAX_PENDING_COUNTS: usize = 100_000;

/// Page cache of the writer connection, in KiB (negative `cache_size`): large enough to keep
/// the index pages a batch touches in memory for tables of millions of rows.
const WRITER_CACHE_KIB: i64 = -131_072;
/// Past this WAL size the writer checkpoints even while busy, so a long burst cannot grow the
/// WAL without bound. Each such checkpoint holds batches up for tens of milliseconds, so it
/// must be rare: a full-speed burst writes a few hundred MB of WAL per second, and at 64 MiB the
/// pauses came every half second and set the p99 latency.
const WAL_FORCED_CHECKPOINT_BYTES: u64 = 512 << 20;
/// Page cache while importing, in KiB.
const IMPORT_CACHE_KIB: i64 = -1_048_576;

/// How long the last checkpoint, at a stop, waits for one the background thread is making.
const CLOSE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the readiness probe waits for a lock held by another connection.
const PROBE_BUSY_TIMEOUT: Duration = Duration::from_millis(500);

const TOUCH_HEALTH_PROBE: &str = "UPDATE health_probe SET probed_at = ?1 WHERE id = 1";

/// Writes batches of messages; see [`MessageWriter`].
pub struct SqliteWriter {
    connection: TrackedConnection,
    /// The WAL's content as the background checkpoint last saw it.
    wal_bytes: Arc<AtomicU64>,
    /// Where the text index reports its progress.
    pub(super) metrics: Metrics,
    /// Where the work between batches stands.
    pub(super) upkeep: UpkeepState,
}

impl SqliteWriter {
    pub(super) fn new(
        path: PathBuf,
        home: FileIdentity,
        wal_bytes: Arc<AtomicU64>,
        metrics: Metrics,
    ) -> Self {
        Self {
            connection: TrackedConnection::new(path, home, open_writer, Role::Writer),
            wal_bytes,
            metrics,
            upkeep: UpkeepState::default(),
        }
    }

    fn try_insert(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError> {
        let conn = self.connection.get()?;
        let created_at = format_micros(now_micros());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(from_sqlite)?;
        let mut counts = CountChanges::default();
        let mut positions = Positions::read(&tx)?;
        let outcomes = {
            let mut insert = tx.prepare_cached(INSERT_MESSAGE).map_err(from_sqlite)?;
            batch
                .iter()
                .map(|m| insert_one(&mut insert, m, &created_at, &mut counts, &mut positions))
                .collect::<Result<Vec<_>, _>>()?
        };
        if outcomes.contains(&InsertOutcome::Created) {
            counts.apply(&tx)?;
            positions.record(&tx)?;
            tx.commit().map_err(from_sqlite)?;
            // A commit only counts if it went into the file the path still names.
            self.connection.check_home()?;
            self.upkeep.rows_stored();
        } else {
            // Only duplicates: nothing changed, so nothing needs to reach the disk.
            tx.rollback().map_err(from_sqlite)?;
        }
        Ok(outcomes)
    }

    /// Imports `rows` chunk by chunk, each in its own transaction; see [`MessageWriter::import`].
    fn try_import(
        &mut self,
        rows: &mut dyn Iterator<Item = Result<ImportRow, ImportAborted>>,
        commit_every: Option<usize>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, StorageError> {
        let conn = self.connection.get()?;
        // A bulk load touches far more pages than a batch; a large cache keeps them in memory
        // until the commit.
        conn.pragma_update(None, "cache_size", IMPORT_CACHE_KIB)
            .map_err(from_sqlite)?;
        let received_at = format_micros(now_micros());
        let report = import_in_chunks(rows, commit_every, progress, |chunk, progress| {
            import_chunk(conn, chunk, &received_at, progress)
        })?;
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(from_sqlite)?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(from_sqlite)?;
        Ok(report)
    }

    fn try_delete_before(&mut self, cutoff_us: i64, limit: usize) -> Result<usize, StorageError> {
        let conn = self.connection.get()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(from_sqlite)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let indexed_through = text_index::indexed_through(&tx)?;
        let mut counts = CountChanges::default();
        let deleted = {
            let mut delete = tx.prepare_cached(DELETE_BEFORE).map_err(from_sqlite)?;
            let mut gone = delete
                .query(params![cutoff_us, limit])
                .map_err(from_sqlite)?;
            let mut deleted = 0;
            while let Some(row) = gone.next().map_err(from_sqlite)? {
                let (rowid, from, to, ts_us): (i64, String, String, i64) = (
                    row.get(0).map_err(from_sqlite)?,
                    row.get(1).map_err(from_sqlite)?,
                    row.get(2).map_err(from_sqlite)?,
                    row.get(3).map_err(from_sqlite)?,
                );
                counts.add(&from, &to, ts_us, -1);
                text_index::remove(&tx, rowid, indexed_through)?;
                deleted += 1;
            }
            deleted
        };
        counts.apply(&tx)?;
        if deleted > 0 {
            // The newest rows may have gone, and their rowids will then be given again.
            text_index::forget_deleted_tail(&tx)?;
            tx.execute(
                "UPDATE message_totals SET deletions = deletions + 1 WHERE id = 1",
                [],
            )
            .map_err(from_sqlite)?;
        }
        tx.commit().map_err(from_sqlite)?;
        Ok(deleted)
    }

    fn try_index_text(&mut self, limit: usize) -> Result<usize, StorageError> {
        let conn = self.connection.get()?;
        // Indexing can always wait: if another process holds the lock, give up at once
        // instead of keeping the writer (and the messages queued for it) waiting.
        with_busy_timeout(conn, Duration::ZERO, |conn| index_text_slice(conn, limit))
    }

    /// Copies the whole WAL into the database and truncates the WAL file to nothing, unless a
    /// reader is still using it (then the next quiet moment tries again). The file is only ever
    /// shortened here, while ingest is quiet: trimming it each time it started over under load
    /// (SQLite's `journal_size_limit`) freed and reallocated tens of MiB of file and held the
    /// next commit up for 20-150 ms.
    /// Waits up to `wait` for a checkpoint running elsewhere.
    fn empty_wal(&mut self, wait: Duration) -> Result<(), StorageError> {
        if self.connection.wal_file_len() == 0 {
            return Ok(());
        }
        let conn = self.connection.get()?;
        with_busy_timeout(conn, wait, |conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(from_sqlite)
        })
    }

    fn try_probe(&mut self) -> Result<ProbeReport, StorageError> {
        let conn = self.connection.get()?;
        // A probe waits for a lock only briefly, so a lock held elsewhere is named as such
        // instead of showing up as a slow probe.
        with_busy_timeout(conn, PROBE_BUSY_TIMEOUT, |conn| {
            conn.execute(TOUCH_HEALTH_PROBE, [format_micros(now_micros())])
                .map_err(from_sqlite)
        })?;
        let text_backlog = text_index::backlog(conn)?;
        self.metrics.text_index_backlog.set(text_backlog);
        Ok(ProbeReport {
            size_bytes: self.connection.files_size(),
        })
    }
}

/// Indexes up to `limit` rows for search in one transaction; returns how many.
fn index_text_slice(conn: &mut Connection, limit: usize) -> Result<usize, StorageError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(from_sqlite)?;
    let indexed = text_index::catch_up(&tx, limit)?;
    if indexed > 0 {
        tx.commit().map_err(from_sqlite)?;
    }
    Ok(indexed)
}

/// Imports one chunk of rows in one transaction: committed whole, or rolled back (and reported
/// `aborted`, with nothing counted) when an item stops the import. `progress` hears the chunk's
/// rows done every 10,000 rows.
fn import_chunk(
    conn: &mut Connection,
    rows: &mut ImportRows<'_>,
    received_at: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, StorageError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(from_sqlite)?;
    // Imported rows are indexed for search as they go (much cheaper in bulk than later), which
    // needs every earlier row indexed first.
    while text_index::catch_up(&tx, 10_000)? > 0 {}
    let mut chunk = ImportReport::default();
    let mut counts = CountChanges::default();
    let mut positions = Positions::read(&tx)?;
    let mut last_inserted = None;
    {
        let mut insert = tx.prepare_cached(INSERT_MESSAGE).map_err(from_sqlite)?;
        for row in rows {
            let Ok(row) = row else {
                drop(insert);
                tx.rollback().map_err(from_sqlite)?;
                return Ok(ImportReport {
                    aborted: true,
                    ..ImportReport::default()
                });
            };
            let received_at = row.received_at.as_deref().unwrap_or(received_at);
            match insert_one(
                &mut insert,
                &row.message,
                received_at,
                &mut counts,
                &mut positions,
            )? {
                InsertOutcome::Created => {
                    chunk.inserted += 1;
                    let rowid = tx.last_insert_rowid();
                    if let Some(text) = &row.message.text {
                        text_index::add(&tx, rowid, text)?;
                    }
                    last_inserted = Some(rowid);
                }
                InsertOutcome::Duplicate => chunk.duplicates += 1,
            }
            if counts.pending() >= MAX_PENDING_COUNTS {
                counts.apply(&tx)?;
            }
            if chunk.rows() % 10_000 == 0 {
                progress(chunk.rows());
            }
        }
    }
    if let Some(rowid) = last_inserted {
        text_index::set_indexed_through(&tx, rowid)?;
    }
    counts.apply(&tx)?;
    positions.record(&tx)?;
    tx.commit().map_err(from_sqlite)?;
    Ok(chunk)
}

/// Inserts one message at the next feed position unless its `message_id` is already stored,
/// noting it in `counts`.
fn insert_one(
    insert: &mut rusqlite::CachedStatement<'_>,
    m: &NewMessage,
    created_at: &str,
    counts: &mut CountChanges,
    positions: &mut Positions,
) -> Result<InsertOutcome, StorageError> {
    let changed = insert
        .execute(params![
            m.message_id,
            m.from,
            m.to,
            m.ts.as_str(),
            m.ts.micros(),
            m.text,
            created_at,
            positions.next()
        ])
        .map_err(from_sqlite)?;
    if changed == 1 {
        counts.add(&m.from, &m.to, m.ts.micros(), 1);
        positions.take();
        Ok(InsertOutcome::Created)
    } else {
        Ok(InsertOutcome::Duplicate)
    }
}

impl MessageWriter for SqliteWriter {
    fn insert_batch(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError> {
        let result = self.try_insert(batch);
        self.connection.settle(result)
    }

    fn import(
        &mut self,
        rows: &mut dyn Iterator<Item = Result<ImportRow, ImportAborted>>,
        commit_every: Option<usize>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, StorageError> {
        let result = self.try_import(rows, commit_every, progress);
        self.connection.settle(result)
    }

    fn delete_before(&mut self, cutoff_us: i64, limit: usize) -> Result<usize, StorageError> {
        let result = self.try_delete_before(cutoff_us, limit);
        self.connection.settle(result)
    }

    fn probe(&mut self) -> Result<ProbeReport, StorageError> {
        let result = self.try_probe();
        self.connection.settle(result)
    }

    fn between_batches(&mut self) -> Option<&mut dyn Upkeep> {
        Some(self)
    }

    /// Empties the WAL: after a burst it can hold hundreds of MB, which the next process would
    /// read back whole before it could serve (0.6 s for 490 MB), while the background
    /// checkpoint has already copied most of it into the database.
    fn close(&mut self) -> Result<(), StorageError> {
        let result = self.empty_wal(CLOSE_BUSY_TIMEOUT);
        self.connection.settle(result)
    }
}

impl SqliteWriter {
    /// Brings the text-search index up to date by at most `limit` rows (oldest first); returns
    /// how many rows it indexed, 0 when it is current.
    pub(super) fn index_text(&mut self, limit: usize) -> Result<usize, StorageError> {
        let result = self.try_index_text(limit);
        self.connection.settle(result)
    }

    /// Lets the WAL start over between batches: `quiet` when no batch was committed for a while.
    pub(super) fn tidy(&mut self, quiet: bool) -> Result<(), StorageError> {
        // The background checkpoint has copied most frames; with no transaction of ours open,
        // this copies the rest, and the next transaction starts the WAL over. Under load that
        // copy holds up batches, so it waits for a quiet moment unless the WAL grows too large.
        // When quiet, it also empties the WAL file.
        let result = if quiet {
            self.empty_wal(Duration::ZERO)
        } else if self.wal_bytes.load(Ordering::Relaxed) >= WAL_FORCED_CHECKPOINT_BYTES {
            self.connection.get().and_then(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    .map_err(from_sqlite)
            })
        } else {
            return Ok(());
        };
        self.connection.settle(result)
    }
}

fn open_writer(path: &Path) -> Result<Connection, StorageError> {
    let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(from_sqlite)?;
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(from_sqlite)?;
    // Checkpoints run in the background (see `checkpoint.rs`), never in a commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(from_sqlite)?;
    Ok(conn)
}
