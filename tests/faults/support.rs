//! What the fault tests share: starting the binary (also as an unprivileged user), a bounded
//! load of signed messages, a look at what is really stored, raw TCP clients, the server's
//! memory, and a size-limited filesystem that is unmounted even when a test panics.

use std::collections::{BTreeMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

pub use crate::binary::unprivileged_prefix;
use crate::binary::{RunningBinary, output_within, service_command};
pub use crate::helpers::long_run;
use crate::helpers::{message, sign_with};
use crate::postgres::PostgresDatabase;
use crate::store::TestDatabase;

/// The signing secret every fault test runs the service with.
pub const SECRET: &str = "fault-secret";

/// The settings every fault test starts from: few threads (the machine is small) and a quick
/// readiness probe. `extra` wins over them.
fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("WORKERS", "2"),
        ("READERS", "2"),
        ("HEALTH_PROBE_INTERVAL_MS", "200"),
    ];
    vars.extend_from_slice(extra);
    vars
}

/// Starts the binary on `database`.
pub fn start(database: &TestDatabase, extra: &[(&str, &str)]) -> RunningBinary {
    RunningBinary::start(database, SECRET, &settings(extra))
}

/// The binary as `nobody` (through `prefix`) on `database`, with the fault settings.
fn unprivileged_command(
    prefix: &[&str],
    database: &TestDatabase,
    extra: &[(&str, &str)],
) -> Command {
    let mut vars = vec![("WEBHOOK_SECRET", SECRET)];
    vars.extend(settings(extra));
    service_command(prefix, database, &vars)
}

/// Starts the binary as `nobody` on `database`, whose folder nobody must be able to write.
/// `setpriv` replaces itself with the service, so the child's PID is the service's.
pub fn start_unprivileged(
    prefix: &[&str],
    database: &TestDatabase,
    extra: &[(&str, &str)],
) -> Result<RunningBinary, String> {
    RunningBinary::spawn(unprivileged_command(prefix, database, extra), database)
}

/// Runs the binary as `nobody` expecting it to stop by itself; kills it after `limit`.
pub fn command_output_as_nobody(
    prefix: &[&str],
    database: &TestDatabase,
    limit: Duration,
) -> std::process::Output {
    output_within(unprivileged_command(prefix, database, &[]), limit)
}

/// A signed-ready message body with a unique id and `text_len` characters of text.
pub fn body(id: &str, text_len: usize) -> Vec<u8> {
    let text = "x".repeat(text_len);
    serde_json::to_vec(&message(
        id,
        "+14155550100",
        "+919876543210",
        "2025-01-15T10:00:00Z",
        Some(&text),
    ))
    .expect("a message serializes")
}

/// An HTTP client whose every request ends within a generous bound.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("a client builds")
}

/// How one signed POST went.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

/// POSTs `body` signed with [`SECRET`].
pub async fn post_signed(
    client: &reqwest::Client,
    service: &RunningBinary,
    body: Vec<u8>,
) -> Result<Answer, reqwest::Error> {
    let response = client
        .post(service.url("/webhook"))
        .header("X-Signature", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(format!("not JSON: {text}")));
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// Asserts the contract's 503: `Retry-After` and a JSON `detail` string.
pub fn assert_well_formed_503(answer: &Answer) {
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.retry_after.as_deref(),
        Some("1"),
        "a 503 says when to retry: {answer:?}"
    );
    assert!(
        answer.body["detail"].is_string(),
        "a 503 carries a JSON detail: {answer:?}"
    );
}

/// POSTs message `id` with `text_len` characters of text; an answer there must be.
async fn post_message(
    client: &reqwest::Client,
    service: &RunningBinary,
    id: &str,
    text_len: usize,
) -> Answer {
    post_signed(client, service, body(id, text_len))
        .await
        .unwrap_or_else(|e| panic!("{id}: no answer: {e}"))
}

/// POSTs message `id` with `text_len` characters of text and asserts it is taken: 200.
pub async fn assert_taken(
    client: &reqwest::Client,
    service: &RunningBinary,
    id: &str,
    text_len: usize,
) {
    let answer = post_message(client, service, id, text_len).await;
    assert_eq!(answer.status, 200, "{id} is taken: {answer:?}");
}

/// POSTs message `id` with `text_len` characters of text and asserts it is refused as the
/// contract says (see [`assert_well_formed_503`]).
pub async fn assert_refused(
    client: &reqwest::Client,
    service: &RunningBinary,
    id: &str,
    text_len: usize,
) {
    assert_well_formed_503(&post_message(client, service, id, text_len).await);
}

/// Waits up to `limit` for readiness to come back by itself, then asserts that message `id`
/// (with `text_len` characters of text) is taken.
pub async fn assert_recovers_by_itself(
    client: &reqwest::Client,
    service: &RunningBinary,
    limit: Duration,
    id: &str,
    text_len: usize,
) {
    wait_for_readiness(client, service, 200, limit)
        .await
        .unwrap_or_else(|e| panic!("not ready again by itself: {e}"));
    assert_taken(client, service, id, text_len).await;
}

/// GETs `path` and returns its status and JSON body.
pub async fn get_json(
    client: &reqwest::Client,
    service: &RunningBinary,
    path: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client.get(service.url(path)).send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Polls `/health/ready` until it answers `status`, for at most `limit`; returns the last body.
pub async fn wait_for_readiness(
    client: &reqwest::Client,
    service: &RunningBinary,
    status: u16,
    limit: Duration,
) -> Result<Value, String> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        match get_json(client, service, "/health/ready").await {
            Ok((seen, body)) if seen == status => return Ok(body),
            Ok(other) => last = Some(format!("{other:?}")),
            Err(error) => last = Some(error.to_string()),
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "/health/ready did not answer {status} within {limit:?}; last: {last:?}"
    ))
}

/// Waits up to `limit` until the service has stored at least `count` messages in this run
/// (`webhook_requests_total{result="created"}`), so a test acts on a load that has really begun
/// however busy the machine is.
pub async fn wait_for_created(
    client: &reqwest::Client,
    service: &RunningBinary,
    count: f64,
    limit: Duration,
) -> Result<(), String> {
    let series = "webhook_requests_total{result=\"created\"}";
    wait_for_metric(client, service, series, |created| created >= count, limit)
        .await
        .map_err(|seen| format!("{count} messages were not stored within {limit:?}; saw {seen:?}"))
}

/// Waits up to `limit` until the `feed_consumers` gauge of `service` (held feed requests and
/// open streams) is `count`.
pub async fn wait_for_feed_consumers(
    client: &reqwest::Client,
    service: &RunningBinary,
    count: usize,
    limit: Duration,
) -> Result<(), String> {
    let reached = |seen| seen == count as f64;
    wait_for_metric(client, service, "feed_consumers", reached, limit)
        .await
        .map_err(|seen| {
            format!("feed_consumers did not reach {count} within {limit:?}; last {seen:?}")
        })
}

/// Polls `/metrics` until `series` has a value that is `reached`, for at most `limit`; else
/// the last value seen. A connection the service closed (as it stops, say) is not an answer;
/// the next one is.
async fn wait_for_metric(
    client: &reqwest::Client,
    service: &RunningBinary,
    series: &str,
    reached: impl Fn(f64) -> bool,
    limit: Duration,
) -> Result<(), Option<f64>> {
    let deadline = Instant::now() + limit;
    let mut seen = None;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(service.url("/metrics")).send().await
            && let Ok(text) = response.text().await
        {
            seen = crate::helpers::metric_value(&text, series);
            if seen.is_some_and(&reached) {
                return Ok(());
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    Err(seen)
}

/// Polls `/health/ready` until it answers 503 with `detail`, for at most `limit`.
pub async fn wait_for_not_ready(
    client: &reqwest::Client,
    service: &RunningBinary,
    detail: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        match get_json(client, service, "/health/ready").await {
            Ok((503, body)) if body["detail"] == detail => return Ok(()),
            Ok(other) => last = Some(format!("{other:?}")),
            Err(error) => last = Some(error.to_string()),
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "/health/ready did not answer 503 {detail:?} within {limit:?}; last: {last:?}"
    ))
}

/// Waits, at most `limit`, until `/stats` reports at least `total` messages stored; returns the
/// total reached.
pub async fn wait_for_total(
    client: &reqwest::Client,
    service: &RunningBinary,
    total: i64,
    limit: Duration,
) -> Result<i64, String> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok((200, stats)) = get_json(client, service, "/stats").await {
            last = stats["total_messages"].as_i64();
            if let Some(reached) = last.filter(|reached| *reached >= total) {
                return Ok(reached);
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "/stats did not reach {total} messages within {limit:?}; last: {last:?}"
    ))
}

/// Waits up to `limit` for a log line of `service` whose `message` is `message`; returns it.
/// It blocks the calling thread meanwhile, so no load of this runtime advances.
pub fn wait_for_event(service: &RunningBinary, message: &str, limit: Duration) -> Option<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let found = service
            .log_events()
            .into_iter()
            .find(|event| event["message"] == message);
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a bounded load of unique signed messages got back.
#[derive(Debug, Default)]
pub struct Tally {
    /// Ids answered 200: each must be stored.
    pub acknowledged: Vec<String>,
    pub statuses: BTreeMap<u16, usize>,
    /// 503s without `Retry-After` or without a JSON detail.
    pub malformed_503s: Vec<String>,
    /// Requests that got no HTTP answer (the connection failed or was cut).
    pub transport_errors: usize,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.acknowledged.extend(other.acknowledged);
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.malformed_503s.extend(other.malformed_503s);
        self.transport_errors += other.transport_errors;
    }

    /// Asserts that every answer was a 200 or a well-formed 503.
    pub fn assert_only_200_or_503(&self) {
        let unexpected: Vec<_> = self
            .statuses
            .keys()
            .filter(|s| **s != 200 && **s != 503)
            .collect();
        assert!(
            unexpected.is_empty(),
            "only 200 or 503 expected: {:?}",
            self.statuses
        );
        assert!(
            self.malformed_503s.is_empty(),
            "malformed 503s: {:?}",
            self.malformed_503s
        );
    }

    pub fn count(&self, status: u16) -> usize {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// How a load runs.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Ids are `{prefix}-{sender}-{n}`, so rounds never collide.
    pub prefix: String,
    pub senders: usize,
    pub text_len: usize,
    /// Each sender stops after this many requests.
    pub max_per_sender: usize,
    /// Each sender stops once it has seen this many 503s.
    pub stop_after_503s: usize,
    /// How long a sender waits after a 503 before its next message, as a sender honouring
    /// `Retry-After` would (scaled down).
    pub pause_after_503: Duration,
}

impl LoadPlan {
    pub fn new(prefix: &str, senders: usize) -> Self {
        Self {
            prefix: prefix.to_owned(),
            senders,
            text_len: 16,
            max_per_sender: 5_000,
            stop_after_503s: usize::MAX,
            pause_after_503: Duration::ZERO,
        }
    }
}

/// Concurrent senders posting unique signed messages until told to stop, until their plan's
/// limits, or until the service stops answering.
pub struct Load {
    stop: Arc<AtomicBool>,
    senders: Vec<actix_web::rt::task::JoinHandle<Tally>>,
}

impl Load {
    /// Starts the senders; must run inside the actix runtime.
    pub fn start(url: String, plan: LoadPlan) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = client();
        let senders = (0..plan.senders)
            .map(|sender| {
                let (stop, client, url, plan) =
                    (Arc::clone(&stop), client.clone(), url.clone(), plan.clone());
                actix_web::rt::spawn(async move {
                    let mut tally = Tally::default();
                    let mut refused = 0;
                    for n in 0..plan.max_per_sender {
                        if stop.load(Ordering::Relaxed) || refused >= plan.stop_after_503s {
                            break;
                        }
                        let id = format!("{}-{sender}-{n}", plan.prefix);
                        let body = body(&id, plan.text_len);
                        let sent = client
                            .post(&url)
                            .header("X-Signature", sign_with(SECRET, &body))
                            .body(body)
                            .send()
                            .await;
                        let response = match sent {
                            Ok(response) => response,
                            Err(_) => {
                                tally.transport_errors += 1;
                                break;
                            }
                        };
                        let status = response.status().as_u16();
                        *tally.statuses.entry(status).or_default() += 1;
                        let retry_after = response.headers().get("retry-after").cloned();
                        let text = response.text().await.unwrap_or_default();
                        match status {
                            200 => tally.acknowledged.push(id),
                            503 => {
                                refused += 1;
                                let detail_ok = serde_json::from_str::<Value>(&text)
                                    .is_ok_and(|v| v["detail"].is_string());
                                if retry_after.is_none() || !detail_ok {
                                    tally.malformed_503s.push(text);
                                }
                                actix_web::rt::time::sleep(plan.pause_after_503).await;
                            }
                            _ => {}
                        }
                    }
                    tally
                })
            })
            .collect();
        Self { stop, senders }
    }

    /// Tells the senders to stop and collects what they got.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.join().await
    }

    /// Waits for the senders to reach their limits.
    pub async fn join(self) -> Tally {
        let mut total = Tally::default();
        for sender in self.senders {
            total.merge(sender.await.expect("a sender does not panic"));
        }
        total
    }
}

/// What the database holds.
#[derive(Debug)]
pub struct Stored {
    pub ids: HashSet<String>,
    pub rows: i64,
    /// The total the store keeps (`/stats`, or the SQLite file's `message_totals`), when it
    /// could be read; must equal `rows`.
    pub counted: Option<i64>,
    /// `PRAGMA integrity_check`, for an SQLite file read directly.
    pub integrity: Option<String>,
}

/// What is stored, seen through the `export` command, which works on any store whether the
/// service runs or not; and while it runs, the total `/stats` reports.
pub async fn stored(client: &reqwest::Client, service: &RunningBinary) -> Stored {
    let ids: HashSet<String> = service
        .exported()
        .iter()
        .map(|message| message["message_id"].as_str().expect("an id").to_owned())
        .collect();
    let counted = match get_json(client, service, "/stats").await {
        Ok((200, stats)) => stats["total_messages"].as_i64(),
        _ => None,
    };
    Stored {
        rows: ids.len() as i64,
        ids,
        counted,
        integrity: None,
    }
}

/// The service's `/metrics`, as text.
pub async fn metrics(client: &reqwest::Client, service: &RunningBinary) -> String {
    let response = client
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("/metrics answers");
    assert_eq!(response.status(), 200, "/metrics");
    response.text().await.expect("/metrics is text")
}

/// Asserts that the aggregates the PostgreSQL store keeps (`message_totals`, `sender_stats`,
/// `recipient_stats`, `hour_counts`) are exactly what counting the stored rows gives, read with
/// psql beside the service; returns the number of rows.
pub fn assert_postgres_aggregates_exact(database: &PostgresDatabase) -> i64 {
    let disagreements = database
        .psql(
            "WITH counted AS (
                SELECT 'messages' AS key, count(*) AS n FROM messages
                UNION ALL SELECT 'senders', count(DISTINCT from_msisdn) FROM messages
                UNION ALL SELECT 'sender ' || from_msisdn, count(*) FROM messages GROUP BY 1
                UNION ALL SELECT 'recipient ' || to_msisdn, count(*) FROM messages GROUP BY 1
                UNION ALL SELECT 'hour ' || floor(ts_us::numeric / 3600000000)::int8, count(*)
                    FROM messages GROUP BY 1),
            kept AS (
                SELECT 'messages' AS key, message_count AS n FROM message_totals
                UNION ALL SELECT 'senders', sender_count FROM message_totals
                UNION ALL SELECT 'sender ' || from_msisdn, message_count FROM sender_stats
                UNION ALL SELECT 'recipient ' || to_msisdn, message_count FROM recipient_stats
                UNION ALL SELECT 'hour ' || hour, message_count FROM hour_counts)
            SELECT coalesce(string_agg(format('%s: %s rows, %s kept', key, c.n, k.n), '; '), '')
            FROM counted c FULL JOIN kept k USING (key)
            WHERE c.n IS DISTINCT FROM k.n",
        )
        .expect("the aggregates are readable");
    assert_eq!(disagreements, "", "the kept aggregates match the rows");
    database
        .psql("SELECT count(*) FROM messages")
        .expect("the rows are countable")
        .parse()
        .expect("a count")
}

/// Opens the SQLite file read-only beside the service/// Opens the SQLite file read-only beside the service (WAL lets both read) and looks, for the
/// tests about SQLite itself: its integrity, and its rows even when it is not where the service
/// looks for it.
pub fn inspect_sqlite_file(db_path: &Path) -> Stored {
    let db = Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the database opens");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let ids = db
        .prepare("SELECT message_id FROM messages")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<HashSet<String>, _>>()
        .unwrap();
    let rows = db
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    let counted = db
        .query_row(
            "SELECT message_count FROM message_totals WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let integrity = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    Stored {
        ids,
        rows,
        counted: Some(counted),
        integrity: Some(integrity),
    }
}

/// Asserts the database is sound and holds each acknowledged id exactly once.
pub fn assert_all_acknowledged_stored_once<'a>(
    stored: &Stored,
    acknowledged: impl IntoIterator<Item = &'a String>,
) {
    if let Some(integrity) = &stored.integrity {
        assert_eq!(integrity, "ok", "PRAGMA integrity_check");
    }
    assert_eq!(
        stored.rows as usize,
        stored.ids.len(),
        "every message_id is stored once"
    );
    if let Some(counted) = stored.counted {
        assert_eq!(stored.rows, counted, "the kept total matches the rows");
    }
    let lost: Vec<_> = acknowledged
        .into_iter()
        .filter(|id| !stored.ids.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged but not stored, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// Resident and peak resident memory of a process, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    Memory {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
    }
}

/// The open-files limit of this process: a test opening many connections must stay well below
/// it.
pub fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(1024)
}

/// The CPU time (user and system, all threads) a process has used, from `/proc/PID/stat`; it
/// moves in clock ticks (10 ms on Linux).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // After the command's name in parentheses, the third field of the line comes first:
    // `utime` and `stime` (the 14th and 15th) are the 12th and 13th of what follows.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 1..];
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|ticks| ticks.parse::<u64>().expect("clock ticks"))
        .sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// `getconf CLK_TCK`, the unit of `/proc/PID/stat`'s times.
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|ticks| ticks.trim().parse().ok())
        .unwrap_or(100)
}

/// Opens a raw TCP connection to the service.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("the service accepts");
    stream.set_nodelay(true).unwrap();
    // A service that stops reading must not hang the test in a write.
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// How a raw connection ended, seen from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The service answered with this status line's code.
    Answered { status: u16, after: Duration },
    /// The service closed (or reset) the connection without an answer.
    Closed { after: Duration },
    /// Nothing happened before the limit.
    StillOpen,
}

impl Ending {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn after(&self) -> Option<Duration> {
        match self {
            Self::Answered { after, .. } | Self::Closed { after } => Some(*after),
            Self::StillOpen => None,
        }
    }
}

/// Reads from `stream` until an answer or a close, at most until `deadline` (but always tries
/// at least one short read).
fn poll_ending(stream: &mut TcpStream, started: Instant, deadline: Instant) -> Ending {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(200));
        stream.set_read_timeout(Some(wait)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return answered_or_closed(&received, started),
            Ok(n) => {
                received.extend_from_slice(&buffer[..n]);
                if let Some(status) = status_code(&received) {
                    return Ending::Answered {
                        status,
                        after: started.elapsed(),
                    };
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return Ending::StillOpen;
                }
            }
            Err(_) => return answered_or_closed(&received, started),
        }
    }
}

fn answered_or_closed(received: &[u8], started: Instant) -> Ending {
    match status_code(received) {
        Some(status) => Ending::Answered {
            status,
            after: started.elapsed(),
        },
        None => Ending::Closed {
            after: started.elapsed(),
        },
    }
}

/// The code of a complete HTTP/1.x status line at the start of `received`.
fn status_code(received: &[u8]) -> Option<u16> {
    let line_end = received.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&received[..line_end]).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// Waits, at most `limit` from `started`, for the service to answer or close `stream`.
pub fn wait_for_ending(stream: &mut TcpStream, started: Instant, limit: Duration) -> Ending {
    poll_ending(stream, started, started + limit)
}

/// Sends `bytes` one at a time, `interval` apart, watching for an answer or a close between
/// bytes; after the last byte keeps watching. Gives up at `limit` from `started`.
pub fn drip(
    stream: &mut TcpStream,
    bytes: &[u8],
    interval: Duration,
    started: Instant,
    limit: Duration,
) -> Ending {
    let deadline = started + limit;
    for byte in bytes {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            // The service closed its side; an answer may still be waiting to be read.
            return poll_ending(stream, started, Instant::now() + Duration::from_secs(1));
        }
        let pause = (Instant::now() + interval).min(deadline);
        match poll_ending(stream, started, pause) {
            Ending::StillOpen if Instant::now() < deadline => {}
            ending => return ending,
        }
    }
    poll_ending(stream, started, deadline)
}

/// Writes `bytes`, ignoring a write refused because the service already answered and closed.
pub fn send_all_or_closed(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}

/// Sends one complete request (it should say `Connection: close`) on a fresh connection and
/// reads the answer to its end; the status and body, or `None` without an answer in `limit`.
pub fn raw_request(port: u16, request: &[u8], limit: Duration) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_write_timeout(Some(limit)).unwrap();
    let deadline = Instant::now() + limit;
    send_all_or_closed(&mut stream, request);
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let status = status_code(&received)?;
    let body_start = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(received.len(), |p| p + 4);
    Some((
        status,
        String::from_utf8_lossy(&received[body_start..]).into_owned(),
    ))
}

/// A plain `GET` with `Connection: close`, as raw bytes.
pub fn raw_get(path: &str) -> Vec<u8> {
    get_request(path, "close")
}

/// A plain `GET` that asks to keep the connection open, as raw bytes.
pub fn keep_alive_get(path: &str) -> Vec<u8> {
    get_request(path, "keep-alive")
}

fn get_request(path: &str, connection: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n")
        .into_bytes()
}

/// A signed `POST /webhook` request with `Connection: close`, as raw bytes.
pub fn raw_signed_post(body: &[u8]) -> Vec<u8> {
    signed_post_request(body, "close")
}

/// A signed `POST /webhook` request that asks to keep the connection open, as raw bytes.
pub fn keep_alive_signed_post(body: &[u8]) -> Vec<u8> {
    signed_post_request(body, "keep-alive")
}

fn signed_post_request(body: &[u8], connection: &str) -> Vec<u8> {
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\
         X-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        sign_with(SECRET, body),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// One answer read off a connection that may stay open.
#[derive(Debug)]
pub struct KeptAnswer {
    pub status: u16,
    /// The status line and the headers, as sent.
    pub head: String,
    /// Whether the service closed the connection right after the answer.
    pub closed_after: bool,
}

impl KeptAnswer {
    /// Whether the head holds `name: value`, both compared without regard to case.
    pub fn has_header(&self, name: &str, value: &str) -> bool {
        self.head.lines().any(|line| {
            line.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case(name) && v.trim().eq_ignore_ascii_case(value)
            })
        })
    }
}

/// Sends `request` on `stream` and reads one whole answer (its head, then a body of its
/// `Content-Length`), within `limit`; then watches the connection for `linger` to see whether
/// the service closes it. `None` without a whole answer in time.
pub fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    limit: Duration,
    linger: Duration,
) -> Option<KeptAnswer> {
    let deadline = Instant::now() + limit;
    stream.write_all(request).ok()?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let whole = |received: &[u8]| {
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        (received.len() >= head_end + length).then_some(head)
    };
    let head = loop {
        if let Some(head) = whole(&received) {
            break head;
        }
        let wait = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    };
    stream.set_read_timeout(Some(linger)).unwrap();
    let closed_after = match stream.read(&mut buffer) {
        Ok(0) => true,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        Ok(_) => false,
    };
    Some(KeptAnswer {
        status: status_code(head.as_bytes())?,
        head,
        closed_after,
    })
}

/// A tmpfs of a fixed size mounted on a fresh temporary folder; unmounted on drop, also when
/// the test panics. Needs root.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"2m"`); `Err` says why it could not.
    pub fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount cannot run: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Changes the size limit in place (more room, without touching the files).
    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount to {size}");
    }

    /// Free bytes left on the filesystem.
    pub fn free_bytes(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("df runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the free bytes")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file there: detach now, free when released.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// Mounts a tmpfs, or says why this test is skipped.
pub fn tmpfs_or_skip(size: &str, test: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(size) {
        Ok(tmpfs) => Some(tmpfs),
        Err(why) => {
            crate::binary::skip(
                test,
                &format!("cannot mount a size-limited tmpfs ({why}); run as root"),
            );
            None
        }
    }
}

/// A load that met a full disk got only 200s and well-formed 503s, every request was answered,
/// readiness names the full disk, and the process is alive.
pub async fn assert_refused_while_full(
    client: &reqwest::Client,
    service: &RunningBinary,
    tally: &Tally,
) {
    tally.assert_only_200_or_503();
    assert_eq!(tally.transport_errors, 0, "every request is answered");
    assert!(
        tally.count(503) > 0,
        "the disk filled: {:?}",
        tally.statuses
    );
    wait_for_not_ready(
        client,
        service,
        "database disk is full",
        Duration::from_secs(5),
    )
    .await
    .expect("readiness follows the full disk");
    let (live, _) = get_json(client, service, "/health/live").await.unwrap();
    assert_eq!(live, 200, "still alive");
}

/// Fills the filesystem holding `path` with a file at `path` until it is full; returns the
/// bytes written.
pub fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("the filler file is created");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Smaller writes take the last partial chunk.
    let small = [0u8; 512];
    while let Ok(n) = file.write(&small) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    written
}

/// Makes `path` and everything under it owned by `nobody`, so an unprivileged service can
/// create its database there.
pub fn give_to_nobody(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(path)
        .status()
        .expect("chown runs");
    assert!(status.success(), "chown nobody {}", path.display());
}

/// Sets the mode bits of `path`.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// `path` with `suffix` appended to its file name (`app.db` → `app.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
