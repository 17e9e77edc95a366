//! The trigram index behind `q` (`messages_text`), kept by the writer.
//!
//! Each message's text is folded with [`TextSearch::fold`] (the `q` filter's own case rules) and
//! stored as trigrams, without positions. A search asks for the rows holding every trigram of
//! the folded needle: a superset of the matches, which the caller narrows with the exact check.
//! New rows are indexed in the background, oldest first; `indexed_through` is the highest rowid
//! indexed, and rows after it must be searched directly.

use std::collections::HashSet;

use rusqlite::{Connection, Transaction, params};

use super::from_sqlite;
use crate::domain::TextSearch;
use crate::storage::StorageError;

/// The highest rowid whose text is in the index (every lower one is too).
pub fn indexed_through(conn: &Connection) -> Result<i64, StorageError> {
    conn.query_row(
        "SELECT indexed_through FROM text_index_state WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .map_err(from_sqlite)
}

/// Indexes up to `limit` of the rows after `indexed_through`, oldest first; returns how many.
pub fn catch_up(tx: &Transaction<'_>, limit: usize) -> Result<usize, StorageError> {
    let from = indexed_through(tx)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut select = tx
        .prepare_cached("SELECT rowid, text FROM messages WHERE rowid > ?1 ORDER BY rowid LIMIT ?2")
        .map_err(from_sqlite)?;
    let mut rows = select.query(params![from, limit]).map_err(from_sqlite)?;
    let mut last = None;
    let mut indexed = 0;
    while let Some(row) = rows.next().map_err(from_sqlite)? {
        let rowid: i64 = row.get(0).map_err(from_sqlite)?;
        if let Some(text) = row
            .get_ref(1)
            .map_err(from_sqlite)?
            .as_str_or_null()
            .ok()
            .flatten()
        {
            add(tx, rowid, text)?;
        }
        last = Some(rowid);
        indexed += 1;
    }
    if let Some(last) = last {
        set_indexed_through(tx, last)?;
    }
    Ok(indexed)
}

/// Adds one row's text.
pub fn add(tx: &Transaction<'_>, rowid: i64, text: &str) -> Result<(), StorageError> {
    tx.prepare_cached("INSERT INTO messages_text (rowid, text) VALUES (?1, ?2)")
        .and_then(|mut insert| insert.execute(params![rowid, TextSearch::fold(text)]))
        .map_err(from_sqlite)?;
    Ok(())
}

/// Removes a deleted row, if it was indexed.
pub fn remove(tx: &Transaction<'_>, rowid: i64, indexed_through: i64) -> Result<(), StorageError> {
    if rowid <= indexed_through {
        tx.prepare_cached("DELETE FROM messages_text WHERE rowid = ?1")
            .and_then(|mut delete| delete.execute([rowid]))
            .map_err(from_sqlite)?;
    }
    Ok(())
}

/// Records that every row up to `rowid` is indexed.
pub fn set_indexed_through(tx: &Transaction<'_>, rowid: i64) -> Result<(), StorageError> {
    tx.prepare_cached("UPDATE text_index_state SET indexed_through = ?1 WHERE id = 1")
        .and_then(|mut update| update.execute([rowid]))
        .map_err(from_sqlite)?;
    Ok(())
}

/// After deletions: when the newest rows are gone, `indexed_through` comes down to the newest
/// row left, because SQLite gives the next row the rowid after it, and that row must count as
/// not yet indexed.
pub fn forget_deleted_tail(tx: &Transaction<'_>) -> Result<(), StorageError> {
    tx.prepare_cached(
        "UPDATE text_index_state SET indexed_through = \
         min(indexed_through, coalesce((SELECT max(rowid) FROM messages), 0)) WHERE id = 1",
    )
    .and_then(|mut update| update.execute([]))
    .map_err(from_sqlite)?;
    Ok(())
}

/// How many rows wait to be indexed (approximately: deleted rows still count).
pub fn backlog(conn: &Connection) -> Result<i64, StorageError> {
    let newest: Option<i64> = conn
        .query_row("SELECT max(rowid) FROM messages", [], |row| row.get(0))
        .map_err(from_sqlite)?;
    match newest {
        Some(newest) => Ok((newest - indexed_through(conn)?).max(0)),
        None => Ok(0),
    }
}

/// The most trigrams of a needle the full-text query asks for. Each one is a term the index
/// must look up and intersect, so a long needle would cost time growing with its length; a few
/// spread along it narrow the candidates about as well, and the exact check after the query
/// keeps the results correct whichever are chosen.
pub const MAX_QUERY_TRIGRAMS: usize = 12;

/// The full-text query finding rows that hold every chosen trigram of `needle` (already
/// folded): at most [`MAX_QUERY_TRIGRAMS`] distinct ones, spread along it. `None` when it has
/// no trigram the index can look up (shorter than three characters, or every trigram holds a
/// NUL, which the full-text query syntax cannot quote): the rows are then walked.
pub fn match_expression(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    let mut seen = HashSet::new();
    let distinct: Vec<String> = chars
        .windows(3)
        .map(|window| window.iter().collect::<String>())
        .filter(|trigram| !trigram.contains('\0') && seen.insert(trigram.clone()))
        .collect();
    if distinct.is_empty() {
        return None;
    }
    let chosen = distinct.len().min(MAX_QUERY_TRIGRAMS);
    let mut trigrams: Vec<&String> = (0..chosen)
        .map(|i| &distinct[i * distinct.len() / chosen])
        .collect();
    trigrams.sort();
    Some(
        trigrams
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{MAX_QUERY_TRIGRAMS, match_expression};
    use crate::storage::Tuning;
    use crate::storage::sqlite::fixture::{assert_searches_match, expire, messages, temp_db};
    use crate::storage::{MessageReader, MessageWriter};

    #[test]
    fn needles_become_a_conjunction_of_quoted_trigrams() {
        assert_eq!(match_expression("ab"), None);
        assert_eq!(match_expression("abc").as_deref(), Some("\"abc\""));
        assert_eq!(
            match_expression("abcab").as_deref(),
            Some("\"abc\" AND \"bca\" AND \"cab\"")
        );
        assert_eq!(match_expression("a\"b").as_deref(), Some("\"a\"\"b\""));
        assert_eq!(
            match_expression("köln").as_deref(),
            Some("\"köl\" AND \"öln\"")
        );
    }

    #[test]
    fn a_long_needle_asks_for_a_bounded_number_of_trigrams_spread_along_it() {
        let needle: String = (0..4096)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let expression = match_expression(&needle).unwrap();
        assert_eq!(expression.matches(" AND ").count() + 1, MAX_QUERY_TRIGRAMS);
        let unique = "abcdefghijklmnopqrstuvwxyz0123456789";
        let expression = match_expression(unique).unwrap();
        assert!(
            expression.contains("\"abc\"") && expression.contains("\"rst\""),
            "{expression}"
        );
    }

    #[test]
    fn trigrams_holding_a_nul_are_left_out_of_the_query() {
        assert_eq!(match_expression("ab\0").as_deref(), None);
        assert_eq!(match_expression("a\0bcd").as_deref(), Some("\"bcd\""));
    }

    #[test]
    fn a_text_holding_a_nul_is_found_through_the_index_by_a_search_holding_it() {
        let (_dir, storage) = temp_db();
        let body = |id: &str, text: &str| {
            let body = serde_json::json!({"message_id": id, "from": "+1", "to": "+2",
                "ts": "2025-01-15T10:00:00Z", "text": text});
            crate::domain::NewMessage::from_json(body.to_string().as_bytes()).unwrap()
        };
        let mut writer = storage.sqlite_writer();
        writer
            .insert_batch(&[
                body("nul", "before\0after text"),
                body("plain", "after text"),
            ])
            .unwrap();
        writer.index_text(10).unwrap();
        let tuning = Tuning {
            deep_offset: 1,
            walk_budget: Duration::ZERO,
            ..Tuning::default()
        };
        let mut reader = storage.reader_with(tuning, Arc::default());
        for (q, want) in [
            ("E\0AFTER", vec!["nul"]),
            ("after", vec!["nul", "plain"]),
            ("abc\0", vec![]),
        ] {
            let query = crate::domain::MessageQuery {
                filter: crate::domain::MessageFilter {
                    q: Some(q.to_owned()),
                    ..Default::default()
                },
                limit: 10,
                offset: 0,
                after: None,
            };
            let page = reader.list(&query).unwrap();
            let got: Vec<&str> = page.data.iter().map(|m| m.message_id.as_str()).collect();
            assert_eq!(
                (got, page.total),
                (want.clone(), want.len() as u64),
                "{q:?}"
            );
        }
    }

    #[test]
    fn indexing_the_text_in_slices_reaches_every_row_and_deletes_leave_the_index() {
        let (_dir, storage) = temp_db();
        let all = messages();
        let mut writer = storage.sqlite_writer();
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
        let kept = expire(&mut writer, all, "2025-01-15T06:00:00Z", 50);
        let tuning = Tuning {
            deep_offset: 1,
            walk_budget: Duration::ZERO,
            ..Tuning::default()
        };
        let mut reader = storage.reader_with(tuning, Arc::default());
        assert_searches_match(&mut reader, &kept);
    }

    #[test]
    fn retention_may_delete_every_row_and_rows_stored_after_it_are_still_found() {
        let (_dir, storage) = temp_db();
        let mut old = messages();
        let new = old.split_off(300);
        let mut writer = storage.sqlite_writer();
        writer.insert_batch(&old).unwrap();
        while writer.index_text(1000).unwrap() > 0 {}
        // Everything has expired, the newest row too.
        while writer.delete_before(i64::MAX, 100).unwrap() > 0 {}
        // The next rows get the rowids the deleted ones had; half of them get indexed.
        writer.insert_batch(&new).unwrap();
        writer.index_text(150).unwrap();
        let mut reader = storage.reader_with(Tuning::default(), Arc::default());
        assert_eq!(reader.stats().unwrap().total_messages, 300);
        assert_searches_match(&mut reader, &new);
    }
}
