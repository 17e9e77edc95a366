//! The narrow interface between the actors and a database.
//!
//! The actors own one [`MessageWriter`] (the only writer) and one [`MessageReader`] per reader
//! thread, created from a [`Storage`] that [`open`] makes from a [`DatabaseUrl`]. Nothing above
//! the actors sees a connection or SQL, so a second store slots in by implementing these traits
//! and adding its scheme to `DatabaseUrl` and `open`. A store's own work besides storing and
//! reading (SQLite's text indexing and WAL upkeep) is declared through [`Upkeep`], so the actors
//! run it without naming it.

mod database_url;
pub mod hour_buckets;
pub mod postgres;
pub mod sqlite;
mod time_range;
pub(crate) mod total_cache;

use std::path::PathBuf;
use std::time::Duration;

pub use database_url::{DatabaseUrl, InvalidDatabaseUrl};
pub use time_range::TimeRange;

use crate::domain::{
    FeedEntry, FeedPage, FeedQuery, MessageFilter, MessagePage, MessageQuery, MessageSlice,
    NewMessage, Position, Stats,
};
use crate::metrics::Metrics;
use postgres::PostgresStorage;
use sqlite::SqliteStorage;

/// Whether [`open`] may create the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Create it (with its folder) when it is missing: the service and `import`.
    CreateIfMissing,
    /// It must exist already: `export` never leaves an empty database behind.
    MustExist,
}

/// The thresholds that choose between the plans a store reads a page with (see each store's
/// `listing`). The defaults are what the service runs with; tests set others to drive every
/// plan.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// From this `offset` on, a listing over time alone skips whole hours.
    pub deep_offset: u64,
    /// How long `q` is tried by walking the listing before the text index is used.
    pub walk_budget: Duration,
    /// A search counted to the end at no more than this many matches is read from the
    /// text index at once, without walking first (the PostgreSQL store; SQLite's walks first
    /// whatever the count).
    pub index_first_at_most: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            deep_offset: 10_000,
            walk_budget: Duration::from_millis(15),
            index_first_at_most: 5_000,
        }
    }
}
/// How long a read may run inside the database when the configuration says nothing
/// (`READ_TIMEOUT_MS`'s default).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How a store is opened and how it works, from the configuration; every store reads what
/// applies to it.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub opening: Opening,
    /// The longest a read may run inside the database: past it the store stops the work
    /// itself (not just the wait for it) and the read fails as [`StorageErrorKind::TimedOut`].
    pub read_timeout: Duration,
    /// The longest a write transaction may take (PostgreSQL).
    pub write_timeout: Duration,
    /// The CA certificate(s) a PostgreSQL server's certificate is checked against, instead of
    /// the system's trusted roots.
    pub ca_file: Option<PathBuf>,
    /// How pages are planned.
    pub tuning: Tuning,
}

impl StoreSettings {
    /// The settings a command uses when the configuration says nothing more.
    pub fn new(opening: Opening) -> Self {
        Self {
            opening,
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: Duration::from_secs(10),
            ca_file: None,
            tuning: Tuning::default(),
        }
    }

    /// The same settings, with reads stopped after `timeout`.
    pub fn reading_within(self, timeout: Duration) -> Self {
        Self {
            read_timeout: timeout,
            ..self
        }
    }
}

/// Opens the store `url` names and brings its schema up to date; the store reports its own
/// measurements to `metrics`. This is the one place a scheme is matched to a store.
pub fn open(
    url: &DatabaseUrl,
    settings: &StoreSettings,
    metrics: &Metrics,
) -> Result<Box<dyn Storage>, StorageError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let storage = match settings.opening {
                Opening::CreateIfMissing => SqliteStorage::initialize(path)?,
                Opening::MustExist => SqliteStorage::open_existing(path)?,
            };
            Ok(Box::new(
                storage
                    .reporting_to(metrics)
                    .planned_with(settings.tuning)
                    .reading_within(settings.read_timeout),
            ))
        }
        DatabaseUrl::Postgres(url) => Ok(Box::new(PostgresStorage::open(url, settings)?)),
    }
}

/// What storing one message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The row was stored by this batch.
    Created,
    /// A row with this `message_id` already existed (or came earlier in the same batch).
    Duplicate,
}

/// A message to import, and when it was first received when that is known.
pub struct ImportRow {
    pub message: NewMessage,
    pub received_at: Option<String>,
}

/// Stops an import: the source turned out to be unfit (an invalid record, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportAborted;

/// What an import did; `inserted` and `duplicates` count committed rows only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub inserted: u64,
    pub duplicates: u64,
    pub aborted: bool,
}

impl ImportReport {
    /// Rows looked at: inserted or skipped as duplicates.
    pub fn rows(&self) -> u64 {
        self.inserted + self.duplicates
    }

    /// Adds what a later part of the same import did.
    pub fn add(&mut self, later: ImportReport) {
        self.inserted += later.inserted;
        self.duplicates += later.duplicates;
        self.aborted |= later.aborted;
    }
}

/// Rows of an import, each valid, or an abort that ends the import.
pub type ImportRows<'a> = dyn Iterator<Item = Result<ImportRow, ImportAborted>> + 'a;

/// Runs an import chunk by chunk, as every store does: `import_chunk` stores one chunk (all of
/// `rows`, without `commit_every`) in one transaction, committed whole or rolled back when an
/// item aborts it, and reports it. The import stops after the first aborted chunk. `progress`
/// hears the rows done so far, `import_chunk`'s own reports included.
pub fn import_in_chunks(
    rows: &mut ImportRows<'_>,
    commit_every: Option<usize>,
    progress: &mut dyn FnMut(u64),
    mut import_chunk: impl FnMut(
        &mut ImportRows<'_>,
        &mut dyn FnMut(u64),
    ) -> Result<ImportReport, StorageError>,
) -> Result<ImportReport, StorageError> {
    let mut report = ImportReport::default();
    let mut rows = rows.peekable();
    while !report.aborted && rows.peek().is_some() {
        let mut chunk = rows.by_ref().take(commit_every.unwrap_or(usize::MAX));
        let done_before = report.rows();
        let imported = import_chunk(&mut chunk, &mut |done| progress(done_before + done))?;
        report.add(imported);
        progress(report.rows());
    }
    Ok(report)
}

/// What a successful [`MessageWriter::probe`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// Bytes the database takes on disk.
    pub size_bytes: u64,
}

/// What every store's single writer does.
pub trait MessageWriter: Send {
    /// Stores `batch` in one durable transaction and returns one outcome per message, in order.
    /// When this returns `Ok`, every `Created` row is on disk; on `Err`, nothing was stored.
    fn insert_batch(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError>;

    /// Stores `rows` in one transaction (all or nothing), or in one per `commit_every` rows when
    /// given; duplicates are skipped and counted. An `Err(ImportAborted)` item rolls back the
    /// open transaction and ends the import (`aborted` in the report). `progress` hears the rows
    /// done so far.
    fn import(
        &mut self,
        rows: &mut dyn Iterator<Item = Result<ImportRow, ImportAborted>>,
        commit_every: Option<usize>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportReport, StorageError>;

    /// Deletes up to `limit` of the messages whose `ts` is before `cutoff_us`, oldest first, in
    /// one short transaction; returns how many went.
    fn delete_before(&mut self, cutoff_us: i64, limit: usize) -> Result<usize, StorageError>;

    /// Proves the store is reachable, has its schema and takes a durable write.
    fn probe(&mut self) -> Result<ProbeReport, StorageError>;

    /// The store's own work between batches, on the writer's connection, if it has any (the
    /// SQLite store indexes text for search and empties its WAL). The writer's owner runs it
    /// between batches, never during one.
    fn between_batches(&mut self) -> Option<&mut dyn Upkeep> {
        None
    }

    /// Called once, after the last batch, when the service stops: leaves the store so that the
    /// next process starts quickly (SQLite empties its WAL). Nothing is lost if it fails.
    fn close(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A read-only view of a store; each reader thread owns one.
pub trait MessageReader: Send {
    /// One page of messages matching the query, and how many match in all.
    fn list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError>;

    /// Up to `limit` messages matching `filter`, in listing order, after `after`; for exports,
    /// which walk the whole listing slice by slice without counting it.
    fn scan(
        &mut self,
        filter: &MessageFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<MessageSlice, StorageError>;

    /// Aggregates over all stored messages.
    fn stats(&mut self) -> Result<Stats, StorageError>;

    /// The messages at positions after `query.after`, in position order, read from one
    /// snapshot. A store shows a position only once every lower position that will ever be
    /// stored is visible, so a consumer that continues after `next_after` misses none. At most
    /// [`FEED_SCAN_WINDOW`] positions are looked at per read.
    fn feed(&mut self, query: &FeedQuery) -> Result<FeedPage, StorageError>;

    /// The newest feed position given to a message.
    fn feed_head(&mut self) -> Result<u64, StorageError>;
}

/// The most positions one read of the feed looks at, so a filtered read after a long stretch
/// of other messages costs a bounded amount; the consumer continues from where it stopped.
pub const FEED_SCAN_WINDOW: u64 = 10_000;

/// The page a feed read makes of the `entries` it found after `query.after` (looking no further
/// than `window_end`), with the store's `head` and `oldest` position.
pub fn feed_page(
    query: &FeedQuery,
    entries: Vec<FeedEntry>,
    window_end: u64,
    head: u64,
    oldest: Option<u64>,
) -> FeedPage {
    let next_after = match entries.last() {
        Some(last) if entries.len() >= query.limit as usize => last.seq,
        // Fewer than asked for: nothing else matched up to the end of the window.
        _ => window_end.max(query.after),
    };
    FeedPage {
        entries,
        next_after,
        head,
        oldest,
    }
}

/// A database the service can run on: hands out the writer and the readers.
/// Connections are made lazily, on first use, so handing them out cannot fail.
pub trait Storage: Send + Sync {
    fn writer(&self) -> Box<dyn MessageWriter>;
    fn reader(&self) -> Box<dyn MessageReader>;

    /// The store's own work beside the writer, on a thread and connection of its own, if it
    /// needs any (the SQLite store copies its WAL into the database file).
    fn background(&self) -> Option<Box<dyn Upkeep>> {
        None
    }
}

/// Work a store needs besides storing and reading messages, declared by the store and run by
/// its owner in bounded steps: between the writer's batches ([`MessageWriter::between_batches`])
/// or on a thread of its own ([`Storage::background`]).
pub trait Upkeep: Send {
    /// How often a step is due.
    fn interval(&self) -> Duration;

    /// Does one bounded step and says whether more work is waiting right away. `load` says
    /// whether messages are arriving; work on a thread of its own always hears [`Load::Busy`],
    /// since it runs beside ingest, never instead of it.
    fn step(&mut self, load: Load) -> Result<Progress, StorageError>;
}

/// Whether messages are arriving, as [`Upkeep::step`] hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// No batch is pending and none was committed for an interval: a step may take longer.
    Quiet,
    /// Batches are being committed: a step must stay short.
    Busy,
}

/// What an [`Upkeep`] step left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing more until the next interval.
    Done,
    /// More work is waiting: another step may follow at once while ingest stays quiet.
    MoreWaiting,
}

/// Broad causes of a failure, for deciding what to do about it; every store maps its own
/// errors onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The database cannot be reached (a server down or refusing connections, a file gone).
    Unreachable,
    /// The database refused the service's credentials.
    AuthenticationFailed,
    /// The database cannot be written (permissions, a read-only filesystem or server).
    ReadOnly,
    /// No space left for the database.
    Full,
    /// Another client holds a lock the work needed.
    Locked,
    /// The work ran past its time limit.
    TimedOut,
    /// Anything else.
    Other,
}

impl StorageErrorKind {
    /// What a readiness answer says for this kind, unless the store names the cause better.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unreachable => "database is unreachable",
            Self::AuthenticationFailed => "database refused the service's credentials",
            Self::ReadOnly => "database is read-only",
            Self::Full => "database disk is full",
            Self::Locked => "database is locked by another process",
            Self::TimedOut => "database query took too long",
            Self::Other => "database error",
        }
    }
}

/// A store failure: a [`StorageErrorKind`] to act on, a reason safe to show in a readiness
/// answer (no path, SQL or secret), and a detail for the logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct StorageError {
    pub kind: StorageErrorKind,
    reason: &'static str,
    pub detail: String,
}

impl StorageError {
    /// A failure whose public reason is its kind's.
    pub fn new(kind: StorageErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            reason: kind.reason(),
            detail: detail.into(),
        }
    }

    /// The same failure, with a reason that names the cause more precisely than its kind.
    pub fn because(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    /// Why the database cannot be used, in words safe to show anyone.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}
