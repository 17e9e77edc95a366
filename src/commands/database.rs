//! Opening the configured database from a command other than `serve`.

use crate::config::{DatabaseLocation, DatabaseUrl};
use crate::storage::sqlite::SqliteStorage;

/// The database `DATABASE_URL` names, created with its schema when missing.
pub fn open_or_create() -> Result<SqliteStorage, String> {
    let DatabaseUrl::Sqlite(path) = location()?;
    SqliteStorage::initialize(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// The database `DATABASE_URL` names, which must exist.
pub fn open_existing() -> Result<SqliteStorage, String> {
    let DatabaseUrl::Sqlite(path) = location()?;
    SqliteStorage::open_existing(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn location() -> Result<DatabaseUrl, String> {
    DatabaseLocation::from_env()
        .map(|location| location.database_url)
        .map_err(|e| format!("configuration error: {e}"))
}
