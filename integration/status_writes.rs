//! A node with nothing changing writes nothing: once its pods run and their status and
//! annotations are written, further sync passes send no pod write to the API server (counted
//! by the node's own `eci_vk_pod_writes_total`). Each pod's status used to be written on every
//! pass, because the API server's `lastState: {}` compared unequal to the node's absent one.
//!
//! And a pod's annotations (the request and group ids, the instance spec…) ride with its status
//! writes: none is a write of its own. They used to cost two writes a pod of their own, one at
//! the create and one when the group was first described.

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    node_child::{NodeChild, metrics_at, sample},
    workload,
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "status_writes::annotations_ride_with_status_and_idle_passes_write_nothing",
        phase: Phase::WithCrd,
        run: annotations_ride_with_status_and_idle_passes_write_nothing,
    }]
}

/// Pods of the test's Deployment.
const REPLICAS: usize = 10;

/// The node's count of pod writes of `kind`.
fn writes(port: u16, kind: &str) -> Result<f64> {
    Ok(sample(
        &metrics_at(port)?,
        &format!("eci_vk_pod_writes_total{{kind=\"{kind}\"}}"),
    ))
}

fn annotations_ride_with_status_and_idle_passes_write_nothing(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let ns = ns.name.as_str();
    let tmp = tempfile::tempdir()?;
    let emulator = EmulatorProcess::start(
        ground.eci_vk(),
        &["--sim-pull-ms", "20", "--sim-start-ms", "20"],
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let node = NodeChild::spawn(
        ground,
        format!("vk-idle-{}", std::process::id()),
        &emulator.endpoint,
        tmp.path(),
        &["--metrics-addr".to_owned(), format!("127.0.0.1:{port}")],
        "info",
    )?;
    node.wait_ready()?;
    workload::apply(
        ground,
        ns,
        workload::busybox_deployment("idle", REPLICAS, &node.name),
    )?;
    workload::wait_running(ground, ns, "app=idle", REPLICAS, 60)
        .with_context(|| format!("node log:\n{}", node.logs()))?;
    // Let the passes that follow the last change write what they must (the store catches up
    // with the node's own writes within a pass or two).
    std::thread::sleep(std::time::Duration::from_secs(3));
    let before = (writes(port, "status")?, writes(port, "annotations")?);
    ensure!(
        before.0 >= REPLICAS as f64,
        "fewer status writes than pods: {before:?}"
    );
    ensure!(
        before.1 == 0.0,
        "annotations written on their own {} times for {REPLICAS} pods\nnode log:\n{}",
        before.1,
        node.logs()
    );
    let pods: serde_json::Value = serde_json::from_str(
        &ground
            .kubectl()
            .args(["-n", ns, "get", "pods", "-l", "app=idle", "-o", "json"])
            .ok()?,
    )?;
    for pod in pods["items"].as_array().context("no pod list")? {
        let annotations = &pod["metadata"]["annotations"];
        for key in [
            "k8s.aliyun.com/eci-request-id",
            "k8s.aliyun.com/eci-instance-id",
        ] {
            ensure!(
                annotations[key].as_str().is_some_and(|v| !v.is_empty()),
                "{key} not written on {}: {annotations}",
                pod["metadata"]["name"]
            );
        }
    }
    // Ten passes of 0.5 s with nothing changing.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let after = (writes(port, "status")?, writes(port, "annotations")?);
    if after != before {
        let pods = ground
            .kubectl()
            .args(["-n", ns, "get", "pods", "-o", "json"])
            .ok()
            .unwrap_or_default();
        anyhow::bail!(
            "idle passes wrote pods: status {} → {}, annotations {} → {}\npods: {pods}\nnode log:\n{}",
            before.0,
            after.0,
            before.1,
            after.1,
            node.logs()
        );
    }
    Ok(())
}
