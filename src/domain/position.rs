//! Where a page ends and the next begins: the sort key of a row. A `cursor` parameter stands
//! for one; sealing and opening cursors needs a key, so it lives with the keys
//! (`signing::CursorCodec`), behind [`OpenCursor`](super::query::OpenCursor).

/// The sort key of a row: where a page ends and the next begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub ts_us: i64,
    pub message_id: String,
}

/// Why a cursor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cursor is malformed, was altered, or belongs to other filters")]
pub struct InvalidCursor;
