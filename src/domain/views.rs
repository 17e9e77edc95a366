//! What reads return: pages of stored messages and the aggregate statistics.

use serde::Serialize;
use utoipa::ToSchema;

use super::position::Position;

/// A message: the JSON object `POST /webhook` takes and reads return, named `Message` in code,
/// in the OpenAPI document and in the README. Reads return `ts` exactly as it was sent, and
/// `text` always (`null` when the sender sent none). An inbound body becomes a
/// [`NewMessage`](super::NewMessage) once validated.
///
/// The constraints below are the validation rules: a stored message has passed them all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"message_id": "m1", "from": "+919876543210",
    "to": "+14155550100", "ts": "2025-01-15T10:00:00Z", "text": "Hello"}))]
pub struct Message {
    /// The sender's unique id for the message; a second delivery of it stores nothing.
    #[schema(min_length = 1)]
    pub message_id: String,
    /// The sender's number, E.164: `+` then 1 to 15 digits.
    #[schema(pattern = r"^\+[0-9]{1,15}$")]
    pub from: String,
    /// The recipient's number, E.164.
    #[schema(pattern = r"^\+[0-9]{1,15}$")]
    pub to: String,
    /// RFC 3339 in UTC with a `Z`, e.g. `2025-01-15T10:00:00Z` or `...:00.250Z`.
    #[schema(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$")]
    pub ts: String,
    /// Optional; at most 4096 characters (Unicode code points).
    #[schema(max_length = 4096)]
    pub text: Option<String>,
}

impl Message {
    /// Appends the message as one NDJSON line: the contract's field names, then `\n`.
    pub fn write_ndjson(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, self).expect("a message always serializes");
        out.push(b'\n');
    }
}

/// One page of messages and the number of all rows matching the filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagePage {
    pub data: Vec<Message>,
    pub total: u64,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Position>,
}

/// A run of messages in listing order, and where the next run starts (`None` at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSlice {
    pub messages: Vec<Message>,
    pub next: Option<Position>,
}

impl MessageSlice {
    /// The first `limit` of `rows` (messages in listing order, each with the instant its `ts`
    /// denotes), read one past the limit to tell whether more follow: then the slice says
    /// where the next one starts.
    pub fn of(mut rows: Vec<(Message, i64)>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = rows
            .last()
            .filter(|_| more)
            .map(|(message, ts_us)| Position {
                ts_us: *ts_us,
                message_id: message.message_id.clone(),
            });
        Self {
            messages: rows.into_iter().map(|(message, _)| message).collect(),
            next,
        }
    }
}

/// Messages stored for one sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SenderCount {
    pub from: String,
    pub count: u64,
}

/// Aggregates over all stored messages, as `GET /stats` returns them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Stats {
    pub total_messages: u64,
    pub senders_count: u64,
    /// The ten senders with the most messages, by count descending, then `from` ascending.
    pub messages_per_sender: Vec<SenderCount>,
    /// The earliest `ts` by instant, as sent; `null` when there are no messages.
    #[schema(required = true)]
    pub first_message_ts: Option<String>,
    /// The latest `ts` by instant, as sent; `null` when there are no messages.
    #[schema(required = true)]
    pub last_message_ts: Option<String>,
}
