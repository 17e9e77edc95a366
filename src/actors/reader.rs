//! `ReaderActor`: a pool of threads, each with its own read-only connection, answering
//! `/messages`, `/stats` and the feed without ever waiting on the writer.

use actix::{Actor, Handler, Message, SyncContext};

use crate::domain::{
    FeedPage, FeedQuery, MessageFilter, MessagePage, MessageQuery, MessageSlice, Position, Stats,
};
use crate::storage::{MessageReader, StorageError};

/// One page of `/messages`.
#[derive(Message)]
#[rtype(result = "Result<MessagePage, StorageError>")]
pub struct ListMessages(pub MessageQuery);

/// The next slice of an export.
#[derive(Message)]
#[rtype(result = "Result<MessageSlice, StorageError>")]
pub struct ScanMessages {
    pub filter: MessageFilter,
    pub after: Option<Position>,
    pub limit: usize,
}

/// The `/stats` aggregates.
#[derive(Message)]
#[rtype(result = "Result<Stats, StorageError>")]
pub struct GetStats;

/// A read of the feed.
#[derive(Message)]
#[rtype(result = "Result<FeedPage, StorageError>")]
pub struct ReadFeed(pub FeedQuery);

/// The newest feed position.
#[derive(Message)]
#[rtype(result = "Result<u64, StorageError>")]
pub struct GetFeedHead;

pub struct ReaderActor {
    reader: Box<dyn MessageReader>,
}

impl ReaderActor {
    pub fn new(reader: Box<dyn MessageReader>) -> Self {
        Self { reader }
    }
}

impl Actor for ReaderActor {
    type Context = SyncContext<Self>;
}

impl Handler<ListMessages> for ReaderActor {
    type Result = Result<MessagePage, StorageError>;

    fn handle(&mut self, msg: ListMessages, _: &mut Self::Context) -> Self::Result {
        self.reader.list(&msg.0)
    }
}

impl Handler<ScanMessages> for ReaderActor {
    type Result = Result<MessageSlice, StorageError>;

    fn handle(&mut self, msg: ScanMessages, _: &mut Self::Context) -> Self::Result {
        self.reader.scan(&msg.filter, msg.after.as_ref(), msg.limit)
    }
}

impl Handler<GetStats> for ReaderActor {
    type Result = Result<Stats, StorageError>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        self.reader.stats()
    }
}

impl Handler<ReadFeed> for ReaderActor {
    type Result = Result<FeedPage, StorageError>;

    fn handle(&mut self, msg: ReadFeed, _: &mut Self::Context) -> Self::Result {
        self.reader.feed(&msg.0)
    }
}

impl Handler<GetFeedHead> for ReaderActor {
    type Result = Result<u64, StorageError>;

    fn handle(&mut self, _: GetFeedHead, _: &mut Self::Context) -> Self::Result {
        self.reader.feed_head()
    }
}
