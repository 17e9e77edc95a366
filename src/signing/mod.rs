//! Webhook signatures: HMAC-SHA256 keys, with rotation, for the two accepted schemes.
//!
//! - `X-Signature`: hex HMAC-SHA256 of the raw body (or of `{timestamp}.{body}` when the sender
//!   also sends `X-Signature-Timestamp`), keyed with the raw bytes of `WEBHOOK_SECRET`.
//! - Standard Webhooks ([`standard`]): base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed
//!   with the base64-decoded `whsec_` secret.
//!
//! Pagination cursors ([`cursor`]) are sealed with a key derived from `WEBHOOK_SECRET`.
//!
//! A [`KeyRing`] holds the current secret and, during a rotation, the previous one; a signature
//! made with either is accepted, and the caller learns which one matched. Every comparison is
//! constant-time and refuses a tag of the wrong length.

pub mod cursor;
pub mod standard;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// Which configured secret verified a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSlot {
    Current,
    Previous,
}

impl SecretSlot {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
        }
    }
}

/// The keys a signature may be made with: the current one first, then the previous one.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(SecretSlot, HmacSha256)>,
}

impl KeyRing {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Self {
        let keyed = |key: &[u8]| HmacSha256::new_from_slice(key).expect("HMAC takes any key size");
        let mut keys = vec![(SecretSlot::Current, keyed(current))];
        if let Some(previous) = previous {
            keys.push((SecretSlot::Previous, keyed(previous)));
        }
        Self { keys }
    }

    /// The slot of the first key whose HMAC-SHA256 over the concatenated `parts` equals `tag`.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Option<SecretSlot> {
        self.verify_any(parts, &[tag])
    }

    /// The slot of the first key whose HMAC-SHA256 over the concatenated `parts` equals any of
    /// `tags`. Each key hashes the message once, however many tags the sender offers, so a
    /// header listing thousands of signatures costs no more HMAC work than one.
    pub fn verify_any(&self, parts: &[&[u8]], tags: &[&[u8]]) -> Option<SecretSlot> {
        self.keys.iter().find_map(|(slot, key)| {
            let mut mac = key.clone();
            parts.iter().for_each(|part| mac.update(part));
            let digest = mac.finalize().into_bytes();
            // `ct_eq` on slices of different lengths is false: a truncated tag never matches.
            let matched = tags.iter().fold(Choice::from(0), |found, tag| {
                found | digest.as_slice().ct_eq(tag)
            });
            bool::from(matched).then_some(*slot)
        })
    }

    /// The HMAC-SHA256 over the concatenated `parts` with the current key.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.keys[0].1.clone();
        parts.iter().for_each(|part| mac.update(part));
        mac.finalize().into_bytes().into()
    }
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
pub fn decode_hex_signature(hex: &[u8]) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a signed timestamp (Unix seconds, as sent) is within `tolerance_secs` of `now`.
pub fn timestamp_is_fresh(timestamp: &str, now: i64, tolerance_secs: u64) -> bool {
    let is_plain_integer = !timestamp.is_empty() && timestamp.bytes().all(|b| b.is_ascii_digit());
    is_plain_integer
        && timestamp
            .parse::<i64>()
            .is_ok_and(|ts| ts.abs_diff(now) <= tolerance_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independently_computed_hmac() {
        // printf '%s' 'hello' | openssl dgst -sha256 -hmac testsecret
        let ring = KeyRing::new(b"testsecret", None);
        assert_eq!(
            encode_hex(&ring.sign(&[b"hello"])),
            "a42c77dfc9f228485b5ba4238cb5d46c79c16537cd02834fe7c127ba0e0bb987"
        );
    }

    #[test]
    fn parts_are_signed_as_one_concatenated_message() {
        let ring = KeyRing::new(b"k", None);
        assert_eq!(ring.sign(&[b"12", b".", b"body"]), ring.sign(&[b"12.body"]));
    }

    #[test]
    fn either_secret_of_a_rotation_verifies_and_says_which() {
        let old = KeyRing::new(b"old", None);
        let ring = KeyRing::new(b"new", Some(b"old"));
        let new_tag = ring.sign(&[b"x"]);
        let old_tag = old.sign(&[b"x"]);
        assert_eq!(ring.verify(&[b"x"], &new_tag), Some(SecretSlot::Current));
        assert_eq!(ring.verify(&[b"x"], &old_tag), Some(SecretSlot::Previous));
        assert_eq!(KeyRing::new(b"new", None).verify(&[b"x"], &old_tag), None);
        assert_eq!(
            ring.verify(&[b"y"], &new_tag),
            None,
            "another message fails"
        );
    }

    #[test]
    fn any_offered_tag_may_match_either_key() {
        let ring = KeyRing::new(b"new", Some(b"old"));
        let old_tag = KeyRing::new(b"old", None).sign(&[b"x"]);
        let wrong = [7u8; 32];
        assert_eq!(
            ring.verify_any(&[b"x"], &[&wrong, &[], &old_tag]),
            Some(SecretSlot::Previous)
        );
        assert_eq!(ring.verify_any(&[b"x"], &[&wrong, &old_tag[..31]]), None);
        assert_eq!(ring.verify_any(&[b"x"], &[]), None, "no tag at all");
    }

    #[test]
    fn a_truncated_or_empty_tag_never_verifies() {
        let ring = KeyRing::new(b"k", None);
        let tag = ring.sign(&[b"x"]);
        for len in [0, 1, 16, 31] {
            assert_eq!(ring.verify(&[b"x"], &tag[..len]), None, "{len} bytes");
        }
        let mut longer = tag.to_vec();
        longer.push(0);
        assert_eq!(ring.verify(&[b"x"], &longer), None);
    }

    #[test]
    fn hex_signatures_must_be_exactly_64_hex_digits() {
        let good = encode_hex(&KeyRing::new(b"k", None).sign(&[b"x"]));
        assert!(decode_hex_signature(good.as_bytes()).is_some());
        assert!(decode_hex_signature(good.to_uppercase().as_bytes()).is_some());
        let bad = [
            (String::new(), "empty"),
            (good[..63].to_owned(), "63 digits"),
            (format!("{good}0"), "65 digits"),
            (format!("sha256={}", &good[..57]), "prefixed"),
            (format!("g{}", &good[1..]), "non-hex digit"),
            (format!(" {}", &good[1..]), "leading space"),
        ];
        for (hex, why) in bad {
            assert!(decode_hex_signature(hex.as_bytes()).is_none(), "{why}");
        }
    }

    #[test]
    fn timestamps_are_fresh_only_within_the_tolerance_either_way() {
        let now = 1_700_000_000;
        assert!(timestamp_is_fresh("1700000000", now, 300));
        assert!(timestamp_is_fresh("1699999700", now, 300));
        assert!(timestamp_is_fresh("1700000300", now, 300));
        for bad in [
            "1699999699",
            "1700000301",
            "",
            "-5",
            "+1700000000",
            "1.7e9",
            "abc",
            " 1700000000",
        ] {
            assert!(!timestamp_is_fresh(bad, now, 300), "{bad:?}");
        }
    }
}
