//! How many rows match a `/messages` filter on PostgreSQL: the `total` beside each page, as the
//! SQLite store counts it.
//!
//! `total` comes from the aggregates when the filters are just `from`, just `to`, or just a time
//! range (plus at most two partial hours, [`hour_buckets`]), and is counted otherwise. A
//! search's count is remembered ([`TotalCache`]) with the newest position (`seq`) it covered:
//! asked again, only the rows stored since are counted, as long as no rows were deleted
//! meanwhile. Positions are handed out in commit order, so "stored since" misses no row another
//! replica committed in the meantime.

use std::time::{Duration, Instant};

use postgres::Client;
use postgres::types::Type;

use super::clause::Clause;
use super::connection::{get, query, query_one};
use super::listing::{PostgresHours, for_each_checked, within};
use super::text::needs_exact_check;
use crate::domain::{MessageFilter, TextSearch};
use crate::storage::hour_buckets;
use crate::storage::total_cache::{RememberedTotal, SearchKey, TotalCache};
use crate::storage::{StorageError, StorageErrorKind, TimeRange, Tuning};

/// How many rows match `filter`, planned with `tuning`, in a read whose statements may take
/// `read_timeout` each and which must end by `deadline`.
pub fn count(
    client: &mut Client,
    filter: &MessageFilter,
    cache: &TotalCache,
    limits: (Tuning, Duration, Instant),
) -> Result<u64, StorageError> {
    let MessageFilter { from, to, q, .. } = filter;
    let range = TimeRange::of(filter);
    match (from, to, range.is_bounded(), q) {
        (None, None, false, None) => aggregate(
            client,
            "SELECT message_count FROM message_totals WHERE id = 1",
            None,
        ),
        (Some(from), None, false, None) => aggregate(
            client,
            "SELECT message_count FROM sender_stats WHERE from_msisdn = $1",
            Some(from),
        ),
        (None, Some(to), false, None) => aggregate(
            client,
            "SELECT message_count FROM recipient_stats WHERE to_msisdn = $1",
            Some(to),
        ),
        (None, None, true, None) => hour_buckets::count(&mut PostgresHours(client), range),
        (_, _, _, None) => count_rows(client, &Clause::new(filter, range, None)),
        (_, _, _, Some(q)) => count_search(client, filter, q, cache, limits),
    }
}

/// One kept count, 0 when its row is missing.
fn aggregate(client: &mut Client, sql: &str, key: Option<&str>) -> Result<u64, StorageError> {
    let rows = match key {
        Some(key) => query(client, sql, &[(&key, Type::TEXT)])?,
        None => query(client, sql, &[])?,
    };
    match rows.first() {
        Some(row) => Ok(get::<i64>(row, 0)?.unsigned_abs()),
        None => Ok(0),
    }
}

/// How many rows match a filter with `q`: the remembered count plus the rows stored since, or
/// a fresh count; either is remembered for next time. A count over every row is made in slices
/// of positions, remembered after each, so one cut short by the read's deadline (checked
/// between slices: each statement has the whole timeout, the read as a whole too) is continued
/// by the next request ([`TotalCache::count_in_slices`]).
fn count_search(
    client: &mut Client,
    filter: &MessageFilter,
    q: &str,
    cache: &TotalCache,
    (tuning, read_timeout, deadline): (Tuning, Duration, Instant),
) -> Result<u64, StorageError> {
    let needle = TextSearch::new(q).needle().to_owned();
    if needs_exact_check(&needle) {
        // Needles with characters the stored text escapes (rare): every candidate is checked
        // here, and counted whole each time.
        let mut counted = 0;
        for_each_checked(client, filter, None, &needle, |_, _| {
            counted += 1;
            true
        })?;
        return Ok(counted);
    }
    let key = SearchKey::new(filter, &needle);
    let row = query_one(
        client,
        "SELECT feed_head, deletions FROM message_totals WHERE id = 1",
        &[],
    )?;
    let (newest, deletions): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
    let remembered = cache
        .get(&key)
        .filter(|known| known.deletions == deletions && known.through <= newest);
    let range = TimeRange::of(filter);
    let fresh = |total| RememberedTotal {
        total,
        through: newest,
        deletions,
    };
    let every_row = Clause::new(filter, range, None);
    let start = match remembered {
        Some(known) => known,
        // Other filters bound the rows, and their index finds them: one count.
        None if filter.from.is_some() || filter.to.is_some() || range.is_bounded() => {
            fresh(count_rows(client, &every_row.containing(&needle))?)
        }
        // A rare word is counted at once through the trigram index; a common one is not, and
        // is counted a slice of positions at a time instead.
        None => match within(client, tuning.walk_budget, read_timeout, |client| {
            count_rows(
                client,
                &Clause::new(filter, range, None).containing(&needle),
            )
        })? {
            Some(total) => fresh(total),
            None => RememberedTotal {
                total: 0,
                through: 0,
                deletions,
            },
        },
    };
    cache.count_in_slices(key, start, newest, |after, through| {
        if Instant::now() >= deadline {
            return Err(StorageError::new(
                StorageErrorKind::TimedOut,
                format!(
                    "the read ran past its deadline of {} ms",
                    read_timeout.as_millis()
                ),
            ));
        }
        let slice = Clause::new(filter, range, None).stored_between(after, through);
        count_rows(client, &slice.containing(&needle))
    })
}

/// How many rows `clause` selects.
fn count_rows(client: &mut Client, clause: &Clause) -> Result<u64, StorageError> {
    let row = query_one(
        client,
        &format!("SELECT count(*) FROM messages{}", clause.where_sql()),
        &clause.params(),
    )?;
    Ok(get::<i64>(&row, 0)?.unsigned_abs())
}
