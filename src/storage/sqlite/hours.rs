//! Rows per hour, from the `hour_counts` aggregate, for what only needs to know how many rows
//! a stretch of time holds.
//!
//! Whole hours are read from `hour_counts`; the partial first and last hours of a range are
//! counted off the `ts_us` index, so any range costs at most two hours of rows. A deep `offset`
//! over time alone uses this to jump to the hour holding its first row and step over at most
//! one hour of rows, and a `total` over time alone is their sum.

use rusqlite::{Connection, params};

use super::aggregates::{HOUR_US, hour_of};
use super::from_sqlite;
use crate::domain::{MessageFilter, Timestamp};
use crate::storage::StorageError;

/// The filter narrowed to start at the hour holding the row at `offset` (counted in listing
/// order from the filter's start), and the offset left within it; past the last row, a filter
/// that matches nothing. Only for a filter over time alone: `from`, `to` and `q` are not
/// looked at.
pub fn skip(
    conn: &Connection,
    filter: &MessageFilter,
    offset: u64,
) -> Result<(MessageFilter, u64), StorageError> {
    let lo = filter.since.as_ref().map(|t| t.micros());
    let hi = filter.until.as_ref().map(|t| t.micros());
    let starting_at = |micros: i64| MessageFilter {
        since: Some(Timestamp::from_stored(String::new(), micros)),
        ..filter.clone()
    };
    let mut left = offset;
    for (hour, rows) in per_hour(conn, lo, hi)? {
        if left < rows {
            // The page starts in this hour: read from its start (or `since`), skipping `left`.
            let start = lo.map_or(hour * HOUR_US, |lo| lo.max(hour * HOUR_US));
            return Ok((starting_at(start), left));
        }
        left -= rows;
    }
    // Past the end: an empty page.
    Ok((starting_at(i64::MAX), 0))
}

/// Rows in `[lo, hi)`, from the hourly counts.
pub fn count(conn: &Connection, lo: Option<i64>, hi: Option<i64>) -> Result<u64, StorageError> {
    Ok(per_hour(conn, lo, hi)?
        .into_iter()
        .map(|(_, rows)| rows)
        .sum())
}

/// The rows in `[lo, hi)` (either end open when `None`) per hour, in order: whole hours from
/// `hour_counts`, the partial first and last hours counted.
fn per_hour(
    conn: &Connection,
    lo: Option<i64>,
    hi: Option<i64>,
) -> Result<Vec<(i64, u64)>, StorageError> {
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
            let from = lo.map_or(hour * HOUR_US, |lo| lo.max(hour * HOUR_US));
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
