//! A throwaway PostgreSQL for the tests that run on it, so that they need no server set up by
//! hand and leave nothing behind.
//!
//! One cluster per test process, started on first use in a temporary folder with `initdb` and
//! `pg_ctl` from `pg_config --bindir` (else the newest `/usr/lib/postgresql/*/bin`). It listens on
//! a free port of 127.0.0.1 and on a unix socket in its folder, and runs as the `postgres` user
//! when the tests run as root (the server refuses root). Each test gets a database of its own,
//! dropped with its handle, which can also end its sessions, fail it over to read-only, or put
//! its tables on a folder of their own; tests that stop or restart a server, or need it to
//! serve TLS, get a [`PrivateCluster`].
//!
//! Roles: the superuser `postgres` is trusted on the socket and on 127.0.0.1, for the tests'
//! own administration; the service connects as [`APP_ROLE`], which owns the test's database
//! and must give its password over TCP (`scram-sha-256`), so a wrong one is refused as on a real
//! server. The cluster runs with `fsync = off`: the tests kill processes, never the machine, and
//! only a machine going down loses what was written but not flushed.
//!
//! Nothing outlives the test process: beside each cluster (and each [`PgBouncer`]) runs a small
//! shell, its watchdog, which stops the server and deletes its folder once the test process is
//! gone, however it ended, or when the handle is dropped.
//!
//! `TEST_DATABASE_URL=postgres://user:password@host:port/dbname` runs on that server instead: the
//! fresh databases are created there (the user needs `CREATEDB`) and the tests that need a
//! cluster of their own are skipped. Where there are no server programs, the PostgreSQL tests
//! are skipped with one `SKIP` line; `REQUIRE_POSTGRES_TESTS=1` makes any skip a failure.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::binary::{
    free_port, running_as_root, skip_unless_required, through_prefix, usable_prefix,
};

/// The role the service connects as; it owns the test's database.
pub const APP_ROLE: &str = "app";
/// [`APP_ROLE`]'s password, required over TCP.
pub const APP_PASSWORD: &str = "app-password";
/// The role the tests administer the cluster as, trusted.
const SUPERUSER: &str = "postgres";
/// The variable that makes a skipped PostgreSQL test a failure.
const REQUIRED_BY: &str = "REQUIRE_POSTGRES_TESTS";

/// Reports that a PostgreSQL test cannot run here: a `SKIP` line, or a failure when
/// `REQUIRE_POSTGRES_TESTS=1`, which `.ci/run` sets when it runs as root (having installed the
/// server first), so that CI cannot pass by skipping.
pub fn skip(test: &str, why: &str) {
    skip_unless_required(REQUIRED_BY, test, why);
}

/// Whether the PostgreSQL variants of the tests can run here. When they cannot, says why once
/// (see [`skip`]) and answers false; panics when a server should have started and did not.
pub fn available() -> bool {
    match shared() {
        Shared::Ready { .. } => true,
        Shared::Missing(why) => {
            static SAID: Once = Once::new();
            if std::env::var(REQUIRED_BY).is_ok_and(|v| v == "1") {
                skip("a PostgreSQL test", why);
            }
            SAID.call_once(|| skip("every PostgreSQL test", why));
            false
        }
        Shared::Broken(why) => panic!("PostgreSQL for the tests: {why}"),
    }
}

/// A fresh, empty database on the shared server, owned by [`APP_ROLE`] (or, on
/// `TEST_DATABASE_URL`, by its user). Only when [`available`].
pub fn fresh_database() -> PostgresDatabase {
    match shared() {
        Shared::Ready { server, .. } => {
            PostgresDatabase::create(server).expect("a fresh PostgreSQL database")
        }
        _ => panic!("no PostgreSQL server; ask `available()` first"),
    }
}

/// A cluster of the test's own, or `None` (after a `SKIP` line) where there can be none: on
/// `TEST_DATABASE_URL`, or without server programs.
pub fn private_cluster(test: &str) -> Option<PrivateCluster> {
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        skip(
            test,
            "it needs a cluster of its own, and TEST_DATABASE_URL names a server",
        );
        return None;
    }
    match programs() {
        Ok(programs) => Some(PrivateCluster {
            cluster: Cluster::start(programs).expect("a private PostgreSQL cluster starts"),
        }),
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

/// The server every test process shares, set up on first use.
enum Shared {
    Ready {
        server: Server,
        /// The throwaway cluster behind `server`, unless `TEST_DATABASE_URL` named one.
        _cluster: Option<Cluster>,
    },
    /// Nothing to run on here: the tests are skipped.
    Missing(String),
    /// A server should have started and did not: every test on it fails.
    Broken(String),
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return external(url);
        }
        let programs = match programs() {
            Ok(programs) => programs,
            Err(why) => return Shared::Missing(why.clone()),
        };
        match Cluster::start(programs) {
            Ok(cluster) => Shared::Ready {
                server: cluster.server(),
                _cluster: Some(cluster),
            },
            Err(why) => Shared::Broken(why),
        }
    })
}

/// The server `TEST_DATABASE_URL` names, reached with psql.
fn external(url: String) -> Shared {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Shared::Broken(
            "TEST_DATABASE_URL must start with postgres:// or postgresql://".to_owned(),
        );
    }
    let Some(psql) = psql_program() else {
        return Shared::Missing("psql is not installed".to_owned());
    };
    let server = Server::External { url, psql };
    match run_psql(server.psql(None), "SELECT 1") {
        Ok(_) => Shared::Ready {
            server,
            _cluster: None,
        },
        Err(why) => Shared::Broken(format!("TEST_DATABASE_URL does not answer: {why}")),
    }
}

/// Runs `sql` through psql connected with `url`, as the service would connect.
pub fn psql_at(url: &str, sql: &str) -> Result<String, String> {
    let psql = psql_program().ok_or("psql is not installed")?;
    let mut command = psql_command(&psql);
    command.args(["-d", url]);
    run_psql(command, sql)
}

/// psql, quiet and unaligned, stopping at the first error, without input; where it connects is
/// for the caller to add.
fn psql_command(psql: &Path) -> Command {
    let mut command = Command::new(psql);
    command
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
    command
}

/// psql: the server programs' own, else the one in the `PATH`.
fn psql_program() -> Option<PathBuf> {
    match programs() {
        Ok(programs) => Some(programs.bin.join("psql")),
        Err(_) => find_program("psql"),
    }
}

/// The server programs, and how to run them: as `postgres` when this process is root.
struct Programs {
    bin: PathBuf,
    /// Empty, or the `setpriv` prefix that runs a command as `postgres`.
    owner: Vec<&'static str>,
}

/// The server programs, or why there are none usable here.
fn programs() -> Result<&'static Programs, &'static String> {
    static PROGRAMS: OnceLock<Result<Programs, String>> = OnceLock::new();
    PROGRAMS
        .get_or_init(|| {
            let bin = server_bin()?;
            let owner = if running_as_root() {
                usable_prefix(vec![
                    "setpriv",
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .map_err(|why| format!("running as root, the server must run as postgres: {why}"))?
            } else {
                Vec::new()
            };
            Ok(Programs { bin, owner })
        })
        .as_ref()
}

/// The folder of `initdb`, `pg_ctl`, `postgres` and `psql`: `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/<version>/bin`.
fn server_bin() -> Result<PathBuf, String> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "psql"]
            .iter()
            .all(|program| dir.join(program).is_file())
    };
    let configured = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(bin) = configured.filter(|bin| complete(bin)) {
        return Ok(bin);
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or_else(|| {
            "no PostgreSQL server programs (initdb, pg_ctl, postgres, psql) in \
             `pg_config --bindir` or /usr/lib/postgresql/*/bin"
                .to_owned()
        })
}

/// `name` in the `PATH` or in the system folders a non-root `PATH` lacks.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|program| program.is_file())
}

/// A word for `sh`, quoted.
pub fn shell_word(word: impl AsRef<OsStr>) -> String {
    format!(
        "'{}'",
        word.as_ref().to_string_lossy().replace('\'', r"'\''")
    )
}

/// `program`, run as the server programs' owner, without input.
fn as_owner(programs: &Programs, program: impl AsRef<OsStr>) -> Command {
    let mut command = through_prefix(&programs.owner, program);
    command.stdin(Stdio::null());
    command
}

/// A new temporary folder the server programs can use: given to `postgres` when they run as
/// that user. It is not deleted on drop: its watchdog deletes it.
fn server_folder(prefix: &str, programs: &Programs) -> Result<PathBuf, String> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("a temporary folder: {e}"))?
        .keep();
    if !programs.owner.is_empty() {
        give_to_postgres(&dir)?;
    }
    Ok(dir)
}

fn give_to_postgres(path: &Path) -> Result<(), String> {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .map_err(|e| format!("chown cannot run: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("chown postgres {} failed", path.display()))
}

/// A shell beside the test process that runs a cleanup once its input closes: when it is
/// finished or dropped, or when the test process is gone, however it ended (the kernel closes
/// the pipe of a process that exits or is killed; no other process holds it, since every pipe
/// this process makes is closed on `exec`). It ignores the signals a terminal sends the whole
/// process group, so a Ctrl-C on the tests still cleans up.
pub struct Watchdog {
    input: Option<ChildStdin>,
    shell: Child,
}

impl Watchdog {
    /// Starts a watchdog that will run the shell command `cleanup`.
    pub fn start(cleanup: &str) -> Result<Self, String> {
        let script = format!("trap '' INT HUP TERM; while read -r _; do :; done; {cleanup}");
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("the watchdog shell cannot start: {e}"))?;
        Ok(Self {
            input: shell.stdin.take(),
            shell,
        })
    }

    /// Runs the cleanup now and waits for it.
    pub fn finish(&mut self) {
        if self.input.take().is_some() {
            let _ = self.shell.wait();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How a server is reached: by the tests to administer it, by the service to use it.
#[derive(Clone)]
enum Server {
    /// A cluster started here: the superuser over the unix socket in `socket_dir`, the service as
    /// [`APP_ROLE`] over TCP.
    Local {
        socket_dir: PathBuf,
        port: u16,
        psql: PathBuf,
    },
    /// `TEST_DATABASE_URL`: everything as the user it names.
    External { url: String, psql: PathBuf },
}

impl Server {
    /// psql (see [`psql_command`]) connected to `database` (the server's maintenance database
    /// when `None`) as the administering user.
    fn psql(&self, database: Option<&str>) -> Command {
        match self {
            Self::Local {
                socket_dir,
                port,
                psql,
            } => {
                let mut command = psql_command(psql);
                command
                    .arg("-h")
                    .arg(socket_dir)
                    .args(["-p", &port.to_string(), "-U", SUPERUSER])
                    .args(["-d", database.unwrap_or("postgres")]);
                command
            }
            Self::External { url, psql } => {
                let mut command = psql_command(psql);
                match database {
                    Some(database) => command.args(["-d", &with_database(url, database)]),
                    None => command.args(["-d", url]),
                };
                command
            }
        }
    }

    /// The URL the service reaches `database` with, as [`APP_ROLE`] with `password` on a local
    /// cluster.
    fn url(&self, database: &str, password: &str) -> String {
        match self {
            Self::Local { port, .. } => local_url(*port, database, password),
            Self::External { url, .. } => with_database(url, database),
        }
    }
}

/// The URL of `database` on 127.0.0.1:`port` as [`APP_ROLE`] with `password`.
fn local_url(port: u16, database: &str, password: &str) -> String {
    format!("postgres://{APP_ROLE}:{password}@127.0.0.1:{port}/{database}")
}

/// `url` with its database name replaced by `database` (its options kept).
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (location, options) = match rest.split_once('?') {
        Some((location, options)) => (location, format!("?{options}")),
        None => (rest, String::new()),
    };
    let authority = location.split_once('/').map_or(location, |(host, _)| host);
    format!("{scheme}://{authority}/{database}{options}")
}

/// Runs `sql` through `psql` and returns what it printed.
fn run_psql(mut psql: Command, sql: &str) -> Result<String, String> {
    let output = psql
        .arg("-c")
        .arg(sql)
        .output()
        .map_err(|e| format!("psql cannot run: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A database name no other test, and no other test process, uses.
fn unique_database_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static PROCESS: OnceLock<String> = OnceLock::new();
    let process = PROCESS.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        format!("{}_{nanos:x}", std::process::id())
    });
    format!("test_{process}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A database of one test, dropped (with whatever is still connected to it) with this handle.
pub struct PostgresDatabase {
    name: String,
    server: Server,
    /// The tablespace [`PostgresDatabase::put_new_tables_in`] made, dropped with the database.
    tablespace: Option<String>,
}

impl PostgresDatabase {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn create(server: &Server) -> Result<Self, String> {
        let name = unique_database_name();
        let owner = match server {
            Server::Local { .. } => format!(" OWNER {APP_ROLE}"),
            Server::External { .. } => String::new(),
        };
        run_psql(server.psql(None), &format!("CREATE DATABASE {name}{owner}"))?;
        Ok(Self {
            name,
            server: server.clone(),
            tablespace: None,
        })
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> String {
        self.server.url(&self.name, APP_PASSWORD)
    }

    /// The URL with another password for [`APP_ROLE`]; `None` on `TEST_DATABASE_URL`, whose
    /// roles are not the tests' to know.
    pub fn url_with_password(&self, password: &str) -> Option<String> {
        match self.server {
            Server::Local { .. } => Some(self.server.url(&self.name, password)),
            Server::External { .. } => None,
        }
    }

    /// Runs `sql` in this database as the administering user and returns what psql printed.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        run_psql(self.server.psql(Some(&self.name)), sql)
    }

    /// Holds a lock of `mode` (e.g. `EXCLUSIVE`) on `table` in an open transaction, until the
    /// returned handle is dropped.
    pub fn lock_table(&self, table: &str, mode: &str) -> Result<TableLock, String> {
        let mut session = self
            .server
            .psql(Some(&self.name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("psql cannot run: {e}"))?;
        let mut input = session.stdin.take().expect("stdin is piped");
        let written = writeln!(
            input,
            "BEGIN;\nLOCK TABLE {table} IN {mode} MODE;\nSELECT 'locked';"
        );
        let mut answer = String::new();
        let stdout = session.stdout.take().expect("stdout is piped");
        let _ = BufReader::new(stdout).read_line(&mut answer);
        if written.is_ok() && answer.trim() == "locked" {
            return Ok(TableLock {
                input: Some(input),
                session,
            });
        }
        drop(input);
        let output = session.wait_with_output().map_err(|e| e.to_string())?;
        Err(format!(
            "LOCK TABLE {table}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }

    /// The port of 127.0.0.1 its server listens on, when the server runs here (not on
    /// `TEST_DATABASE_URL`'s).
    pub fn local_port(&self) -> Option<u16> {
        match self.server {
            Server::Local { port, .. } => Some(port),
            Server::External { .. } => None,
        }
    }

    /// The `DATABASE_URL` of this database reached through `port` of 127.0.0.1 (a proxy in
    /// front of a server started here), or `None` on `TEST_DATABASE_URL`'s server.
    pub fn url_through(&self, port: u16) -> Option<String> {
        self.local_port()
            .map(|_| local_url(port, &self.name, APP_PASSWORD))
    }

    /// The `DATABASE_URL` of another database, `name`, on the same server, reached as this
    /// one is (whether or not it exists).
    pub fn url_of_database(&self, name: &str) -> String {
        with_database(&self.url(), name)
    }

    /// Refuses every new connection to this database and ends the open ones, as a database
    /// that went away would; [`PostgresDatabase::allow_connections`] undoes it.
    pub fn refuse_connections(&self) -> Result<(), String> {
        run_psql(
            self.server.psql(None),
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", self.name),
        )?;
        self.end_sessions().map(drop)
    }

    /// Ends every open session on this database (the clients see their connection broken);
    /// returns how many there were.
    pub fn end_sessions(&self) -> Result<usize, String> {
        let ended = run_psql(
            self.server.psql(None),
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                self.name
            ),
        )?;
        ended
            .parse()
            .map_err(|_| format!("pg_terminate_backend counted {ended:?}"))
    }

    /// Makes the database refuse writes (`true`) or take them again (`false`) the way a
    /// failover to a read-only server and back looks to a client: its open sessions are ended,
    /// and every new one starts its transactions read-only (`default_transaction_read_only`).
    pub fn switch_read_only(&self, read_only: bool) -> Result<(), String> {
        let setting = if read_only {
            "SET default_transaction_read_only = on"
        } else {
            "RESET default_transaction_read_only"
        };
        run_psql(
            self.server.psql(None),
            &format!("ALTER DATABASE {} {setting}", self.name),
        )?;
        self.end_sessions().map(drop)
    }

    /// Makes the tables created from now on in this database live in `folder` (a tablespace
    /// there, the database's `default_tablespace`), while the catalogs and the WAL stay in the
    /// cluster's folder; for a full disk under the tables alone. `folder` must be empty; it is
    /// given to the server's user. Only on a server started here.
    pub fn put_new_tables_in(&mut self, folder: &Path) -> Result<(), String> {
        if self.local_port().is_none() {
            return Err("a tablespace needs a server started here".to_owned());
        }
        let programs = programs().map_err(Clone::clone)?;
        if !programs.owner.is_empty() {
            give_to_postgres(folder)?;
        }
        let (name, space) = (&self.name, format!("{}_tables", self.name));
        let location = folder.display().to_string().replace('\'', "''");
        run_psql(
            self.server.psql(None),
            &format!("CREATE TABLESPACE {space} LOCATION '{location}'"),
        )?;
        self.tablespace = Some(space.clone());
        for sql in [
            format!("GRANT CREATE ON TABLESPACE {space} TO {APP_ROLE}"),
            format!("ALTER DATABASE {name} SET default_tablespace = {space}"),
        ] {
            run_psql(self.server.psql(None), &sql)?;
        }
        Ok(())
    }

    /// Lets connections in again.
    pub fn allow_connections(&self) -> Result<(), String> {
        run_psql(
            self.server.psql(None),
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name),
        )
        .map(drop)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let dropped = run_psql(
            self.server.psql(None),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        // A private cluster may be gone already, and its databases with it.
        if let (Err(why), Server::External { .. }) = (dropped, &self.server) {
            eprintln!("the test database {} stays: {why}", self.name);
        }
        if let Some(space) = &self.tablespace {
            let _ = run_psql(
                self.server.psql(None),
                &format!("DROP TABLESPACE IF EXISTS {space}"),
            );
        }
    }
}

/// A psql session holding a table lock in an open transaction; dropping it rolls back.
pub struct TableLock {
    input: Option<ChildStdin>,
    session: Child,
}

impl Drop for TableLock {
    fn drop(&mut self) {
        if let Some(mut input) = self.input.take() {
            let _ = writeln!(input, "ROLLBACK;");
        }
        let _ = self.session.wait();
    }
}

/// How a cluster is stopped.
#[derive(Clone, Copy, Debug)]
pub enum StopMode {
    /// Ends the sessions and writes a checkpoint, as on a planned stop.
    Fast,
    /// Ends every process at once, as a crash would; recovery runs at the next start.
    Immediate,
}

/// A cluster in a temporary folder (`data/`, its socket, `server.log`), stopped and deleted by
/// its watchdog.
struct Cluster {
    dir: PathBuf,
    port: u16,
    programs: &'static Programs,
    /// Stops the server and deletes `dir` when dropped, or when this process is gone.
    _watchdog: Watchdog,
}

impl Cluster {
    /// Creates and starts a cluster on a free port, with [`APP_ROLE`].
    fn start(programs: &'static Programs) -> Result<Self, String> {
        let dir = server_folder("postgres-", programs)?;
        let data = dir.join("data");
        let stop = stop_command(programs, &data, StopMode::Immediate);
        let cleanup = format!(
            "{} >/dev/null 2>&1; rm -rf {}",
            stop.iter().map(shell_word).collect::<Vec<_>>().join(" "),
            shell_word(&dir)
        );
        let mut cluster = Self {
            _watchdog: Watchdog::start(&cleanup)?,
            port: 0,
            programs,
            dir,
        };
        cluster.initialize()?;
        cluster.start_on_a_free_port()?;
        run_psql(
            cluster.server().psql(None),
            &format!("CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'"),
        )?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program` of the server, run as the cluster's owner, in its folder.
    fn program(&self, program: &str) -> Command {
        let mut command = as_owner(self.programs, self.programs.bin.join(program));
        command.current_dir(&self.dir);
        command
    }

    /// Runs `command`; `Err` with what it printed when it fails.
    fn run(mut command: Command, what: &str) -> Result<(), String> {
        let output = command
            .output()
            .map_err(|e| format!("{what} cannot run: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }

    /// `initdb`, then the settings and access rules of a test cluster.
    fn initialize(&self) -> Result<(), String> {
        let mut initdb = self.program("initdb");
        initdb
            .arg("-D")
            .arg(self.data())
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"]);
        Self::run(initdb, "initdb")?;
        self.add_settings(&format!(
            "\n# A cluster for tests.\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nmax_connections = 200\n\
             fsync = off\nfull_page_writes = off\n",
            self.dir.display()
        ))?;
        let access = format!(
            "local all all trust\nhost all {APP_ROLE} 127.0.0.1/32 scram-sha-256\n\
             host all all 127.0.0.1/32 trust\n"
        );
        std::fs::write(self.data().join("pg_hba.conf"), access)
            .map_err(|e| format!("pg_hba.conf: {e}"))
    }

    /// Appends `settings` to `postgresql.conf`; they apply at the next start or reload.
    fn add_settings(&self, settings: &str) -> Result<(), String> {
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .map_err(|e| format!("postgresql.conf: {e}"))?;
        conf.write_all(settings.as_bytes())
            .map_err(|e| format!("postgresql.conf: {e}"))
    }

    /// Makes a CA and a certificate for `localhost` signed by it in `tls/`, turns TLS on with
    /// that certificate, and reloads the configuration; returns the CA certificate's file.
    fn serve_tls(&self) -> Result<PathBuf, String> {
        let openssl = find_program("openssl").ok_or("the openssl command is not installed")?;
        let tls = self.dir.join("tls");
        std::fs::create_dir(&tls).map_err(|e| format!("{}: {e}", tls.display()))?;
        std::fs::write(
            tls.join("server.ext"),
            "subjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
        )
        .map_err(|e| format!("server.ext: {e}"))?;
        // Arguments hold no spaces, so each step is written as one line of words.
        let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let steps = [
            format!(
                "req -x509 {new_key} -days 2 -keyout ca.key -out ca.crt -subj /CN=test-CA \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
            format!("req {new_key} -keyout server.key -out server.csr -subj /CN=localhost"),
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out server.crt"
                .to_owned(),
        ];
        for step in steps {
            let mut command = Command::new(&openssl);
            command
                .args(step.split_whitespace())
                .current_dir(&tls)
                .stdin(Stdio::null());
            Self::run(command, &format!("openssl {step}"))?;
        }
        if !self.programs.owner.is_empty() {
            give_to_postgres(&tls)?;
        }
        std::fs::set_permissions(
            tls.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|e| format!("server.key: {e}"))?;
        self.add_settings(&format!(
            "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n",
            tls.display()
        ))?;
        self.reload()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while run_psql(self.server().psql(None), "SHOW ssl")? != "on" {
            if Instant::now() > deadline {
                return Err("the server did not turn TLS on".to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(tls.join("ca.crt"))
    }

    /// Has the server read its configuration again.
    fn reload(&self) -> Result<(), String> {
        let mut pg_ctl = self.program("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).arg("reload");
        Self::run(pg_ctl, "pg_ctl reload")
    }

    /// Starts the server on a free port, trying another when the one picked was taken meanwhile.
    fn start_on_a_free_port(&mut self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..5 {
            self.port = free_port();
            match self.start_server() {
                Ok(()) => return Ok(()),
                Err(why) if why.contains("could not bind") => last = why,
                Err(why) => return Err(why),
            }
        }
        Err(last)
    }

    /// Starts the server on its port and waits until it takes connections.
    fn start_server(&self) -> Result<(), String> {
        let log = self.dir.join("server.log");
        let mut pg_ctl = self.program("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).arg("-l").arg(&log).args([
            "-w",
            "-t",
            "60",
            "-o",
            &format!("-p {}", self.port),
            "start",
        ]);
        Self::run(pg_ctl, "pg_ctl start").map_err(|why| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{why}\n{log}")
        })
    }

    fn stop(&self, mode: StopMode) -> Result<(), String> {
        let words = stop_command(self.programs, &self.data(), mode);
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]).current_dir(&self.dir);
        Self::run(command, "pg_ctl stop")
    }

    fn server(&self) -> Server {
        Server::Local {
            socket_dir: self.dir.clone(),
            port: self.port,
            psql: self.programs.bin.join("psql"),
        }
    }
}

/// The `pg_ctl stop` command line for the cluster in `data`.
fn stop_command(programs: &Programs, data: &Path, mode: StopMode) -> Vec<OsString> {
    let mode = match mode {
        StopMode::Fast => "fast",
        StopMode::Immediate => "immediate",
    };
    let mut words: Vec<OsString> = programs.owner.iter().map(OsString::from).collect();
    words.push(programs.bin.join("pg_ctl").into());
    words.extend(["-D".into(), data.into()]);
    words.extend(["-m", mode, "-w", "stop"].map(OsString::from));
    words
}

/// A cluster one test owns, to stop, restart, fill or serve TLS; stopped and deleted when
/// dropped.
pub struct PrivateCluster {
    cluster: Cluster,
}

impl PrivateCluster {
    /// The port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.cluster.port
    }

    /// The folder holding its data (`data/`), its socket and its log.
    pub fn dir(&self) -> &Path {
        &self.cluster.dir
    }

    /// A fresh database on it, owned by [`APP_ROLE`].
    pub fn database(&self) -> PostgresDatabase {
        PostgresDatabase::create(&self.cluster.server()).expect("a database on the private cluster")
    }

    /// Stops the server.
    pub fn stop(&self, mode: StopMode) {
        self.cluster.stop(mode).expect("the private cluster stops");
    }

    /// Turns TLS on, with a certificate for `localhost` (and no other name) signed by a CA made
    /// for this cluster with the `openssl` command; returns the CA certificate's file (PEM) to
    /// verify the server with, beside which the server's own is `server.crt`. Connections without TLS are still taken. `Err` says why it
    /// cannot (no `openssl` command, say).
    pub fn serve_tls(&self) -> Result<PathBuf, String> {
        self.cluster.serve_tls()
    }

    /// Starts the stopped server again, on the same port.
    pub fn restart(&self) {
        self.cluster
            .start_server()
            .expect("the private cluster starts again");
    }
}

/// PgBouncer in transaction pooling in front of a cluster started here, as the postgres user
/// when this process is root, with its configuration and log in a temporary folder.
pub struct PgBouncer {
    port: u16,
    database: String,
    child: Child,
    watchdog: Watchdog,
}

impl PgBouncer {
    /// Starts PgBouncer on a free port, serving `database` to [`APP_ROLE`] with its password
    /// (`scram-sha-256`), which it also logs in to the server with, over at most `pool_size`
    /// server connections. `Err` says why it cannot: PgBouncer is not installed, or the
    /// database is on `TEST_DATABASE_URL`'s server.
    pub fn in_front_of(database: &PostgresDatabase, pool_size: usize) -> Result<Self, String> {
        let Server::Local {
            port: server_port, ..
        } = database.server
        else {
            return Err("PgBouncer runs only in front of a cluster started here".to_owned());
        };
        let program = find_program("pgbouncer").ok_or("PgBouncer is not installed")?;
        let programs = programs().map_err(Clone::clone)?;
        let mut last = String::new();
        for _ in 0..5 {
            let dir = server_folder("pgbouncer-", programs)?;
            let port = free_port();
            let config = dir.join("pgbouncer.ini");
            let files = [
                (
                    config.clone(),
                    pgbouncer_config(&dir, port, &database.name, server_port, pool_size),
                ),
                (
                    dir.join("userlist.txt"),
                    format!("\"{APP_ROLE}\" \"{APP_PASSWORD}\"\n"),
                ),
            ];
            for (path, content) in files {
                std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let child = as_owner(programs, &program)
                .arg(&config)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("pgbouncer cannot start: {e}"))?;
            let cleanup = format!("kill {}; rm -rf {}", child.id(), shell_word(&dir));
            let bouncer = Self {
                port,
                database: database.name.clone(),
                child,
                watchdog: Watchdog::start(&cleanup)?,
            };
            if bouncer.wait_until_listening() {
                return Ok(bouncer);
            }
            // Most likely the port was taken meanwhile; the next try has another.
            last = std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default();
        }
        Err(format!("PgBouncer did not start: {last}"))
    }

    /// Waits until it accepts connections; false when it exits first or takes too long.
    fn wait_until_listening(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if has_exited(self.child.id()) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The `DATABASE_URL` of the database through PgBouncer.
    pub fn url(&self) -> String {
        local_url(self.port, &self.database, APP_PASSWORD)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // The child is reaped only after the watchdog has signalled it, so its PID is still its.
        self.watchdog.finish();
        let _ = self.child.wait();
    }
}

/// Whether the process `pid` has exited, without reaping it when it is a child (so that its PID
/// stays its own until it is waited for).
pub fn has_exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, fields)| fields.trim_start().starts_with('Z'))
    })
}

fn pgbouncer_config(
    dir: &Path,
    port: u16,
    database: &str,
    server_port: u16,
    pool_size: usize,
) -> String {
    let dir = dir.display();
    format!(
        "[databases]\n\
         {database} = host=127.0.0.1 port={server_port} dbname={database}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir = {dir}\n\
         auth_type = scram-sha-256\n\
         auth_file = {dir}/userlist.txt\n\
         pool_mode = transaction\n\
         max_client_conn = 200\n\
         default_pool_size = {pool_size}\n\
         ignore_startup_parameters = extra_float_digits\n\
         logfile = {dir}/pgbouncer.log\n"
    )
}
