//! The PostgreSQL store through PgBouncer in transaction pooling, with fewer server connections
//! than the service holds (`READERS` + 1): every feature that touches the database works, since
//! nothing lives on a server connection between transactions, and a concurrent load loses
//! nothing and stores nothing twice.

use std::time::Duration;

use serde_json::Value;
use webhook_processor::domain::timestamp::{format_micros, now_micros};

use crate::binary::RunningBinary;
use crate::helpers::{message, metric_value};
use crate::postgres::{self, PgBouncer};
use crate::store::{Store, TestDatabase};
use crate::support::{
    Answer, Load, LoadPlan, assert_all_acknowledged_stored_once, assert_postgres_aggregates_exact,
    client, get_json, metrics, post_signed, start, stored, wait_for_readiness,
};

/// Server connections PgBouncer may open: fewer than the service's readers plus its writer.
const POOL: usize = 2;
const READERS: &str = "2";

/// POSTs one message of `from` with `text`, signed, and says how it went.
async fn post_message(
    client: &reqwest::Client,
    service: &RunningBinary,
    id: &str,
    from: &str,
    text: &str,
) -> Answer {
    let ts = format_micros(now_micros());
    let body = serde_json::to_vec(&message(id, from, "+14155550100", &ts, Some(text))).unwrap();
    post_signed(client, service, body).await.expect("answered")
}

/// Every message of `/messages` read page by page with `next_cursor`, `limit` at a time.
async fn paged_with_cursors(
    client: &reqwest::Client,
    service: &RunningBinary,
    limit: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = format!("/messages?limit={limit}");
    loop {
        let (status, page) = get_json(client, service, &path).await.unwrap();
        assert_eq!(status, 200, "{path}: {page}");
        ids.extend(
            page["data"]
                .as_array()
                .expect("a page")
                .iter()
                .map(|m| m["message_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/messages?limit={limit}&cursor={cursor}"),
            None => return ids,
        }
    }
}

#[actix_web::test]
async fn through_pgbouncer_in_transaction_pooling_with_a_small_pool_every_feature_works() {
    if !Store::Postgres.runs_here() {
        return;
    }
    let database = TestDatabase::new(Store::Postgres);
    let bouncer = match PgBouncer::in_front_of(database.postgres(), POOL) {
        Ok(bouncer) => bouncer,
        Err(why) => {
            postgres::skip("the store through PgBouncer", &why);
            return;
        }
    };
    let through_pool = [("DATABASE_URL", bouncer.url()), ("READERS", READERS.into())];
    let through_pool: Vec<(&str, &str)> = through_pool.iter().map(|(k, v)| (*k, &**v)).collect();
    let client = client();

    // Retention, first: old messages loaded beside it go, 1,000 per transaction.
    let old: Vec<Value> = (0..1_200)
        .map(|i| {
            let ts = format!("2020-03-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60);
            message(
                &format!("old-{i}"),
                "+4930123456",
                "+14155550100",
                &ts,
                None,
            )
        })
        .collect();
    database.preload(&old);
    let retention = [("RETENTION_DAYS", "1"), ("RETENTION_INTERVAL_SECS", "1")];
    let sweeping = start(&database, &[&through_pool[..], &retention].concat());
    let mut deleted = None;
    for _ in 0..100 {
        deleted = metric_value(
            &metrics(&client, &sweeping).await,
            "retention_deleted_total",
        );
        if deleted == Some(1_200.0) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        deleted,
        Some(1_200.0),
        "retention deleted every old message"
    );
    drop(sweeping);

    let service = start(&database, &through_pool);
    wait_for_readiness(&client, &service, 200, Duration::from_secs(10))
        .await
        .expect("ready through the pool");

    // Copies of one id at the same moment: each answered 200, one row.
    let copies = (0..6).map(|_| post_message(&client, &service, "same", "+4930111", "copies"));
    for answer in futures_util::future::join_all(copies).await {
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    for (n, text) in ["Grüße aus KÖLN", "köln again", "100% sure", "nothing here"]
        .iter()
        .enumerate()
    {
        let answer = post_message(&client, &service, &format!("t{n}"), "+4930222", text).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    let (_, found) = get_json(&client, &service, "/messages?q=K%C3%B6ln")
        .await
        .unwrap();
    assert_eq!(found["total"], 2, "q folds case beyond ASCII: {found}");
    let (_, literal) = get_json(&client, &service, "/messages?q=%25")
        .await
        .unwrap();
    assert_eq!(literal["total"], 1, "q takes % literally: {literal}");

    let load = Load::start(service.url("/webhook"), {
        let mut plan = LoadPlan::new("pooled", 8);
        plan.max_per_sender = 40;
        plan
    });
    let tally = load.join().await;
    assert_eq!(
        tally.count(200),
        8 * 40,
        "every message is taken: {tally:?}"
    );

    let (_, listed) = get_json(&client, &service, "/messages?limit=100")
        .await
        .unwrap();
    let rows = 1 + 4 + 8 * 40;
    assert_eq!(listed["total"], rows, "one row per id");
    let cursored = paged_with_cursors(&client, &service, 37).await;
    assert_eq!(cursored.len(), rows, "cursors walk every row once");
    assert_eq!(
        &cursored[..100],
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        "in listing order"
    );
    let exported = client
        .get(service.url("/messages/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        exported.lines().count(),
        rows,
        "the HTTP export streams every row"
    );

    let (_, stats) = get_json(&client, &service, "/stats").await.unwrap();
    assert_eq!(stats["total_messages"], rows, "{stats}");
    assert_eq!(stats["senders_count"], 3, "the old sender is gone: {stats}");
    assert_eq!(
        stats["messages_per_sender"][0],
        serde_json::json!({"from": "+14155550100", "count": 8 * 40}),
        "{stats}"
    );

    let stored = stored(&client, &service).await;
    assert_all_acknowledged_stored_once(&stored, &tally.acknowledged);
    assert_eq!(
        stored.rows, rows as i64,
        "the export command through the pool"
    );
    assert_eq!(
        assert_postgres_aggregates_exact(database.postgres()),
        rows as i64
    );
    let server_connections: usize = database
        .postgres()
        .psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            database.postgres().name()
        ))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        server_connections <= POOL,
        "the pool held the server to {POOL} connections: {server_connections}"
    );
}
