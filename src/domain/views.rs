//! What reads return: pages of stored messages and the aggregate statistics.

use serde::Serialize;

use super::cursor::Position;

/// A stored message as clients see it; `ts` is exactly the text the sender sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub ts: String,
    pub text: Option<String>,
}

impl StoredMessage {
    /// Appends the message as one NDJSON line: the contract's field names, then `\n`.
    pub fn write_ndjson(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, self).expect("a message always serializes");
        out.push(b'\n');
    }
}

/// One page of messages and the number of all rows matching the filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagePage {
    pub data: Vec<StoredMessage>,
    pub total: u64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Position>,
}

/// A run of messages in listing order, and where the next run starts (`None` at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSlice {
    pub messages: Vec<StoredMessage>,
    pub next: Option<Position>,
}

/// Messages stored for one sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SenderCount {
    pub from: String,
    pub count: u64,
}

/// Aggregates over all stored messages, as `GET /stats` returns them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total_messages: u64,
    pub senders_count: u64,
    /// The ten senders with the most messages, by count descending, then `from` ascending.
    pub messages_per_sender: Vec<SenderCount>,
    /// The earliest `ts` by instant, as sent; `None` when there are no messages.
    pub first_message_ts: Option<String>,
    /// The latest `ts` by instant, as sent; `None` when there are no messages.
    pub last_message_ts: Option<String>,
}
