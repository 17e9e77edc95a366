//! Remembered search totals, shared by every reader of a store.
//!
//! Counting a search's matches can mean checking every row of its filter, so a search's count
//! is remembered with the newest rowid it covered and the deletion counter it was made under.
//! Asked again, only the rows stored since need counting, as long as no rows were deleted
//! meanwhile (a deletion could have removed counted rows, and rowids can be given out again).

use std::collections::HashMap;
use std::sync::Mutex;

/// Counts of searches, remembered with the newest rowid they covered and the deletion counter
/// they were made under, shared by every reader of a store.
#[derive(Default)]
pub struct TotalCache {
    entries: Mutex<HashMap<String, RememberedTotal>>,
}

/// A search's count, and what it covered.
#[derive(Clone, Copy)]
pub struct RememberedTotal {
    /// The matching rows up to `through_rowid`.
    pub total: u64,
    /// The newest rowid there was when the count was made.
    pub through_rowid: i64,
    /// `message_totals.deletions` when the count was made.
    pub deletions: i64,
}

/// Searches whose counts are remembered at most; beyond that the memory is cleared.
const REMEMBERED_TOTALS: usize = 256;

impl TotalCache {
    /// The count remembered for `key`, if any.
    pub fn get(&self, key: &str) -> Option<RememberedTotal> {
        self.entries.lock().ok()?.get(key).copied()
    }

    /// Remembers `total` for `key`, in place of what was remembered before.
    pub fn put(&self, key: String, total: RememberedTotal) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= REMEMBERED_TOTALS {
                entries.clear();
            }
            entries.insert(key, total);
        }
    }
}
