//! Rows per hour of `ts`, for what only needs to know how many rows a stretch of time holds:
//! every store keeps a count per hour (`hour_counts`) beside its rows, and this is how those
//! counts are used, written once for all stores.
//!
//! Whole hours are read from the counts; the partial first and last hours of a range are
//! counted off the store's `ts_us` index, so any range costs at most two hours of rows. A deep
//! `offset` over time alone uses this to jump to the hour holding its first row and step over
//! at most one hour of rows ([`skip`]), and a `total` over time alone is their sum ([`count`]).

use super::{StorageError, TimeRange};

/// Microseconds per hour, the width of a bucket.
pub const HOUR_US: i64 = 3_600_000_000;

/// The bucket of an instant: hours since the epoch, floored.
pub fn hour_of(ts_us: i64) -> i64 {
    ts_us.div_euclid(HOUR_US)
}

/// What a store answers about its rows per hour.
pub trait HourCounts {
    /// The kept count of every hour from `first` to `last` (either end open when `None`) that
    /// holds rows, in order.
    fn whole_hours(
        &mut self,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<Vec<(i64, u64)>, StorageError>;

    /// The rows whose `ts_us` lies in `[from_us, until_us)`, counted.
    fn count_between(&mut self, from_us: i64, until_us: i64) -> Result<u64, StorageError>;
}

/// `range` narrowed to start at the hour holding the row at `offset` (counted in listing order
/// from the range's start), and the offset left within that hour; past the last row, a range
/// that holds none. Only for a listing over time alone: other filters are not counted.
pub fn skip(
    counts: &mut impl HourCounts,
    range: TimeRange,
    offset: u64,
) -> Result<(TimeRange, u64), StorageError> {
    let mut left = offset;
    for (hour, rows) in per_hour(counts, range)? {
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
pub fn count(counts: &mut impl HourCounts, range: TimeRange) -> Result<u64, StorageError> {
    Ok(per_hour(counts, range)?
        .into_iter()
        .map(|(_, rows)| rows)
        .sum())
}

/// The rows in `range` per hour, in order: whole hours as kept, the partial first and last
/// hours counted.
fn per_hour(
    counts: &mut impl HourCounts,
    range: TimeRange,
) -> Result<Vec<(i64, u64)>, StorageError> {
    let TimeRange {
        from_us: lo,
        until_us: hi,
    } = range;
    let first = lo.map(hour_of);
    let last = hi.map(|hi| hour_of(hi - 1));
    counts
        .whole_hours(first, last)?
        .into_iter()
        .map(|(hour, rows)| {
            let partial = Some(hour) == first && lo != Some(hour * HOUR_US)
                || Some(hour) == last && hi != Some((hour + 1) * HOUR_US);
            if !partial {
                return Ok((hour, rows));
            }
            let from = start_within(range, hour);
            let to = hi.map_or((hour + 1) * HOUR_US, |hi| hi.min((hour + 1) * HOUR_US));
            Ok((hour, counts.count_between(from, to)?))
        })
        .collect()
}

/// Where `hour` starts within `range`: the hour's start, or `since` when that is later.
fn start_within(range: TimeRange, hour: i64) -> i64 {
    range
        .from_us
        .map_or(hour * HOUR_US, |lo| lo.max(hour * HOUR_US))
}
