//! The PostgreSQL the tests run on (`postgres.rs`): a fresh database per test, private
//! clusters, PgBouncer, and the outside lock and outage the store tests make. They run wherever
//! a server is at hand, whatever `STORES` says.

use std::time::Duration;

use crate::postgres::{self, PgBouncer, PostgresDatabase, StopMode, psql_at};
use crate::store::{Store, TestDatabase};

/// The tables of the public schema of the database `url` names, as [`APP_ROLE`] sees them.
///
/// [`APP_ROLE`]: postgres::APP_ROLE
fn tables(url: &str) -> String {
    psql_at(
        url,
        "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') \
         FROM pg_tables WHERE schemaname = 'public'",
    )
    .expect("the database answers")
}

/// A fresh database on the shared server, or `None` where there is none (see
/// [`postgres::available`]).
fn fresh_database() -> Option<PostgresDatabase> {
    postgres::available().then(postgres::fresh_database)
}

/// A [`TestDatabase`] on PostgreSQL, or `None` where there is no server.
fn test_database() -> Option<TestDatabase> {
    postgres::available().then(|| TestDatabase::new(Store::Postgres))
}

#[test]
fn each_test_gets_an_empty_database_of_its_own_which_goes_with_its_handle() {
    let Some(first) = fresh_database() else {
        return;
    };
    let second = postgres::fresh_database();
    assert_ne!(first.url(), second.url());
    assert_eq!(tables(&first.url()), "", "a fresh database is empty");

    psql_at(
        &first.url(),
        "CREATE TABLE messages (message_id text PRIMARY KEY)",
    )
    .expect("the service's role may create its tables");

    assert_eq!(tables(&first.url()), "messages");
    assert_eq!(
        tables(&second.url()),
        "",
        "the other test's database is untouched"
    );
    let name = first.name().to_owned();
    drop(first);
    let left = second
        .psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ))
        .unwrap();
    assert_eq!(left, "0", "the database is dropped with its handle");
}

#[test]
fn the_services_role_needs_its_password() {
    let Some(database) = fresh_database() else {
        return;
    };
    let Some(wrong) = database.url_with_password("not-the-password") else {
        postgres::skip(
            "the service's role needs its password",
            "TEST_DATABASE_URL's roles are not the tests' to know",
        );
        return;
    };

    let refused = psql_at(&wrong, "SELECT 1").expect_err("a wrong password is refused");

    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
    assert_eq!(psql_at(&database.url(), "SELECT 1").as_deref(), Ok("1"));
}

#[test]
fn a_private_cluster_stops_and_restarts_on_the_same_port_keeping_its_data_then_goes() {
    let Some(cluster) = postgres::private_cluster("private cluster") else {
        return;
    };
    let database = cluster.database();
    let url = database.url();
    psql_at(&url, "CREATE TABLE kept AS SELECT 42 AS answer").unwrap();
    let port = cluster.port();

    for mode in [StopMode::Fast, StopMode::Immediate] {
        cluster.stop(mode);
        let refused = psql_at(&url, "SELECT answer FROM kept");
        assert!(refused.is_err(), "{mode:?}: stopped, yet {refused:?}");
        cluster.restart();
        assert_eq!(cluster.port(), port);
        assert_eq!(
            psql_at(&url, "SELECT answer FROM kept").as_deref(),
            Ok("42"),
            "{mode:?}: the same data, on the same port"
        );
    }

    let dir = cluster.dir().to_owned();
    let postmaster = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap();
    let pid = postmaster.lines().next().unwrap().parse().unwrap();
    drop(database);
    drop(cluster);
    assert!(!dir.exists(), "its folder is deleted with it");
    assert!(postgres::has_exited(pid), "its server is stopped");
}

#[test]
fn pgbouncer_serves_the_database_in_transaction_pooling() {
    let Some(database) = fresh_database() else {
        return;
    };
    let bouncer = match PgBouncer::in_front_of(&database, 20) {
        Ok(bouncer) => bouncer,
        Err(why) => {
            postgres::skip("PgBouncer", &why);
            return;
        }
    };
    let url = bouncer.url();
    assert_ne!(url, database.url(), "another port");

    assert_eq!(psql_at(&url, "SELECT 1").as_deref(), Ok("1"));
    psql_at(&url, "CREATE TABLE through_the_pool (n int)").unwrap();
    assert_eq!(
        tables(&database.url()),
        "through_the_pool",
        "the same database"
    );
}

#[test]
fn the_outside_write_lock_holds_writes_off_until_it_is_dropped_while_reads_go_on() {
    let Some(database) = test_database() else {
        return;
    };
    let url = database.url();
    psql_at(&url, "CREATE TABLE messages (n int)").unwrap();
    let write = "SET lock_timeout = '300ms'; INSERT INTO messages VALUES (1)";

    let lock = database.hold_write_lock();
    let held_off = psql_at(&url, write);
    let read = psql_at(&url, "SELECT count(*) FROM messages");
    drop(lock);

    let refused = held_off.expect_err("the write waits for the lock");
    assert!(refused.contains("lock timeout"), "{refused}");
    assert_eq!(read.as_deref(), Ok("0"), "reads go on");
    assert_eq!(
        psql_at(&url, write),
        Ok(String::new()),
        "written once it goes"
    );
}

/// A psql session on `url` sleeping in a query, open once this returns; its outcome when it
/// ends (it is ended from outside long before its 30 s).
fn sleeping_session(url: &str) -> std::thread::JoinHandle<Result<String, String>> {
    let session = std::thread::spawn({
        let url = url.to_owned();
        move || psql_at(&url, "SELECT pg_sleep(30)")
    });
    let sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'";
    while psql_at(url, sleeping).unwrap() == "0" {
        std::thread::sleep(Duration::from_millis(20));
    }
    session
}

#[test]
fn a_database_taken_away_ends_its_sessions_and_refuses_connections_until_it_comes_back() {
    let Some(database) = test_database() else {
        return;
    };
    let url = database.url();
    let session = sleeping_session(&url);

    let away = database.take_away();
    let refused = psql_at(&url, "SELECT 1");
    let ended = session.join().unwrap();
    drop(away);

    let refused = refused.expect_err("connections are refused");
    assert!(
        refused.contains("not currently accepting connections"),
        "{refused}"
    );
    assert!(ended.is_err(), "the open session is ended: {ended:?}");
    assert_eq!(psql_at(&url, "SELECT 1").as_deref(), Ok("1"));
}

#[test]
fn a_database_switched_read_only_ends_its_sessions_and_refuses_writes_until_switched_back() {
    let Some(database) = fresh_database() else {
        return;
    };
    let url = database.url();
    psql_at(&url, "CREATE TABLE kept (n int)").unwrap();
    let write = "INSERT INTO kept VALUES (1)";
    let session = sleeping_session(&url);

    database.switch_read_only(true).unwrap();
    let ended = session.join().unwrap();
    let refused = psql_at(&url, write);
    let read = psql_at(&url, "SELECT count(*) FROM kept");
    database.switch_read_only(false).unwrap();

    assert!(ended.is_err(), "the open session is ended: {ended:?}");
    let refused = refused.expect_err("a write is refused");
    assert!(refused.contains("read-only transaction"), "{refused}");
    assert_eq!(read.as_deref(), Ok("0"), "reads go on");
    assert_eq!(psql_at(&url, write), Ok(String::new()), "writable again");
}

#[test]
fn tables_created_after_put_new_tables_in_live_in_that_folder() {
    let folder = tempfile::tempdir().unwrap();
    let Some(mut database) = fresh_database() else {
        return;
    };
    if let Err(why) = database.put_new_tables_in(folder.path()) {
        postgres::skip("tables in a folder of their own", &why);
        return;
    }
    let url = database.url();
    let files_under = |dir: &std::path::Path| {
        std::process::Command::new("find")
            .arg(dir)
            .args(["-type", "f"])
            .output()
            .map(|found| {
                found
                    .stdout
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count()
            })
            .unwrap()
    };
    let before = files_under(folder.path());

    psql_at(&url, "CREATE TABLE placed AS SELECT 42 AS answer").unwrap();

    let space = database
        .psql("SELECT tablespace FROM pg_tables WHERE tablename = 'placed'")
        .unwrap();
    assert_eq!(space, format!("{}_tables", database.name()));
    assert!(
        files_under(folder.path()) > before,
        "the table's files are in the folder"
    );
}

#[test]
fn url_through_names_the_same_database_on_another_local_port() {
    let Some(database) = fresh_database() else {
        return;
    };
    let Some(port) = database.local_port() else {
        assert_eq!(
            database.url_through(1),
            None,
            "no proxy in front of a remote server"
        );
        return;
    };

    assert_eq!(database.url_through(port), Some(database.url()));
    let other = database.url_through(port + 1).unwrap();
    assert!(
        other.ends_with(&format!(":{}/{}", port + 1, database.name())),
        "{other}"
    );
}
