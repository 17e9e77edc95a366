//! `VerifiedBody`: the raw request body, extracted only when its `X-Signature` is valid.
//!
//! The signature header is checked for shape before the body is read; the body is read once,
//! never past the size limit (a `Content-Length` over it is refused before reading), and its
//! HMAC-SHA256 is compared with the header in constant time before anything parses it.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::WebhookSecret;
use crate::error::ApiError;

/// The header carrying the hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Signature";

type HmacSha256 = Hmac<Sha256>;

/// Checks body signatures against the configured secret.
#[derive(Clone)]
pub struct SignatureVerifier {
    keyed: HmacSha256,
    max_body_bytes: usize,
}

impl SignatureVerifier {
    pub fn new(secret: &WebhookSecret, max_body_bytes: usize) -> Self {
        Self {
            keyed: HmacSha256::new_from_slice(secret.expose())
                .expect("HMAC takes keys of any size"),
            max_body_bytes,
        }
    }

    /// True when `signature` is the HMAC-SHA256 of `body`; compared in constant time.
    pub fn verify(&self, body: &[u8], signature: &[u8; 32]) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    }

    /// The hex signature of `body`, as a sender would compute it.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
pub fn decode_signature(hex: &[u8]) -> Option<[u8; 32]> {
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
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// A request body whose signature was valid.
#[derive(Debug)]
pub struct VerifiedBody(pub Bytes);

impl FromRequest for VerifiedBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let verifier = req
            .app_data::<Data<SignatureVerifier>>()
            .expect("the SignatureVerifier is registered with the app")
            .clone();
        let signature = req
            .headers()
            .get(SIGNATURE_HEADER)
            .ok_or("missing")
            .and_then(|value| decode_signature(value.as_bytes()).ok_or("malformed"));
        let declared_length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let signature = signature.map_err(|problem| {
                tracing::error!(problem, "invalid signature: header {problem}");
                ApiError::InvalidSignature
            })?;
            let limit = verifier.max_body_bytes;
            let too_large = ApiError::PayloadTooLarge { limit };
            if declared_length.is_some_and(|length| length > limit) {
                return Err(too_large);
            }
            let mut body = BytesMut::with_capacity(declared_length.unwrap_or(0).min(limit));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    tracing::warn!(error = %e, "reading the request body failed");
                    ApiError::PayloadTooLarge { limit }
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            if !verifier.verify(&body, &signature) {
                tracing::error!(
                    problem = "mismatch",
                    "invalid signature: does not match the body"
                );
                return Err(ApiError::InvalidSignature);
            }
            Ok(Self(body.freeze()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(&WebhookSecret::new("testsecret").unwrap(), 1024)
    }

    #[test]
    fn verifies_what_it_signs_in_either_case() {
        let verifier = verifier();
        let hex = verifier.sign(b"{}");
        let lower = decode_signature(hex.as_bytes()).unwrap();
        let upper = decode_signature(hex.to_uppercase().as_bytes()).unwrap();
        assert!(verifier.verify(b"{}", &lower));
        assert!(verifier.verify(b"{}", &upper));
        assert!(!verifier.verify(b"{} ", &lower), "a changed body must fail");
    }

    #[test]
    fn matches_an_independently_computed_hmac() {
        // printf '%s' 'hello' | openssl dgst -sha256 -hmac testsecret
        assert_eq!(
            verifier().sign(b"hello"),
            "a42c77dfc9f228485b5ba4238cb5d46c79c16537cd02834fe7c127ba0e0bb987"
        );
    }

    #[test]
    fn rejects_signatures_of_the_wrong_shape() {
        let good = verifier().sign(b"x");
        let bad = [
            (String::new(), "empty"),
            (good[..63].to_owned(), "63 digits"),
            (format!("{good}0"), "65 digits"),
            (format!("sha256={good}"), "prefixed"),
            (good.replacen(&good[..1], "g", 1), "non-hex digit"),
            (format!(" {}", &good[1..]), "leading space"),
        ];
        for (hex, why) in bad {
            assert!(decode_signature(hex.as_bytes()).is_none(), "{why}");
        }
    }
}
