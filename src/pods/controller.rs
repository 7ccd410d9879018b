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
//! Between passes, a pod the watch shows for the first time is created at once, and groups
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

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Secret, ServiceAccount};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    runtime::{
        WatchStreamExt,
        events::{Event, EventType, Recorder, Reporter},
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use parking_lot::Mutex;
use tokio::{sync::Notify, time::Instant};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{
    PodsError,
    env::{self, SourceKind, Sources},
    snapshot::Resolve,
    starts::Starts,
    status::{differs, pod_status},
    translate::{Placement, Unsupported, check_supported, tags, translate},
};
use crate::{
    eci::{self, ContainerGroup, DeleteContainerGroup, DescribeContainerGroups, Tag},
    imagecache,
};

/// Limit on one apiserver call.
const KUBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Limit on one ECI call, retries included.
const ECI_TIMEOUT: Duration = Duration::from_secs(90);
/// Shortest time between the starts of two passes woken by watch events.
const MIN_PASS_GAP: Duration = Duration::from_millis(500);
/// How long a burst of watch events may settle before the pass they woke.
const WAKE_SETTLE: Duration = Duration::from_millis(100);
/// Shortest time between two looks at starting groups: at most ten describes a second, well
/// inside ECI's describe quota (about 31 a second) next to the passes.
const MIN_LOOK_GAP: Duration = Duration::from_millis(100);
/// Limit on one look: a slow answer is left to the next look or pass.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Pods handled at once within a pass.
const CONCURRENCY: usize = 16;
/// Longest wait before retrying a failed create.
const MAX_CREATE_BACKOFF: Duration = Duration::from_secs(300);
/// The controller name on events.
const REPORTER: &str = "eci-virtual-kubelet";

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
}

struct Context {
    kube: kube::Client,
    eci: eci::Client,
    config: PodsConfig,
    recorder: Recorder,
    store: Store<Pod>,
    /// Failed creates: attempts and when to try again.
    backoff: Mutex<HashMap<String, (u32, Instant)>>,
    /// Pods already told they cannot run here.
    rejected: Mutex<HashSet<String>>,
    /// Creates in flight and groups starting.
    starts: Starts,
    health: tokio::sync::watch::Sender<bool>,
}

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
        backoff: Mutex::new(HashMap::new()),
        rejected: Mutex::new(HashSet::new()),
        starts: Starts::default(),
        health,
        config,
    });

    tokio::pin!(shutdown);
    let ready = tokio::select! {
        () = &mut shutdown => { watch_task.abort(); return Ok(()); }
        ready = store.wait_until_ready() => ready,
    };
    if ready.is_err() {
        watch_task.abort();
        return Err(PodsError::InitialListFailed {
            node: ctx.config.node_name.clone(),
        });
    }
    info!(node.name = %ctx.config.node_name, pods = store.state().len(), "pod cache synced; adopting and collecting");
    // New pods are created as the watch shows them, at most CONCURRENCY at a time.
    let lane_ctx = ctx.clone();
    let create_lane = tokio::spawn(async move {
        let pods = futures::stream::poll_fn(move |cx| new_pod_rx.poll_recv(cx));
        pods.for_each_concurrent(CONCURRENCY, |pod| {
            let ctx = lane_ctx.clone();
            let span = pod_span(&pod);
            async move { create_new(&ctx, &pod).await }.instrument(span)
        })
        .await;
    });
    let mut last_look = Instant::now();
    'passes: loop {
        let started = Instant::now();
        sync_pass(&ctx).await;
        ctx.config.metrics.sync_pass(started.elapsed());
        let mut due = started + ctx.config.sync_interval;
        // Until the next pass: look at starting groups whenever one is due.
        loop {
            let look_at = ctx
                .starts
                .next_look()
                .map(|at| at.max(last_look + MIN_LOOK_GAP));
            tokio::select! {
                () = &mut shutdown => break 'passes,
                () = tokio::time::sleep_until(due) => break,
                () = wake.notified() => {
                    // Let a burst of watch events settle into one pass, and keep passes (each
                    // one DescribeContainerGroups call) at least MIN_PASS_GAP apart: our own
                    // status writes come back as watch events.
                    let gap = MIN_PASS_GAP.min(ctx.config.sync_interval);
                    due = due.min((started + gap).max(Instant::now() + WAKE_SETTLE));
                }
                () = ctx.starts.changed() => {}
                () = sleep_until_some(look_at) => {
                    look(&ctx).await;
                    last_look = Instant::now();
                }
            }
        }
    }
    watch_task.abort();
    create_lane.abort();
    info!(node.name = %ctx.config.node_name, "pod controller stopped; container groups keep running");
    Ok(())
}

/// Sleeps until `at`, or forever if there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn pod_span(pod: &Pod) -> tracing::Span {
    info_span!(
        "pod",
        pod.namespace = %pod.namespace().unwrap_or_default(),
        pod.name = %pod.name_any(),
        pod.uid = %pod.uid().unwrap_or_default(),
    )
}

/// Whether the watch shows a pod that has never had a group: not being deleted, and no status
/// of ours yet. Anything else is the pass's.
fn wants_group(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none()
        && matches!(phase, None | Some("Pending"))
        && !had_group(pod)
}

/// Creates the group of a pod the watch has just shown, without waiting for a pass. A pod that
/// cannot run here is left to the pass, which says why.
async fn create_new(ctx: &Context, pod: &Pod) {
    let Some(uid) = pod.uid() else {
        return;
    };
    if check_supported(pod).is_err() || ctx.rejected.lock().contains(&uid) {
        return;
    }
    if let Some(_creating) = ctx.starts.begin_create(&uid) {
        create(ctx, pod, &uid).await;
    }
}

/// One look at the starting groups that are due: a describe by id, and the status of each pod
/// whose group has left its start. A failed look is only logged; the passes go on regardless.
async fn look(ctx: &Context) {
    let due = ctx.starts.take_due(Instant::now());
    if due.is_empty() {
        return;
    }
    let request = DescribeContainerGroups {
        container_group_ids: due.iter().map(|d| d.group_id.clone()).collect(),
        ..DescribeContainerGroups::default()
    };
    let groups =
        match tokio::time::timeout(LOOK_TIMEOUT, ctx.eci.describe_container_groups(&request)).await
        {
            Ok(Ok(page)) => page.container_groups,
            Ok(Err(error)) => {
                debug!(
                    error = &error as &dyn std::error::Error,
                    "look at starting groups failed"
                );
                return;
            }
            Err(_) => {
                debug!(timeout = ?LOOK_TIMEOUT, "look at starting groups timed out");
                return;
            }
        };
    for group in groups {
        if is_starting(&group) {
            continue;
        }
        let Some(due) = due.iter().find(|d| d.group_id == group.container_group_id) else {
            continue;
        };
        ctx.starts.settled(&due.uid);
        let Some(pod) = ctx.store.get(&due.pod) else {
            continue;
        };
        if pod.uid().as_deref() != Some(due.uid.as_str())
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        sync_status(ctx, &pod, &due.uid, &group)
            .instrument(pod_span(&pod))
            .await;
    }
}

/// Whether a group is still on its way to running.
fn is_starting(group: &ContainerGroup) -> bool {
    matches!(
        group.status,
        eci::ContainerGroupStatus::Scheduling | eci::ContainerGroupStatus::Pending
    )
}

/// One pass over every group and pod of the node.
async fn sync_pass(ctx: &Arc<Context>) {
    let placement = &ctx.config.placement;
    let request = DescribeContainerGroups {
        tags: vec![
            Tag::new(tags::CLUSTER, &placement.cluster),
            Tag::new(tags::NODE, &placement.node),
        ],
        limit: Some(100),
        ..DescribeContainerGroups::default()
    };
    let groups =
        match tokio::time::timeout(ECI_TIMEOUT, ctx.eci.describe_all_container_groups(&request))
            .await
        {
            Ok(Ok(groups)) => {
                ctx.health
                    .send_if_modified(|ok| !std::mem::replace(ok, true));
                groups
            }
            Ok(Err(error)) => {
                ctx.health
                    .send_if_modified(|ok| std::mem::replace(ok, false));
                warn!(
                    error = &error as &dyn std::error::Error,
                    "DescribeContainerGroups failed; pass skipped"
                );
                return;
            }
            Err(_) => {
                ctx.health
                    .send_if_modified(|ok| std::mem::replace(ok, false));
                warn!(timeout = ?ECI_TIMEOUT, "DescribeContainerGroups timed out; pass skipped");
                return;
            }
        };
    // Only groups whose tags say they are ours, whatever the filter returned.
    let mut by_uid: HashMap<String, ContainerGroup> = HashMap::new();
    for group in groups {
        let tag = |key: &str| {
            group
                .tags
                .iter()
                .find(|t| t.key == key)
                .map(|t| t.value.clone())
        };
        if tag(tags::NODE).as_deref() != Some(placement.node.as_str())
            || tag(tags::CLUSTER).as_deref() != Some(placement.cluster.as_str())
        {
            continue;
        }
        if let Some(uid) = tag(tags::UID) {
            by_uid.insert(uid, group);
        }
    }
    let pods = ctx.store.state();
    let mut phases = std::collections::BTreeMap::new();
    for pod in &pods {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".to_owned());
        *phases.entry(phase).or_insert(0) += 1;
    }
    ctx.config.metrics.pods_by_phase(&phases);
    let live: HashSet<String> = pods.iter().filter_map(|p| p.uid()).collect();

    futures::stream::iter(pods)
        .for_each_concurrent(CONCURRENCY, |pod| {
            let group = pod.uid().and_then(|uid| by_uid.get(&uid).cloned());
            let span = pod_span(&pod);
            async move { reconcile(ctx, &pod, group.as_ref()).await }.instrument(span)
        })
        .await;

    // Orphans: our groups whose pod is gone (the store has completed its list).
    for (uid, group) in &by_uid {
        if live.contains(uid) || group.status == eci::ContainerGroupStatus::Terminating {
            continue;
        }
        let span = info_span!("orphan", pod.uid = %uid, group.id = %group.container_group_id);
        async {
            match delete_group(ctx, &group.container_group_id).await {
                Ok(()) => info!("deleted container group of a pod that no longer exists"),
                Err(error) => warn!(error = %error, "orphan container group not deleted"),
            }
        }
        .instrument(span)
        .await;
    }
    let mut backoff = ctx.backoff.lock();
    backoff.retain(|uid, _| live.contains(uid));
    drop(backoff);
    ctx.rejected.lock().retain(|uid| live.contains(uid));
    ctx.starts.retain_live(&live);
}

/// Brings one pod and its group (if any) together.
async fn reconcile(ctx: &Context, pod: &Pod, group: Option<&ContainerGroup>) {
    let Some(uid) = pod.uid() else {
        return;
    };
    if let Some(deleting) = &pod.metadata.deletion_timestamp {
        match group {
            // Ask ECI to stop the group (it runs preStop hooks within the pod's grace period);
            // the pod goes once the group is gone.
            Some(group) if !matches!(group.status, eci::ContainerGroupStatus::Terminating) => {
                if let Err(error) = delete_group(ctx, &group.container_group_id).await {
                    warn!(error = %error, "container group not deleted; retrying next pass");
                }
            }
            // Still stopping: wait, but never past the pod's deadline (a pod stuck Terminating
            // is a known virtual-kubelet complaint).
            Some(_) if jiff::Timestamp::now() < deleting.0 => {}
            _ => delete_pod(ctx, pod, &uid).await,
        }
        return;
    }
    if let Err(unsupported) = check_supported(pod) {
        reject(ctx, pod, &uid, &unsupported).await;
        return;
    }
    match group {
        Some(group) => {
            if !is_starting(group) {
                ctx.starts.settled(&uid);
            }
            sync_status(ctx, pod, &uid, group).await;
        }
        None => {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                return;
            }
            if had_group(pod) {
                info!(
                    "container group is gone from the cloud; deleting the pod so its controller replaces it"
                );
                publish(
                    ctx,
                    pod,
                    EventType::Warning,
                    "ProviderGroupGone",
                    "the ECI container group was deleted outside Kubernetes",
                )
                .await;
                delete_pod(ctx, pod, &uid).await;
                return;
            }
            // A create in flight, or one newer than this pass's describe, is not repeated.
            if let Some(_creating) = ctx.starts.begin_create(&uid) {
                create(ctx, pod, &uid).await;
            }
        }
    }
}

/// Writes the pod's status from its group, when it changed; a new failure reason is also a
/// Warning event.
async fn sync_status(ctx: &Context, pod: &Pod, uid: &str, group: &ContainerGroup) {
    let status = pod_status(pod, group, &ctx.config.host_ip, jiff::Timestamp::now());
    if differs(pod.status.as_ref(), &status) {
        let was_failed = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed");
        if !was_failed && status.reason.is_some() {
            let note = status.message.clone().unwrap_or_default();
            let reason = status.reason.as_deref().unwrap_or_default();
            publish(ctx, pod, EventType::Warning, reason, &note).await;
        }
        write_status(ctx, pod, uid, &status).await;
    }
}

/// Whether a status we wrote names a container group.
fn had_group(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.container_id
                .as_deref()
                .is_some_and(|id| id.starts_with("eci://"))
        })
}

async fn create(ctx: &Context, pod: &Pod, uid: &str) {
    if let Some((_, next)) = ctx.backoff.lock().get(uid)
        && Instant::now() < *next
    {
        return;
    }
    // The cache first: it is decided from memory, and a pod that must fail for it fails
    // before anything is read for it.
    let snapshot =
        match super::snapshot::resolve(&ctx.config.image_caches, pod, jiff::Timestamp::now()) {
            Ok(snapshot) => snapshot,
            // The index is still loading: the next pass (within sync_interval) asks again,
            // without the growing backoff of a failed create.
            Err(Resolve::Wait) => {
                debug!("waiting for the image cache index before creating");
                return;
            }
            Err(Resolve::Fail(error)) => {
                fail_for_snapshot(ctx, pod, uid, &error).await;
                return;
            }
        };
    let Some(sources) = fetch_sources(ctx, pod).await else {
        schedule_retry(ctx, uid);
        return;
    };
    // The pull secrets are read before the request is built, so the request comes out whole;
    // their warnings are published where they were before: only for a pod about to be created.
    let (logins, warnings) = super::pull_secrets::credentials(&ctx.kube, pod).await;
    let translated = match translate(pod, &ctx.config.placement, &sources, &snapshot, logins) {
        Ok(translated) => translated,
        Err(unsupported) => {
            reject(ctx, pod, uid, &unsupported).await;
            return;
        }
    };
    for gap in &translated.missing {
        publish(
            ctx,
            pod,
            EventType::Warning,
            gap.kind.missing_reason(gap.optional),
            &gap.note(),
        )
        .await;
    }
    if translated.blocked() {
        ctx.config.metrics.pod_create("blocked");
        info!("a mandatory ConfigMap or Secret is missing; the group is not created yet");
        schedule_retry(ctx, uid);
        return;
    }
    for warning in &warnings {
        publish(
            ctx,
            pod,
            EventType::Warning,
            "FailedToRetrieveImagePullSecret",
            warning,
        )
        .await;
    }
    let request = translated.request;
    let answer = tokio::time::timeout(ECI_TIMEOUT, ctx.eci.create_container_group(&request)).await;
    match answer {
        Ok(Ok(created)) => {
            ctx.config.metrics.pod_create("created");
            ctx.backoff.lock().remove(uid);
            ctx.starts.created(
                uid,
                &created.container_group_id,
                ObjectRef::from_obj(pod),
                Instant::now(),
            );
            info!(group.id = %created.container_group_id, "container group created");
            publish(
                ctx,
                pod,
                EventType::Normal,
                "ProviderCreateSuccess",
                &format!("created ECI container group {}", created.container_group_id),
            )
            .await;
            report_snapshot(ctx, pod, uid, &snapshot).await;
        }
        Ok(Err(error)) => {
            ctx.config.metrics.pod_create("failed");
            let retryable = error.is_retryable();
            let note = format!("CreateContainerGroup failed: {error}");
            warn!(
                error = &error as &dyn std::error::Error,
                retryable, "container group not created"
            );
            publish(ctx, pod, EventType::Warning, "ProviderFailed", &note).await;
            if retryable {
                schedule_retry(ctx, uid);
            } else {
                let status = PodStatus {
                    phase: Some("Failed".into()),
                    reason: Some("ProviderFailed".into()),
                    message: Some(note),
                    ..PodStatus::default()
                };
                write_status(ctx, pod, uid, &status).await;
            }
        }
        Err(_) => {
            warn!(timeout = ?ECI_TIMEOUT, "CreateContainerGroup timed out; retrying (the ClientToken makes it safe)");
            schedule_retry(ctx, uid);
        }
    }
}

/// Reads the ConfigMaps and Secrets the pod's env refers to. `None` if one could not be read
/// (other than not existing): the create is retried later.
async fn fetch_sources(ctx: &Context, pod: &Pod) -> Option<Sources> {
    let namespace = pod.namespace()?;
    let mut sources = Sources::default();
    for (kind, name) in env::references(pod) {
        let data = match kind {
            SourceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(ctx.kube.clone(), &namespace);
                get_opt(&api, &name)
                    .await?
                    .map(|cm| cm.data.unwrap_or_default())
            }
            SourceKind::Secret => {
                let api: Api<Secret> = Api::namespaced(ctx.kube.clone(), &namespace);
                get_opt(&api, &name).await?.map(|secret| {
                    secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                })
            }
        };
        sources.objects.insert((kind, name), data);
    }
    request_tokens(ctx, pod, &namespace, &mut sources).await?;
    Some(sources)
}

/// Requests a token, bound to the pod, for every projected `serviceAccountToken` source.
/// Tokens go only into the create request, never a log or event.
async fn request_tokens(
    ctx: &Context,
    pod: &Pod,
    namespace: &str,
    sources: &mut Sources,
) -> Option<()> {
    use k8s_openapi::api::authentication::v1::{
        BoundObjectReference, TokenRequest, TokenRequestSpec,
    };
    let spec = pod.spec.as_ref()?;
    let account = spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let api: Api<ServiceAccount> = Api::namespaced(ctx.kube.clone(), namespace);
    for volume in spec.volumes.iter().flatten() {
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            let Some(token) = &source.service_account_token else {
                continue;
            };
            let request = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: token.audience.clone().map(|a| vec![a]),
                    expiration_seconds: token.expiration_seconds.or(Some(3607)),
                    bound_object_ref: Some(BoundObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        name: pod.metadata.name.clone(),
                        uid: pod.metadata.uid.clone(),
                    }),
                    ..TokenRequestSpec::default()
                }),
                ..TokenRequest::default()
            };
            let answer = tokio::time::timeout(
                KUBE_TIMEOUT,
                api.create_token_request(&account, &Default::default(), &request),
            )
            .await;
            match answer {
                Ok(Ok(issued)) => {
                    let value = issued.status.and_then(|s| s.token).unwrap_or_default();
                    sources
                        .tokens
                        .insert((volume.name.clone(), token.path.clone()), value);
                }
                Ok(Err(error)) => {
                    warn!(service_account = %account, error = &error as &dyn std::error::Error, "service-account token not issued; retrying");
                    return None;
                }
                Err(_) => {
                    warn!(service_account = %account, "service-account token request timed out; retrying");
                    return None;
                }
            }
        }
    }
    Some(())
}

/// GET with a timeout: `Some(None)` if it does not exist, `None` if it could not be read.
async fn get_opt<K>(api: &Api<K>, name: &str) -> Option<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match tokio::time::timeout(KUBE_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(found)) => Some(found),
        Ok(Err(error)) => {
            warn!(object.name = %name, error = &error as &dyn std::error::Error, "referenced object not read; retrying");
            None
        }
        Err(_) => {
            warn!(object.name = %name, timeout = ?KUBE_TIMEOUT, "referenced object read timed out; retrying");
            None
        }
    }
}

fn schedule_retry(ctx: &Context, uid: &str) {
    let mut backoff = ctx.backoff.lock();
    let entry = backoff.entry(uid.to_owned()).or_insert((0, Instant::now()));
    entry.0 = entry.0.saturating_add(1);
    let wait = Duration::from_secs(1u64 << entry.0.min(9)).min(MAX_CREATE_BACKOFF);
    entry.1 = Instant::now() + wait;
}

/// The pod asked for an image cache it cannot have: it fails with the reason as its status
/// reason and a Warning event (once), and the node carries on with other pods.
async fn fail_for_snapshot(ctx: &Context, pod: &Pod, uid: &str, error: &imagecache::SnapshotError) {
    if !ctx.rejected.lock().insert(uid.to_owned()) {
        return;
    }
    let message = super::snapshot::message(error);
    info!(reason = error.reason(), %message, "pod cannot start from the image cache it names");
    ctx.config.metrics.pod_create("image-cache-refused");
    publish(ctx, pod, EventType::Warning, error.reason(), &message).await;
    let status = PodStatus {
        phase: Some("Failed".into()),
        reason: Some(error.reason().into()),
        message: Some(message),
        ..PodStatus::default()
    };
    write_status(ctx, pod, uid, &status).await;
}

/// After the group was created: a hit is recorded on the pod (annotation
/// `k8s.aliyun.com/eci-matched-image-cache` and a `SuccessfulHitImageCache` event), a miss is an
/// `ImageCacheMissed` event.
async fn report_snapshot(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    snapshot: &imagecache::SnapshotDecision,
) {
    if let imagecache::SnapshotDecision::Use {
        id,
        name,
        automatic,
    } = snapshot
    {
        info!(imagecache.id = %id, imagecache.name = %name, automatic, "pod starts from an image cache");
        annotate(
            ctx,
            pod,
            uid,
            imagecache::ANNOTATION_MATCHED_IMAGE_CACHE,
            id,
        )
        .await;
    }
    if let Some((reason, note)) = snapshot.event() {
        let kind = if reason == imagecache::REASON_HIT {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(ctx, pod, kind, reason, &note).await;
    }
}

/// Sets one annotation on the pod (a merge patch with the UID as precondition).
async fn annotate(ctx: &Context, pod: &Pod, uid: &str, key: &str, value: &str) {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    let patch = serde_json::json!({ "metadata": { "uid": uid, "annotations": { key: value } } });
    let answer = tokio::time::timeout(
        KUBE_TIMEOUT,
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await;
    match answer {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => warn!(
            annotation = key,
            error = &error as &dyn std::error::Error,
            "pod annotation not written"
        ),
        Err(_) => {
            warn!(annotation = key, timeout = ?KUBE_TIMEOUT, "pod annotation write timed out")
        }
    }
}

async fn reject(ctx: &Context, pod: &Pod, uid: &str, why: &Unsupported) {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Failed") || !ctx.rejected.lock().insert(uid.to_owned()) {
        return;
    }
    info!(reason = why.reason(), "pod cannot run on this node");
    ctx.config.metrics.pod_create("rejected");
    publish(ctx, pod, EventType::Warning, why.reason(), &why.to_string()).await;
    let status = PodStatus {
        phase: Some("Failed".into()),
        reason: Some(why.reason().into()),
        message: Some(why.to_string()),
        ..PodStatus::default()
    };
    write_status(ctx, pod, uid, &status).await;
}

async fn write_status(ctx: &Context, pod: &Pod, uid: &str, status: &PodStatus) {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    // metadata.uid in the patch is a precondition: a new pod with the same name is not touched.
    let patch = serde_json::json!({ "metadata": { "uid": uid }, "status": status });
    let answer = tokio::time::timeout(
        KUBE_TIMEOUT,
        api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch)),
    )
    .await;
    match answer {
        Ok(Ok(_)) => debug!(phase = ?status.phase, "pod status written"),
        // Deleted since the store showed it: nothing left to report on.
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => {
            debug!("pod gone before its status was written");
        }
        Ok(Err(error)) => warn!(
            error = &error as &dyn std::error::Error,
            "pod status not written"
        ),
        Err(_) => warn!(timeout = ?KUBE_TIMEOUT, "pod status write timed out"),
    }
}

async fn delete_pod(ctx: &Context, pod: &Pod, uid: &str) {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match tokio::time::timeout(KUBE_TIMEOUT, api.delete(name, &params)).await {
        Ok(Ok(_)) => info!("pod removed"),
        Ok(Err(kube::Error::Api(status))) if status.code == 404 || status.code == 409 => {
            debug!("pod already gone");
        }
        Ok(Err(error)) => warn!(error = &error as &dyn std::error::Error, "pod not removed"),
        Err(_) => warn!(timeout = ?KUBE_TIMEOUT, "pod delete timed out"),
    }
}

async fn delete_group(ctx: &Context, id: &str) -> Result<(), eci::Error> {
    let request = DeleteContainerGroup {
        container_group_id: id.to_owned(),
        ..DeleteContainerGroup::default()
    };
    match tokio::time::timeout(ECI_TIMEOUT, ctx.eci.delete_container_group(&request)).await {
        Ok(Ok(_)) => {
            info!(group.id = %id, "container group deleted");
            Ok(())
        }
        Ok(Err(error)) if is_not_found(&error) => Ok(()),
        Ok(Err(error)) => Err(error),
        Err(_) => {
            warn!(group.id = %id, timeout = ?ECI_TIMEOUT, "DeleteContainerGroup timed out");
            Ok(())
        }
    }
}

fn is_not_found(error: &eci::Error) -> bool {
    error
        .code()
        .is_some_and(|code| code.contains("NotFound") || code.contains("NotExist"))
}

async fn publish(ctx: &Context, pod: &Pod, kind: EventType, reason: &str, note: &str) {
    let event = Event {
        type_: kind,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Sync".to_owned(),
        secondary: None,
    };
    let reference = pod.object_ref(&());
    match tokio::time::timeout(KUBE_TIMEOUT, ctx.recorder.publish(&event, &reference)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(
            error = &error as &dyn std::error::Error,
            "event not published"
        ),
        Err(_) => debug!("event publish timed out"),
    }
}
