//! The one mapping from the agent's errors to gRPC statuses, for both runtimes.
//!
//! No other file of the agent builds a `tonic::Status`: handlers return their errors and `?`
//! turns them into statuses here. The emulator branches on the codes (`src/emulator/driver`,
//! `src/emulator/ops`), so a code is part of the protocol:
//! - `NOT_FOUND`: an unknown group, container, snapshot or image (a group's delete and
//!   inspect treat it as already gone; a pull as a missing image);
//! - `RESOURCE_EXHAUSTED`: a cache over its size limit, or no pod address left;
//! - `FAILED_PRECONDITION`: the request comes in the wrong state (nothing prepared, a stale
//!   generation, a container not running, an unpackable layer); the emulator answers 400;
//! - `PERMISSION_DENIED`: the registry refused the credentials;
//! - `INVALID_ARGUMENT`: a malformed request;
//! - `UNAVAILABLE`: the registry or a store failed, worth a retry;
//! - `INTERNAL`: the agent itself failed.
//!
//! Messages name groups, images, snapshots and registries, never credentials (no error carries
//! one).

use tonic::Status;

use super::{
    image::{RegistryError, SnapshotError, StoreError},
    runc::RuntimeError,
};

/// What a handler of the agent protocol refuses or fails at, apart from the errors of the
/// image stores and the runc runtime.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    /// The first message of an exec stream was not its start.
    #[error("the first exec message must be start")]
    ExecWithoutStart,
    /// A `PrepareImages` of the real agent without a scope or without images.
    #[error("a prepare request needs a scope and at least one image")]
    EmptyPrepare,
    /// A `PrepareImages` of the simulated agent without a scope.
    #[error("scope is empty")]
    EmptyScope,
    /// A `CreateGroup` of the simulated agent without an id or containers.
    #[error("a group needs an id and at least one container")]
    EmptyGroup,
    /// A requested image is not an image reference.
    #[error("{image:?} is not an image reference")]
    ParseImage {
        /// The image as requested.
        image: String,
        /// Why it does not parse (boxed: a registry error is large).
        #[source]
        source: Box<RegistryError>,
    },
    /// A simulated pull of an image configured to fail.
    #[error("image {image}: manifest unknown (simulated)")]
    SimulatedPullFailed {
        /// The image.
        image: String,
    },
    /// `BuildSnapshot` of the real agent for a scope nothing was prepared in.
    #[error("no images were prepared for {scope}")]
    NoImagesPrepared {
        /// The cache build's scope.
        scope: String,
    },
    /// `BuildSnapshot` of the simulated agent for a scope nothing was prepared in.
    #[error("nothing was prepared in scope {scope}")]
    NothingPrepared {
        /// The cache build's scope.
        scope: String,
    },
    /// An image with pull policy `Never` that the group's base snapshot does not hold.
    #[error("ErrImageNeverPull: image {image} is not present and its ImagePullPolicy is Never")]
    NeverPull {
        /// The image as requested.
        image: String,
    },
    /// The task building a snapshot panicked or was cancelled (never expected).
    #[error("the build task failed")]
    BuildTask(#[source] tokio::task::JoinError),
    /// `CreateGroup` before `PrepareImages` ran for the group.
    #[error("the images of {group_id} were not prepared")]
    GroupNotPrepared {
        /// The group.
        group_id: String,
    },
    /// A container's image is not among those prepared for its group.
    #[error("image {image} was not prepared")]
    ImageNotPrepared {
        /// The image as requested.
        image: String,
    },
    /// A snapshot an image was prepared in has been deleted since.
    #[error("snapshot {snapshot} is gone")]
    SnapshotGone {
        /// The snapshot id.
        snapshot: String,
    },
    /// A snapshot an image was prepared in does not hold it.
    #[error("snapshot {snapshot} does not hold image {image}")]
    ImageNotInSnapshot {
        /// The snapshot id.
        snapshot: String,
        /// The image as requested.
        image: String,
    },
    /// A snapshot records a config digest that is not a digest (never expected).
    #[error("bad config digest {digest}")]
    ParseConfigDigest {
        /// The digest as recorded.
        digest: String,
        /// Why it does not parse.
        #[source]
        source: StoreError,
    },
    /// An image's config blob could not be read from the content store.
    #[error("cannot read image config {digest}")]
    ReadConfig {
        /// The config digest.
        digest: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// An image's config blob is not an OCI image config.
    #[error("unreadable image config {digest}")]
    ParseConfig {
        /// The config digest.
        digest: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The simulated agent names a group it does not hold.
    #[error("container group {group_id} is unknown")]
    GroupUnknown {
        /// The group id as asked for.
        group_id: String,
    },
    /// The simulated agent names a container that is not in the group.
    #[error("container {container} is not in group {group_id}")]
    ContainerUnknown {
        /// The group.
        group_id: String,
        /// The container name as asked for.
        container: String,
    },
    /// A simulated `CreateGroup` carried a generation older than the group's.
    #[error("group {group_id} exists at generation {existing}, newer than {requested}")]
    StaleGeneration {
        /// The group.
        group_id: String,
        /// The generation the machine holds.
        existing: u64,
        /// The generation of the request.
        requested: u64,
    },
    /// A simulated exec into a container that is not running.
    #[error("container {container} is not running")]
    NotRunning {
        /// The container.
        container: String,
    },
    /// The simulated log stream's channel closed before its only chunk (never expected).
    #[error("log channel closed")]
    LogChannelClosed,
}

impl From<AgentError> for Status {
    fn from(error: AgentError) -> Self {
        let message = crate::error_chain(&error);
        match error {
            AgentError::ExecWithoutStart
            | AgentError::EmptyPrepare
            | AgentError::EmptyScope
            | AgentError::EmptyGroup
            | AgentError::ParseImage { .. } => Status::invalid_argument(message),
            AgentError::SimulatedPullFailed { .. }
            | AgentError::GroupUnknown { .. }
            | AgentError::ContainerUnknown { .. } => Status::not_found(message),
            AgentError::NoImagesPrepared { .. }
            | AgentError::NothingPrepared { .. }
            | AgentError::NeverPull { .. }
            | AgentError::GroupNotPrepared { .. }
            | AgentError::ImageNotPrepared { .. }
            | AgentError::SnapshotGone { .. }
            | AgentError::ImageNotInSnapshot { .. }
            | AgentError::ParseConfig { .. }
            | AgentError::StaleGeneration { .. }
            | AgentError::NotRunning { .. } => Status::failed_precondition(message),
            AgentError::ReadConfig { .. } => Status::unavailable(message),
            AgentError::BuildTask(_)
            | AgentError::ParseConfigDigest { .. }
            | AgentError::LogChannelClosed => Status::internal(message),
        }
    }
}

impl From<SnapshotError> for Status {
    fn from(error: SnapshotError) -> Self {
        let message = crate::error_chain(&error);
        if error.is_authentication() {
            Status::permission_denied(message)
        } else if error.is_image_not_found() || matches!(error, SnapshotError::NotFound { .. }) {
            Status::not_found(message)
        } else {
            match error {
                SnapshotError::ExceedSizeLimit { .. } => Status::resource_exhausted(message),
                SnapshotError::ParseSnapshotId { .. } => Status::invalid_argument(message),
                SnapshotError::VerifyDiffId { .. } | SnapshotError::UnpackLayer { .. } => {
                    Status::failed_precondition(message)
                }
                _ => Status::unavailable(message),
            }
        }
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Self {
        let message = crate::error_chain(&error);
        if error.is_authentication() {
            Status::permission_denied(message)
        } else if error.is_not_found() {
            Status::not_found(message)
        } else {
            Status::unavailable(message)
        }
    }
}

impl From<RuntimeError> for Status {
    fn from(error: RuntimeError) -> Self {
        // The message is the runtime's own text; causes are already part of the variants that
        // carry a command's stderr, and the rest are rendered by the caller's log line.
        let message = error.to_string();
        match error {
            RuntimeError::GroupNotFound { .. } | RuntimeError::ContainerNotFound { .. } => {
                Status::not_found(message)
            }
            RuntimeError::InvalidRequest { .. } => Status::invalid_argument(message),
            RuntimeError::StaleGeneration { .. } | RuntimeError::NotRunning { .. } => {
                Status::failed_precondition(message)
            }
            RuntimeError::AddressesExhausted { .. } => Status::resource_exhausted(message),
            RuntimeError::ShuttingDown => Status::unavailable(message),
            _ => Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn codes_are_those_the_emulator_reads_back() {
        let cases = [
            (
                AgentError::GroupUnknown {
                    group_id: "eci-1".into(),
                },
                Code::NotFound,
                "container group eci-1 is unknown",
            ),
            (
                AgentError::NeverPull {
                    image: "busybox".into(),
                },
                Code::FailedPrecondition,
                "ErrImageNeverPull: image busybox is not present and its ImagePullPolicy is Never",
            ),
            (
                AgentError::ExecWithoutStart,
                Code::InvalidArgument,
                "the first exec message must be start",
            ),
            (
                AgentError::LogChannelClosed,
                Code::Internal,
                "log channel closed",
            ),
        ];
        for (error, code, message) in cases {
            let status = Status::from(error);
            assert_eq!((status.code(), status.message()), (code, message));
        }
        let stale = Status::from(RuntimeError::StaleGeneration {
            group_id: "eci-1".into(),
            existing: 2,
            requested: 1,
        });
        assert_eq!(stale.code(), Code::FailedPrecondition);
        assert_eq!(
            Status::from(RuntimeError::ShuttingDown).code(),
            Code::Unavailable
        );
    }

    #[test]
    fn a_bad_reference_names_the_image_and_the_cause() {
        let source = "Not An Image!"
            .parse::<crate::agent::ImageRef>()
            .expect_err("not a reference");
        let status = Status::from(AgentError::ParseImage {
            image: "Not An Image!".into(),
            source: Box::new(source),
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .starts_with("\"Not An Image!\" is not an image reference: "),
            "{}",
            status.message()
        );
    }
}
