//! ECI's pod annotations end to end (real control plane, `eci-vk emulator` on the simulated
//! runtime, the node as a child process): specs tried in order with the first sold out, spot
//! with and without its price, an EIP, a RAM role and custom tags read back through the
//! official Python SDK, GPUs, fail-fast, and an annotation ECI does not know. And a check that
//! every parameter the node sends for them is one the official SDK's request model has.

use std::{collections::BTreeSet, process::Command};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::Pod;

use crate::support::{
    Ground,
    emulator::{EmulatorProcess, sdk_script},
    ground::Namespace,
    harness::{Phase, Test},
    node_child::NodeChild,
    wait::wait,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "annotations::specs_spot_eip_identity_gpu_and_fail_fast",
            phase: Phase::WithCrd,
            run: specs_spot_eip_identity_gpu_and_fail_fast,
        },
        Test {
            name: "annotations::every_parameter_sent_is_in_the_sdk_request_model",
            phase: Phase::WithCrd,
            run: every_parameter_sent_is_in_the_sdk_request_model,
        },
    ]
}

/// The official SDK's python (installed by the ground's script).
fn sdk_python() -> Result<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/integration/ground/install-python-sdk.sh"))
        .output()?;
    ensure!(
        out.status.success(),
        "install-python-sdk.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Runs `integration/sdk/<script>` with the SDK's python and the emulator's AccessKey.
fn apply(ground: &Ground, ns: &str, yaml: &str) -> Result<()> {
    ground
        .kubectl()
        .args(["-n", ns, "apply", "-f", "-"])
        .stdin(yaml)
        .ok()?;
    Ok(())
}

fn get_pod(ground: &Ground, ns: &str, name: &str) -> Result<Option<Pod>> {
    let out = ground
        .kubectl()
        .args(["-n", ns, "get", "pod", name, "-o", "json"])
        .run()?;
    if !out.success {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&out.stdout)?))
}

fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}

/// Waits until `check` holds for pod `name`, and returns it.
fn pod_where(
    ground: &Ground,
    node: &NodeChild<'_>,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Pod) -> bool,
) -> Result<Pod> {
    wait(&format!("pod {name}: {what}"), 60, || {
        Ok(get_pod(ground, ns, name)?.filter(|p| check(p)))
    })
    .with_context(|| {
        let pod = get_pod(ground, ns, name).ok().flatten();
        format!(
            "pod now: {}\nnode log:\n{}",
            serde_json::to_string(&pod.map(|p| p.status)).unwrap_or_default(),
            node.logs()
        )
    })
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn reason(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.reason.as_deref())
        .unwrap_or_default()
}

/// The events of pod `name`, one `reason message` a line.
fn events(ground: &Ground, ns: &str, name: &str) -> Result<String> {
    ground
        .kubectl()
        .args([
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "jsonpath={range .items[*]}{.reason} {.message}{\"\\n\"}{end}",
        ])
        .ok()
}

fn event_like(ground: &Ground, ns: &str, name: &str, needles: &[&str]) -> Result<String> {
    wait(&format!("an event of {name} with {needles:?}"), 30, || {
        let all = events(ground, ns, name)?;
        Ok(all
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned))
    })
}

/// Applies a one-container pod `name` on `node` with `annotations`; `extra` is added to its
/// container.
fn apply_pod(
    ground: &Ground,
    ns: &str,
    node: &str,
    name: &str,
    annotations: &[(&str, &str)],
    extra: &str,
) -> Result<()> {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: {v:?}\n"))
        .collect();
    apply(
        ground,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n{annotations}spec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n{extra}"
        ),
    )
}

fn specs_spot_eip_identity_gpu_and_fail_fast(ground: &Ground, ns: &Namespace) -> Result<()> {
    let ns = ns.name.as_str();
    let python = sdk_python()?;
    let tmp = tempfile::tempdir()?;
    let emulator = EmulatorProcess::start(
        ground.eci_vk(),
        &[
            "--sold-out",
            "ecs.c6.large,ecs.g6.large",
            "--sim-pull-ms",
            "50",
            "--sim-start-ms",
            "50",
        ],
    )?;
    let node = NodeChild::spawn(
        ground,
        format!("vk-annotations-{}", std::process::id()),
        &emulator.endpoint,
        tmp.path(),
        &["--ram-role-name".to_owned(), "NodeDefaultRole".to_owned()],
        "info",
    )?;
    node.wait_ready()?;
    let host = emulator.host_port();
    let name = node.name.as_str();

    // (a) Specs tried in order: the first is sold out, the Deployment's pod runs on the second
    // and says so.
    apply(
        ground,
        ns,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: specs}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: specs}}}}\n  template:\n    metadata:\n      labels: {{app: specs}}\n      annotations:\n        k8s.aliyun.com/eci-use-specs: \"ecs.c6.large,2-4Gi\"\n    spec:\n      nodeName: {name}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: busybox\n"
        ),
    )?;
    let specs_pod = wait("the specs Deployment's pod", 60, || {
        let out = ground
            .kubectl()
            .args([
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                "app=specs",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ])
            .run()?;
        Ok((out.success && !out.stdout.trim().is_empty()).then(|| out.stdout.trim().to_owned()))
    })?;
    let running = pod_where(
        ground,
        &node,
        ns,
        &specs_pod,
        "Running with its spec annotated",
        |p| phase(p) == "Running" && annotation(p, "k8s.aliyun.com/eci-instance-spec").is_some(),
    )?;
    ensure!(
        annotation(&running, "k8s.aliyun.com/eci-instance-spec").as_deref() == Some("2-4Gi"),
        "the pod did not run on the second spec: {:?}",
        running.metadata.annotations
    );
    let group_id =
        annotation(&running, "k8s.aliyun.com/eci-instance-id").context("no eci-instance-id")?;
    ensure!(group_id.starts_with("eci-"), "instance id {group_id}");
    ensure!(
        annotation(&running, "k8s.aliyun.com/eci-request-id").is_some_and(|r| !r.is_empty()),
        "no eci-request-id: {:?}",
        running.metadata.annotations
    );
    let created = running
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "ContainerInstanceCreated"))
        .map(|c| c.status.clone());
    ensure!(
        created.as_deref() == Some("True"),
        "ContainerInstanceCreated: {created:?}"
    );

    // (b) SpotWithPriceLimit without its price: the pod fails with InvalidAnnotation and an
    // event naming the annotation and the value.
    apply_pod(
        ground,
        ns,
        name,
        "spot-unpriced",
        &[("k8s.aliyun.com/eci-spot-strategy", "SpotWithPriceLimit")],
        "",
    )?;
    pod_where(
        ground,
        &node,
        ns,
        "spot-unpriced",
        "Failed with InvalidAnnotation",
        |p| phase(p) == "Failed" && reason(p) == "InvalidAnnotation",
    )?;
    event_like(
        ground,
        ns,
        "spot-unpriced",
        &[
            "InvalidAnnotation",
            "k8s.aliyun.com/eci-spot-strategy",
            "SpotWithPriceLimit",
            "eci-spot-price-limit",
        ],
    )?;

    // (c) A priced spot pod with an EIP, its own RAM role and custom tags: the group as the
    // official SDK reads it.
    apply_pod(
        ground,
        ns,
        name,
        "spot-eip",
        &[
            ("k8s.aliyun.com/eci-spot-strategy", "SpotWithPriceLimit"),
            ("k8s.aliyun.com/eci-spot-price-limit", "0.25"),
            ("k8s.aliyun.com/eci-with-eip", "true"),
            ("k8s.aliyun.com/eci-ram-role-name", "PodRole"),
            ("k8s.aliyun.com/eci-custom-tags", "team:search,env:test"),
            ("k8s.aliyun.com/eci-made-up", "x"),
        ],
        "",
    )?;
    let spot = pod_where(
        ground,
        &node,
        ns,
        "spot-eip",
        "Running with an EIP address",
        |p| phase(p) == "Running" && annotation(p, "k8s.aliyun.com/allocated-eipAddress").is_some(),
    )?;
    let address = annotation(&spot, "k8s.aliyun.com/allocated-eipAddress").unwrap_or_default();
    ensure!(
        address.parse::<std::net::Ipv4Addr>().is_ok(),
        "EIP address {address:?}"
    );
    let id = annotation(&spot, "k8s.aliyun.com/eci-instance-id").context("no instance id")?;
    let seen: serde_json::Value =
        serde_json::from_str(&sdk_script(&python, "describe_group.py", &[host, &id])?)?;
    ensure!(
        seen["SpotStrategy"] == "SpotWithPriceLimit",
        "SpotStrategy: {}",
        seen["SpotStrategy"]
    );
    ensure!(
        seen["SpotPriceLimit"].as_f64() == Some(0.25),
        "SpotPriceLimit: {}",
        seen["SpotPriceLimit"]
    );
    ensure!(
        seen["RamRoleName"] == "PodRole",
        "RamRoleName: {}",
        seen["RamRoleName"]
    );
    ensure!(
        seen["InternetIp"] == address.as_str(),
        "InternetIp: {}",
        seen["InternetIp"]
    );
    let tags: BTreeSet<(String, String)> = seen["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["Key"].as_str().unwrap_or_default().to_owned(),
                t["Value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for tag in [("team", "search"), ("env", "test")] {
        ensure!(
            tags.contains(&(tag.0.to_owned(), tag.1.to_owned())),
            "tag {tag:?} not on the group: {tags:?}"
        );
    }
    event_like(
        ground,
        ns,
        "spot-eip",
        &["UnsupportedAnnotation", "k8s.aliyun.com/eci-made-up"],
    )?;
    // The node's default RAM role on a pod that names none.
    let first: serde_json::Value = serde_json::from_str(&sdk_script(
        &python,
        "describe_group.py",
        &[host, &group_id],
    )?)?;
    ensure!(
        first["RamRoleName"] == "NodeDefaultRole",
        "default RamRoleName: {}",
        first["RamRoleName"]
    );

    // (d) A GPU: nvidia.com/gpu reaches Container.N.Gpu, on the GPU type the pod named.
    apply_pod(
        ground,
        ns,
        name,
        "gpu",
        &[("k8s.aliyun.com/eci-use-specs", "ecs.gn6i-c4g1.xlarge")],
        "    resources: {limits: {nvidia.com/gpu: 1}}\n",
    )?;
    let gpu = pod_where(ground, &node, ns, "gpu", "Running", |p| {
        phase(p) == "Running" && annotation(p, "k8s.aliyun.com/eci-instance-id").is_some()
    })?;
    let id = annotation(&gpu, "k8s.aliyun.com/eci-instance-id").context("no instance id")?;
    let seen: serde_json::Value =
        serde_json::from_str(&sdk_script(&python, "describe_group.py", &[host, &id])?)?;
    ensure!(
        seen["Containers"][0]["Gpu"] == 1,
        "Gpu: {}",
        seen["Containers"][0]
    );
    ensure!(
        seen["InstanceType"] == "ecs.gn6i-c4g1.xlarge",
        "InstanceType: {}",
        seen["InstanceType"]
    );

    // (e) fail-fast with every spec sold out: Pending, reason ContainerInstanceScheduleFailed,
    // ECI's code in the condition; a fail-back pod keeps trying with the code in its condition.
    apply_pod(
        ground,
        ns,
        name,
        "fail-fast",
        &[
            ("k8s.aliyun.com/eci-use-specs", "ecs.g6.large"),
            ("k8s.aliyun.com/eci-fail-strategy", "fail-fast"),
        ],
        "",
    )?;
    let fast = pod_where(
        ground,
        &node,
        ns,
        "fail-fast",
        "ContainerInstanceScheduleFailed",
        |p| reason(p) == "ContainerInstanceScheduleFailed",
    )?;
    ensure!(
        phase(&fast) == "Pending",
        "fail-fast phase {}",
        phase(&fast)
    );
    let condition = fast
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "ContainerInstanceCreated"))
        .cloned()
        .context("no ContainerInstanceCreated condition")?;
    ensure!(
        condition.status == "False"
            && condition.reason.as_deref() == Some("ContainerGroup.NoStock"),
        "condition {condition:?}"
    );
    event_like(
        ground,
        ns,
        "fail-fast",
        &["ProviderFailed", "ContainerGroup.NoStock"],
    )?;
    apply_pod(
        ground,
        ns,
        name,
        "fail-back",
        &[("k8s.aliyun.com/eci-use-specs", "ecs.g6.large")],
        "",
    )?;
    let back = pod_where(ground, &node, ns, "fail-back", "waiting for stock", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.reason.as_deref() == Some("ContainerGroup.NoStock"))
            })
    })?;
    ensure!(
        phase(&back) == "Pending" && reason(&back).is_empty(),
        "fail-back: {} {}",
        phase(&back),
        reason(&back)
    );
    Ok(())
}

/// A pod that sets every annotation the node maps, translated by the node's own code; the
/// parameter names of its request, each list index as `N`.
fn sent_names() -> Result<BTreeSet<String>> {
    let pod: Pod = serde_yaml_ng::from_str(
        r#"
metadata:
  name: everything
  namespace: default
  uid: 00000000-0000-0000-0000-000000000001
  annotations:
    k8s.aliyun.com/eci-use-specs: "2-4Gi,ecs.gn6i-c4g1.xlarge"
    k8s.aliyun.com/eci-compute-category: "economy,general"
    k8s.aliyun.com/eci-gpu-driver-version: "tesla=535"
    k8s.aliyun.com/eci-extra-ephemeral-storage: "50Gi"
    k8s.aliyun.com/eci-cpu-option-core: "2"
    k8s.aliyun.com/eci-cpu-option-ht: "1"
    k8s.aliyun.com/eci-spot-strategy: "SpotWithPriceLimit"
    k8s.aliyun.com/eci-spot-price-limit: "0.5"
    k8s.aliyun.com/eci-spot-duration: "0"
    k8s.aliyun.com/eci-spot-fallback: "true"
    k8s.aliyun.com/eci-vswitch: "vsw-a,vsw-b"
    k8s.aliyun.com/eci-schedule-strategy: "VSwitchOrdered"
    k8s.aliyun.com/eci-security-group: "sg-a"
    k8s.aliyun.com/eci-with-eip: "true"
    k8s.aliyun.com/eip-bandwidth: "10"
    k8s.aliyun.com/eip-isp: "BGP"
    k8s.aliyun.com/eip-common-bandwidth-package-id: "cbwp-1"
    k8s.aliyun.com/eci-fixed-ip: "true"
    k8s.aliyun.com/eci-fixed-ip-retain-hour: "24"
    k8s.aliyun.com/eci-enable-ipv6: "true"
    k8s.aliyun.com/eci-ipv6-bandwidth-enable: "true"
    k8s.aliyun.com/eci-ipv6-bandwidth: "100M"
    k8s.aliyun.com/eci-private-ip-address: "172.16.0.9"
    kubernetes.io/ingress-bandwidth: "40M"
    kubernetes.io/egress-bandwidth: "20M"
    k8s.aliyun.com/eci-ram-role-name: "Role"
    k8s.aliyun.com/eci-resource-group-id: "rg-1"
    k8s.aliyun.com/eci-custom-tags: "a:1"
    k8s.aliyun.com/eci-custom-hosts: '[{"host":"db","ip":"10.0.0.9"}]'
    k8s.aliyun.com/eci-ntp-server: "100.100.5.1"
    k8s.aliyun.com/eci-core-pattern: "/pod/data/dump/core"
    k8s.aliyun.com/eci-data-cache-bucket: "default"
    k8s.aliyun.com/eci-data-cache-pl: "PL1"
    k8s.aliyun.com/eci-data-cache-provisionedIops: "100"
    k8s.aliyun.com/eci-data-cache-burstingEnabled: "true"
    k8s.aliyun.com/plain-http-registry: "harbor.local"
    k8s.aliyun.com/insecure-registry: "harbor.local"
    k8s.aliyun.com/acr-instance-ids: "cn-beijing:cri-1"
    k8s.aliyun.com/acr-service-arns: "acs:ram::1:role/a"
    k8s.aliyun.com/acr-user-arns: "acs:ram::2:role/b"
spec:
  containers:
  - name: main
    image: busybox
    command: [sh]
    args: [-c, "true"]
    resources: {limits: {cpu: "1", memory: 2Gi, nvidia.com/gpu: 1}}
"#,
    )?;
    let translated = eci_vk::pods::translate(
        &pod,
        &eci_vk::pods::Placement::default(),
        &eci_vk::pods::env::Sources::default(),
        &eci_vk::imagecache::SnapshotDecision::NotRequested,
        Vec::new(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let params = eci_vk::eci::params::to_params(&translated.request).map_err(anyhow::Error::msg)?;
    Ok(params
        .keys()
        .map(|k| {
            k.split('.')
                .map(|part| {
                    if part.chars().all(|c| c.is_ascii_digit()) {
                        "N"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect())
}

fn every_parameter_sent_is_in_the_sdk_request_model(
    _ground: &Ground,
    _ns: &Namespace,
) -> Result<()> {
    let python = sdk_python()?;
    let model: BTreeSet<String> =
        sdk_script(&python, "request_params.py", &["CreateContainerGroup"])?
            .lines()
            .map(str::to_owned)
            .collect();
    ensure!(
        model.len() > 100,
        "the SDK model has only {} names",
        model.len()
    );
    let sent = sent_names()?;
    // The annotations above must have reached the request (a test that cannot fail is none).
    for name in [
        "SpotStrategy",
        "StrictSpot",
        "AutoCreateEip",
        "AcrRegistryInfo.N.ArnUser",
        "NtpServer.N",
        "Container.N.Gpu",
        "CpuOptionsThreadsPerCore",
    ] {
        ensure!(sent.contains(name), "{name} was not sent: {sent:?}");
    }
    let unknown: Vec<&String> = sent.difference(&model).collect();
    ensure!(
        unknown.is_empty(),
        "parameters ECI's SDK model does not have (ECI would ignore them): {unknown:?}"
    );
    Ok(())
}
