//! The service's vocabulary, free of HTTP and SQL: what a message is, what a query asks for,
//! and how bad input is described.

pub mod feed;
pub mod message;
pub mod msisdn;
pub mod position;
pub mod query;
pub mod search;
pub mod timestamp;
pub mod validation;
pub mod views;

pub use feed::{FeedEntry, FeedPage, FeedQuery};
pub use message::NewMessage;
pub use position::{InvalidCursor, Position};
pub use query::{MessageFilter, MessageQuery};
pub use search::TextSearch;
pub use timestamp::Timestamp;
pub use validation::FieldError;
pub use views::{Message, MessagePage, MessageSlice, SenderCount, Stats};
