//! Which store a test runs on, and a fresh database of that store for one test.
//!
//! The contract (what the service promises, whatever stores its messages) is tested on every
//! store in [`STORES`]: [`store_tests!`] turns each such test into one test per store. Tests
//! about SQLite itself (its file, its lock, the old SQLite schema) take a
//! [`TestDatabase::new`]`(Store::Sqlite)` and say `sqlite` in their names.

use std::path::{Path, PathBuf};

use serde_json::Value;
use webhook_processor::domain::{FeedQuery, NewMessage};
use webhook_processor::metrics::Metrics;
use webhook_processor::storage::{self, DatabaseUrl, ImportRow, Opening, Storage, StoreSettings};

use crate::postgres::{self, PostgresDatabase, TableLock};

/// A store the service can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// The stores the contract tests run on.
pub const STORES: &[Store] = &[Store::Sqlite, Store::Postgres];

impl Store {
    /// Whether a test on this store runs here: the store is in [`STORES`] and, for PostgreSQL,
    /// a server is at hand (see [`postgres::available`]: without one the test is skipped, or
    /// fails under `REQUIRE_POSTGRES_TESTS=1`).
    pub fn runs_here(self) -> bool {
        STORES.contains(&self)
            && match self {
                Self::Sqlite => true,
                Self::Postgres => postgres::available(),
            }
    }
}

/// Runs each named test on every store: for `async name` (or `fn name`, a test that runs its own
/// runtime), where `async fn name(store: Store)` is written as usual beside it, a module `name`
/// holding one test per store, `name::sqlite` and `name::postgres`, each calling it on its store
/// when [`Store::runs_here`]. The variant of a store not in [`STORES`] passes without running.
///
/// ```ignore
/// store_tests! { async a_valid_message_is_stored, async a_repeated_delivery_is_stored_once }
/// ```
macro_rules! store_tests {
    ($($kind:ident $name:ident),+ $(,)?) => {
        $($crate::store::store_tests!(@test $kind $name);)+
    };
    (@test async $name:ident) => {
        mod $name {
            use $crate::store::Store;

            #[actix_web::test]
            async fn sqlite() {
                if Store::Sqlite.runs_here() {
                    super::$name(Store::Sqlite).await;
                }
            }

            #[actix_web::test]
            async fn postgres() {
                if Store::Postgres.runs_here() {
                    super::$name(Store::Postgres).await;
                }
            }
        }
    };
    (@test fn $name:ident) => {
        mod $name {
            use $crate::store::Store;

            #[test]
            fn sqlite() {
                if Store::Sqlite.runs_here() {
                    super::$name(Store::Sqlite);
                }
            }

            #[test]
            fn postgres() {
                if Store::Postgres.runs_here() {
                    super::$name(Store::Postgres);
                }
            }
        }
    };
}
pub(crate) use store_tests;

/// A fresh database of one store for one test, and a folder of the test's beside it (the
/// binary's working folder; for SQLite, where `data/app.db` lives). Dropped with the test.
pub struct TestDatabase {
    postgres: Option<PostgresDatabase>,
    dir: tempfile::TempDir,
}

impl TestDatabase {
    /// A fresh, empty database of `store`; for PostgreSQL only where [`Store::runs_here`].
    pub fn new(store: Store) -> Self {
        Self::new_in(store, &std::env::temp_dir())
    }

    /// Like [`TestDatabase::new`], with the test's folder made in `parent` (a small filesystem,
    /// say).
    pub fn new_in(store: Store, parent: &Path) -> Self {
        Self {
            postgres: (store == Store::Postgres).then(postgres::fresh_database),
            dir: tempfile::tempdir_in(parent).expect("a temporary folder"),
        }
    }

    /// `database` (on a private cluster, say) as a test's database, with a folder of its own.
    pub fn on(database: PostgresDatabase) -> Self {
        Self {
            postgres: Some(database),
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    /// The PostgreSQL database, for the tests about PostgreSQL itself.
    pub fn postgres(&self) -> &PostgresDatabase {
        self.postgres
            .as_ref()
            .expect("a test about PostgreSQL itself")
    }

    pub fn store(&self) -> Store {
        match self.postgres {
            Some(_) => Store::Postgres,
            None => Store::Sqlite,
        }
    }

    /// The `DATABASE_URL` that names it.
    pub fn url(&self) -> String {
        match &self.postgres {
            Some(database) => database.url(),
            None => format!("sqlite:///{}", self.dir().join("data/app.db").display()),
        }
    }

    /// The test's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file, for the tests about SQLite itself.
    pub fn sqlite_path(&self) -> PathBuf {
        assert_eq!(self.store(), Store::Sqlite, "a test about SQLite itself");
        self.dir().join("data/app.db")
    }

    /// The store, opened beside the service (which may be running on it or not), created when
    /// missing.
    fn open(&self) -> Box<dyn Storage> {
        let url = DatabaseUrl::parse(&self.url()).expect("a DATABASE_URL the service takes");
        let settings = StoreSettings::new(Opening::CreateIfMissing);
        storage::open(&url, &settings, &Metrics::new()).expect("the store opens")
    }

    /// Stores `bodies` (valid messages) straight into the database, creating it when missing,
    /// as a bulk load would; the service may be running on it or not.
    pub fn preload(&self, bodies: &[Value]) {
        let storage = self.open();
        let mut rows = bodies.iter().map(|body| {
            Ok(ImportRow {
                message: NewMessage::from_json(body.to_string().as_bytes())
                    .expect("a valid message"),
                received_at: None,
            })
        });
        storage
            .writer()
            .import(&mut rows, None, &mut |_| {})
            .expect("the messages are imported");
    }

    /// Every stored message's feed position and id, in position order, read straight from the
    /// database; the service may be running on it or not. Read on a thread of its own, as the
    /// PostgreSQL client must not run inside the test's runtime.
    pub fn positions(&self) -> Vec<(u64, String)> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.read_positions())
                .join()
                .expect("the positions are read")
        })
    }

    fn read_positions(&self) -> Vec<(u64, String)> {
        let mut reader = self.open().reader();
        let mut positions = Vec::new();
        let mut after = 0;
        loop {
            let page = reader
                .feed(&FeedQuery::after(after, 1000))
                .expect("the feed is read");
            if page.entries.is_empty() && page.next_after == after {
                return positions;
            }
            positions.extend(
                page.entries
                    .into_iter()
                    .map(|entry| (entry.seq, entry.message.message_id)),
            );
            after = page.next_after;
        }
    }

    /// Takes the write lock from outside the service, as another process would, so that its
    /// writes wait while readers go on; released when the returned handle is dropped. The
    /// service must have created its schema already.
    pub fn hold_write_lock(&self) -> WriteLock {
        match &self.postgres {
            Some(database) => WriteLock::Postgres(
                database
                    .lock_table("messages", "EXCLUSIVE")
                    .expect("the messages table is locked"),
            ),
            None => {
                let connection =
                    rusqlite::Connection::open(self.sqlite_path()).expect("the database opens");
                connection
                    .execute_batch("BEGIN IMMEDIATE")
                    .expect("the write lock is taken");
                WriteLock::Sqlite(connection)
            }
        }
    }

    /// Takes the database away from the service, as an outage would (the SQLite file moved
    /// aside; PostgreSQL refusing connections to it); it comes back when the returned handle
    /// is dropped.
    pub fn take_away(&self) -> TakenAway<'_> {
        match &self.postgres {
            Some(database) => database
                .refuse_connections()
                .expect("connections are refused"),
            None => std::fs::rename(
                self.sqlite_path(),
                self.sqlite_path().with_extension("away"),
            )
            .expect("the SQLite file is moved aside"),
        }
        TakenAway { database: self }
    }
}

/// The write lock [`TestDatabase::hold_write_lock`] took; dropping it rolls back.
#[allow(
    dead_code,
    reason = "held, never read: dropping the connection or session releases the lock"
)]
pub enum WriteLock {
    Sqlite(rusqlite::Connection),
    Postgres(TableLock),
}

/// A database [`TestDatabase::take_away`] took away; it comes back when this is dropped.
pub struct TakenAway<'a> {
    database: &'a TestDatabase,
}

impl Drop for TakenAway<'_> {
    fn drop(&mut self) {
        let back = match &self.database.postgres {
            Some(database) => database.allow_connections(),
            None => {
                let path = self.database.sqlite_path();
                std::fs::rename(path.with_extension("away"), path).map_err(|e| e.to_string())
            }
        };
        if let Err(why) = back {
            eprintln!("the database could not be brought back: {why}");
        }
    }
}
