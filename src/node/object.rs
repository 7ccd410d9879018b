//! The Node object this process owns: labels, taint, capacity, conditions, addresses and
//! daemon endpoint. Pure, so the shape is unit-tested without a cluster.
//!
//! Only the fields built here are applied (server-side apply, field manager
//! [`super::FIELD_MANAGER`]); labels, annotations and conditions that others add stay.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec,
        NodeStatus, NodeSystemInfo, Taint,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};

use super::NodeConfig;

/// The kubelet API's usual port (what `daemonEndpoints` says unless the node binds another).
pub const KUBELET_PORT: i32 = 10250;

/// Labels the node carries.
pub fn labels(config: &NodeConfig) -> BTreeMap<String, String> {
    [
        ("type", "virtual-kubelet"),
        ("kubernetes.io/role", "agent"),
        ("kubernetes.io/hostname", config.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", INSTANCE_ARCH),
        (
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "true",
        ),
        ("alibabacloud.com/virtual-node", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(
        config
            .region
            .iter()
            .map(|r| ("topology.kubernetes.io/region".to_owned(), r.clone())),
    )
    .chain(
        config
            .zone
            .iter()
            .map(|z| ("topology.kubernetes.io/zone".to_owned(), z.clone())),
    )
    .collect()
}

/// The Node's metadata and spec (what is applied on the object itself).
pub fn node(config: &NodeConfig) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(labels(config)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(
                config
                    .taint
                    .iter()
                    .map(|t| Taint {
                        key: t.key.clone(),
                        value: (!t.value.is_empty()).then(|| t.value.clone()),
                        effect: t.effect.clone(),
                        time_added: None,
                    })
                    .collect(),
            ),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The Node's status: capacity, conditions at `now`, address, endpoint, node info.
///
/// `cloud_ok` is whether the last ECI call succeeded: a short outage is reported in the
/// `ECIReachable` condition while `Ready` stays true, so running pods are not evicted.
pub fn status(config: &NodeConfig, now: jiff::Timestamp, cloud_ok: bool) -> NodeStatus {
    let cap = &config.capacity;
    let resources: BTreeMap<_, _> = [
        ("cpu", cap.cpu.clone()),
        ("memory", cap.memory.clone()),
        ("pods", cap.pods.clone()),
        ("ephemeral-storage", cap.ephemeral_storage.clone()),
        ("nvidia.com/gpu", cap.gpu.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let condition = |kind: &str, status: bool, reason: &str, message: &str| NodeCondition {
        type_: kind.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            condition("Ready", true, "KubeletReady", "the virtual node is ready"),
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "ECI capacity is elastic",
            ),
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "ECI capacity is elastic",
            ),
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "ECI capacity is elastic",
            ),
            condition(
                "NetworkUnavailable",
                false,
                "RouteCreated",
                "container groups get VPC addresses",
            ),
            if cloud_ok {
                condition(
                    "ECIReachable",
                    true,
                    "ECIAPIAnswering",
                    "the ECI OpenAPI answers",
                )
            } else {
                condition(
                    "ECIReachable",
                    false,
                    "ECIAPIUnavailable",
                    "the ECI OpenAPI did not answer the last status poll; pods keep running",
                )
            },
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: config.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: config.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(config.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: INSTANCE_ARCH.to_owned(),
            operating_system: "linux".into(),
            kubelet_version: format!("v1.37.0-eci-vk-{}", env!("CARGO_PKG_VERSION")),
            kernel_version: String::new(),
            os_image: "Alibaba Cloud ECI".into(),
            container_runtime_version: "eci://".into(),
            kube_proxy_version: String::new(),
            boot_id: String::new(),
            machine_id: String::new(),
            system_uuid: String::new(),
            ..NodeSystemInfo::default()
        }),
        ..NodeStatus::default()
    }
}

/// The architecture of the instances pods run on, not of this binary: ECI's instances are
/// x86-64 unless a pod asks for an ARM instance type, and ACK's arm64 virtual nodes are separate
/// nodes (its eci-profile's `enableLinuxArm64Node`), so this node is `amd64` wherever it runs.
const INSTANCE_ARCH: &str = "amd64";

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;
    use crate::config::{Capacity, TaintSpec};

    fn config() -> NodeConfig {
        NodeConfig {
            name: "vk-1".into(),
            region: Some("cn-hangzhou".into()),
            zone: Some("cn-hangzhou-j".into()),
            taint: Some(TaintSpec {
                key: "virtual-kubelet.io/provider".into(),
                value: "alibabacloud".into(),
                effect: "NoSchedule".into(),
            }),
            capacity: Capacity {
                cpu: Quantity("100".into()),
                memory: Quantity("1Ti".into()),
                pods: Quantity("500".into()),
                ephemeral_storage: Quantity("1Ti".into()),
                gpu: Quantity("8".into()),
            },
            internal_ip: "10.0.0.1".parse().expect("ip"),
            kubelet_port: 10250,
        }
    }

    #[test]
    fn node_has_labels_and_taint() {
        let node = node(&config());
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["type"], "virtual-kubelet");
        assert_eq!(labels["kubernetes.io/role"], "agent");
        assert_eq!(labels["kubernetes.io/hostname"], "vk-1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["topology.kubernetes.io/region"], "cn-hangzhou");
        assert_eq!(labels["topology.kubernetes.io/zone"], "cn-hangzhou-j");
        assert_eq!(
            labels["node.kubernetes.io/exclude-from-external-load-balancers"],
            "true"
        );
        let taints = node.spec.expect("spec").taints.expect("taints");
        assert_eq!(taints[0].effect, "NoSchedule");
        assert_eq!(taints[0].value.as_deref(), Some("alibabacloud"));
    }

    #[test]
    fn status_is_ready_even_when_the_cloud_is_not() {
        let status = status(&config(), jiff::Timestamp::UNIX_EPOCH, false);
        let conditions = status.conditions.expect("conditions");
        let get = |t: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| c.status.as_str())
        };
        assert_eq!(get("Ready"), Some("True"));
        assert_eq!(get("ECIReachable"), Some("False"));
        assert_eq!(
            status
                .daemon_endpoints
                .and_then(|d| d.kubelet_endpoint)
                .map(|e| e.port),
            Some(10250)
        );
        assert_eq!(
            status.capacity.expect("capacity")["pods"],
            Quantity("500".into())
        );
    }
}
