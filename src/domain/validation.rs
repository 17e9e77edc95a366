//! Validation problems in the FastAPI/Pydantic shape the contract promises:
//! `{"loc": ["body", "from"], "msg": "...", "type": "..."}`.

use serde::Serialize;
use utoipa::ToSchema;

/// Where a problem was found: `body`, `query` or `header`, then the field name when there is
/// one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!(["body", "from"]))]
pub struct Location(pub Vec<&'static str>);

impl Location {
    /// The request body as a whole (not JSON, not an object).
    pub fn body() -> Self {
        Self(vec!["body"])
    }

    /// One field of the JSON body.
    pub fn body_field(field: &'static str) -> Self {
        Self(vec!["body", field])
    }

    /// The query string as a whole (it could not be decoded).
    pub fn query_string() -> Self {
        Self(vec!["query"])
    }

    /// One query-string parameter.
    pub fn query(param: &'static str) -> Self {
        Self(vec!["query", param])
    }

    /// One request header.
    pub fn header(name: &'static str) -> Self {
        Self(vec!["header", name])
    }
}

/// One problem with a request; a rejected request lists every problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub loc: Location,
    /// What is wrong, for people.
    #[schema(example = "String should match pattern '^\\+[0-9]{1,15}$'")]
    pub msg: String,
    /// What is wrong, for programs: `missing`, `string_type`, `string_pattern_mismatch`, ...
    #[serde(rename = "type")]
    #[schema(example = "string_pattern_mismatch")]
    pub kind: &'static str,
}

impl FieldError {
    pub fn new(loc: Location, kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind,
        }
    }

    pub fn missing(loc: Location) -> Self {
        Self::new(loc, "missing", "Field required")
    }

    pub fn not_a_string(loc: Location) -> Self {
        Self::new(loc, "string_type", "Input should be a valid string")
    }
}
