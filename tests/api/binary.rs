//! Runs the compiled `webhook-processor` binary as a child process, for what only a real
//! process shows: startup failures, signals, logs.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::store::TestDatabase;

pub const BINARY: &str = env!("CARGO_BIN_EXE_webhook-processor");

/// A `Command` for the binary with a clean environment, run in `dir` (so no `.env` from the
/// repository is read).
pub fn command(dir: &Path, vars: &[(&str, &str)]) -> Command {
    prefixed_command(&[], dir, vars.iter().copied())
}

/// Like [`command`], run through `prefix` when it is not empty: a program and its arguments
/// that end by running the binary, such as `setpriv` switching to another user. Exactly `vars`
/// make up the environment; there is no input, and the output is piped.
pub fn prefixed_command<K, V>(
    prefix: &[&str],
    dir: &Path,
    vars: impl IntoIterator<Item = (K, V)>,
) -> Command
where
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = through_prefix(prefix, BINARY);
    command
        .current_dir(dir)
        .env_clear()
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `program`, run through `prefix` when it is not empty (see [`prefixed_command`]).
pub fn through_prefix(prefix: &[&str], program: impl AsRef<OsStr>) -> Command {
    match prefix.split_first() {
        Some((first, arguments)) => {
            let mut command = Command::new(first);
            command.args(arguments).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The `setpriv` arguments that run a command as `nobody`, when this process may do that.
pub fn unprivileged_prefix() -> Result<Vec<&'static str>, String> {
    usable_prefix(vec![
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
    ])
}

/// `prefix` (a program and its arguments that end by running a command, see
/// [`prefixed_command`]) when a command run through it works here, tried with `true`.
pub fn usable_prefix(prefix: Vec<&'static str>) -> Result<Vec<&'static str>, String> {
    let probe = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(status) if status.success() => Ok(prefix),
        Ok(status) => Err(format!(
            "`{}` does not work here ({status})",
            prefix.join(" ")
        )),
        Err(error) => Err(format!("{} is not available ({error})", prefix[0])),
    }
}

/// True when this process runs as root.
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// The service on 127.0.0.1 with a free port and `database`, in its folder, plus `extra`, run
/// through `prefix` as [`prefixed_command`] does.
pub fn service_command(
    prefix: &[&str],
    database: &TestDatabase,
    extra: &[(&str, &str)],
) -> Command {
    let url = database.url();
    let mut vars = vec![
        ("DATABASE_URL", url.as_str()),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
    ];
    vars.extend_from_slice(extra);
    prefixed_command(prefix, database.dir(), vars)
}

/// Runs `command` (its output piped) expecting it to stop by itself; kills it after `limit`, so
/// a process that hangs fails the test instead of holding it.
pub fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command.spawn().expect("the command starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("the child is reaped")
}

/// Every message stored in the database `database_url` names, as the `export` command writes
/// them: a look at what is stored that works for any store, whether the service runs or not.
pub fn exported(dir: &Path, database_url: &str) -> Vec<Value> {
    let output = command(dir, &[("DATABASE_URL", database_url)])
        .arg("export")
        .output()
        .expect("export runs");
    assert!(
        output.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("the export is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a message"))
        .collect()
}

/// Reports that a test cannot run on this machine (it needs root, to mount a filesystem or to
/// drop privileges): a `SKIP` line, or a failure when `REQUIRE_PRIVILEGED_TESTS=1`, which
/// `.ci/run` sets when it runs as root, so that CI cannot pass by skipping.
pub fn skip(test: &str, why: &str) {
    skip_unless_required("REQUIRE_PRIVILEGED_TESTS", test, why);
}

/// Reports that a test cannot run here: a `SKIP` line, or a failure when the variable
/// `required_by` is `1`.
pub fn skip_unless_required(required_by: &str, test: &str, why: &str) {
    if std::env::var(required_by).is_ok_and(|v| v == "1") {
        panic!("{test} could not run, and {required_by}=1: {why}");
    }
    eprintln!("SKIP {test}: {why}");
}

/// A started service and the log lines it has printed so far.
pub struct RunningBinary {
    pub child: Child,
    pub port: u16,
    pub lines: Arc<Mutex<Vec<String>>>,
    database_url: String,
    /// The folder it runs in.
    dir: PathBuf,
}

impl RunningBinary {
    /// Starts the binary on 127.0.0.1 with a free port and `database`, plus `extra`.
    pub fn start(database: &TestDatabase, secret: &str, extra: &[(&str, &str)]) -> Self {
        let mut vars = vec![("WEBHOOK_SECRET", secret)];
        vars.extend_from_slice(extra);
        Self::start_with(database, &vars)
    }

    /// Like [`RunningBinary::start`], with exactly the given variables besides the address and
    /// the database.
    pub fn start_with(database: &TestDatabase, extra: &[(&str, &str)]) -> Self {
        Self::spawn(service_command(&[], database, extra), database).expect("the service starts")
    }

    /// Spawns `command` (the binary on `database`, or something that becomes it) and waits
    /// until the service logs the port it listens on; on failure, says how the process ended.
    /// The `DATABASE_URL` it runs on is the command's (which may reach `database` another way,
    /// through a proxy say), else `database`'s.
    pub fn spawn(mut command: Command, database: &TestDatabase) -> Result<Self, String> {
        let database_url = command
            .get_envs()
            .find(|(name, _)| *name == "DATABASE_URL")
            .and_then(|(_, value)| value?.to_str().map(str::to_owned))
            .unwrap_or_else(|| database.url());
        let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "listening"
                {
                    let _ = port_tx.send(event["port"].as_u64().unwrap_or(0) as u16);
                }
                collected.lock().unwrap().push(line);
            }
        });
        match port_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => Ok(Self {
                child,
                port,
                lines,
                database_url,
                dir: database.dir().to_owned(),
            }),
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("the child is reaped");
                Err(format!(
                    "exit {:?}, stderr: {}",
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `signal` (e.g. "TERM", "KILL") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The `DATABASE_URL` the service runs on.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Every message stored, as the `export` command lists them (see [`exported`]).
    pub fn exported(&self) -> Vec<Value> {
        exported(&self.dir, self.database_url())
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Every JSON log line printed so far.
    pub fn log_events(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .collect()
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
