//! How a page of `/messages` is chosen and read on PostgreSQL, fast at ten million rows; the
//! same plans as the SQLite store's, in PostgreSQL's terms.
//!
//! - Every listing is `ORDER BY ts_us, message_id`; each filter has an index in that order.
//! - A deep `offset` over time alone jumps to the right hour ([`hour_buckets`]).
//! - `q` is first tried by walking the listing order and checking each row, within a small time
//!   budget (a statement timeout inside a savepoint, so the read's snapshot survives running
//!   out): fastest for common words. Past the budget, the candidates come from the trigram
//!   index and are put in order: fastest for rare words. A search already counted at few
//!   matches ([`Tuning::index_first_at_most`]) goes to the index at once: at ten million rows a
//!   rare word's page took ~40 ms walking first, the budget wasted, and ~3 ms from the index.
//!   A needle the index cannot help with (under three characters) is only walked.
//! - A needle with characters the stored text escapes ([`needs_exact_check`]) is walked in
//!   slices and each row checked with [`TextSearch::contains`].

use std::time::Duration;

use postgres::types::Type;
use postgres::{Client, Row};

use super::clause::Clause;
use super::connection::{from_pg, get, query, query_one};
use super::text::{decode, needs_exact_check};
use crate::domain::{Message, MessageFilter, MessageSlice, Position, TextSearch};
use crate::storage::hour_buckets::{self, HourCounts};
use crate::storage::total_cache::{SearchKey, TotalCache};
use crate::storage::{StorageError, StorageErrorKind, TimeRange, Tuning};

/// Rows read per slice when each row is checked here.
const CHECKED_SLICE: i64 = 1_000;

const COLUMNS: &str = "message_id, from_msisdn, to_msisdn, ts, text, ts_us";

/// Up to `limit` rows matching `filter` in listing order, after `after` and then `offset` rows,
/// and the position of the last one when more follow, planned with `tuning` and the counts
/// `remembered` (a plan choice only: every plan reads the same rows). Runs inside a read
/// transaction whose statement timeout is `read_timeout`.
pub fn select(
    client: &mut Client,
    filter: &MessageFilter,
    (after, limit, offset): (Option<&Position>, usize, u64),
    (tuning, remembered): (Tuning, &TotalCache),
    read_timeout: Duration,
) -> Result<MessageSlice, StorageError> {
    let range = TimeRange::of(filter);
    let Some(q) = &filter.q else {
        let over_time_alone = filter.from.is_none() && filter.to.is_none() && after.is_none();
        let (range, offset) = if offset >= tuning.deep_offset && over_time_alone {
            hour_buckets::skip(&mut PostgresHours(client), range, offset)?
        } else {
            (range, offset)
        };
        let clause = Clause::new(filter, range, after);
        return read_page(client, &clause, limit, offset, Plan::Planner);
    };
    let needle = TextSearch::new(q).needle().to_owned();
    if needs_exact_check(&needle) {
        return checked_page(client, filter, after, &needle, limit, offset);
    }
    let walk = Clause::new(filter, range, after).walking(&needle);
    if needle.chars().count() < 3 {
        return read_page(client, &walk, limit, offset, Plan::Walk);
    }
    // The count may be older than the newest rows: it only chooses the plan.
    let known_few =
        remembered.counted_at_most(&SearchKey::new(filter, &needle), tuning.index_first_at_most);
    let within_budget = match tuning.walk_budget {
        _ if known_few => None,
        budget if budget.is_zero() => None,
        budget => within(client, budget, read_timeout, |client| {
            read_page(client, &walk, limit, offset, Plan::Walk)
        })?,
    };
    if let Some(page) = within_budget {
        return Ok(page);
    }
    let candidates = Clause::new(filter, range, after).containing(&needle);
    read_page(client, &candidates, limit, offset, Plan::Candidates)
}

/// How a page is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// As the planner sees fit.
    Planner,
    /// In listing order, off the index of the filter (the planner is kept from sorting or
    /// scanning the table, which it may prefer for a search it cannot estimate), checking each
    /// row, and stopping as soon as the page is full.
    Walk,
    /// Every row of the clause first (the planner finds them the cheapest way, the trigram
    /// index for a rare word), then put in order.
    Candidates,
}

/// Keeps the planner to an ordered index scan for the rest of the transaction, and lets it be.
const WALK_ONLY: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off";
const PLAN_FREELY: &str =
    "SET LOCAL enable_seqscan = on; SET LOCAL enable_bitmapscan = on; SET LOCAL enable_sort = on";

/// Up to `limit` rows of `clause` in listing order after skipping `offset`, read as `plan`
/// says, and the position of the last one when more follow.
fn read_page(
    client: &mut Client,
    clause: &Clause,
    limit: usize,
    offset: u64,
    plan: Plan,
) -> Result<MessageSlice, StorageError> {
    let mut params = clause.params();
    // One row more than asked for tells whether more follow.
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let skip = i64::try_from(offset).unwrap_or(i64::MAX);
    let (fetch_at, skip_at) = (params.len() + 1, params.len() + 2);
    params.push((&fetch, Type::INT8));
    params.push((&skip, Type::INT8));
    let source = if plan == Plan::Candidates {
        format!(
            "(WITH found AS MATERIALIZED (SELECT {COLUMNS} FROM messages{}) \
             SELECT * FROM found) AS found",
            clause.where_sql()
        )
    } else {
        format!("messages{}", clause.where_sql())
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {source} ORDER BY ts_us, message_id LIMIT ${fetch_at} OFFSET ${skip_at}"
    );
    if plan == Plan::Walk {
        client.batch_execute(WALK_ONLY).map_err(from_pg)?;
    }
    let rows = query(client, &sql, &params)?;
    if plan == Plan::Walk {
        client.batch_execute(PLAN_FREELY).map_err(from_pg)?;
    }
    slice_of(&rows, limit)
}

/// The messages of `rows` (read with [`COLUMNS`]), at most `limit`, and where the next slice
/// starts when there were more.
fn slice_of(rows: &[Row], limit: usize) -> Result<MessageSlice, StorageError> {
    let rows = rows.iter().map(positioned).collect::<Result<Vec<_>, _>>()?;
    Ok(MessageSlice::of(rows, limit))
}

/// A row read with [`COLUMNS`], decoded, with its `ts_us`.
fn positioned(row: &Row) -> Result<(Message, i64), StorageError> {
    Ok((
        Message {
            message_id: decode(get(row, 0)?),
            from: get(row, 1)?,
            to: get(row, 2)?,
            ts: get(row, 3)?,
            text: get::<Option<String>>(row, 4)?.map(decode),
        },
        get(row, 5)?,
    ))
}

/// A page of a search whose needle needs each row checked here: the rows are walked in listing
/// order a slice at a time, and kept when their text contains `needle`.
fn checked_page(
    client: &mut Client,
    filter: &MessageFilter,
    after: Option<&Position>,
    needle: &str,
    limit: usize,
    offset: u64,
) -> Result<MessageSlice, StorageError> {
    let mut kept = Vec::new();
    let wanted = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .saturating_add(limit)
        .saturating_add(1);
    for_each_checked(client, filter, after, needle, |message, ts_us| {
        kept.push((message, ts_us));
        kept.len() < wanted
    })?;
    let skip = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(kept.len());
    Ok(MessageSlice::of(kept.split_off(skip), limit))
}

/// Calls `keep` with every row matching `filter` after `after` whose text contains `needle`
/// (already folded), in listing order, while it returns `true`.
pub fn for_each_checked(
    client: &mut Client,
    filter: &MessageFilter,
    after: Option<&Position>,
    needle: &str,
    mut keep: impl FnMut(Message, i64) -> bool,
) -> Result<(), StorageError> {
    let search = TextSearch::new(needle);
    let mut position = after.cloned();
    loop {
        let clause =
            Clause::new(filter, TimeRange::of(filter), position.as_ref()).containing(needle);
        let mut params = clause.params();
        let at = params.len() + 1;
        params.push((&CHECKED_SLICE, Type::INT8));
        let sql = format!(
            "SELECT {COLUMNS} FROM messages{} ORDER BY ts_us, message_id LIMIT ${at}",
            clause.where_sql()
        );
        let rows = query(client, &sql, &params)?;
        for row in &rows {
            let (message, ts_us) = positioned(row)?;
            position = Some(Position {
                ts_us,
                message_id: message.message_id.clone(),
            });
            let matches = message.text.as_deref().is_some_and(|t| search.matches(t));
            if matches && !keep(message, ts_us) {
                return Ok(());
            }
        }
        if (rows.len() as i64) < CHECKED_SLICE {
            return Ok(());
        }
    }
}

/// Runs `read` with a time budget inside the read transaction: `None` when it ran out, with
/// the transaction still usable (the attempt is rolled back to a savepoint).
pub fn within<T>(
    client: &mut Client,
    budget: Duration,
    read_timeout: Duration,
    read: impl FnOnce(&mut Client) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    client
        .batch_execute(&format!(
            "SAVEPOINT budget; SET LOCAL statement_timeout = {}",
            budget.as_millis().max(1)
        ))
        .map_err(from_pg)?;
    let result = read(client);
    let restore = format!(
        "SET LOCAL statement_timeout = {}",
        read_timeout.as_millis().max(1)
    );
    match result {
        Ok(value) => {
            client
                .batch_execute(&format!("RELEASE SAVEPOINT budget; {restore}"))
                .map_err(from_pg)?;
            Ok(Some(value))
        }
        Err(error) if error.kind == StorageErrorKind::TimedOut => {
            client
                .batch_execute(&format!("ROLLBACK TO SAVEPOINT budget; {restore}"))
                .map_err(from_pg)?;
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The PostgreSQL store's rows per hour: whole hours from `hour_counts`, partial ones counted
/// off the `ts_us` index.
pub struct PostgresHours<'a>(pub &'a mut Client);

impl HourCounts for PostgresHours<'_> {
    fn whole_hours(
        &mut self,
        first: Option<i64>,
        last: Option<i64>,
    ) -> Result<Vec<(i64, u64)>, StorageError> {
        query(
            self.0,
            "SELECT hour, message_count FROM hour_counts \
             WHERE ($1::int8 IS NULL OR hour >= $1) AND ($2::int8 IS NULL OR hour <= $2) \
             ORDER BY hour",
            &[(&first, Type::INT8), (&last, Type::INT8)],
        )?
        .iter()
        .map(|row| Ok((get(row, 0)?, get::<i64>(row, 1)?.unsigned_abs())))
        .collect()
    }

    fn count_between(&mut self, from_us: i64, until_us: i64) -> Result<u64, StorageError> {
        let row = query_one(
            self.0,
            "SELECT count(*) FROM messages WHERE ts_us >= $1 AND ts_us < $2",
            &[(&from_us, Type::INT8), (&until_us, Type::INT8)],
        )?;
        Ok(get::<i64>(&row, 0)?.unsigned_abs())
    }
}
