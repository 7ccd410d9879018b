//! `eci-vk run` as a process against the real control plane: the Node and its Lease, a pod's
//! life (create, Running, delete), a failing pod, restart adoption, and a pod the node cannot
//! host. Each test runs its own node under a unique name (tests share one cluster) and removes
//! it at the end.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use eci_vk::eci::{Client, ContainerGroup, DescribeContainerGroups, Tag};

use crate::support::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, EmulatorProcess},
    ground::Namespace,
    harness::{Phase, Test},
    image::{self, ImageSpec},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "node::registers_ready_and_renews_its_lease",
            phase: Phase::WithCrd,
            run: registers_ready_and_renews_its_lease,
        },
        Test {
            name: "node::killed_node_goes_not_ready_and_comes_back",
            phase: Phase::WithCrd,
            run: killed_node_goes_not_ready_and_comes_back,
        },
        Test {
            name: "node::bad_settings_exit_2_with_one_line",
            phase: Phase::WithCrd,
            run: bad_settings_exit_2_with_one_line,
        },
        Test {
            name: "node::busybox_pod_runs_and_deletes",
            phase: Phase::WithCrd,
            run: busybox_pod_runs_and_deletes,
        },
        Test {
            name: "node::a_start_is_seen_between_passes",
            phase: Phase::WithCrd,
            run: a_start_is_seen_between_passes,
        },
        Test {
            name: "node::failed_and_unsupported_pods",
            phase: Phase::WithCrd,
            run: failed_and_unsupported_pods,
        },
        Test {
            name: "node::deployment_is_scheduled_onto_the_node",
            phase: Phase::WithCrd,
            run: deployment_is_scheduled_onto_the_node,
        },
        Test {
            name: "node::cloud_outage_keeps_the_node_ready",
            phase: Phase::WithCrd,
            run: cloud_outage_keeps_the_node_ready,
        },
        Test {
            name: "node::env_from_configmaps_and_secrets",
            phase: Phase::WithCrd,
            run: env_from_configmaps_and_secrets,
        },
        Test {
            name: "node::private_image_pulls_with_the_pods_pull_secret",
            phase: Phase::WithCrd,
            run: private_image_pulls_with_the_pods_pull_secret,
        },
        Test {
            name: "node::cloud_deletion_replaces_the_pod_and_orphans_are_collected",
            phase: Phase::WithCrd,
            run: cloud_deletion_replaces_the_pod_and_orphans_are_collected,
        },
        Test {
            name: "node::restart_adopts_pods_without_new_groups",
            phase: Phase::WithCrd,
            run: restart_adopts_pods_without_new_groups,
        },
        Test {
            name: "node::eci_events_reach_the_pod_once_across_restarts",
            phase: Phase::WithCrd,
            run: eci_events_reach_the_pod_once_across_restarts,
        },
    ]
}

/// A running `eci-vk run`; killed (and its Node deleted, unless kept) when dropped.
struct NodeProcess<'g> {
    ground: &'g Ground,
    child: Option<Child>,
    name: String,
    data_dir: PathBuf,
    log: PathBuf,
    _tmp: tempfile::TempDir,
    emulator: Option<String>,
    /// Extra environment for the process.
    env: Vec<(String, String)>,
    /// Flags for the in-process emulator's agent (simulated unless a test sets others).
    agent_args: Vec<String>,
    /// `--pod-sync-interval` in milliseconds: short, so tests see passes often.
    sync_interval_ms: u64,
}

impl<'g> NodeProcess<'g> {
    /// Starts a node named `name`; with `emulator`, against that endpoint with the test keys,
    /// else with the in-process emulator.
    fn start(ground: &'g Ground, name: &str, emulator: Option<&EmulatorProcess>) -> Result<Self> {
        Self::start_at(ground, name, emulator.map(|e| e.endpoint.clone()))
    }

    /// Like [`NodeProcess::start`], with the ECI endpoint given as a URL.
    fn start_at(ground: &'g Ground, name: &str, endpoint: Option<String>) -> Result<Self> {
        let mut node = Self::prepare(ground, name, endpoint)?;
        node.spawn()?;
        Ok(node)
    }

    /// A node not started yet (set `env`, then [`NodeProcess::spawn`]).
    fn prepare(ground: &'g Ground, name: &str, endpoint: Option<String>) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        Ok(NodeProcess {
            ground,
            child: None,
            name: name.to_owned(),
            data_dir: tmp.path().join("data"),
            log: tmp.path().join("node.log"),
            _tmp: tmp,
            emulator: endpoint,
            env: Vec::new(),
            agent_args: vec!["--runtime".into(), "simulated".into()],
            sync_interval_ms: 500,
        })
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut command = Command::new(self.ground.eci_vk());
        command
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.ground.kubeconfig)
            .args(["--node-name", &self.name])
            .args([
                "--pod-sync-interval",
                &format!("{}ms", self.sync_interval_ms),
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // Nodes of these tests leave the cluster's ImageCaches to the suites about them.
            .env("VK_IMAGE_CACHE_CONTROLLER", "false")
            .env("VK_LEADER_ELECT_IDENTITY", format!("{}-test", self.name))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if self.emulator.is_none() {
            command.args(&self.agent_args);
        }
        if let Some(endpoint) = &self.emulator {
            command
                .args(["--eci-endpoint", endpoint])
                .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET);
        }
        let child = command.spawn().context("cannot start eci-vk run")?;
        crate::support::children::register(&child);
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                crate::support::children::forget(&child);
                bail!("eci-vk run did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        crate::support::children::forget(&child);
        ensure!(
            status.success(),
            "eci-vk run exited with {status} after SIGTERM"
        );
        Ok(())
    }

    /// `GET /metrics` from the address the node logged (it must run with VK_METRICS_ADDR).
    fn metrics(&self) -> Result<String> {
        use std::io::{Read, Write};
        let logs = self.logs();
        let addr = logs
            .lines()
            .find(|l| l.contains("metrics listening"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .context("the node did not log its metrics address")?;
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        ensure!(
            answer.starts_with("HTTP/1.1 200"),
            "metrics answered {answer}"
        );
        Ok(answer)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.ground.kubectl().args(args).ok()
    }

    /// Waits until the Node is Ready.
    fn wait_ready(&self) -> Result<()> {
        wait(&format!("node {} Ready", self.name), 30, || {
            let out = self
                .ground
                .kubectl()
                .args([
                    "get",
                    "node",
                    &self.name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .run()?;
            Ok((out.success && out.stdout.trim() == "True").then_some(()))
        })
        .with_context(|| format!("node log:\n{}", self.logs()))
    }
}

impl Drop for NodeProcess<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::support::children::stop(&mut child);
        }
        let _ = self
            .ground
            .kubectl()
            .args([
                "delete",
                "node",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .ok();
    }
}

/// A node name unique to this test and run.
fn node_name(test: &str) -> String {
    format!("vk-{test}-{}", std::process::id())
}

use crate::support::wait::wait;

fn jsonpath(ground: &Ground, namespace: &str, pod: &str, path: &str) -> Result<String> {
    Ok(ground
        .kubectl()
        .args([
            "-n",
            namespace,
            "get",
            "pod",
            pod,
            "-o",
            &format!("jsonpath={path}"),
        ])
        .ok()?
        .trim()
        .to_owned())
}

fn apply(ground: &Ground, namespace: &str, yaml: &str) -> Result<()> {
    ground
        .kubectl()
        .args(["-n", namespace, "apply", "-f", "-"])
        .stdin(yaml.to_owned())
        .ok()?;
    Ok(())
}

fn busybox_pod(name: &str, node: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: main\n    image: {image}\n    command: [sleep]\n    args: [\"3600\"]\n    resources: {{requests: {{cpu: 250m, memory: 256Mi}}}}\n"
    )
}

/// Waits until the pod is Running, Ready and has an IP; returns the IP.
fn wait_running(ground: &Ground, node: &NodeProcess, namespace: &str, pod: &str) -> Result<String> {
    wait(&format!("pod {pod} Running and Ready"), 60, || {
        let phase = jsonpath(ground, namespace, pod, "{.status.phase}")?;
        let ready = jsonpath(
            ground,
            namespace,
            pod,
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        )?;
        let ip = jsonpath(ground, namespace, pod, "{.status.podIP}")?;
        Ok((phase == "Running" && ready == "True" && !ip.is_empty()).then_some(ip))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))
}

/// A runnable busybox image on the ground's plain registry (what the runc agent pulls).
fn busybox_image(ground: &Ground) -> Result<String> {
    let spec = ImageSpec::runnable("node/busybox", "v1");
    ground
        .runtime
        .block_on(image::build_and_push(&spec, &ground.registry))?;
    Ok(ground.registry.reference(&spec.repository, &spec.tag))
}

/// The groups the emulator holds for `node` (by the node tag the node puts on them).
fn groups_of(ground: &Ground, eci: &Client, node: &str) -> Result<Vec<ContainerGroup>> {
    ground.runtime.block_on(async {
        Ok(eci
            .describe_all_container_groups(&DescribeContainerGroups {
                tags: vec![Tag::new(eci_vk::eci::tag::NODE, node)],
                ..DescribeContainerGroups::default()
            })
            .await?)
    })
}

fn registers_ready_and_renews_its_lease(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let name = node_name("lease");
    // The in-process emulator with its real agent, the default without credentials.
    let mut node = NodeProcess::prepare(ground, &name, None)?;
    let pid = std::process::id();
    node.agent_args = vec![
        "--runtime".into(),
        "runc".into(),
        "--bridge".into(),
        format!("ecivkl{:x}", pid & 0xffff),
        "--pod-cidr".into(),
        format!("10.{}.250.0/24", 160 + pid % 64),
    ];
    node.spawn()?;
    node.wait_ready()?;
    let first_line = node.logs().lines().next().unwrap_or_default().to_owned();
    ensure!(
        first_line.contains("starting the ECI emulator and its agent in-process")
            && first_line.contains("runtime=Runc"),
        "the first log line does not say the emulator is used: {first_line}"
    );

    let labels = node.kubectl(&["get", "node", &name, "-o", "jsonpath={.metadata.labels}"])?;
    for wanted in [
        "\"type\":\"virtual-kubelet\"",
        "\"kubernetes.io/role\":\"agent\"",
        &format!("\"kubernetes.io/hostname\":\"{name}\""),
        "\"kubernetes.io/os\":\"linux\"",
        "\"kubernetes.io/arch\":",
        "\"node.kubernetes.io/exclude-from-external-load-balancers\":\"true\"",
    ] {
        ensure!(
            labels.contains(wanted),
            "label {wanted} missing in {labels}"
        );
    }
    let taint = node.kubectl(&[
        "get",
        "node",
        &name,
        "-o",
        "jsonpath={.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}",
    ])?;
    ensure!(
        taint == "virtual-kubelet.io/provider=alibabacloud:NoSchedule",
        "taint is {taint:?}"
    );
    let port = node.kubectl(&[
        "get",
        "node",
        &name,
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ])?;
    ensure!(port == "10250", "kubelet port is {port:?}");
    let ip = node.kubectl(&[
        "get",
        "node",
        &name,
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ])?;
    ensure!(!ip.is_empty(), "no InternalIP");
    let pods = node.kubectl(&[
        "get",
        "node",
        &name,
        "-o",
        "jsonpath={.status.allocatable.pods}",
    ])?;
    ensure!(
        pods == "1k",
        "allocatable pods is {pods:?} (1000, canonical 1k)"
    );

    let lease = |field: &str| {
        node.kubectl(&[
            "-n",
            "kube-node-lease",
            "get",
            "lease",
            &name,
            "-o",
            &format!("jsonpath={field}"),
        ])
    };
    ensure!(
        lease("{.spec.leaseDurationSeconds}")? == "40",
        "lease duration"
    );
    ensure!(
        lease("{.metadata.ownerReferences[0].kind}")? == "Node",
        "lease owner"
    );
    let renewed = lease("{.spec.renewTime}")?;
    wait("the lease to be renewed", 25, || {
        Ok((lease("{.spec.renewTime}")? != renewed).then_some(()))
    })?;
    Ok(())
}

fn busybox_pod_runs_and_deletes(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let eci = emulator.client()?;
    let name = node_name("pod");
    let mut node = NodeProcess::prepare(ground, &name, Some(emulator.endpoint.clone()))?;
    node.env
        .push(("VK_METRICS_ADDR".into(), "127.0.0.1:0".into()));
    node.spawn()?;
    node.wait_ready()?;

    apply(ground, ns, &busybox_pod("bb", &name, &busybox))?;
    apply(ground, ns, &busybox_pod("bb-forced", &name, &busybox))?;
    wait_running(ground, &node, ns, "bb")?;
    wait_running(ground, &node, ns, "bb-forced")?;
    let events = node.kubectl(&[
        "-n",
        ns,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=bb",
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    ensure!(
        events.contains("ProviderCreateSuccess"),
        "events of bb: {events}"
    );
    let groups = groups_of(ground, &eci, &name)?;
    ensure!(
        groups.len() == 2,
        "expected 2 groups, found {}",
        groups.len()
    );
    let uid = jsonpath(ground, ns, "bb", "{.metadata.uid}")?;
    ensure!(
        groups
            .iter()
            .any(|g| g.tags.contains(&Tag::new(eci_vk::eci::tag::UID, &uid))),
        "no group tagged with bb's uid"
    );

    let metrics = wait("metrics with 2 Running pods", 20, || {
        let text = node.metrics()?;
        Ok(text
            .contains("eci_vk_pods{phase=\"Running\"} 2")
            .then_some(text))
    })?;
    ensure!(
        metrics.contains("eci_vk_api_calls_total{action=\"CreateContainerGroup\",result=\"ok\"} 2"),
        "metrics: {metrics}"
    );
    ensure!(
        metrics.contains("eci_vk_sync_pass_seconds_count"),
        "metrics: {metrics}"
    );

    // Graceful delete: kubectl waits until the node removed the pod.
    node.kubectl(&["-n", ns, "delete", "pod", "bb", "--timeout=60s"])?;
    // Forced delete: the pod is gone at once; the node collects its group.
    node.kubectl(&[
        "-n",
        ns,
        "delete",
        "pod",
        "bb-forced",
        "--grace-period=0",
        "--force",
    ])?;
    wait("both groups deleted", 60, || {
        let left = groups_of(ground, &eci, &name)?;
        Ok(left.is_empty().then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    let left = node.kubectl(&["-n", ns, "get", "pods", "-o", "name"])?;
    ensure!(left.trim().is_empty(), "pods left: {left}");
    Ok(())
}

/// With passes ten minutes apart, a new pod is still created and seen Running: the node creates
/// it as the watch shows it and looks at its starting group by id, and does both once.
fn a_start_is_seen_between_passes(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let name = node_name("looks");
    let mut node = NodeProcess::prepare(ground, &name, Some(emulator.endpoint.clone()))?;
    node.sync_interval_ms = 600_000;
    node.env
        .push(("VK_METRICS_ADDR".into(), "127.0.0.1:0".into()));
    node.spawn()?;
    node.wait_ready()?;

    apply(ground, ns, &busybox_pod("quick", &name, &busybox))?;
    // Nothing changes the pod after its create, so no watch event wakes a pass: only a look
    // can tell the node that the group runs.
    wait_running(ground, &node, ns, "quick")?;

    let metrics = node.metrics()?;
    ensure!(
        metrics
            .contains("eci_vk_api_calls_total{action=\"CreateContainerGroup\",result=\"ok\"} 1\n"),
        "the pod's group must be created exactly once; metrics:\n{metrics}"
    );
    let reasons = node.kubectl(&[
        "-n",
        ns,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=quick",
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    let created = reasons
        .split_whitespace()
        .filter(|r| *r == "ProviderCreateSuccess")
        .count();
    ensure!(created == 1, "events of quick: {reasons}");
    // Forced: the pod goes at once, and the pass its deletion wakes collects the group.
    node.kubectl(&[
        "-n",
        ns,
        "delete",
        "pod",
        "quick",
        "--grace-period=0",
        "--force",
    ])?;
    Ok(())
}

fn failed_and_unsupported_pods(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let name = node_name("fail");
    let node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(
        ground,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: exits-1}}\nspec:\n  nodeName: {name}\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: {busybox}\n    command: [sh, -c, \"sleep 0.3; exit 1\"]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: crashes}}\nspec:\n  nodeName: {name}\n  restartPolicy: Always\n  containers:\n  - name: main\n    image: {busybox}\n    command: [sh, -c, \"sleep 0.2; exit 2\"]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: host-net}}\nspec:\n  nodeName: {name}\n  hostNetwork: true\n  containers: [{{name: main, image: {busybox}}}]\n"
        ),
    )?;
    let code = wait("exits-1 Failed", 60, || {
        let phase = jsonpath(ground, ns, "exits-1", "{.status.phase}")?;
        let code = jsonpath(
            ground,
            ns,
            "exits-1",
            "{.status.containerStatuses[0].state.terminated.exitCode}",
        )?;
        Ok((phase == "Failed").then_some(code))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    ensure!(code == "1", "exit code is {code:?}");

    // restartPolicy Always: the group restarts the container; the count rises.
    let mut seen = Vec::new();
    wait("crashes restarted at least twice", 60, || {
        let count: i32 = jsonpath(
            ground,
            ns,
            "crashes",
            "{.status.containerStatuses[0].restartCount}",
        )?
        .parse()
        .unwrap_or(0);
        if seen.last() != Some(&count) {
            seen.push(count);
        }
        Ok((count >= 2).then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    ensure!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "restart counts went {seen:?}"
    );
    let last_exit = jsonpath(
        ground,
        ns,
        "crashes",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    )?;
    ensure!(last_exit == "2", "last state exit code {last_exit:?}");

    let reason = wait("host-net rejected", 30, || {
        let phase = jsonpath(ground, ns, "host-net", "{.status.phase}")?;
        let reason = jsonpath(ground, ns, "host-net", "{.status.reason}")?;
        Ok((phase == "Failed").then_some(reason))
    })?;
    ensure!(reason == "HostNetworkUnsupported", "reason is {reason:?}");
    let events = node.kubectl(&[
        "-n",
        ns,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=host-net",
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    ensure!(
        events.contains("HostNetworkUnsupported"),
        "events of host-net: {events}"
    );
    ensure!(
        !node
            .logs()
            .lines()
            .any(|l| l.contains("pod.name=host-net") && l.contains("container group created")),
        "a group was created for the hostNetwork pod"
    );
    Ok(())
}

fn restart_adopts_pods_without_new_groups(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let eci = emulator.client()?;
    let name = node_name("restart");
    let mut node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(ground, ns, &busybox_pod("survivor", &name, &busybox))?;
    let ip = wait_running(ground, &node, ns, "survivor")?;
    let container_id = jsonpath(
        ground,
        ns,
        "survivor",
        "{.status.containerStatuses[0].containerID}",
    )?;
    let before: Vec<String> = groups_of(ground, &eci, &name)?
        .into_iter()
        .map(|g| g.container_group_id)
        .collect();
    ensure!(before.len() == 1, "expected one group, found {before:?}");
    // Someone else's label and condition on the Node must survive the restart.
    node.kubectl(&["label", "node", &name, "example.com/owner=someone-else"])?;

    node.stop()?;
    let stopped_log_len = node.logs().len();
    node.spawn()?;
    node.wait_ready()?;
    // Several passes of the restarted node (sync interval 500 ms).
    std::thread::sleep(Duration::from_secs(5));

    let after: Vec<String> = groups_of(ground, &eci, &name)?
        .into_iter()
        .map(|g| g.container_group_id)
        .collect();
    ensure!(
        after == before,
        "groups before the restart {before:?}, after {after:?}"
    );
    ensure!(
        jsonpath(ground, ns, "survivor", "{.status.phase}")? == "Running",
        "pod not Running after restart"
    );
    ensure!(
        jsonpath(ground, ns, "survivor", "{.status.podIP}")? == ip,
        "pod IP changed"
    );
    ensure!(
        jsonpath(
            ground,
            ns,
            "survivor",
            "{.status.containerStatuses[0].containerID}"
        )? == container_id,
        "container id changed"
    );
    let second_run = node.logs()[stopped_log_len..].to_owned();
    ensure!(
        !second_run.contains("container group created")
            && !second_run.contains("container group deleted"),
        "the restarted node created or deleted a group:\n{second_run}"
    );
    let label = node.kubectl(&[
        "get",
        "node",
        &name,
        "-o",
        "jsonpath={.metadata.labels.example\\.com/owner}",
    ])?;
    ensure!(
        label == "someone-else",
        "a foreign label was erased: {label:?}"
    );
    Ok(())
}

fn env_from_configmaps_and_secrets(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let eci = emulator.client()?;
    let name = node_name("env");
    let node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(
        ground,
        ns,
        &format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{greeting: hello, level: debug}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: pa55word}}
---
apiVersion: v1
kind: Pod
metadata: {{name: with-env}}
spec:
  nodeName: {name}
  containers:
  - name: main
    image: {busybox}
    command: [sh, -c]
    args:
    - |
      echo "$(GREETING) from $(POD_NAME)"
      echo "level=$CFG_level password=$PASSWORD optional=${{OPTIONAL-unset}}"
      echo "file=$(cat /etc/conf/greeting)"
      echo "namespace=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
      touch /scratch/written && echo scratch=ok
      sleep 3600
    envFrom: [{{configMapRef: {{name: settings}}, prefix: CFG_}}]
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: OPTIONAL, valueFrom: {{secretKeyRef: {{name: absent, key: x, optional: true}}}}}}
    volumeMounts:
    - {{name: conf, mountPath: /etc/conf}}
    - {{name: scratch, mountPath: /scratch}}
  volumes:
  - {{name: conf, configMap: {{name: settings}}}}
  - {{name: scratch, emptyDir: {{}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: needs-secret}}
spec:
  nodeName: {name}
  containers:
  - name: main
    image: {busybox}
    env: [{{name: TOKEN, valueFrom: {{secretKeyRef: {{name: does-not-exist, key: token}}}}}}]
"#
        ),
    )?;
    wait_running(ground, &node, ns, "with-env")?;
    let uid = jsonpath(ground, ns, "with-env", "{.metadata.uid}")?;
    let groups = groups_of(ground, &eci, &name)?;
    let group = groups
        .iter()
        .find(|g| g.tags.contains(&Tag::new(eci_vk::eci::tag::UID, &uid)))
        .context("no group for with-env")?;
    let main = group.containers.first().context("no container")?;
    let env = |key: &str| {
        main.environment_vars
            .iter()
            .find(|v| v.key == key)
            .map(|v| v.value.clone())
    };
    ensure!(
        env("GREETING").as_deref() == Some("hello"),
        "GREETING: {:?}",
        main.environment_vars
    );
    ensure!(
        env("CFG_level").as_deref() == Some("debug"),
        "CFG_level: {:?}",
        main.environment_vars
    );
    ensure!(
        env("PASSWORD").as_deref() == Some("pa55word"),
        "PASSWORD missing"
    );
    ensure!(
        env("POD_NAME").as_deref() == Some("with-env"),
        "POD_NAME missing"
    );
    ensure!(env("OPTIONAL").is_none(), "an optional missing key was set");
    ensure!(
        main.commands
            .iter()
            .chain(&main.args)
            .any(|a| a.contains("echo \"hello from with-env\"")),
        "$(VAR) not expanded: {:?} {:?}",
        main.commands,
        main.args
    );
    // What the container itself saw, from its log through the ECI API.
    let group_id = group.container_group_id.clone();
    let log = wait("the container's report in its log", 60, || {
        let log = ground.runtime.block_on(eci.describe_container_log(
            &eci_vk::eci::DescribeContainerLog {
                container_group_id: group_id.clone(),
                container_name: "main".into(),
                ..Default::default()
            },
        ))?;
        Ok(log.content.contains("scratch=ok").then_some(log.content))
    })?;
    for line in [
        "hello from with-env".to_owned(),
        "level=debug password=pa55word optional=unset".to_owned(),
        "file=hello".to_owned(),
        format!("namespace={ns}"),
    ] {
        ensure!(
            log.contains(&line),
            "the container did not see {line:?}: {log}"
        );
    }
    let volume = |n: &str| {
        group
            .volumes
            .iter()
            .find(|v| v.name == n)
            .map(|v| v.kind.clone())
    };
    ensure!(
        volume("conf").as_deref() == Some("ConfigFileVolume"),
        "volumes: {:?}",
        group.volumes
    );
    ensure!(
        volume("scratch").as_deref() == Some("EmptyDirVolume"),
        "volumes: {:?}",
        group.volumes
    );
    // The service-account volume the apiserver adds (ca.crt, namespace and a requested token).
    let api_volume = jsonpath(
        ground,
        ns,
        "with-env",
        "{.spec.volumes[?(@.projected)].name}",
    )?;
    ensure!(
        !api_volume.is_empty(),
        "the pod has no service-account volume"
    );
    ensure!(
        volume(&api_volume).as_deref() == Some("ConfigFileVolume"),
        "{api_volume}: {:?}",
        group.volumes
    );
    ensure!(
        main.volume_mounts
            .iter()
            .any(|m| m.name == "conf" && m.mount_path == "/etc/conf"),
        "mounts: {:?}",
        main.volume_mounts
    );
    let events = |pod: &str| {
        node.kubectl(&[
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
            "-o",
            "jsonpath={.items[*].reason}",
        ])
    };
    ensure!(
        events("with-env")?.contains("OptionalSecretNotFound"),
        "no OptionalSecretNotFound event"
    );

    wait("MandatorySecretNotFound event", 30, || {
        Ok(events("needs-secret")?
            .contains("MandatorySecretNotFound")
            .then_some(()))
    })?;
    let blocked_uid = jsonpath(ground, ns, "needs-secret", "{.metadata.uid}")?;
    let groups = groups_of(ground, &eci, &name)?;
    ensure!(
        !groups.iter().any(|g| g
            .tags
            .contains(&Tag::new(eci_vk::eci::tag::UID, &blocked_uid))),
        "a group was created although a mandatory Secret is missing"
    );
    ensure!(
        jsonpath(ground, ns, "needs-secret", "{.status.phase}")? == "Pending",
        "needs-secret is not Pending"
    );
    ensure!(
        !node.logs().contains("pa55word"),
        "a secret value reached the node's log"
    );
    Ok(())
}

/// A pod whose image lives on the authenticated registry runs with its `imagePullSecrets`;
/// a missing pull secret is a Warning event, not a stuck pod.
fn private_image_pulls_with_the_pods_pull_secret(
    ground: &Ground,
    namespace: &Namespace,
) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let spec = ImageSpec::runnable("node/private", "v1");
    ground
        .runtime
        .block_on(image::build_and_push(&spec, &ground.auth_registry))?;
    let private = ground.auth_registry.reference(&spec.repository, &spec.tag);
    let (user, password) = ground
        .auth_registry
        .credentials
        .clone()
        .context("the authenticated registry has credentials")?;
    ground
        .kubectl()
        .args([
            "-n",
            ns,
            "create",
            "secret",
            "docker-registry",
            "regcred",
            &format!("--docker-server={}", ground.auth_registry.host),
            &format!("--docker-username={user}"),
            &format!("--docker-password={password}"),
        ])
        .ok()?;
    let name = node_name("pull");
    let node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(
        ground,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: private}}\nspec:\n  nodeName: {name}\n  imagePullSecrets: [{{name: absent}}, {{name: regcred}}]\n  containers:\n  - name: main\n    image: {private}\n    command: [sh, -c, \"echo pulled-privately; sleep 3600\"]\n"
        ),
    )?;
    wait_running(ground, &node, ns, "private")?;
    let events = node.kubectl(&[
        "-n",
        ns,
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=private",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ])?;
    ensure!(
        events
            .lines()
            .any(|l| l.starts_with("FailedToRetrieveImagePullSecret") && l.contains("absent")),
        "no warning about the missing pull secret: {events}"
    );
    ensure!(
        !events.contains(&password) && !node.logs().contains(&password),
        "the registry password leaked"
    );
    Ok(())
}

/// A group deleted on the cloud side takes its pod with it (its Deployment makes a new one);
/// a group whose pod went away while the node was down is deleted when the node is back, and a
/// group of another node with the same cluster tag is left alone.
fn cloud_deletion_replaces_the_pod_and_orphans_are_collected(
    ground: &Ground,
    namespace: &Namespace,
) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let eci = emulator.client()?;
    let busybox = busybox_image(ground)?;
    let name = node_name("gc");
    let mut node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(
        ground,
        ns,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: app}}}}\n  template:\n    metadata: {{labels: {{app: app}}}}\n    spec:\n      nodeName: {name}\n      terminationGracePeriodSeconds: 2\n      containers:\n      - {{name: main, image: {busybox}, command: [sleep, \"3600\"]}}\n"
        ),
    )?;
    let pod_of_app = || -> Result<Option<(String, String)>> {
        let out = node.kubectl(&[
            "-n",
            ns,
            "get",
            "pods",
            "-l",
            "app=app",
            "-o",
            "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.metadata.name} {.metadata.uid}{\"\\n\"}{end}",
        ])?;
        Ok(out
            .lines()
            .next()
            .and_then(|l| l.split_once(' '))
            .map(|(n, u)| (n.to_owned(), u.to_owned())))
    };
    let (first, first_uid) = wait("the app's pod Running", 90, pod_of_app)
        .with_context(|| format!("node log:\n{}", node.logs()))?;
    let group = groups_of(ground, &eci, &name)?
        .into_iter()
        .find(|g| {
            g.tags
                .contains(&Tag::new(eci_vk::eci::tag::UID, &first_uid))
        })
        .context("no group for the app's pod")?;
    ground.runtime.block_on(
        eci.delete_container_group(&eci_vk::eci::DeleteContainerGroup {
            container_group_id: group.container_group_id.clone(),
            ..Default::default()
        }),
    )?;
    let (second, _) = wait(
        "a new pod replacing the one whose group vanished",
        90,
        || Ok(pod_of_app()?.filter(|(_, uid)| *uid != first_uid)),
    )
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    ensure!(second != first, "the pod was not replaced");

    // Another node's group, with this cluster's tag: never this node's to collect.
    let foreign = ground.runtime.block_on(eci.create_container_group(
        &eci_vk::eci::CreateContainerGroup {
            container_group_name: "someone-elses".into(),
            containers: vec![eci_vk::eci::Container {
                name: "main".into(),
                image: busybox.clone(),
                commands: vec!["sleep".into(), "3600".into()],
                ..Default::default()
            }],
            tags: vec![
                Tag::new(eci_vk::eci::tag::CLUSTER, "kubernetes"),
                Tag::new(eci_vk::eci::tag::NODE, "another-node"),
                Tag::new(
                    eci_vk::eci::tag::UID,
                    "00000000-0000-0000-0000-000000000000",
                ),
            ],
            ..Default::default()
        },
    ))?;

    // The pod goes while the node is down: its group is collected when the node is back.
    node.stop()?;
    node.kubectl(&["-n", ns, "scale", "deployment/app", "--replicas=0"])?;
    node.kubectl(&[
        "-n",
        ns,
        "delete",
        "pod",
        &second,
        "--grace-period=0",
        "--force",
        "--ignore-not-found",
    ])?;
    node.spawn()?;
    node.wait_ready()?;
    wait("the orphaned group to be deleted", 60, || {
        Ok(groups_of(ground, &eci, &name)?.is_empty().then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    let still = groups_of(ground, &eci, "another-node")?;
    ensure!(
        still
            .iter()
            .any(|g| g.container_group_id == foreign.container_group_id),
        "another node's group was deleted"
    );
    ground.runtime.block_on(
        eci.delete_container_group(&eci_vk::eci::DeleteContainerGroup {
            container_group_id: foreign.container_group_id,
            ..Default::default()
        }),
    )?;
    Ok(())
}

fn deployment_is_scheduled_onto_the_node(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let eci = emulator.client()?;
    let name = node_name("deploy");
    let node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(
        ground,
        ns,
        &format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      nodeSelector: {{kubernetes.io/hostname: {name}, type: virtual-kubelet}}
      tolerations: [{{key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}}]
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: {busybox}
        command: [sleep, "3600"]
        resources: {{requests: {{cpu: 250m, memory: 512Mi}}}}
"#
        ),
    )?;
    let pods = || {
        Ok::<_, anyhow::Error>(
            node.kubectl(&[
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{\"\\n\"}{end}",
            ])?
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
        )
    };
    wait("3 replicas Running on the node", 90, || {
        let pods = pods()?;
        Ok((pods.len() == 3 && pods.iter().all(|p| *p == format!("{name} Running"))).then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    ensure!(
        groups_of(ground, &eci, &name)?.len() == 3,
        "expected 3 groups"
    );
    let rollout = node
        .ground
        .kubectl()
        .args([
            "-n",
            ns,
            "rollout",
            "status",
            "deployment/web",
            "--timeout=60s",
        ])
        .run()?;
    ensure!(
        rollout.success,
        "the rollout did not complete: {}{}\n{}",
        rollout.stdout,
        rollout.stderr,
        node.kubectl(&[
            "-n",
            ns,
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].status.containerStatuses}"
        ])? + &node.kubectl(&["-n", ns, "get", "deployment", "web", "-o", "yaml"])?
    );

    node.kubectl(&["-n", ns, "scale", "deployment/web", "--replicas=0"])?;
    wait("scaled to 0: no pods and no groups", 90, || {
        Ok((pods()?.is_empty() && groups_of(ground, &eci, &name)?.is_empty()).then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    Ok(())
}

/// A TCP proxy in front of the emulator that can answer every request with HTTP 503 (an ECI
/// `ServiceUnavailable` envelope) while `failing` is set; flipping it drops live connections so
/// pooled ones see the outage too.
struct FlakyProxy {
    endpoint: String,
    failing: tokio::sync::watch::Sender<bool>,
}

impl FlakyProxy {
    fn start(ground: &Ground, upstream: &str) -> Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = ground
            .runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let endpoint = format!("http://{}/", listener.local_addr()?);
        let (failing, watch) = tokio::sync::watch::channel(false);
        ground.runtime.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watch = watch.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if *watch.borrow_and_update() {
                        let mut buf = [0u8; 16384];
                        let _ = inbound.read(&mut buf).await;
                        let body = r#"{"RequestId":"proxy","Code":"ServiceUnavailable","Message":"injected outage"}"#;
                        let answer = format!(
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = inbound.write_all(answer.as_bytes()).await;
                        let _ = inbound.shutdown().await;
                        return;
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|failing| *failing) => {}
                    }
                });
            }
        });
        Ok(Self { endpoint, failing })
    }

    fn fail(&self, failing: bool) {
        let _ = self.failing.send(failing);
    }
}

fn cloud_outage_keeps_the_node_ready(ground: &Ground, namespace: &Namespace) -> Result<()> {
    let ns = namespace.name.as_str();
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let eci = emulator.client()?;
    let proxy = FlakyProxy::start(ground, &emulator.endpoint)?;
    let name = node_name("outage");
    let node = NodeProcess::start_at(ground, &name, Some(proxy.endpoint.clone()))?;
    node.wait_ready()?;
    apply(ground, ns, &busybox_pod("before", &name, &busybox))?;
    let ip = wait_running(ground, &node, ns, "before")?;

    let condition = |kind: &str| {
        node.kubectl(&[
            "get",
            "node",
            &name,
            "-o",
            &format!("jsonpath={{.status.conditions[?(@.type==\"{kind}\")].status}}"),
        ])
    };
    proxy.fail(true);
    apply(ground, ns, &busybox_pod("during", &name, &busybox))?;
    wait("ECIReachable False", 60, || {
        Ok((condition("ECIReachable")? == "False").then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    // The Lease does not depend on the cloud: through the outage the node stays Ready and
    // the running pod stays Running (no eviction, no status regression).
    // A minute of outage, as an SRE would see a regional hiccup.
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        ensure!(
            condition("Ready")? == "True",
            "the node left Ready during a cloud outage"
        );
        ensure!(
            jsonpath(ground, ns, "before", "{.status.phase}")? == "Running",
            "before left Running"
        );
    }
    ensure!(
        jsonpath(ground, ns, "during", "{.status.phase}")? == "Pending",
        "during is not Pending"
    );

    proxy.fail(false);
    wait_running(ground, &node, ns, "during")?;
    wait("ECIReachable True", 60, || {
        Ok((condition("ECIReachable")? == "True").then_some(()))
    })?;
    ensure!(
        jsonpath(ground, ns, "before", "{.status.podIP}")? == ip,
        "before's IP changed"
    );
    let groups = groups_of(ground, &eci, &name)?;
    ensure!(
        groups.len() == 2,
        "expected exactly 2 groups after the outage, found {}",
        groups.len()
    );
    Ok(())
}

fn killed_node_goes_not_ready_and_comes_back(
    ground: &Ground,
    _namespace: &Namespace,
) -> Result<()> {
    let name = node_name("kill");
    let mut node = NodeProcess::start(ground, &name, None)?;
    node.wait_ready()?;
    let uid = node.kubectl(&["get", "node", &name, "-o", "jsonpath={.metadata.uid}"])?;
    if let Some(mut child) = node.child.take() {
        child.kill()?;
        child.wait()?;
        crate::support::children::forget(&child);
    }
    // The node lifecycle controller notices the expired Lease (40 s plus its grace period).
    wait(
        "the node to leave Ready after its process died",
        150,
        || {
            let ready = node.kubectl(&[
                "get",
                "node",
                &name,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])?;
            Ok((ready != "True").then_some(()))
        },
    )?;
    node.spawn()?;
    node.wait_ready()?;
    let again = node.kubectl(&["get", "node", &name, "-o", "jsonpath={.metadata.uid}"])?;
    ensure!(again == uid, "the Node was recreated instead of adopted");
    let holder = node.kubectl(&[
        "-n",
        "kube-node-lease",
        "get",
        "lease",
        &name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    ensure!(holder == name, "lease holder is {holder:?}");
    Ok(())
}

fn bad_settings_exit_2_with_one_line(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let run = |args: &[&str], env: &[(&str, &str)]| -> Result<(Option<i32>, String)> {
        let out = Command::new(ground.eci_vk())
            .arg("run")
            .args(args)
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .envs(env.iter().copied())
            .output()?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (code, stderr) = run(&["--cpu", "lots", "--taint", "k=v:Sometimes"], &[])?;
    ensure!(code == Some(2), "exit code {code:?}: {stderr}");
    ensure!(stderr.trim().lines().count() == 1, "not one line: {stderr}");
    ensure!(
        stderr.contains("--cpu") && stderr.contains("--taint"),
        "both settings not named: {stderr}"
    );
    let (code, stderr) = run(&[], &[("VK_NODE_NAME", "Not_A_Name")])?;
    ensure!(
        code == Some(2) && stderr.contains("VK_NODE_NAME"),
        "env not named: {code:?} {stderr}"
    );
    let (code, stderr) = run(
        &["--kubeconfig", &ground.kubeconfig.display().to_string()],
        &[("ALIBABA_CLOUD_ACCESS_KEY_ID", "only-the-id")],
    )?;
    ensure!(
        code == Some(2) && stderr.contains("incomplete"),
        "half a key pair: {code:?} {stderr}"
    );
    Ok(())
}

/// The ECI events on `pod` (source `EciService`), as `name reason count uid` lines, sorted.
fn eci_events_of(ground: &Ground, namespace: &str, pod: &str) -> Result<Vec<String>> {
    let out = ground
        .kubectl()
        .args([
            "-n",
            namespace,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
            "-o",
            "jsonpath={range .items[?(@.source.component==\"EciService\")]}{.metadata.name} {.reason} {.count} {.involvedObject.uid}{\"\\n\"}{end}",
        ])
        .ok()?;
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    Ok(lines)
}

/// How many of `events` have `reason`.
fn with_reason(events: &[String], reason: &str) -> usize {
    events
        .iter()
        .filter(|l| l.split(' ').nth(1) == Some(reason))
        .count()
}

fn eci_events_reach_the_pod_once_across_restarts(
    ground: &Ground,
    namespace: &Namespace,
) -> Result<()> {
    let ns = namespace.name.as_str();
    // Its own emulator (with the real runc agent, on a bridge and pod range of its own), so
    // the groups and their events outlive the node's restart.
    let emulator = EmulatorProcess::start_runc(ground, &[])?;
    let busybox = busybox_image(ground)?;
    let name = node_name("cloud-events");
    let mut node = NodeProcess::start(ground, &name, Some(&emulator))?;
    node.wait_ready()?;
    apply(ground, ns, &busybox_pod("talker", &name, &busybox))?;
    wait_running(ground, &node, ns, "talker")?;
    let uid = jsonpath(ground, ns, "talker", "{.metadata.uid}")?;

    let before = wait(
        "ECI's Pulling, Pulled, Created, Started on the pod",
        30,
        || {
            let events = eci_events_of(ground, ns, "talker")?;
            let all = ["Pulling", "Pulled", "Created", "Started"]
                .iter()
                .all(|r| with_reason(&events, r) >= 1);
            Ok(all.then_some(events))
        },
    )
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    for reason in ["Pulling", "Pulled", "Created", "Started"] {
        ensure!(
            with_reason(&before, reason) == 1,
            "{reason} is not on the pod exactly once: {before:#?}"
        );
    }
    for line in &before {
        ensure!(
            line.ends_with(&format!(" 1 {uid}")),
            "an ECI event with another count or object: {line}"
        );
    }
    // Several passes more change nothing.
    std::thread::sleep(Duration::from_secs(3));
    let settled = eci_events_of(ground, ns, "talker")?;
    ensure!(
        settled == before,
        "events changed while nothing happened: {before:#?} then {settled:#?}"
    );

    // Killed and started again: a fresh node with no memory of what it wrote.
    node.stop()?;
    node.spawn()?;
    node.wait_ready()?;
    std::thread::sleep(Duration::from_secs(5));
    let after = eci_events_of(ground, ns, "talker")?;
    ensure!(
        after == before,
        "the restarted node changed the pod's ECI events: {before:#?} then {after:#?}\nnode log:\n{}",
        node.logs()
    );
    Ok(())
}
