//! Fault and abuse tests against the compiled binary: crashes, stops, rollouts (of replicas
//! behind HAProxy, and of the single SQLite process), a full disk, a database made unusable
//! underneath (on PostgreSQL also a server stopped, failed over to read-only or cut off in the
//! middle of a `COMMIT`), several replicas on one database, slow or hostile clients, and the
//! change feed's consumers across replicas, in time and through a stop.
//!
//! Every test starts its own service on 127.0.0.1 with a free port and a fresh database (on
//! every store for the crash and stop tests, see `../api/store.rs`), sends a bounded amount of
//! traffic, and checks the promise "nothing acknowledged is lost,
//! nothing stored twice, nobody let in": each `200` names a row that is really on disk, every
//! failure is a JSON error, and the service keeps serving. Tests that need root (a size-limited
//! tmpfs, dropping privileges) print a `SKIP` line and pass when they cannot get it, unless
//! `REQUIRE_PRIVILEGED_TESTS=1` (set by `.ci/run` as root) makes that a failure.
//!
//! Longer variants run with `FAULTS_LONG=1 cargo test --test faults`.

#[allow(dead_code)]
#[path = "../api/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "../api/feed_follow.rs"]
mod feed_follow;
mod haproxy;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/postgres.rs"]
mod postgres;
mod postgres_proxy;
#[allow(dead_code)]
#[path = "../api/store.rs"]
mod store;
mod support;

mod crash;
mod feed;
mod feed_streams;
mod graceful;
mod hostile;
mod postgres_commit;
mod postgres_disk_full;
mod postgres_outage;
mod postgres_pgbouncer;
mod postgres_replicas;
mod replicas;
mod sqlite_disk_full;
mod sqlite_file;
mod sqlite_rollout;
