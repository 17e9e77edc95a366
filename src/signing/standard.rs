//! Standard Webhooks (<https://www.standardwebhooks.com>): headers `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature` (space-separated `v1,<base64>`
//! entries), signed content `{id}.{timestamp}.{body}`, secrets `whsec_<base64>`.
//!
//! Senders built on Svix send the same three headers named `svix-id`, `svix-timestamp` and
//! `svix-signature` (Svix's own verifier reads either family); they mean exactly the same and
//! are checked by exactly the same rules ([`HEADER_FAMILIES`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{KeyRing, SecretSlot};

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The names one family of senders gives the three headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderNames {
    pub id: &'static str,
    pub timestamp: &'static str,
    pub signature: &'static str,
}

/// The specification's names, then Svix's: a request carrying a signature header of either
/// family is verified with that family's id and timestamp headers (the specification's first,
/// when it carries both).
pub const HEADER_FAMILIES: [HeaderNames; 2] = [
    HeaderNames {
        id: ID_HEADER,
        timestamp: TIMESTAMP_HEADER,
        signature: SIGNATURE_HEADER,
    },
    HeaderNames {
        id: "svix-id",
        timestamp: "svix-timestamp",
        signature: "svix-signature",
    },
];

/// The key bytes of a Standard Webhooks secret: the base64 after an optional `whsec_` prefix.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match BASE64.decode(encoded) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err("must be whsec_ followed by base64".to_owned()),
    }
}

/// The decoded `v1` signatures of a `webhook-signature` header; other versions are skipped.
/// Tags are kept whatever their length: the comparison refuses any that is not 32 bytes.
pub fn v1_signatures(header: &str) -> Vec<Vec<u8>> {
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .collect()
}

/// Which key made one of `signatures` over `{id}.{timestamp}.{body}`, if any.
pub fn verify(
    keys: &KeyRing,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signatures: &[Vec<u8>],
) -> Option<SecretSlot> {
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    let tags: Vec<&[u8]> = signatures.iter().map(Vec::as_slice).collect();
    keys.verify_any(&parts, &tags)
}

/// The `v1,<base64>` signature of `{id}.{timestamp}.{body}` with the current key.
pub fn sign(keys: &KeyRing, id: &str, timestamp: &str, body: &[u8]) -> String {
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    format!("v1,{}", BASE64.encode(keys.sign(&parts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn keys() -> KeyRing {
        KeyRing::new(&decode_secret(SECRET).unwrap(), None)
    }

    #[test]
    fn reproduces_the_specification_test_vector() {
        assert_eq!(sign(&keys(), ID, TIMESTAMP, BODY), EXPECTED);
        let signatures = v1_signatures(EXPECTED);
        assert_eq!(
            verify(&keys(), ID, TIMESTAMP, BODY, &signatures),
            Some(SecretSlot::Current)
        );
    }

    #[test]
    fn the_whsec_prefix_is_optional() {
        assert_eq!(decode_secret(SECRET), decode_secret(&SECRET[6..]));
        assert!(decode_secret("whsec_not base64!").is_err());
        assert!(decode_secret("whsec_").is_err());
    }

    #[test]
    fn any_one_of_several_signatures_may_match() {
        let header = format!("v1,bm9wZQ== v2,xyz {EXPECTED}");
        let signatures = v1_signatures(&header);
        assert_eq!(signatures.len(), 2, "the v2 entry is skipped");
        assert!(verify(&keys(), ID, TIMESTAMP, BODY, &signatures).is_some());
    }

    #[test]
    fn the_right_signature_among_thousands_of_wrong_ones_still_verifies() {
        let header = format!("{} {EXPECTED}", "v1,AAAA ".repeat(10_000));
        let signatures = v1_signatures(&header);
        assert_eq!(signatures.len(), 10_001);
        assert_eq!(
            verify(&keys(), ID, TIMESTAMP, BODY, &signatures),
            Some(SecretSlot::Current)
        );
        assert_eq!(
            verify(&keys(), ID, TIMESTAMP, BODY, &signatures[..10_000]),
            None
        );
    }

    #[test]
    fn short_empty_or_altered_signatures_never_verify() {
        let full = v1_signatures(EXPECTED).remove(0);
        let cases = [
            ("v1,".to_owned(), "empty signature"),
            ("v1,g0hM9SsE".to_owned(), "a prefix of the right signature"),
            (
                format!("v1,{}", BASE64.encode(&full[..31])),
                "31 of 32 bytes",
            ),
            (format!("v1,{}", BASE64.encode(&full[..1])), "one byte"),
            (
                format!("v1,{}", BASE64.encode([&full[..], &[0]].concat())),
                "33 bytes",
            ),
            ("v1,!!!!".to_owned(), "not base64"),
            (EXPECTED.replace("v1,", "v2,"), "another version"),
            (String::new(), "no signature at all"),
        ];
        for (header, why) in cases {
            let signatures = v1_signatures(&header);
            assert_eq!(
                verify(&keys(), ID, TIMESTAMP, BODY, &signatures),
                None,
                "{why}"
            );
        }
        let signatures = v1_signatures(EXPECTED);
        assert_eq!(
            verify(&keys(), "msg_other", TIMESTAMP, BODY, &signatures),
            None,
            "other id"
        );
        assert_eq!(
            verify(&keys(), ID, "1614265331", BODY, &signatures),
            None,
            "other time"
        );
        assert_eq!(
            verify(&keys(), ID, TIMESTAMP, b"{}", &signatures),
            None,
            "other body"
        );
    }
}
