//! Three replicas on one PostgreSQL database behind HAProxy, run from the repository's example
//! configuration, with signed webhooks sent through it all along:
//!
//! - a rolling restart (each replica in turn: SIGTERM, start again, wait until HAProxy sends
//!   to it again) answers every request 200 and stores each acknowledged message once, because
//!   a stopping replica leaves the rotation before it stops accepting;
//! - a replica killed with SIGKILL loses nothing acknowledged: HAProxy sends the requests it
//!   held to another replica, and a message the killed one had stored is a harmless duplicate.
//!
//! Traffic goes to 127.0.0.1 only and every wait is bounded. Without PostgreSQL's server
//! programs or HAProxy the tests print a `SKIP` line, or fail under `REQUIRE_POSTGRES_TESTS=1`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::binary::{RunningBinary, free_port};
use crate::haproxy::{HaProxy, ServerStats};
use crate::postgres;
use crate::store::{Store, TestDatabase};
use crate::support::{
    Load, LoadPlan, Tally, assert_all_acknowledged_stored_once, client, start, stored,
    wait_for_total,
};

/// How long a stopping replica keeps serving: several times what HAProxy needs to take it out
/// (two failed checks, 250 ms apart), so that a busy machine still makes it in time.
const SHUTDOWN_DELAY_SECS: &str = "4";

/// The generous bound on every wait for HAProxy or a replica.
const LIMIT: Duration = Duration::from_secs(30);

/// HAProxy's program when everything these tests need is here; otherwise `None` after a
/// `SKIP` line (a failure under `REQUIRE_POSTGRES_TESTS=1`).
fn prerequisites(test: &str) -> Option<PathBuf> {
    if !Store::Postgres.runs_here() {
        return None;
    }
    match crate::haproxy::program() {
        Ok(program) => Some(program),
        Err(why) => {
            postgres::skip(test, &why);
            None
        }
    }
}

/// One replica: a fixed port, so that it comes back where HAProxy expects it.
struct Replica {
    name: String,
    port: u16,
    service: RunningBinary,
}

impl Replica {
    fn start(database: &TestDatabase, name: String, port: u16) -> Self {
        let port_text = port.to_string();
        let service = start(
            database,
            &[
                ("PORT", &port_text),
                ("SHUTDOWN_DELAY_SECS", SHUTDOWN_DELAY_SECS),
            ],
        );
        Self {
            name,
            port,
            service,
        }
    }
}

/// Three replicas on one database behind HAProxy, every one in the rotation, with signed
/// webhooks sent through HAProxy all along. Fields drop in order: the load's senders, HAProxy,
/// the replicas, then the database.
struct Rig {
    load: Load,
    haproxy: HaProxy,
    replicas: Vec<Replica>,
    client: reqwest::Client,
    database: TestDatabase,
    /// Messages stored when the rig was ready.
    stored_at_start: i64,
}

impl Rig {
    /// The rig once the load has stored 100 messages; `None` where it cannot run (see
    /// [`prerequisites`]). Message ids start with `prefix`.
    async fn start(test: &str, prefix: &str) -> Option<Self> {
        let program = prerequisites(test)?;
        let database = TestDatabase::new(Store::Postgres);
        let client = client();
        let replicas: Vec<Replica> = (1..=3)
            .map(|n| Replica::start(&database, format!("replica{n}"), free_port()))
            .collect();
        let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
        let haproxy = HaProxy::start(&program, &ports).expect("HAProxy starts");
        for replica in &replicas {
            haproxy
                .wait_for_server(&client, &replica.name, |s| s == "UP", LIMIT)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", haproxy.log()));
        }
        let plan = LoadPlan {
            max_per_sender: usize::MAX,
            ..LoadPlan::new(prefix, 8)
        };
        let load = Load::start(haproxy.url("/webhook"), plan);
        let stored_at_start = wait_for_messages(&client, &replicas[0].service, 0, 100).await;
        Some(Self {
            load,
            haproxy,
            replicas,
            client,
            database,
            stored_at_start,
        })
    }
}

/// Waits until the database holds at least `more` messages beyond `from` (read through `any`
/// replica); returns the count reached.
async fn wait_for_messages(
    client: &reqwest::Client,
    any: &RunningBinary,
    from: i64,
    more: i64,
) -> i64 {
    wait_for_total(client, any, from + more, LIMIT)
        .await
        .unwrap_or_else(|why| panic!("the load stalled: {why}"))
}

/// Asserts every request through HAProxy got 200, none lost its connection.
fn assert_every_answer_200(tally: &Tally, log: &str) {
    assert!(
        tally.statuses.keys().all(|status| *status == 200) && tally.transport_errors == 0,
        "every sender got 200: {:?}, {} without an answer\nHAProxy's log:\n{log}",
        tally.statuses,
        tally.transport_errors
    );
}

/// How many deliveries `service` answered as duplicates (already stored), from its metrics.
async fn duplicates_answered(client: &reqwest::Client, service: &RunningBinary) -> u64 {
    let metrics = client
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("the replica answers")
        .text()
        .await
        .expect("the metrics are text");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("webhook_requests_total{result=\"duplicate\"} "))
        .map_or(0, |count| count.parse().expect("a count"))
}

fn backend(stats: &std::collections::HashMap<String, ServerStats>) -> ServerStats {
    stats.get("BACKEND").cloned().expect("the backend's row")
}

#[actix_web::test]
async fn a_rolling_restart_of_three_replicas_under_load_answers_every_request_200_and_loses_nothing()
 {
    let test = "a_rolling_restart_of_three_replicas_under_load_answers_every_request_200";
    let Some(rig) = Rig::start(test, "rolling").await else {
        return;
    };
    // Bound in this order so that they drop in the rig's order.
    let Rig {
        database,
        client,
        mut replicas,
        haproxy,
        load,
        stored_at_start,
    } = rig;
    let mut stored_so_far = stored_at_start;
    let started = Instant::now();

    for replica in &mut replicas {
        let signalled = Instant::now();
        replica.service.signal("TERM");
        haproxy
            .wait_for_server(&client, &replica.name, |s| s.starts_with("DOWN"), LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", haproxy.log()));
        let out_after = signalled.elapsed();
        let status = replica
            .service
            .wait_for_exit(LIMIT)
            .expect("the replica exits after its shutdown delay");
        assert!(status.success(), "{}: exit status {status:?}", replica.name);
        let exited_after = signalled.elapsed();

        let (name, port) = (replica.name.clone(), replica.port);
        *replica = Replica::start(&database, name, port);
        haproxy
            .wait_for_server(&client, &replica.name, |s| s == "UP", LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", haproxy.log()));
        eprintln!(
            "rolling restart: {} out of HAProxy {out_after:?} after SIGTERM, exited after \
             {exited_after:?}, back in after {:?}",
            replica.name,
            signalled.elapsed()
        );
        stored_so_far = wait_for_messages(&client, &replica.service, stored_so_far, 50).await;
    }

    let tally = load.finish().await;
    let balanced = haproxy.stats(&client).await.expect("HAProxy's statistics");
    assert_every_answer_200(&tally, &haproxy.log());
    let stored = stored(&client, &replicas[0].service).await;
    assert_all_acknowledged_stored_once(&stored, &tally.acknowledged);
    for replica in &replicas {
        let served = balanced[&replica.name].total_sessions;
        assert!(served > 0, "{} served nothing: {balanced:?}", replica.name);
    }
    let backend = backend(&balanced);
    assert_eq!(
        (backend.retries, backend.redispatches),
        (0, 0),
        "no request met a replica that no longer accepted: each left the rotation while it \
         still served\n{}",
        haproxy.log()
    );
    eprintln!(
        "rolling restart of 3 replicas in {:?}: {} acknowledged, {} stored, statuses {:?}; \
         HAProxy retried {} and redispatched {}",
        started.elapsed(),
        tally.acknowledged.len(),
        stored.rows,
        tally.statuses,
        backend.retries,
        backend.redispatches
    );
}

#[actix_web::test]
async fn a_replica_killed_under_load_loses_nothing_acknowledged_and_the_retried_requests_are_stored_once()
 {
    let test = "a_replica_killed_under_load_loses_nothing_acknowledged";
    let Some(rig) = Rig::start(test, "killed").await else {
        return;
    };
    let Rig {
        database: _database,
        client,
        mut replicas,
        haproxy,
        load,
        stored_at_start: before_kill,
    } = rig;

    // Frozen first, so that requests are surely in its hands, unanswered, when it dies; some
    // may be committed already, some not.
    let victim = &mut replicas[0];
    victim.service.signal("STOP");
    let deadline = Instant::now() + LIMIT;
    loop {
        let stats = haproxy.stats(&client).await.expect("HAProxy's statistics");
        if stats[&victim.name].current_sessions > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy sent nothing to the frozen replica: {stats:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    victim.service.signal("KILL");
    victim
        .service
        .wait_for_exit(LIMIT)
        .expect("the replica dies on SIGKILL");
    haproxy
        .wait_for_server(&client, &victim.name, |s| s.starts_with("DOWN"), LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", haproxy.log()));
    wait_for_messages(&client, &replicas[1].service, before_kill, 100).await;

    let tally = load.finish().await;
    let backend = backend(&haproxy.stats(&client).await.expect("HAProxy's statistics"));
    assert_every_answer_200(&tally, &haproxy.log());
    assert!(
        backend.retries + backend.redispatches > 0,
        "HAProxy sent the killed replica's requests elsewhere: {backend:?}\n{}",
        haproxy.log()
    );
    let stored = stored(&client, &replicas[1].service).await;
    assert_all_acknowledged_stored_once(&stored, &tally.acknowledged);
    let mut duplicates = 0;
    for survivor in &replicas[1..] {
        duplicates += duplicates_answered(&client, &survivor.service).await;
    }
    eprintln!(
        "SIGKILL under load: {} acknowledged, {} stored, statuses {:?}; HAProxy retried {} and \
         redispatched {}; {duplicates} retried messages were already stored",
        tally.acknowledged.len(),
        stored.rows,
        tally.statuses,
        backend.retries,
        backend.redispatches
    );
}
