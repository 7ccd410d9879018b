//! The agent: the emulator's data plane, behind the gRPC agent protocol (`proto/agent/v1`).
//!
//! The emulator (`crate::emulator`) never touches images or containers itself; it asks an agent
//! over [`pb::agent_client::AgentClient`]. This build has one runtime, [`simulated`]: no
//! processes and no pulls, only the observable behaviour of a machine, for tests and scale runs.

pub mod simulated;

// The real agent's image side: registry pulls over a shaped link into a content store, and
// layers unpacked into cache snapshots.
pub mod registry;
pub mod shaper;
pub mod snapshot;
pub mod store;
pub mod unpack;

// The real agent's container side: groups as runc containers.
pub mod runc;
pub mod service;

// The front (the agentfront branch replaces these with its own re-exports).
pub use registry::{Platform, RegistryConfig};
pub use service::{LocalAgent, LocalAgentConfig};
pub use shaper::Bandwidth;
pub use simulated::SimulatedConfig;

/// The generated protocol types, client and server of `eci.agent.v1`.
#[allow(missing_docs, clippy::pedantic)] // generated code
pub mod pb {
    tonic::include_proto!("eci.agent.v1");
}
