//! The agent: the emulator's data plane, behind the gRPC agent protocol (`proto/agent/v1`).
//!
//! # What it owns
//! An ECI instance is a fresh machine; the agent is that machine's work, done for real:
//! - the image side (`image/`): OCI pulls from real registries over a link shaped to a chosen
//!   bandwidth, a content-addressed store of blobs, and layers unpacked into snapshots (the
//!   data of an image cache, and the images of a container group);
//! - the container side (`runc/`): container groups as runc containers in a network namespace
//!   of their own, their logs, exec (pipes and terminals) and cgroup stats;
//! - the protocol: [`LocalAgent`] serves both sides over [`pb`], and [`SimulatedAgent`] serves
//!   the same protocol without processes or pulls, only the observable behaviour of a machine,
//!   for tests and scale runs;
//! - one way to run either in-process ([`LoopbackAgent`]) and one mapping of its errors onto
//!   gRPC statuses (`status.rs`), which the emulator reads back by code;
//! - who may call it ([`AgentListener`]): a unix socket admitting only root and the agent's own
//!   user (`listen.rs`), or TCP with a bearer token ([`AuthToken`], `token.rs`).
//!
//! # Its front
//! Callers name only what is re-exported here (`crate::agent::X`), never a submodule; the
//! generated protocol is [`pb`].
//!
//! # Who may use it
//! Only the emulator (`crate::emulator`, as a gRPC client of [`pb`] and to start an in-process
//! agent) and the CLI (`eci-vk agent`, and the flags `run` and `emulator` share), plus the
//! integration tests that drive the image side and the runtime directly. The node never does:
//! it speaks only the ECI OpenAPI.

mod image;
mod listen;
mod loopback;
mod runc;
mod service;
mod simulated;
mod status;
mod token;

pub use self::{
    image::{
        Bandwidth, BuildEvent, BuildRequest, ContentStore, Fetch, ImageRef, Platform, PullScope,
        PullStats, RegistryClient, RegistryConfig, RegistryCredential, RegistryError, Shaper,
        SnapshotError, SnapshotManifest, SnapshotStore, StoreError,
    },
    listen::{AgentListener, CONNECTION_WINDOW, ListenError, UnixSocket},
    loopback::{LoopbackAgent, LoopbackError},
    runc::{ImageRunConfig, PreparedImage, RuncRuntime, RuntimeConfig, RuntimeError},
    service::{LocalAgent, LocalAgentConfig, StartError},
    simulated::{SimulatedAgent, SimulatedConfig},
    token::{AgentChannel, AuthToken, SendToken, TokenError, agent_client},
};

/// Entry points of the fuzz targets that read what a registry serves (`fuzz/`). Not an API.
#[doc(hidden)]
pub use self::image::fuzz;

/// The name a runc runtime on a root gives its network namespaces and parent cgroup. Used by
/// the integration tests (`integration/runc_runtime.rs`) to find what a runtime left behind.
pub use self::runc::tag_of as runtime_tag_of;

/// The generated protocol types, client and server of `eci.agent.v1`.
#[allow(missing_docs, clippy::pedantic)] // generated code
pub mod pb {
    tonic::include_proto!("eci.agent.v1");
}
