//! The narrow interface between the actors and a database.
//!
//! The actors own one [`MessageWriter`] (the only writer) and one [`MessageReader`] per reader
//! thread, created from a [`Storage`]. Nothing above the actors sees a connection or SQL, so a
//! second store (PostgreSQL for replicated deployments) slots in by implementing these traits.

pub mod sqlite;

use std::fmt;

use crate::domain::{MessagePage, MessageQuery, NewMessage, Stats};

/// What storing one message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The row was stored by this batch.
    Created,
    /// A row with this `message_id` already existed (or came earlier in the same batch).
    Duplicate,
}

/// What a successful [`MessageWriter::probe`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// Bytes the database takes on disk.
    pub size_bytes: u64,
}

/// The single writer's view of a store.
pub trait MessageWriter: Send {
    /// Stores `batch` in one durable transaction and returns one outcome per message, in order.
    /// When this returns `Ok`, every `Created` row is on disk; on `Err`, nothing was stored.
    fn insert_batch(&mut self, batch: &[NewMessage]) -> Result<Vec<InsertOutcome>, StorageError>;

    /// Proves the store is reachable, has its schema and takes a durable write.
    fn probe(&mut self) -> Result<ProbeReport, StorageError>;
}

/// A read-only view of a store; each reader thread owns one.
pub trait MessageReader: Send {
    /// One page of messages matching the query, and how many match in all.
    fn list(&mut self, query: &MessageQuery) -> Result<MessagePage, StorageError>;

    /// Aggregates over all stored messages.
    fn stats(&mut self) -> Result<Stats, StorageError>;
}

/// A database the service can run on: hands out the writer and the readers.
/// Connections are made lazily, on first use, so handing them out cannot fail.
pub trait Storage: Send + Sync {
    fn writer(&self) -> Box<dyn MessageWriter>;
    fn reader(&self) -> Box<dyn MessageReader>;
}

/// Broad causes, safe to show in a readiness answer; details stay in the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The database file is gone or was replaced.
    Missing,
    /// No space left for the database.
    Full,
    /// The database cannot be written (permissions, read-only filesystem).
    ReadOnly,
    /// Another process holds the database lock.
    Locked,
    /// The file is not a usable database.
    Corrupt,
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
            Self::Full => "database disk is full",
            Self::ReadOnly => "database is read-only",
            Self::Locked => "database is locked by another process",
            Self::Corrupt => "database file is not a usable database",
            Self::Failed => "database error",
        })
    }
}
