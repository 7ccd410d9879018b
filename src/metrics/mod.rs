//! The node's metrics, in one `prometheus-client` registry served as OpenMetrics text at
//! `/metrics`: ECI API calls (by action and result, their latency, throttles, time waiting for
//! the client's own quota budget), pods by phase, pod creates and writes, sync-pass durations,
//! the credentials' refreshes and expiry, ImageCache reconciles and leadership, and the build.
//!
//! One [`Metrics`] is shared through the context (no global registry). Labels are bounded
//! (actions, API error codes, phases), never pod names or request ids; an error code is kept to
//! the characters error codes use, so a server's answer cannot add a line to the exposition.

mod probes;

pub use probes::Probes;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
        info::Info,
    },
    registry::{Registry, Unit},
};

use crate::{
    eci::{AttemptRecord, Observer, Provider},
    imagecache,
};

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionResult {
    action: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CachePhaseLabel {
    phase: String,
    origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabel {
    lease: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type Seconds = Counter<f64, AtomicU64>;

/// ECI calls: 5 ms to 41 s.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Sync passes and reconciles: 10 ms to 82 s.
/// From a cached start (about a second) to a pull of gigabytes (minutes).
fn start_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.25, 2.0, 12))
}

/// From an instant cache (seconds) to a build of large images (an hour).
fn build_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

fn pass_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The node's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    api_calls: Family<ActionResult, Counter>,
    api_call_seconds: Histograms<ActionResult>,
    throttles: Family<ActionLabel, Counter>,
    budget_wait: Family<ActionLabel, Seconds>,
    pods: Family<PhaseLabel, Gauge>,
    creates: Family<ResultLabel, Counter>,
    pod_writes: Family<KindLabel, Counter>,
    pass_seconds: Histogram,
    credential_fetches: Counter,
    credential_expiry: Gauge,
    reconciles: Family<ResultLabel, Counter>,
    reconcile_seconds: Histograms<ResultLabel>,
    leader: Family<LeaseLabel, Gauge>,
    cache_decisions: Family<DecisionLabel, Counter>,
    pod_start_seconds: Histograms<CacheLabel>,
    cache_build_seconds: Histogram,
    caches: Family<CachePhaseLabel, Gauge>,
    cache_index: Arc<Mutex<Option<imagecache::CacheIndexHandle>>>,
    credentials: Arc<Mutex<Option<Provider>>>,
    fetches_seen: Arc<AtomicU64>,
    probes: Probes,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// How long the pod loop may go without a finished pass before liveness fails.
const POD_LOOP_STUCK_AFTER: Duration = Duration::from_secs(180);

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Arc::new(Registry::default()),
            api_calls: Family::default(),
            api_call_seconds: Family::new_with_constructor(call_buckets),
            throttles: Family::default(),
            budget_wait: Family::default(),
            pods: Family::default(),
            creates: Family::default(),
            pod_writes: Family::default(),
            pass_seconds: pass_buckets(),
            credential_fetches: Counter::default(),
            credential_expiry: Gauge::default(),
            reconciles: Family::default(),
            reconcile_seconds: Family::new_with_constructor(pass_buckets),
            leader: Family::default(),
            cache_decisions: Family::default(),
            pod_start_seconds: Family::new_with_constructor(start_buckets),
            cache_build_seconds: build_buckets(),
            caches: Family::default(),
            cache_index: Arc::new(Mutex::new(None)),
            credentials: Arc::new(Mutex::new(None)),
            fetches_seen: Arc::new(AtomicU64::new(0)),
            probes: Probes::default(),
        };
        let mut registry = Registry::default();
        let r = &mut registry;
        r.register(
            "eci_vk_api_calls",
            "ECI OpenAPI attempts by action and result (ok, an API error code, http_<status>, or transport)",
            metrics.api_calls.clone(),
        );
        r.register_with_unit(
            "eci_vk_api_call_duration",
            "Time from sending an ECI OpenAPI attempt to the end of its answer, by action and result",
            Unit::Seconds,
            metrics.api_call_seconds.clone(),
        );
        r.register(
            "eci_vk_api_throttles",
            "ECI OpenAPI attempts the service throttled, by action",
            metrics.throttles.clone(),
        );
        r.register_with_unit(
            "eci_vk_api_budget_wait",
            "Time ECI OpenAPI attempts waited for the client's own quota budget, by action",
            Unit::Seconds,
            metrics.budget_wait.clone(),
        );
        r.register(
            "eci_vk_pods",
            "Pods bound to this node by phase, as of the last sync pass",
            metrics.pods.clone(),
        );
        r.register(
            "eci_vk_pod_creates",
            "CreateContainerGroup outcomes by result (created, failed, blocked, rejected)",
            metrics.creates.clone(),
        );
        r.register(
            "eci_vk_pod_writes",
            "Writes of a pod the node sent to the API server, by kind (status, annotations)",
            metrics.pod_writes.clone(),
        );
        r.register_with_unit(
            "eci_vk_sync_pass",
            "Duration of a sync pass (one batched describe plus the per-pod work)",
            Unit::Seconds,
            metrics.pass_seconds.clone(),
        );
        r.register(
            "eci_vk_credential_fetches",
            "Times ECI credentials were fetched from their source (STS, the metadata service, a file) rather than served from the node's cache",
            metrics.credential_fetches.clone(),
        );
        r.register(
            "eci_vk_credential_expiry_timestamp_seconds",
            "Unix time at which the ECI credentials held now expire (0 for AccessKeys, which do not)",
            metrics.credential_expiry.clone(),
        );
        r.register(
            "eci_vk_imagecache_reconciles",
            "ImageCache reconciles this process ran, by result (ok, error)",
            metrics.reconciles.clone(),
        );
        r.register_with_unit(
            "eci_vk_imagecache_reconcile_duration",
            "Duration of one ImageCache reconcile, by result",
            Unit::Seconds,
            metrics.reconcile_seconds.clone(),
        );
        r.register(
            "eci_vk_leader",
            "1 while this process holds the lease (imagecache: the ImageCache controller's) and does its writes, else 0",
            metrics.leader.clone(),
        );
        r.register(
            "eci_vk_imagecache_decisions",
            "What new pods start from, by decision (explicit, matched, eci: ECI matches and builds, miss, none) and the reason of a miss",
            metrics.cache_decisions.clone(),
        );
        r.register_with_unit(
            "eci_vk_pod_start_duration",
            "Time from a pod's CreateContainerGroup to its group running, by what it started from (explicit, matched, eci, miss, none)",
            Unit::Seconds,
            metrics.pod_start_seconds.clone(),
        );
        r.register_with_unit(
            "eci_vk_imagecache_build_duration",
            "Time from a cloud cache's creation to the reconciler seeing it Ready",
            Unit::Seconds,
            metrics.cache_build_seconds.clone(),
        );
        r.register(
            "eci_vk_imagecaches",
            "Image caches the node knows, by phase and origin (object: an ImageCache of this cluster; cloud: only the account's list)",
            metrics.caches.clone(),
        );
        r.register(
            "eci_vk_build",
            "The running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry: Arc::new(registry),
            ..metrics
        }
    }
}

/// The `decision` and `reason` labels of a snapshot decision: `explicit`, `matched`, `eci`
/// (ECI matches and builds), `miss` (with the miss's reason), `none`.
pub fn decision_labels(decision: &imagecache::SnapshotDecision) -> (&'static str, &'static str) {
    use imagecache::{Miss, SnapshotDecision as D};
    match decision {
        D::NotRequested => ("none", ""),
        D::Use {
            automatic: false, ..
        } => ("explicit", ""),
        D::Use { .. } => ("matched", ""),
        D::AutoCreate { partial: Some(_) } => ("eci", "partial"),
        D::AutoCreate { partial: None } => ("eci", "nothing"),
        D::Missed { miss, .. } => (
            "miss",
            match miss {
                Miss::NoImages => "no_images",
                Miss::NoCacheHoldsAnImage => "no_cache_holds_an_image",
                Miss::NoneUsable => "none_usable",
                Miss::FilteredOut => "filtered_out",
                Miss::NotEntitled => "not_entitled",
            },
        ),
    }
}

/// An API error code as a label value: the characters codes are made of, at most 64.
fn code_label(code: &str) -> String {
    code.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Metrics {
    /// An observer for [`crate::eci::ClientConfig::observer`].
    pub fn eci_observer(&self) -> Observer {
        let metrics = self.clone();
        Arc::new(move |record: &AttemptRecord<'_>| {
            let result = match (record.status, record.code) {
                (_, Some(code)) if !code.is_empty() => code_label(code),
                (Some(status), _) if (200..300).contains(&status) => "ok".to_owned(),
                (Some(status), _) => format!("http_{status}"),
                (None, _) => "transport".to_owned(),
            };
            let labels = ActionResult {
                action: record.action.to_owned(),
                result,
            };
            metrics.api_calls.get_or_create(&labels).inc();
            metrics
                .api_call_seconds
                .get_or_create(&labels)
                .observe(record.elapsed.as_secs_f64());
            let action = ActionLabel {
                action: record.action.to_owned(),
            };
            if record.throttled {
                metrics.throttles.get_or_create(&action).inc();
            }
            // The client waits out ECI's quotas locally rather than be throttled, so this is
            // where a quota shows as a limit.
            if !record.budget_wait.is_zero() {
                metrics
                    .budget_wait
                    .get_or_create(&action)
                    .inc_by(record.budget_wait.as_secs_f64());
            }
        })
    }

    /// An observer for [`imagecache::Settings::observer`].
    pub fn image_cache_observer(&self) -> imagecache::Observer {
        let metrics = self.clone();
        imagecache::Observer(Arc::new(move |report| match report {
            imagecache::Report::Reconciled { ok, took } => {
                let result = ResultLabel {
                    result: if ok { "ok" } else { "error" }.to_owned(),
                };
                metrics.reconciles.get_or_create(&result).inc();
                metrics
                    .reconcile_seconds
                    .get_or_create(&result)
                    .observe(took.as_secs_f64());
            }
            imagecache::Report::Built { took } => {
                metrics.cache_build_seconds.observe(took.as_secs_f64());
            }
            imagecache::Report::Leading(leading) => {
                metrics
                    .leader
                    .get_or_create(&LeaseLabel {
                        lease: "imagecache".to_owned(),
                    })
                    .set(i64::from(leading));
            }
        }))
    }

    /// Reports the fetches and expiry of `provider`'s credentials.
    pub fn watch_credentials(&self, provider: Provider) {
        *self.credentials.lock() = Some(provider);
    }

    /// Records the pods by phase after a pass (phases absent now are set to 0).
    pub fn pods_by_phase(&self, counts: &BTreeMap<String, usize>) {
        for phase in ["Pending", "Running", "Succeeded", "Failed", "Unknown"] {
            let n = counts.get(phase).copied().unwrap_or(0);
            self.pods
                .get_or_create(&PhaseLabel {
                    phase: phase.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts a create outcome.
    pub fn pod_create(&self, result: &'static str) {
        self.creates
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts a write of a pod: `status` or `annotations`.
    pub fn pod_write(&self, kind: &'static str) {
        self.pod_writes
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts what a new pod starts from.
    pub fn cache_decision(&self, decision: &imagecache::SnapshotDecision) {
        let (decision, reason) = decision_labels(decision);
        self.cache_decisions
            .get_or_create(&DecisionLabel {
                decision: decision.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Records a pod's start: create to running, by what it started from (a
    /// [`decision_labels`] decision).
    pub fn pod_started(&self, cache: &str, took: Duration) {
        self.pod_start_seconds
            .get_or_create(&CacheLabel {
                cache: cache.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Reports the caches of `index` by phase at each scrape.
    pub fn watch_image_caches(&self, index: imagecache::CacheIndexHandle) {
        *self.cache_index.lock() = Some(index);
    }

    /// Records one sync pass.
    pub fn sync_pass(&self, took: Duration) {
        self.pass_seconds.observe(took.as_secs_f64());
        // A pass describes a page of groups per 100 pods inside ECI's read quota, and writes
        // what changed: minutes without one mean the loop is stuck, not slow.
        self.probes.beat("pod loop", POD_LOOP_STUCK_AFTER);
        self.probes.synced();
    }

    /// The probes this process answers (shared with the pod loop's passes).
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let provider = self.credentials.lock().clone();
        if let Some(provider) = provider {
            // The provider counts its own fetches; the counter catches up with it here.
            let now = provider.fetches();
            let seen = self.fetches_seen.swap(now, Ordering::Relaxed);
            self.credential_fetches.inc_by(now.saturating_sub(seen));
            self.credential_expiry
                .set(provider.expires().map_or(0, |t| t.as_second()));
        }
        let index = self.cache_index.lock().clone();
        if let Some(index) = index {
            let mut counts: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
            index.read(|caches| {
                for cache in caches.entries() {
                    let origin = match cache.origin {
                        imagecache::Origin::Object => "object",
                        imagecache::Origin::Cloud => "cloud",
                    };
                    *counts.entry((cache.phase.clone(), origin)).or_default() += 1;
                }
            });
            self.caches.clear();
            for ((phase, origin), n) in counts {
                self.caches
                    .get_or_create(&CachePhaseLabel {
                        phase,
                        origin: origin.to_owned(),
                    })
                    .set(n);
            }
        }
        if let Some(leading) = self.probes.leading() {
            self.leader
                .get_or_create(&LeaseLabel {
                    lease: "node".to_owned(),
                })
                .set(i64::from(leading));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics`, and the probes ([`Probes`]): `/livez` (and `/healthz`, its old
/// name) and `/readyz`, 200 with what holds or 503 with what does not, on `listener` until
/// `shutdown` resolves.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    probes: Probes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let answer = |result: Result<String, String>| match result {
        Ok(body) => (axum::http::StatusCode::OK, body),
        Err(body) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, body),
    };
    let live = {
        let probes = probes.clone();
        move || {
            let probes = probes.clone();
            async move { answer(probes.liveness()) }
        }
    };
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/livez", axum::routing::get(live.clone()))
        .route("/healthz", axum::routing::get(live))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let probes = probes.clone();
                async move { answer(probes.readiness()) }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_cache_decisions_starts_builds_and_caches_by_phase() {
        let metrics = Metrics::default();
        metrics.cache_decision(&imagecache::SnapshotDecision::Missed {
            miss: imagecache::Miss::NotEntitled,
            asked: false,
        });
        metrics.cache_decision(&imagecache::SnapshotDecision::AutoCreate { partial: None });
        metrics.pod_started("matched", Duration::from_millis(900));
        (metrics.image_cache_observer().0)(imagecache::Report::Built {
            took: Duration::from_secs(40),
        });
        let index = imagecache::CacheIndexHandle::new();
        index.replace_cloud(vec![imagecache::CacheEntry {
            id: "imc-1".into(),
            name: "console".into(),
            phase: "Ready".into(),
            expires: None,
            created: jiff::Timestamp::UNIX_EPOCH,
            images: Vec::new(),
            size_gib: 20,
            origin: imagecache::Origin::Cloud,
            last_matched: None,
            stale: false,
            private_registries: Vec::new(),
        }]);
        metrics.watch_image_caches(index);
        let text = metrics.render();
        for line in [
            "eci_vk_imagecache_decisions_total{decision=\"miss\",reason=\"not_entitled\"} 1",
            "eci_vk_imagecache_decisions_total{decision=\"eci\",reason=\"nothing\"} 1",
            "eci_vk_pod_start_duration_seconds_count{cache=\"matched\"} 1",
            "eci_vk_pod_start_duration_seconds_bucket{le=\"1.0\",cache=\"matched\"} 1",
            "eci_vk_imagecache_build_duration_seconds_count 1",
            "eci_vk_imagecaches{phase=\"Ready\",origin=\"cloud\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn renders_families_once_with_labels_units_and_histograms() {
        let metrics = Metrics::default();
        let observe = metrics.eci_observer();
        for code in [
            None,
            Some("Throttling"),
            Some("Evil\n# TYPE injected counter"),
        ] {
            observe(&AttemptRecord {
                action: "DescribeContainerGroups",
                attempt: 1,
                status: Some(if code.is_some() { 400 } else { 200 }),
                code,
                throttled: code == Some("Throttling"),
                budget_wait: if code.is_some() {
                    Duration::ZERO
                } else {
                    Duration::from_millis(1500)
                },
                elapsed: Duration::from_millis(30),
            });
        }
        metrics.pods_by_phase(&[("Running".to_owned(), 3)].into());
        metrics.sync_pass(Duration::from_millis(250));
        (metrics.image_cache_observer().0)(imagecache::Report::Leading(true));
        (metrics.image_cache_observer().0)(imagecache::Report::Reconciled {
            ok: false,
            took: Duration::from_millis(20),
        });
        let text = metrics.render();
        for line in [
            "eci_vk_api_calls_total{action=\"DescribeContainerGroups\",result=\"ok\"} 1",
            "eci_vk_api_calls_total{action=\"DescribeContainerGroups\",result=\"Throttling\"} 1",
            "eci_vk_api_throttles_total{action=\"DescribeContainerGroups\"} 1",
            "eci_vk_api_budget_wait_seconds_total{action=\"DescribeContainerGroups\"} 1.5",
            "eci_vk_api_call_duration_seconds_count{action=\"DescribeContainerGroups\",result=\"ok\"} 1",
            "eci_vk_pods{phase=\"Running\"} 3",
            "eci_vk_sync_pass_seconds_count 1",
            "eci_vk_sync_pass_seconds_bucket{le=\"0.32\"} 1",
            "eci_vk_leader{lease=\"imagecache\"} 1",
            "eci_vk_imagecache_reconciles_total{result=\"error\"} 1",
            "# TYPE eci_vk_sync_pass_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("eci_vk_build_info{version=") && l.ends_with(" 1")),
            "{text}"
        );
        // A code with a newline stays on one line.
        assert!(!text.contains("# TYPE injected"), "{text}");
        assert_eq!(text.matches("# TYPE eci_vk_pods gauge").count(), 1);
    }

    #[test]
    fn code_labels_keep_only_code_characters() {
        assert_eq!(
            code_label("InvalidParameter.NotFound"),
            "InvalidParameter.NotFound"
        );
        assert_eq!(code_label("a\"b\nc d"), "a_b_c_d");
        assert_eq!(code_label(&"x".repeat(100)).len(), 64);
    }
}
