//! The `WHERE` clause of a `/messages` read on PostgreSQL, with its parameters.
//!
//! Conditions and their parameters are always added together (each parameter gets the next
//! `$n`), so placeholders and values cannot drift apart. Time bounds are instants
//! ([`TimeRange`]); the keyset position is compared as `(ts_us, message_id)`, the listing order.
//! A search condition comes in two forms: [`Clause::containing`] lets the planner use the
//! trigram index, [`Clause::walking`] hides the column from it (`text_folded || ''`), so the
//! rows are read off the listing order's index and checked one by one, which finds the first
//! matches of a common word at once.

use postgres::types::{ToSql, Type};

use super::text::{encode, like_pattern};
use crate::domain::{MessageFilter, Position};
use crate::storage::TimeRange;

/// A parameter of a statement.
type Param = (Box<dyn ToSql + Sync + Send>, Type);

/// A `WHERE` clause under construction.
#[derive(Default)]
pub struct Clause {
    conditions: Vec<String>,
    params: Vec<Param>,
}

impl Clause {
    /// `from`, `to`, `range` and the keyset position `after`.
    pub fn new(filter: &MessageFilter, range: TimeRange, after: Option<&Position>) -> Self {
        let mut clause = Self::default();
        if let Some(from) = &filter.from {
            let from = clause.param(from.clone(), Type::TEXT);
            clause.conditions.push(format!("from_msisdn = {from}"));
        }
        if let Some(to) = &filter.to {
            let to = clause.param(to.clone(), Type::TEXT);
            clause.conditions.push(format!("to_msisdn = {to}"));
        }
        if let Some(from_us) = range.from_us {
            let from_us = clause.param(from_us, Type::INT8);
            clause.conditions.push(format!("ts_us >= {from_us}"));
        }
        if let Some(until_us) = range.until_us {
            let until_us = clause.param(until_us, Type::INT8);
            clause.conditions.push(format!("ts_us < {until_us}"));
        }
        if let Some(after) = after {
            let ts_us = clause.param(after.ts_us, Type::INT8);
            let message_id = clause.param(encode(&after.message_id), Type::TEXT);
            clause
                .conditions
                .push(format!("(ts_us, message_id) > ({ts_us}, {message_id})"));
        }
        clause
    }

    /// Only rows whose folded text contains `needle` (already folded), in a form the planner
    /// can answer from the trigram index.
    pub fn containing(mut self, needle: &str) -> Self {
        let pattern = self.param(like_pattern(needle), Type::TEXT);
        self.conditions
            .push(format!("text_folded LIKE {pattern} ESCAPE '\\'"));
        self
    }

    /// Like [`Clause::containing`], in a form the trigram index cannot answer, so the rows are
    /// read in listing order and checked one by one.
    pub fn walking(mut self, needle: &str) -> Self {
        let pattern = self.param(like_pattern(needle), Type::TEXT);
        self.conditions
            .push(format!("(text_folded || '') LIKE {pattern} ESCAPE '\\'"));
        self
    }

    /// Only rows stored after position `after` and up to `through`.
    pub fn stored_between(mut self, after: i64, through: i64) -> Self {
        let after = self.param(after, Type::INT8);
        let through = self.param(through, Type::INT8);
        self.conditions
            .push(format!("seq > {after} AND seq <= {through}"));
        self
    }

    /// Adds a parameter and returns its placeholder.
    pub fn param(&mut self, value: impl ToSql + Sync + Send + 'static, kind: Type) -> String {
        self.params.push((Box::new(value), kind));
        format!("${}", self.params.len())
    }

    /// ` WHERE ...`, or nothing when there is no condition.
    pub fn where_sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The parameters, in placeholder order, as the driver takes them.
    pub fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params
            .iter()
            .map(|(value, kind)| (value.as_ref() as &(dyn ToSql + Sync), kind.clone()))
            .collect()
    }
}
