//! `ReaderActor`: a pool of threads, each with its own read-only connection, answering
//! `/messages` and `/stats` without ever waiting on the writer.

use actix::{Actor, Handler, Message, SyncContext};

use crate::domain::{MessageFilter, MessagePage, MessageQuery, MessageSlice, Position, Stats};
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
