//! Keeps `sender_stats` and `message_totals` in step with `messages`.
//!
//! The writer adds up a transaction's changes per sender in memory and applies them once per
//! sender just before committing, instead of updating the aggregates for every row: with
//! hundreds of rows per batch this writes each aggregate page once per batch.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::from_sqlite;
use crate::storage::StorageError;

/// Row-count changes per sender, not yet written.
#[derive(Default)]
pub struct CountChanges {
    per_sender: HashMap<String, i64>,
    total: i64,
}

impl CountChanges {
    /// One row from `sender` was inserted (`+1`) or deleted (`-1`).
    pub fn add(&mut self, sender: &str, delta: i64) {
        self.total += delta;
        match self.per_sender.get_mut(sender) {
            Some(count) => *count += delta,
            None => {
                self.per_sender.insert(sender.to_owned(), delta);
            }
        }
    }

    /// How many senders have pending changes (to flush before the map grows large).
    pub fn senders(&self) -> usize {
        self.per_sender.len()
    }

    /// Writes the changes into the aggregates within `tx` and forgets them.
    pub fn apply(&mut self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        if self.total == 0 && self.per_sender.values().all(|d| *d == 0) {
            self.per_sender.clear();
            return Ok(());
        }
        let mut senders_added: i64 = 0;
        let mut update = tx
            .prepare_cached(
                "UPDATE sender_stats SET message_count = message_count + ?2 WHERE from_msisdn = ?1",
            )
            .map_err(from_sqlite)?;
        let mut insert = tx
            .prepare_cached("INSERT INTO sender_stats (from_msisdn, message_count) VALUES (?1, ?2)")
            .map_err(from_sqlite)?;
        let mut remove = tx
            .prepare_cached(
                "DELETE FROM sender_stats WHERE from_msisdn = ?1 AND message_count <= 0",
            )
            .map_err(from_sqlite)?;
        for (sender, delta) in self.per_sender.drain() {
            if delta == 0 {
                continue;
            }
            let updated = update
                .execute(params![sender, delta])
                .map_err(from_sqlite)?;
            if updated == 0 {
                insert
                    .execute(params![sender, delta])
                    .map_err(from_sqlite)?;
                senders_added += 1;
            } else if delta < 0 {
                senders_added -= remove.execute([&sender]).map_err(from_sqlite)? as i64;
            }
        }
        tx.execute(
            "UPDATE message_totals SET message_count = message_count + ?1, \
             sender_count = sender_count + ?2 WHERE id = 1",
            params![self.total, senders_added],
        )
        .map_err(from_sqlite)?;
        self.total = 0;
        Ok(())
    }
}
