//! The node's Lease in `kube-node-lease`: the heartbeat the node lifecycle controller reads.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};

use super::{FIELD_MANAGER, NodeError, timeout};

/// Namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Lease duration, as the kubelet uses.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// A quarter of the duration, as the kubelet renews.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// Creates or renews the Lease named after the node, owned by the Node `node_uid`.
///
/// # Errors
/// [`NodeError::RenewLease`] or [`NodeError::Timeout`].
pub async fn renew(client: &Client, node: &str, node_uid: &str) -> Result<(), NodeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = jiff::Timestamp::now();
    let body = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Node",
                "name": node,
                "uid": node_uid,
            }],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now),
        },
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    timeout("renew Lease", node, async {
        api.patch(node, &params, &Patch::Apply(&body)).await
    })
    .await?
    .map_err(|source| NodeError::RenewLease {
        node: node.to_owned(),
        source,
    })?;
    Ok(())
}
