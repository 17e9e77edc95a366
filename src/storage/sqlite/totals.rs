//! How many rows match a `/messages` filter: the `total` beside each page.
//!
//! `total` comes from the aggregates when the filters are just `from`, just `to`, or just a time
//! range (plus at most two partial hours, [`hour_buckets`]), and is counted off the filter's index
//! otherwise. A search's count is remembered ([`TotalCache`]): asked again, only the rows stored
//! since are counted, as long as no rows were deleted meanwhile. A search not remembered is
//! counted through the text index when its page was found there (the word is rare), else
//! through the text index within the walk budget, else by walking every row of its filter:
//! a search over every row walks them a slice of rowids at a time, remembering the count after
//! each, so a first count longer than a read's deadline is finished by the requests after it.

use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::clause::Clause;
use super::deadline::Deadline;
use super::hours::SqliteHours;
use super::listing::Found;
use super::{from_sqlite, text_index};
use crate::domain::{MessageFilter, TextSearch};
use crate::storage::StorageError;
use crate::storage::TimeRange;
use crate::storage::Tuning;
use crate::storage::hour_buckets;
use crate::storage::total_cache::{RememberedTotal, SearchKey, TotalCache};

/// How many rows match `filter`; `found` is how its page was found. Runs inside `deadline`'s
/// enforcement.
pub fn count(
    conn: &mut Connection,
    filter: &MessageFilter,
    found: Found,
    tuning: Tuning,
    deadline: Deadline,
    cache: &TotalCache,
) -> Result<u64, StorageError> {
    let MessageFilter { from, to, q, .. } = filter;
    let range = TimeRange::of(filter);
    let aggregate = |sql: &str, key: &str| -> Result<u64, StorageError> {
        let count: Option<i64> = conn
            .query_row(sql, [key], |row| row.get(0))
            .optional()
            .map_err(from_sqlite)?;
        Ok(count.unwrap_or(0).unsigned_abs())
    };
    match (from, to, range.is_bounded(), q) {
        (None, None, false, None) => conn
            .query_row(
                "SELECT message_count FROM message_totals WHERE id = 1",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(i64::unsigned_abs)
            .map_err(from_sqlite),
        (Some(from), None, false, None) => aggregate(
            "SELECT message_count FROM sender_stats WHERE from_msisdn = ?1",
            from,
        ),
        (None, Some(to), false, None) => aggregate(
            "SELECT message_count FROM recipient_stats WHERE to_msisdn = ?1",
            to,
        ),
        (None, None, true, None) => hour_buckets::count(&mut SqliteHours(conn), range),
        (_, _, _, None) => count_rows(conn, &Clause::new(filter, None), true),
        (_, _, _, Some(q)) => count_search(conn, filter, q, found, tuning, deadline, cache),
    }
}

/// How many rows match a filter with `q`: the remembered count plus the rows stored since, or
/// a fresh count; either is remembered for next time. A count that must walk rows is made in
/// slices of rowids, remembered after each, so one cut short by the deadline is continued by
/// the next request ([`TotalCache::count_in_slices`]).
fn count_search(
    conn: &mut Connection,
    filter: &MessageFilter,
    q: &str,
    found: Found,
    tuning: Tuning,
    deadline: Deadline,
    cache: &TotalCache,
) -> Result<u64, StorageError> {
    let needle = TextSearch::new(q).needle().to_owned();
    let key = SearchKey::new(filter, &needle);
    let (newest, deletions): (Option<i64>, i64) = conn
        .query_row(
            "SELECT (SELECT max(rowid) FROM messages), deletions FROM message_totals WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(from_sqlite)?;
    let newest = newest.unwrap_or(0);
    let remembered = cache
        .get(&key)
        .filter(|known| known.deletions == deletions && known.through <= newest);
    let fresh = |total| RememberedTotal {
        total,
        through: newest,
        deletions,
    };
    let start = match remembered {
        Some(known) => known,
        None => match count_through_index(conn, filter, &needle, found, tuning, deadline)? {
            Some(total) => fresh(total),
            // Other filters bound the rows to walk, and their index finds them: one count.
            None if filter.from.is_some()
                || filter.to.is_some()
                || TimeRange::of(filter).is_bounded() =>
            {
                fresh(count_rows(
                    conn,
                    &Clause::containing(filter, None, &needle),
                    false,
                )?)
            }
            // Every row must be walked: a slice at a time.
            None => RememberedTotal {
                total: 0,
                through: 0,
                deletions,
            },
        },
    };
    cache.count_in_slices(key, start, newest, |after, through| {
        count_rows(
            conn,
            &Clause::stored_between(filter, after, through, &needle),
            false,
        )
    })
}

/// The count of the rows matching `filter` and containing `needle` (already folded), taken
/// through the text index when that is fast: always for a rare word (its page came through the
/// index), within the walk budget otherwise; `None` when the rows must be walked instead.
fn count_through_index(
    conn: &mut Connection,
    filter: &MessageFilter,
    needle: &str,
    found: Found,
    tuning: Tuning,
    deadline: Deadline,
) -> Result<Option<u64>, StorageError> {
    let Some(expression) = text_index::match_expression(needle) else {
        return Ok(None);
    };
    let indexed_through = text_index::indexed_through(conn)?;
    let candidates = Clause::candidates(filter, None, expression, indexed_through, needle);
    match found {
        Found::ThroughTextIndex => Ok(Some(count_rows(conn, &candidates, false)?)),
        Found::Walking => deadline.within(conn, tuning.walk_budget, |conn| {
            count_rows(conn, &candidates, false)
        }),
    }
}

/// How many rows `clause` selects, read off its index or left to the planner.
fn count_rows(conn: &Connection, clause: &Clause, use_index: bool) -> Result<u64, StorageError> {
    let sql = format!("SELECT COUNT(*) {}", clause.source_sql(use_index));
    conn.prepare_cached(&sql)
        .and_then(|mut statement| {
            statement.query_row(params_from_iter(clause.args()), |row| row.get::<_, i64>(0))
        })
        .map(i64::unsigned_abs)
        .map_err(from_sqlite)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::domain::{MessageFilter, MessageQuery};
    use crate::storage::Tuning;
    use crate::storage::sqlite::SqliteReader;
    use crate::storage::sqlite::fixture::{expected, expire, messages, temp_db};
    use crate::storage::total_cache::TotalCache;
    use crate::storage::{MessageReader, Storage};

    /// The `total` of the first page of `filter`.
    fn total_of(reader: &mut SqliteReader, filter: &MessageFilter) -> u64 {
        let query = MessageQuery {
            filter: filter.clone(),
            limit: 1,
            offset: 0,
            after: None,
        };
        reader.list(&query).unwrap().total
    }

    #[test]
    fn a_remembered_search_count_follows_inserts_and_is_redone_after_deletions() {
        let (_dir, storage) = temp_db();
        let all = messages();
        let (first, later) = all.split_at(400);
        let mut writer = storage.writer();
        writer.insert_batch(first).unwrap();
        let mut reader = storage.reader_with(Tuning::default(), Arc::clone(&storage.totals));
        let filter = MessageFilter {
            q: Some("ORDER".to_owned()),
            ..MessageFilter::default()
        };
        let total = |reader: &mut SqliteReader| total_of(reader, &filter);
        assert_eq!(total(&mut reader), expected(first, &filter).len() as u64);
        writer.insert_batch(later).unwrap();
        assert_eq!(
            total(&mut reader),
            expected(&all, &filter).len() as u64,
            "new rows counted"
        );
        let kept = expire(writer.as_mut(), all, "2025-01-15T06:00:00Z", 100);
        assert_eq!(
            total(&mut reader),
            expected(&kept, &filter).len() as u64,
            "after deletions"
        );
    }

    #[test]
    fn searches_written_differently_that_mean_the_same_share_one_remembered_count() {
        let (_dir, storage) = temp_db();
        let all = messages();
        storage.writer().insert_batch(&all).unwrap();
        let cache = Arc::new(TotalCache::default());
        let mut reader = storage.reader_with(Tuning::default(), Arc::clone(&cache));
        for (q, since) in [
            ("ORDER", "2025-01-15T02:00:00Z"),
            ("order", "2025-01-15T02:00:00.000Z"),
        ] {
            let filter = MessageFilter::from_pairs([("q", q), ("since", since)]).unwrap();
            let want = expected(&all, &filter).len() as u64;
            assert_eq!(total_of(&mut reader, &filter), want, "{q} {since}");
        }
        assert_eq!(cache.len(), 1, "one remembered count");
    }
}
