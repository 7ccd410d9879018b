//! The pod controller: Pods bound to this node become ECI container groups, and the groups'
//! state flows back into the pods' status.
//!
//! Pure parts, with arrows pointing one way (translate → annotations, translate → volumes → env → storage):
//! - [`translate`]: Pod (+ sources, image cache, registry logins) → the finished
//!   `CreateContainerGroup` request.
//! - [`annotations`]: ECI's `k8s.aliyun.com/…` pod annotations → request parameters, and the
//!   ones written back once the group exists.
//! - [`volumes`]: pod volumes → ECI volumes.
//! - [`storage`]: the claims a pod names, and a bound PersistentVolume → its ECI volume.
//! - [`env`]: a container's environment from values, ConfigMaps, Secrets and the downward API.
//! - [`status`]: described group → `PodStatus`.
//! - [`snapshot`]: the image cache a new pod starts from.
//! - [`starts`]: creates in flight and groups starting, for quick creates and looks.
//!
//! The loop, one job a file:
//! - [`controller`]: the watch, the create lane, and the schedule of passes and looks (its
//!   header tells the whole flow).
//! - `pass`: one sync pass — what to do for each pod given its group, and orphans.
//! - `look`: describing groups just created, by id.
//! - `create`: one create, and the backoff of failed ones.
//! - `sources`: reading ConfigMaps, Secrets, service-account tokens, claims and their volumes.
//! - [`pull_secrets`]: a pod's `imagePullSecrets` as registry logins.
//! - `writes`: status writes, annotations, pod removal, events.
//! - `cloud_events`: ECI's own events of a group as Events on its pod, each once.
//! - `groups`: the node's groups on the cloud ([`describe_node_groups`]).
//! - `context`: [`PodsConfig`] and the state the loop's parts share.

pub mod annotations;
mod cloud_events;
mod context;
pub mod controller;
mod create;
mod deadline;
pub mod env;
pub mod fields;
#[doc(hidden)]
pub mod fuzz;
mod groups;
mod look;
mod pass;
mod pass_pace;
pub mod placement;
pub mod pull_secrets;
mod security;
pub mod snapshot;
mod sources;
pub mod starts;
pub mod status;
pub mod storage;
pub mod translate;
mod update;
pub mod volumes;
mod writes;

pub use context::PodsConfig;
pub use controller::run;
pub use groups::{describe_node_groups, node_groups_request};
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
