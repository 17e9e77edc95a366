//! Property tests for everything that reads bytes from strangers: the payload validator, the
//! signature check, the timestamp parser and the query parser, and, over HTTP, the whole app:
//! no input may panic, valid inputs are accepted, invalid ones are rejected with the right
//! location and type, and no request is ever answered with a 5xx.
//!
//! Case counts are moderate so the suite stays quick; raise them with `PROPTEST_CASES=N`.

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

#[allow(
    dead_code,
    reason = "only the verifier is used here; the fuzz target runs the checks"
)]
#[path = "../fuzz/checks/request_body.rs"]
mod checks;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use webhook_processor::domain::message::MAX_TEXT_CHARS;
use webhook_processor::domain::timestamp::format_micros;
use webhook_processor::domain::{FieldError, MessageQuery, NewMessage, Timestamp};
use webhook_processor::signing::decode_hex_signature as decode_signature;

use checks::verifier;
use store::{Store, store_tests};

/// Cases for the pure functions; the HTTP properties run fewer.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn error_pairs(errors: &[FieldError]) -> Vec<(Vec<&'static str>, &'static str)> {
    errors.iter().map(|e| (e.loc.0.clone(), e.kind)).collect()
}

// ---------------------------------------------------------------------------------------------
// Generators

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A valid contract timestamp: any calendar date in years 0000–9999, any time, and no
/// fraction or one of 1 to 12 digits.
fn valid_timestamp() -> impl Strategy<Value = String> {
    (0u32..=9999, 1u32..=12, 0u32..24, 0u32..60, 0u32..60)
        .prop_flat_map(|(year, month, hour, minute, second)| {
            (
                Just((year, month, hour, minute, second)),
                1..=days_in_month(year, month),
                prop::option::of("[0-9]{1,12}"),
            )
        })
        .prop_map(|((year, month, hour, minute, second), day, fraction)| {
            let fraction = fraction.map_or(String::new(), |f| format!(".{f}"));
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
        })
}

/// The canonical form `format_micros` writes for a valid timestamp: six fraction digits,
/// truncated or padded.
fn canonical(ts: &str) -> String {
    let (whole, rest) = ts.split_at(19);
    let fraction = rest.trim_end_matches('Z').trim_start_matches('.');
    let mut micros: String = fraction.chars().take(6).collect();
    while micros.len() < 6 {
        micros.push('0');
    }
    format!("{whole}.{micros}Z")
}

fn e164() -> impl Strategy<Value = String> {
    "[0-9]{1,15}".prop_map(|digits| format!("+{digits}"))
}

/// Any text the contract allows: absent, null, or up to 4096 characters of any Unicode.
#[derive(Clone, Debug)]
enum Text {
    Absent,
    Null,
    Given(String),
}

fn valid_text() -> impl Strategy<Value = Text> {
    prop_oneof![
        Just(Text::Absent),
        Just(Text::Null),
        any::<String>().prop_map(Text::Given),
        Just(Text::Given("é".repeat(MAX_TEXT_CHARS))),
    ]
}

/// A JSON value of bounded size, for unknown fields and wrong types.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value of any JSON type but string.
fn not_a_string() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not a string", |v| !v.is_string())
}

/// The fields of a valid message, and extra unknown fields.
#[derive(Clone, Debug)]
struct ValidMessage {
    message_id: String,
    from: String,
    to: String,
    ts: String,
    text: Text,
    extra: Vec<(String, Value)>,
}

impl ValidMessage {
    fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        for (key, value) in &self.extra {
            object.insert(format!("x_{key}"), value.clone());
        }
        object.insert("message_id".into(), json!(self.message_id));
        object.insert("from".into(), json!(self.from));
        object.insert("to".into(), json!(self.to));
        object.insert("ts".into(), json!(self.ts));
        match &self.text {
            Text::Absent => {}
            Text::Null => {
                object.insert("text".into(), Value::Null);
            }
            Text::Given(text) => {
                object.insert("text".into(), json!(text));
            }
        }
        object
    }
}

fn valid_message() -> impl Strategy<Value = ValidMessage> {
    (
        any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        e164(),
        e164(),
        valid_timestamp(),
        valid_text(),
        prop::collection::vec(("[a-z]{1,6}", json_value()), 0..3),
    )
        .prop_map(|(message_id, from, to, ts, text, extra)| ValidMessage {
            message_id,
            from,
            to,
            ts,
            text,
            extra,
        })
}

/// Strings that break the E.164 rule, each in a different way.
fn bad_msisdn() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("+".to_owned()),
        "[0-9]{1,15}",
        "\\+[0-9]{16,24}",
        ("[0-9]{0,7}", "[^0-9]", "[0-9]{0,7}").prop_map(|(a, c, b)| format!("+{a}{c}{b}")),
        e164().prop_map(|n| format!(" {n}")),
        e164().prop_map(|n| format!("{n}\n")),
    ]
}

/// Strings shaped like a timestamp but wrong in one way each.
fn bad_timestamp() -> impl Strategy<Value = String> {
    let replace_at = |ts: String, at: usize, with: &str| {
        let mut ts = ts;
        ts.replace_range(at..at + with.len(), with);
        ts
    };
    prop_oneof![
        valid_timestamp().prop_map(|ts| ts.trim_end_matches('Z').to_owned()),
        valid_timestamp().prop_map(|ts| format!("{}+00:00", ts.trim_end_matches('Z'))),
        valid_timestamp().prop_map(|ts| ts.replace('Z', "z")),
        valid_timestamp().prop_map(|ts| ts.replace('T', " ")),
        (valid_timestamp(), 13u32..100).prop_map(move |(ts, m)| replace_at(
            ts,
            5,
            &format!("{m:02}")
        )),
        (valid_timestamp(), 24u32..100).prop_map(move |(ts, h)| replace_at(
            ts,
            11,
            &format!("{h:02}")
        )),
        (valid_timestamp(), 60u32..100).prop_map(move |(ts, s)| replace_at(
            ts,
            17,
            &format!("{s:02}")
        )),
        valid_timestamp().prop_map(move |ts| replace_at(ts, 8, "00")),
        (1u32..=9999)
            .prop_filter("not a leap year", |y| days_in_month(*y, 2) == 28)
            .prop_map(|y| format!("{y:04}-02-29T00:00:00Z")),
        valid_timestamp().prop_map(|ts| format!("{}.Z", &ts[..19])),
        valid_timestamp().prop_map(|ts| ts[..10].to_owned()),
        Just(String::new()),
    ]
}

// ---------------------------------------------------------------------------------------------
// The payload validator

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn the_validator_never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = NewMessage::from_json(&body);
    }

    #[test]
    fn the_validator_never_panics_on_any_json(value in json_value()) {
        let _ = NewMessage::from_json(value.to_string().as_bytes());
    }

    #[test]
    fn the_validator_accepts_every_valid_message(message in valid_message()) {
        let body = Value::Object(message.to_json()).to_string();

        let parsed = NewMessage::from_json(body.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{body}: {e:?}")))?;

        prop_assert_eq!(&parsed.message_id, &message.message_id);
        prop_assert_eq!(&parsed.from, &message.from);
        prop_assert_eq!(&parsed.to, &message.to);
        prop_assert_eq!(parsed.ts.as_str(), message.ts.as_str(), "ts is kept as sent");
        let expected_text = match &message.text {
            Text::Given(text) => Some(text.clone()),
            Text::Absent | Text::Null => None,
        };
        prop_assert_eq!(parsed.text, expected_text);
    }

    #[test]
    fn a_missing_field_is_reported_as_missing_at_its_location(
        message in valid_message(),
        field in prop::sample::select(vec!["message_id", "from", "to", "ts"]),
    ) {
        let mut object = message.to_json();
        object.remove(field);
        let errors = NewMessage::from_json(Value::Object(object).to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(error_pairs(&errors), vec![(vec!["body", field], "missing")]);
    }

    #[test]
    fn a_field_of_the_wrong_type_is_reported_as_string_type(
        message in valid_message(),
        field in prop::sample::select(vec!["message_id", "from", "to", "ts", "text"]),
        value in not_a_string(),
    ) {
        prop_assume!(!(field == "text" && value.is_null()), "null text is allowed");
        let mut object = message.to_json();
        object.insert(field.to_owned(), value);
        let errors = NewMessage::from_json(Value::Object(object).to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(error_pairs(&errors), vec![(vec!["body", field], "string_type")]);
    }

    #[test]
    fn a_bad_value_is_reported_with_its_field_and_type(
        message in valid_message(),
        bad in prop_oneof![
            Just(("message_id", String::new(), "string_too_short")),
            bad_msisdn().prop_map(|v| ("from", v, "string_pattern_mismatch")),
            bad_msisdn().prop_map(|v| ("to", v, "string_pattern_mismatch")),
            bad_timestamp().prop_map(|v| ("ts", v, "datetime_parsing")),
            (MAX_TEXT_CHARS + 1..MAX_TEXT_CHARS + 64)
                .prop_map(|n| ("text", "ü".repeat(n), "string_too_long")),
        ],
    ) {
        let (field, value, kind) = bad;
        let mut object = message.to_json();
        object.insert(field.to_owned(), json!(value));
        let errors = NewMessage::from_json(Value::Object(object).to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(error_pairs(&errors), vec![(vec!["body", field], kind)], "{:?}", value);
    }

    #[test]
    fn a_body_that_is_not_one_object_is_rejected_at_the_body(value in json_value()) {
        prop_assume!(!value.is_object());
        let errors = NewMessage::from_json(value.to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(error_pairs(&errors), vec![(vec!["body"], "model_attributes_type")]);
    }

    #[test]
    fn a_duplicated_known_key_is_rejected_as_invalid_json(
        message in valid_message(),
        field in prop::sample::select(vec!["message_id", "from", "to", "ts", "text"]),
    ) {
        let object = message.to_json();
        let body = Value::Object(object).to_string();
        let duplicated = format!("{{\"{field}\":\"x\",{}", &body[1..]);
        prop_assume!(duplicated.matches(&format!("\"{field}\":")).count() >= 2);
        let errors = NewMessage::from_json(duplicated.as_bytes()).unwrap_err();
        prop_assert_eq!(error_pairs(&errors), vec![(vec!["body"], "json_invalid")]);
    }
}

/// The cursor codec the query parser opens `cursor` parameters with.
fn cursors() -> webhook_processor::signing::cursor::CursorCodec {
    webhook_processor::signing::cursor::CursorCodec::new(b"property-tests")
}

// ---------------------------------------------------------------------------------------------
// The signature check

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn a_signature_made_with_the_secret_verifies_in_either_case(
        secret in ".{1,64}",
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let verifier = verifier(&secret);
        let signature = verifier.sign(&body);
        prop_assert_eq!(&signature, &helpers::sign_with(&secret, &body));
        for case in [signature.to_lowercase(), signature.to_uppercase()] {
            let tag = decode_signature(case.as_bytes()).expect("64 hex digits decode");
            prop_assert!(verifier.verify(&body, &tag));
        }
    }

    #[test]
    fn any_other_tag_fails(
        secret in ".{1,64}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        other in prop::array::uniform32(any::<u8>()),
        flip in 0usize..256,
    ) {
        let verifier = verifier(&secret);
        let right = decode_signature(verifier.sign(&body).as_bytes()).unwrap();
        prop_assume!(other != right);
        prop_assert!(!verifier.verify(&body, &other), "a random tag");
        let mut one_bit_off = right;
        one_bit_off[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(!verifier.verify(&body, &one_bit_off), "one bit flipped");
    }

    #[test]
    fn another_secret_or_another_body_fails(
        secret in ".{1,32}",
        other_secret in ".{1,32}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        other_body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let tag = decode_signature(verifier(&secret).sign(&body).as_bytes()).unwrap();
        if other_secret != secret {
            prop_assert!(!verifier(&other_secret).verify(&body, &tag));
        }
        if other_body != body {
            prop_assert!(!verifier(&secret).verify(&other_body, &tag));
        }
    }

    #[test]
    fn decode_accepts_exactly_64_hex_digits_and_reads_them(bytes in prop::array::uniform32(any::<u8>()), upper in any::<bool>()) {
        let text = if upper { hex(&bytes).to_uppercase() } else { hex(&bytes) };
        prop_assert_eq!(decode_signature(text.as_bytes()), Some(bytes));
    }

    #[test]
    fn decode_refuses_anything_else(
        input in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..130),
            "[0-9a-fA-F]{0,130}".prop_map(String::into_bytes),
            ("[0-9a-f]{64}", 0usize..64, any::<u8>()).prop_map(|(h, at, b)| {
                let mut bytes = h.into_bytes();
                bytes[at] = b;
                bytes
            }),
        ],
    ) {
        let is_64_hex = input.len() == 64 && input.iter().all(u8::is_ascii_hexdigit);
        let decoded = decode_signature(&input);
        prop_assert_eq!(decoded.is_some(), is_64_hex, "{:?}", String::from_utf8_lossy(&input));
        if let Some(decoded) = decoded {
            prop_assert_eq!(hex(&decoded), String::from_utf8(input).unwrap().to_lowercase());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds.
const FIRST_MICROS: i64 = -62_167_219_200_000_000;
const LAST_MICROS: i64 = 253_402_300_799_999_999;

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn formatting_an_instant_and_parsing_it_back_is_the_same_instant(micros in FIRST_MICROS..=LAST_MICROS) {
        let text = format_micros(micros);
        let parsed = Timestamp::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed.micros(), micros);
        prop_assert_eq!(parsed.as_str(), text.as_str());
    }

    #[test]
    fn parsing_a_valid_timestamp_and_formatting_it_gives_its_canonical_form(ts in valid_timestamp()) {
        let parsed = Timestamp::parse(&ts).map_err(|e| TestCaseError::fail(format!("{ts}: {e}")))?;
        prop_assert_eq!(format_micros(parsed.micros()), canonical(&ts));
    }

    #[test]
    fn instants_order_like_their_canonical_text(a in valid_timestamp(), b in valid_timestamp()) {
        let (pa, pb) = (Timestamp::parse(&a).unwrap(), Timestamp::parse(&b).unwrap());
        prop_assert_eq!(pa.micros().cmp(&pb.micros()), canonical(&a).cmp(&canonical(&b)));
    }

    #[test]
    fn malformed_timestamps_are_refused(ts in bad_timestamp()) {
        prop_assert!(Timestamp::parse(&ts).is_err(), "{}", ts);
    }

    #[test]
    fn the_parser_never_panics_on_any_text(text in ".{0,40}") {
        let _ = Timestamp::parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_long_fractions(
        ts in valid_timestamp(),
        digits in "[0-9]{1,40}",
    ) {
        let text = format!("{}.{digits}Z", &ts[..19]);
        let parsed = Timestamp::parse(&text);
        prop_assert!(parsed.is_ok(), "{}", text);
    }
}

// ---------------------------------------------------------------------------------------------
// Query parsing

fn query_pair() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            prop::sample::select(vec![
                "limit", "offset", "from", "to", "since", "until", "q", "cursor"
            ])
            .prop_map(str::to_owned),
            ".{0,8}",
        ],
        prop_oneof![
            ".{0,24}",
            (-1000i64..1000).prop_map(|n| n.to_string()),
            e164(),
            e164().prop_map(|n| n.replacen('+', " ", 1)),
            valid_timestamp(),
            "[0-9]{18,30}",
        ],
    )
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_pairs_parse_or_are_refused_with_query_locations(pairs in prop::collection::vec(query_pair(), 0..8)) {
        let result = MessageQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), &cursors());
        match result {
            Ok(query) => {
                prop_assert!((1..=100).contains(&query.limit));
                prop_assert!(query.filter.q.as_deref() != Some(""));
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for error in &errors {
                    prop_assert_eq!(error.loc.0[0], "query");
                    prop_assert_eq!(error.loc.0.len(), 2);
                }
            }
        }
    }

    #[test]
    fn limit_is_accepted_exactly_from_1_to_100(n in any::<i64>()) {
        let text = n.to_string();
        let result = MessageQuery::from_pairs([("limit", text.as_str())], &cursors());
        match result {
            Ok(query) => prop_assert!((1..=100).contains(&n) && i64::from(query.limit) == n),
            Err(errors) => {
                let kind = if n < 1 { "greater_than_equal" } else { "less_than_equal" };
                prop_assert!(!(1..=100).contains(&n));
                prop_assert_eq!(error_pairs(&errors), vec![(vec!["query", "limit"], kind)]);
            }
        }
    }

    #[test]
    fn the_last_repeated_value_wins(first in query_pair(), value in ".{0,12}") {
        let name = first.0.clone();
        let repeated = MessageQuery::from_pairs([(name.as_str(), first.1.as_str()), (name.as_str(), value.as_str())], &cursors());
        let last_only = MessageQuery::from_pairs([(name.as_str(), value.as_str())], &cursors());
        prop_assert_eq!(repeated, last_only);
    }

    #[test]
    fn a_number_filter_is_accepted_exactly_when_it_is_e164(
        name in prop::sample::select(vec!["from", "to"]),
        value in prop_oneof![e164(), bad_msisdn(), e164().prop_map(|n| n.replacen('+', " ", 1))],
    ) {
        let result = MessageQuery::from_pairs([(name, value.as_str())], &cursors());
        let normalized = value.strip_prefix(' ').map_or(value.clone(), |rest| format!("+{rest}"));
        let valid = normalized.len() >= 2
            && normalized.len() <= 16
            && normalized.starts_with('+')
            && normalized[1..].bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(result.is_ok(), valid, "{:?}", value);
    }
}

// ---------------------------------------------------------------------------------------------
// The whole app over HTTP

/// A body to post: random bytes, or a message with random damage, so both the signature
/// check and the validator see surprising input.
fn http_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        valid_message().prop_map(|m| Value::Object(m.to_json()).to_string().into_bytes()),
        (
            valid_message(),
            prop::sample::select(vec!["message_id", "from", "to", "ts", "text"]),
            json_value()
        )
            .prop_map(|(m, field, value)| {
                let mut object = m.to_json();
                object.insert(field.to_owned(), value);
                Value::Object(object).to_string().into_bytes()
            }),
        (valid_message(), bad_timestamp()).prop_map(|(m, ts)| {
            let mut object = m.to_json();
            object.insert("ts".into(), json!(ts));
            Value::Object(object).to_string().into_bytes()
        }),
    ]
}

/// A raw query string: known and unknown names, any values, percent-escapes (also of bytes
/// that are not UTF-8), and stray `&`, `=`, `+`, `%`.
fn query_string() -> impl Strategy<Value = String> {
    let escaped = prop::collection::vec(any::<u8>(), 0..6).prop_map(|bytes| {
        bytes
            .iter()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    });
    let part = prop_oneof![
        "[a-z]{1,6}",
        prop::sample::select(vec![
            "limit", "offset", "from", "to", "since", "until", "q", "cursor"
        ])
        .prop_map(str::to_owned),
        "[0-9]{1,25}",
        "-[0-9]{1,5}",
        e164(),
        valid_timestamp(),
        escaped,
        "[&=+%;#?/ ]{1,3}",
        "[ -~]{0,10}",
    ];
    prop::collection::vec(part, 0..10).prop_map(|parts| parts.concat())
}

store_tests! {
    fn any_webhook_body_signed_or_not_is_answered_2xx_or_4xx_never_5xx,
    fn any_query_string_on_messages_is_answered_2xx_or_4xx_never_5xx,
}

fn any_webhook_body_signed_or_not_is_answered_2xx_or_4xx_never_5xx(store: Store) {
    let system = actix_web::rt::System::new();
    let app = system.block_on(helpers::spawn_app(store));
    proptest!(cases(48), |(body in http_body(), signed in any::<bool>())| {
        let signature = signed.then(|| helpers::sign(&body));
        let status = system.block_on(async {
            app.post_raw(body.clone(), signature.as_deref()).await.status().as_u16()
        });
        prop_assert!((200..500).contains(&status), "{} for {:?}", status, String::from_utf8_lossy(&body));
        if !signed {
            prop_assert_eq!(status, 401);
        }
    });
}

fn any_query_string_on_messages_is_answered_2xx_or_4xx_never_5xx(store: Store) {
    let system = actix_web::rt::System::new();
    let app = system.block_on(helpers::spawn_app(store));
    proptest!(cases(64), |(query in query_string())| {
        let url = format!("{}/messages?{query}", app.address);
        let status = system.block_on(async {
            app.client.get(&url).send().await.map(|r| r.status().as_u16())
        });
        let status = status.map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        prop_assert!(status == 200 || status == 422, "{} for {}", status, url);
    });
}
