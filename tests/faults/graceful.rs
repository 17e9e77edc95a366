//! Stopping on a signal: requests in flight finish and are stored, new connections are
//! refused, and a client that never finishes cannot hold the stop past `SHUTDOWN_TIMEOUT_SECS`.
//! With `SHUTDOWN_DELAY_SECS`, readiness turns 503 first while requests are still served, each
//! answer closing its connection. (`tests/api/process.rs` covers SIGTERM during a plain burst
//! of writes; `replicas.rs`, the delay behind a load balancer.)

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::store::{Store, TestDatabase, store_tests};
use crate::support::{
    Ending, Load, LoadPlan, assert_all_acknowledged_stored_once, body, client, connect, exchange,
    keep_alive_get, keep_alive_signed_post, raw_get, raw_request, raw_signed_post, start, stored,
    wait_for_created, wait_for_ending, wait_for_event, wait_for_total,
};

store_tests! {
    async sigterm_lets_an_upload_in_progress_finish_and_stores_it,
    async sigint_under_load_with_a_stalled_client_exits_zero_within_the_shutdown_timeout,
    async sigterm_with_a_shutdown_delay_turns_not_ready_and_serves_with_connection_close_until_it_ends,
    async a_second_signal_cuts_the_shutdown_delay_short,
    async sigterm_under_load_exits_as_soon_as_the_last_connection_has_closed,
}

/// What the service logs when the shutdown delay begins.
const DELAY_BEGINS: &str = "not ready; serving until the shutdown delay is over";

/// Waits until the port refuses connections; returns how long that took.
fn wait_until_refused(port: u16, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

async fn sigterm_lets_an_upload_in_progress_finish_and_stores_it(store: Store) {
    let database = TestDatabase::new(store);
    let mut service = start(&database, &[]);
    let request = raw_signed_post(&body("uploading-during-stop", 2_000));
    let (head, tail) = request.split_at(request.len() - 1_000);
    let mut upload = connect(service.port);
    upload.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    service.signal("TERM");
    let refused_after = wait_until_refused(service.port, Duration::from_secs(10))
        .expect("new connections are refused once the stop has begun");
    upload.write_all(tail).expect("the upload may go on");
    let ending = wait_for_ending(&mut upload, Instant::now(), Duration::from_secs(15));
    let status = service
        .wait_for_exit(Duration::from_secs(25))
        .expect("the service exits within its shutdown timeout");

    assert_eq!(
        ending.status(),
        Some(200),
        "the upload begun before the stop is answered: {ending:?}"
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(
        stored(&client(), &service)
            .await
            .ids
            .contains("uploading-during-stop"),
        "the acknowledged upload is stored"
    );
    eprintln!("graceful: new connections refused {refused_after:?} after SIGTERM");
}

async fn sigint_under_load_with_a_stalled_client_exits_zero_within_the_shutdown_timeout(
    store: Store,
) {
    let database = TestDatabase::new(store);
    // The stalled client's own timeout is far away, so only the shutdown timeout can end it.
    let mut service = start(
        &database,
        &[
            ("SHUTDOWN_TIMEOUT_SECS", "2"),
            ("CLIENT_TIMEOUT_SECS", "60"),
        ],
    );
    let load = Load::start(service.url("/webhook"), LoadPlan::new("stop", 8));

    // A client that sends its headers and half its body, then nothing more.
    let request = raw_signed_post(&body("never-finished", 2_000));
    let mut stalled = connect(service.port);
    stalled.write_all(&request[..request.len() / 2]).unwrap();
    wait_for_created(&client(), &service, 30.0, Duration::from_secs(20))
        .await
        .expect("the load runs");

    service.signal("INT");
    let signalled = Instant::now();
    let tally = load.join().await;
    let status = service
        .wait_for_exit(Duration::from_secs(20))
        .expect("a stalled client cannot hold the stop forever");
    let exited_after = signalled.elapsed();
    let stalled_ending = wait_for_ending(&mut stalled, Instant::now(), Duration::from_secs(2));

    assert!(status.success(), "exit status {status:?}");
    assert!(
        exited_after < Duration::from_secs(6),
        "the 2 s shutdown timeout ended the stop, not the client: {exited_after:?}"
    );
    tally.assert_only_200_or_503();
    assert!(
        tally.acknowledged.len() > 20,
        "the load ran: {:?}",
        tally.statuses
    );
    assert!(
        !matches!(stalled_ending, Ending::StillOpen),
        "the stalled connection is closed once the process is gone"
    );
    let stored = stored(&client(), &service).await;
    assert_all_acknowledged_stored_once(&stored, &tally.acknowledged);
    assert!(!stored.ids.contains("never-finished"));
    eprintln!(
        "graceful: SIGINT with a stalled upload: exit 0 after {exited_after:?} \
         (SHUTDOWN_TIMEOUT_SECS=2); load statuses {:?}",
        tally.statuses
    );
}

async fn sigterm_with_a_shutdown_delay_turns_not_ready_and_serves_with_connection_close_until_it_ends(
    store: Store,
) {
    let delay = Duration::from_secs(5);
    let database = TestDatabase::new(store);
    let mut service = start(&database, &[("SHUTDOWN_DELAY_SECS", "5")]);
    let answer_within = Duration::from_secs(10);
    let linger = Duration::from_millis(300);
    let mut kept = connect(service.port);
    let before = exchange(
        &mut kept,
        &keep_alive_get("/health/live"),
        answer_within,
        linger,
    )
    .expect("an answer before the stop");
    assert!(
        before.status == 200 && !before.closed_after,
        "a keep-alive connection stays open while the service runs: {before:?}"
    );

    let signalled = Instant::now();
    service.signal("TERM");
    wait_for_event(&service, DELAY_BEGINS, Duration::from_secs(10))
        .expect("the service logs that the delay began");
    let readiness = raw_request(service.port, &raw_get("/health/ready"), answer_within);
    let during = exchange(
        &mut kept,
        &keep_alive_signed_post(&body("during-the-delay", 16)),
        answer_within,
        Duration::from_secs(2),
    )
    .expect("an answer on the kept connection during the delay");
    let new_connection = raw_request(
        service.port,
        &raw_signed_post(&body("new-connection-during-the-delay", 16)),
        answer_within,
    );
    let still_serving_after = signalled.elapsed();
    let status = service
        .wait_for_exit(Duration::from_secs(40))
        .expect("the service exits after the delay");
    let exited_after = signalled.elapsed();

    let (ready_status, ready_body) = readiness.expect("readiness answers during the delay");
    assert_eq!(ready_status, 503, "{ready_body}");
    assert!(ready_body.contains("shutting down"), "{ready_body}");
    assert_eq!(during.status, 200, "requests are still served: {during:?}");
    assert!(
        during.has_header("connection", "close") && during.closed_after,
        "the answer closes its connection during the delay: {during:?}"
    );
    assert_eq!(new_connection.map(|(status, _)| status), Some(200));
    assert!(
        still_serving_after < delay,
        "the requests above fell within the delay ({still_serving_after:?})"
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(
        exited_after >= delay,
        "the service stopped only once the delay was over ({exited_after:?})"
    );
    let stored = stored(&client(), &service).await;
    for id in ["during-the-delay", "new-connection-during-the-delay"] {
        assert!(stored.ids.contains(id), "{id} is stored");
    }
}

async fn a_second_signal_cuts_the_shutdown_delay_short(store: Store) {
    let database = TestDatabase::new(store);
    let mut service = start(&database, &[("SHUTDOWN_DELAY_SECS", "600")]);
    service.signal("TERM");
    wait_for_event(&service, DELAY_BEGINS, Duration::from_secs(10))
        .expect("the service logs that the delay began");

    service.signal("INT");
    let status = service
        .wait_for_exit(Duration::from_secs(30))
        .expect("the second signal ends the 600 s delay");

    assert!(status.success(), "exit status {status:?}");
}

/// The server's own graceful stop looks for finished connections once a second; the service
/// ends the stop as soon as the last one closes, which with a single replica is that much less
/// time without an answer.
async fn sigterm_under_load_exits_as_soon_as_the_last_connection_has_closed(store: Store) {
    let database = TestDatabase::new(store);
    let mut service = start(&database, &[]);
    let load = Load::start(service.url("/webhook"), LoadPlan::new("prompt", 16));
    wait_for_total(&client(), &service, 200, Duration::from_secs(30))
        .await
        .expect("the load runs");

    let signalled = Instant::now();
    service.signal("TERM");
    let status = service
        .wait_for_exit(Duration::from_secs(30))
        .expect("the service exits");
    let exited_after = signalled.elapsed();
    let tally = load.finish().await;

    assert!(status.success(), "exit status {status:?}");
    assert!(
        exited_after < Duration::from_millis(900),
        "the stop outlasted its last answer by the server's one-second look: {exited_after:?}"
    );
    tally.assert_only_200_or_503();
    assert_all_acknowledged_stored_once(&stored(&client(), &service).await, &tally.acknowledged);
    eprintln!("graceful: under load of 16 senders, exit {exited_after:?} after SIGTERM");
}
