//! `DATABASE_URL`: which store to run on, and where it is. Each scheme is recognised here and
//! opened by [`super::open`]; adding a store means one arm in each. `sqlite:` selects the
//! embedded store, `postgres:` or `postgresql:` the one several replicas share.
//!
//! `Display` is what logs and error messages show: never a password.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::postgres::location::{PostgresUrl, redact};

/// Where the database lives, from an SQLAlchemy-style URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:///relative/path` or `sqlite:////absolute/path`: the embedded store.
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/dbname?options` (or `postgresql://`): the store
    /// several replicas share.
    Postgres(Box<PostgresUrl>),
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
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return PostgresUrl::parse(url)
                .map(|url| Self::Postgres(Box::new(url)))
                .map_err(|why| InvalidDatabaseUrl {
                    shown: redact(url),
                    why,
                });
        }
        let bad = |why| InvalidDatabaseUrl {
            shown: format!("{:?}", redact_if_url(url)),
            why,
        };
        let Some(path) = url.strip_prefix("sqlite:///") else {
            return Err(bad(
                "expected sqlite:///relative/path, sqlite:////absolute/path or \
                 postgres://user:password@host:port/dbname",
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

/// A value that looks like a URL with a password is shown without it; anything else as it is.
fn redact_if_url(value: &str) -> String {
    if value.contains("://") && value.contains('@') {
        redact(value)
    } else {
        value.to_owned()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => write!(f, "{url}"),
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
    fn postgres_urls_select_the_postgres_store_and_never_show_the_password() {
        let url = DatabaseUrl::parse("postgresql://app:hunter2@db:5432/messages").unwrap();
        assert!(matches!(url, DatabaseUrl::Postgres(_)));
        assert!(!url.to_string().contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        let refused = DatabaseUrl::parse("postgres://app:hunter2@db:5432/messages?sslmode=on")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("sslmode"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
        let refused = DatabaseUrl::parse("mysql://app:hunter2@db/m")
            .unwrap_err()
            .to_string();
        assert!(!refused.contains("hunter2"), "{refused}");
    }

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
            "mysql://u:p@h/d",
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
