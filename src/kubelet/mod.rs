//! The kubelet HTTPS API of the virtual node: what `kubectl logs`, `exec`, `top` and the
//! metrics pipeline reach through the API server.
//!
//! - [`server`]: TLS listener, per-connection client identity, the router and its auth layer.
//! - [`tls`]: serving certificate (files or self-signed) and the client-CA verifier.
//! - [`auth`]: TokenReview / client certificate → user; SubjectAccessReview on `nodes/*`.
//! - [`lookup`]: `{namespace}/{pod}` → the pod on this node and its ECI container group.
//! - [`logs`]: `/containerLogs` from `DescribeContainerLog`, follow by polling from a cursor.
//! - [`remotecommand`] + [`spdy`] + [`cloud_exec`]: `/exec` over SPDY/3.1, bridged to the
//!   `ExecContainerCommand` WebSocket.
//! - [`stats`]: `/stats/summary` and `/metrics/resource` from `DescribeContainerGroupMetric`.
//!
//! The node only talks to the cloud through [`crate::eci::Client`].

pub mod auth;
pub mod cloud_exec;
pub mod logs;
pub mod lookup;
pub mod remotecommand;
mod server;
pub mod spdy;
pub mod stats;
pub mod tls;

use std::time::Duration;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

pub use server::serve;
pub use tls::ServingCert;

use crate::eci;

/// Default port of the kubelet API.
pub const DEFAULT_PORT: u16 = 10250;
/// How long a client has to open the streams of an exec (the kubelet's default).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an exec may sit without traffic either way (the kubelet's
/// `streamingConnectionIdleTimeout` default).
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);
/// How often the serving certificate's files and the client CA are read again, so a renewed
/// certificate or a rotated CA is used without a restart, as the kubelet does.
pub const TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Settings of the kubelet API.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The node's name (the object of every authorization check).
    pub node_name: String,
    /// Cluster name tag of this node's groups (for `/runningpods/`).
    pub cluster_name: String,
    /// Serving certificate.
    pub serving_cert: ServingCert,
    /// A PEM file of the client CA; `None` reads the cluster's from
    /// `kube-system/extension-apiserver-authentication` (`client-ca-file`). Either is read
    /// again every [`TLS_RELOAD_INTERVAL`], with the serving certificate's files.
    pub client_ca: Option<std::path::PathBuf>,
    /// Authenticate and authorize requests (off only for local development).
    pub auth: bool,
    /// See [`STREAM_CREATION_TIMEOUT`].
    pub stream_creation_timeout: Duration,
    /// See [`STREAM_IDLE_TIMEOUT`].
    pub stream_idle_timeout: Duration,
}

/// What the handlers share.
pub struct Ctx {
    kube: kube::Client,
    eci: eci::Client,
    node: String,
    cluster: String,
    started: jiff::Timestamp,
    authority: Option<auth::Authority>,
    stream_creation_timeout: Duration,
    stream_idle_timeout: Duration,
    /// The node's CPU counter across the pods it has had.
    node_cpu: stats::NodeCpu,
}

/// Failures that stop the kubelet API from starting.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The TLS settings are unusable.
    #[error("kubelet API TLS: {what}")]
    Tls {
        /// What is wrong.
        what: String,
    },
}

/// An error answer: the status and a plain-text message, as the kubelet answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 503: a dependency (API server, cloud) did not answer.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    /// The cloud's refusal as the kubelet would answer it.
    pub fn from_eci(error: &eci::Error) -> Self {
        let status = match error.api() {
            Some(api) if api.status == 404 || api.code.contains("NotFound") => {
                StatusCode::NOT_FOUND
            }
            Some(api) if api.code == "IncorrectStatus" || api.status == 400 => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        Self {
            status,
            message: crate::error_chain(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), error = %self.message, "kubelet API request failed");
        }
        (self.status, self.message).into_response()
    }
}
