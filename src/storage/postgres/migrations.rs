//! The PostgreSQL schema, as numbered migrations (`migrations/NNNN_name.sql`) applied when the
//! service or a command starts.
//!
//! Everything happens in one transaction, which first takes a transaction-scoped advisory lock:
//! replicas starting at the same moment apply the migrations one after the other (the second
//! finds nothing left to do), and the lock works through a transaction-pooling proxy, where a
//! session lock would not. `schema_migrations` records each migration applied. A database whose
//! schema is newer than this build knows (a newer build ran on it) is refused, so an old replica
//! left in a rollout never writes to a schema it does not understand.

use postgres::Client;
use postgres::types::Type;

use super::connection::{Connection, get, query, query_one};
use crate::storage::{StorageError, StorageErrorKind};

/// Every migration this build knows, in order: (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "messages", include_str!("migrations/0001_messages.sql"))];

/// The advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x7765_6268_6f6f_6b00;

/// How long a replica waits for another one's migrations before it gives up.
const BEGIN: &str = "BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '120s'";

const REFUSED: &str = "database schema is newer than this service; run the newer version";

/// Brings the schema up to date; see the module documentation.
pub fn apply(connection: &mut Connection) -> Result<(), StorageError> {
    connection.transaction(BEGIN, |client| {
        query(
            client,
            "SELECT pg_advisory_xact_lock($1)",
            &[(&MIGRATION_LOCK, Type::INT8)],
        )?;
        let applied = applied_version(client)?;
        let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
        if applied > known {
            return Err(StorageError::new(
                StorageErrorKind::Other,
                format!("the schema is at version {applied}; this build knows up to {known}"),
            )
            .because(REFUSED));
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > applied) {
            client
                .batch_execute(sql)
                .map_err(super::connection::from_pg)?;
            query(
                client,
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[(version, Type::INT4), (name, Type::TEXT)],
            )?;
            tracing::info!(version, name, "applied a database migration");
        }
        Ok(())
    })
}

/// The newest migration recorded (0 on a new database), creating the record when missing.
fn applied_version(client: &mut Client) -> Result<i32, StorageError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(super::connection::from_pg)?;
    let row = query_one(
        client,
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    )?;
    get(&row, 0)
}
