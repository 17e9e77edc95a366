//! What the store's unit tests start from: a fresh database in a temporary folder, readers
//! with the plan thresholds and remembered totals a test chooses, and a sample of messages with
//! the answers a full scan of them gives, to hold every plan to.

use std::sync::Arc;

use super::{SqliteReader, SqliteStorage};
use crate::domain::timestamp::format_micros;
use crate::domain::{MessageFilter, MessageQuery, NewMessage, TextSearch, Timestamp};
use crate::storage::Tuning;
use crate::storage::total_cache::TotalCache;
use crate::storage::{MessageReader, MessageWriter};

/// A fresh store in a folder of its own (in a subfolder, which the store must create); the
/// folder and the database go when the returned directory is dropped.
pub fn temp_db() -> (tempfile::TempDir, SqliteStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::initialize(dir.path().join("nested/app.db")).unwrap();
    (dir, storage)
}

impl SqliteStorage {
    /// A reader choosing plans by `tuning` and remembering search totals in `totals` (a fresh
    /// `Arc::default()` to count afresh, the store's own to share them with its other readers).
    pub fn reader_with(&self, tuning: Tuning, totals: Arc<TotalCache>) -> SqliteReader {
        SqliteReader::new(
            self.path.clone(),
            self.home,
            tuning,
            totals,
            self.read_timeout,
        )
    }
}

/// The texts the sample messages take in turn: common, rare, non-ASCII, `%` and `_`, none.
pub const TEXTS: [Option<&str>; 9] = [
    Some("order shipped today"),
    Some("ORDER #5 is 50% off"),
    Some("meeting at the Zebracorn café"),
    Some("Grüße aus KÖLN"),
    Some("köln again, order placed"),
    Some("zz top"),
    None,
    Some("file_name_v2 attached"),
    Some("plain words only"),
];

/// 600 messages over about 30 hours: 5 senders, 3 recipients, texts from `TEXTS`.
pub fn messages() -> Vec<NewMessage> {
    (0..600_i64)
        .map(|i| {
            // Spread over hours, out of order, with ties on the same instant.
            let micros = 1_736_900_000_000_000 + (i * 7919 % 600) * 180_000_000 + (i % 3) * 250_000;
            let body = serde_json::json!({
                "message_id": format!("m{i:04}"),
                "from": format!("+1{}", i % 5),
                "to": format!("+4{}", i % 3),
                "ts": format_micros(micros),
                "text": TEXTS[(i % 9) as usize],
            });
            NewMessage::from_json(body.to_string().as_bytes()).unwrap()
        })
        .collect()
}

/// Searches for a common, a rare and a non-ASCII word find exactly what a scan of `all`
/// finds, in order, with the right total.
pub fn assert_searches_match(reader: &mut SqliteReader, all: &[NewMessage]) {
    for q in ["order", "zebracorn", "köln"] {
        let filter = MessageFilter {
            q: Some(q.to_owned()),
            ..MessageFilter::default()
        };
        let query = MessageQuery {
            filter: filter.clone(),
            limit: 100,
            offset: 0,
            after: None,
        };
        let page = reader.list(&query).unwrap();
        let want = expected(all, &filter);
        assert_eq!(page.total, want.len() as u64, "{q}");
        let got: Vec<String> = page.data.iter().map(|m| m.message_id.clone()).collect();
        assert_eq!(got, want[..want.len().min(100)], "{q}");
    }
}

/// The ids of the messages of `all` that `filter` matches, in listing order: a full scan.
pub fn expected(all: &[NewMessage], filter: &MessageFilter) -> Vec<String> {
    let search = filter.q.as_deref().map(TextSearch::new);
    let mut matching: Vec<&NewMessage> = all
        .iter()
        .filter(|m| filter.from.as_ref().is_none_or(|f| *f == m.from))
        .filter(|m| filter.to.as_ref().is_none_or(|t| *t == m.to))
        .filter(|m| {
            filter
                .since
                .as_ref()
                .is_none_or(|s| m.ts.micros() >= s.micros())
        })
        .filter(|m| {
            filter
                .until
                .as_ref()
                .is_none_or(|u| m.ts.micros() < u.micros())
        })
        .filter(|m| {
            search
                .as_ref()
                .is_none_or(|s| m.text.as_deref().is_some_and(|t| s.matches(t)))
        })
        .collect();
    matching.sort_by(|a, b| (a.ts.micros(), &a.message_id).cmp(&(b.ts.micros(), &b.message_id)));
    matching.into_iter().map(|m| m.message_id.clone()).collect()
}

/// Runs retention as the service does, `batch` rows at a time, deleting every row of `all`
/// stored before `cutoff`; returns the messages of `all` that are kept.
pub fn expire(
    writer: &mut dyn MessageWriter,
    all: Vec<NewMessage>,
    cutoff: &str,
    batch: usize,
) -> Vec<NewMessage> {
    let cutoff = Timestamp::parse(cutoff).unwrap().micros();
    while writer.delete_before(cutoff, batch).unwrap() > 0 {}
    all.into_iter()
        .filter(|m| m.ts.micros() >= cutoff)
        .collect()
}
