//! Prometheus text metrics of `eci-vk run`: ECI API calls by action and result, throttles,
//! time spent waiting for the client's quota budget, pods by phase, pod creates, and the
//! duration of sync passes. One [`Metrics`] is shared through the context (no global
//! registry); labels are bounded (actions, API error codes, phases), never pod names or request
//! ids.

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc, time::Duration};

use parking_lot::Mutex;

use crate::eci::{AttemptRecord, Observer};

/// A metric family: name, type and help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const API_CALLS: Family = Family {
    name: "eci_vk_api_calls_total",
    kind: "counter",
    help: "ECI OpenAPI attempts by action and result (ok, an API error code, or transport).",
};
const THROTTLES: Family = Family {
    name: "eci_vk_api_throttles_total",
    kind: "counter",
    help: "ECI OpenAPI attempts the service throttled, by action.",
};
const BUDGET_WAIT: Family = Family {
    name: "eci_vk_api_budget_wait_seconds_total",
    kind: "counter",
    help: "Seconds ECI OpenAPI attempts waited for the client's own quota budget, by action.",
};
const PODS: Family = Family {
    name: "eci_vk_pods",
    kind: "gauge",
    help: "Pods bound to this node by phase, as of the last sync pass.",
};
const CREATES: Family = Family {
    name: "eci_vk_pod_creates_total",
    kind: "counter",
    help: "CreateContainerGroup outcomes by result (created, failed, blocked, rejected).",
};
const POD_WRITES: Family = Family {
    name: "eci_vk_pod_writes_total",
    kind: "counter",
    help: "Writes of a pod the node sent to the API server, by kind (status, annotations).",
};
const PASS_SECONDS: Family = Family {
    name: "eci_vk_sync_pass_seconds",
    kind: "summary",
    help: "Duration of a sync pass (one batched describe plus the per-pod work).",
};

type Labels = Vec<(&'static str, String)>;

/// The node's metrics. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    values: Arc<Mutex<BTreeMap<(Family, Labels), f64>>>,
}

impl Metrics {
    fn add(&self, family: Family, labels: Labels, by: f64) {
        *self.values.lock().entry((family, labels)).or_insert(0.0) += by;
    }

    fn set(&self, family: Family, labels: Labels, value: f64) {
        self.values.lock().insert((family, labels), value);
    }

    /// An observer for [`crate::eci::ClientConfig::observer`].
    pub fn eci_observer(&self) -> Observer {
        let metrics = self.clone();
        Arc::new(move |record: &AttemptRecord<'_>| {
            let result = match (record.status, record.code) {
                (_, Some(code)) => code.to_owned(),
                (Some(status), None) if (200..300).contains(&status) => "ok".to_owned(),
                (Some(status), None) => format!("http_{status}"),
                (None, None) => "transport".to_owned(),
            };
            metrics.add(
                API_CALLS,
                vec![("action", record.action.to_owned()), ("result", result)],
                1.0,
            );
            if record.throttled {
                metrics.add(THROTTLES, vec![("action", record.action.to_owned())], 1.0);
            }
            // The client waits out ECI's quotas locally rather than be throttled, so this is
            // where a quota shows as a limit.
            if !record.budget_wait.is_zero() {
                metrics.add(
                    BUDGET_WAIT,
                    vec![("action", record.action.to_owned())],
                    record.budget_wait.as_secs_f64(),
                );
            }
        })
    }

    /// Records the pods by phase after a pass (phases absent now are set to 0).
    pub fn pods_by_phase(&self, counts: &BTreeMap<String, usize>) {
        for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
            let n = counts.get(phase).copied().unwrap_or(0);
            #[allow(clippy::cast_precision_loss)] // pod counts are far below 2^52
            self.set(PODS, vec![("phase", phase.to_owned())], n as f64);
        }
    }

    /// Counts a create outcome.
    pub fn pod_create(&self, result: &'static str) {
        self.add(CREATES, vec![("result", result.to_owned())], 1.0);
    }

    /// Counts a write of a pod: `status` or `annotations`.
    pub fn pod_write(&self, kind: &'static str) {
        self.add(POD_WRITES, vec![("kind", kind.to_owned())], 1.0);
    }

    /// Records one sync pass.
    pub fn sync_pass(&self, took: Duration) {
        let mut values = self.values.lock();
        *values
            .entry((PASS_SECONDS, vec![("", "sum".to_owned())]))
            .or_insert(0.0) += took.as_secs_f64();
        *values
            .entry((PASS_SECONDS, vec![("", "count".to_owned())]))
            .or_insert(0.0) += 1.0;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let values = self.values.lock().clone();
        let mut out = String::new();
        let mut last: Option<&'static str> = None;
        for ((family, labels), value) in &values {
            if last != Some(family.name) {
                let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
                let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
                last = Some(family.name);
            }
            if family.kind == "summary" {
                let suffix = labels.first().map_or("", |(_, v)| v.as_str());
                let _ = writeln!(out, "{}_{suffix} {value}", family.name);
                continue;
            }
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {value}", family.name, rendered.join(","));
        }
        out
    }
}

/// Serves `GET /metrics`, and `GET /healthz` (`ok`, for the chart's probes: the server only
/// listens once the Node is registered), on `listener` until `shutdown` resolves.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_once_with_labels() {
        let metrics = Metrics::default();
        let observe = metrics.eci_observer();
        for code in [None, Some("Throttling")] {
            observe(&AttemptRecord {
                action: "DescribeContainerGroups",
                attempt: 1,
                status: Some(if code.is_some() { 400 } else { 200 }),
                code,
                throttled: code.is_some(),
                budget_wait: if code.is_some() {
                    Duration::ZERO
                } else {
                    Duration::from_millis(1500)
                },
                elapsed: Duration::ZERO,
            });
        }
        metrics.pods_by_phase(&[("Running".to_owned(), 3)].into());
        metrics.sync_pass(Duration::from_millis(250));
        let text = metrics.render();
        assert!(
            text.contains(
                "eci_vk_api_calls_total{action=\"DescribeContainerGroups\",result=\"ok\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("result=\"Throttling\"} 1"), "{text}");
        assert!(
            text.contains("eci_vk_api_throttles_total{action=\"DescribeContainerGroups\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "eci_vk_api_budget_wait_seconds_total{action=\"DescribeContainerGroups\"} 1.5"
            ),
            "{text}"
        );
        assert!(text.contains("eci_vk_pods{phase=\"Running\"} 3"), "{text}");
        assert!(text.contains("eci_vk_sync_pass_seconds_count 1"), "{text}");
        assert_eq!(text.matches("# TYPE eci_vk_pods gauge").count(), 1);
    }
}
