//! `ReadAccess`: the bearer-token check for reads (`/messages`, `/stats`, and `/metrics` when
//! `METRICS_REQUIRE_TOKEN` is set).
//!
//! Without `API_TOKEN` every read is allowed (a warning is logged at startup). With it, the
//! request must carry `Authorization: Bearer <token>`; the check compares SHA-256 digests in
//! constant time, so neither the token's content nor its length leaks through timing.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The configured read token, kept only as its digest.
pub struct ReadToken {
    digest: Option<[u8; 32]>,
    protect_metrics: bool,
}

impl ReadToken {
    pub fn new(token: Option<&[u8]>, protect_metrics: bool) -> Self {
        Self {
            digest: token.map(|t| Sha256::digest(t).into()),
            protect_metrics,
        }
    }

    /// Which operations need the token: what the OpenAPI document declares.
    pub fn access(&self) -> super::openapi::Access {
        super::openapi::Access {
            reads: self.digest.is_some(),
            metrics: self.digest.is_some() && self.protect_metrics,
        }
    }

    /// Whether a request with this `Authorization` header value may read.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.digest else {
            return true;
        };
        // The scheme name is case-insensitive (RFC 7235); the token is not.
        let presented = authorization
            .and_then(|value| value.split_at_checked(BEARER.len()))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(BEARER))
            .map(|(_, token)| <[u8; 32]>::from(Sha256::digest(token)));
        presented.is_some_and(|digest| bool::from(digest.ct_eq(expected)))
    }
}

const BEARER: &[u8] = b"Bearer ";

fn check(req: &HttpRequest, required: impl Fn(&ReadToken) -> bool) -> Result<(), ApiError> {
    let token = req
        .app_data::<Data<ReadToken>>()
        .expect("the ReadToken is registered with the app");
    let authorization = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    if !required(token) || token.allows(authorization) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Proof that the request may read messages; extracting it fails with `401` otherwise.
pub struct ReadAccess;

impl FromRequest for ReadAccess {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req, |_| true).map(|()| Self))
    }
}

/// Proof that the request may read `/metrics`: always, unless `METRICS_REQUIRE_TOKEN` is set.
pub struct MetricsAccess;

impl FromRequest for MetricsAccess {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req, |token| token.protect_metrics).map(|()| Self))
    }
}

#[cfg(test)]
mod tests {
    use super::ReadToken;

    #[test]
    fn without_a_token_everything_may_read() {
        assert!(ReadToken::new(None, false).allows(None));
    }

    #[test]
    fn with_a_token_only_the_exact_bearer_may_read() {
        let token = ReadToken::new(Some(b"s3cr3t"), false);
        assert!(token.allows(Some(b"Bearer s3cr3t")));
        assert!(
            token.allows(Some(b"bearer s3cr3t")),
            "the scheme is case-insensitive"
        );
        for bad in [
            None,
            Some(&b""[..]),
            Some(b"s3cr3t"),
            Some(b"Bearer "),
            Some(b"Bearer s3cr3"),
            Some(b"Bearer s3cr3tt"),
            Some(b"Bearer S3CR3T"),
            Some(b"Basic s3cr3t"),
        ] {
            assert!(!token.allows(bad), "{bad:?}");
        }
    }
}
