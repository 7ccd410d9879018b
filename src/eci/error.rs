//! The one error type of the ECI client, and the classification retries rely on.
//!
//! Transport failures, API errors (the service's error envelope) and decode failures are separate
//! variants. No variant carries credentials: request URLs are stripped from transport errors
//! (a V1 URL holds the `AccessKeyId` and `Signature`), and parameters are never stored.

use std::{path::PathBuf, time::Duration};

/// An error answered by the ECI OpenAPI: the fields of its error envelope plus the HTTP status.
///
/// `{"RequestId", "HostId", "Code", "Message", "Recommend"}` (reference §1.7); lower-case key
/// variants are accepted too, as the official SDK does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The action that was called, e.g. `CreateContainerGroup`.
    pub action: &'static str,
    /// HTTP status of the answer.
    pub status: u16,
    /// The error code, e.g. `Throttling.User` or `IncorrectStatus`; empty if the body had none.
    pub code: String,
    /// Human-readable message of the service (or the start of a body that was not an envelope).
    pub message: String,
    /// `RequestId` of the answer, for support tickets.
    pub request_id: String,
    /// `HostId`: the endpoint host that answered.
    pub host_id: String,
    /// `Recommend`: the diagnosis URL.
    pub recommend: String,
    /// Server-suggested wait from an `x-ratelimit-user(-api)` header's `TimeLeft:` field, if any.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// Whether this is flow control: a `Throttling*` code (also `Rejected.Throttling`), HTTP 429,
    /// or a `TimeLeft:` rate-limit header.
    pub fn is_throttling(&self) -> bool {
        self.code.starts_with("Throttling")
            || self.code == "Rejected.Throttling"
            || self.status == 429
            || self.retry_after.is_some()
    }

    /// Whether a retry may succeed: throttling, `ServiceUnavailable`, `InternalError` or any 5xx.
    /// Other client errors (4xx) are final: retrying them cannot change the answer.
    pub fn is_retryable(&self) -> bool {
        self.is_throttling()
            || matches!(self.code.as_str(), "ServiceUnavailable" | "InternalError")
            || (500..=599).contains(&self.status)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = if self.code.is_empty() {
            "no error code"
        } else {
            &self.code
        };
        write!(
            f,
            "ECI {} answered HTTP {} {code}: {} (request id {})",
            self.action,
            self.status,
            self.message,
            if self.request_id.is_empty() {
                "none"
            } else {
                &self.request_id
            }
        )
    }
}

/// Everything that can go wrong in the ECI client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with its error envelope (or a non-2xx status).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// Not sent: the client's gate ([`super::ClientConfig::gate`]) says this process may not
    /// call ECI now (its leader term ended).
    #[error("ECI {action} not sent: this process no longer holds the node's leader Lease")]
    NotLeader {
        /// The action that was not sent.
        action: &'static str,
    },

    /// The request did not get an answer: connection refused or reset, TLS failure, timeout.
    /// The URL is stripped from the source so no signature or key id reaches a log.
    #[error("ECI {action} request failed to complete")]
    Transport {
        /// The action that was called.
        action: &'static str,
        /// The reqwest error, without its URL.
        #[source]
        source: reqwest::Error,
    },

    /// A 2xx answer whose body is not the JSON the action returns.
    #[error("ECI {action} answered HTTP {status} with a body that could not be decoded")]
    Decode {
        /// The action that was called.
        action: &'static str,
        /// HTTP status of the answer.
        status: u16,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },

    /// A request type did not serialise to a flat parameter map. This is a bug in a request type
    /// (a top-level value that is not a struct), never caused by input.
    #[error("ECI {action} request could not be encoded as parameters: {reason}")]
    Encode {
        /// The action being encoded.
        action: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// The endpoint override is not an absolute `http`/`https` URL, or a region id is not a
    /// valid host label.
    #[error("invalid ECI endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint or region as given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The TLS configuration could not be built: for an `https` endpoint, no CA certificates
    /// were found on the system and none were given, or a given one does not parse.
    #[error("could not set up TLS for ECI")]
    Tls(#[source] rustls::Error),

    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("could not build the HTTP client for ECI")]
    HttpClient(#[source] reqwest::Error),

    /// A required credential is absent from the environment or the credentials directory.
    #[error("ECI credentials incomplete: {what} is not set")]
    MissingCredential {
        /// The environment variable or file that is missing.
        what: String,
    },

    /// A credentials file exists but could not be read.
    #[error("could not read ECI credentials file {path}")]
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A credentials file or profile is not what Alibaba Cloud's SDKs accept (bad JSON or INI,
    /// an unknown profile or mode, a partial set of variables). Names the file, profile or
    /// variable, never a value.
    #[error("ECI credentials: {0}")]
    CredentialsConfig(String),

    /// Temporary credentials could not be obtained (STS, the ECS metadata service, a token
    /// file). `transient` when the failure looked passing (no answer, 5xx, throttling).
    #[error("could not obtain ECI credentials from {source_name}: {reason}")]
    CredentialsUnavailable {
        /// Which source of the chain, e.g. `RRSA (OIDC)`.
        source_name: String,
        /// What went wrong: a status, an STS error code and message; never a secret.
        reason: String,
        /// Whether the source's failure looked passing.
        transient: bool,
    },
}

impl Error {
    /// Whether retrying the same call may succeed: retryable API errors (see
    /// [`ApiError::is_retryable`]), transport failures (including timeouts), and the node's
    /// credentials being unavailable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => api.is_retryable(),
            Error::Transport { .. } => true,
            // The node's own credentials failing says nothing about the call: it may succeed
            // once they are refreshed or fixed, so it is never final (and no pod is failed for
            // it).
            Error::CredentialsUnavailable { .. }
            | Error::CredentialsConfig(_)
            | Error::CredentialsFile { .. }
            | Error::MissingCredential { .. } => true,
            _ => false,
        }
    }

    /// The API error, if the service answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// The API error code, if the service answered with one (e.g. `InvalidParameter.NotFound`).
    pub fn code(&self) -> Option<&str> {
        self.api().map(|a| a.code.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ApiError {
        ApiError {
            action: "CreateContainerGroup",
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "R".into(),
            host_id: String::new(),
            recommend: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classification_retries_only_transient_failures() {
        for (status, code) in [
            (400, "Throttling"),
            (400, "Throttling.User"),
            (400, "Throttling.Api"),
            (400, "Rejected.Throttling"),
            (429, ""),
            (503, "ServiceUnavailable"),
            (500, "InternalError"),
            (502, ""),
        ] {
            assert!(api(status, code).is_retryable(), "{status} {code}");
        }
        for (status, code) in [
            (400, "InvalidParameter"),
            (400, "MissingParameter"),
            (400, "SignatureDoesNotMatch"),
            (403, "Forbidden.RAM"),
            (404, "InvalidAction.NotFound"),
            (400, "IdempotentParameterMismatch"),
            (400, "IncorrectStatus"),
        ] {
            assert!(!api(status, code).is_retryable(), "{status} {code}");
        }
        let mut limited = api(400, "SomethingElse");
        limited.retry_after = Some(Duration::from_millis(10));
        assert!(limited.is_throttling());
    }

    #[test]
    fn display_names_action_code_status_and_request_id() {
        let e = Error::Api(Box::new(api(400, "IncorrectStatus")));
        assert_eq!(
            e.to_string(),
            "ECI CreateContainerGroup answered HTTP 400 IncorrectStatus: m (request id R)"
        );
        assert_eq!(e.code(), Some("IncorrectStatus"));
        assert!(!e.is_retryable());
    }
}
