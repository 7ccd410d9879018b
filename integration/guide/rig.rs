//! What every guide test stands on: an `eci-vk emulator` process as the cloud (simulated
//! runtime, with the test's own delays) and one `eci-vk run` node process against it, hosting
//! the ImageCache controller. The node reconciles and matches only the test's ImageCaches
//! (class `<namespace>`: `--image-cache-class`, label `eci.alibabacloud.com/image-cache-class`)
//! and takes its own leader Lease, so tests running side by side (and nodes of other suites,
//! which take only unlabelled caches) never touch each other's caches. Dropping the rig deletes the test's caches while the node still runs to
//! release them, then stops the node and the emulator.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result};
use eci_vk::{eci, imagecache, pods::tags};
use serde_json::Value;

use crate::support::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, EmulatorProcess},
    ground::Namespace,
};

/// Label putting an ImageCache in a test's scope: the class of the test's node.
pub const LABEL: &str = imagecache::LABEL_CLASS;
/// Longest wait for anything the cloud builds.
pub const SLOW: u64 = 120;
/// Longest wait for a pod to settle.
pub const POD: u64 = 60;
/// The user guide's node: automatic matching only for pods that ask, and "if no suitable image
/// cache is found, ECI creates a pod by downloading required images" (current ECI's defaults
/// are tested in `integration/current_eci.rs`).
pub const GUIDE_POLICY: &[&str] = &[
    "--auto-match-image-cache=false",
    "--auto-create-image-cache=false",
];

static NODES: AtomicU32 = AtomicU32::new(0);

pub struct Rig<'g> {
    pub ground: &'g Ground,
    pub ns: String,
    pub node_name: String,
    pub emulator: EmulatorProcess,
    pub eci: eci::Client,
    child: Option<Child>,
    log: PathBuf,
    /// Flags every start of the node gets.
    node_flags: Vec<String>,
    _tmp: tempfile::TempDir,
}

impl<'g> Rig<'g> {
    /// Starts the emulator on the simulated runtime (pulling each image in `pull_ms`) and a
    /// node against it.
    pub fn start(ground: &'g Ground, ns: &Namespace, pull_ms: u64) -> Result<Self> {
        Self::start_with(ground, ns, pull_ms, GUIDE_POLICY)
    }

    /// [`Self::start`], with `node_flags` added to the node's command line.
    pub fn start_with(
        ground: &'g Ground,
        ns: &Namespace,
        pull_ms: u64,
        node_flags: &[&str],
    ) -> Result<Self> {
        let pull_ms = pull_ms.to_string();
        let tmp = tempfile::tempdir()?;
        let emulator = EmulatorProcess::start(
            ground.eci_vk(),
            &[
                "--no-throttle",
                "--runtime",
                "simulated",
                "--sim-pull-ms",
                &pull_ms,
                "--sim-snapshot-ms",
                "100",
                "--sim-start-ms",
                "100",
            ],
        )?;
        Self::with_emulator(ground, ns, emulator, tmp, node_flags)
    }

    /// Starts the emulator with the real agent (registry pulls into snapshots, runc), on a
    /// bridge and pod range of its own (`slot` distinct per test), trusting the ground's
    /// registries, and a node against it.
    pub fn start_runc(ground: &'g Ground, ns: &Namespace, slot: u8) -> Result<Self> {
        Self::start_runc_with(ground, ns, slot, GUIDE_POLICY)
    }

    /// [`Self::start_runc`], with `node_flags` added to the node's command line.
    pub fn start_runc_with(
        ground: &'g Ground,
        ns: &Namespace,
        slot: u8,
        node_flags: &[&str],
    ) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("agent").to_string_lossy().into_owned();
        let ca = ground
            .auth_registry
            .ca
            .as_ref()
            .context("the authenticated registry has a CA")?
            .to_string_lossy()
            .into_owned();
        let bridge = format!("ecivkg{slot}");
        let cidr = format!("10.232.{slot}.0/24");
        let emulator = EmulatorProcess::start(
            ground.eci_vk(),
            &[
                "--no-throttle",
                "--runtime",
                "runc",
                "--data-dir",
                &data_dir,
                "--bridge",
                &bridge,
                "--pod-cidr",
                &cidr,
                "--plain-http-registry",
                &ground.registry.host,
                "--registry-ca-file",
                &ca,
            ],
        )?;
        Self::with_emulator(ground, ns, emulator, tmp, node_flags)
    }

    fn with_emulator(
        ground: &'g Ground,
        ns: &Namespace,
        emulator: EmulatorProcess,
        tmp: tempfile::TempDir,
        node_flags: &[&str],
    ) -> Result<Self> {
        let eci = emulator.client()?;
        let node_name = format!(
            "vk-guide-{}-{}",
            std::process::id(),
            NODES.fetch_add(1, Ordering::Relaxed)
        );
        let mut rig = Self {
            ground,
            ns: ns.name.clone(),
            node_name,
            emulator,
            eci,
            child: None,
            log: tmp.path().join("node.log"),
            node_flags: node_flags.iter().map(|f| (*f).to_owned()).collect(),
            _tmp: tmp,
        };
        rig.spawn_node()?;
        rig.wait_node_ready()?;
        Ok(rig)
    }

    /// Starts (or restarts) the node process.
    pub fn spawn_node(&mut self) -> Result<()> {
        let child = self.node_command(&self.node_name, &self.log, &[])?;
        self.child = Some(child);
        Ok(())
    }

    /// Restarts the node with `node_flags` instead of the ones it had, and waits for it.
    pub fn respawn_with(&mut self, node_flags: &[&str]) -> Result<()> {
        self.kill_node();
        self.node_flags = node_flags.iter().map(|f| (*f).to_owned()).collect();
        self.spawn_node()?;
        self.wait_node_ready()
    }

    /// A second node in the same cluster (same cloud, cluster name and cache scope) with
    /// `extra` flags; stopped and removed when the guard drops.
    pub fn extra_node(&self, suffix: &str, extra: &[&str]) -> Result<ExtraNode<'g>> {
        let name = format!("{}-{suffix}", self.node_name);
        let log = self.log.with_file_name(format!("{suffix}.log"));
        let child = self.node_command(&name, &log, extra)?;
        Ok(ExtraNode {
            ground: self.ground,
            name,
            log,
            child: Some(child),
        })
    }

    fn node_command(&self, name: &str, log: &std::path::Path, extra: &[&str]) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(self.ground.eci_vk())
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.ground.kubeconfig)
            .args([
                "--node-name",
                name,
                "--pod-sync-interval",
                "500ms",
                "--cluster-name",
                &self.ns,
                "--image-cache-class",
                &self.ns,
                "--eci-endpoint",
                &self.emulator.endpoint,
            ])
            .args(&self.node_flags)
            .args(extra)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
            .env("VK_LEADER_ELECT_IDENTITY", format!("{name}-test"))
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start eci-vk run")?;
        crate::support::children::register(&child);
        Ok(child)
    }

    /// SIGKILL: the node dies wherever it is, as a crashed process would.
    pub fn kill_node(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            crate::support::children::forget(&child);
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_node_ready(&self) -> Result<()> {
        wait(&format!("node {} Ready", self.node_name), POD, || {
            let out = self
                .ground
                .kubectl()
                .args([
                    "get",
                    "node",
                    &self.node_name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .run()?;
            Ok((out.success && out.stdout.trim() == "True").then_some(()))
        })
        .with_context(|| format!("node log:\n{}", self.logs()))
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.ground.kubectl().args(args).ok()
    }

    /// `kubectl create -f -` of `yaml` in the test's namespace.
    pub fn create(&self, yaml: &str) -> Result<()> {
        self.ground
            .kubectl()
            .args(["create", "-n", &self.ns, "-f", "-"])
            .stdin(yaml.to_owned())
            .ok()?;
        Ok(())
    }

    /// An ImageCache named `name` holding `images`, in the test's scope.
    pub fn create_cache(&self, name: &str, images: &[&str]) -> Result<()> {
        let mut yaml = format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {name}\n  labels:\n    {LABEL}: {}\nspec:\n  images:\n",
            self.ns
        );
        for image in images {
            yaml.push_str(&format!("  - {image}\n"));
        }
        self.create(&yaml)
    }

    pub fn cache(&self, name: &str) -> Result<Value> {
        Ok(serde_json::from_str(&self.kubectl(&[
            "get",
            "imagecache",
            name,
            "-o",
            "json",
        ])?)?)
    }

    /// Waits until the ImageCache satisfies `test`; returns it.
    pub fn wait_cache(
        &self,
        name: &str,
        what: &str,
        test: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        wait(&format!("imagecache {name} {what}"), SLOW, || {
            let object = self.cache(name)?;
            Ok(test(&object).then_some(object))
        })
        .with_context(|| {
            format!(
                "status: {}\nnode log (tail):\n{}",
                self.cache(name)
                    .map(|o| o["status"].to_string())
                    .unwrap_or_default(),
                tail(&self.logs(), 40)
            )
        })
    }

    /// Waits until the cache is Ready and returns its `imc-` id.
    pub fn wait_ready(&self, name: &str) -> Result<String> {
        let object = self.wait_cache(name, "Ready", |o| o["status"]["phase"] == "Ready")?;
        object["status"]["imageCacheId"]
            .as_str()
            .map(str::to_owned)
            .context("a Ready cache has an imageCacheId")
    }

    pub fn pod(&self, name: &str) -> Result<Value> {
        Ok(serde_json::from_str(&self.kubectl(&[
            "get", "pod", "-n", &self.ns, name, "-o", "json",
        ])?)?)
    }

    pub fn wait_pod(&self, name: &str, what: &str, test: impl Fn(&Value) -> bool) -> Result<Value> {
        wait(&format!("pod {name} {what}"), POD, || {
            let pod = self.pod(name)?;
            Ok(test(&pod).then_some(pod))
        })
        .with_context(|| format!("node log (tail):\n{}", tail(&self.logs(), 40)))
    }

    pub fn wait_running(&self, name: &str) -> Result<Value> {
        self.wait_pod(name, "Running", |p| p["status"]["phase"] == "Running")
    }

    /// Names of the pods with label `app=<app>`.
    pub fn pods_of(&self, app: &str) -> Result<Vec<String>> {
        let out = self.kubectl(&[
            "get",
            "pods",
            "-n",
            &self.ns,
            "-l",
            &format!("app={app}"),
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Events about the pod `name`, as `(reason, message)`.
    pub fn pod_events(&self, name: &str) -> Result<Vec<(String, String)>> {
        let out = self.kubectl(&[
            "get",
            "events",
            "-n",
            &self.ns,
            "--field-selector",
            &format!("involvedObject.kind=Pod,involvedObject.name={name}"),
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_owned(),
                    e["message"]
                        .as_str()
                        .or(e["note"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect())
    }

    /// Waits for an event with `reason` on the pod; returns its message.
    pub fn wait_pod_event(&self, name: &str, reason: &str) -> Result<String> {
        wait(&format!("event {reason} on pod {name}"), POD, || {
            Ok(self
                .pod_events(name)?
                .into_iter()
                .find(|(r, _)| r == reason)
                .map(|(_, m)| m))
        })
        .with_context(|| format!("events: {:?}", self.pod_events(name).unwrap_or_default()))
    }

    /// The emulator's container group of the pod with `uid`, read through
    /// DescribeContainerGroups as any ECI user would.
    pub fn group_of(&self, uid: &str) -> Result<Option<eci::ContainerGroup>> {
        let eci = self.eci.clone();
        let request = eci::DescribeContainerGroups {
            tags: vec![eci::Tag::new(tags::UID, uid)],
            ..eci::DescribeContainerGroups::default()
        };
        let groups = self
            .ground
            .runtime
            .block_on(async move { eci.describe_all_container_groups(&request).await })
            .context("DescribeContainerGroups")?;
        Ok(groups.into_iter().next())
    }

    /// The cache id the cloud says the pod's group started from: the id in the group's
    /// `SuccessfulHitImageCache` event, `None` when it pulled its images.
    pub fn group_cache(&self, pod: &Value) -> Result<Option<String>> {
        let uid = pod["metadata"]["uid"].as_str().context("pod uid")?;
        let group = wait("the pod's container group", POD, || self.group_of(uid))?;
        Ok(group
            .events
            .iter()
            .find(|e| e.reason == "SuccessfulHitImageCache")
            .and_then(|e| e.message.split_whitespace().find(|w| w.starts_with("imc-")))
            .map(|w| w.trim_end_matches([',', '.']).to_owned()))
    }

    /// Cloud caches tagged for the object `name`.
    pub fn cloud_caches_for(&self, name: &str) -> Result<Vec<eci::ImageCache>> {
        self.describe_caches(eci::DescribeImageCaches {
            tags: vec![eci::Tag::new(
                imagecache::TAG_OBJECT,
                imagecache::object_tag_value(name),
            )],
            ..eci::DescribeImageCaches::default()
        })
    }

    pub fn describe_caches(
        &self,
        request: eci::DescribeImageCaches,
    ) -> Result<Vec<eci::ImageCache>> {
        let eci = self.eci.clone();
        self.ground
            .runtime
            .block_on(async move { eci.describe_all_image_caches(&request).await })
            .context("DescribeImageCaches")
    }
}

impl Drop for Rig<'_> {
    fn drop(&mut self) {
        let selector = format!("{LABEL}={}", self.ns);
        if self.child.is_some() {
            self.ground.delete_image_caches(&selector);
        }
        self.kill_node();
        self.ground.force_remove_image_caches(&selector);
        let lease = imagecache::lease_name(&self.ns, Some(&self.ns));
        for (kind, namespace, name) in [
            ("node", None, self.node_name.as_str()),
            ("lease", Some("kube-system"), lease.as_str()),
        ] {
            let mut args = vec!["delete", kind, name, "--wait=false", "--ignore-not-found"];
            if let Some(namespace) = namespace {
                args.extend(["-n", namespace]);
            }
            let _ = self.ground.kubectl().args(args).run();
        }
    }
}

/// A second node process of a rig.
pub struct ExtraNode<'g> {
    ground: &'g Ground,
    pub name: String,
    log: PathBuf,
    child: Option<Child>,
}

impl ExtraNode<'_> {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ExtraNode<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            crate::support::children::forget(&child);
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
            .run();
    }
}

/// Polls `check` every 250 ms until it yields a value or `seconds` pass.
pub use crate::support::wait::wait;

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
