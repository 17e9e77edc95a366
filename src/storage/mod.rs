//! The narrow interface between the actors and a database.
//!
//! The actors own one [`MessageWriter`] (the only writer) and one [`MessageReader`] per reader
//! thread, created from a [`Storage`]. Nothing above the actors sees a connection or SQL, so a
//! second store (PostgreSQL for replicated deployments) slots in by implementing these traits.

pub mod sqlite;

use std::fmt;

use crate::domain::{
    MessageFilter, MessagePage, MessageQuery, MessageSlice, NewMessage, Position, Stats,
};

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

/// What a successful [`MessageWriter::probe`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// Bytes the database takes on disk.
    pub size_bytes: u64,
    /// Messages not yet in the text-search index.
    pub text_backlog: u64,
}

/// The single writer's view of a store.
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

    /// Brings the text-search index up to date by at most `limit` rows (oldest first); returns
    /// how many rows it indexed, 0 when it is current. Stores that index synchronously
    /// return 0.
    fn index_text(&mut self, limit: usize) -> Result<usize, StorageError>;

    /// Lets the store tidy up between batches; called every half second, with `quiet` true when
    /// no batch was committed for a while (SQLite: checkpoints the WAL from the writer's side so
    /// it can start over, when quiet or once the WAL has grown too large).
    fn tidy(&mut self, quiet: bool) -> Result<(), StorageError>;

    /// Proves the store is reachable, has its schema and takes a durable write.
    fn probe(&mut self) -> Result<ProbeReport, StorageError>;
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
}

/// A database the service can run on: hands out the writer and the readers.
/// Connections are made lazily, on first use, so handing them out cannot fail.
pub trait Storage: Send + Sync {
    fn writer(&self) -> Box<dyn MessageWriter>;
    fn reader(&self) -> Box<dyn MessageReader>;

    /// Upkeep the store needs beside the writer (SQLite: WAL checkpoints), if any.
    fn maintenance(&self) -> Option<Box<dyn Maintenance>> {
        None
    }
}

/// Background upkeep, run on its own thread every [`Maintenance::interval`].
pub trait Maintenance: Send {
    fn interval(&self) -> std::time::Duration;
    fn run_once(&mut self) -> Result<(), StorageError>;
}

/// Broad causes, safe to show in a readiness answer; details stay in the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The database file is gone.
    Missing,
    /// Another file was put where the database file was.
    Replaced,
    /// No space left for the database.
    Full,
    /// The database cannot be written (permissions, read-only filesystem).
    ReadOnly,
    /// Another process holds the database lock.
    Locked,
    /// The file is not a usable database.
    Corrupt,
    /// A read ran past its time limit.
    TimedOut,
    /// Anything else.
    Failed,
}

/// A store failure: a public [`StorageErrorKind`] and a detail for the logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub detail: String,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for StorageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "database file is missing",
            Self::Replaced => {
                "database file was replaced while in use; restart the service to use the new file"
            }
            Self::Full => "database disk is full",
            Self::ReadOnly => "database is read-only",
            Self::Locked => "database is locked by another process",
            Self::Corrupt => "database file is not a usable database",
            Self::TimedOut => "database query took too long",
            Self::Failed => "database error",
        })
    }
}
