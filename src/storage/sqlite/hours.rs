//! Rows per hour, from the `hour_counts` aggregate, for what only needs to know how many rows
//! a stretch of time holds.
//!
//! Whole hours are read from `hour_counts`; the partial first and last hours of a range are
//! counted off the `ts_us` index, so any range costs at most two hours of rows. A deep `offset`
//! over time alone uses this to jump to the hour holding its first row and step over at most
//! one hour of rows, and a `total` over time alone is their sum.

use rusqlite::{Connection, params};

use super::aggregates::{HOUR_US, hour_of};
use super::clause::TimeRange;
use super::from_sqlite;
use crate::storage::StorageError;

/// `range` narrowed to start at the hour holding the row at `offset` (counted in listing order
/// from the range's start), and the offset left within that hour; past the last row, a range
/// that holds none. Only for a listing over time alone: other filters are not counted.
pub fn skip(
    conn: &Connection,
    range: TimeRange,
    offset: u64,
) -> Result<(TimeRange, u64), StorageError> {
    let mut left = offset;
    for (hour, rows) in per_hour(conn, range)? {
        if left < rows {
            // The page starts in this hour: read from its start (or `since`), skipping `left`.
            return Ok((range.starting_at(start_within(range, hour)), left));
        }
        left -= rows;
    }
    // Past the end: an empty page.
    Ok((range.starting_at(i64::MAX), 0))
}

/// Rows in `range`, from the hourly counts.
pub fn count(conn: &Connection, range: TimeRange) -> Result<u64, StorageError> {
    Ok(per_hour(conn, range)?
        .into_iter()
        .map(|(_, rows)| rows)
        .sum())
}

/// The rows in `range` per hour, in order: whole hours from `hour_counts`, the partial first
/// and last hours counted.
fn per_hour(conn: &Connection, range: TimeRange) -> Result<Vec<(i64, u64)>, StorageError> {
    let TimeRange {
        from_us: lo,
        until_us: hi,
    } = range;
    let first = lo.map(hour_of);
    let last = hi.map(|hi| hour_of(hi - 1));
    let mut statement = conn
        .prepare_cached(
            "SELECT hour, message_count FROM hour_counts \
             WHERE hour >= coalesce(?1, hour) AND hour <= coalesce(?2, hour) ORDER BY hour",
        )
        .map_err(from_sqlite)?;
    let whole: Vec<(i64, i64)> = statement
        .query_map(params![first, last], |row| Ok((row.get(0)?, row.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(from_sqlite)?;
    whole
        .into_iter()
        .map(|(hour, rows)| {
            let partial = Some(hour) == first && lo != Some(hour * HOUR_US)
                || Some(hour) == last && hi != Some((hour + 1) * HOUR_US);
            if !partial {
                return Ok((hour, rows.unsigned_abs()));
            }
            let from = start_within(range, hour);
            let to = hi.map_or((hour + 1) * HOUR_US, |hi| hi.min((hour + 1) * HOUR_US));
            let counted: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM messages INDEXED BY messages_by_ts \
                     WHERE ts_us >= ?1 AND ts_us < ?2",
                )
                .and_then(|mut s| s.query_row(params![from, to], |row| row.get(0)))
                .map_err(from_sqlite)?;
            Ok((hour, counted.unsigned_abs()))
        })
        .collect()
}

/// Where `hour` starts within `range`: the hour's start, or `since` when that is later.
fn start_within(range: TimeRange, hour: i64) -> i64 {
    range
        .from_us
        .map_or(hour * HOUR_US, |lo| lo.max(hour * HOUR_US))
}
