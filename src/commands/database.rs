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
    let location = DatabaseLocation::from_env().map_err(|e| format!("configuration error: {e}"))?;
    let url = &location.database_url;
    // A command's measurements are not exposed anywhere.
    storage::open(url, &location.store_settings(opening), &Metrics::new())
        .map_err(|e| format!("cannot open {url}: {e}"))
}
