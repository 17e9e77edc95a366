//! What a security review found, each closed: searches that are always answered correctly and
//! cost a bounded time, reads with a deadline, and responses holding messages kept out of caches.

use crate::helpers::{message, spawn_app, validation_errors};

#[actix_web::test]
async fn a_search_holding_a_nul_finds_the_text_holding_it_and_is_never_a_5xx() {
    let app = spawn_app().await;
    for (id, text) in [("nul", "abc\u{0}def"), ("plain", "abcdef")] {
        let response = app
            .post_signed(&message(id, "+1", "+2", "2025-01-15T10:00:00Z", Some(text)))
            .await;
        assert_eq!(response.status().as_u16(), 200, "{id}");
    }
    for (q, want) in [
        ("abc%00", vec!["nul"]),
        ("C%00D", vec!["nul"]),
        ("abc%00xyz", vec![]),
        ("%00", vec!["nul"]),
        ("abcdef", vec!["plain"]),
    ] {
        let (status, body) = app.get_json(&format!("/messages?q={q}")).await;
        assert_eq!(status, 200, "q={q}: {body}");
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, want, "q={q}");
        assert_eq!(body["total"], want.len(), "q={q}");
    }
}

#[actix_web::test]
async fn a_search_longer_than_any_text_is_a_422_and_one_as_long_is_searched() {
    let app = spawn_app().await;
    let longest = "x".repeat(4096);
    let stored = message("long", "+1", "+2", "2025-01-15T10:00:00Z", Some(&longest));
    assert_eq!(app.post_signed(&stored).await.status().as_u16(), 200);

    let (status, body) = app.get_json(&format!("/messages?q={longest}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1);
    for path in ["/messages", "/messages/export"] {
        let (status, body) = app.get_json(&format!("{path}?q={longest}x")).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(
            validation_errors(&body),
            [(
                vec!["query".to_owned(), "q".to_owned()],
                "string_too_long".to_owned()
            )],
            "{path}"
        );
    }
}
