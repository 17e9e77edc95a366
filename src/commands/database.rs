//! Opening the configured database from a command other than `serve`.

use crate::config::DatabaseLocation;
use crate::metrics::Metrics;
use crate::storage::{self, Opening, Storage};

/// The database `DATABASE_URL` names, created with its schema when missing.
pub fn open_or_create() -> Result<Box<dyn Storage>, String> {
    open(Opening::CreateIfMissing)
}

/// The database `DATABASE_URL` names, which must exist.
pub fn open_existing() -> Result<Box<dyn Storage>, String> {
    open(Opening::MustExist)
}

fn open(opening: Opening) -> Result<Box<dyn Storage>, String> {
    let url = DatabaseLocation::from_env()
        .map(|location| location.database_url)
        .map_err(|e| format!("configuration error: {e}"))?;
    // A command's measurements are not exported anywhere.
    storage::open(&url, opening, &Metrics::new()).map_err(|e| format!("cannot open {url}: {e}"))
}
