//! The Node this process registers, its Lease heartbeat and its status.
//!
//! Expected flow: apply the Node (labels, taint) and its status with server-side apply under
//! [`FIELD_MANAGER`], so fields other managers own — labels, annotations, conditions — stay; then
//! renew the Lease in `kube-node-lease` every 10 s (duration 40 s, owned by the Node) and
//! re-apply the status every minute and whenever the cloud's health changes. A Node or Lease
//! that already exists (a restart) is adopted by the same apply.

mod drain;
mod lease;
mod object;

use std::{net::IpAddr, time::Duration};

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use drain::{DRAIN_MANAGER, keep_drained};
pub use lease::{LEASE_DURATION_SECONDS, LEASE_NAMESPACE, RENEW_INTERVAL};
pub use object::{KUBELET_PORT, labels, node, status};

use crate::config::{Capacity, TaintSpec};

/// The field manager of everything this node writes.
pub const FIELD_MANAGER: &str = "eci-virtual-kubelet";

/// How often the node status is re-applied when nothing changed.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(60);

/// Limit on one apiserver call.
pub const API_TIMEOUT: Duration = Duration::from_secs(15);

/// What the Node looks like.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Node name.
    pub name: String,
    /// Region, for the topology label.
    pub region: Option<String>,
    /// Zone, for the topology label (ACK labels each zone's node with its zone, so zone
    /// spreading and affinity work).
    pub zone: Option<String>,
    /// Taint, if any.
    pub taint: Option<TaintSpec>,
    /// Capacity and allocatable.
    pub capacity: Capacity,
    /// InternalIP.
    pub internal_ip: IpAddr,
    /// Port of the kubelet API, advertised in `status.daemonEndpoints` (the API server reaches
    /// `logs`/`exec` there).
    pub kubelet_port: u16,
}

/// Failures of the node room.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Applying the Node object or its status failed.
    #[error("cannot apply Node {node}")]
    ApplyNode {
        /// The node.
        node: String,
        /// The apiserver's answer.
        #[source]
        source: kube::Error,
    },
    /// Applying the Lease failed.
    #[error("cannot renew Lease {LEASE_NAMESPACE}/{node}")]
    RenewLease {
        /// The node.
        node: String,
        /// The apiserver's answer.
        #[source]
        source: kube::Error,
    },
    /// The apiserver did not answer in time.
    #[error("apiserver did not answer {what} for Node {node} within {API_TIMEOUT:?}")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// The node.
        node: String,
    },
    /// The applied Node came back without a UID (never expected of an apiserver).
    #[error("Node {node} has no UID")]
    NoUid {
        /// The node.
        node: String,
    },
}

/// Registers (or adopts) the Node and applies its status. Returns the Node's UID.
///
/// # Errors
/// [`NodeError::ApplyNode`] or [`NodeError::Timeout`].
pub async fn register(
    client: &Client,
    config: &NodeConfig,
    cloud_ok: bool,
) -> Result<String, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = timeout("apply Node", &config.name, async {
        api.patch(&config.name, &params, &Patch::Apply(&node(config)))
            .await
    })
    .await?
    .map_err(|source| NodeError::ApplyNode {
        node: config.name.clone(),
        source,
    })?;
    let uid = applied
        .metadata
        .uid
        .clone()
        .ok_or_else(|| NodeError::NoUid {
            node: config.name.clone(),
        })?;
    apply_status(&api, config, applied.status.as_ref(), cloud_ok).await?;
    Ok(uid)
}

/// Applies the node status, keeping each condition's `lastTransitionTime` while its status holds.
async fn apply_status(
    api: &Api<Node>,
    config: &NodeConfig,
    current: Option<&k8s_openapi::api::core::v1::NodeStatus>,
    cloud_ok: bool,
) -> Result<(), NodeError> {
    let mut wanted = status(config, jiff::Timestamp::now(), cloud_ok);
    if let (Some(conditions), Some(old)) = (
        wanted.conditions.as_mut(),
        current.and_then(|s| s.conditions.as_ref()),
    ) {
        for condition in conditions {
            if let Some(previous) = old
                .iter()
                .find(|o| o.type_ == condition.type_ && o.status == condition.status)
                && previous.last_transition_time.is_some()
            {
                condition.last_transition_time = previous.last_transition_time.clone();
            }
        }
    }
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": config.name },
        "status": wanted,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    timeout("apply Node status", &config.name, async {
        api.patch_status(&config.name, &params, &Patch::Apply(&body))
            .await
    })
    .await?
    .map_err(|source| NodeError::ApplyNode {
        node: config.name.clone(),
        source,
    })?;
    Ok(())
}

/// Keeps the Node and its Lease alive until `shutdown` resolves; `beat` is called after each
/// attempt, whatever its outcome (liveness: the loop is not stuck).
///
/// Failures are logged and retried on the next tick: a missed renewal is not fatal while the
/// lease (40 s) has not expired.
pub async fn run(
    client: Client,
    config: NodeConfig,
    mut node_uid: String,
    mut cloud_ok: watch::Receiver<bool>,
    beat: impl Fn(),
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut renew = tokio::time::interval(RENEW_INTERVAL);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval(STATUS_INTERVAL);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.tick().await;
    tokio::pin!(shutdown);
    info!(node.name = %config.name, "node heartbeat started");
    loop {
        let refresh_status = tokio::select! {
            () = &mut shutdown => break,
            _ = renew.tick() => false,
            _ = refresh.tick() => true,
            changed = cloud_ok.changed() => {
                if changed.is_err() {
                    break;
                }
                true
            }
        };
        if refresh_status {
            let healthy = *cloud_ok.borrow_and_update();
            // Re-apply the whole Node: it also recreates a Node someone deleted.
            match register(&client, &config, healthy).await {
                Ok(uid) => node_uid = uid,
                Err(error) => {
                    warn!(node.name = %config.name, error = &error as &dyn std::error::Error, "node status not applied");
                }
            }
        } else if let Err(error) = lease::renew(&client, &config.name, &node_uid).await {
            warn!(node.name = %config.name, error = &error as &dyn std::error::Error, "lease not renewed");
        } else {
            debug!(node.name = %config.name, "lease renewed");
        }
        beat();
    }
    info!(node.name = %config.name, "node heartbeat stopped");
}

/// Runs `call` under [`API_TIMEOUT`].
async fn timeout<T>(
    what: &'static str,
    node: &str,
    call: impl std::future::Future<Output = T>,
) -> Result<T, NodeError> {
    tokio::time::timeout(API_TIMEOUT, call)
        .await
        .map_err(|_| NodeError::Timeout {
            what,
            node: node.to_owned(),
        })
}
