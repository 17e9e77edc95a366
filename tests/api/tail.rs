//! `webhook-processor tail`: the feed as NDJSON, one message per line with its `seq`, read from
//! the database `DATABASE_URL` names or from a running service's `/messages/feed` (`--url`,
//! sending `API_TOKEN`), from `--after` on, and with `--follow` printing messages committed
//! after it started.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

use crate::binary::{RunningBinary, command, exported};
use crate::helpers::{message, sign_with};
use crate::store::{Store, TestDatabase, store_tests};

store_tests! {
    async tail_prints_every_message_once_in_position_order_from_the_database_and_from_a_service,
    async tail_follow_prints_a_message_committed_after_it_started,
}

const SECRET: &str = "tail-secret";
const TOKEN: &str = "tail-token";

/// Ten messages, stored in neither id nor `ts` order.
fn messages() -> Vec<Value> {
    (0..10)
        .map(|i| {
            let ts = format!("{}-01-15T10:00:00Z", 2025 - (i * 7) % 30);
            message(
                &format!("m{}", (i * 3) % 10),
                "+4930123456",
                "+14155550100",
                &ts,
                None,
            )
        })
        .collect()
}

/// `tail` with `args`, on `database`, with the service's token when `token` is given.
fn tail_command(
    database: &TestDatabase,
    token: Option<&str>,
    args: &[&str],
) -> std::process::Command {
    let url = database.url();
    let mut vars = vec![("DATABASE_URL", url.as_str())];
    vars.extend(token.map(|token| ("API_TOKEN", token)));
    let mut tail = command(database.dir(), &vars);
    tail.arg("tail").args(args);
    tail
}

/// Runs `tail` to its end.
fn tail(database: &TestDatabase, token: Option<&str>, args: &[&str]) -> Output {
    tail_command(database, token, args)
        .output()
        .expect("tail runs")
}

/// The lines of a `tail` that succeeded, each a feed entry.
fn lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "tail failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// The positions of `entries`, asserting each is there and they strictly increase.
fn positions(entries: &[Value]) -> Vec<u64> {
    let positions: Vec<u64> = entries
        .iter()
        .map(|entry| entry["seq"].as_u64().expect("each line has its seq"))
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "strictly increasing: {positions:?}"
    );
    positions
}

/// `entries` without their positions, sorted by id: to compare with the export.
fn without_positions(entries: &[Value]) -> Vec<Value> {
    let mut messages: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut message = entry.clone();
            message.as_object_mut().expect("an object").remove("seq");
            message
        })
        .collect();
    messages.sort_by_key(|message| message["message_id"].as_str().unwrap_or("").to_owned());
    messages
}

async fn tail_prints_every_message_once_in_position_order_from_the_database_and_from_a_service(
    store: Store,
) {
    let database = TestDatabase::new(store);
    let stored = messages();
    database.preload(&stored);
    let service = RunningBinary::start(&database, SECRET, &[("API_TOKEN", TOKEN)]);
    let url = service.url("");

    let from_database = lines(&tail(&database, None, &[]));
    let from_service = lines(&tail(&database, Some(TOKEN), &["--url", &url]));
    let database_after = lines(&tail(&database, None, &["--after", "4"]));
    let service_after = lines(&tail(
        &database,
        Some(TOKEN),
        &["--url", &url, "--after", "4"],
    ));
    let without_token = tail(&database, None, &["--url", &url]);

    let mut export = exported(database.dir(), &database.url());
    export.sort_by_key(|message| message["message_id"].as_str().unwrap_or("").to_owned());
    assert_eq!(positions(&from_database), (1..=10).collect::<Vec<_>>());
    let ids: Vec<&str> = from_database
        .iter()
        .map(|entry| entry["message_id"].as_str().expect("an id"))
        .collect();
    let stored_ids: Vec<&str> = stored
        .iter()
        .map(|message| message["message_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, stored_ids, "in the order they were stored");
    assert_eq!(without_positions(&from_database), export, "each as stored");
    assert_eq!(
        from_service, from_database,
        "the service's feed is the same"
    );
    assert_eq!(positions(&database_after), (5..=10).collect::<Vec<_>>());
    assert_eq!(database_after, from_database[4..], "--after 4");
    assert_eq!(
        service_after,
        from_database[4..],
        "--after 4 from the service"
    );
    assert!(
        !without_token.status.success(),
        "the service needs the token"
    );
    let stderr = String::from_utf8_lossy(&without_token.stderr);
    assert!(stderr.contains("401"), "{stderr}");
}

/// A running `tail --follow`, killed when dropped; its lines arrive on `lines`.
struct Following {
    child: Child,
    lines: Receiver<String>,
}

impl Following {
    fn start(mut tail: std::process::Command) -> Self {
        let mut child = tail.stdout(Stdio::piped()).spawn().expect("tail starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next `count` lines, each within `limit`.
    fn next_lines(&self, count: usize, limit: Duration) -> Vec<Value> {
        (0..count)
            .map(|n| {
                let line = self.lines.recv_timeout(limit).unwrap_or_else(|_| {
                    panic!("tail --follow printed line {} within {limit:?}", n + 1)
                });
                serde_json::from_str(&line).expect("each line is JSON")
            })
            .collect()
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tail_follow_prints_a_message_committed_after_it_started(store: Store) {
    let database = TestDatabase::new(store);
    database.preload(&messages()[..3]);
    let service = RunningBinary::start(&database, SECRET, &[("API_TOKEN", TOKEN)]);
    let url = service.url("");
    let from_database = Following::start(tail_command(&database, None, &["--follow"]));
    let from_service = Following::start(tail_command(
        &database,
        Some(TOKEN),
        &["--follow", "--url", &url, "--after", "1"],
    ));
    let limit = Duration::from_secs(10);
    let database_before = from_database.next_lines(3, limit);
    let service_before = from_service.next_lines(2, limit);

    let body = serde_json::to_vec(&message(
        "committed-after-tail-started",
        "+4930123456",
        "+14155550100",
        "1999-01-01T00:00:00Z",
        None,
    ))
    .unwrap();
    let response = reqwest::Client::new()
        .post(service.url("/webhook"))
        .header("X-Signature", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("the message is answered");
    assert_eq!(response.status().as_u16(), 200);
    let database_new = from_database.next_lines(1, limit);
    let service_new = from_service.next_lines(1, limit);
    std::thread::sleep(Duration::from_millis(500));
    let database_more = from_database.lines.try_iter().count();
    let service_more = from_service.lines.try_iter().count();

    assert_eq!(positions(&database_before), [1, 2, 3]);
    assert_eq!(positions(&service_before), [2, 3], "--after 1");
    for (what, new) in [("database", &database_new), ("service", &service_new)] {
        assert_eq!(
            new[0]["message_id"], "committed-after-tail-started",
            "{what}: {new:?}"
        );
        assert_eq!(new[0]["seq"], 4, "{what}: {new:?}");
    }
    assert_eq!((database_more, service_more), (0, 0), "each message once");
}
