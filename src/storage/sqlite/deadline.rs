//! The deadline of one read, enforced inside SQLite's own work.
//!
//! A read that walks many rows (a one- or two-character `q`, the first count of a common word)
//! could otherwise run for as long as the table is large, holding its reader thread after the
//! client was answered or gone. Every read therefore runs with the connection's progress
//! handler armed: once the deadline passes, the statement in progress is interrupted and the
//! read fails as [`StorageErrorKind::TimedOut`]. A part of a read may run under a shorter
//! budget as well ([`Deadline::within`], the 15 ms a search is walked before the text index is
//! asked): the handler then stops at whichever comes first, and only the budget running out is
//! a normal outcome.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::from_sqlite;
use crate::storage::{StorageError, StorageErrorKind};

/// Virtual-machine steps between two looks at the clock: about a few microseconds of work.
const STEPS_BETWEEN_CHECKS: i32 = 1_000;

/// When the read in progress must end.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self {
            at: Instant::now() + timeout,
            timeout,
        }
    }

    fn passed(self) -> bool {
        Instant::now() >= self.at
    }

    /// Runs `read` on `conn`, interrupted once the deadline passes; the read then fails as
    /// [`StorageErrorKind::TimedOut`].
    pub fn enforce<T>(
        self,
        conn: &mut Connection,
        read: impl FnOnce(&mut Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        stop_at(conn, self.at)?;
        let result = read(conn);
        conn.progress_handler(0, None::<fn() -> bool>)
            .map_err(from_sqlite)?;
        result.map_err(|error| match error.kind {
            StorageErrorKind::TimedOut => StorageError::new(
                StorageErrorKind::TimedOut,
                format!(
                    "the read ran past its deadline of {} ms",
                    self.timeout.as_millis()
                ),
            ),
            _ => error,
        })
    }

    /// Runs `read` within `budget` as well: `None` when the budget ran out first (the read was
    /// interrupted); the deadline passing is still a [`StorageErrorKind::TimedOut`] failure.
    /// Only for use inside [`Deadline::enforce`], whose handler it restores.
    pub fn within<T>(
        self,
        conn: &mut Connection,
        budget: Duration,
        read: impl FnOnce(&Connection) -> Result<T, StorageError>,
    ) -> Result<Option<T>, StorageError> {
        stop_at(conn, self.at.min(Instant::now() + budget))?;
        let result = read(conn);
        stop_at(conn, self.at)?;
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.kind == StorageErrorKind::TimedOut && !self.passed() => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Arms `conn` to interrupt whatever it runs once `at` passes.
fn stop_at(conn: &mut Connection, at: Instant) -> Result<(), StorageError> {
    conn.progress_handler(STEPS_BETWEEN_CHECKS, Some(move || Instant::now() >= at))
        .map_err(from_sqlite)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::domain::{MessageFilter, MessageQuery};
    use crate::storage::Tuning;
    use crate::storage::sqlite::fixture::{messages, temp_db};
    use crate::storage::{MessageReader, Storage, StorageErrorKind};

    fn search(q: &str) -> MessageQuery {
        MessageQuery {
            filter: MessageFilter {
                q: Some(q.to_owned()),
                ..MessageFilter::default()
            },
            limit: 10,
            offset: 0,
            after: None,
        }
    }

    #[test]
    fn a_read_past_its_deadline_is_stopped_inside_the_database() {
        let (_dir, storage) = temp_db();
        storage.writer().insert_batch(&messages()).unwrap();
        let storage = storage.reading_within(Duration::ZERO);
        let mut reader = storage.reader_with(Tuning::default(), Arc::default());
        // A walk (two characters), and a search tried under the walk budget first.
        for q in ["zz", "order"] {
            let error = reader.list(&search(q)).unwrap_err();
            assert_eq!(error.kind, StorageErrorKind::TimedOut, "{q}: {error}");
            let error = reader.scan(&search(q).filter, None, 600).unwrap_err();
            assert_eq!(error.kind, StorageErrorKind::TimedOut, "{q}: {error}");
        }
    }

    #[test]
    fn the_walk_budget_running_out_falls_back_to_the_index_within_the_deadline() {
        let (_dir, storage) = temp_db();
        storage.writer().insert_batch(&messages()).unwrap();
        let storage = storage.reading_within(Duration::from_secs(30));
        let tuning = Tuning {
            deep_offset: 10_000,
            walk_budget: Duration::ZERO,
            ..Tuning::default()
        };
        let mut reader = storage.reader_with(tuning, Arc::default());
        let page = reader.list(&search("zebracorn")).unwrap();
        assert_eq!(page.total, 67, "every ninth of 600 rows");
    }
}
