//! The pod-start benchmark (issue #8, BENCHMARKS.md): how long a pod takes from `create` to
//! `Running` and to `Ready` on the real stack — the test ground's apiserver, `eci-vk run`, the
//! emulator with its real agent pulling from the ground's registry over a link shaped to
//! 8 MiB/s, containers under runc — in three modes: without a cache, with an explicit cache id
//! and with automatic matching; the bytes each pod pulled; and the floor, `runc run` of the
//! same unpacked rootfs alone.
//!
//! `cargo bench --bench pod_start -- --pods 5 [--filler-mib 123] [--bandwidth 8MiB/s]
//! [--sync-ms MS] [--modes none,explicit,auto]`
//!
//! Pods of one mode run one after another (each deleted before the next), so a pod without a
//! cache has the link to itself. Results: a table on stdout, `target/bench/pod_start.json` and
//! `target/bench/pod_start.png`.
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use eci_vk::imagecache::{ImageCache, ImageCacheSpec};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, Pod},
};
use kube::{
    Api, ResourceExt,
    api::{
        DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
        WatchParams,
    },
};
use support::{Daemon, Ground, Summary, secs};

const IMAGES: usize = 3;
/// The bench's caches carry their own class, so only the bench's node takes them.
const LABEL: &str = eci_vk::imagecache::LABEL_CLASS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    /// `k8s.aliyun.com/eci-auto-imc: "false"`: every pod pulls its images over the link.
    None,
    /// `k8s.aliyun.com/eci-image-snapshot-id: imc-…`.
    Explicit,
    /// `k8s.aliyun.com/eci-image-cache: "true"`.
    Auto,
    /// The first pod of a Deployment annotated `eci.alibabacloud.com/warm-image-cache: "true"`,
    /// scaled from 0 once the node warmed its images: timed from the scale.
    Warmed,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::None => "no cache",
            Mode::Explicit => "explicit cache",
            Mode::Auto => "automatic match",
            Mode::Warmed => "warmed workload",
        }
    }
}

struct Args {
    pods: usize,
    filler_mib: u64,
    bandwidth: String,
    sync_ms: Option<u64>,
    modes: Vec<Mode>,
}

fn args() -> Result<Args> {
    let mut args = Args {
        pods: 5,
        filler_mib: 123,
        bandwidth: "8MiB/s".into(),
        sync_ms: None,
        modes: vec![Mode::Explicit, Mode::Auto, Mode::None],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--pods" => args.pods = value()?.parse().context("--pods")?,
            "--filler-mib" => args.filler_mib = value()?.parse().context("--filler-mib")?,
            "--bandwidth" => args.bandwidth = value()?,
            "--sync-ms" => args.sync_ms = Some(value()?.parse().context("--sync-ms")?),
            "--modes" => {
                args.modes = value()?
                    .split(',')
                    .map(|m| match m {
                        "none" => Ok(Mode::None),
                        "explicit" => Ok(Mode::Explicit),
                        "auto" => Ok(Mode::Auto),
                        "warmed" => Ok(Mode::Warmed),
                        _ => bail!("--modes: unknown mode {m:?} (none, explicit, auto, warmed)"),
                    })
                    .collect::<Result<_>>()?;
            }
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            other => bail!("unknown argument {other:?}"),
        }
    }
    if args.pods == 0 {
        bail!("--pods must be at least 1");
    }
    Ok(args)
}

/// One pod's timings.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    mode: Mode,
    pod: String,
    container_group: String,
    /// The create call alone (an apiserver write round trip).
    create_call_s: f64,
    running_s: f64,
    ready_s: f64,
    pulled_bytes: u64,
}

fn main() -> Result<()> {
    // `--chart-from FILE.json`: draw the chart of an earlier run again.
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--chart-from") {
        let file = argv.get(i + 1).context("--chart-from FILE.json")?;
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        return chart(&report, &support::out_dir()?.join("pod_start.png"));
    }
    let args = args()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let ground = Ground::reuse_or_start()?;
    // A fresh ground has no ImageCache CRD, and the bench's cache needs it.
    ground.install_crd()?;
    let registry = ground.get("GROUND_REGISTRY")?.to_owned();
    let pid = std::process::id();
    let id = format!("{:04x}", pid & 0xffff);
    let out = support::out_dir()?;

    let images = push_images(&registry, args.filler_mib)?;
    let tmp = tempfile::Builder::new().prefix("eci-vk-bench-").tempdir()?;
    let data = tmp.path().join("emulator");
    let (bridge, cidr) = (format!("ecivkb{id}"), format!("10.250.{}.0/24", pid % 256));
    let emulator_args = [
        "--runtime",
        "runc",
        "--data-dir",
        path_str(&data)?,
        "--plain-http-registry",
        &registry,
        "--registry-bandwidth",
        &args.bandwidth,
        "--bridge",
        &bridge,
        "--pod-cidr",
        &cidr,
    ];
    let (emulator, endpoint) =
        support::start_emulator(&emulator_args, &out.join("pod_start-emulator.log"))?;
    eprintln!(
        "emulator at {endpoint} (bridge {bridge}, pods {cidr}, link {})",
        args.bandwidth
    );

    let node_name = format!("eci-vk-bench-{id}");
    let mut node_args = vec![
        "--node-name".to_owned(),
        node_name.clone(),
        "--cluster-name".into(),
        format!("bench-{id}"),
        "--image-cache-class".into(),
        format!("bench-{id}"),
    ];
    if let Some(ms) = args.sync_ms {
        node_args.extend(["--pod-sync-interval".into(), format!("{ms}ms")]);
    }
    let node_args: Vec<&str> = node_args.iter().map(String::as_str).collect();
    let node = support::start_node(
        &ground,
        &endpoint,
        &node_args,
        &out.join("pod_start-node.log"),
    )?;
    support::wait_node_ready(&ground, &node_name, Duration::from_secs(90))?;
    eprintln!("node {node_name} Ready");

    let client = ground.client().await?;
    let namespace = format!("eci-bench-{id}");
    let bench = Bench {
        client: client.clone(),
        namespace: namespace.clone(),
        node: node_name.clone(),
        endpoint: endpoint.clone(),
        images,
        id: id.clone(),
    };
    let result = measure(&bench, &args, &data, tmp.path()).await;

    // Clean up whatever happened: the pods go with the namespace, the caches of the bench's
    // class (its own, and those the node made: warmed, automatic) through the node (their
    // finalizer), then the node and the emulator (SIGTERM: its agent removes containers).
    let caches: Api<ImageCache> = Api::all(client.clone());
    let class = ListParams::default().labels(&format!("{LABEL}=bench-{}", bench.id));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    // The warmed Deployment goes with the namespace; the node may still make its cache.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let _ = caches
            .delete_collection(&DeleteParams::default(), &class)
            .await;
        if caches.list(&class).await?.items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(node);
    let _ = ground
        .kubectl()?
        .args(["delete", "node", &node_name, "--ignore-not-found"])
        .stdout(Stdio::null())
        .status();
    drop::<Daemon>(emulator);
    drop(tmp);

    let report = result?;
    let json = out.join("pod_start.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", json.display());
    Ok(())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("a non-UTF-8 path")
}

/// Pushes the three images (`bench/pod-start-N:<filler>m`), unless the registry has them.
fn push_images(registry: &str, filler_mib: u64) -> Result<Vec<String>> {
    let mut images = Vec::new();
    for n in 1..=IMAGES {
        let (repo, tag) = (format!("bench/pod-start-{n}"), format!("{filler_mib}m"));
        let present = Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", "-I", "-H"])
            .arg("Accept: application/vnd.oci.image.manifest.v1+json")
            .arg(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
            .stderr(Stdio::null())
            .status()?
            .success();
        if !present {
            eprintln!(
                "pushing {registry}/{repo}:{tag} (busybox + {filler_mib} MiB of random bytes)"
            );
            let status = Command::new(support::root().join("integration/ground/push-busybox.sh"))
                .args([registry, &repo, &tag, &filler_mib.to_string()])
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("push-busybox.sh {registry} {repo} {tag} failed: {status}");
            }
        }
        images.push(format!("{registry}/{repo}:{tag}"));
    }
    Ok(images)
}

struct Bench {
    client: kube::Client,
    namespace: String,
    node: String,
    endpoint: String,
    images: Vec<String>,
    id: String,
}

impl Bench {
    fn cache_name(&self) -> String {
        format!("bench-pod-start-{}", self.id)
    }
}

async fn measure(bench: &Bench, args: &Args, data: &Path, tmp: &Path) -> Result<serde_json::Value> {
    let namespaces: Api<Namespace> = Api::all(bench.client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(bench.namespace.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;

    // The cache of the three images (built once over the same shaped link).
    let caches: Api<ImageCache> = Api::all(bench.client.clone());
    let mut cache = ImageCache::new(
        &bench.cache_name(),
        ImageCacheSpec {
            images: bench.images.clone(),
            image_pull_secrets: Vec::new(),
            image_cache_size: 20,
            retention_days: Some(1),
        },
    );
    cache.metadata.labels = Some([(LABEL.to_owned(), format!("bench-{}", bench.id))].into());
    let started = Instant::now();
    caches.create(&PostParams::default(), &cache).await?;
    let cache_id = loop {
        let c = caches.get(&bench.cache_name()).await?;
        let status = c.status.unwrap_or_default();
        match status.phase.as_deref() {
            Some("Ready") => break status.image_cache_id.context("a Ready cache has an id")?,
            Some("Failed") => bail!("the ImageCache failed: {:?}", status.events),
            _ if started.elapsed() > Duration::from_secs(900) => {
                bail!("the ImageCache is not Ready after 15 min")
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let cache_build_s = secs(started);
    eprintln!("image cache {cache_id} Ready after {cache_build_s:.1} s");

    if args.modes.contains(&Mode::Warmed) {
        let took = warm_up(bench).await?;
        eprintln!("warmed Deployment's cache Ready after {took:.1} s");
    }
    let mut samples = Vec::new();
    for &mode in &args.modes {
        for i in 0..args.pods {
            let sample = pod(bench, mode, i, &cache_id).await?;
            eprintln!(
                "{:<16} pod {i}: Running {:>6.2} s, Ready {:>6.2} s, pulled {} bytes",
                mode.label(),
                sample.running_s,
                sample.ready_s,
                sample.pulled_bytes
            );
            samples.push(sample);
        }
    }

    // The samples first, so a failing floor loses nothing.
    std::fs::write(
        support::out_dir()?.join("pod_start-samples.json"),
        serde_json::to_string_pretty(&samples)?,
    )?;

    // The floor: runc alone, over the cache's unpacked rootfs of each image.
    let rootfs = snapshot_rootfs(data, &cache_id)?;
    let mut floor_one = Vec::new();
    let mut floor_pod = Vec::new();
    for i in 0..args.pods {
        let mut pod_total = 0.0;
        for (n, root) in rootfs.iter().enumerate() {
            let t = runc_run(
                root,
                &tmp.join(format!("floor-{n}")),
                &format!("eci-vk-bench-{}-{i}-{n}", bench.id),
            )?;
            floor_one.push(t);
            pod_total += t;
        }
        floor_pod.push(pod_total);
    }

    report(
        args,
        bench,
        &cache_id,
        cache_build_s,
        &samples,
        &floor_one,
        &floor_pod,
    )
}

/// Creates one pod, watches it to Running and Ready, reads its pulled bytes, deletes it.
async fn pod(bench: &Bench, mode: Mode, i: usize, cache_id: &str) -> Result<Sample> {
    let pods: Api<Pod> = Api::namespaced(bench.client.clone(), &bench.namespace);
    let name = format!(
        "{}-{i}",
        match mode {
            Mode::None => "none",
            Mode::Explicit => "explicit",
            Mode::Auto => "auto",
            Mode::Warmed => "warmed",
        }
    );
    let annotations: BTreeMap<String, String> = match mode {
        // Current ECI matches every pod by default: the baseline says no.
        Mode::None => [("k8s.aliyun.com/eci-auto-imc".to_owned(), "false".to_owned())].into(),
        Mode::Warmed => BTreeMap::new(),
        Mode::Explicit => [(
            "k8s.aliyun.com/eci-image-snapshot-id".to_owned(),
            cache_id.to_owned(),
        )]
        .into(),
        Mode::Auto => [(
            "k8s.aliyun.com/eci-image-cache".to_owned(),
            "true".to_owned(),
        )]
        .into(),
    };
    let containers = containers(bench);
    let mut pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": bench.node,
            "terminationGracePeriodSeconds": 0,
            "containers": containers,
        }
    }))?;
    pod.metadata.annotations = Some(annotations);

    let t0 = Instant::now();
    let (name, created) = if mode == Mode::Warmed {
        // The user's view: from the scale to the pod running.
        scale_warm(bench, 1).await?;
        let listed = loop {
            let list = pods
                .list(&ListParams::default().labels(&format!("app={WARM_APP}")))
                .await?;
            if let Some(p) = list
                .items
                .into_iter()
                .find(|p| p.metadata.deletion_timestamp.is_none())
            {
                break p;
            }
            if secs(t0) > 60.0 {
                bail!("the warmed Deployment made no pod in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        (listed.metadata.name.clone().unwrap_or_default(), listed)
    } else {
        (name, pods.create(&PostParams::default(), &pod).await?)
    };
    let create_call_s = secs(t0);
    let rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let (mut running, mut ready) = (None, None);
    let mut last = created;
    let wp = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    let mut rv = rv;
    // Watch from the create's resourceVersion; when the watch ends or its version expired
    // (410: a busy apiserver's watch cache moved on), list the pod afresh and go on from there.
    let mut pending: Vec<Pod> = Vec::new();
    'watch: while ready.is_none() || running.is_none() {
        let mut stream = pods.watch(&wp, &rv).await?.boxed();
        while let Some(event) = stream.try_next().await? {
            match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => pending.push(p),
                WatchEvent::Deleted(_) => bail!("pod {name} was deleted while measured"),
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Error(e) if e.code == 410 => break,
                WatchEvent::Error(e) => bail!("watching pod {name}: {e:?}"),
            }
            for p in pending.drain(..) {
                let now = secs(t0);
                observe(&name, &p, now, &mut running, &mut ready)?;
                last = p;
                if running.is_some() && ready.is_some() {
                    break 'watch;
                }
            }
        }
        {
            let list = pods
                .list(&ListParams::default().fields(&format!("metadata.name={name}")))
                .await?;
            rv = list.metadata.resource_version.clone().unwrap_or_default();
            pending.extend(list.items);
            for p in pending.drain(..) {
                observe(&name, &p, secs(t0), &mut running, &mut ready)?;
                last = p;
            }
        }
        if secs(t0) > 900.0 {
            bail!("pod {name} not Running and Ready after 15 min");
        }
    }

    let group = last
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find_map(|c| c.container_id.clone()))
        .and_then(|id| {
            id.strip_prefix("eci://")
                .map(|r| r.split('/').next().unwrap_or("").to_owned())
        })
        .context("the Running pod has no eci:// container id")?;
    let metrics = support::http_get(&bench.endpoint, "/metrics")?;
    let pulled = support::series(
        &metrics,
        &format!("eci_agent_container_group_pulled_bytes_total{{container_group=\"{group}\"}}"),
    )
    .unwrap_or(0.0) as u64;

    // Gone before the next one, so pods never share the link or the host.
    if mode == Mode::Warmed {
        scale_warm(bench, 0).await?;
    }
    pods.delete(&name, &DeleteParams::default().grace_period(0))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while pods.get_opt(&name).await?.is_some() {
        if Instant::now() > deadline {
            bail!("pod {name} still there 120 s after its deletion");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A ReplicaSet that had not yet seen the scale to 0 replaces the pod and then deletes the
    // replacement: the next sample waits until the workload has no pod at all.
    while mode == Mode::Warmed
        && !pods
            .list(&ListParams::default().labels(&format!("app={WARM_APP}")))
            .await?
            .items
            .is_empty()
    {
        if Instant::now() > deadline {
            bail!("the warmed Deployment still has pods 120 s after its scale to 0");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Sample {
        mode,
        pod: name,
        container_group: group,
        create_call_s,
        running_s: running.unwrap_or_default(),
        ready_s: ready.unwrap_or_default(),
        pulled_bytes: pulled,
    })
}

/// The warmed Deployment's name and `app` label.
const WARM_APP: &str = "warm-bench";

/// Scales the warmed Deployment to `replicas`.
async fn scale_warm(bench: &Bench, replicas: i32) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(bench.client.clone(), &bench.namespace);
    deployments
        .patch(
            WARM_APP,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    Ok(())
}

/// Creates the warmed Deployment (0 replicas, annotated) and waits for the node to have its
/// images cached; answers the seconds that took.
async fn warm_up(bench: &Bench) -> Result<f64> {
    let deployments: Api<Deployment> = Api::namespaced(bench.client.clone(), &bench.namespace);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": WARM_APP,
            "annotations": {eci_vk::imagecache::ANNOTATION_WARM: "true"},
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": WARM_APP}},
            "template": {
                "metadata": {"labels": {"app": WARM_APP}},
                "spec": {
                    "nodeName": bench.node,
                    "terminationGracePeriodSeconds": 0,
                    "containers": containers(bench),
                },
            },
        },
    }))?;
    let started = Instant::now();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let caches: Api<ImageCache> = Api::all(bench.client.clone());
    let selector = format!("{}=true", eci_vk::imagecache::LABEL_WARM);
    loop {
        let ready = caches
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .into_iter()
            .any(|c| {
                c.annotations()
                    .get(eci_vk::imagecache::ANNOTATION_WORKLOAD)
                    .is_some_and(|w| w.ends_with(&format!("/{}/{WARM_APP}", bench.namespace)))
                    && c.status.and_then(|s| s.phase).as_deref() == Some("Ready")
            });
        if ready {
            return Ok(secs(started));
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the warmed Deployment's cache is not Ready after 15 min");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The bench's containers: one per image, each sleeping.
fn containers(bench: &Bench) -> Vec<serde_json::Value> {
    bench
        .images
        .iter()
        .enumerate()
        .map(|(n, image)| {
            serde_json::json!({
                "name": format!("c{n}"),
                "image": image,
                "command": ["sh", "-c", "sleep 3600"],
            })
        })
        .collect()
}

/// Records the first time `p` is seen Running and Ready; a Failed pod ends the bench.
fn observe(
    name: &str,
    p: &Pod,
    now: f64,
    running: &mut Option<f64>,
    ready: &mut Option<f64>,
) -> Result<()> {
    let status = p.status.clone().unwrap_or_default();
    match status.phase.as_deref() {
        Some("Running") if running.is_none() => *running = Some(now),
        Some("Failed") => bail!(
            "pod {name} failed: {:?} {:?}",
            status.reason,
            status.message
        ),
        _ => {}
    }
    let is_ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if is_ready && ready.is_none() {
        *ready = Some(now);
    }
    Ok(())
}

/// The unpacked rootfs of each image of the cache, in image order. The agent names its
/// snapshot after the cache (ours is the emulator's only one), so the id is preferred but
/// any complete snapshot of this emulator will do.
fn snapshot_rootfs(data: &Path, cache_id: &str) -> Result<Vec<PathBuf>> {
    let snapshots = data.join("agent/snapshots");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .with_context(|| format!("reading {}", snapshots.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("images").is_dir())
        .collect();
    dirs.sort_by_key(|p| !p.to_string_lossy().contains(cache_id));
    let Some(dir) = dirs.first().map(|d| d.join("images")) else {
        // Another layout: every `rootfs` directory under the agent's data that holds a shell.
        let mut found = Vec::new();
        find_rootfs(&data.join("agent"), 0, &mut found);
        found.sort();
        if found.is_empty() {
            bail!("no snapshot under {}", snapshots.display());
        }
        eprintln!("rootfs for the floor: {found:?}");
        return Ok(found);
    };
    let mut roots: Vec<(usize, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.parse().ok()?;
            Some((n, e.path().join("rootfs")))
        })
        .filter(|(_, p)| p.is_dir())
        .collect();
    roots.sort();
    if roots.is_empty() {
        bail!("no rootfs under {}", dir.display());
    }
    Ok(roots.into_iter().map(|(_, p)| p).collect())
}

fn find_rootfs(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 7 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name() == "rootfs" && path.join("bin/busybox").exists() {
            found.push(path);
        } else {
            find_rootfs(&path, depth + 1, found);
        }
    }
}

/// Seconds of one `runc run` of `/bin/true` over `rootfs` (read-only), bundle in `bundle`.
fn runc_run(rootfs: &Path, bundle: &Path, id: &str) -> Result<f64> {
    if !bundle.join("config.json").exists() {
        std::fs::create_dir_all(bundle)?;
        let status = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(bundle)
            .status()?;
        if !status.success() {
            bail!("runc spec failed: {status}");
        }
        let file = bundle.join("config.json");
        let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
        spec["root"] = serde_json::json!({"path": rootfs, "readonly": true});
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["/bin/true"]);
        std::fs::write(&file, serde_json::to_vec_pretty(&spec)?)?;
    }
    let t0 = Instant::now();
    let status = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .status()?;
    let t = secs(t0);
    if !status.success() {
        let _ = Command::new("runc")
            .args(["delete", "--force", id])
            .status();
        bail!("runc run {id} failed: {status}");
    }
    Ok(t)
}

fn report(
    args: &Args,
    bench: &Bench,
    cache_id: &str,
    cache_build_s: f64,
    samples: &[Sample],
    floor_one: &[f64],
    floor_pod: &[f64],
) -> Result<serde_json::Value> {
    let of = |mode: Mode, f: fn(&Sample) -> f64| -> Vec<f64> {
        samples.iter().filter(|s| s.mode == mode).map(f).collect()
    };
    let link_bytes_per_s = parse_bandwidth(&args.bandwidth).unwrap_or(0.0);
    println!();
    println!(
        "pod start, {} pods per mode, {} images, link {} ({} cores, shared machine)",
        args.pods,
        bench.images.len(),
        args.bandwidth,
        support::machine()["cores"]
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>14}",
        "mode / measure (s)", "median", "p90", "min", "max", "pulled bytes"
    );
    let mut modes = serde_json::Map::new();
    let line = |label: String, s: &Summary, bytes: Option<f64>| {
        println!(
            "{:<28} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>14}",
            label,
            s.median,
            s.p90,
            s.min,
            s.max,
            bytes.map_or(String::new(), |b| format!("{b:.0}"))
        );
    };
    for &mode in &args.modes {
        let running = Summary::of(&of(mode, |s| s.running_s)).context("no samples")?;
        let ready = Summary::of(&of(mode, |s| s.ready_s)).context("no samples")?;
        let bytes = of(mode, |s| s.pulled_bytes as f64);
        let mean_bytes = bytes.iter().sum::<f64>() / bytes.len() as f64;
        line(
            format!("{} → Running", mode.label()),
            &running,
            Some(mean_bytes),
        );
        line(format!("{} → Ready", mode.label()), &ready, None);
        modes.insert(
            serde_json::to_value(mode)?
                .as_str()
                .unwrap_or("")
                .to_owned(),
            serde_json::json!({"running": running, "ready": ready, "pulled_bytes": bytes}),
        );
    }
    let floor_one = Summary::of(floor_one).context("no floor samples")?;
    let floor_pod = Summary::of(floor_pod).context("no floor samples")?;
    line("floor: runc run, 1 container".into(), &floor_one, None);
    line(
        format!("floor: runc run × {}", bench.images.len()),
        &floor_pod,
        None,
    );
    let create_call = Summary::of(&samples.iter().map(|s| s.create_call_s).collect::<Vec<_>>())
        .context("no samples")?;
    line("apiserver create call".into(), &create_call, None);

    // Targets of issue #8.
    let get = |m: &str, k: &str| modes.get(m).and_then(|v| v[k]["median"].as_f64());
    let mut targets = serde_json::Map::new();
    let none_bytes = modes.get("none").and_then(|v| {
        v["pulled_bytes"]
            .as_array()
            .map(|a| a.iter().filter_map(|b| b.as_f64()).sum::<f64>() / a.len() as f64)
    });
    println!();
    for cached in ["explicit", "auto"] {
        let (Some(run), Some(_)) = (get(cached, "running"), get(cached, "ready")) else {
            continue;
        };
        let bound = 1.5 * (floor_pod.median + 2.0 * create_call.median);
        let zero = modes[cached]["pulled_bytes"]
            .as_array()
            .is_some_and(|a| a.iter().all(|b| b.as_f64() == Some(0.0)));
        let mut t = serde_json::json!({
            "running_median_s": run,
            "within_1s": run <= 1.0,
            "floor_plus_api_s": floor_pod.median + 2.0 * create_call.median,
            "within_1_5x_floor_plus_api": run <= bound,
            "zero_bytes": zero,
        });
        println!(
            "{cached}: create→Running median {run:.3} s (target ≤ 1 s: {}), ≤ 1.5 × (floor + API) = {bound:.3} s: {}, 0 bytes pulled: {zero}",
            ok(run <= 1.0),
            ok(run <= bound)
        );
        if let Some(none) = get("none", "running") {
            let speedup = none / run;
            t["speedup_vs_none"] = speedup.into();
            t["at_least_40x"] = (speedup >= 40.0).into();
            println!(
                "{cached}: {speedup:.1}× faster than without a cache (target ≥ 40×: {})",
                ok(speedup >= 40.0)
            );
        }
        targets.insert(cached.to_owned(), t);
    }
    if let (Some(run), Some(bytes)) = (get("none", "running"), none_bytes)
        && link_bytes_per_s > 0.0
    {
        {
            let link = bytes / link_bytes_per_s;
            let over = run / link - 1.0;
            println!(
                "none: {bytes:.0} bytes at {} take {link:.1} s on the link; create→Running median {run:.1} s is {:+.1} % (target ≤ +15 %: {})",
                args.bandwidth,
                over * 100.0,
                ok(over <= 0.15)
            );
            targets.insert(
                "none".into(),
                serde_json::json!({"link_s": link, "running_median_s": run, "over_link": over, "within_15pct": over <= 0.15}),
            );
        }
    }
    let report = serde_json::json!({
        "bench": "pod_start",
        "machine": support::machine(),
        "pods_per_mode": args.pods,
        "images": bench.images,
        "bandwidth": args.bandwidth,
        "pod_sync_interval_ms": args.sync_ms,
        "cache_id": cache_id,
        "cache_build_s": cache_build_s,
        "modes": modes,
        "floor_runc_one": floor_one,
        "floor_runc_pod": floor_pod,
        "apiserver_create_call": create_call,
        "targets": targets,
        "samples": samples,
    });
    if let Err(e) = chart(&report, &support::out_dir()?.join("pod_start.png")) {
        eprintln!("no chart: {e:#}");
    }
    Ok(report)
}

fn ok(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// `8MiB/s`, `500KiB/s`, `1000000` → bytes per second.
fn parse_bandwidth(text: &str) -> Option<f64> {
    let t = text.trim_end_matches("/s");
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = num.parse().ok()?;
    let m = match unit {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some(n * m)
}

/// A bar chart on a log scale: median create→Running and create→Ready per mode (whiskers
/// min..max), and the runc floor.
fn chart(report: &serde_json::Value, file: &Path) -> Result<()> {
    use plotters::prelude::*;
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .context("the chart's font (Debian fonts-dejavu-core) is missing")?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow::anyhow!("DejaVuSans.ttf is not a usable font"))?;

    // (label, median, min, max, colour)
    let mut bars: Vec<(String, f64, f64, f64, RGBColor)> = Vec::new();
    for (key, label) in [
        ("explicit", "explicit cache"),
        ("auto", "automatic match"),
        ("none", "no cache"),
    ] {
        let Some(m) = report["modes"].get(key) else {
            continue;
        };
        for (what, colour) in [
            ("running", RGBColor(33, 113, 181)),
            ("ready", RGBColor(107, 174, 214)),
        ] {
            let s = &m[what];
            bars.push((
                format!("{label}: {what}"),
                s["median"].as_f64().unwrap_or(0.0),
                s["min"].as_f64().unwrap_or(0.0),
                s["max"].as_f64().unwrap_or(0.0),
                colour,
            ));
        }
    }
    let f = &report["floor_runc_pod"];
    bars.push((
        "floor: runc run ×3".into(),
        f["median"].as_f64().unwrap_or(0.0),
        f["min"].as_f64().unwrap_or(0.0),
        f["max"].as_f64().unwrap_or(0.0),
        RGBColor(120, 120, 120),
    ));
    let top = bars.iter().map(|b| b.3).fold(1.0, f64::max) * 5.0;
    let root = BitMapBackend::new(file, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "create → Running / Ready, {} pods per mode, {} images, link {} (median, min–max; log scale)",
        report["pods_per_mode"],
        report["images"].as_array().map_or(0, Vec::len),
        report["bandwidth"].as_str().unwrap_or("")
    );
    let mut c = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..bars.len() as f64, (0.05f64..top).log_scale())?;
    c.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("seconds")
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (label, median, min, max, colour)) in bars.iter().enumerate() {
        let x = i as f64;
        let y0 = 0.05;
        c.draw_series(std::iter::once(Rectangle::new(
            [(x + 0.15, y0), (x + 0.85, median.max(y0))],
            colour.filled(),
        )))?;
        c.draw_series(std::iter::once(PathElement::new(
            vec![(x + 0.5, min.max(y0)), (x + 0.5, max.max(y0))],
            BLACK.stroke_width(2),
        )))?;
        c.draw_series(std::iter::once(Text::new(
            format!("{median:.2} s"),
            (x + 0.2, (median * 1.35).max(y0 * 1.35)),
            ("sans-serif", 14),
        )))?;
        let (mode, what) = label.split_once(": ").unwrap_or((label.as_str(), ""));
        for (line, text) in [(3.4, mode), (2.3, what)] {
            c.draw_series(std::iter::once(Text::new(
                text.to_owned(),
                (x + 0.12, (median * line).max(y0 * line)),
                ("sans-serif", 13),
            )))?;
        }
    }
    root.present()?;
    eprintln!("wrote {}", file.display());
    Ok(())
}
