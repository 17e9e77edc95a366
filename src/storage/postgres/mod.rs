//! The PostgreSQL store: any number of replicas on one database, with the same contract and
//! guarantees as the embedded SQLite store.
//!
//! - The schema is applied at startup as numbered migrations ([`migrations`]), safely when
//!   several replicas start at once.
//! - Each replica's single writer commits a batch in one transaction and one statement; writers
//!   of all replicas take turns on one row, which keeps the aggregates exact, hands out commit
//!   positions in order and rules out deadlocks ([`writer`]).
//! - Readers read one snapshot per request and never wait for writers ([`reader`]); `q` means
//!   exactly what it means on SQLite: the service folds the text itself and searches the folded
//!   copy through a trigram index ([`text`], [`listing`]).
//! - Nothing is kept on the server between transactions, so it works through a
//!   transaction-pooling proxy ([`connection`]); a broken connection is made again on next use.

mod clause;
mod connection;
mod feed;
mod listing;
pub mod location;
mod migrations;
mod reader;
mod text;
mod totals;
mod worker;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use postgres_native_tls::MakeTlsConnector;

use super::total_cache::TotalCache;
use super::{
    MessageReader, MessageWriter, Storage, StorageError, StorageErrorKind, StoreSettings, Tuning,
};
use connection::Connection;
use location::PostgresUrl;
use reader::PostgresReader;
use writer::PostgresWriter;

const TLS_UNUSABLE: &str = "database TLS settings are unusable";

/// A PostgreSQL database the service runs on.
pub struct PostgresStorage {
    url: PostgresUrl,
    tls: MakeTlsConnector,
    write_timeout: Duration,
    read_timeout: Duration,
    tuning: Tuning,
    totals: Arc<TotalCache>,
}

impl PostgresStorage {
    /// Connects, brings the schema up to date, and keeps what the connections need. Fails when
    /// the server cannot be reached, refuses the credentials, has no such database, or holds a
    /// schema newer than this build knows.
    pub fn open(url: &PostgresUrl, settings: &StoreSettings) -> Result<Self, StorageError> {
        let tls = url
            .connector(settings.ca_file.as_deref())
            .map_err(|e| StorageError::new(StorageErrorKind::Other, e).because(TLS_UNUSABLE))?;
        // On a thread of its own (the connection is closed there too): the driver cannot run
        // on one that drives async work, as the service's startup does.
        std::thread::scope(|scope| {
            scope
                .spawn(|| migrations::apply(&mut Connection::new(url.clone(), tls.clone())))
                .join()
                .expect("applying migrations does not panic")
        })?;
        Ok(Self {
            url: url.clone(),
            tls,
            write_timeout: settings.write_timeout,
            read_timeout: settings.read_timeout,
            tuning: settings.tuning,
            totals: Arc::default(),
        })
    }

    fn connection(&self) -> Connection {
        Connection::new(self.url.clone(), self.tls.clone())
    }
}

impl Storage for PostgresStorage {
    fn writer(&self) -> Box<dyn MessageWriter> {
        let (url, tls) = (self.url.clone(), self.tls.clone());
        Box::new(PostgresWriter::new(
            move || Connection::new(url.clone(), tls.clone()),
            self.write_timeout,
        ))
    }

    fn reader(&self) -> Box<dyn MessageReader> {
        Box::new(PostgresReader::new(
            self.connection(),
            self.read_timeout,
            self.tuning,
            Arc::clone(&self.totals),
        ))
    }
}
