//! The SQLite store's rows per hour ([`HourCounts`]): whole hours from `hour_counts`, partial
//! ones counted off the `ts_us` index. How they are used is store-neutral
//! ([`crate::storage::hour_buckets`]).

use rusqlite::{Connection, params};

use super::from_sqlite;
use crate::storage::StorageError;
use crate::storage::hour_buckets::HourCounts;

/// Hour counts read on one connection.
pub struct SqliteHours<'a>(pub &'a Connection);

impl HourCounts for SqliteHours<'_> {
    fn whole_hours(
        &mut self,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<Vec<(i64, u64)>, StorageError> {
        let mut statement = self
            .0
            .prepare_cached(
                "SELECT hour, message_count FROM hour_counts \
                 WHERE hour >= coalesce(?1, hour) AND hour <= coalesce(?2, hour) ORDER BY hour",
            )
            .map_err(from_sqlite)?;
        statement
            .query_map(params![first, last], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)?.unsigned_abs()))
            })
            .and_then(|rows| rows.collect())
            .map_err(from_sqlite)
    }

    fn count_between(&mut self, from_us: i64, until_us: i64) -> Result<u64, StorageError> {
        self.0
            .prepare_cached(
                "SELECT COUNT(*) FROM messages INDEXED BY messages_by_ts \
                 WHERE ts_us >= ?1 AND ts_us < ?2",
            )
            .and_then(|mut s| s.query_row(params![from_us, until_us], |row| row.get::<_, i64>(0)))
            .map(i64::unsigned_abs)
            .map_err(from_sqlite)
    }
}
