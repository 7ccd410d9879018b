//! One virtual node per zone, as ACK's managed virtual node registers them: a process given
//! vSwitches in two zones registers `<prefix>-<zone>` for each, labelled with its zone; the real
//! scheduler spreads a Deployment over the zones by `topologySpreadConstraints`; and each group
//! is created in its node's zone with that zone's vSwitch, as the official Python SDK's
//! `DescribeContainerGroups` reads it from the emulator (which knows each vSwitch's zone); and
//! each node's kubelet API answers `kubectl logs` for its pods; a process killed and started
//! again adopts both nodes' groups, creating and deleting none. The eci-profile's
//! `securityGroupId` reaches the next create without a restart, and a zone whose vSwitches its
//! `vSwitchIds` drops is drained as a cordon does (no new pod; running ones stay).

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use eci_vk::eci::{DescribeContainerGroups, Tag};

use crate::support::{
    Ground,
    emulator::{EmulatorProcess, python_sdk, sdk_script},
    ground::Namespace,
    harness::{Phase, Test},
    node_child::NodeChild,
    wait::wait,
    workload,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "zones::a_node_per_zone_spreads_a_deployment",
            phase: Phase::WithCrd,
            run: a_node_per_zone_spreads_a_deployment,
        },
        Test {
            name: "zones::the_profile_reaches_the_next_create_and_drains_a_zone",
            phase: Phase::WithCrd,
            run: the_profile_reaches_the_next_create_and_drains_a_zone,
        },
    ]
}

const REPLICAS: usize = 4;

fn a_node_per_zone_spreads_a_deployment(ground: &Ground, ns: &Namespace) -> Result<()> {
    let ns = ns.name.as_str();
    let python = python_sdk()?;
    let mut rig = start_zone_rig(ground, "z", &[])?;
    let zones = rig.zones.clone();
    let prefix = rig.prefix.clone();
    let node = rig.node();

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
    let host = rig.emulator.host_port();
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
    let eci = rig.emulator.client()?;
    let groups = |node_name: &str| -> Result<Vec<String>> {
        let eci = eci.clone();
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
    rig.crash_and_restart()?;
    let restarted = rig.node();
    ensure!(
        restarted.nodes == nodes,
        "{:?} != {nodes:?}",
        restarted.nodes
    );
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

/// The zone nodes of one test: the emulator knowing their vSwitches' zones, and the process.
struct ZoneRig<'g> {
    ground: &'g Ground,
    emulator: EmulatorProcess,
    node: Option<NodeChild<'g>>,
    zones: [(&'static str, String); 2],
    prefix: String,
    extra: Vec<String>,
    tmp: tempfile::TempDir,
}

impl<'g> ZoneRig<'g> {
    fn node(&self) -> &NodeChild<'g> {
        self.node.as_ref().expect("the rig's node runs")
    }

    fn spawn(&self) -> Result<NodeChild<'g>> {
        let pairs: Vec<(&str, &str)> = self.zones.iter().map(|(z, v)| (*z, v.as_str())).collect();
        let node = NodeChild::spawn_zones(
            self.ground,
            &self.prefix,
            &pairs,
            &self.emulator.endpoint,
            self.tmp.path(),
            &self.extra,
        )?;
        node.wait_ready()?;
        Ok(node)
    }

    /// Kills the process as a crash would (its Nodes stay) and starts it again.
    fn crash_and_restart(&mut self) -> Result<()> {
        if let Some(node) = self.node.take() {
            node.crash()?;
        }
        self.node = Some(self.spawn()?);
        Ok(())
    }
}

fn start_zone_rig<'g>(ground: &'g Ground, tag: &str, extra: &[String]) -> Result<ZoneRig<'g>> {
    let pid = std::process::id();
    let zones = [
        ("cn-hangzhou-j", format!("vsw-{tag}{pid}j")),
        ("cn-hangzhou-k", format!("vsw-{tag}{pid}k")),
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
    let mut rig = ZoneRig {
        ground,
        emulator,
        node: None,
        zones,
        prefix: format!("vk{tag}-{pid}"),
        extra: extra.to_vec(),
        tmp: tempfile::tempdir()?,
    };
    rig.node = Some(rig.spawn()?);
    Ok(rig)
}

/// What the official SDK reads of the group of pod `name`, once it runs.
fn group_of_pod(
    ground: &Ground,
    rig: &ZoneRig,
    python: &str,
    ns: &str,
    name: &str,
) -> Result<serde_json::Value> {
    wait(&format!("pod {name} Running"), 60, || {
        let phase = workload::pod_field(ground, ns, name, "{.status.phase}")?;
        Ok((phase == "Running").then_some(()))
    })
    .with_context(|| format!("node log:\n{}", rig.node().logs()))?;
    let id = workload::pod_field(
        ground,
        ns,
        name,
        "{.metadata.annotations.k8s\\.aliyun\\.com/eci-instance-id}",
    )?;
    Ok(serde_json::from_str(&sdk_script(
        python,
        "describe_group.py",
        &[rig.emulator.host_port(), id.trim()],
    )?)?)
}

/// Applies the test's eci-profile and waits until the node has it in force (its log names
/// `marker`).
fn set_profile(ground: &Ground, rig: &ZoneRig, ns: &str, data: &str, marker: &str) -> Result<()> {
    workload::apply(
        ground,
        ns,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: eci-profile-zones}}\ndata:\n{data}"
        ),
    )?;
    wait(
        &format!("the node has the profile with {marker}"),
        30,
        || {
            Ok(rig
                .node()
                .logs()
                .lines()
                .any(|l| l.contains("eci-profile in force") && l.contains(marker))
                .then_some(()))
        },
    )
    .with_context(|| format!("node log:\n{}", rig.node().logs()))
}

/// Node `name`'s `spec.unschedulable` and the reasons of the Events about it.
fn cordon_of(ground: &Ground, name: &str) -> Result<(bool, String)> {
    let unschedulable = ground
        .kubectl()
        .args(["get", "node", name, "-o", "jsonpath={.spec.unschedulable}"])
        .ok()?;
    let reasons = ground
        .kubectl()
        .args([
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("involvedObject.name={name},involvedObject.kind=Node"),
            "-o",
            "jsonpath={range .items[*]}{.reason} {end}",
        ])
        .ok()?;
    Ok((unschedulable.trim() == "true", reasons))
}

fn the_profile_reaches_the_next_create_and_drains_a_zone(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let ns = ns.name.as_str();
    let python = python_sdk()?;
    let rig = start_zone_rig(
        ground,
        "p",
        &[
            "--security-group".to_owned(),
            "sg-flag".to_owned(),
            "--profile-namespace".to_owned(),
            ns.to_owned(),
            "--profile-name".to_owned(),
            "eci-profile-zones".to_owned(),
        ],
    )?;
    let (node_j, node_k) = (rig.node().nodes[0].clone(), rig.node().nodes[1].clone());
    let (vsw_j, vsw_k) = (rig.zones[0].1.clone(), rig.zones[1].1.clone());

    // The profile's security group, not the flag's, on the first pod.
    set_profile(ground, &rig, ns, "  securityGroupId: sg-one\n", "sg-one")?;
    workload::apply(ground, ns, workload::busybox_pod("one", &node_j))?;
    let one = group_of_pod(ground, &rig, &python, ns, "one")?;
    ensure!(
        one["SecurityGroupId"] == "sg-one",
        "pod one: {}",
        one["SecurityGroupId"]
    );
    // A pod running in zone k before it is drained.
    workload::apply(ground, ns, workload::busybox_pod("before", &node_k))?;
    let before = group_of_pod(ground, &rig, &python, ns, "before")?;
    ensure!(
        before["VSwitchId"] == vsw_k.as_str(),
        "pod before: {}",
        before["VSwitchId"]
    );

    // A new security group and only zone j's vSwitch: the next create uses both, without a
    // restart, and zone k is drained.
    set_profile(
        ground,
        &rig,
        ns,
        &format!("  securityGroupId: sg-two\n  vSwitchIds: {vsw_j}\n"),
        "sg-two",
    )?;
    workload::apply(ground, ns, workload::busybox_pod("two", &node_j))?;
    let two = group_of_pod(ground, &rig, &python, ns, "two")?;
    ensure!(
        two["SecurityGroupId"] == "sg-two" && two["VSwitchId"] == vsw_j.as_str(),
        "pod two: {} {}",
        two["SecurityGroupId"],
        two["VSwitchId"]
    );
    wait(
        &format!("{node_k} cordoned with a ZoneDrained event"),
        30,
        || {
            let (cordoned, reasons) = cordon_of(ground, &node_k)?;
            Ok((cordoned && reasons.contains("ZoneDrained")).then_some(()))
        },
    )
    .with_context(|| format!("node log:\n{}", rig.node().logs()))?;
    ensure!(!cordon_of(ground, &node_j)?.0, "{node_j} was cordoned too");
    // A pod sent to the drained zone anyway is refused with the reason; the running one stays.
    workload::apply(ground, ns, workload::busybox_pod("late", &node_k))?;
    wait("pod late Failed with ZoneWithoutVSwitch", 30, || {
        let out = workload::pod_field(ground, ns, "late", "{.status.phase} {.status.reason}")?;
        Ok((out.trim() == "Failed ZoneWithoutVSwitch").then_some(()))
    })?;
    let still = workload::pod_field(ground, ns, "before", "{.status.phase}")?;
    ensure!(
        still == "Running",
        "the running pod of the drained zone: {still}"
    );

    // Zone k's vSwitch back: the node takes pods again.
    set_profile(
        ground,
        &rig,
        ns,
        &format!("  securityGroupId: sg-two\n  vSwitchIds: {vsw_j},{vsw_k}\n"),
        &vsw_k,
    )?;
    wait(
        &format!("{node_k} uncordoned with a ZoneRestored event"),
        30,
        || {
            let (cordoned, reasons) = cordon_of(ground, &node_k)?;
            Ok((!cordoned && reasons.contains("ZoneRestored")).then_some(()))
        },
    )
    .with_context(|| format!("node log:\n{}", rig.node().logs()))?;
    Ok(())
}
