//! How a page of `/messages` is chosen and read, fast at ten million rows.
//!
//! - Every listing is `ORDER BY ts_us, message_id`, read off the index its [`Clause`] names.
//! - A deep `offset` over time alone (no `from`/`to`/`q`) jumps to the right hour ([`hours`]).
//! - `q` is first tried by walking the listing index and checking each row, under a small time
//!   budget: that is fastest for common words, whose matches come quickly. When the budget runs
//!   out, the rows holding every trigram of `q` are taken from the text index (plus the rows not
//!   indexed yet) and each is checked exactly: fastest for rare words. Both give exactly the
//!   rows `TextSearch` matches.
//! - How a page was found ([`Found`]) tells how its `total` is best counted (`totals`).

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::clause::Clause;
use super::deadline::Deadline;
use super::hours::SqliteHours;
use super::{from_sqlite, text_index};
use crate::domain::{Message, MessageFilter, MessageSlice, Position, TextSearch};
use crate::storage::TimeRange;
use crate::storage::hour_buckets;
use crate::storage::{StorageError, Tuning};

/// How a page was found; for a search, it tells how its total is best counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Off the listing index, checking each row (no `q`, or `q` filled the page in time).
    Walking,
    /// Through the text index: `q` is rare, and counting its candidates is cheap.
    ThroughTextIndex,
}

/// Up to `limit` rows matching `filter` in listing order, after `after` and then `offset` rows,
/// and the position of the last one when more follow. Runs inside `deadline`'s enforcement.
pub fn select(
    conn: &mut Connection,
    filter: &MessageFilter,
    after: Option<&Position>,
    limit: usize,
    offset: u64,
    tuning: Tuning,
    deadline: Deadline,
) -> Result<(MessageSlice, Found), StorageError> {
    let walked = |page| Ok((page, Found::Walking));
    let Some(q) = &filter.q else {
        let over_time_alone = filter.from.is_none() && filter.to.is_none() && after.is_none();
        let range = TimeRange::of(filter);
        let (range, offset) = if offset >= tuning.deep_offset && over_time_alone {
            hour_buckets::skip(&mut SqliteHours(conn), range, offset)?
        } else {
            (range, offset)
        };
        let clause = Clause::in_range(filter, range, after);
        return walked(read_page(conn, &clause, true, limit, offset)?);
    };
    let needle = TextSearch::new(q).needle().to_owned();
    let expression = text_index::match_expression(&needle);
    let walk = Clause::containing(filter, after, &needle);
    if expression.is_none() {
        return walked(read_page(conn, &walk, true, limit, offset)?);
    }
    if let Some(page) = deadline.within(conn, tuning.walk_budget, |conn| {
        read_page(conn, &walk, true, limit, offset)
    })? {
        return walked(page);
    }
    let indexed_through = text_index::indexed_through(conn)?;
    let expression = expression.expect("checked above");
    let clause = Clause::candidates(filter, after, expression, indexed_through, &needle);
    Ok((
        read_page(conn, &clause, false, limit, offset)?,
        Found::ThroughTextIndex,
    ))
}

/// Up to `limit` rows of `clause` in listing order after skipping `offset`, read off its index
/// or left to the planner, and the position of the last one when more follow.
fn read_page(
    conn: &Connection,
    clause: &Clause,
    use_index: bool,
    limit: usize,
    offset: u64,
) -> Result<MessageSlice, StorageError> {
    let sql = format!(
        "SELECT message_id, from_msisdn, to_msisdn, ts, text, ts_us {} \
         ORDER BY ts_us, message_id LIMIT ? OFFSET ?",
        clause.source_sql(use_index)
    );
    // One row more than asked for tells whether more follow.
    let mut args = clause.args().to_vec();
    args.push(Value::Integer(
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
    ));
    args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let mut statement = conn.prepare_cached(&sql).map_err(from_sqlite)?;
    let rows = statement
        .query_map(params_from_iter(args), |row| {
            Ok((
                Message {
                    message_id: row.get(0)?,
                    from: row.get(1)?,
                    to: row.get(2)?,
                    ts: row.get(3)?,
                    text: row.get(4)?,
                },
                row.get::<_, i64>(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(from_sqlite)?;
    Ok(MessageSlice::of(rows, limit))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::domain::{MessageFilter, MessageQuery, Timestamp};
    use crate::storage::Tuning;
    use crate::storage::sqlite::fixture::{expected, messages, temp_db};
    use crate::storage::{MessageReader, MessageWriter};

    fn filters() -> Vec<MessageFilter> {
        let ts = |text: &str| Some(Timestamp::parse(text).unwrap());
        let mut filters = Vec::new();
        for q in [
            None,
            Some("order"),
            Some("zebracorn"),
            Some("köln"),
            Some("50%"),
            Some("zz"),
            Some("e_v"),
        ] {
            for (from, to) in [
                (None, None),
                (Some("+12"), None),
                (None, Some("+41")),
                (Some("+13"), Some("+40")),
            ] {
                for (since, until) in [
                    (None, None),
                    (ts("2025-01-15T02:00:00Z"), None),
                    (None, ts("2025-01-15T20:30:00.5Z")),
                    (ts("2025-01-15T03:17:00Z"), ts("2025-01-15T09:00:00Z")),
                ] {
                    filters.push(MessageFilter {
                        from: from.map(str::to_owned),
                        to: to.map(str::to_owned),
                        since: since.clone(),
                        until: until.clone(),
                        q: q.map(str::to_owned),
                    });
                }
            }
        }
        filters
    }

    #[test]
    fn every_plan_returns_exactly_the_rows_and_totals_of_a_full_scan() {
        let (_dir, storage) = temp_db();
        let all = messages();
        let mut writer = storage.sqlite_writer();
        writer.insert_batch(&all).unwrap();
        // Half the rows are in the text index; the rest must be found directly.
        assert_eq!(writer.index_text(300).unwrap(), 300);

        let tunings = [
            Tuning::default(),
            Tuning {
                deep_offset: 1,
                walk_budget: Duration::ZERO,
                ..Tuning::default()
            },
            Tuning {
                deep_offset: 50,
                walk_budget: Duration::from_secs(10),
                ..Tuning::default()
            },
        ];
        for tuning in tunings {
            let mut reader = storage.reader_with(tuning, Arc::default());
            for filter in filters() {
                let want = expected(&all, &filter);
                for offset in [0_u64, 7, 60, 250, 599, 2_000] {
                    let query = MessageQuery {
                        filter: filter.clone(),
                        limit: 10,
                        offset,
                        after: None,
                    };
                    let page = reader.list(&query).unwrap();
                    let got: Vec<String> = page.data.iter().map(|m| m.message_id.clone()).collect();
                    let from = (offset as usize).min(want.len());
                    let until = (from + 10).min(want.len());
                    assert_eq!(
                        got,
                        want[from..until],
                        "{tuning:?} {filter:?} offset {offset}"
                    );
                    assert_eq!(
                        page.total,
                        want.len() as u64,
                        "total: {tuning:?} {filter:?}"
                    );
                    assert_eq!(
                        page.next.is_some(),
                        until < want.len(),
                        "next: {filter:?} {offset}"
                    );
                }
            }
        }
    }
}
