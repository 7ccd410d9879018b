//! The pod loop of one node.
//!
//! Expected flow: a reflector keeps every Pod with `spec.nodeName=<node>` in a store (one
//! watch, no repeated lists). After the store's first list, a pass runs every
//! `sync_interval` and whenever the watch sees a change. A pass makes **one** batched
//! `DescribeContainerGroups` call (paged) filtered by the node's cluster and node tags, then
//! for each pod:
//!
//! - being deleted → `DeleteContainerGroup`; once the group is gone (or the pod's grace
//!   period is over) delete the pod with grace 0 and a UID precondition;
//! - not hostable (DaemonSet, hostNetwork, hostPath) → status Failed with an explicit reason
//!   and a Warning event, once;
//! - with a group → write the group's status through the status subresource when it changed;
//! - without a group, never created → `CreateContainerGroup` with `ClientToken` = pod UID
//!   (a repeat answers the same group, so restarts never duplicate); event
//!   `ProviderCreateSuccess` or `ProviderFailed`;
//! - without a group although its status names one (deleted on the cloud side) → delete the
//!   pod so its controller makes a new one.
//!
//! Beside the passes, a pod the watch shows for the first time is created at once, and groups
//! just created are described by id until they run ([`super::starts`]), so a start is seen
//! within a fraction of a second rather than at the next pass.
//!
//! Groups tagged with this node whose pod is not in the store are deleted — only after the
//! store's first list, and never groups of another node or cluster (the filter and a second
//! check of the tags).
//!
//! Guarantees: level-triggered; any pass may stop at any `.await` and the next one finishes
//! the work. Caveat: a failed `DescribeContainerGroups` skips the whole pass (nothing is
//! created or deleted on stale knowledge) and flips the cloud-health signal the node reports.
//!
//! Where each job lives:
//!
//! - this file: the watch and its reflector, the create lane for new pods, the schedule of
//!   passes and looks, and the lane that writes the ECI events the looks saw;
//! - `pass.rs`: one pass — the batched describe, what to do for each pod, orphans;
//! - `look.rs`: the describe by id of groups just created, and the events lane;
//! - `create.rs`: one create — image cache, sources, request, `CreateContainerGroup`,
//!   and the backoff of failed creates;
//! - `sources.rs`: reading ConfigMaps, Secrets and service-account tokens;
//! - `writes.rs`: status writes, annotations, pod removal and events;
//! - `groups.rs`: describing this node's groups ([`super::describe_node_groups`]),
//!   which are ours by their tags, and deleting one;
//! - `context.rs`: the settings and the state they all share.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api,
    runtime::{
        WatchStreamExt,
        events::{Recorder, Reporter},
        reflector, watcher,
    },
};
use parking_lot::Mutex;
use tokio::{sync::Notify, time::Instant};
use tracing::{Instrument, info, info_span, warn};

use super::{
    PodsError, cloud_events,
    context::{CREATE_LANE, Context, PASS_CREATES, PodsConfig, pod_span},
    create::{Backoff, create_new},
    look::{self, LOOKS_QUEUED, look},
    pass::{had_group, sync_pass},
    pass_pace::PassPace,
    starts::Starts,
};
use crate::{
    eci::{self, Action as _, DescribeContainerGroups},
    expiring::Expiring,
};

/// Shortest time between the starts of two passes woken by watch events.
const MIN_PASS_GAP: Duration = Duration::from_millis(500);
/// How long a burst of watch events may settle before the pass they woke.
const WAKE_SETTLE: Duration = Duration::from_millis(100);
/// Shortest time between two looks at starting groups: at most ten describes a second, well
/// inside ECI's describe quota (about 31 a second) next to the passes.
const MIN_LOOK_GAP: Duration = Duration::from_millis(100);
/// The controller name on events.
const REPORTER: &str = "eci-virtual-kubelet";
/// Namespaces whose shared reads are kept at once (`super::sources`).
const SHARED_READS_KEPT: usize = 256;

/// Runs the pod controller until `shutdown` resolves. `health` receives whether the last
/// batched describe succeeded.
///
/// # Errors
/// [`PodsError::InitialListFailed`] if the pod watch ends before its first list.
pub async fn run(
    kube: kube::Client,
    eci: eci::Client,
    config: PodsConfig,
    health: tokio::sync::watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), PodsError> {
    let api: Api<Pod> = Api::all(kube.clone());
    let (store, writer) = reflector::store();
    let wake = Arc::new(Notify::new());
    // Pods seen for the first time, for an immediate create.
    let (new_pods, mut new_pod_rx) = tokio::sync::mpsc::unbounded_channel::<Pod>();
    let selector = format!("spec.nodeName={}", config.node_name);
    let stream = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .modify(slim)
        .reflect(writer);
    let watch_wake = wake.clone();
    let node = config.node_name.clone();
    let watch_task = tokio::spawn(
        async move {
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod)) => {
                        if wants_group(&pod) {
                            let _ = new_pods.send(pod);
                        }
                        watch_wake.notify_one();
                    }
                    Ok(_) => watch_wake.notify_one(),
                    Err(error) => {
                        warn!(
                            error = &error as &dyn std::error::Error,
                            "pod watch failed; retrying with backoff"
                        );
                    }
                }
            }
        }
        .instrument(info_span!("pod_watch", node.name = %node)),
    );

    let ctx = Arc::new(Context {
        recorder: Recorder::new(
            kube.clone(),
            Reporter {
                controller: REPORTER.to_owned(),
                instance: Some(config.node_name.clone()),
            },
        ),
        kube,
        eci,
        store: store.clone(),
        backoff: Backoff::default(),
        rejected: Mutex::new(HashSet::new()),
        starts: Starts::default(),
        refused_updates: Default::default(),
        cloud_events: Default::default(),
        owed: Default::default(),
        health,
        unanswered: Default::default(),
        pass_creates: Arc::new(tokio::sync::Semaphore::new(PASS_CREATES)),
        spawned: Mutex::new(tokio::task::JoinSet::new()),
        service_links: Expiring::new(SHARED_READS_KEPT),
        root_ca: Expiring::new(SHARED_READS_KEPT),
        config,
    });
    // Everything spawned below stops with this function, also when it is dropped.
    let mut tasks = AbortOnDrop {
        ctx: ctx.clone(),
        handles: vec![watch_task.abort_handle()],
    };

    tokio::pin!(shutdown);
    let ready = tokio::select! {
        () = &mut shutdown => return Ok(()),
        ready = store.wait_until_ready() => ready,
    };
    if ready.is_err() {
        return Err(PodsError::InitialListFailed {
            node: ctx.config.node_name.clone(),
        });
    }
    info!(node.name = %ctx.config.node_name, pods = store.state().len(), "pod cache synced; adopting and collecting");
    // What an earlier process wrote of ECI's events is not written again.
    let live: HashSet<String> = store
        .state()
        .iter()
        .filter_map(|pod| pod.metadata.uid.clone())
        .collect();
    cloud_events::seed(&ctx, &live).await;
    // New pods are created as the watch shows them, at most CREATE_LANE at a time.
    let lane_ctx = ctx.clone();
    let create_lane = tokio::spawn(async move {
        let pods = futures::stream::poll_fn(move |cx| new_pod_rx.poll_recv(cx));
        pods.for_each_concurrent(CREATE_LANE, |pod| {
            let ctx = lane_ctx.clone();
            let span = pod_span(&pod);
            async move { create_new(&ctx, &pod).await }.instrument(span)
        })
        .await;
    });
    tasks.handles.push(create_lane.abort_handle());
    // Pods that waited for the image cache index are created as soon as it is complete.
    let index = ctx.config.image_caches.clone();
    let index_wake = wake.clone();
    let index_loaded = tokio::spawn(async move {
        index.wait_synced().await;
        index_wake.notify_one();
    });
    tasks.handles.push(index_loaded.abort_handle());
    // ECI's events of what the looks saw are written beside them, not in them.
    let (seen_tx, seen_rx) = tokio::sync::mpsc::channel(LOOKS_QUEUED);
    let events_ctx = ctx.clone();
    let events_lane = tokio::spawn(async move { look::events_lane(&events_ctx, seen_rx).await });
    tasks.handles.push(events_lane.abort_handle());
    // Looks at starting groups run beside the passes, not between them: a pass over many pods
    // takes seconds, and a start must not wait for it to end.
    let look_ctx = ctx.clone();
    let look_lane = tokio::spawn(async move {
        let mut last_look = Instant::now();
        loop {
            let look_at = look_ctx
                .starts
                .next_look()
                .map(|at| at.max(last_look + MIN_LOOK_GAP));
            tokio::select! {
                () = look_ctx.starts.changed() => {}
                () = sleep_until_some(look_at) => {
                    look(&look_ctx, &seen_tx).await;
                    last_look = Instant::now();
                }
            }
        }
    });
    tasks.handles.push(look_lane.abort_handle());
    let mut pace = PassPace::new(ctx.eci.sustained_rate(DescribeContainerGroups::NAME));
    'passes: loop {
        let started = Instant::now();
        sync_pass(&ctx, &mut pace).await;
        ctx.config.metrics.sync_pass(started.elapsed());
        // A large node's passes are spaced so that they leave the looks half the read quota.
        let spacing = pace.spacing();
        let mut due = started + ctx.config.sync_interval.max(spacing);
        loop {
            tokio::select! {
                () = &mut shutdown => break 'passes,
                () = tokio::time::sleep_until(due) => break,
                () = wake.notified() => {
                    // Let a burst of watch events settle into one pass, and keep passes (each
                    // one DescribeContainerGroups call) at least MIN_PASS_GAP apart: our own
                    // status writes come back as watch events.
                    let gap = MIN_PASS_GAP.min(ctx.config.sync_interval).max(spacing);
                    due = due.min((started + gap).max(Instant::now() + WAKE_SETTLE));
                }
            }
        }
    }
    drop(tasks);
    info!(node.name = %ctx.config.node_name, "pod controller stopped; container groups keep running");
    Ok(())
}

/// Aborts the controller's tasks when dropped: the lanes and the creates passes handed off.
struct AbortOnDrop {
    ctx: Arc<Context>,
    handles: Vec<tokio::task::AbortHandle>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
        self.ctx.spawned.lock().abort_all();
    }
}

/// Sleeps until `at`, or forever if there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Drops what the node never reads from a pod before the store keeps it: `managedFields`, the
/// server-side-apply bookkeeping of every writer (the node peaked at 803 MiB with 10,000 pods
/// keeping them; issue #21).
fn slim(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
}

/// Whether the watch shows a pod that has never had a group: not being deleted, and no status
/// of ours yet. Anything else is the pass's.
fn wants_group(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none()
        && matches!(phase, None | Some("Pending"))
        && !had_group(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_no_managed_fields_and_everything_else() {
        let mut kept = pod(
            "metadata:\n  name: p\n  uid: u1\n  annotations: {a: b}\n  managedFields:\n  - manager: kube-controller-manager\n    operation: Update\n    fieldsType: FieldsV1\n    fieldsV1: {f:metadata: {}}\nspec:\n  nodeName: vk\n  containers: [{name: c, image: i}]\n",
        );
        let before = kept.clone();
        slim(&mut kept);
        assert_eq!(kept.metadata.managed_fields, None);
        kept.metadata
            .managed_fields
            .clone_from(&before.metadata.managed_fields);
        assert_eq!(kept, before, "only managedFields is dropped");
    }

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("fixture pod")
    }

    #[test]
    fn the_watch_creates_only_pods_that_never_had_a_group() {
        let spec = "spec: {containers: [{name: c, image: i}]}";
        let new = pod(&format!("metadata: {{name: a, uid: u}}\n{spec}"));
        assert!(wants_group(&new));
        let pending = pod(&format!(
            "metadata: {{name: a, uid: u}}\n{spec}\nstatus: {{phase: Pending}}"
        ));
        assert!(wants_group(&pending));
        let deleting = pod(&format!(
            "metadata: {{name: a, uid: u, deletionTimestamp: '2026-01-01T00:00:00Z'}}\n{spec}"
        ));
        assert!(!wants_group(&deleting));
        let running = pod(&format!(
            "metadata: {{name: a, uid: u}}\n{spec}\nstatus: {{phase: Running}}"
        ));
        assert!(!wants_group(&running));
        let ours = pod(&format!(
            "metadata: {{name: a, uid: u}}\n{spec}\nstatus: {{phase: Pending, containerStatuses: [{{name: c, image: i, imageID: '', ready: false, restartCount: 0, containerID: 'eci://eci-1/c'}}]}}"
        ));
        assert!(
            !wants_group(&ours),
            "a pod whose group is known is the pass's"
        );
    }
}
