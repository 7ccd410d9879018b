//! The scale benchmark (issue #8, BENCHMARKS.md): the node against the emulator's `simulated`
//! runtime with ECI's default API quotas on. A Deployment of 1,000 replicas created at once: time
//! until every pod exists and until all are Running, ECI API calls by action (throttled ones
//! too) from the node's `--metrics-addr`, the node's peak RSS (VmHWM) and CPU seconds, and a
//! check that the cloud holds exactly one group per pod. Then 200 ImageCaches created at once:
//! time until all are Ready, on an account whose image-cache quota was raised above them (ECI's
//! default is 50).
//!
//! `cargo bench --bench scale -- [--replicas 1000] [--caches 200] [--image-cache-quota N]`
//! (the emulator's image-cache quota; by default 50 above `--caches`)
//! Results: a table on stdout and `target/bench/scale.json`.
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]
#![recursion_limit = "256"]

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::TcpListener,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use eci_vk::{
    eci::{self, DescribeContainerGroups, Tag},
    imagecache::{ImageCache, ImageCacheSpec},
};
use futures::{StreamExt, stream};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace, core::v1::Pod};
use kube::{
    Api,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};
use support::{Ground, Summary, secs};

/// The bench's caches carry their own class, so only the bench's node takes them.
const LABEL: &str = eci_vk::imagecache::LABEL_CLASS;

fn main() -> Result<()> {
    let (mut replicas, mut caches, mut quota, mut restart) = (1000usize, 200usize, None, false);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--replicas" => replicas = it.next().context("--replicas N")?.parse()?,
            "--caches" => caches = it.next().context("--caches N")?.parse()?,
            "--image-cache-quota" => {
                quota = Some(it.next().context("--image-cache-quota N")?.parse()?);
            }
            "--restart" => restart = true,
            "--bench" => {}
            other => bail!("unknown argument {other:?}"),
        }
    }
    // ECI's default account holds 50 manual image caches; 200 at once needs the raised quota an
    // account gets through Quota Center, so by default the emulator's is set above the bench's
    // caches.
    let quota = quota.unwrap_or(caches + 50);
    tokio::runtime::Runtime::new()?.block_on(run(replicas, caches, quota, restart))
}

async fn run(replicas: usize, cache_count: usize, cache_quota: usize, restart: bool) -> Result<()> {
    let ground = Ground::reuse_or_start()?;
    // The node's cache controller needs the CRD from its start (it backs off up to a minute
    // while the CRD is missing).
    ground.install_crd()?;
    let out = support::out_dir()?;
    let id = format!("{:04x}", std::process::id() & 0xffff);
    let quota_arg = cache_quota.to_string();
    let (emulator, endpoint) = support::start_emulator(
        &["--runtime", "simulated", "--image-cache-quota", &quota_arg],
        &out.join("scale-emulator.log"),
    )?;
    let metrics_addr = {
        let l = TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.to_string()
    };
    let node_name = format!("eci-vk-scale-{id}");
    // Room for every replica (250m and 512Mi each) above the node's defaults (1000 CPUs,
    // 4Ti), or the scheduler stops binding at 4,000.
    let (cluster, class, pods_cap, cpu_cap, memory_cap) = (
        format!("scale-{id}"),
        format!("bench-{id}"),
        (replicas + 100).to_string(),
        (replicas / 4 + 1000).to_string(),
        format!("{}Gi", replicas / 2 + 4096),
    );
    let start_node = |log: &str| {
        support::start_node(
            &ground,
            &endpoint,
            &[
                "--node-name",
                &node_name,
                "--cluster-name",
                &cluster,
                "--image-cache-class",
                &class,
                "--metrics-addr",
                &metrics_addr,
                "--pods",
                &pods_cap,
                "--cpu",
                &cpu_cap,
                "--memory",
                &memory_cap,
            ],
            &out.join(log),
        )
    };
    let mut node = start_node("scale-node.log")?;
    support::wait_node_ready(&ground, &node_name, Duration::from_secs(90))?;
    let emulator_pid = emulator.pid();
    let (rss_idle, cpu_idle) = support::proc_usage(node.pid())?;
    let load_at_start = support::load_average();
    eprintln!(
        "node {node_name} Ready (pid {}, idle RSS {} MiB)",
        node.pid(),
        rss_idle >> 20
    );

    let client = ground.client().await?;
    let namespace = format!("eci-scale-{id}");
    let restart = restart.then_some(Restart {
        ground: &ground,
        start: &start_node,
    });
    let result = measure(
        &client,
        &namespace,
        &node_name,
        &id,
        &endpoint,
        &metrics_addr,
        (&mut node, emulator_pid),
        replicas,
        cache_count,
        restart,
    )
    .await;

    let started = Instant::now();
    if replicas > 1000 {
        // Deleting every group through the node would take another (replicas / 20) s at the
        // delete quota; the emulator goes with the bench, so stop the node and remove the pods
        // from the API server at once.
        drop(node);
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let _ = pods
            .delete_collection(
                &DeleteParams::default().grace_period(0),
                &ListParams::default(),
            )
            .await;
        node = start_node("scale-node-cleanup.log")?;
    }
    // Clean up: pods and caches go through the node while it still runs.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let _ = deployments.delete("scale", &DeleteParams::default()).await;
    let caches: Api<ImageCache> = Api::all(client.clone());
    let selector = ListParams::default().labels(&format!("{LABEL}=bench-{id}"));
    let _ = caches
        .delete_collection(&DeleteParams::default(), &selector)
        .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let left = pods
            .list_metadata(&ListParams::default())
            .await
            .map_or(0, |l| l.items.len())
            + caches
                .list_metadata(&selector)
                .await
                .map_or(0, |l| l.items.len());
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("cleanup took {:.1} s", secs(started));
    drop(node);
    let _ = ground
        .kubectl()?
        .args(["delete", "node", &node_name, "--ignore-not-found"])
        .stdout(Stdio::null())
        .status();
    drop(emulator);

    let mut report = result?;
    report["image_cache_quota"] = serde_json::json!(cache_quota);
    report["load_average_at_start"] = serde_json::json!(load_at_start);
    report["node_idle"] =
        serde_json::json!({"rss_mib": rss_idle as f64 / 1048576.0, "cpu_s": cpu_idle});
    let json = out.join("scale.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", json.display());
    Ok(())
}

/// An ImageCache not yet Ready or Failed, as the bench last saw it.
struct Unsettled {
    name: String,
    phase: Option<String>,
    id: Option<String>,
    progress: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    client: &kube::Client,
    namespace: &str,
    node: &str,
    id: &str,
    endpoint: &str,
    metrics_addr: &str,
    (node_daemon, emulator_pid): (&mut support::Daemon, u32),
    replicas: usize,
    cache_count: usize,
    restart: Option<Restart<'_>>,
) -> Result<serde_json::Value> {
    let node_pid = node_daemon.pid();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.to_owned()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;

    // 1,000 pods through the scheduler: a nodeSelector for this node and a toleration of the
    // virtual node's taint.
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "scale"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "scale"}},
            "template": {
                "metadata": {"labels": {"app": "scale"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "app", "image": "registry.example.com/scale/app:1.0",
                                    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]
                }
            }
        }
    }))?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // The pods as a watch shows them: listing 10,000 pods every sample would load the API
    // server and this machine's two cores more than the node under test does.
    let seen = PodsSeen::follow(pods.clone());
    let t0 = Instant::now();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let (mut all_created, mut all_bound, mut all_running) = (None, None, None);
    // When the node had made the last group in the cloud (its create counter), which the
    // create quota bounds from below.
    let mut all_groups_created = None;
    let mut timeline = Vec::new();
    // Pods Running behind groups created, at its worst while the node creates.
    let mut worst_behind = (0.0f64, 0.0f64);
    while all_running.is_none() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (created, bound, running) = seen.counts();
        let now = secs(t0);
        let (rss, cpu) = support::proc_usage(node_pid)?;
        let (_, emulator_cpu) = support::proc_usage(emulator_pid)?;
        let groups = support::http_get(metrics_addr, "/metrics")
            .ok()
            .and_then(|text| support::series(&text, "eci_vk_pod_creates_total{result=\"created\"}"))
            .unwrap_or(0.0);
        if all_groups_created.is_none() && groups - running as f64 > worst_behind.1 {
            worst_behind = (now, groups - running as f64);
        }
        if groups >= replicas as f64 && all_groups_created.is_none() {
            all_groups_created = Some(now);
        }
        timeline.push(serde_json::json!({"t": now, "created": created, "bound": bound, "groups_created": groups, "running": running, "node_rss_mib": rss as f64 / 1048576.0, "node_cpu_s": cpu, "emulator_cpu_s": emulator_cpu}));
        if created >= replicas && all_created.is_none() {
            all_created = Some(now);
        }
        if bound >= replicas && all_bound.is_none() {
            all_bound = Some(now);
        }
        if running >= replicas {
            all_running = Some(now);
        }
        eprint!("\r{now:6.1} s: {created} pods, {bound} bound, {running} Running   ");
        if now > 900.0 {
            bail!("not all {replicas} pods Running after 15 min ({running} are)");
        }
    }
    eprintln!();
    let all_running = all_running.unwrap_or_default();
    let (rss_peak, cpu_after_pods) = support::proc_usage(node_pid)?;
    let (_, emulator_cpu_after_pods) = support::proc_usage(emulator_pid)?;
    let load_after_pods = support::load_average();

    // One group per pod in the cloud, found the way the node finds them (by its tag).
    let mut config = eci::ClientConfig::new(
        "cn-hangzhou",
        eci::Credentials::new(support::ACCESS_KEY_ID, support::ACCESS_KEY_SECRET, None),
    );
    config.endpoint = eci::Endpoint::Url(endpoint.to_owned());
    let cloud = eci::Client::new(config)?;
    let groups = cloud
        .describe_all_container_groups(&DescribeContainerGroups {
            tags: vec![Tag::new(eci_vk::pods::tags::NODE, node)],
            limit: Some(100),
            ..DescribeContainerGroups::default()
        })
        .await?;
    let uids: BTreeSet<String> = groups
        .iter()
        .filter_map(|g| {
            g.tags
                .iter()
                .find(|t| t.key == eci_vk::pods::tags::UID)
                .map(|t| t.value.clone())
        })
        .collect();
    let pod_metrics = support::http_get(metrics_addr, "/metrics")?;
    // The node's writes to the API server for these pods: its pod writes by kind, and the
    // Events in the namespace (ECI's mirrored events and the node's own; the controllers'
    // events are on the ReplicaSet and the Deployment).
    let pod_writes: BTreeMap<String, f64> =
        support::family(&pod_metrics, "eci_vk_pod_writes_total")
            .into_iter()
            .collect();
    let pod_events =
        kube::Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), namespace)
            .list_metadata(&ListParams::default().fields("involvedObject.kind=Pod"))
            .await?
            .items
            .len();
    let adoption = match restart {
        Some(restart) => Some(restart.measure(node_daemon, node, metrics_addr, replicas, &seen)?),
        None => None,
    };
    let node_pid = node_daemon.pid();

    // One ImageCache alone first: the time a build takes when nothing else is built, which the
    // 200 at once are compared with.
    let caches: Api<ImageCache> = Api::all(client.clone());
    let single_s = if cache_count > 0 {
        Some(single_build(&caches, id).await?)
    } else {
        None
    };
    // 200 ImageCaches at once.
    let selector = ListParams::default().labels(&format!("{LABEL}=bench-{id},!{SINGLE_LABEL}"));
    let t1 = Instant::now();
    let created: Vec<Result<ImageCache, kube::Error>> = stream::iter(0..cache_count)
        .map(|i| {
            let caches = caches.clone();
            let mut cache = ImageCache::new(
                &format!("scale-{id}-{i}"),
                ImageCacheSpec {
                    images: vec![
                        format!("registry.example.com/scale/app-{i}:1.0"),
                        "registry.example.com/scale/base:1.0".to_owned(),
                    ],
                    image_pull_secrets: Vec::new(),
                    image_cache_size: 20,
                    retention_days: Some(1),
                },
            );
            cache.metadata.labels = Some([(LABEL.to_owned(), format!("bench-{id}"))].into());
            async move { caches.create(&PostParams::default(), &cache).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let create_errors = created.iter().filter(|r| r.is_err()).count();
    let caches_created_s = secs(t1);
    // All Ready (or Failed) ends the wait; so does a minute without progress, or twice the
    // build of the cache alone when that is longer (a cache stuck in the cloud, or refused by
    // it, would otherwise hold the bench forever).
    let mut caches_ready = None;
    let patience =
        Duration::from_secs(60).max(Duration::from_secs_f64(2.0 * single_s.unwrap_or(0.0)));
    let (mut last_settled, mut last_change) = (0usize, Instant::now());
    let (mut ready, mut failed, mut blocked_reason) = (0usize, 0usize, None::<String>);
    let mut cache_timeline = Vec::new();
    // The objects not settled at the last look.
    let mut unsettled: Vec<Unsettled> = Vec::new();
    while caches_ready.is_none() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let list = caches.list(&selector).await?;
        let phase = |c: &ImageCache| c.status.as_ref().and_then(|s| s.phase.clone());
        unsettled = list
            .items
            .iter()
            .filter(|c| !matches!(phase(c).as_deref(), Some("Ready" | "Failed")))
            .map(|c| {
                let s = c.status.as_ref();
                Unsettled {
                    name: c.metadata.name.clone().unwrap_or_default(),
                    phase: phase(c),
                    id: s.and_then(|s| s.image_cache_id.clone()),
                    progress: s.and_then(|s| s.progress.clone()),
                }
            })
            .collect();
        ready = list
            .items
            .iter()
            .filter(|c| phase(c).as_deref() == Some("Ready"))
            .count();
        failed = list
            .items
            .iter()
            .filter(|c| phase(c).as_deref() == Some("Failed"))
            .count();
        blocked_reason = list
            .items
            .iter()
            .filter(|c| !matches!(phase(c).as_deref(), Some("Ready" | "Failed")))
            .find_map(|c| {
                let s = c.status.as_ref()?;
                s.conditions
                    .iter()
                    .find(|k| !k.message.is_empty())
                    .map(|k| k.message.clone())
            });
        eprint!(
            "\r{:6.1} s: {ready}/{cache_count} ImageCaches Ready, {failed} Failed   ",
            secs(t1)
        );
        if ready + failed != last_settled {
            (last_settled, last_change) = (ready + failed, Instant::now());
            cache_timeline
                .push(serde_json::json!({"t": secs(t1), "ready": ready, "failed": failed}));
        }
        if ready + failed >= cache_count {
            caches_ready = Some(secs(t1));
        } else if last_change.elapsed() > patience || secs(t1) > 900.0 {
            eprintln!(
                "\nno progress for {:.0} s: {ready} Ready, {failed} Failed, {} not settled (e.g. {blocked_reason:?})",
                patience.as_secs_f64(),
                cache_count - ready - failed
            );
            break;
        }
    }
    let caches_settled_s = last_change.duration_since(t1).as_secs_f64();
    eprintln!();
    // What the cloud says of the objects left unsettled: a cache stuck in the cloud, or one the
    // node stopped looking at.
    let mut stuck = Vec::new();
    if caches_ready.is_none() {
        let cloud_caches: BTreeMap<String, eci::ImageCache> = cloud
            .describe_all_image_caches(&eci::DescribeImageCaches {
                limit: Some(100),
                ..eci::DescribeImageCaches::default()
            })
            .await?
            .into_iter()
            .map(|c| (c.image_cache_id.clone(), c))
            .collect();
        for u in &unsettled {
            let in_cloud = u.id.as_ref().and_then(|id| cloud_caches.get(id));
            let entry = serde_json::json!({
                "name": u.name,
                "phase": u.phase,
                "progress": u.progress,
                "image_cache_id": u.id,
                "cloud_status": in_cloud.map(|c| format!("{:?}", c.status)),
                "cloud_progress": in_cloud.map(|c| c.progress.clone()),
            });
            eprintln!("  not settled: {entry}");
            stuck.push(entry);
        }
    }
    let (rss_peak_all, cpu_all) = support::proc_usage(node_pid)?;
    let all_metrics = support::http_get(metrics_addr, "/metrics")?;

    let calls = |text: &str| -> BTreeMap<String, f64> {
        support::family(text, "eci_vk_api_calls_total")
            .into_iter()
            .collect()
    };
    let throttles = |text: &str| -> BTreeMap<String, f64> {
        support::family(text, "eci_vk_api_throttles_total")
            .into_iter()
            .collect()
    };
    let budget_waits = |text: &str| -> BTreeMap<String, f64> {
        support::family(text, "eci_vk_api_budget_wait_seconds_total")
            .into_iter()
            .collect()
    };
    // The node's sync passes (one batched describe, then every pod's work) up to all Running.
    let passes = support::series(&pod_metrics, "eci_vk_sync_pass_seconds_count").unwrap_or(0.0);
    let pass_s = support::series(&pod_metrics, "eci_vk_sync_pass_seconds_sum").unwrap_or(0.0);
    // The documented create quota: a burst of 100, then 20 per second.
    let quota_s = (replicas.saturating_sub(100)) as f64 / 20.0;
    let creates = calls(&pod_metrics)
        .iter()
        .filter(|(k, _)| k.contains("action=\"CreateContainerGroup\""))
        .map(|(_, v)| *v)
        .sum::<f64>();

    println!();
    println!("scale: {replicas} pods (Deployment, simulated runtime, ECI's default API quotas)");
    println!(
        "  all pods created by the ReplicaSet  {:>8.1} s",
        all_created.unwrap_or_default()
    );
    println!(
        "  all pods bound by the scheduler     {:>8.1} s",
        all_bound.unwrap_or_default()
    );
    println!(
        "  all groups created by the node      {:>8.1} s",
        all_groups_created.unwrap_or_default()
    );
    println!(
        "  all pods Running                    {all_running:>8.1} s  (quota floor {quota_s:.1} s: {:.3}×)",
        all_running / quota_s
    );
    println!(
        "  Running behind groups created       {:>8} at worst ({:.1} s)",
        worst_behind.1, worst_behind.0
    );
    println!(
        "  container groups (by node tag)      {:>8}    (distinct pod UIDs {}; duplicates: {})",
        groups.len(),
        uids.len(),
        groups.len() - uids.len()
    );
    println!("  CreateContainerGroup attempts       {creates:>8}");
    println!(
        "  node writes: Events on pods {pod_events}; pod writes {}",
        pod_writes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  node peak RSS (VmHWM)               {:>8.1} MiB (target < 150 MiB: {})",
        rss_peak as f64 / 1048576.0,
        if rss_peak < 150 << 20 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("  node CPU seconds (start → all Running) {cpu_after_pods:>5.1} s");
    println!(
        "  emulator CPU seconds (same span)       {emulator_cpu_after_pods:>5.1} s; load average then {load_after_pods}"
    );
    println!(
        "  node sync passes                    {passes:>8} taking {pass_s:.1} s in all ({:.1} s each on average)",
        if passes > 0.0 { pass_s / passes } else { 0.0 }
    );
    println!("  API calls by action and result (pods phase):");
    for (k, v) in calls(&pod_metrics) {
        println!("    {k:<60} {v:>8}");
    }
    for (k, v) in throttles(&pod_metrics) {
        println!("    throttled {k:<50} {v:>8}");
    }
    for (k, v) in budget_waits(&pod_metrics) {
        println!("    waited for the quota budget {k:<32} {v:>8.1} s");
    }
    println!(
        "{cache_count} ImageCaches: created in {caches_created_s:.1} s ({create_errors} create errors); {ready} Ready and {failed} Failed after {caches_settled_s:.1} s{}",
        if caches_ready.is_some() {
            String::new()
        } else {
            format!(", the rest not Ready: {blocked_reason:?}")
        }
    );
    if let (Some(single), Some(all)) = (single_s, caches_ready) {
        println!(
            "  one cache built alone: Ready {single:.1} s after its create; the {cache_count} at once: {:.2}× that",
            all / single
        );
    }
    println!(
        "  node peak RSS after caches {:.1} MiB, CPU seconds total {cpu_all:.1}",
        rss_peak_all as f64 / 1048576.0
    );
    for (k, v) in calls(&all_metrics) {
        if k.contains("ImageCache") {
            println!("    {k:<60} {v:>8}");
        }
    }
    for (k, v) in throttles(&all_metrics) {
        println!("    throttled (total) {k:<42} {v:>8}");
    }
    for (k, v) in budget_waits(&all_metrics) {
        println!("    waited for the quota budget (total) {k:<24} {v:>8.1} s");
    }

    let summary_running = Summary::of(&[all_running]);
    Ok(serde_json::json!({
        "bench": "scale",
        "machine": support::machine(),
        "replicas": replicas,
        "all_created_s": all_created,
        "all_bound_s": all_bound,
        "all_groups_created_s": all_groups_created,
        "all_running_s": all_running,
        "all_running": summary_running,
        "quota_floor_s": quota_s,
        "running_per_quota_floor": all_running / quota_s,
        "running_behind_created_worst": worst_behind.1,
        "running_behind_created_worst_at_s": worst_behind.0,
        "restart": adoption,
        "events_on_pods": pod_events,
        "pod_writes": pod_writes,
        "container_groups": groups.len(),
        "distinct_pod_uids": uids.len(),
        "node_peak_rss_mib": rss_peak as f64 / 1048576.0,
        "node_cpu_s_after_pods": cpu_after_pods,
        "emulator_cpu_s_after_pods": emulator_cpu_after_pods,
        "load_average_after_pods": load_after_pods,
        "api_calls_after_pods": calls(&pod_metrics),
        "throttles_after_pods": throttles(&pod_metrics),
        "budget_wait_s_after_pods": budget_waits(&pod_metrics),
        "sync_passes_after_pods": passes,
        "sync_pass_s_after_pods": pass_s,
        "image_caches": cache_count,
        "image_caches_create_errors": create_errors,
        "image_caches_created_s": caches_created_s,
        "image_caches_all_settled_s": caches_ready,
        "image_cache_alone_ready_s": single_s,
        "image_caches_all_per_alone": single_s.zip(caches_ready).map(|(one, all)| all / one),
        "image_caches_ready": ready,
        "image_caches_failed": failed,
        "image_caches_last_progress_s": caches_settled_s,
        "image_caches_blocked_reason": blocked_reason,
        "image_caches_not_settled": stuck,
        "image_caches_timeline": cache_timeline,
        "node_peak_rss_mib_after_caches": rss_peak_all as f64 / 1048576.0,
        "node_cpu_s_total": cpu_all,
        "api_calls_total": calls(&all_metrics),
        "throttles_total": throttles(&all_metrics),
        "budget_wait_s_total": budget_waits(&all_metrics),
        "timeline": timeline,
    }))
}

/// Created, bound and Running pods, kept from a watch of the bench's namespace.
struct PodsSeen {
    pods: std::sync::Arc<parking_lot::Mutex<BTreeMap<String, (bool, bool)>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl PodsSeen {
    fn follow(api: Api<Pod>) -> Self {
        use kube::runtime::{WatchStreamExt, watcher};
        let pods = std::sync::Arc::new(parking_lot::Mutex::new(BTreeMap::new()));
        let seen = pods.clone();
        let task = tokio::spawn(async move {
            let events = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                let mut seen = seen.lock();
                let mut note = |pod: Pod| {
                    let bound = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_ref())
                        .is_some();
                    let running =
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    seen.insert(pod.metadata.uid.unwrap_or_default(), (bound, running));
                };
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => note(pod),
                    Ok(watcher::Event::Delete(pod)) => {
                        seen.remove(&pod.metadata.uid.unwrap_or_default());
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => {}
                }
            }
        });
        Self { pods, _task: task }
    }

    /// Pods created, bound and Running.
    fn counts(&self) -> (usize, usize, usize) {
        let pods = self.pods.lock();
        let bound = pods.values().filter(|(b, _)| *b).count();
        let running = pods.values().filter(|(_, r)| *r).count();
        (pods.len(), bound, running)
    }
}

/// `--restart`: once every pod runs, the node is killed and started again.
struct Restart<'a> {
    ground: &'a Ground,
    start: &'a dyn Fn(&str) -> Result<support::Daemon>,
}

impl Restart<'_> {
    /// Kills the node (SIGKILL: a crash, nothing handed over), starts it again, and measures
    /// the adoption: process start → Node Ready, and → `/readyz` (which answers only after the
    /// first pass over every pod), then the creates, deletes and describes of the new process
    /// up to 10 s after it, and that every pod still runs.
    fn measure(
        &self,
        node: &mut support::Daemon,
        node_name: &str,
        metrics_addr: &str,
        replicas: usize,
        seen: &PodsSeen,
    ) -> Result<serde_json::Value> {
        eprintln!("restart: killing the node (pid {})", node.pid());
        node.child.kill()?;
        node.child.wait()?;
        let started = Instant::now();
        let wall = jiff::Timestamp::now();
        *node = (self.start)("scale-node-restarted.log")?;
        let mut ready = None;
        let mut adopted = None;
        while ready.is_none() || adopted.is_none() {
            if started.elapsed() > Duration::from_secs(300) {
                bail!("the restarted node did not adopt its pods within 5 min");
            }
            if adopted.is_none()
                && support::http_get(&format!("http://{metrics_addr}/"), "/readyz").is_ok()
            {
                adopted = Some(secs(started));
            }
            if ready.is_none() && node_ready_since(self.ground, node_name, wall) {
                ready = Some(secs(started));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_secs(10));
        let metrics = support::http_get(metrics_addr, "/metrics")?;
        let calls: BTreeMap<String, f64> = support::family(&metrics, "eci_vk_api_calls_total")
            .into_iter()
            .collect();
        let count = |action: &str| -> f64 {
            calls
                .iter()
                .filter(|(k, _)| k.contains(&format!("action=\"{action}\"")))
                .map(|(_, v)| *v)
                .sum()
        };
        let (_, _, running) = seen.counts();
        let (rss, cpu) = support::proc_usage(node.pid())?;
        let report = serde_json::json!({
            "node_ready_s": ready,
            "adopted_s": adopted,
            "creates": count("CreateContainerGroup"),
            "deletes": count("DeleteContainerGroup"),
            "describes": count("DescribeContainerGroups"),
            "describes_read_quota_per_min": 2000,
            "running_after": running,
            "replicas": replicas,
            "rss_mib": rss as f64 / 1048576.0,
            "cpu_s": cpu,
        });
        println!(
            "restart: Node Ready {:.2} s, every pod adopted (/readyz) {:.2} s; creates {}, deletes {}, DescribeContainerGroups {} in the first {:.0} s; {running}/{replicas} Running after",
            ready.unwrap_or_default(),
            adopted.unwrap_or_default(),
            count("CreateContainerGroup"),
            count("DeleteContainerGroup"),
            count("DescribeContainerGroups"),
            secs(started),
        );
        Ok(report)
    }
}

/// Whether node `name` is Ready on a heartbeat sent since `since`: its Lease renewed then (the
/// Node's condition would still say Ready from before the kill, for the 40 s grace).
fn node_ready_since(ground: &Ground, name: &str, since: jiff::Timestamp) -> bool {
    let renewed = support::kubectl_get(
        ground,
        &[
            "-n",
            "kube-node-lease",
            "lease",
            name,
            "-o",
            "jsonpath={.spec.renewTime}",
        ],
    );
    renewed.parse::<jiff::Timestamp>().is_ok_and(|t| t >= since)
        && support::node_ready(ground, name)
}

/// Marks the cache the bench builds alone, so the count of the many leaves it out.
const SINGLE_LABEL: &str = "scale-bench-alone";

/// Builds one cache (two images, like each of the many) with nothing else being built and
/// returns the seconds from its create to its `Ready`, looked at every 0.1 s. The object is
/// then deleted (the node deletes its cloud cache).
async fn single_build(caches: &Api<ImageCache>, id: &str) -> Result<f64> {
    let name = format!("scale-{id}-alone");
    let mut cache = ImageCache::new(
        &name,
        ImageCacheSpec {
            images: vec![
                "registry.example.com/scale/alone:1.0".to_owned(),
                "registry.example.com/scale/base:1.0".to_owned(),
            ],
            image_pull_secrets: Vec::new(),
            image_cache_size: 20,
            retention_days: Some(1),
        },
    );
    cache.metadata.labels = Some(
        [
            (LABEL.to_owned(), format!("bench-{id}")),
            (SINGLE_LABEL.to_owned(), "true".to_owned()),
        ]
        .into(),
    );
    let t = Instant::now();
    caches.create(&PostParams::default(), &cache).await?;
    loop {
        let phase = caches
            .get(&name)
            .await?
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        match phase.as_str() {
            "Ready" => break,
            "Failed" => bail!("the cache built alone failed"),
            _ if t.elapsed() > Duration::from_secs(300) => {
                bail!("the cache built alone is not Ready after 300 s ({phase:?})")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let took = secs(t);
    caches.delete(&name, &Default::default()).await?;
    eprintln!("one ImageCache alone: Ready {took:.1} s after its create");
    Ok(took)
}
