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

use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::clause::Clause;
use super::{from_sqlite, hours, text_index};
use crate::domain::{MessageFilter, MessageSlice, Position, StoredMessage, TextSearch};
use crate::storage::{StorageError, StorageErrorKind};

/// The thresholds that choose between plans.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// From this `offset` on, a listing over time alone skips whole hours.
    pub deep_offset: u64,
    /// How long `q` is tried by walking the listing before the text index is used.
    pub walk_budget: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            deep_offset: 10_000,
            walk_budget: Duration::from_millis(15),
        }
    }
}

/// How a page was found; for a search, it tells how its total is best counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Off the listing index, checking each row (no `q`, or `q` filled the page in time).
    Walking,
    /// Through the text index: `q` is rare, and counting its candidates is cheap.
    ThroughTextIndex,
}

/// Up to `limit` rows matching `filter` in listing order, after `after` and then `offset` rows,
/// and the position of the last one when more follow.
pub fn select(
    conn: &mut Connection,
    filter: &MessageFilter,
    after: Option<&Position>,
    limit: usize,
    offset: u64,
    tuning: Tuning,
) -> Result<(MessageSlice, Found), StorageError> {
    let walked = |page| Ok((page, Found::Walking));
    let Some(q) = &filter.q else {
        let over_time_alone = filter.from.is_none() && filter.to.is_none() && after.is_none();
        let (narrowed, offset) = if offset >= tuning.deep_offset && over_time_alone {
            hours::skip(conn, filter, offset)?
        } else {
            (filter.clone(), offset)
        };
        let clause = Clause::new(&narrowed, after);
        return walked(read_page(conn, &clause, true, limit, offset)?);
    };
    let needle = TextSearch::new(q).needle().to_owned();
    let expression = text_index::match_expression(&needle);
    let walk = Clause::containing(filter, after, &needle);
    if expression.is_none() {
        return walked(read_page(conn, &walk, true, limit, offset)?);
    }
    if let Some(page) = within(conn, tuning.walk_budget, |conn| {
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
    let mut rows = statement
        .query_map(params_from_iter(args), |row| {
            Ok((
                StoredMessage {
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
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|(message, ts_us)| Position {
            ts_us: *ts_us,
            message_id: message.message_id.clone(),
        });
    Ok(MessageSlice {
        messages: rows.into_iter().map(|(message, _)| message).collect(),
        next,
    })
}

/// Runs `read` with a time budget: `None` when it ran out (the read was interrupted).
pub fn within<T>(
    conn: &mut Connection,
    budget: Duration,
    read: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    let deadline = Instant::now() + budget;
    conn.progress_handler(1_000, Some(move || Instant::now() >= deadline))
        .map_err(from_sqlite)?;
    let result = read(conn);
    conn.progress_handler(0, None::<fn() -> bool>)
        .map_err(from_sqlite)?;
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind == StorageErrorKind::TimedOut => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::Tuning;
    use crate::domain::timestamp::format_micros;
    use crate::domain::{MessageFilter, MessageQuery, NewMessage, TextSearch, Timestamp};
    use crate::storage::sqlite::{SqliteReader, SqliteStorage};
    use crate::storage::{MessageReader, Storage};
    use std::time::Duration;

    const TEXTS: [Option<&str>; 9] = [
        Some("order shipped today"),
        Some("ORDER #5 is 50% off"),
        Some("meeting at the Zebracorn café"),
        Some("Grüße aus KÖLN"),
        Some("köln again, order placed"),
        Some("zz top"),
        None,
        Some("file_name_v2 attached"),
        Some("plain words only"),
    ];

    /// 600 messages over about 30 hours: 5 senders, 3 recipients, texts from `TEXTS`.
    fn messages() -> Vec<NewMessage> {
        (0..600_i64)
            .map(|i| {
                // Spread over hours, out of order, with ties on the same instant.
                let micros =
                    1_736_900_000_000_000 + (i * 7919 % 600) * 180_000_000 + (i % 3) * 250_000;
                let body = serde_json::json!({
                    "message_id": format!("m{i:04}"),
                    "from": format!("+1{}", i % 5),
                    "to": format!("+4{}", i % 3),
                    "ts": format_micros(micros),
                    "text": TEXTS[(i % 9) as usize],
                });
                NewMessage::from_json(body.to_string().as_bytes()).unwrap()
            })
            .collect()
    }

    /// Searches for a common, a rare and a non-ASCII word find exactly what a scan of `all`
    /// finds, in order, with the right total.
    fn assert_searches_match(reader: &mut SqliteReader, all: &[NewMessage]) {
        for q in ["order", "zebracorn", "köln"] {
            let filter = MessageFilter {
                q: Some(q.to_owned()),
                ..MessageFilter::default()
            };
            let query = MessageQuery {
                filter: filter.clone(),
                limit: 100,
                offset: 0,
                after: None,
            };
            let page = reader.list(&query).unwrap();
            let want = expected(all, &filter);
            assert_eq!(page.total, want.len() as u64, "{q}");
            let got: Vec<String> = page.data.iter().map(|m| m.message_id.clone()).collect();
            assert_eq!(got, want[..want.len().min(100)], "{q}");
        }
    }

    fn expected(all: &[NewMessage], filter: &MessageFilter) -> Vec<String> {
        let search = filter.q.as_deref().map(TextSearch::new);
        let mut matching: Vec<&NewMessage> = all
            .iter()
            .filter(|m| filter.from.as_ref().is_none_or(|f| *f == m.from))
            .filter(|m| filter.to.as_ref().is_none_or(|t| *t == m.to))
            .filter(|m| {
                filter
                    .since
                    .as_ref()
                    .is_none_or(|s| m.ts.micros() >= s.micros())
            })
            .filter(|m| {
                filter
                    .until
                    .as_ref()
                    .is_none_or(|u| m.ts.micros() < u.micros())
            })
            .filter(|m| {
                search
                    .as_ref()
                    .is_none_or(|s| m.text.as_deref().is_some_and(|t| s.matches(t)))
            })
            .collect();
        matching
            .sort_by(|a, b| (a.ts.micros(), &a.message_id).cmp(&(b.ts.micros(), &b.message_id)));
        matching.into_iter().map(|m| m.message_id.clone()).collect()
    }

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
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::initialize(dir.path().join("app.db")).unwrap();
        let all = messages();
        let mut writer = storage.writer();
        writer.insert_batch(&all).unwrap();
        // Half the rows are in the text index; the rest must be found directly.
        assert_eq!(writer.index_text(300).unwrap(), 300);

        let tunings = [
            Tuning::default(),
            Tuning {
                deep_offset: 1,
                walk_budget: Duration::ZERO,
            },
            Tuning {
                deep_offset: 50,
                walk_budget: Duration::from_secs(10),
            },
        ];
        for tuning in tunings {
            let mut reader = SqliteReader::new(
                storage.path.clone(),
                storage.home,
                tuning,
                Default::default(),
            );
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

    #[test]
    fn indexing_the_text_in_slices_reaches_every_row_and_deletes_leave_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::initialize(dir.path().join("app.db")).unwrap();
        let all = messages();
        let mut writer = storage.writer();
        writer.insert_batch(&all).unwrap();
        let mut indexed = 0;
        loop {
            let slice = writer.index_text(64).unwrap();
            indexed += slice;
            if slice < 64 {
                break;
            }
        }
        assert_eq!(indexed, 600);
        assert_eq!(writer.index_text(64).unwrap(), 0, "nothing left");
        // Retention deletes rows from the index too; searching still matches a full scan.
        let cutoff = Timestamp::parse("2025-01-15T06:00:00Z").unwrap().micros();
        while writer.delete_before(cutoff, 50).unwrap() > 0 {}
        let kept: Vec<NewMessage> = all
            .into_iter()
            .filter(|m| m.ts.micros() >= cutoff)
            .collect();
        let tuning = Tuning {
            deep_offset: 1,
            walk_budget: Duration::ZERO,
        };
        let mut reader = SqliteReader::new(
            storage.path.clone(),
            storage.home,
            tuning,
            Default::default(),
        );
        assert_searches_match(&mut reader, &kept);
    }

    #[test]
    fn a_remembered_search_count_follows_inserts_and_is_redone_after_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::initialize(dir.path().join("app.db")).unwrap();
        let all = messages();
        let (first, later) = all.split_at(400);
        let mut writer = storage.writer();
        writer.insert_batch(first).unwrap();
        let mut reader = SqliteReader::new(
            storage.path.clone(),
            storage.home,
            Tuning::default(),
            std::sync::Arc::clone(&storage.totals),
        );
        let filter = MessageFilter {
            q: Some("ORDER".to_owned()),
            ..MessageFilter::default()
        };
        let total = |reader: &mut SqliteReader| {
            let query = MessageQuery {
                filter: filter.clone(),
                limit: 1,
                offset: 0,
                after: None,
            };
            reader.list(&query).unwrap().total
        };
        assert_eq!(total(&mut reader), expected(first, &filter).len() as u64);
        writer.insert_batch(later).unwrap();
        assert_eq!(
            total(&mut reader),
            expected(&all, &filter).len() as u64,
            "new rows counted"
        );
        let cutoff = Timestamp::parse("2025-01-15T06:00:00Z").unwrap().micros();
        while writer.delete_before(cutoff, 100).unwrap() > 0 {}
        let kept: Vec<NewMessage> = all
            .into_iter()
            .filter(|m| m.ts.micros() >= cutoff)
            .collect();
        assert_eq!(
            total(&mut reader),
            expected(&kept, &filter).len() as u64,
            "after deletions"
        );
    }

    #[test]
    fn retention_may_delete_every_row_and_rows_stored_after_it_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::initialize(dir.path().join("app.db")).unwrap();
        let mut old = messages();
        let new = old.split_off(300);
        let mut writer = storage.writer();
        writer.insert_batch(&old).unwrap();
        while writer.index_text(1000).unwrap() > 0 {}
        // Everything has expired, the newest row too.
        while writer.delete_before(i64::MAX, 100).unwrap() > 0 {}
        // The next rows get the rowids the deleted ones had; half of them get indexed.
        writer.insert_batch(&new).unwrap();
        writer.index_text(150).unwrap();
        let mut reader = SqliteReader::new(
            storage.path.clone(),
            storage.home,
            Tuning::default(),
            Default::default(),
        );
        assert_eq!(reader.stats().unwrap().total_messages, 300);
        assert_searches_match(&mut reader, &new);
    }
}
