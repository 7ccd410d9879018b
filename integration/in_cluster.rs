//! The operator's path, on the ground's real worker node: the image built by
//! `scripts/image.sh`, `helm install` of the chart, then `helm upgrade` to another tag and
//! `helm rollback` while pods keep coming, and the leader pod killed — with the Node's `Ready`
//! condition watched throughout, and the cloud's container groups counted.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

use crate::support::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, EmulatorProcess},
    ground::Namespace,
    harness::{Phase, Test},
    image::{ImageSpec, build_and_push},
    wait::wait,
    workload,
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "in_cluster::helm_install_upgrade_rollback_and_a_killed_leader_keep_the_node_ready",
        phase: Phase::WithCrd,
        run: helm_install_upgrade_rollback_and_a_killed_leader_keep_the_node_ready,
    }]
}

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/eci-virtual-kubelet")
}

/// Builds the image from the binary under test with `scripts/image.sh` and pushes it to the
/// ground's registry as `eci-virtual-kubelet:<tag>`; what the script printed.
fn build_image(ground: &Ground, tag: &str) -> Result<String> {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/image.sh"))
        .arg("--binary")
        .arg(ground.eci_vk())
        .args(["--tag", tag, "--registry", &ground.registry.host])
        .stdin(Stdio::null())
        .output()
        .context("cannot run scripts/image.sh")?;
    ensure!(
        out.status.success(),
        "scripts/image.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The ground's helm against its cluster, with homes of the suite's own.
fn helm(ground: &Ground, args: &[&str]) -> Result<String> {
    let tmp = std::env::temp_dir();
    let out = Command::new(ground.bin.join("helm"))
        .arg("--kubeconfig")
        .arg(&ground.kubeconfig)
        .args(args)
        .env("HELM_CACHE_HOME", tmp.join("eci-vk-helm-cache"))
        .env("HELM_CONFIG_HOME", tmp.join("eci-vk-helm-config"))
        .env("HELM_DATA_HOME", tmp.join("eci-vk-helm-data"))
        .stdin(Stdio::null())
        .output()
        .context("cannot run helm")?;
    ensure!(
        out.status.success(),
        "helm {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The chart copied to `dir`, its CRD carrying one more category (`eci-upgraded`): a CRD
/// change that `helm upgrade` must apply and `helm rollback` undo.
fn changed_chart(dir: &Path) -> Result<PathBuf> {
    let copy = dir.join("eci-virtual-kubelet");
    let status = Command::new("cp")
        .arg("-r")
        .arg(chart_dir())
        .arg(&copy)
        .status()?;
    ensure!(status.success(), "cannot copy the chart");
    let crd = copy.join("files/crds/imagecache.yaml");
    let text = std::fs::read_to_string(&crd)?;
    let changed = text.replacen(
        "    categories:\n    - all\n",
        "    categories:\n    - all\n    - eci-upgraded\n",
        1,
    );
    ensure!(changed != text, "the CRD's categories moved");
    std::fs::write(&crd, changed)?;
    Ok(copy)
}

/// `field` (a jsonpath under the pod, e.g. `.status.phase`) of every pod of `namespace`, by
/// pod name.
fn pods_field(ground: &Ground, namespace: &str, field: &str) -> Result<BTreeMap<String, String>> {
    let out = ground
        .kubectl()
        .args([
            "-n",
            namespace,
            "get",
            "pods",
            "-o",
            &format!(
                "jsonpath={{range .items[*]}}{{.metadata.name}} {{{field}}}{{\"\\n\"}}{{end}}"
            ),
        ])
        .ok()?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(pod, value)| (pod.to_owned(), value.to_owned()))
        .collect())
}

/// Group id of every pod of `namespace` that has one (from the status the node writes,
/// `eci://<group>/<container>`).
fn groups_of_pods(ground: &Ground, namespace: &str) -> Result<BTreeMap<String, String>> {
    Ok(pods_field(
        ground,
        namespace,
        ".status.containerStatuses[0].containerID",
    )?
    .into_iter()
    .filter_map(|(pod, id)| {
        let group = id.strip_prefix("eci://")?.split('/').next()?.to_owned();
        Some((pod, group))
    })
    .collect())
}

/// Every container group of `node` the cloud holds that is not being deleted, read with the
/// node's own request.
fn cloud_groups(emulator: &EmulatorProcess, cluster: &str, node: &str) -> Result<BTreeSet<String>> {
    let eci = emulator.client()?;
    let described = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(eci_vk::pods::describe_node_groups(&eci, cluster, node))?;
    Ok(described
        .into_iter()
        .map(|g| g.container_group_id)
        .collect())
}

/// Creates a pod on `node` every second until `stop`; the names it used.
fn keep_creating(
    ground: &Ground,
    namespace: &str,
    node: &str,
    prefix: &str,
    stop: &AtomicBool,
    made: &AtomicUsize,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let name = format!("{prefix}-{}", made.fetch_add(1, Ordering::Relaxed));
        workload::apply(ground, namespace, workload::busybox_pod(&name, node))?;
        names.push(name);
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(names)
}

/// Waits until every pod in `names` is Running.
fn all_running(ground: &Ground, namespace: &str, names: &[String]) -> Result<()> {
    wait(&format!("{} pods Running", names.len()), 90, || {
        let phases = pods_field(ground, namespace, ".status.phase")?;
        Ok(names
            .iter()
            .all(|n| phases.get(n).is_some_and(|p| p == "Running"))
            .then_some(()))
    })
}

/// A watch of the Node's Ready condition: every state the API server reported.
struct ReadyWatch(std::process::Child);

impl ReadyWatch {
    fn start(ground: &Ground, node: &str) -> Result<Self> {
        Ok(Self(
            ground
                .kubectl()
                .args([
                    "get",
                    "node",
                    node,
                    "--watch",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}",
                ])
                .spawn_piped()?,
        ))
    }

    /// Stops the watch; fails unless every state seen was True.
    fn always_ready(mut self, during: &str) -> Result<()> {
        let _ = self.0.kill();
        let out = self.0.wait_with_output()?;
        let states: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        ensure!(
            !states.is_empty() && states.iter().all(|s| s == "True"),
            "during {during} the Node's Ready condition was {states:?}"
        );
        Ok(())
    }
}

/// Runs `change` (a helm upgrade or rollback) while pods keep being created on `node`; then
/// checks that the Node stayed Ready, every pod made meanwhile runs with one group of its own,
/// and the groups of the pods that ran before are the same ones.
#[allow(clippy::too_many_arguments)]
fn under_load(
    ground: &Ground,
    emulator: &EmulatorProcess,
    namespace: &str,
    node: &str,
    cluster: &str,
    what: &str,
    made: &AtomicUsize,
    change: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let before = groups_of_pods(ground, namespace)?;
    let watch = ReadyWatch::start(ground, node)?;
    let holders = LeaseWatch::start(ground, namespace, node)?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let names = std::thread::scope(|scope| {
        let creating = scope
            .spawn(|| keep_creating(ground, namespace, node, &format!("{what}-pod"), &stop, made));
        let changed = change();
        // A few more pods after the change, by the new processes.
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        let names = creating
            .join()
            .map_err(|_| anyhow::anyhow!("creator panicked"))??;
        changed.map(|()| names)
    })?;
    eprintln!(
        "[in_cluster] {what}: {:.1} s, {} pods created meanwhile",
        started.elapsed().as_secs_f64(),
        names.len()
    );
    all_running(ground, namespace, &names)?;
    watch.always_ready(what)?;
    let (terms, gap) = holders.stop()?;
    eprintln!(
        "[in_cluster] {what}: leaders {terms:?}; longest time without one {:.2} s",
        gap.as_secs_f64()
    );
    // A stopping leader releases its Lease and a standby takes it at its next attempt (1 s).
    ensure!(
        gap <= Duration::from_secs(3),
        "{what}: {:.1} s without a leader ({terms:?})",
        gap.as_secs_f64()
    );
    let after = groups_of_pods(ground, namespace)?;
    for (pod, group) in &before {
        ensure!(
            after.get(pod) == Some(group),
            "{what}: pod {pod} had group {group}, now {:?}",
            after.get(pod)
        );
    }
    let groups: BTreeSet<&String> = after.values().collect();
    ensure!(
        groups.len() == after.len(),
        "{what}: two pods share a group: {after:?}"
    );
    let cloud = cloud_groups(emulator, cluster, node)?;
    let expected: BTreeSet<String> = after.values().cloned().collect();
    ensure!(
        cloud == expected,
        "{what}: the cloud holds groups {:?} for pods' {:?}",
        cloud.symmetric_difference(&expected).collect::<Vec<_>>(),
        after
    );
    Ok(())
}

/// A watch of the node's leader Lease: who held it in turn, and the longest time between one
/// holder's last renewal and the next holder's acquisition (as the Lease records them) — the
/// time nobody acted for the node, whether the old leader released the Lease or let it lapse.
struct LeaseWatch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl LeaseWatch {
    fn start(ground: &Ground, namespace: &str, node: &str) -> Result<Self> {
        let mut child = ground
            .kubectl()
            .args([
                "-n",
                namespace,
                "get",
                "lease",
                &format!("eci-vk-node-{node}"),
                "--watch",
                "-o",
                "jsonpath={.spec.holderIdentity} {.spec.renewTime} {.spec.acquireTime}{\"\\n\"}",
            ])
            .spawn_piped()?;
        let stdout = child.stdout.take().context("kubectl stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The holders in turn, and the longest gap between terms.
    fn stop(mut self) -> Result<(Vec<String>, Duration)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut terms: Vec<String> = Vec::new();
        let mut last_renewed: Option<jiff::Timestamp> = None;
        let mut gap = Duration::ZERO;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // A released Lease has no holder (and the release's renewTime).
            let (holder, renewed, acquired) = match fields.as_slice() {
                [renewed, acquired] => ("", *renewed, *acquired),
                [holder, renewed, acquired] => (*holder, *renewed, *acquired),
                _ => continue,
            };
            let (Ok(renewed), Ok(acquired)) = (
                renewed.parse::<jiff::Timestamp>(),
                acquired.parse::<jiff::Timestamp>(),
            ) else {
                continue;
            };
            if holder.is_empty() {
                // Released: the old leader stopped acting by then.
                last_renewed = Some(renewed);
                continue;
            }
            if terms.last().map(String::as_str) != Some(holder) {
                if let Some(previous) = last_renewed {
                    let between = acquired.duration_since(previous);
                    gap = gap.max(Duration::try_from(between).unwrap_or(Duration::ZERO));
                }
                terms.push(holder.to_owned());
            }
            last_renewed = Some(renewed);
        }
        Ok((terms, gap))
    }
}

/// The holder of the node's leader Lease.
fn leader(ground: &Ground, namespace: &str, node: &str) -> Result<String> {
    Ok(ground
        .kubectl()
        .args([
            "-n",
            namespace,
            "get",
            "lease",
            &format!("eci-vk-node-{node}"),
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .ok()?
        .trim()
        .to_owned())
}

fn helm_install_upgrade_rollback_and_a_killed_leader_keep_the_node_ready(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let namespace = ns.name.as_str();
    let worker = ground.worker()?;
    let printed = build_image(ground, "it-1")?;
    eprintln!("[in_cluster] scripts/image.sh:\n{}", printed.trim_end());
    build_image(ground, "it-2")?;
    let repository = format!("{}/eci-virtual-kubelet", ground.registry.host);
    // The node in the cluster reaches the emulator on the host's side of the worker's link.
    let emulator = EmulatorProcess::start_on(
        ground.eci_vk(),
        &format!("{}:0", worker.host_ip),
        &["--sim-pull-ms", "20", "--sim-start-ms", "20"],
    )?;
    let busybox = ground.runtime.block_on(build_and_push(
        &ImageSpec::runnable("in-cluster/busybox", "latest"),
        &ground.registry,
    ))?;
    let _ = busybox;
    let pid = std::process::id();
    let release = format!("ic{pid}");
    let node = format!("vk-ic-{pid}");
    let cluster = format!("ic-{pid}");
    let values = |tag: &str| -> Vec<String> {
        [
            format!("image.repository={repository}"),
            format!("image.tag={tag}"),
            "securityGroup=sg-ground".to_owned(),
            "vSwitches={vsw-ground}".to_owned(),
            format!("nodeName={node}"),
            format!("clusterName={cluster}"),
            format!("imageCache.class={namespace}"),
            format!("eciEndpoint={}", emulator.endpoint),
            "credentials.existingSecret=".to_owned(),
            format!("credentials.accessKeyId={ACCESS_KEY_ID}"),
            format!("credentials.accessKeySecret={ACCESS_KEY_SECRET}"),
            "logFormat=text".to_owned(),
            "podSyncInterval=500ms".to_owned(),
            "leaderElection.leaseDuration=8s".to_owned(),
            "leaderElection.renewDeadline=5s".to_owned(),
            "leaderElection.retryPeriod=1s".to_owned(),
        ]
        .into_iter()
        .flat_map(|v| ["--set".to_owned(), v])
        .collect()
    };
    let chart = chart_dir();
    let chart = chart.to_string_lossy().into_owned();
    let helm_with = |verb: &[&str], chart: Option<&str>, tag: Option<&str>| -> Result<()> {
        let mut args: Vec<String> = verb.iter().map(|s| (*s).to_owned()).collect();
        if let Some(chart) = chart {
            args.push(chart.to_owned());
        }
        args.extend(["-n", namespace, "--wait", "--timeout", "240s"].map(str::to_owned));
        if let Some(tag) = tag {
            args.extend(values(tag));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        helm(ground, &args).map(|_| ())
    };
    let result = (|| -> Result<()> {
        // The CRD is already there (the suite installs it with `eci-vk crd`, as a 0.1.0 chart's
        // crds/ did): the release adopts it, as the README's upgrade section says.
        adopt_crd(ground, &release, namespace)?;
        // Install: the node's processes run on the worker, and the virtual node is Ready.
        let installed = Instant::now();
        helm_with(&["install", &release], Some(&chart), Some("it-1"))?;
        wait(&format!("node {node} Ready"), 90, || {
            let out = ground
                .kubectl()
                .args([
                    "get",
                    "node",
                    &node,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .run()?;
            Ok((out.success && out.stdout.trim() == "True").then_some(()))
        })?;
        eprintln!(
            "[in_cluster] helm install to Node Ready: {:.1} s",
            installed.elapsed().as_secs_f64()
        );
        let hosts = ground
            .kubectl()
            .args([
                "-n",
                namespace,
                "get",
                "pods",
                "-l",
                &format!("app.kubernetes.io/instance={release}"),
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
            ])
            .ok()?;
        let hosts: Vec<&str> = hosts.lines().collect();
        ensure!(
            hosts.len() == 2 && hosts.iter().all(|h| *h == worker.name),
            "the node's processes run on {hosts:?}, not two on {}",
            worker.name
        );

        // A pod on the virtual node: logs and exec through the API server reach the in-cluster
        // node's kubelet API.
        workload::apply(ground, namespace, workload::busybox_pod("bb", &node))?;
        all_running(ground, namespace, &["bb".to_owned()])?;
        let logs = ground
            .kubectl()
            .args(["-n", namespace, "logs", "bb"])
            .ok()?;
        ensure!(logs.contains("started"), "kubectl logs said {logs:?}");
        // The first exec of a fresh ground has been seen to end without an exit code (the
        // session's output lost; not understood yet, see the closing note of #19): one retry,
        // said out loud, so a second failure still fails the test.
        let exec = || {
            ground
                .kubectl()
                .args([
                    "-n",
                    namespace,
                    "exec",
                    "bb",
                    "--",
                    "echo",
                    "through-the-in-cluster-node",
                ])
                .ok()
        };
        let said = match exec() {
            Ok(said) => said,
            Err(first) => {
                eprintln!("[in_cluster] first exec failed, trying once more: {first:#}");
                std::thread::sleep(Duration::from_secs(1));
                exec()?
            }
        };
        ensure!(
            said.trim() == "through-the-in-cluster-node",
            "kubectl exec said {said:?}"
        );

        // An ImageCache made before the upgrade.
        ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(format!(
                "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: ic-{pid}\n  labels: {{eci.alibabacloud.com/image-cache-class: {namespace}}}\nspec:\n  images: [busybox]\n"
            ))
            .ok()?;
        let cache_ready = || {
            wait("the ImageCache Ready", 90, || {
                let phase = ground
                    .kubectl()
                    .args([
                        "get",
                        "imagecache",
                        &format!("ic-{pid}"),
                        "-o",
                        "jsonpath={.status.phase}",
                    ])
                    .ok()?;
                Ok((phase.trim() == "Ready").then_some(()))
            })
        };
        cache_ready()?;

        // Five pods of a Deployment.
        workload::apply(
            ground,
            namespace,
            workload::busybox_deployment("web", 5, &node),
        )?;
        workload::wait_running(ground, namespace, "app=web", 5, 60)?;

        let made = AtomicUsize::new(0);
        let tmp = tempfile::tempdir()?;
        let upgraded_chart = changed_chart(tmp.path())?;
        let upgraded_chart = upgraded_chart.to_string_lossy().into_owned();
        under_load(
            ground,
            &emulator,
            namespace,
            &node,
            &cluster,
            "upgrade",
            &made,
            || helm_with(&["upgrade", &release], Some(&upgraded_chart), Some("it-2")),
        )?;
        let images = ground
            .kubectl()
            .args([
                "-n",
                namespace,
                "get",
                "deploy",
                "-l",
                &format!("app.kubernetes.io/instance={release}"),
                "-o",
                "jsonpath={.items[0].spec.template.spec.containers[0].image}",
            ])
            .ok()
            .unwrap_or_default();
        ensure!(images.ends_with(":it-2"), "not upgraded: {images}");
        let categories = || {
            ground
                .kubectl()
                .args([
                    "get",
                    "crd",
                    "imagecaches.eci.alibabacloud.com",
                    "-o",
                    "jsonpath={.spec.names.categories}",
                ])
                .ok()
        };
        ensure!(
            categories()?.contains("eci-upgraded"),
            "helm upgrade did not upgrade the CRD"
        );
        cache_ready()?;
        matched_after(ground, namespace, &node, "after-upgrade", pid)?;

        under_load(
            ground,
            &emulator,
            namespace,
            &node,
            &cluster,
            "rollback",
            &made,
            || helm_with(&["rollback", &release, "1"], None, None),
        )?;
        ensure!(
            !categories()?.contains("eci-upgraded"),
            "helm rollback did not roll the CRD back"
        );
        cache_ready()?;

        // Kill the leader's pod: the standby takes over, the Node stays Ready.
        let watch = ReadyWatch::start(ground, &node)?;
        let holder = leader(ground, namespace, &node)?;
        ground
            .kubectl()
            .args([
                "-n",
                namespace,
                "delete",
                "pod",
                &holder,
                "--grace-period=0",
                "--force",
            ])
            .ok()?;
        let killed = Instant::now();
        let next = wait("another leader", 60, || {
            let now = leader(ground, namespace, &node)?;
            Ok((!now.is_empty() && now != holder).then_some(now))
        })?;
        eprintln!(
            "[in_cluster] leader pod {holder} force-deleted; {next} leads after {:.1} s (lease 8 s)",
            killed.elapsed().as_secs_f64()
        );
        matched_after(ground, namespace, &node, "after-takeover", pid)?;
        watch.always_ready("the takeover")?;

        // Uninstall keeps the CRD (resource-policy keep) and the ImageCache.
        helm(ground, &["uninstall", &release, "-n", namespace, "--wait"])?;
        ground
            .kubectl()
            .args(["get", "imagecache", &format!("ic-{pid}")])
            .ok()
            .context("helm uninstall removed the CRD or the ImageCache")?;
        Ok(())
    })();
    let logs = if result.is_err() {
        let logs = ground
            .kubectl()
            .args([
                "-n",
                namespace,
                "logs",
                "-l",
                &format!("app.kubernetes.io/instance={release}"),
                "--tail=40",
                "--prefix",
            ])
            .run()
            .map(|o| o.stdout + &o.stderr)
            .unwrap_or_default();
        let _ = helm(ground, &["uninstall", &release, "-n", namespace]);
        logs
    } else {
        String::new()
    };
    for (kind, name) in [("imagecache", format!("ic-{pid}")), ("node", node)] {
        let _ = ground
            .kubectl()
            .args(["delete", kind, &name, "--ignore-not-found", "--wait=false"])
            .ok();
    }
    result.with_context(|| format!("the node's logs:\n{logs}"))
}

/// Lets release `release` take over the ImageCache CRD that exists (the README's commands).
fn adopt_crd(ground: &Ground, release: &str, namespace: &str) -> Result<()> {
    let crd = "crd/imagecaches.eci.alibabacloud.com";
    ground
        .kubectl()
        .args([
            "label",
            crd,
            "app.kubernetes.io/managed-by=Helm",
            "--overwrite",
        ])
        .ok()?;
    ground
        .kubectl()
        .args([
            "annotate",
            crd,
            &format!("meta.helm.sh/release-name={release}"),
            &format!("meta.helm.sh/release-namespace={namespace}"),
            "--overwrite",
        ])
        .ok()?;
    Ok(())
}

/// A new busybox pod on `node` naming the test's ImageCache by id starts from it: the cache
/// made before the upgrade is still Ready and used. (By id: on a fresh ground ECI also built an
/// automatic cache of busybox for the first pod, which automatic matching may prefer.)
fn matched_after(ground: &Ground, namespace: &str, node: &str, name: &str, pid: u32) -> Result<()> {
    let id = ground
        .kubectl()
        .args([
            "get",
            "imagecache",
            &format!("ic-{pid}"),
            "-o",
            "jsonpath={.status.imageCacheId}",
        ])
        .ok()?;
    let id = id.trim();
    workload::apply(
        ground,
        namespace,
        workload::busybox_pod(name, node).replacen(
            &format!("metadata: {{name: {name}}}"),
            &format!(
                "metadata:\n  name: {name}\n  annotations: {{k8s.aliyun.com/eci-imc-id: {id}}}"
            ),
            1,
        ),
    )?;
    all_running(ground, namespace, &[name.to_owned()])?;
    let matched = ground
        .kubectl()
        .args([
            "-n",
            namespace,
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.metadata.annotations.k8s\\.aliyun\\.com/eci-matched-image-cache}",
        ])
        .ok()?;
    if matched.trim() != id {
        bail!("pod {name} did not start from the ImageCache {id}: matched {matched:?}");
    }
    Ok(())
}
