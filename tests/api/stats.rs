//! GET /stats.

use serde_json::json;

use crate::helpers::{message, spawn_app};
use crate::store::{Store, store_tests};

store_tests! {
    async stats_of_an_empty_store_are_zero_and_null,
    async stats_rank_the_top_ten_senders_and_span_the_instants,
}

async fn stats_of_an_empty_store_are_zero_and_null(store: Store) {
    let app = spawn_app(store).await;
    let (status, body) = app.get_json("/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"total_messages": 0, "senders_count": 0, "messages_per_sender": [],
               "first_message_ts": null, "last_message_ts": null})
    );
}

async fn stats_rank_the_top_ten_senders_and_span_the_instants(store: Store) {
    let app = spawn_app(store).await;
    // Sender +1 sends 3, +2 and +3 send 2 each (a tie), +4..+13 send 1 each.
    let mut n = 0;
    let mut send = |from: String, ts: &'static str| {
        n += 1;
        message(&format!("m{n}"), &from, "+999", ts, Some("x"))
    };
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(send("+1".into(), "2025-01-15T10:00:00Z"));
    }
    for from in ["+3", "+2"] {
        for _ in 0..2 {
            bodies.push(send(from.into(), "2025-01-15T10:00:00.5Z"));
        }
    }
    for i in 4..=13 {
        bodies.push(send(format!("+{i}"), "2025-01-15T09:59:59.999999Z"));
    }
    bodies.push(send("+1".into(), "2025-01-15T10:00:01Z"));
    for body in &bodies {
        assert_eq!(app.post_signed(body).await.status().as_u16(), 200);
    }
    // A duplicate changes nothing.
    assert_eq!(app.post_signed(&bodies[0]).await.status().as_u16(), 200);

    let (status, body) = app.get_json("/stats").await;
    assert_eq!(status, 200);
    assert_eq!(body["total_messages"], 18);
    assert_eq!(body["senders_count"], 13);
    let top: Vec<(String, u64)> = body["messages_per_sender"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["from"].as_str().unwrap().to_owned(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![
        ("+1".to_owned(), 4),
        ("+2".to_owned(), 2),
        ("+3".to_owned(), 2),
    ];
    // Ties by `from` ascending as text: +10, +11, +12, +13, +4, +5, +6.
    for from in ["+10", "+11", "+12", "+13", "+4", "+5", "+6"] {
        expected.push((from.to_owned(), 1));
    }
    assert_eq!(top, expected);
    assert_eq!(body["first_message_ts"], "2025-01-15T09:59:59.999999Z");
    assert_eq!(body["last_message_ts"], "2025-01-15T10:00:01Z");
}
