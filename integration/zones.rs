//! One virtual node per zone, as ACK's managed virtual node registers them: a process given
//! vSwitches in two zones registers `<prefix>-<zone>` for each, labelled with its zone; the real
//! scheduler spreads a Deployment over the zones by `topologySpreadConstraints`; and each group
//! is created in its node's zone with that zone's vSwitch, as the official Python SDK's
//! `DescribeContainerGroups` reads it from the emulator (which knows each vSwitch's zone); and
//! each node's kubelet API answers `kubectl logs` for its pods; a process killed and started
//! again adopts both nodes' groups, creating and deleting none.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use eci_vk::eci::{DescribeContainerGroups, Tag};

use crate::support::{
    Ground,
    emulator::{EmulatorProcess, python_sdk, sdk_script},
    ground::Namespace,
    harness::{Phase, Test},
    node_child::NodeChild,
    workload,
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "zones::a_node_per_zone_spreads_a_deployment",
        phase: Phase::WithCrd,
        run: a_node_per_zone_spreads_a_deployment,
    }]
}

const REPLICAS: usize = 4;

fn a_node_per_zone_spreads_a_deployment(ground: &Ground, ns: &Namespace) -> Result<()> {
    let ns = ns.name.as_str();
    let python = python_sdk()?;
    let pid = std::process::id();
    let zones = [
        ("cn-hangzhou-j", format!("vsw-{pid}j")),
        ("cn-hangzhou-k", format!("vsw-{pid}k")),
    ];
    let layout = zones
        .iter()
        .map(|(zone, vswitch)| format!("{zone}={vswitch}"))
        .collect::<Vec<_>>()
        .join(";");
    let emulator = EmulatorProcess::start(
        ground.eci_vk(),
        &[
            "--vswitch-zones",
            &layout,
            "--sim-pull-ms",
            "20",
            "--sim-start-ms",
            "20",
        ],
    )?;
    let tmp = tempfile::tempdir()?;
    let prefix = format!("vkz-{pid}");
    let pairs: Vec<(&str, &str)> = zones.iter().map(|(z, v)| (*z, v.as_str())).collect();
    let node =
        NodeChild::spawn_zones(ground, &prefix, &pairs, &emulator.endpoint, tmp.path(), &[])?;
    node.wait_ready()?;

    // Each node carries its zone and ACK's labels.
    for ((zone, _), name) in zones.iter().zip(&node.nodes) {
        let labels: BTreeMap<String, String> = serde_json::from_str(
            &ground
                .kubectl()
                .args(["get", "node", name, "-o", "jsonpath={.metadata.labels}"])
                .ok()?,
        )?;
        for (key, value) in [
            ("topology.kubernetes.io/zone", *zone),
            ("topology.kubernetes.io/region", "cn-hangzhou"),
            ("type", "virtual-kubelet"),
            ("kubernetes.io/role", "agent"),
            ("kubernetes.io/hostname", name.as_str()),
            (
                "node.kubernetes.io/exclude-from-external-load-balancers",
                "true",
            ),
        ] {
            ensure!(
                labels.get(key).map(String::as_str) == Some(value),
                "node {name}: label {key} is {:?}, not {value:?}",
                labels.get(key)
            );
        }
    }

    // Spread by zone, over these two nodes only (other tests' virtual nodes share the cluster).
    let hosts = node.nodes.join(", ");
    workload::apply(
        ground,
        ns,
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: spread}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: spread}}}}
  template:
    metadata: {{labels: {{app: spread}}}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{hosts}]}}]
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {{matchLabels: {{app: spread}}}}
      tolerations: [{{key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}}]
      terminationGracePeriodSeconds: 5
      containers:
      - name: main
        image: busybox:1.36
        command: [sleep, "3600"]
"#
        ),
    )?;
    workload::wait_running(ground, ns, "app=spread", REPLICAS, 90)
        .with_context(|| format!("node log:\n{}", node.logs()))?;

    let pods: serde_json::Value = serde_json::from_str(
        &ground
            .kubectl()
            .args(["-n", ns, "get", "pods", "-l", "app=spread", "-o", "json"])
            .ok()?,
    )?;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    let host = emulator.host_port();
    for pod in pods["items"].as_array().context("no pods")? {
        let on = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        *per_node.entry(on.to_owned()).or_default() += 1;
        let (zone, vswitch) = zones
            .iter()
            .find(|(zone, _)| on == format!("{prefix}-{zone}"))
            .with_context(|| format!("pod on {on:?}, not on a zone node"))?;
        let id = pod["metadata"]["annotations"]["k8s.aliyun.com/eci-instance-id"]
            .as_str()
            .context("a Running pod without its instance id")?;
        let seen: serde_json::Value =
            serde_json::from_str(&sdk_script(&python, "describe_group.py", &[host, id])?)?;
        ensure!(
            seen["ZoneId"] == *zone && seen["VSwitchId"] == vswitch.as_str(),
            "group {id} of a pod on {on}: ZoneId {} VSwitchId {}, not {zone} {vswitch}",
            seen["ZoneId"],
            seen["VSwitchId"]
        );
    }
    ensure!(
        per_node.len() == 2 && per_node.values().all(|n| *n == REPLICAS / 2),
        "pods per node: {per_node:?}"
    );
    // Each node serves its own kubelet API: `kubectl logs` reaches a pod on either.
    ground.let_apiserver_reach_kubelets()?;
    for name in &node.nodes {
        let pod = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["spec"]["nodeName"] == name.as_str())
            .and_then(|p| p["metadata"]["name"].as_str())
            .context("no pod on the node")?;
        let logs = ground
            .kubectl()
            .args(["-n", ns, "logs", pod])
            .ok()
            .with_context(|| format!("kubectl logs of {pod} on {name}"))?;
        ensure!(
            logs.contains("simulated container main started"),
            "logs of {pod} on {name}: {logs:?}"
        );
    }

    // A restarted process adopts both nodes' groups: nothing created, nothing deleted.
    let groups = |node_name: &str| -> Result<Vec<String>> {
        let eci = emulator.client()?;
        ground.runtime.block_on(async {
            let mut ids: Vec<String> = eci
                .describe_all_container_groups(&DescribeContainerGroups {
                    tags: vec![Tag::new(eci_vk::eci::tag::NODE, node_name)],
                    ..DescribeContainerGroups::default()
                })
                .await?
                .into_iter()
                .map(|g| g.container_group_id)
                .collect();
            ids.sort();
            Ok(ids)
        })
    };
    let before: Vec<Vec<String>> = node
        .nodes
        .iter()
        .map(|n| groups(n))
        .collect::<Result<_>>()?;
    ensure!(
        before.iter().all(|ids| ids.len() == REPLICAS / 2),
        "groups per node before the restart: {before:?}"
    );
    let nodes = node.nodes.clone();
    node.crash()?;
    let restarted =
        NodeChild::spawn_zones(ground, &prefix, &pairs, &emulator.endpoint, tmp.path(), &[])?;
    ensure!(
        restarted.nodes == nodes,
        "{:?} != {nodes:?}",
        restarted.nodes
    );
    restarted.wait_ready()?;
    workload::wait_running(ground, ns, "app=spread", REPLICAS, 60)
        .with_context(|| format!("node log:\n{}", restarted.logs()))?;
    // A few passes of the restarted node.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let after: Vec<Vec<String>> = nodes.iter().map(|n| groups(n)).collect::<Result<_>>()?;
    ensure!(
        before == after,
        "groups changed across the restart: {before:?} → {after:?}\nnode log:\n{}",
        restarted.logs()
    );
    Ok(())
}
