//! The `WHERE` clause of a `/messages` read, and the index the read should go through.
//!
//! Every listing is `ORDER BY ts_us, message_id`, read off the index of its most selective
//! filter (`from`, else `to`, else time), named explicitly so the plan never depends on
//! statistics. A search read through the text index instead writes its filter columns `+column`,
//! so the few candidate rowids drive the query and no filter index does. Conditions and their
//! arguments are always pushed together, so the placeholders and the values cannot drift apart.
//! Time bounds are instants ([`TimeRange`]), not the text `since` and `until` were written as,
//! so a listing can be narrowed to start at an hour without inventing a timestamp for it.

use rusqlite::types::Value;

use crate::domain::{MessageFilter, Position};
use crate::storage::TimeRange;

/// A `WHERE` clause under construction, and the index the listing should be read from.
pub struct Clause {
    index: &'static str,
    conditions: Vec<String>,
    args: Vec<Value>,
}

impl Clause {
    /// The filters other than `q`, and the keyset position.
    pub fn new(filter: &MessageFilter, after: Option<&Position>) -> Self {
        Self::in_range(filter, TimeRange::of(filter), after)
    }

    /// As [`Clause::new`], with `range` in place of the filter's `since` and `until`.
    pub fn in_range(filter: &MessageFilter, range: TimeRange, after: Option<&Position>) -> Self {
        Self::with_columns(filter, range, after, "")
    }

    /// The filters other than `q`, the keyset position, and only rows whose text contains
    /// `needle` (already folded): a search walked along the listing index.
    pub fn containing(filter: &MessageFilter, after: Option<&Position>, needle: &str) -> Self {
        let mut clause = Self::new(filter, after);
        clause.text_contains(needle);
        clause
    }

    /// Only the rows the text index says may contain `needle` (already folded), or that it has
    /// not seen yet, and that contain it, with the other filters checked on each of them. The
    /// filter columns are written `+column`, which keeps SQLite from reading them off an index:
    /// the candidate rowids, few for a rare word, are what drives the query.
    pub fn candidates(
        filter: &MessageFilter,
        after: Option<&Position>,
        expression: String,
        indexed_through: i64,
        needle: &str,
    ) -> Self {
        let mut clause = Self::with_columns(filter, TimeRange::of(filter), after, "+");
        clause.push_all(
            "rowid IN (SELECT rowid FROM messages_text WHERE messages_text MATCH ? \
             UNION ALL SELECT rowid FROM messages WHERE rowid > ?)",
            [Value::Text(expression), Value::Integer(indexed_through)],
        );
        clause.text_contains(needle);
        clause
    }

    /// Only the rows stored after rowid `after` and up to `through` that match the filters and
    /// contain `needle` (already folded), read by rowid (the `+` columns keep SQLite off the
    /// filter indexes), so only the rows of that stretch are looked at.
    pub fn stored_between(filter: &MessageFilter, after: i64, through: i64, needle: &str) -> Self {
        let mut clause = Self::with_columns(filter, TimeRange::of(filter), None, "+");
        clause.push_all(
            "rowid > ? AND rowid <= ?",
            [Value::Integer(after), Value::Integer(through)],
        );
        clause.text_contains(needle);
        clause
    }

    /// `from`, `to`, `range` and `after`, each column name prefixed with `prefix`.
    fn with_columns(
        filter: &MessageFilter,
        range: TimeRange,
        after: Option<&Position>,
        prefix: &str,
    ) -> Self {
        let mut clause = Self {
            index: match (&filter.from, &filter.to) {
                (Some(_), _) => "messages_by_from",
                (None, Some(_)) => "messages_by_to",
                (None, None) => "messages_by_ts",
            },
            conditions: Vec::new(),
            args: Vec::new(),
        };
        if let Some(from) = &filter.from {
            clause.push(
                &format!("{prefix}from_msisdn = ?"),
                Value::Text(from.clone()),
            );
        }
        if let Some(to) = &filter.to {
            clause.push(&format!("{prefix}to_msisdn = ?"), Value::Text(to.clone()));
        }
        if let Some(from_us) = range.from_us {
            clause.push(&format!("{prefix}ts_us >= ?"), Value::Integer(from_us));
        }
        if let Some(until_us) = range.until_us {
            clause.push(&format!("{prefix}ts_us < ?"), Value::Integer(until_us));
        }
        if let Some(after) = after {
            clause.push_all(
                &format!("({prefix}ts_us, {prefix}message_id) > (?, ?)"),
                [
                    Value::Integer(after.ts_us),
                    Value::Text(after.message_id.clone()),
                ],
            );
        }
        clause
    }

    fn push(&mut self, condition: &str, arg: Value) {
        self.push_all(condition, [arg]);
    }

    fn push_all(&mut self, condition: &str, args: impl IntoIterator<Item = Value>) {
        self.conditions.push(condition.to_owned());
        self.args.extend(args);
    }

    /// Only rows whose text contains `needle` (already folded).
    fn text_contains(&mut self, needle: &str) {
        self.push("text_contains(text, ?)", Value::Text(needle.to_owned()));
    }

    /// The values of the clause's placeholders, in order.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    fn where_sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// `FROM messages` read off the filter's index, or left to the planner (for candidates).
    pub fn source_sql(&self, use_index: bool) -> String {
        if use_index {
            format!(
                "FROM messages INDEXED BY {}{}",
                self.index,
                self.where_sql()
            )
        } else {
            format!("FROM messages{}", self.where_sql())
        }
    }
}
