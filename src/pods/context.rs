//! What every part of the pod loop shares: the node's settings ([`PodsConfig`]), and the
//! [`Context`] of one running loop — clients, the pod store, the bookkeeping of creates and
//! refusals — with the limits on the calls they make.

use std::{collections::HashSet, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    ResourceExt,
    runtime::{events::Recorder, reflector::Store},
};
use parking_lot::Mutex;
use tracing::info_span;

use super::{cloud_events::CloudEvents, create::Backoff, starts::Starts, translate::Placement};
use crate::{eci, expiring::Expiring};

/// Limit on one apiserver call.
pub(super) const KUBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Limit on one ECI call, retries included.
pub(super) const ECI_TIMEOUT: Duration = Duration::from_secs(90);
/// Pods handled at once within a pass.
pub(super) const CONCURRENCY: usize = 16;
/// Creates a pass hands off at once (each waits its turn in the client's create budget).
pub(super) const PASS_CREATES: usize = 64;
/// New pods the watch shows that are built and created at once. A create holds its place
/// while it builds its request (a TokenRequest, and reads shared with the pods created
/// beside it) and while it waits its turn in the create budget. At 16, the quota's burst of
/// 100 creates took 1.9 s to be spent at the start of a 1,000-pod scale-up: builds took up to
/// 0.3 s each while the API server took the ReplicaSet's pods (issue #21).
pub(super) const CREATE_LANE: usize = 64;

/// What the pod controller needs to know.
#[derive(Debug, Clone)]
pub struct PodsConfig {
    /// The node's name.
    pub node_name: String,
    /// Where groups go, and the cluster/node tags.
    pub placement: Placement,
    /// The node's InternalIP, reported as each pod's hostIP.
    pub host_ip: String,
    /// Time between passes.
    pub sync_interval: Duration,
    /// Where pod and pass metrics go.
    pub metrics: crate::metrics::Metrics,
    /// The ImageCaches this node knows, for the snapshot a new pod starts from.
    pub image_caches: crate::imagecache::CacheIndexHandle,
    /// How pods that do not say are matched with caches.
    pub image_cache_policy: crate::imagecache::Policy,
    /// The eci-profile in force (its security group and vSwitches for new groups).
    pub profile: crate::profile::ProfileHandle,
}

/// The state of one running pod loop, shared by the loop, its passes, looks and creates.
pub(super) struct Context {
    pub(super) kube: kube::Client,
    pub(super) eci: eci::Client,
    pub(super) config: PodsConfig,
    pub(super) recorder: Recorder,
    pub(super) store: Store<Pod>,
    /// Failed creates: attempts and when to try again.
    pub(super) backoff: Backoff,
    /// Pods already told they cannot run here.
    pub(super) rejected: Mutex<HashSet<String>>,
    /// Creates in flight and groups starting.
    pub(super) starts: Starts,
    /// In-place updates ECI refused (not sent again).
    pub(super) refused_updates: super::update::Refused,
    /// ECI's events already written on each pod.
    pub(super) cloud_events: CloudEvents,
    /// Annotations decided at each pod's create, not yet written.
    pub(super) owed: super::writes::Owed,
    pub(super) health: tokio::sync::watch::Sender<bool>,
    /// Create requests sent whose answer did not come or said to retry, resent unchanged.
    pub(super) unanswered: super::create::Unanswered,
    /// Room for the creates passes hand off ([`PASS_CREATES`]).
    pub(super) pass_creates: std::sync::Arc<tokio::sync::Semaphore>,
    /// The tasks this controller spawned (creates handed off by passes), aborted with it: a
    /// node that stops leading must stop writing at once (see `crate::election`).
    pub(super) spawned: Mutex<tokio::task::JoinSet<()>>,
    /// Each namespace's Services (as link variables), shared by the pods created together
    /// (`super::sources`).
    pub(super) service_links: Expiring<String, Vec<super::env::ServiceLink>>,
    /// Each namespace's `kube-root-ca.crt` data (`None`: it does not exist), likewise.
    pub(super) root_ca: Expiring<String, Option<std::collections::BTreeMap<String, String>>>,
}

impl Context {
    /// Runs `task` beside the caller, aborted when the controller stops or is dropped.
    pub(super) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut spawned = self.spawned.lock();
        while spawned.try_join_next().is_some() {}
        spawned.spawn(task);
    }
}

/// The span of the work on one pod.
pub(super) fn pod_span(pod: &Pod) -> tracing::Span {
    info_span!(
        "pod",
        pod.namespace = %pod.namespace().unwrap_or_default(),
        pod.name = %pod.name_any(),
        pod.uid = %pod.uid().unwrap_or_default(),
    )
}
