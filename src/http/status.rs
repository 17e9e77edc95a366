//! The two fixed success bodies: `{"status": "ok"}` and `{"status": "ready"}`.
//!
//! They are types rather than inline JSON so that the OpenAPI document describes exactly what
//! the handlers send.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"status": "ok"}`: the message is stored (or was already), or the process is alive.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusOk {
    #[schema(inline)]
    status: OkWord,
}

#[derive(Debug, Default, Serialize, ToSchema)]
enum OkWord {
    #[default]
    #[serde(rename = "ok")]
    Ok,
}

/// `{"status": "ready"}`: the database accepted the last durable write probe.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusReady {
    #[schema(inline)]
    status: ReadyWord,
}

#[derive(Debug, Default, Serialize, ToSchema)]
enum ReadyWord {
    #[default]
    #[serde(rename = "ready")]
    Ready,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{StatusOk, StatusReady};

    #[test]
    fn the_bodies_are_the_contracts_json() {
        assert_eq!(json!(StatusOk::default()), json!({"status": "ok"}));
        assert_eq!(json!(StatusReady::default()), json!({"status": "ready"}));
    }
}
