//! The OpenAPI error: a code, an HTTP status and a message, rendered as the cloud's envelope.

use axum::http::StatusCode;

/// An error answer of the emulated OpenAPI (`{RequestId, HostId, Code, Message, Recommend}`).
///
/// Codes follow the reference (`eci-openapi.md` §1.8); where it names none, the emulator uses a
/// code in the documented style and says so where the error is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// The `Code` field, e.g. `MissingRegionId`.
    pub code: String,
    /// The `Message` field.
    pub message: String,
    /// Milliseconds until a throttled caller may retry (only for `Throttling.*`).
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A required parameter is absent: `Missing{Name}` for a top-level name, `MissingParameter`
    /// for a nested one (`Container.1.Image`).
    pub fn missing(name: &str) -> Self {
        let code = if name.contains('.') {
            "MissingParameter".to_owned()
        } else {
            format!("Missing{name}")
        };
        Self::bad_request(
            code,
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }

    /// A parameter has a bad value: `InvalidParameter.{Name}` with the root name of the parameter.
    pub fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        let root = name.split('.').next().unwrap_or(name);
        Self::bad_request(
            format!("InvalidParameter.{root}"),
            format!("The specified parameter \"{name}\" is not valid: {why}"),
        )
    }

    /// 404 `InvalidParameter.NotFound`: the named resource does not exist.
    ///
    /// The reference gives no code for an unknown id; Terraform treats `InvalidParameter.NotFound`
    /// as "not found" and the old provider maps a 404 of DeleteContainerGroup to NotFound, so the
    /// emulator answers both.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "InvalidParameter.NotFound",
            format!("The specified {what} {id} does not exist."),
        )
    }

    /// 400 `IncorrectStatus` (documented for DeleteContainerGroup; used for every wrong-state
    /// operation, as the reference's emulator notes suggest).
    pub fn incorrect_status(what: &str, id: &str, status: &str, operation: &str) -> Self {
        Self::bad_request(
            "IncorrectStatus",
            format!(
                "The current status of {what} {id} is {status}, which does not allow {operation}."
            ),
        )
    }
}
