//! Inputs that broke a check of the request-body path, found by the fuzzer or the property
//! tests, replayed by `cargo test` through the same checks the fuzz target runs
//! (`fuzz/checks/request_body.rs`); and the fuzzer's seeds, so those checks stay true.

#[allow(dead_code)]
#[path = "api/binary.rs"]
mod binary;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "api/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "api/store.rs"]
mod store;

#[path = "../fuzz/checks/request_body.rs"]
mod checks;

use std::path::Path;

use store::{Store, store_tests};

store_tests! {
    async a_twenty_digit_fraction_is_answered_over_http,
}

/// A body whose `ts` has a 20-digit fraction: the digits overflow an i64 while being checked.
const TWENTY_DIGIT_FRACTION: &[u8] =
    br#"{"message_id":"m1","from":"+1","to":"+2","ts":"2025-01-15T10:00:00.10000000000000000000Z"}"#;

/// The first crash `fuzz/run` found (in about three seconds): the same overflow, in a longer
/// fraction.
const FIRST_FUZZ_CRASH: &[u8] = br#"{"message_id":"m2","from":"+1","to":"+12345v789012345","ts":"2024-02-29T23:59:59.9999911111111111111111111111111111119Z","text":null,"extra":{"nested":[1,2,{"a":null}]}}"#;

#[test]
fn the_fuzz_seeds_pass_every_check() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut count = 0;
    for entry in std::fs::read_dir(&seeds).expect("fuzz/seeds exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| checks::check(&data));
        assert!(outcome.is_ok(), "seed {} breaks a check", path.display());
        count += 1;
    }
    assert!(count >= 10, "the seeds are there: {count}");
}

#[test]
fn a_signature_header_followed_by_its_body_verifies() {
    let body = b"hello";
    let header = helpers::sign_with(checks::SECRET, body);
    checks::check(&[header.as_bytes(), body].concat());
}

#[test]
fn a_timestamp_fraction_of_twenty_digits_is_checked_without_overflow() {
    checks::check(TWENTY_DIGIT_FRACTION);
    checks::check(FIRST_FUZZ_CRASH);
}

async fn a_twenty_digit_fraction_is_answered_over_http(store: Store) {
    let app = helpers::spawn_app(store).await;
    let posted = app
        .client
        .post(app.url("/webhook"))
        .header("X-Signature", helpers::sign(TWENTY_DIGIT_FRACTION))
        .body(TWENTY_DIGIT_FRACTION)
        .send()
        .await
        .map(|r| r.status().as_u16());
    let listed = app
        .client
        .get(app.url("/messages?since=2025-01-15T10:00:00.10000000000000000000Z"))
        .send()
        .await
        .map(|r| r.status().as_u16());

    assert!(matches!(posted, Ok(200)), "{posted:?}");
    assert!(matches!(listed, Ok(200)), "{listed:?}");
}
