//! The instants a read covers, as every store filters and counts them: `since` and `until` as
//! microseconds, not the text they were written as, so a read can be narrowed to start at an
//! hour without inventing a timestamp for it, and two spellings of one instant mean the same.

use crate::domain::MessageFilter;

/// The instants a read covers, `[from_us, until_us)` in microseconds since the epoch; an end
/// is open when `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// The first instant covered (`since`).
    pub from_us: Option<i64>,
    /// The first instant no longer covered (`until`).
    pub until_us: Option<i64>,
}

impl TimeRange {
    /// The instants `filter`'s `since` and `until` denote, however they were written.
    pub fn of(filter: &MessageFilter) -> Self {
        Self {
            from_us: filter.since.as_ref().map(|t| t.micros()),
            until_us: filter.until.as_ref().map(|t| t.micros()),
        }
    }

    /// True when either end is bounded.
    pub fn is_bounded(self) -> bool {
        self.from_us.is_some() || self.until_us.is_some()
    }

    /// The same range, starting at `from_us` instead.
    pub fn starting_at(self, from_us: i64) -> Self {
        Self {
            from_us: Some(from_us),
            ..self
        }
    }
}
