//! The SQLite writer's work between batches, on its own connection, which the store's owner runs
//! in steps (see [`Upkeep`]):
//!
//! - **Text indexing.** Indexing costs more than a batch insert, so new rows are indexed here
//!   rather than in the batch: large slices back to back while ingest is quiet (a step then
//!   takes some tens of milliseconds), one small slice per step while it is busy (a few
//!   milliseconds), so search catches up without taking more than a few percent of the writer's
//!   time. After a failure (say, a lock held by another process) indexing rests for a while.
//! - **Letting the WAL start over** ([`SqliteWriter::tidy`]), at most every half second.

use std::time::{Duration, Instant};

use super::SqliteWriter;
use crate::storage::{Load, Progress, StorageError, Upkeep};

/// How often a step is due.
const INTERVAL: Duration = Duration::from_millis(50);
/// Rows indexed per step while ingest is quiet.
const QUIET_INDEX_SLICE: usize = 2_000;
/// Rows indexed per step while ingest is busy.
const BUSY_INDEX_SLICE: usize = 200;
/// How long text indexing rests after a failure.
const INDEX_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How often the WAL may be tidied.
const TIDY_INTERVAL: Duration = Duration::from_millis(500);

/// Where the work between batches stands.
#[derive(Debug)]
pub struct UpkeepState {
    /// Rows may be waiting for the text index (cleared when a slice finds fewer than it asked).
    text_backlog: bool,
    /// No text indexing before this moment (after a failure).
    index_paused_until: Instant,
    /// When the WAL was last tidied, if ever.
    last_tidy: Option<Instant>,
}

impl Default for UpkeepState {
    fn default() -> Self {
        Self {
            text_backlog: true,
            index_paused_until: Instant::now(),
            last_tidy: None,
        }
    }
}

impl UpkeepState {
    /// A batch stored rows, which wait for the text index.
    pub fn rows_stored(&mut self) {
        self.text_backlog = true;
    }
}

impl Upkeep for SqliteWriter {
    fn interval(&self) -> Duration {
        INTERVAL
    }

    fn step(&mut self, load: Load) -> Result<Progress, StorageError> {
        let indexed = self.index_text_step(load);
        let tidied = self.tidy_when_due(load);
        let progress = indexed?;
        tidied?;
        Ok(progress)
    }
}

impl SqliteWriter {
    /// Indexes one slice of text when rows are waiting and indexing is not resting.
    fn index_text_step(&mut self, load: Load) -> Result<Progress, StorageError> {
        if !self.upkeep.text_backlog || Instant::now() < self.upkeep.index_paused_until {
            return Ok(Progress::Done);
        }
        let limit = match load {
            Load::Quiet => QUIET_INDEX_SLICE,
            Load::Busy => BUSY_INDEX_SLICE,
        };
        match self.index_text(limit) {
            Ok(indexed) => {
                self.metrics.text_indexed.inc_by(indexed as u64);
                self.upkeep.text_backlog = indexed == limit;
                Ok(if self.upkeep.text_backlog && load == Load::Quiet {
                    Progress::MoreWaiting
                } else {
                    Progress::Done
                })
            }
            Err(error) => {
                self.upkeep.index_paused_until = Instant::now() + INDEX_RETRY_PAUSE;
                Err(error)
            }
        }
    }

    /// Tidies the WAL when [`TIDY_INTERVAL`] has passed since the last time.
    fn tidy_when_due(&mut self, load: Load) -> Result<(), StorageError> {
        let due = self
            .upkeep
            .last_tidy
            .is_none_or(|last| last.elapsed() >= TIDY_INTERVAL);
        if !due {
            return Ok(());
        }
        self.upkeep.last_tidy = Some(Instant::now());
        self.tidy(load == Load::Quiet)
    }
}
