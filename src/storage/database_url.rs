//! `DATABASE_URL`: which store to run on, and where it is. Each scheme is recognised here and
//! opened by [`super::open`]; adding a store means one arm in each.
//!
//! `Display` is what logs and error messages show: never a password.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// Where the database lives, from an SQLAlchemy-style URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:///relative/path` or `sqlite:////absolute/path`: the embedded store.
    Sqlite(PathBuf),
}

/// Why a `DATABASE_URL` was refused, worded for the operator (without any password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DATABASE_URL {shown}: {why}")]
pub struct InvalidDatabaseUrl {
    shown: String,
    why: &'static str,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, InvalidDatabaseUrl> {
        let bad = |why| InvalidDatabaseUrl {
            shown: format!("{url:?}"),
            why,
        };
        let Some(path) = url.strip_prefix("sqlite:///") else {
            return Err(bad(
                "expected sqlite:///relative/path or sqlite:////absolute/path",
            ));
        };
        if path.is_empty() || path == ":memory:" {
            return Err(bad(
                "an in-memory database would lose every message; give a file path",
            ));
        }
        if path.contains('?') {
            return Err(bad("URL options are not supported"));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_follow_sqlalchemy() {
        let cases = [
            ("sqlite:///./data/app.db", "./data/app.db"),
            ("sqlite:///relative/app.db", "relative/app.db"),
            ("sqlite:////data/app.db", "/data/app.db"),
        ];
        for (url, path) in cases {
            assert_eq!(
                DatabaseUrl::parse(url).unwrap(),
                DatabaseUrl::Sqlite(PathBuf::from(path))
            );
        }
        for bad in [
            "sqlite://",
            "sqlite:///",
            "sqlite:///:memory:",
            "sqlite:///a.db?mode=ro",
            "app.db",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
