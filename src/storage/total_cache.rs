//! Remembered search totals, shared by every reader of a store.
//!
//! Counting a search's matches can mean checking every row of its filter, so a search's count
//! is remembered with the newest row it covered and the deletion counter it was made under.
//! Asked again, only the rows stored since need counting, as long as no rows were deleted
//! meanwhile (a deletion could have removed counted rows). "The newest row" is a position the
//! store gives rows in the order they are stored (SQLite's rowid, PostgreSQL's `seq`, which is
//! handed out in commit order), so "stored since" misses none.
//!
//! A count is remembered by what the search means ([`SearchKey`]), not by how it was written:
//! `q=ORDER` and `q=order`, or `since=…:00Z` and `since=…:00.000Z`, share one entry. At most
//! [`REMEMBERED_TOTALS`] searches are remembered; a new one beyond that makes the cache forget
//! the search used least recently, so a burst of one-off searches cannot push out the searches
//! that are asked again and again.
//!
//! A count that must look at many rows is made in slices of positions, remembered after each
//! ([`TotalCache::count_in_slices`]): one that runs past a read's deadline is not lost, and the
//! next request continues it. Finding the least recent one looks at every entry, which at
//! a few hundred entries costs far less than the count it saves.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{StorageError, TimeRange};
use crate::domain::MessageFilter;

/// Positions a count looks at between two remembered steps ([`TotalCache::count_in_slices`]):
/// a fraction of a second of walking rows, so a count of any size makes progress within a
/// read's deadline.
pub const COUNT_SLICE_POSITIONS: i64 = 250_000;

/// Searches whose counts are remembered at most.
pub const REMEMBERED_TOTALS: usize = 256;

/// What a search with `q` means: the folded needle and the other filters, the time bounds as
/// instants. Two searches with the same key match the same rows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SearchKey {
    needle: String,
    from: Option<String>,
    to: Option<String>,
    range: TimeRange,
}

impl SearchKey {
    /// The key of `filter` searching for `needle`, its `q` as [`crate::domain::TextSearch`]
    /// folds it.
    pub fn new(filter: &MessageFilter, needle: &str) -> Self {
        Self {
            needle: needle.to_owned(),
            from: filter.from.clone(),
            to: filter.to.clone(),
            range: TimeRange::of(filter),
        }
    }
}

/// A search's count, and what it covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RememberedTotal {
    /// The matching rows up to `through`.
    pub total: u64,
    /// The store's position of the newest row there was when the count was made.
    pub through: i64,
    /// `message_totals.deletions` when the count was made.
    pub deletions: i64,
}

/// Counts of searches, remembered with the newest row they covered and the deletion counter
/// they were made under, shared by every reader of a store; the least recently used is
/// forgotten first.
pub struct TotalCache {
    capacity: usize,
    state: Mutex<Entries>,
}

/// A remembered count, whether it covered every row there was (a count cut short by a deadline
/// is kept too, to be continued), and the tick of its last use.
struct Entry {
    total: RememberedTotal,
    complete: bool,
    last_used: u64,
}

/// The remembered counts.
#[derive(Default)]
struct Entries {
    by_search: HashMap<SearchKey, Entry>,
    /// Counts every use; a larger tick is a more recent use.
    clock: u64,
}

impl Entries {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

impl Default for TotalCache {
    fn default() -> Self {
        Self::with_capacity(REMEMBERED_TOTALS)
    }
}

impl TotalCache {
    /// A cache remembering at most `capacity` searches (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::default(),
        }
    }

    /// The count remembered for `key`, if any; this counts as a use of it.
    pub fn get(&self, key: &SearchKey) -> Option<RememberedTotal> {
        let mut state = self.state.lock().ok()?;
        let now = state.tick();
        let entry = state.by_search.get_mut(key)?;
        entry.last_used = now;
        Some(entry.total)
    }

    /// Whether `key`'s search was counted to the end (up to the newest row there was then) at
    /// no more than `most` matches: rows stored since may add more, but a count cut short
    /// tells nothing. This does not count as a use.
    pub fn counted_at_most(&self, key: &SearchKey, most: u64) -> bool {
        self.state.lock().is_ok_and(|state| {
            state
                .by_search
                .get(key)
                .is_some_and(|entry| entry.complete && entry.total.total <= most)
        })
    }

    /// Remembers `total` as a whole count for `key` (tests place counts this way).
    #[cfg(test)]
    pub fn put(&self, key: SearchKey, total: RememberedTotal) {
        self.remember(key, total, true);
    }

    /// Remembers `total` for `key`, saying whether it is a whole count, in place of what was
    /// remembered before; when the cache is full and `key` is new, the search used least
    /// recently is forgotten.
    fn remember(&self, key: SearchKey, total: RememberedTotal, complete: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = state.tick();
        if state.by_search.len() >= self.capacity && !state.by_search.contains_key(&key) {
            let oldest = state
                .by_search
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                state.by_search.remove(&oldest);
            }
        }
        let entry = Entry {
            total,
            complete,
            last_used: now,
        };
        state.by_search.insert(key, entry);
    }

    /// The matches of `key`'s search among the rows at positions up to `newest`, counted on from
    /// `start` (a remembered count, or nothing counted yet) one slice of
    /// [`COUNT_SLICE_POSITIONS`] positions at a time by `count_between(after, through)`. What
    /// is counted is remembered after every slice, so a count cut short (the read ran past its
    /// deadline) is continued by the next request instead of begun again.
    pub fn count_in_slices(
        &self,
        key: SearchKey,
        start: RememberedTotal,
        newest: i64,
        mut count_between: impl FnMut(i64, i64) -> Result<u64, StorageError>,
    ) -> Result<u64, StorageError> {
        let mut counted = start;
        loop {
            let complete = counted.through >= newest;
            self.remember(key.clone(), counted, complete);
            if complete {
                return Ok(counted.total);
            }
            let through = newest.min(counted.through.saturating_add(COUNT_SLICE_POSITIONS));
            counted.total += count_between(counted.through, through)?;
            counted.through = through;
        }
    }

    /// How many searches are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |state| state.by_search.len())
    }
}

#[cfg(test)]
mod tests {
    use super::{REMEMBERED_TOTALS, RememberedTotal, SearchKey, TotalCache};
    use crate::domain::{MessageFilter, TextSearch};

    /// The key of the search the query string's `pairs` describe.
    fn key(pairs: &[(&str, &str)]) -> SearchKey {
        let filter = MessageFilter::from_pairs(pairs.iter().copied()).unwrap();
        let needle = TextSearch::new(filter.q.as_deref().unwrap())
            .needle()
            .to_owned();
        SearchKey::new(&filter, &needle)
    }

    fn search(q: &str) -> SearchKey {
        key(&[("q", q)])
    }

    fn counted(total: u64) -> RememberedTotal {
        RememberedTotal {
            total,
            through: 7,
            deletions: 0,
        }
    }

    #[test]
    fn a_count_cut_short_is_continued_where_it_stopped() {
        let cache = TotalCache::default();
        let start = RememberedTotal {
            total: 0,
            through: 0,
            deletions: 3,
        };
        let newest = 3 * super::COUNT_SLICE_POSITIONS + 5;
        let mut slices = Vec::new();
        // Every slice holds 10 matches; the third one runs past the deadline.
        let cut = cache.count_in_slices(search("order"), start, newest, |after, through| {
            slices.push((after, through));
            if slices.len() == 3 {
                return Err(crate::storage::StorageError::new(
                    crate::storage::StorageErrorKind::TimedOut,
                    "deadline",
                ));
            }
            Ok(10)
        });
        assert!(cut.is_err());
        let remembered = cache.get(&search("order")).unwrap();
        assert_eq!(
            (remembered.total, remembered.through),
            (20, 2 * super::COUNT_SLICE_POSITIONS),
            "two slices are kept"
        );
        assert!(
            !cache.counted_at_most(&search("order"), 1_000),
            "a count cut short says nothing about how many match"
        );
        let mut resumed = Vec::new();
        let total = cache
            .count_in_slices(search("order"), remembered, newest, |after, through| {
                resumed.push((after, through));
                Ok(10)
            })
            .unwrap();
        assert_eq!(total, 40);
        assert_eq!(
            resumed,
            [
                (
                    2 * super::COUNT_SLICE_POSITIONS,
                    3 * super::COUNT_SLICE_POSITIONS
                ),
                (3 * super::COUNT_SLICE_POSITIONS, newest)
            ],
            "only what was not counted yet"
        );
        assert_eq!(cache.get(&search("order")).unwrap().through, newest);
        assert!(cache.counted_at_most(&search("order"), 40));
        assert!(!cache.counted_at_most(&search("order"), 39));
    }

    #[test]
    fn searches_that_mean_the_same_share_one_entry() {
        let cache = TotalCache::default();
        let written = [
            ("ORDER", "2025-01-15T02:00:00Z", "2025-01-16T00:00:00.5Z"),
            (
                "order",
                "2025-01-15T02:00:00.000Z",
                "2025-01-16T00:00:00.500000Z",
            ),
            (
                "OrDeR",
                "2025-01-15T02:00:00.0000001Z",
                "2025-01-16T00:00:00.50Z",
            ),
        ];
        for (i, (q, since, until)) in written.into_iter().enumerate() {
            let key = key(&[
                ("q", q),
                ("from", "+14155550100"),
                ("since", since),
                ("until", until),
            ]);
            if i > 0 {
                assert_eq!(cache.get(&key), Some(counted(3)), "{q} {since} {until}");
            }
            cache.put(key, counted(3));
        }
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn searches_that_mean_something_else_get_entries_of_their_own() {
        let cache = TotalCache::default();
        let base = [("q", "order"), ("since", "2025-01-15T02:00:00Z")];
        let others: [&[(&str, &str)]; 6] = [
            &[("q", "orders"), ("since", "2025-01-15T02:00:00Z")],
            &[("q", "order"), ("since", "2025-01-15T02:00:00.000001Z")],
            &[("q", "order")],
            &[
                ("q", "order"),
                ("since", "2025-01-15T02:00:00Z"),
                ("until", "2025-01-16T00:00:00Z"),
            ],
            &[
                ("q", "order"),
                ("since", "2025-01-15T02:00:00Z"),
                ("from", "+14155550100"),
            ],
            &[
                ("q", "order"),
                ("since", "2025-01-15T02:00:00Z"),
                ("to", "+14155550100"),
            ],
        ];
        cache.put(key(&base), counted(1));
        for pairs in others {
            assert_eq!(cache.get(&key(pairs)), None, "{pairs:?}");
            cache.put(key(pairs), counted(2));
        }
        assert_eq!(cache.len(), 1 + others.len());
        assert_eq!(cache.get(&key(&base)), Some(counted(1)));
    }

    #[test]
    fn the_search_used_least_recently_is_the_one_forgotten() {
        let cache = TotalCache::with_capacity(3);
        for (i, q) in ["alpha", "bravo", "charlie"].into_iter().enumerate() {
            cache.put(search(q), counted(i as u64));
        }
        // Asked again, `alpha` is now more recent than `bravo` and `charlie`.
        assert_eq!(cache.get(&search("alpha")), Some(counted(0)));
        cache.put(search("delta"), counted(3));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&search("bravo")), None, "least recently used");
        assert_eq!(cache.get(&search("alpha")), Some(counted(0)));
        assert_eq!(cache.get(&search("charlie")), Some(counted(2)));
        assert_eq!(cache.get(&search("delta")), Some(counted(3)));
    }

    #[test]
    fn updating_a_remembered_search_forgets_nothing() {
        let cache = TotalCache::with_capacity(2);
        cache.put(search("alpha"), counted(1));
        cache.put(search("bravo"), counted(2));
        cache.put(search("bravo"), counted(5));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&search("alpha")), Some(counted(1)));
        assert_eq!(cache.get(&search("bravo")), Some(counted(5)));
    }

    #[test]
    fn a_burst_of_one_off_searches_cannot_push_out_a_search_asked_often() {
        let cache = TotalCache::default();
        cache.put(search("order"), counted(42));
        // Ten times as many one-off searches as the cache holds, with `order` asked again
        // after every hundred of them, as a popular search would be.
        for i in 0..REMEMBERED_TOTALS * 10 {
            cache.put(search(&format!("one-off {i}")), counted(1));
            if i % 100 == 99 {
                assert_eq!(cache.get(&search("order")), Some(counted(42)), "after {i}");
            }
        }
        assert_eq!(cache.len(), REMEMBERED_TOTALS);
        assert_eq!(cache.get(&search("order")), Some(counted(42)));
    }
}
