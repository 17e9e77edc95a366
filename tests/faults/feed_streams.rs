//! Open feed streams and held feed requests against the binary, over raw TCP on 127.0.0.1:
//!
//! - a thousand open streams on one replica stay within a stated memory bound, are counted in
//!   `feed_consumers`, each gets a message committed while they are open, and all end at once
//!   on SIGTERM, the gauge back to 0 and the process exiting 0 (`FAULTS_LONG=1`: 5,000);
//! - a held `wait=60` request and an open stream never hold up a stop: on SIGTERM both end at
//!   once, with or without a shutdown delay, and the process exits 0 long before the shutdown
//!   timeout.
//!
//! Figures are printed for the report.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::binary::RunningBinary;
use crate::helpers::message;
use crate::store::{Store, TestDatabase, store_tests};
use crate::support::{
    client, connect, keep_alive_get, long_run, memory, open_files_limit, post_signed, start,
    wait_for_ending, wait_for_feed_consumers,
};

store_tests! {
    async a_thousand_open_streams_stay_within_a_memory_bound_are_counted_and_all_end_on_sigterm,
    async a_held_poll_and_an_open_stream_end_at_once_on_sigterm_without_a_shutdown_delay,
    async a_held_poll_and_an_open_stream_end_at_once_on_sigterm_at_the_start_of_a_shutdown_delay,
}

/// How a read for something on a stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Found,
    Closed,
    TimedOut,
}

/// Reads from `stream` into `received` until `needle` is there, the connection is closed, or
/// `deadline` passes.
fn read_until(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    needle: &[u8],
    deadline: Instant,
) -> Outcome {
    let mut buffer = [0u8; 8192];
    loop {
        if received.windows(needle.len()).any(|w| w == needle) {
            return Outcome::Found;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Outcome::TimedOut;
        };
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Outcome::Closed,
        }
    }
}

/// The end of a chunked body: the last, empty chunk (no event ends with a `0` and a blank
/// line, so only that chunk does).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Opens `/messages/stream` on a connection of its own and reads the answer's head (`200`);
/// the stream stays open.
fn open_stream(port: u16) -> TcpStream {
    let mut stream = connect(port);
    stream
        .write_all(&keep_alive_get("/messages/stream"))
        .expect("the request is sent");
    let mut head = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let outcome = read_until(&mut stream, &mut head, b"\r\n\r\n", deadline);
    assert_eq!(outcome, Outcome::Found, "the stream's head arrives");
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    stream
}

/// Reads `stream` until its body ends or the connection closes, at most until `deadline`;
/// whether it ended.
fn ended(stream: &mut TcpStream, deadline: Instant) -> bool {
    read_until(stream, &mut Vec::new(), LAST_CHUNK, deadline) != Outcome::TimedOut
}

/// Most memory one open stream may take, on average: the connection's buffers and the
/// stream's state. About 13 KiB was measured; a stream holding messages for its consumer, or a
/// task per stream that keeps growing, would take more.
const MEMORY_PER_STREAM_LIMIT_KIB: u64 = 32;

/// Commits one message through `service`; panics unless it is taken.
async fn commit_one(client: &reqwest::Client, service: &RunningBinary, id: &str) {
    let body = message(
        id,
        "+4930123456",
        "+14155550100",
        "2025-01-15T10:00:00Z",
        None,
    );
    let answer = post_signed(client, service, serde_json::to_vec(&body).unwrap())
        .await
        .expect("the message is answered");
    assert_eq!(answer.status, 200, "{answer:?}");
}

async fn a_thousand_open_streams_stay_within_a_memory_bound_are_counted_and_all_end_on_sigterm(
    store: Store,
) {
    let database = TestDatabase::new(store);
    // The delay keeps the service answering after the streams ended, so the gauge can be read.
    let mut service = start(&database, &[("SHUTDOWN_DELAY_SECS", "3")]);
    let client = client();
    let wanted = if long_run() { 5_000 } else { 1_000 };
    let count = wanted.min(open_files_limit() / 2 - 64);
    if count < wanted {
        eprintln!(
            "only {count} streams of {wanted}: the open-files limit is {} (`ulimit -n` raises it)",
            open_files_limit()
        );
    }
    // Whatever the first stream allocates once is not counted per stream.
    let mut streams = vec![open_stream(service.port)];
    let before = memory(service.child.id());

    let opened = Instant::now();
    streams.extend((0..count).map(|_| open_stream(service.port)));
    let opened_in = opened.elapsed();
    wait_for_feed_consumers(&client, &service, count + 1, Duration::from_secs(30))
        .await
        .expect("every open stream is counted");
    let open = memory(service.child.id());
    commit_one(&client, &service, "to-every-stream").await;
    let committed = Instant::now();
    let mut delivered = 0;
    for stream in &mut streams {
        let mut received = Vec::new();
        let deadline = committed + Duration::from_secs(30);
        if read_until(stream, &mut received, b"\"to-every-stream\"", deadline) == Outcome::Found {
            delivered += 1;
        }
    }
    let delivered_in = committed.elapsed();
    let after_delivery = memory(service.child.id());

    service.signal("TERM");
    let signalled = Instant::now();
    let ended_count = streams
        .iter_mut()
        .map(|stream| ended(stream, signalled + Duration::from_secs(5)))
        .filter(|ended| *ended)
        .count();
    let ended_in = signalled.elapsed();
    let gauge_back = wait_for_feed_consumers(&client, &service, 0, Duration::from_secs(2)).await;
    let status = service
        .wait_for_exit(Duration::from_secs(30))
        .expect("the service exits");
    let exited_after = signalled.elapsed();

    let per_stream_kib = open.rss_kib.saturating_sub(before.rss_kib) / count as u64;
    eprintln!(
        "{count} open streams: opened in {opened_in:?}; RSS {} KiB before, {} KiB open \
         ({per_stream_kib} KiB per stream), {} KiB after a message to each (peak {} KiB); the \
         message reached all in {delivered_in:?}; SIGTERM ended them in {ended_in:?}, exit \
         after {exited_after:?} (3 s delay)",
        before.rss_kib, open.rss_kib, after_delivery.rss_kib, after_delivery.peak_kib
    );
    assert_eq!(delivered, count + 1, "every stream got the message");
    assert!(
        per_stream_kib <= MEMORY_PER_STREAM_LIMIT_KIB,
        "{per_stream_kib} KiB per open stream (bound {MEMORY_PER_STREAM_LIMIT_KIB} KiB)"
    );
    assert!(
        after_delivery.rss_kib.saturating_sub(before.rss_kib)
            <= MEMORY_PER_STREAM_LIMIT_KIB * count as u64,
        "sending a message to each stream kept within the bound too"
    );
    assert_eq!(ended_count, count + 1, "every stream ended on SIGTERM");
    assert!(
        ended_in < Duration::from_secs(2),
        "the streams ended at once, not at the end of the delay: {ended_in:?}"
    );
    gauge_back.expect("feed_consumers is back to 0 once the streams ended");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        exited_after < Duration::from_secs(8),
        "the service exited soon after its 3 s delay: {exited_after:?}"
    );
}

/// Holds a `wait=60` request and opens a stream, then sends SIGTERM: both must end within a
/// second, and the process must exit 0 within `delay` and a little more, far below its 20 s
/// shutdown timeout.
async fn held_and_streaming_consumers_end_on_sigterm(store: Store, delay: Duration) {
    let database = TestDatabase::new(store);
    let delay_secs = delay.as_secs().to_string();
    let mut service = start(&database, &[("SHUTDOWN_DELAY_SECS", &delay_secs)]);
    let client = client();
    let mut held = connect(service.port);
    held.write_all(&keep_alive_get("/messages/feed?wait=60"))
        .expect("the request is sent");
    let mut stream = open_stream(service.port);
    wait_for_feed_consumers(&client, &service, 2, Duration::from_secs(30))
        .await
        .expect("the request is held and the stream open");

    service.signal("TERM");
    let signalled = Instant::now();
    let held_ending = wait_for_ending(&mut held, signalled, Duration::from_secs(10));
    let stream_ended = ended(&mut stream, signalled + Duration::from_secs(10));
    let stream_ended_after = signalled.elapsed();
    let status = service
        .wait_for_exit(Duration::from_secs(40))
        .expect("the service exits");
    let exited_after = signalled.elapsed();

    eprintln!(
        "{store:?}, SHUTDOWN_DELAY_SECS={delay_secs}: the held request answered {:?}, the \
         stream ended {stream_ended_after:?} and the process exited {exited_after:?} after \
         SIGTERM",
        held_ending.after()
    );
    assert_eq!(held_ending.status(), Some(200), "{held_ending:?}");
    assert!(
        held_ending
            .after()
            .is_some_and(|after| after < Duration::from_secs(1)),
        "the held request is answered at once: {held_ending:?}"
    );
    assert!(stream_ended, "the stream ends");
    assert!(
        stream_ended_after < Duration::from_secs(1),
        "at once: {stream_ended_after:?}"
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(
        exited_after < delay + Duration::from_secs(3),
        "the process exits soon after its delay, not at the 20 s shutdown timeout: \
         {exited_after:?}"
    );
}

async fn a_held_poll_and_an_open_stream_end_at_once_on_sigterm_without_a_shutdown_delay(
    store: Store,
) {
    held_and_streaming_consumers_end_on_sigterm(store, Duration::ZERO).await;
}

async fn a_held_poll_and_an_open_stream_end_at_once_on_sigterm_at_the_start_of_a_shutdown_delay(
    store: Store,
) {
    held_and_streaming_consumers_end_on_sigterm(store, Duration::from_secs(2)).await;
}
