//! GET /messages: shape, order, each filter alone and combined, pagination, bad parameters.

use serde_json::{Value, json};

use crate::helpers::{TestApp, message, spawn_app, validation_errors};
use crate::store::{Store, store_tests};

store_tests! {
    async an_empty_store_lists_nothing_with_the_default_page,
    async messages_come_back_in_instant_order_then_by_id_with_ts_exactly_as_sent,
    async each_filter_alone_and_combined_with_and,
    async an_unencoded_plus_in_from_or_to_still_matches,
    async percent_and_underscore_in_q_are_literal_characters,
    async limit_and_offset_page_through_while_total_counts_all_matches,
    async messages_returns_422_for_each_bad_parameter,
    async next_cursor_walks_every_row_once_in_order_and_is_null_on_the_last_page,
    async an_offset_page_also_offers_a_cursor_for_the_rest,
    async a_tampered_stale_or_misused_cursor_is_a_422,
}

const ALICE: &str = "+919876543210";
const BOB: &str = "+14155550100";
const CAROL: &str = "+447700900123";

/// Stores the fixture set: (id, from, to, ts, text).
async fn seed(app: &TestApp) {
    let rows = [
        (
            "m3",
            ALICE,
            BOB,
            "2025-01-15T10:00:00.250Z",
            Some("Meet at 50% off sale"),
        ),
        ("m1", ALICE, BOB, "2025-01-15T10:00:00Z", Some("Hello Bob")),
        (
            "m2",
            BOB,
            ALICE,
            "2025-01-15T10:00:00Z",
            Some("hello alice"),
        ),
        (
            "m4",
            CAROL,
            BOB,
            "2025-01-16T08:30:00Z",
            Some("file_name.txt attached"),
        ),
        ("m5", BOB, CAROL, "2025-01-14T23:59:59.999Z", None),
        (
            "m6",
            CAROL,
            ALICE,
            "2025-01-17T00:00:00Z",
            Some("GRÜSSE aus Köln"),
        ),
    ];
    for (id, from, to, ts, text) in rows {
        let response = app.post_signed(&message(id, from, to, ts, text)).await;
        assert_eq!(response.status().as_u16(), 200, "seeding {id}");
    }
}

async fn an_empty_store_lists_nothing_with_the_default_page(store: Store) {
    let app = spawn_app(store).await;
    let (status, body) = app.get_json("/messages").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": [], "total": 0, "limit": 50, "offset": 0, "next_cursor": null})
    );
}

async fn messages_come_back_in_instant_order_then_by_id_with_ts_exactly_as_sent(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    let (status, body) = app.get_json("/messages").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    // 10:00:00Z ties are broken by id; 10:00:00.250Z comes after them.
    assert_eq!(ids, ["m5", "m1", "m2", "m3", "m4", "m6"]);
    assert_eq!(
        body["data"][0],
        json!({"message_id": "m5", "from": BOB, "to": CAROL,
               "ts": "2025-01-14T23:59:59.999Z", "text": null})
    );
    assert_eq!(body["data"][3]["ts"], "2025-01-15T10:00:00.250Z");
    assert_eq!(body["total"], 6);
}

async fn each_filter_alone_and_combined_with_and(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    let cases: [(&str, &[&str]); 15] = [
        ("?until=2025-01-15T10:00:00.250Z", &["m5", "m1", "m2"]),
        (
            "?since=2025-01-15T10:00:00Z&until=2025-01-16T08:30:00Z",
            &["m1", "m2", "m3"],
        ),
        (
            "?from=%2B447700900123&until=2025-01-17T00:00:00.000001Z",
            &["m4", "m6"],
        ),
        ("?from=%2B919876543210", &["m1", "m3"]),
        ("?to=%2B14155550100", &["m1", "m3", "m4"]),
        ("?since=2025-01-15T10:00:00.250Z", &["m3", "m4", "m6"]),
        (
            "?since=2025-01-15T10:00:00Z",
            &["m1", "m2", "m3", "m4", "m6"],
        ),
        ("?q=HELLO", &["m1", "m2"]),
        ("?q=grüsse", &["m6"]),
        ("?q=KÖLN", &["m6"]),
        ("?from=%2B919876543210&q=hello", &["m1"]),
        ("?from=%2B14155550100&to=%2B919876543210", &["m2"]),
        (
            "?to=%2B14155550100&since=2025-01-15T10:00:00.001Z",
            &["m3", "m4"],
        ),
        (
            "?from=%2B447700900123&to=%2B14155550100&since=2025-01-16T00:00:00Z&q=FILE",
            &["m4"],
        ),
        ("?from=%2B10000000000", &[]),
    ];
    for (query, expected) in cases {
        let (ids, total) = app.listed_ids(query).await;
        assert_eq!(ids, expected, "{query}");
        assert_eq!(total, expected.len() as u64, "{query}");
    }
}

async fn an_unencoded_plus_in_from_or_to_still_matches(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    assert_eq!(app.listed_ids("?from=+919876543210").await.0, ["m1", "m3"]);
    assert_eq!(app.listed_ids("?to=+447700900123").await.0, ["m5"]);
}

async fn percent_and_underscore_in_q_are_literal_characters(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    assert_eq!(app.listed_ids("?q=50%25").await.0, ["m3"], "% is literal");
    assert_eq!(
        app.listed_ids("?q=%25").await.0,
        ["m3"],
        "a lone % matches only a %"
    );
    assert_eq!(app.listed_ids("?q=e_n").await.0, ["m4"], "_ is literal");
    assert_eq!(
        app.listed_ids("?q=_").await.0,
        ["m4"],
        "a lone _ matches only an _"
    );
}

async fn limit_and_offset_page_through_while_total_counts_all_matches(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    let (status, body) = app.get_json("/messages?limit=2&offset=1").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["limit"].clone(), body["offset"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(body["total"], 6);
    assert_eq!(app.listed_ids("?limit=2&offset=1").await.0, ["m1", "m2"]);
    assert_eq!(app.listed_ids("?limit=2&offset=4").await.0, ["m4", "m6"]);
    assert_eq!(app.listed_ids("?limit=100&offset=6").await, (vec![], 6));
    assert_eq!(
        app.listed_ids("?to=%2B14155550100&limit=1&offset=2").await,
        (vec!["m4".into()], 3)
    );
}

async fn messages_returns_422_for_each_bad_parameter(store: Store) {
    let app = spawn_app(store).await;
    let cases = [
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=101", "limit", "less_than_equal"),
        ("limit=abc", "limit", "int_parsing"),
        ("offset=-1", "offset", "greater_than_equal"),
        ("offset=1.5", "offset", "int_parsing"),
        ("from=919876543210", "from", "string_pattern_mismatch"),
        ("to=%2B1-415", "to", "string_pattern_mismatch"),
        ("since=yesterday", "since", "datetime_parsing"),
        (
            "since=2025-01-15T10:00:00%2B01:00",
            "since",
            "datetime_parsing",
        ),
    ];
    for (query, param, kind) in cases {
        let (status, body) = app.get_json(&format!("/messages?{query}")).await;
        assert_eq!(status, 422, "{query}");
        assert_eq!(
            validation_errors(&body),
            vec![(vec!["query".to_owned(), param.to_owned()], kind.to_owned())],
            "{query}"
        );
    }
    let (status, body): (u16, Value) = app.get_json("/messages?limit=0&offset=-1").await;
    assert_eq!(status, 422);
    assert_eq!(
        validation_errors(&body).len(),
        2,
        "every bad parameter is listed"
    );
}

/// Follows `next_cursor` from the first page to the last, returning the ids in page order.
async fn follow_cursors(app: &TestApp, filters: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut query = format!("/messages?limit={limit}{filters}");
    loop {
        let (status, body) = app.get_json(&query).await;
        assert_eq!(status, 200, "{query}: {body}");
        pages.push(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["message_id"].as_str().unwrap().to_owned())
                .collect(),
        );
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("/messages?limit={limit}{filters}&cursor={cursor}"),
            None => return pages,
        }
    }
}

async fn next_cursor_walks_every_row_once_in_order_and_is_null_on_the_last_page(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    assert_eq!(
        follow_cursors(&app, "", 2).await,
        [vec!["m5", "m1"], vec!["m2", "m3"], vec!["m4", "m6"]]
    );
    assert_eq!(
        follow_cursors(&app, "", 6).await,
        [vec!["m5", "m1", "m2", "m3", "m4", "m6"]]
    );
    assert_eq!(
        follow_cursors(&app, "&to=%2B14155550100", 1).await,
        [vec!["m1"], vec!["m3"], vec!["m4"]]
    );
    // A page that is exactly full at the end says there is nothing after it.
    let (_, body) = app.get_json("/messages?limit=3&offset=3").await;
    assert_eq!(body["next_cursor"], Value::Null);
}

async fn an_offset_page_also_offers_a_cursor_for_the_rest(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    let (_, body) = app.get_json("/messages?limit=2&offset=2").await;
    let cursor = body["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get_json(&format!("/messages?limit=2&cursor={cursor}"))
        .await;
    let ids: Vec<&str> = next["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m4", "m6"]);
    assert_eq!(next["total"], 6, "total still counts every match");
}

async fn a_tampered_stale_or_misused_cursor_is_a_422(store: Store) {
    let app = spawn_app(store).await;
    seed(&app).await;
    let (_, body) = app.get_json("/messages?limit=2&from=%2B919876543210").await;
    assert_eq!(
        body["next_cursor"],
        Value::Null,
        "two rows fill the page exactly"
    );
    let (_, body) = app.get_json("/messages?limit=1&from=%2B919876543210").await;
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        (format!("from=%2B919876543210&cursor={tampered}"), "altered"),
        (format!("cursor={cursor}"), "used without its filter"),
        (
            format!("from=%2B14155550100&cursor={cursor}"),
            "used with another filter",
        ),
        (
            format!("from=%2B919876543210&cursor={cursor}&offset=1"),
            "combined with an offset",
        ),
        ("cursor=not-a-cursor".to_owned(), "garbage"),
    ];
    for (query, why) in cases {
        let (status, body) = app.get_json(&format!("/messages?{query}")).await;
        assert_eq!(status, 422, "{why}");
        assert_eq!(
            validation_errors(&body),
            vec![(
                vec!["query".to_owned(), "cursor".to_owned()],
                "value_error".to_owned()
            )],
            "{why}"
        );
    }
    // A cursor from a service with another secret is stale.
    let other = crate::helpers::spawn_app_with(store, &[("WEBHOOK_SECRET", "rotated")]).await;
    let (status, _) = other
        .get_json(&format!("/messages?from=%2B919876543210&cursor={cursor}"))
        .await;
    assert_eq!(status, 422);
}
