//! One connection to the server, made when first needed and made again after it broke, and how
//! the driver's errors become the store-neutral kinds.
//!
//! Every piece of work runs in one explicit transaction ([`Connection::transaction`]) and sends
//! its statements unnamed (`query_typed`, `batch_execute`): nothing lives on the server between
//! transactions, so the service works through a transaction-pooling proxy (PgBouncer), and a
//! connection lost between two transactions costs nothing but a reconnect.

use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, Row};
use postgres_native_tls::MakeTlsConnector;

use super::location::PostgresUrl;
use crate::storage::{StorageError, StorageErrorKind};

/// The parameters of a statement, each with its PostgreSQL type.
pub type Params<'a> = [(&'a (dyn ToSql + Sync), Type)];

/// A connection to the database a [`PostgresUrl`] names, made lazily.
pub struct Connection {
    url: PostgresUrl,
    tls: MakeTlsConnector,
    client: Option<Client>,
}

impl Connection {
    pub fn new(url: PostgresUrl, tls: MakeTlsConnector) -> Self {
        Self {
            url,
            tls,
            client: None,
        }
    }

    /// Runs `work` in one transaction that `begin` opens (`BEGIN ...; SET LOCAL ...`, sent as
    /// one round trip), and commits it; on any failure it rolls back. A connection that broke on
    /// the way is dropped, so the next transaction opens a fresh one.
    pub fn transaction<T>(
        &mut self,
        begin: &str,
        work: impl FnOnce(&mut Client) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.transaction_unless(begin, |client| work(client).map(|value| (true, value)))
    }

    /// Like [`Connection::transaction`], where `work` also says whether to commit (`true`) or
    /// to roll back what it did (`false`).
    pub fn transaction_unless<T>(
        &mut self,
        begin: &str,
        work: impl FnOnce(&mut Client) -> Result<(bool, T), StorageError>,
    ) -> Result<T, StorageError> {
        let result = self.try_transaction(begin, work);
        if result.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        result
    }

    /// Runs `sql`, statements that cannot run inside a transaction (`VACUUM`), on their own,
    /// with no statement timeout of the service's.
    pub fn outside_transaction(&mut self, sql: &str) -> Result<(), StorageError> {
        let result = self
            .client()
            .and_then(|client| client.batch_execute(sql).map_err(from_pg));
        if result.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        result
    }

    fn try_transaction<T>(
        &mut self,
        begin: &str,
        work: impl FnOnce(&mut Client) -> Result<(bool, T), StorageError>,
    ) -> Result<T, StorageError> {
        let client = self.client()?;
        client.batch_execute(begin).map_err(from_pg)?;
        match work(client) {
            Ok((true, value)) => {
                // If the connection drops during COMMIT, the outcome is unknown: the error is
                // all the caller gets, and it answers 503, never 200.
                client.batch_execute("COMMIT").map_err(from_pg)?;
                Ok(value)
            }
            Ok((false, value)) => {
                client.batch_execute("ROLLBACK").map_err(from_pg)?;
                Ok(value)
            }
            Err(error) => {
                if client.batch_execute("ROLLBACK").is_err() {
                    self.client = None;
                }
                Err(error)
            }
        }
    }

    /// The client, connecting first when there is none.
    fn client(&mut self) -> Result<&mut Client, StorageError> {
        if self.client.is_none() {
            let client = self
                .url
                .config()
                .connect(self.tls.clone())
                .map_err(from_pg)?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("a client was just made"))
    }
}

/// `BEGIN` for a transaction that writes, with its statement timeout.
pub fn begin_write(statement_timeout: Duration) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {}",
        statement_timeout.as_millis().max(1)
    )
}

/// `BEGIN` for a read that sees one snapshot, with its statement timeout.
pub fn begin_read(statement_timeout: Duration) -> String {
    format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = {}",
        statement_timeout.as_millis().max(1)
    )
}

/// Runs one statement, unnamed, and returns its rows.
pub fn query(client: &mut Client, sql: &str, params: &Params) -> Result<Vec<Row>, StorageError> {
    client.query_typed(sql, params).map_err(from_pg)
}

/// Runs one statement, unnamed, that returns exactly one row.
pub fn query_one(client: &mut Client, sql: &str, params: &Params) -> Result<Row, StorageError> {
    query(client, sql, params)?
        .into_iter()
        .next()
        .ok_or_else(|| StorageError::new(StorageErrorKind::Other, format!("no row from: {sql}")))
}

/// Reads column `index` of `row`.
pub fn get<'a, T: postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, StorageError> {
    row.try_get(index).map_err(from_pg)
}

/// A readiness reason that names a cause the kinds alone do not.
const NO_SUCH_DATABASE: &str = "database does not exist";

/// Classifies a driver error into a public kind, keeping its text (which never holds the
/// password) for the logs.
pub fn from_pg(error: postgres::Error) -> StorageError {
    let detail = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            // The causes say what failed below the driver (a refused connection, a certificate
            // that did not verify).
            let mut detail = error.to_string();
            let mut cause = std::error::Error::source(&error);
            while let Some(inner) = cause {
                detail.push_str(&format!(": {inner}"));
                cause = inner.source();
            }
            detail
        }
    };
    let Some(code) = error.code() else {
        // No answer from the server: the connection failed or broke.
        return StorageError::new(StorageErrorKind::Unreachable, detail);
    };
    let kind = match code {
        c if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            StorageErrorKind::AuthenticationFailed
        }
        c if *c == SqlState::INVALID_CATALOG_NAME => {
            return StorageError::new(StorageErrorKind::Unreachable, detail)
                .because(NO_SUCH_DATABASE);
        }
        c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StorageErrorKind::ReadOnly,
        c if *c == SqlState::DISK_FULL => StorageErrorKind::Full,
        c if *c == SqlState::QUERY_CANCELED => StorageErrorKind::TimedOut,
        c if *c == SqlState::LOCK_NOT_AVAILABLE => StorageErrorKind::Locked,
        c if c.code().starts_with("08") || c.code().starts_with("57P") => {
            StorageErrorKind::Unreachable
        }
        _ => StorageErrorKind::Other,
    };
    StorageError::new(kind, detail)
}
