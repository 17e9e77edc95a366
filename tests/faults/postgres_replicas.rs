//! Several replicas on one PostgreSQL database: the same message sent to two of them at the same
//! moment is stored once and both answer 200; the aggregates stay exact; the retention sweep of
//! two replicas deletes every expired message once.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use webhook_processor::domain::timestamp::{format_micros, now_micros};

use crate::binary::RunningBinary;
use crate::helpers::{message, metric_value};
use crate::store::{Store, TestDatabase};
use crate::support::{
    assert_postgres_aggregates_exact, client, get_json, metrics, post_signed, start, stored,
};

const SENDERS: [&str; 5] = [
    "+4930100001",
    "+4930100002",
    "+4930100003",
    "+4930100004",
    "+4930100005",
];
const RECIPIENTS: [&str; 3] = ["+14155550101", "+14155550102", "+14155550103"];

/// Message `i` of the replicas test: senders and recipients shared across ids, over three
/// hours.
fn shared_sender_message(i: usize) -> Value {
    message(
        &format!("both-{i}"),
        SENDERS[i % SENDERS.len()],
        RECIPIENTS[i % RECIPIENTS.len()],
        &format!("2025-01-15T{:02}:{:02}:00Z", 10 + i % 3, i % 60),
        Some("sent to two replicas"),
    )
}

/// `webhook_requests_total{result}` of a replica.
async fn webhooks(client: &reqwest::Client, service: &RunningBinary, result: &str) -> f64 {
    let series = format!("webhook_requests_total{{result=\"{result}\"}}");
    metric_value(&metrics(client, service).await, &series).unwrap_or(0.0)
}

/// Starts two replicas on `database` with `extra`, each started and ready before returning.
pub fn two_replicas(database: &TestDatabase, extra: &[(&str, &str)]) -> [RunningBinary; 2] {
    std::thread::scope(|scope| {
        let a = scope.spawn(|| start(database, extra));
        let b = scope.spawn(|| start(database, extra));
        [a.join().expect("A starts"), b.join().expect("B starts")]
    })
}

#[actix_web::test]
async fn the_same_ids_sent_to_two_replicas_at_once_are_stored_once_with_exact_aggregates() {
    if !Store::Postgres.runs_here() {
        return;
    }
    let database = TestDatabase::new(Store::Postgres);
    let replicas = two_replicas(&database, &[]);
    let client = client();
    const IDS: usize = 240;
    const IN_FLIGHT: usize = 12;

    // IN_FLIGHT pairs at a time, so each replica's batches hold several ids and senders.
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for wave in (0..IDS).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let pairs = wave.iter().map(|&i| {
            let body = serde_json::to_vec(&shared_sender_message(i)).unwrap();
            let (client, replicas) = (&client, &replicas);
            async move {
                let (a, b) = tokio::join!(
                    post_signed(client, &replicas[0], body.clone()),
                    post_signed(client, &replicas[1], body)
                );
                [a.expect("A answers"), b.expect("B answers")]
            }
        });
        for answer in futures_util::future::join_all(pairs).await.iter().flatten() {
            *statuses.entry(answer.status).or_default() += 1;
        }
    }

    assert_eq!(
        statuses,
        BTreeMap::from([(200, 2 * IDS)]),
        "every copy is answered 200"
    );
    let mut created = 0.0;
    let mut duplicates = 0.0;
    for replica in &replicas {
        created += webhooks(&client, replica, "created").await;
        duplicates += webhooks(&client, replica, "duplicate").await;
    }
    assert_eq!(
        (created, duplicates),
        (IDS as f64, IDS as f64),
        "each id was created by one replica and found by the other"
    );
    let stored = stored(&client, &replicas[0]).await;
    assert_eq!(stored.rows, IDS as i64, "one row per id");
    assert_eq!(
        assert_postgres_aggregates_exact(database.postgres()),
        IDS as i64
    );
    let per_sender: Vec<Value> = SENDERS
        .iter()
        .map(|from| json!({"from": from, "count": IDS / SENDERS.len()}))
        .collect();
    for replica in &replicas {
        let (status, stats) = get_json(&client, replica, "/stats").await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(stats["total_messages"], IDS, "{stats}");
        assert_eq!(stats["senders_count"], SENDERS.len(), "{stats}");
        assert_eq!(stats["messages_per_sender"], json!(per_sender), "{stats}");
    }
}

/// `retention_deleted_total` of each replica.
async fn retention_deleted(client: &reqwest::Client, replicas: &[RunningBinary]) -> Vec<f64> {
    let mut counted = Vec::new();
    for replica in replicas {
        let metrics = metrics(client, replica).await;
        counted.push(metric_value(&metrics, "retention_deleted_total").unwrap_or(0.0));
    }
    counted
}

/// Every log line of `service` at `ERROR`.
fn errors_logged(service: &RunningBinary) -> Vec<Value> {
    service
        .log_events()
        .into_iter()
        .filter(|event| event["level"] == "ERROR")
        .collect()
}

#[actix_web::test]
async fn two_replicas_sweeping_retention_delete_every_expired_message_once() {
    if !Store::Postgres.runs_here() {
        return;
    }
    const EXPIRED: usize = 2_500;
    const RECENT: usize = 40;
    let expired = (0..EXPIRED).map(|i| {
        let ts = format!(
            "2020-03-01T{:02}:{:02}:{:02}Z",
            i / 3600,
            i / 60 % 60,
            i % 60
        );
        message(
            &format!("old-{i}"),
            SENDERS[i % 4],
            RECIPIENTS[i % 3],
            &ts,
            None,
        )
    });
    let recent_ts = format_micros(now_micros() - 3_600_000_000);
    let recent = (0..RECENT).map(|i| {
        let from = SENDERS[i % SENDERS.len()];
        message(&format!("new-{i}"), from, RECIPIENTS[0], &recent_ts, None)
    });
    let database = TestDatabase::new(Store::Postgres);
    database.preload(&expired.chain(recent).collect::<Vec<_>>());
    let client = client();

    let replicas = two_replicas(
        &database,
        &[("RETENTION_DAYS", "1"), ("RETENTION_INTERVAL_SECS", "1")],
    );
    for _ in 0..150 {
        if retention_deleted(&client, &replicas)
            .await
            .iter()
            .sum::<f64>()
            >= EXPIRED as f64
        {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // Another sweep of each replica finds nothing more.
    actix_web::rt::time::sleep(Duration::from_millis(1_500)).await;
    let counted = retention_deleted(&client, &replicas).await;

    assert_eq!(
        counted.iter().sum::<f64>(),
        EXPIRED as f64,
        "the replicas' deletions ({counted:?}) add up to the expired rows, each counted once"
    );
    assert_eq!(
        assert_postgres_aggregates_exact(database.postgres()),
        RECENT as i64,
        "only the recent messages stay"
    );
    for replica in &replicas {
        let (_, stats) = get_json(&client, replica, "/stats").await.unwrap();
        assert_eq!(stats["total_messages"], RECENT, "{stats}");
        assert_eq!(stats["senders_count"], SENDERS.len(), "{stats}");
        assert_eq!(stats["first_message_ts"], json!(recent_ts), "{stats}");
        assert_eq!(
            errors_logged(replica),
            Vec::<Value>::new(),
            "no errors logged"
        );
    }
    eprintln!("retention on two replicas: deleted {counted:?}");
}
