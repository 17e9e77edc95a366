//! HAProxy in front of replicas of the service, run from the repository's own configuration
//! (`deploy/haproxy/haproxy.cfg`), so the tests prove the example operators deploy.
//!
//! It listens on free ports of 127.0.0.1 (the requests and the statistics page), logs to a file
//! in a temporary folder, and is stopped when dropped, or by its watchdog when the test process
//! is gone, however it ended. Its view of the replicas is read from the statistics page's CSV.

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary::free_port;
use crate::postgres::{Watchdog, find_program, has_exited, shell_word};

/// The configuration the tests run, the repository's example.
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy/haproxy.cfg");

/// How often HAProxy checks each replica's readiness in the tests (the example's default is
/// 1 s): a replica that stops is taken out within about half a second.
pub const CHECK_INTERVAL: &str = "250ms";

/// HAProxy's program, or why it cannot run here.
pub fn program() -> Result<PathBuf, String> {
    find_program("haproxy").ok_or_else(|| "HAProxy is not installed".to_owned())
}

/// A running HAProxy balancing over replicas named `replica1`, `replica2`, ...
pub struct HaProxy {
    port: u16,
    stats_port: u16,
    dir: tempfile::TempDir,
    child: Child,
    watchdog: Watchdog,
}

/// What HAProxy's statistics say about one server (a replica) or the backend.
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    /// `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/2` (coming up), `no check`, ...
    pub status: String,
    /// Sessions open now.
    pub current_sessions: u64,
    /// Sessions since the start.
    pub total_sessions: u64,
    /// Connection attempts made again after a failure.
    pub retries: u64,
    /// Requests sent to another server after a failure.
    pub redispatches: u64,
}

impl HaProxy {
    /// Starts HAProxy in front of `replicas` (each `127.0.0.1:port`) and waits until its
    /// statistics page answers.
    pub fn start(program: &Path, replicas: &[u16]) -> Result<Self, String> {
        assert!(
            (1..=3).contains(&replicas.len()),
            "the example has three slots"
        );
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().map_err(|e| format!("a temporary folder: {e}"))?;
            let (port, stats_port) = (free_port(), free_port());
            let log = std::fs::File::create(dir.path().join("haproxy.log"))
                .map_err(|e| format!("HAProxy's log: {e}"))?;
            let mut command = Command::new(program);
            command
                .args(["-db", "-f", CONFIG])
                .env_clear()
                .env("LISTEN", format!("127.0.0.1:{port}"))
                .env("STATS_LISTEN", format!("127.0.0.1:{stats_port}"))
                .env("CHECK_INTERVAL", CHECK_INTERVAL)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log);
            for (n, replica) in replicas.iter().enumerate() {
                command.env(format!("REPLICA{}", n + 1), format!("127.0.0.1:{replica}"));
            }
            let child = command
                .spawn()
                .map_err(|e| format!("HAProxy cannot start: {e}"))?;
            let watchdog =
                Watchdog::start(&format!("kill {}", shell_word(child.id().to_string())))?;
            let haproxy = Self {
                port,
                stats_port,
                dir,
                child,
                watchdog,
            };
            if haproxy.wait_until_listening() {
                return Ok(haproxy);
            }
            // Most likely a port was taken meanwhile; the next try has others.
            last = haproxy.log();
        }
        Err(format!("HAProxy did not start: {last}"))
    }

    /// Waits until both ports accept connections; false when HAProxy exits first or takes
    /// too long.
    fn wait_until_listening(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let listening = [self.port, self.stats_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if listening {
                return true;
            }
            if has_exited(self.child.id()) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The URL of `path` through HAProxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What HAProxy logged so far (one line per request, and each server going up or down).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// The statistics of each server of the backend by name (`replica1`, ...), and of the
    /// backend as a whole under `BACKEND`.
    pub async fn stats(
        &self,
        client: &reqwest::Client,
    ) -> Result<HashMap<String, ServerStats>, String> {
        let url = format!("http://127.0.0.1:{}/stats;csv", self.stats_port);
        let csv = client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        parse_stats(&csv)
    }

    /// Waits until HAProxy reports `server` with a status that `wanted` accepts, for at most
    /// `limit`; returns that status, or says what it saw last.
    pub async fn wait_for_server(
        &self,
        client: &reqwest::Client,
        server: &str,
        wanted: impl Fn(&str) -> bool,
        limit: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.stats(client).await {
                Ok(stats) => {
                    last = stats
                        .get(server)
                        .map_or_else(|| format!("no server {server}"), |s| s.status.clone());
                    if wanted(&last) {
                        return Ok(last);
                    }
                }
                Err(why) => last = why,
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "HAProxy did not report {server} as wanted within {limit:?}; last: {last}"
        ))
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        // The child is reaped only after the watchdog has signalled it, so its PID is still its.
        self.watchdog.finish();
        let _ = self.child.wait();
    }
}

/// The rows of the backend `replicas` in HAProxy's statistics CSV, by server name.
fn parse_stats(csv: &str) -> Result<HashMap<String, ServerStats>, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .and_then(|line| line.strip_prefix("# "))
        .ok_or_else(|| format!("not HAProxy's statistics CSV: {csv}"))?
        .split(',')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|field| *field == name)
            .ok_or_else(|| format!("no column {name} in HAProxy's statistics"))
    };
    let [proxy, server, status, current, total, retries, redispatches] = [
        "pxname", "svname", "status", "scur", "stot", "wretr", "wredis",
    ]
    .map(column);
    let (proxy, server, status) = (proxy?, server?, status?);
    let (current, total, retries, redispatches) = (current?, total?, retries?, redispatches?);
    // HAProxy leaves a field empty where it does not apply; anything else must be a number,
    // or a check of zero retries could pass on a value it never read.
    let number = |fields: &[&str], at: usize| match fields[at] {
        "" => 0,
        field => field
            .parse()
            .unwrap_or_else(|_| panic!("HAProxy's {} is not a number: {field:?}", header[at])),
    };
    Ok(lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.len() == header.len() && fields[proxy] == "replicas")
        .map(|fields| {
            let stats = ServerStats {
                status: fields[status].to_owned(),
                current_sessions: number(&fields, current),
                total_sessions: number(&fields, total),
                retries: number(&fields, retries),
                redispatches: number(&fields, redispatches),
            };
            (fields[server].to_owned(), stats)
        })
        .collect())
}
