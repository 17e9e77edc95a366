//! What must hold for any bytes that reach `POST /webhook`: the signature header is decoded
//! only from 64 hex digits, a signature verifies exactly when it is the body's HMAC, and the
//! validator either builds a message that keeps every contract rule or lists problems in the
//! contract's shape. Any panic, here or in the code under test, is a finding.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/request_body.rs`) and the regression tests
//! (`tests/fuzz_regressions.rs`), so a crash found by the fuzzer is replayed by `cargo test`;
//! the property tests (`tests/properties.rs`) sign and verify with its [`Verifier`].

use serde_json::Value;
use webhook_processor::domain::message::MAX_TEXT_CHARS;
use webhook_processor::domain::timestamp::format_micros;
use webhook_processor::domain::{NewMessage, Timestamp};
use webhook_processor::signing::{KeyRing, decode_hex_signature as decode_signature, encode_hex};

/// The error types a body can be rejected with, by location.
const BODY_TYPES: &[&str] = &["json_invalid", "model_attributes_type"];
const FIELD_TYPES: &[&str] = &[
    "missing",
    "string_type",
    "string_too_short",
    "string_pattern_mismatch",
    "datetime_parsing",
    "string_too_long",
];
const FIELDS: &[&str] = &["message_id", "from", "to", "ts", "text"];

/// The secret the checks sign with.
pub const SECRET: &str = "fuzz-secret";

/// The keyed HMAC as the `X-Signature` check uses it.
pub struct Verifier(KeyRing);

impl Verifier {
    /// The `X-Signature` of `body`: 64 lower-case hex digits.
    pub fn sign(&self, body: &[u8]) -> String {
        encode_hex(&self.0.sign(&[body]))
    }

    /// Whether `tag` is the HMAC of `body`.
    pub fn verify(&self, body: &[u8], tag: &[u8; 32]) -> bool {
        self.0.verify(&[body], tag).is_some()
    }
}

/// The verifier for `secret`.
pub fn verifier(secret: &str) -> Verifier {
    Verifier(KeyRing::new(secret.as_bytes(), None))
}

fn is_e164(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or("");
    (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Runs every check on `data`; panics on the first broken rule.
pub fn check(data: &[u8]) {
    check_signature_header(data);
    check_signature_of(data);
    check_validator(data);
}

/// `decode_signature` accepts exactly 64 hex digits and reads them.
fn check_signature_header(data: &[u8]) {
    let decoded = decode_signature(data);
    let is_64_hex = data.len() == 64 && data.iter().all(u8::is_ascii_hexdigit);
    assert_eq!(decoded.is_some(), is_64_hex, "decode_signature({data:?})");
    if let Some(bytes) = decoded {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex.as_bytes(), data.to_ascii_lowercase(), "decoded digits");
    }
}

/// The first 64 bytes taken as a signature header for the rest: it verifies only when it is
/// the rest's own signature; and every body verifies with its own signature.
fn check_signature_of(data: &[u8]) {
    let verifier = verifier(SECRET);
    let (header, body) = data.split_at(data.len().min(64));
    let own = decode_signature(verifier.sign(body).as_bytes()).expect("sign() writes 64 hex");
    assert!(
        verifier.verify(body, &own),
        "a body verifies with its own signature"
    );
    if let Some(tag) = decode_signature(header) {
        assert_eq!(
            verifier.verify(body, &tag),
            tag == own,
            "verify({header:?})"
        );
    }
}

/// The validator never panics, keeps every rule when it accepts, and reports in the
/// contract's shape when it refuses.
fn check_validator(data: &[u8]) {
    match NewMessage::from_json(data) {
        Ok(message) => {
            assert!(!message.message_id.is_empty(), "message_id is not empty");
            assert!(is_e164(&message.from), "from {:?}", message.from);
            assert!(is_e164(&message.to), "to {:?}", message.to);
            if let Some(text) = &message.text {
                assert!(text.chars().count() <= MAX_TEXT_CHARS, "text length");
            }
            let reparsed = Timestamp::parse(message.ts.as_str()).expect("ts parses again");
            assert_eq!(reparsed, message.ts, "ts parses to the same instant");
            let canonical = format_micros(message.ts.micros());
            let again = Timestamp::parse(&canonical).expect("the canonical form parses");
            assert_eq!(again.micros(), message.ts.micros(), "{canonical}");

            // What was accepted is what a plain JSON reader sees in the same bytes. (A reader
            // may refuse what the validator skips inside unknown fields, such as numbers out
            // of range or nesting past its depth limit; unknown fields are ignored.)
            if let Ok(value) = serde_json::from_slice::<Value>(data) {
                assert_eq!(value["message_id"], message.message_id.as_str());
                assert_eq!(value["from"], message.from.as_str());
                assert_eq!(value["to"], message.to.as_str());
                assert_eq!(value["ts"], message.ts.as_str());
                assert_eq!(
                    value.get("text").and_then(Value::as_str),
                    message.text.as_deref()
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal lists its problems");
            for error in &errors {
                match error.loc.0.as_slice() {
                    ["body"] => {
                        assert_eq!(errors.len(), 1, "a whole-body error comes alone");
                        assert!(BODY_TYPES.contains(&error.kind), "{error:?}");
                    }
                    ["body", field] => {
                        assert!(FIELDS.contains(field), "{error:?}");
                        assert!(FIELD_TYPES.contains(&error.kind), "{error:?}");
                    }
                    other => panic!("unexpected location {other:?}"),
                }
                assert!(!error.msg.is_empty(), "every error has a message");
            }
        }
    }
}
