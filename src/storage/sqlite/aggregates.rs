//! Keeps the aggregates (`sender_stats`, `recipient_stats`, `hour_counts`, `message_totals`) in
//! step with `messages`, and hands out feed positions ([`Positions`]).
//!
//! The writer adds up a transaction's changes in memory and applies them once per sender,
//! recipient and hour just before committing, instead of updating the aggregates for every
//! row: with hundreds of rows per batch this writes each aggregate page once per batch.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::from_sqlite;
use crate::storage::StorageError;
use crate::storage::hour_buckets::hour_of;

/// Row-count changes, not yet written.
#[derive(Default)]
pub struct CountChanges {
    per_sender: HashMap<String, i64>,
    per_recipient: HashMap<String, i64>,
    per_hour: HashMap<i64, i64>,
    total: i64,
}

fn bump(map: &mut HashMap<String, i64>, key: &str, delta: i64) {
    match map.get_mut(key) {
        Some(count) => *count += delta,
        None => {
            map.insert(key.to_owned(), delta);
        }
    }
}

impl CountChanges {
    /// One row was inserted (`delta` 1) or deleted (`delta` -1).
    pub fn add(&mut self, from: &str, to: &str, ts_us: i64, delta: i64) {
        self.total += delta;
        bump(&mut self.per_sender, from, delta);
        bump(&mut self.per_recipient, to, delta);
        *self.per_hour.entry(hour_of(ts_us)).or_default() += delta;
    }

    /// How many keys have pending changes (to flush before the maps grow large).
    pub fn pending(&self) -> usize {
        self.per_sender.len() + self.per_recipient.len() + self.per_hour.len()
    }

    /// Writes the changes into the aggregates within `tx` and forgets them.
    pub fn apply(&mut self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        let senders_added = apply_senders(tx, self.per_sender.drain())?;
        apply_counts(
            tx,
            "recipient_stats",
            "to_msisdn",
            self.per_recipient.drain(),
        )?;
        apply_counts(tx, "hour_counts", "hour", self.per_hour.drain())?;
        if self.total != 0 || senders_added != 0 {
            tx.execute(
                "UPDATE message_totals SET message_count = message_count + ?1, \
                 sender_count = sender_count + ?2 WHERE id = 1",
                params![self.total, senders_added],
            )
            .map_err(from_sqlite)?;
        }
        self.total = 0;
        Ok(())
    }
}

/// Applies per-sender changes; returns how many senders appeared minus how many vanished.
fn apply_senders(
    tx: &Transaction<'_>,
    changes: impl Iterator<Item = (String, i64)>,
) -> Result<i64, StorageError> {
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
        .prepare_cached("DELETE FROM sender_stats WHERE from_msisdn = ?1 AND message_count <= 0")
        .map_err(from_sqlite)?;
    for (sender, delta) in changes.filter(|(_, delta)| *delta != 0) {
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
    Ok(senders_added)
}

/// Applies changes to a `(key, message_count)` table, dropping keys whose count reaches zero.
fn apply_counts<K: rusqlite::ToSql>(
    tx: &Transaction<'_>,
    table: &str,
    key: &str,
    changes: impl Iterator<Item = (K, i64)>,
) -> Result<(), StorageError> {
    let mut upsert = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} ({key}, message_count) VALUES (?1, ?2) \
             ON CONFLICT ({key}) DO UPDATE SET message_count = message_count + excluded.message_count"
        ))
        .map_err(from_sqlite)?;
    let mut remove = tx
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE {key} = ?1 AND message_count <= 0"
        ))
        .map_err(from_sqlite)?;
    for (value, delta) in changes.filter(|(_, delta)| *delta != 0) {
        upsert.execute(params![value, delta]).map_err(from_sqlite)?;
        if delta < 0 {
            remove.execute(params![value]).map_err(from_sqlite)?;
        }
    }
    Ok(())
}

/// Feed positions given in one transaction: the single writer gives each stored row the next
/// one, and records the last one given before committing.
pub struct Positions {
    next: i64,
    given: i64,
}

impl Positions {
    /// Continues after the last position given.
    pub fn read(tx: &Transaction<'_>) -> Result<Self, StorageError> {
        let head: i64 = tx
            .query_row(
                "SELECT feed_head FROM message_totals WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .map_err(from_sqlite)?;
        Ok(Self {
            next: head + 1,
            given: 0,
        })
    }

    /// The position the next stored row gets.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// The next position went to a row.
    pub fn take(&mut self) {
        self.next += 1;
        self.given += 1;
    }

    /// Records the last position given, within `tx`.
    pub fn record(&self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        if self.given > 0 {
            tx.execute(
                "UPDATE message_totals SET feed_head = ?1 WHERE id = 1",
                [self.next - 1],
            )
            .map_err(from_sqlite)?;
        }
        Ok(())
    }
}
