//! The runtime's one error enum (its gRPC statuses are in `agent/status.rs`).

use std::path::PathBuf;

/// Everything that can go wrong in the runc runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The request names a group the runtime does not hold.
    #[error("container group {group_id} is unknown")]
    GroupNotFound {
        /// The group id as asked for.
        group_id: String,
    },
    /// The request names a container that is not in the group.
    #[error("container {container} is not in group {group_id}")]
    ContainerNotFound {
        /// The group.
        group_id: String,
        /// The container name as asked for.
        container: String,
    },
    /// The request is malformed (empty id, bad path, missing image, bad user, ...).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A `CreateGroup` carried a generation older than the group's.
    #[error("group {group_id} exists at generation {existing}, newer than {requested}")]
    StaleGeneration {
        /// The group.
        group_id: String,
        /// The generation the runtime holds.
        existing: u64,
        /// The generation of the request.
        requested: u64,
    },
    /// The operation needs a running container (exec) and this one is not.
    #[error("container {container} of group {group_id} is not running")]
    NotRunning {
        /// The group.
        group_id: String,
        /// The container.
        container: String,
    },
    /// Every address of the pod CIDR is held by a live group.
    #[error("no free address left in {cidr}")]
    AddressesExhausted {
        /// The configured pod CIDR.
        cidr: String,
    },
    /// The runtime configuration is unusable (bad CIDR, bridge name too long, ...).
    #[error("invalid runtime configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The runtime is shutting down and takes no new work.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// A helper program (runc, ip) could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// A helper program (runc, ip) ran and failed.
    #[error("`{command}` failed with {status}: {stderr}")]
    CommandFailed {
        /// The command line (program and arguments; never secrets: only ids and paths).
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A file or directory under the runtime's root could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done ("create", "write", "remove", ...).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A mount or unmount syscall failed.
    #[error("cannot {action} {}", path.display())]
    Mount {
        /// "mount overlay on", "unmount", ...
        action: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The OCI runtime spec could not be built or written.
    #[error("cannot build the OCI spec of container {container_id}")]
    Spec {
        /// The runc container id.
        container_id: String,
        /// The cause.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// Output of a helper program could not be parsed.
    #[error("cannot parse the output of `{command}`")]
    Parse {
        /// The command.
        command: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A blocking task panicked or was cancelled (never expected).
    #[error("a blocking task of the runtime did not finish")]
    Join(#[source] tokio::task::JoinError),
}

impl RuntimeError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            reason: reason.into(),
        }
    }
}
