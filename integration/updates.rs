//! In-place updates as users meet them: `kubectl set image` on a running pod of the virtual node
//! (`eci-vk run` against `eci-vk emulator --runtime runc`) sends `UpdateContainerGroup`; the pod
//! keeps its ECI group, its container restarts on the new image (its log says so), its
//! restartCount rises, and its status shows the new image only once the container runs it.
//!
//! The test has its own bridge (`ecivku1`) and pod range (`10.243.1.0/24`); its guard stops the
//! node and the emulator (whose agent removes every container) however the test ends.

use std::time::Duration;

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    image::{ImageSpec, build_and_push},
    node_child::NodeChild,
    wait::wait,
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "updates::set_image_restarts_the_container_in_place_on_the_new_image",
        phase: Phase::WithCrd,
        run: set_image_restarts_the_container_in_place_on_the_new_image,
    }]
}

/// A runnable image whose `/version` says `text`.
fn version_image(tag: &str, text: &str) -> Result<ImageSpec> {
    ImageSpec::runnable("updates/app", tag).with_file("version", text)
}

/// The node process and its emulator; dropping it stops both and removes the node.
struct Rig<'g> {
    node: NodeChild<'g>,
    _emulator: EmulatorProcess,
    _tmp: tempfile::TempDir,
}

impl<'g> Rig<'g> {
    fn start(ground: &'g Ground) -> Result<Self> {
        // `kubectl logs` goes through the API server to this node's kubelet port.
        ground.let_apiserver_reach_kubelets()?;
        let tmp = tempfile::tempdir()?;
        let registry = ground.registry.reference("x", "y");
        let registry = registry.split('/').next().unwrap_or_default().to_owned();
        let data = tmp.path().join("emulator").display().to_string();
        let emulator = EmulatorProcess::start(
            ground.eci_vk(),
            &[
                "--runtime",
                "runc",
                "--bridge",
                "ecivku1",
                "--pod-cidr",
                "10.243.1.0/24",
                "--plain-http-registry",
                &registry,
                "--data-dir",
                &data,
            ],
        )?;
        let node = NodeChild::spawn(
            ground,
            format!("vk-updates-{}", std::process::id()),
            &emulator.endpoint,
            tmp.path(),
            &[],
            "info",
        )?;
        let rig = Rig {
            node,
            _emulator: emulator,
            _tmp: tmp,
        };
        rig.node.wait_ready()?;
        Ok(rig)
    }

    fn logs(&self) -> String {
        self.node.logs()
    }
}

/// What the pod's status says of its container `main`: image, restartCount, whether it runs,
/// and its container ID.
fn main_status(ground: &Ground, ns: &str) -> Result<(String, u32, bool, String)> {
    let out = ground
        .kubectl()
        .args([
            "-n",
            ns,
            "get",
            "pod",
            "app",
            "-o",
            "jsonpath={.status.containerStatuses[0].image}|{.status.containerStatuses[0].restartCount}|{.status.containerStatuses[0].state.running.startedAt}|{.status.containerStatuses[0].containerID}",
        ])
        .ok()?;
    let parts: Vec<&str> = out.trim().split('|').collect();
    ensure!(parts.len() == 4, "unexpected status {out:?}");
    Ok((
        parts[0].to_owned(),
        parts[1].parse().unwrap_or(0),
        !parts[2].is_empty(),
        parts[3].to_owned(),
    ))
}

fn set_image_restarts_the_container_in_place_on_the_new_image(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let ns = ns.name.as_str();
    for (tag, text) in [("v1", "app-v1"), ("v2", "app-v2")] {
        ground
            .runtime
            .block_on(build_and_push(&version_image(tag, text)?, &ground.registry))?;
    }
    let (v1, v2) = (
        ground.registry.reference("updates/app", "v1"),
        ground.registry.reference("updates/app", "v2"),
    );
    let rig = Rig::start(ground)?;
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: app}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {v1}\n    command: [sh, -c, 'echo running $(cat /version); while true; do sleep 1; done']\n",
        node = rig.node.name,
    );
    ground
        .kubectl()
        .args(["-n", ns, "apply", "-f", "-"])
        .stdin(yaml)
        .ok()?;
    let logs = || -> Result<String> {
        ground
            .kubectl()
            .args(["-n", ns, "logs", "app", "-c", "main"])
            .ok()
    };
    let (_, _, _, first_id) = wait("pod app running on v1", 120, || {
        let status = main_status(ground, ns)?;
        Ok((status.2 && status.0 == v1 && logs()?.contains("running app-v1")).then_some(status))
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))?;
    ground
        .kubectl()
        .args(["-n", ns, "set", "image", "pod/app", &format!("main={v2}")])
        .ok()?;
    // Whenever the status shows the new image, the container already runs on it.
    let mut violations = Vec::new();
    let (_, restarts, _, id) = wait("pod app restarted on v2", 120, || {
        let status = main_status(ground, ns)?;
        if status.0 != v2 {
            if status.0 != v1 {
                violations.push(format!("status shows neither image: {status:?}"));
            }
            return Ok(None);
        }
        if !status.2 {
            violations.push(format!("shows {v2} but does not run: {status:?}"));
            return Ok(None);
        }
        Ok(Some(status))
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))?;
    ensure!(
        violations.is_empty(),
        "the status showed the new image before the container ran it: {violations:?}"
    );
    ensure!(restarts >= 1, "restartCount did not rise: {restarts}");
    ensure!(
        id == first_id,
        "the pod changed its container group: {first_id} → {id}"
    );
    wait("the log of the new container", 30, || {
        Ok(logs()?.contains("running app-v2").then_some(()))
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))?;
    let previous = ground
        .kubectl()
        .args([
            "-n",
            ns,
            "get",
            "pod",
            "app",
            "-o",
            "jsonpath={.status.containerStatuses[0].lastState.terminated.reason}",
        ])
        .ok()?;
    ensure!(
        !previous.trim().is_empty(),
        "lastState does not show the old container terminated"
    );
    let _ = ground
        .kubectl()
        .args(["-n", ns, "delete", "pod", "app", "--wait=false"])
        .ok();
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}
