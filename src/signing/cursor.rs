//! Keyset pagination cursors: opaque, tamper-evident, and bound to the filters they were made for.
//!
//! A cursor names the sort key `(ts instant, message_id)` of the last row of a page; the next
//! page is the rows after it, found by index in constant time at any depth. The token is
//! `base64url(version | ts_us | message_id | HMAC)`, where the HMAC also covers the page's
//! filters: a cursor that was altered, or is used with other filters, is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;

use super::KeyRing;
use crate::domain::query::OpenCursor;
use crate::domain::{InvalidCursor, MessageFilter, Position, Timestamp};

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = 1 + 8;

/// Seals positions into cursors and opens them again.
#[derive(Clone)]
pub struct CursorCodec {
    keys: KeyRing,
}

impl CursorCodec {
    /// `secret` keys the HMAC; cursors stay valid across restarts while it is unchanged.
    pub fn new(secret: &[u8]) -> Self {
        let derived = KeyRing::new(secret, None).sign(&[b"webhook-processor cursor key v1"]);
        Self {
            keys: KeyRing::new(&derived, None),
        }
    }

    /// A cursor for the rows after `position` in the listing `filter` selects.
    pub fn seal(&self, position: &Position, filter: &MessageFilter) -> String {
        let mut token = Vec::with_capacity(HEADER_LEN + position.message_id.len() + TAG_LEN);
        token.push(VERSION);
        token.extend_from_slice(&position.ts_us.to_be_bytes());
        token.extend_from_slice(position.message_id.as_bytes());
        let tag = self.keys.sign(&[&token, &fingerprint(filter)]);
        token.extend_from_slice(&tag);
        BASE64URL.encode(token)
    }

    /// The position `cursor` was sealed from, if it was sealed with this key for `filter`.
    pub fn open(&self, cursor: &str, filter: &MessageFilter) -> Result<Position, InvalidCursor> {
        let token = BASE64URL.decode(cursor).map_err(|_| InvalidCursor)?;
        if token.len() < HEADER_LEN + TAG_LEN || token[0] != VERSION {
            return Err(InvalidCursor);
        }
        let (signed, tag) = token.split_at(token.len() - TAG_LEN);
        self.keys
            .verify(&[signed, &fingerprint(filter)], tag)
            .ok_or(InvalidCursor)?;
        let ts_us = i64::from_be_bytes(signed[1..HEADER_LEN].try_into().expect("8 bytes"));
        let message_id =
            String::from_utf8(signed[HEADER_LEN..].to_vec()).map_err(|_| InvalidCursor)?;
        Ok(Position { ts_us, message_id })
    }
}

impl OpenCursor for CursorCodec {
    fn open(&self, cursor: &str, filter: &MessageFilter) -> Result<Position, InvalidCursor> {
        CursorCodec::open(self, cursor, filter)
    }
}

/// An unambiguous encoding of the filters, so a cursor only continues the listing it came from.
fn fingerprint(filter: &MessageFilter) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |value: Option<&[u8]>| match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    };
    field(filter.from.as_deref().map(str::as_bytes));
    field(filter.to.as_deref().map(str::as_bytes));
    let micros = |t: &Option<Timestamp>| t.as_ref().map(|t| t.micros().to_be_bytes());
    field(micros(&filter.since).as_ref().map(|b| &b[..]));
    field(micros(&filter.until).as_ref().map(|b| &b[..]));
    field(filter.q.as_deref().map(str::as_bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        Position {
            ts_us: 1_736_935_200_250_000,
            message_id: "m-ü-1".to_owned(),
        }
    }

    #[test]
    fn a_sealed_cursor_opens_to_the_same_position_with_the_same_filters() {
        let codec = CursorCodec::new(b"secret");
        let filter = MessageFilter {
            from: Some("+1".into()),
            since: Some(Timestamp::parse("2025-01-01T00:00:00Z").unwrap()),
            ..MessageFilter::default()
        };
        let cursor = codec.seal(&position(), &filter);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(codec.open(&cursor, &filter), Ok(position()));
    }

    #[test]
    fn a_cursor_is_refused_with_other_filters_another_key_or_any_change() {
        let codec = CursorCodec::new(b"secret");
        let filter = MessageFilter::default();
        let cursor = codec.seal(&position(), &filter);
        let other = MessageFilter {
            q: Some("x".into()),
            ..MessageFilter::default()
        };
        assert_eq!(codec.open(&cursor, &other), Err(InvalidCursor));
        assert_eq!(
            CursorCodec::new(b"rotated").open(&cursor, &filter),
            Err(InvalidCursor)
        );
        let mut bytes = BASE64URL.decode(&cursor).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert_eq!(
                codec.open(&BASE64URL.encode(&bytes), &filter),
                Err(InvalidCursor),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for garbage in ["", "abc", "!!!!", &cursor[..cursor.len() - 4]] {
            assert_eq!(
                codec.open(garbage, &filter),
                Err(InvalidCursor),
                "{garbage:?}"
            );
        }
    }
}
