//! The pod controller: Pods bound to this node become ECI container groups, and the groups'
//! state flows back into the pods' status.
//!
//! - [`translate`]: Pod → `CreateContainerGroup` (pure).
//! - [`env`]: a container's environment from values, ConfigMaps, Secrets and the downward API (pure).
//! - [`volumes`]: pod volumes → ECI volumes (pure).
//! - [`status`]: described group → `PodStatus` (pure).
//! - [`snapshot`]: the image cache a new pod starts from (pure).
//! - [`starts`]: creates in flight and groups starting, for quick creates and looks.
//! - [`controller`]: the watch, the batched poll, creation, deletion, adoption and orphan
//!   collection.

pub mod controller;
pub mod env;
pub mod pull_secrets;
pub mod snapshot;
pub mod starts;
pub mod status;
pub mod translate;
pub mod volumes;

pub use controller::{PodsConfig, run};
pub use translate::{Placement, Unsupported, check_supported, tags, translate};

/// Failures of the pods room. Per-pod failures are handled (logged, evented, retried) inside
/// the controller; these are the ones that stop it.
#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    /// The pod watch ended before its first list completed (the apiserver went away, or RBAC
    /// forbids listing pods).
    #[error("the watch of pods on node {node} stopped before its first list completed")]
    InitialListFailed {
        /// The node.
        node: String,
    },
}
