//! `ApiError`: the one place where failures become HTTP responses.
//!
//! Every error body is JSON in the contract's FastAPI shape: `{"detail": "..."}`, or for
//! validation `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`. Internal causes are
//! logged where they happen and never reach a response.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONNECTION, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::IngestError;
use crate::domain::FieldError;
use crate::storage::{StorageError, StorageErrorKind};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "1";

/// The body of every error except validation: `{"detail": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"detail": "invalid signature"}))]
pub struct ErrorBody {
    /// What went wrong, in a sentence that never carries a secret, SQL or a stack trace.
    pub detail: String,
}

/// The body of a `422`: every problem found, in the FastAPI/Pydantic shape.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"detail": [{"loc": ["body", "from"], "type": "string_pattern_mismatch",
    "msg": "String should match pattern '^\\+[0-9]{1,15}$'"}]}))]
pub struct ValidationErrorBody<'a> {
    pub detail: &'a [FieldError],
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid signature")]
    InvalidSignature,
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body could not be read")]
    BadRequest,
    #[error(
        "Content-Encoding is not supported: send the body unencoded (identity), as it was signed"
    )]
    UnsupportedEncoding,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("the message store is at capacity, retry later")]
    Overloaded,
    #[error("the database is unavailable, retry later")]
    Unavailable,
    #[error("the read took longer than allowed, retry later or narrow the filters")]
    ReadTimedOut,
    #[error("{0}")]
    NotReady(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidSignature | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded | Self::Unavailable | Self::ReadTimedOut | Self::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Overloaded | Self::Unavailable | Self::ReadTimedOut => {
                response.insert_header((RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            Self::MethodNotAllowed { allow } => {
                response.insert_header((ALLOW, *allow));
            }
            Self::Unauthorized => {
                response.insert_header((WWW_AUTHENTICATE, "Bearer"));
            }
            Self::RequestTimeout => {
                response.insert_header((CONNECTION, "close"));
            }
            _ => {}
        }
        match self {
            Self::Validation(errors) => response.json(ValidationErrorBody { detail: errors }),
            other => response.json(ErrorBody {
                detail: other.to_string(),
            }),
        }
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        Self::Validation(errors)
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Overloaded => Self::Overloaded,
            IngestError::Unavailable(_) => Self::Unavailable,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        // Any client can ask for a read that runs out of time: not an error of the service.
        if error.kind == StorageErrorKind::TimedOut {
            tracing::warn!(error = %error, "read stopped at its deadline");
            return Self::ReadTimedOut;
        }
        tracing::error!(error = %error, "database read failed");
        Self::Unavailable
    }
}
