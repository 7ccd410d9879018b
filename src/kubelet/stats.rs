//! `/stats/summary` (the kubelet's `stats/v1alpha1` Summary JSON) and `/metrics/resource`
//! (Prometheus text with the kubelet's metric names), both from the newest
//! `DescribeContainerGroupMetric` sample of each pod on this node.

use std::{fmt::Write as _, sync::Arc, time::Duration};

use futures::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt as _, api::ListParams};
use serde_json::{Value, json};

use super::{ApiError, Ctx, lookup};
use crate::eci::{
    DescribeContainerGroupMetric,
    container_ops::{CpuStats, MemoryStats, MetricRecord},
};

/// Limit on one metric call.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Metric calls in flight at once.
const CONCURRENCY: usize = 8;

/// One pod's newest sample.
pub struct PodSample {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// When the pod started.
    pub start: Option<String>,
    /// The newest record.
    pub record: MetricRecord,
}

/// The pods bound to this node, from the API server.
///
/// # Errors
/// 503 when the API server does not answer.
pub async fn node_pods(ctx: &Ctx) -> Result<Vec<Pod>, ApiError> {
    let api: Api<Pod> = Api::all(ctx.kube.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={}", ctx.node));
    let list = tokio::time::timeout(Duration::from_secs(15), api.list(&params))
        .await
        .map_err(|_| ApiError::unavailable("the API server did not answer the pod list"))?
        .map_err(|error| ApiError::unavailable(format!("cannot list pods: {error}")))?;
    Ok(list.items)
}

/// The newest sample of every pod of this node that has a group (pods whose metric call
/// fails are left out, as the kubelet leaves out containers it cannot read).
pub async fn samples(ctx: &Arc<Ctx>) -> Result<Vec<PodSample>, ApiError> {
    let pods = node_pods(ctx).await?;
    let calls = pods.into_iter().filter_map(|pod| {
        let group = lookup::group_of(&pod)?;
        let ctx = ctx.clone();
        Some(async move {
            let request = DescribeContainerGroupMetric {
                container_group_id: group,
                ..DescribeContainerGroupMetric::default()
            };
            let answer = tokio::time::timeout(
                CALL_TIMEOUT,
                ctx.eci.describe_container_group_metric(&request),
            )
            .await
            .ok()?
            .ok()?;
            let record = answer.records.into_iter().last()?;
            Some(PodSample {
                namespace: pod.namespace().unwrap_or_default(),
                name: pod.name_any(),
                uid: pod.uid().unwrap_or_default(),
                start: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0.to_string()),
                record,
            })
        })
    });
    Ok(futures::stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .filter_map(|s| async move { s })
        .collect()
        .await)
}

fn time_of(record: &MetricRecord) -> String {
    record
        .timestamp
        .parse::<Timestamp>()
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

fn cpu_json(cpu: &CpuStats, time: &str) -> Value {
    json!({
        "time": time,
        "usageNanoCores": cpu.usage_nano_cores,
        "usageCoreNanoSeconds": cpu.usage_core_nano_seconds,
    })
}

fn memory_json(memory: &MemoryStats, time: &str) -> Value {
    json!({
        "time": time,
        "availableBytes": memory.available_bytes,
        "usageBytes": memory.usage_bytes,
        "workingSetBytes": memory.working_set,
        "rssBytes": memory.rss,
        "pageFaults": 0,
        "majorPageFaults": 0,
    })
}

/// The Summary document.
pub fn summary(node: &str, node_start: &str, samples: &[PodSample]) -> Value {
    let now = Timestamp::now().to_string();
    let mut node_cpu = CpuStats::default();
    let mut node_memory = MemoryStats::default();
    let pods: Vec<Value> = samples
        .iter()
        .map(|s| {
            let time = time_of(&s.record);
            node_cpu.usage_nano_cores += s.record.cpu.usage_nano_cores;
            node_cpu.usage_core_nano_seconds += s.record.cpu.usage_core_nano_seconds;
            node_memory.usage_bytes += s.record.memory.usage_bytes;
            node_memory.working_set += s.record.memory.working_set;
            node_memory.rss += s.record.memory.rss;
            let start = s.start.clone().unwrap_or_else(|| time.clone());
            let containers: Vec<Value> = s
                .record
                .containers
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "startTime": start,
                        "cpu": cpu_json(&c.cpu, &time),
                        "memory": memory_json(&c.memory, &time),
                    })
                })
                .collect();
            let interfaces: Vec<Value> = s
                .record
                .network
                .interfaces
                .iter()
                .map(|i| {
                    json!({"name": i.name, "rxBytes": i.rx_bytes, "rxErrors": i.rx_errors,
                           "txBytes": i.tx_bytes, "txErrors": i.tx_errors})
                })
                .collect();
            let mut network = interfaces.first().cloned().unwrap_or_else(|| json!({}));
            network["time"] = json!(time);
            network["interfaces"] = json!(interfaces);
            json!({
                "podRef": {"name": s.name, "namespace": s.namespace, "uid": s.uid},
                "startTime": start,
                "containers": containers,
                "cpu": cpu_json(&s.record.cpu, &time),
                "memory": memory_json(&s.record.memory, &time),
                "network": network,
            })
        })
        .collect();
    json!({
        "node": {
            "nodeName": node,
            "startTime": node_start,
            "cpu": cpu_json(&node_cpu, &now),
            "memory": memory_json(&node_memory, &now),
        },
        "pods": pods,
    })
}

#[allow(clippy::cast_precision_loss)] // counters shown as float seconds, as Prometheus does
fn seconds(core_nanos: u64) -> f64 {
    core_nanos as f64 / 1e9
}

/// The node's CPU counter: every pod it has seen counts, so a pod that goes (or whose counter
/// starts again) keeps its share and the total never falls; a counter that drops reads as a
/// reset to Prometheus, and `rate()` of it turns into nonsense.
///
/// A pod missing from one scrape (its metric call failed) keeps its last value rather than
/// being counted again when it comes back; only after [`NodeCpu::FORGET`] without a sample is
/// its share moved into the retired sum. A sample older than the one held (two scrapes at
/// once) is ignored, so it is not taken for a restart.
#[derive(Debug, Default)]
pub struct NodeCpu {
    inner: parking_lot::Mutex<NodeCpuState>,
}

#[derive(Debug, Default)]
struct NodeCpuState {
    /// Each pod's newest counter, its sample time and when it was last seen, by UID.
    pods: std::collections::HashMap<String, PodCpu>,
    /// What pods no longer in `pods` (or earlier lives of a restarted one) had used.
    retired: u64,
}

#[derive(Debug, Clone, Copy)]
struct PodCpu {
    nanos: u64,
    sampled: Option<Timestamp>,
    seen: tokio::time::Instant,
}

impl NodeCpu {
    /// How long a pod without a sample keeps its own entry.
    pub const FORGET: Duration = Duration::from_secs(600);

    /// The node's cumulative CPU in core-nanoseconds, with `samples` as the pods' counters now.
    pub fn total(&self, samples: &[PodSample]) -> u64 {
        let now = tokio::time::Instant::now();
        let mut state = self.inner.lock();
        for sample in samples {
            let nanos = sample.record.cpu.usage_core_nano_seconds;
            let sampled = sample.record.timestamp.parse::<Timestamp>().ok();
            let fresh = PodCpu {
                nanos,
                sampled,
                seen: now,
            };
            match state.pods.get(&sample.uid).copied() {
                None => {
                    state.pods.insert(sample.uid.clone(), fresh);
                }
                Some(held)
                    if sampled.is_some() && held.sampled.is_some() && sampled < held.sampled => {}
                Some(held) if nanos < held.nanos => {
                    // A new life of the pod's group: the old one's CPU stays counted.
                    state.retired = state.retired.saturating_add(held.nanos);
                    state.pods.insert(sample.uid.clone(), fresh);
                }
                Some(_) => {
                    state.pods.insert(sample.uid.clone(), fresh);
                }
            }
        }
        let forgotten: Vec<String> = state
            .pods
            .iter()
            .filter(|(_, p)| now.duration_since(p.seen) > Self::FORGET)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in forgotten {
            if let Some(p) = state.pods.remove(&uid) {
                state.retired = state.retired.saturating_add(p.nanos);
            }
        }
        state
            .pods
            .values()
            .fold(state.retired, |sum, p| sum.saturating_add(p.nanos))
    }
}

/// The `/metrics/resource` text: the kubelet's families with their `[STABLE]` help and per-sample
/// timestamps, written here because a registry (prometheus-client) cannot stamp samples with the
/// time ECI measured them. `node_cpu_nanos` is [`NodeCpu::total`].
pub fn resource_metrics(samples: &[PodSample], node_cpu_nanos: u64) -> String {
    let mut out = String::new();
    let stamp = |r: &MetricRecord| {
        r.timestamp.parse::<Timestamp>().map_or_else(
            |_| Timestamp::now().as_millisecond(),
            |t| t.as_millisecond(),
        )
    };
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String, i64)>| {
        let _ = writeln!(out, "# HELP {name} [STABLE] {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value, at) in rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value} {at}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value} {at}");
            }
        }
    };
    let container_rows = |f: &dyn Fn(&crate::eci::container_ops::ContainerMetric) -> String| {
        samples
            .iter()
            .flat_map(|s| {
                s.record.containers.iter().map(move |c| {
                    (
                        format!(
                            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
                            c.name, s.namespace, s.name
                        ),
                        f(c),
                        stamp(&s.record),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
        container_rows(&|c| seconds(c.cpu.usage_core_nano_seconds).to_string()),
    );
    family(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
        container_rows(&|c| c.memory.working_set.to_string()),
    );
    // The pod's start stands for its containers' (ECI samples carry no per-container start).
    let starts = samples
        .iter()
        .filter_map(|s| {
            let start = s.start.as_ref()?.parse::<Timestamp>().ok()?;
            Some(s.record.containers.iter().map(move |c| {
                (
                    format!(
                        "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
                        c.name, s.namespace, s.name
                    ),
                    start.as_second().to_string(),
                    stamp(&s.record),
                )
            }))
        })
        .flatten()
        .collect();
    family(
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds",
        starts,
    );
    let pod_rows = |f: &dyn Fn(&MetricRecord) -> String| {
        samples
            .iter()
            .map(|s| {
                (
                    format!("namespace=\"{}\",pod=\"{}\"", s.namespace, s.name),
                    f(&s.record),
                    stamp(&s.record),
                )
            })
            .collect::<Vec<_>>()
    };
    family(
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
        pod_rows(&|r| seconds(r.cpu.usage_core_nano_seconds).to_string()),
    );
    family(
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
        pod_rows(&|r| r.memory.working_set.to_string()),
    );
    let now = Timestamp::now().as_millisecond();
    let cpu = node_cpu_nanos;
    let memory: u64 = samples.iter().map(|s| s.record.memory.working_set).sum();
    family(
        "node_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the node in core-seconds",
        vec![(String::new(), seconds(cpu).to_string(), now)],
    );
    family(
        "node_memory_working_set_bytes",
        "gauge",
        "Current working set of the node in bytes",
        vec![(String::new(), memory.to_string(), now)],
    );
    let _ = writeln!(
        out,
        "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise"
    );
    let _ = writeln!(out, "# TYPE resource_scrape_error gauge");
    let _ = writeln!(out, "resource_scrape_error 0");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eci::container_ops::ContainerMetric;

    fn sample() -> PodSample {
        PodSample {
            namespace: "ns".into(),
            name: "web".into(),
            uid: "u".into(),
            start: None,
            record: MetricRecord {
                timestamp: "2026-01-01T00:00:00Z".into(),
                memory: MemoryStats {
                    working_set: 64,
                    ..MemoryStats::default()
                },
                containers: vec![ContainerMetric {
                    name: "app".into(),
                    cpu: CpuStats {
                        usage_core_nano_seconds: 2_000_000_000,
                        ..CpuStats::default()
                    },
                    memory: MemoryStats {
                        working_set: 64,
                        ..MemoryStats::default()
                    },
                }],
                ..MetricRecord::default()
            },
        }
    }

    #[test]
    fn metrics_use_the_kubelet_names() {
        let text = resource_metrics(&[sample()], 3_000_000_000);
        assert!(text.contains(
            "container_memory_working_set_bytes{container=\"app\",namespace=\"ns\",pod=\"web\"} 64 "
        ));
        assert!(text.contains(
            "container_cpu_usage_seconds_total{container=\"app\",namespace=\"ns\",pod=\"web\"} 2 "
        ));
        assert!(text.contains("pod_memory_working_set_bytes{namespace=\"ns\",pod=\"web\"} 64"));
        assert!(text.contains("node_memory_working_set_bytes 64 "));
        assert!(text.contains("node_cpu_usage_seconds_total 3 "));
    }

    #[test]
    fn the_node_cpu_counter_never_falls_when_pods_go_or_restart() {
        let with = |uid: &str, nanos: u64, at: &str| PodSample {
            uid: uid.into(),
            record: MetricRecord {
                timestamp: format!("2026-01-01T00:00:{at}Z"),
                cpu: CpuStats {
                    usage_core_nano_seconds: nanos,
                    ..CpuStats::default()
                },
                ..MetricRecord::default()
            },
            ..sample()
        };
        let cpu = NodeCpu::default();
        assert_eq!(cpu.total(&[with("a", 10, "01"), with("b", 5, "01")]), 15);
        // b has no sample this time: its 5 stay counted, once.
        assert_eq!(cpu.total(&[with("a", 12, "02")]), 17);
        assert_eq!(cpu.total(&[with("a", 12, "03"), with("b", 6, "03")]), 18);
        // A late answer of an earlier scrape is not a restart.
        assert_eq!(cpu.total(&[with("a", 11, "02")]), 18);
        // a's counter started again (a new group): its 12 stay counted.
        assert_eq!(cpu.total(&[with("a", 1, "04"), with("b", 6, "04")]), 19);
        assert_eq!(cpu.total(&[]), 19);
    }

    #[test]
    fn summary_lists_pods_and_containers() {
        let doc = summary("vk", "2026-01-01T00:00:00Z", &[sample()]);
        assert_eq!(doc["node"]["nodeName"], "vk");
        assert_eq!(doc["pods"][0]["podRef"]["name"], "web");
        assert_eq!(
            doc["pods"][0]["containers"][0]["memory"]["workingSetBytes"],
            64
        );
    }
}
