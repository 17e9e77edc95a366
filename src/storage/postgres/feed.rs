//! The feed on PostgreSQL: messages by position (`seq`), read in one snapshot with the newest
//! and oldest positions.
//!
//! Why no position can appear below one already shown: every writer, on any replica, takes the
//! `message_totals` row lock before it gives positions and keeps it until its commit, so
//! transactions give positions in the order they commit, and one that commits later gives
//! higher ones. A snapshot that sees `feed_head` at `h` sees the transaction that set it, and
//! therefore every earlier one: every position up to `h` that will ever exist is visible to it.
//! Positions are read only up to that `h` (a plain `seq > after` would be safe too, for the
//! same reason, but the bound keeps every read's work finite).

use postgres::Client;
use postgres::types::Type;

use super::clause::Clause;
use super::connection::{self, get, query_one};
use super::text::decode;
use crate::domain::{FeedEntry, FeedPage, FeedQuery, Message, MessageFilter};
use crate::storage::{FEED_SCAN_WINDOW, StorageError, TimeRange, feed_page};

/// The newest position given.
pub fn head(client: &mut Client) -> Result<u64, StorageError> {
    let row = query_one(
        client,
        "SELECT feed_head FROM message_totals WHERE id = 1",
        &[],
    )?;
    Ok(get::<i64>(&row, 0)?.unsigned_abs())
}

/// A read of the feed; see [`crate::storage::MessageReader::feed`]. Runs inside a read
/// transaction.
pub fn read(client: &mut Client, query: &FeedQuery) -> Result<FeedPage, StorageError> {
    let ends = query_one(
        client,
        "SELECT feed_head, (SELECT min(seq) FROM messages) FROM message_totals WHERE id = 1",
        &[],
    )?;
    let head = get::<i64>(&ends, 0)?.unsigned_abs();
    let oldest: Option<i64> = get(&ends, 1)?;
    let window_end = head.min(query.after.saturating_add(FEED_SCAN_WINDOW));
    let filter = MessageFilter {
        from: query.from.clone(),
        to: query.to.clone(),
        ..MessageFilter::default()
    };
    let mut clause = Clause::new(&filter, TimeRange::of(&filter), None).stored_between(
        i64::try_from(query.after).unwrap_or(i64::MAX),
        i64::try_from(window_end).unwrap_or(i64::MAX),
    );
    let limit = clause.param(i64::from(query.limit), Type::INT8);
    let sql = format!(
        "SELECT seq, message_id, from_msisdn, to_msisdn, ts, text FROM messages{} \
         ORDER BY seq LIMIT {limit}",
        clause.where_sql()
    );
    let entries = connection::query(client, &sql, &clause.params())?
        .iter()
        .map(|row| {
            Ok(FeedEntry {
                seq: get::<i64>(row, 0)?.unsigned_abs(),
                message: Message {
                    message_id: decode(get(row, 1)?),
                    from: get(row, 2)?,
                    to: get(row, 3)?,
                    ts: get(row, 4)?,
                    text: get::<Option<String>>(row, 5)?.map(decode),
                },
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(feed_page(
        query,
        entries,
        window_end,
        head,
        oldest.map(i64::unsigned_abs),
    ))
}

#[cfg(test)]
mod tests {
    //! A model of the mechanism: writers that give positions and commit, a consumer that reads
    //! after the last position it saw, and every order the steps can run in. Positions given
    //! before the commit, without a lock held to it, lose messages; given under a lock held
    //! until the commit (what the writers do), they never do.

    use std::collections::BTreeSet;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Scheme {
        /// Each writer takes the next number from a counter, then commits whenever it gets to.
        BeforeCommit,
        /// Each writer takes the lock, then the next number, and keeps the lock until it commits.
        UnderLockUntilCommit,
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Stage {
        Idle,
        Holding(u64),
        Committed,
    }

    #[derive(Clone)]
    struct World {
        next: u64,
        lock_held: bool,
        writers: Vec<Stage>,
        committed: BTreeSet<u64>,
        /// The consumer's position, and what it has seen.
        after: u64,
        seen: BTreeSet<u64>,
    }

    impl World {
        fn read(&mut self) {
            let new: Vec<u64> = self.committed.range(self.after + 1..).copied().collect();
            self.seen.extend(&new);
            if let Some(last) = new.last() {
                self.after = *last;
            }
        }

        /// Runs writer `w`'s next step, if it can run now.
        fn step(&mut self, w: usize, scheme: Scheme) -> bool {
            match self.writers[w] {
                Stage::Idle => {
                    if scheme == Scheme::UnderLockUntilCommit {
                        if self.lock_held {
                            return false;
                        }
                        self.lock_held = true;
                    }
                    self.next += 1;
                    self.writers[w] = Stage::Holding(self.next);
                }
                Stage::Holding(position) => {
                    self.committed.insert(position);
                    self.lock_held = false;
                    self.writers[w] = Stage::Committed;
                }
                Stage::Committed => return false,
            }
            true
        }
    }

    /// Whether some order of the steps, with the consumer reading after each, ends with a
    /// committed position the consumer never saw.
    fn loses_a_message(world: World, scheme: Scheme) -> bool {
        let mut moved = false;
        for w in 0..world.writers.len() {
            let mut next = world.clone();
            if next.step(w, scheme) {
                moved = true;
                next.read();
                if loses_a_message(next, scheme) {
                    return true;
                }
            }
        }
        if moved {
            return false;
        }
        let mut last = world;
        last.read();
        last.seen != last.committed
    }

    fn start(writers: usize) -> World {
        World {
            next: 0,
            lock_held: false,
            writers: vec![Stage::Idle; writers],
            committed: BTreeSet::new(),
            after: 0,
            seen: BTreeSet::new(),
        }
    }

    #[test]
    fn positions_given_before_the_commit_lose_messages() {
        assert!(loses_a_message(start(2), Scheme::BeforeCommit));
    }

    #[test]
    fn positions_given_under_a_lock_held_until_the_commit_lose_none() {
        for writers in 1..=4 {
            assert!(!loses_a_message(
                start(writers),
                Scheme::UnderLockUntilCommit
            ));
        }
    }
}
