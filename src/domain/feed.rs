//! The change feed: every stored message at its position, in the order messages were committed,
//! so a consumer that always asks after the last position it was given sees each message once
//! and never skips one, whatever order the senders' `ts` come in.
//!
//! A store hands out positions in commit order and never gives one twice, and only ever shows
//! positions below which nothing can still appear; see each store's writer.
//!
//! Parameters of `GET /messages/feed`: `after` (a position, default 0: from the beginning),
//! `limit` (1..=1000, default 100), `wait` (0..=60 seconds, default 0: how long to hold the
//! request when nothing is new), and `from` / `to` as on `/messages`. Unknown parameters are
//! ignored; when one is repeated the last value wins.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::query::{bounded_int, msisdn_param};
use super::validation::FieldError;
use super::views::Message;

pub const DEFAULT_FEED_LIMIT: u32 = 100;
pub const MAX_FEED_LIMIT: u32 = 1000;
pub const MAX_FEED_WAIT_SECS: u64 = 60;

/// What a consumer asks of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedQuery {
    /// Messages at positions after this one.
    pub after: u64,
    pub limit: u32,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl FeedQuery {
    /// The feed from the beginning, at most `limit` messages at a time.
    pub fn after(after: u64, limit: u32) -> Self {
        Self {
            after,
            limit,
            from: None,
            to: None,
        }
    }

    /// Builds the query, and how long to wait when nothing is new, from decoded
    /// `(name, value)` pairs, listing every problem.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(Self, Duration), Vec<FieldError>> {
        let (mut after, mut limit, mut wait, mut from, mut to) = (None, None, None, None, None);
        for (name, value) in pairs {
            let slot = match name {
                "after" => &mut after,
                "limit" => &mut limit,
                "wait" => &mut wait,
                "from" => &mut from,
                "to" => &mut to,
                _ => continue,
            };
            *slot = Some(value);
        }
        let mut errors = Vec::new();
        let after = after.map_or(Some(0), |v| bounded_int(v, "after", 0, None, &mut errors));
        let limit = limit.map_or(Some(DEFAULT_FEED_LIMIT.into()), |v| {
            bounded_int(v, "limit", 1, Some(MAX_FEED_LIMIT.into()), &mut errors)
        });
        let wait = wait.map_or(Some(0), |v| {
            bounded_int(v, "wait", 0, Some(MAX_FEED_WAIT_SECS as i64), &mut errors)
        });
        let from = from.and_then(|v| msisdn_param(v, "from", &mut errors));
        let to = to.and_then(|v| msisdn_param(v, "to", &mut errors));
        match (after, limit, wait) {
            (Some(after), Some(limit), Some(wait)) if errors.is_empty() => Ok((
                Self {
                    after: after.unsigned_abs(),
                    limit: u32::try_from(limit).expect("checked against MAX_FEED_LIMIT"),
                    from,
                    to,
                },
                Duration::from_secs(wait.unsigned_abs()),
            )),
            _ => Err(errors),
        }
    }
}

/// A message at its feed position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeedEntry {
    /// The message's position: ask `after` it for the messages committed later.
    pub seq: u64,
    #[serde(flatten)]
    pub message: Message,
}

/// What a read of the feed found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedPage {
    /// The messages after the query's position, in position order.
    pub entries: Vec<FeedEntry>,
    /// The position to ask after next time: the last entry's, or further when the read looked
    /// further and found nothing more that matched; the query's own when nothing is new.
    pub next_after: u64,
    /// The newest position given to a message.
    pub head: u64,
    /// The oldest position still stored (older ones were deleted by retention), if any.
    pub oldest: Option<u64>,
}

impl FeedPage {
    /// True when messages after `after` were deleted before the consumer read them: the page
    /// starts at the oldest kept.
    pub fn skipped_deleted(&self, after: u64) -> bool {
        self.oldest
            .is_some_and(|oldest| after.saturating_add(1) < oldest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_beginning_a_hundred_at_a_time_without_waiting() {
        let (query, wait) = FeedQuery::from_pairs([]).unwrap();
        assert_eq!(query, FeedQuery::after(0, 100));
        assert_eq!(wait, Duration::ZERO);
        let (query, wait) = FeedQuery::from_pairs([
            ("after", "7"),
            ("limit", "1000"),
            ("wait", "60"),
            ("from", " 1"),
        ])
        .unwrap();
        assert_eq!((query.after, query.limit), (7, 1000));
        assert_eq!(query.from.as_deref(), Some("+1"));
        assert_eq!(wait, Duration::from_secs(60));
    }

    #[test]
    fn lists_every_bad_parameter() {
        let errors = FeedQuery::from_pairs([
            ("after", "-1"),
            ("limit", "1001"),
            ("wait", "61"),
            ("to", "123"),
        ])
        .unwrap_err();
        let kinds: Vec<_> = errors.iter().map(|e| (e.loc.0[1], e.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("after", "greater_than_equal"),
                ("limit", "less_than_equal"),
                ("wait", "less_than_equal"),
                ("to", "string_pattern_mismatch"),
            ]
        );
    }
}
