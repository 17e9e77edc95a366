//! The inbound message: parsed from the verified body bytes and validated field by field.
//!
//! [`NewMessage::from_json`] is the only way to build one from outside data, so every stored row
//! has passed the same checks: a non-empty `message_id`, E.164 `from`/`to`, an RFC 3339 UTC `ts`,
//! and an optional `text` of at most [`MAX_TEXT_CHARS`] characters. Unknown fields are ignored.

use serde::Deserialize;
use serde_json::Value;

use super::msisdn::{MSISDN_PATTERN, is_e164};
use super::timestamp::Timestamp;
use super::validation::{FieldError, Location};

/// The longest `text` accepted, in Unicode code points.
pub const MAX_TEXT_CHARS: usize = 4096;

/// A message that passed validation and may be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub ts: Timestamp,
    pub text: Option<String>,
}

/// The body's fields before validation. `Some(Value::Null)` is an explicit `null`, `None` an
/// absent field, so both can be told apart in the errors.
#[derive(Deserialize)]
struct RawMessage {
    #[serde(default, deserialize_with = "present")]
    message_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    from: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    to: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    ts: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    text: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl NewMessage {
    /// Parses and validates a request body, listing every problem found.
    pub fn from_json(body: &[u8]) -> Result<Self, Vec<FieldError>> {
        Self::validate(parse_object(body)?)
    }

    /// Validates the five fields read from elsewhere (an older database), with the same rules
    /// as a request body; `Value::Null` stands for SQL `NULL`.
    pub fn from_fields(
        message_id: Value,
        from: Value,
        to: Value,
        ts: Value,
        text: Value,
    ) -> Result<Self, Vec<FieldError>> {
        Self::validate(RawMessage {
            message_id: Some(message_id),
            from: Some(from),
            to: Some(to),
            ts: Some(ts),
            text: Some(text),
        })
    }

    fn validate(raw: RawMessage) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let message_id = required_string(raw.message_id, "message_id", &mut errors)
            .and_then(|id| non_empty(id, "message_id", &mut errors));
        let from = required_string(raw.from, "from", &mut errors)
            .and_then(|v| msisdn(v, "from", &mut errors));
        let to =
            required_string(raw.to, "to", &mut errors).and_then(|v| msisdn(v, "to", &mut errors));
        let ts = required_string(raw.ts, "ts", &mut errors).and_then(|v| {
            Timestamp::parse(&v)
                .map_err(|e| {
                    errors.push(FieldError::new(
                        Location::body_field("ts"),
                        "datetime_parsing",
                        format!("Input should be a valid datetime, {e}"),
                    ))
                })
                .ok()
        });
        let text = optional_text(raw.text, &mut errors);

        match (message_id, from, to, ts, text) {
            (Some(message_id), Some(from), Some(to), Some(ts), Some(text)) if errors.is_empty() => {
                Ok(Self {
                    message_id,
                    from,
                    to,
                    ts,
                    text,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Reads the body as one JSON object. Duplicate keys are rejected rather than resolved, so no
/// two parsers can disagree about what was signed.
fn parse_object(body: &[u8]) -> Result<RawMessage, Vec<FieldError>> {
    let json_invalid = |e: serde_json::Error| {
        vec![FieldError::new(
            Location::body(),
            "json_invalid",
            format!("JSON decode error: {e}"),
        )]
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return serde_json::from_slice(body).map_err(json_invalid);
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Ok(_) => Err(vec![FieldError::new(
            Location::body(),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )]),
        Err(e) => Err(json_invalid(e)),
    }
}

fn required_string(
    value: Option<Value>,
    field: &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match value {
        None => {
            errors.push(FieldError::missing(Location::body_field(field)));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(FieldError::not_a_string(Location::body_field(field)));
            None
        }
    }
}

fn non_empty(value: String, field: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
    if value.is_empty() {
        errors.push(FieldError::new(
            Location::body_field(field),
            "string_too_short",
            "String should have at least 1 character",
        ));
        return None;
    }
    Some(value)
}

fn msisdn(value: String, field: &'static str, errors: &mut Vec<FieldError>) -> Option<String> {
    if !is_e164(&value) {
        errors.push(FieldError::new(
            Location::body_field(field),
            "string_pattern_mismatch",
            format!("String should match pattern '{MSISDN_PATTERN}'"),
        ));
        return None;
    }
    Some(value)
}

/// `Some(None)` for an absent or null text, `Some(Some(..))` for a valid one, `None` on error.
fn optional_text(value: Option<Value>, errors: &mut Vec<FieldError>) -> Option<Option<String>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_TEXT_CHARS => Some(Some(s)),
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                Location::body_field("text"),
                "string_too_long",
                format!("String should have at most {MAX_TEXT_CHARS} characters"),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::not_a_string(Location::body_field("text")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"message_id": "m1", "from": "+919876543210", "to": "+14155550100",
               "ts": "2025-01-15T10:00:00Z", "text": "Hello"})
    }

    fn parse(value: &Value) -> Result<NewMessage, Vec<FieldError>> {
        NewMessage::from_json(value.to_string().as_bytes())
    }

    fn error_fields(value: &Value) -> Vec<(Vec<&'static str>, &'static str)> {
        parse(value)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.loc.0, e.kind))
            .collect()
    }

    #[test]
    fn accepts_the_contract_example() {
        let message = parse(&valid()).unwrap();
        assert_eq!(message.message_id, "m1");
        assert_eq!(message.ts.as_str(), "2025-01-15T10:00:00Z");
        assert_eq!(message.text.as_deref(), Some("Hello"));
    }

    #[test]
    fn text_may_be_null_or_absent_and_extra_fields_are_ignored() {
        let mut body = valid();
        body["text"] = Value::Null;
        body["extra"] = json!({"nested": [1, 2]});
        assert_eq!(parse(&body).unwrap().text, None);
        body.as_object_mut().unwrap().remove("text");
        assert_eq!(parse(&body).unwrap().text, None);
    }

    #[test]
    fn text_limit_counts_code_points_not_bytes() {
        let mut body = valid();
        body["text"] = json!("é".repeat(MAX_TEXT_CHARS));
        assert!(parse(&body).is_ok(), "4096 two-byte characters are allowed");
        body["text"] = json!("a".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(
            error_fields(&body),
            vec![(vec!["body", "text"], "string_too_long")]
        );
    }

    #[test]
    fn lists_every_problem_at_once() {
        let body = json!({"message_id": "", "from": "123", "to": 5, "ts": "yesterday", "text": 1});
        assert_eq!(
            error_fields(&body),
            vec![
                (vec!["body", "message_id"], "string_too_short"),
                (vec!["body", "from"], "string_pattern_mismatch"),
                (vec!["body", "to"], "string_type"),
                (vec!["body", "ts"], "datetime_parsing"),
                (vec!["body", "text"], "string_type"),
            ]
        );
    }

    #[test]
    fn missing_and_null_required_fields_are_reported_differently() {
        let body = json!({"message_id": null});
        assert_eq!(
            error_fields(&body),
            vec![
                (vec!["body", "message_id"], "string_type"),
                (vec!["body", "from"], "missing"),
                (vec!["body", "to"], "missing"),
                (vec!["body", "ts"], "missing"),
            ]
        );
    }

    #[test]
    fn rejects_bodies_that_are_not_json_objects() {
        let cases: [(&[u8], &str, &str); 5] = [
            (b"", "json_invalid", "empty body"),
            (b"{", "json_invalid", "truncated"),
            (b"[1,2]", "model_attributes_type", "array"),
            (b"\"m1\"", "model_attributes_type", "string"),
            (
                br#"{"message_id":"a","message_id":"b"}"#,
                "json_invalid",
                "duplicate key",
            ),
        ];
        for (body, kind, why) in cases {
            let errors = NewMessage::from_json(body).unwrap_err();
            assert_eq!(errors.len(), 1, "{why}");
            assert_eq!(errors[0].kind, kind, "{why}");
            assert_eq!(errors[0].loc, Location::body(), "{why}");
        }
    }
}
