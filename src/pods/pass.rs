//! One sync pass over every group and pod of the node: **one** batched describe of the node's
//! groups ([`super::groups::describe_node_groups`]), then for each pod what [`decide`] says,
//! then the orphans — groups tagged with this node whose pod is not in the store.

use std::{collections::HashSet, sync::Arc};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::{ResourceExt, runtime::events::EventType};
use tracing::{Instrument, info, info_span, warn};

use super::{
    cloud_events::record,
    context::{CONCURRENCY, Context, pod_span},
    create::create,
    deadline::{
        PENDING_REASON, enforce as enforce_deadline, enforce_pending, past_deadline,
        pending_too_long,
    },
    groups::{delete_group, describe_node_groups, is_starting, ours_by_uid},
    pass_pace::PassPace,
    status::SCHEDULE_FAILED,
    translate::{Unsupported, check_supported},
    update::{ImageUpdate, image_update, update},
    writes::{delete_pod, publish, reject, sync_status},
};
use crate::eci::{self, ContainerGroup};

/// One pass over every group and pod of the node, its describe bounded by `pace`, which learns
/// the size of the describe.
pub(super) async fn sync_pass(ctx: &Arc<Context>, pace: &mut PassPace) {
    let placement = &ctx.config.placement;
    // What the describe shows dates from when it was sent: a group created after that is
    // missing from it, and must not be created again.
    let described_at = tokio::time::Instant::now();
    let timeout = pace.describe_timeout();
    let described = tokio::time::timeout(
        timeout,
        describe_node_groups(&ctx.eci, &placement.cluster, &placement.node),
    )
    .await;
    let groups = match described {
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
            warn!(?timeout, "DescribeContainerGroups timed out; pass skipped");
            return;
        }
    };
    pace.described(groups.len());
    // Only groups whose tags say they are ours, whatever the filter returned.
    let by_uid = ours_by_uid(groups, placement);
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
            async move { reconcile(ctx, &pod, group.as_ref(), described_at).await }.instrument(span)
        })
        .await;

    // Orphans: our groups whose pod is gone (the store has completed its list).
    for (uid, group) in &by_uid {
        if live.contains(uid) || group.status == eci::ContainerGroupStatus::Terminating {
            continue;
        }
        let span = info_span!("orphan", pod.uid = %uid, group.id = %group.container_group_id);
        async {
            match delete_group(&ctx.eci, &group.container_group_id).await {
                Ok(()) => info!("deleted container group of a pod that no longer exists"),
                Err(error) => warn!(error = %error, "orphan container group not deleted"),
            }
        }
        .instrument(span)
        .await;
    }
    // What is forgotten is decided from the store as it is now: a pod that arrived during the
    // pass (and may have had its group created meanwhile) is not in `live`, and forgetting it
    // would let its group be created a second time.
    let live: HashSet<String> = ctx.store.state().iter().filter_map(|p| p.uid()).collect();
    ctx.backoff.retain(&live);
    ctx.unanswered.retain(&live);
    ctx.rejected.lock().retain(|uid| live.contains(uid));
    ctx.starts.retain_live(&live);
    ctx.refused_updates.retain(&live);
    ctx.cloud_events.retain_live(&live);
    ctx.owed.retain_live(&live);
}

/// What a pass does for one pod, given its group (if the describe showed one).
#[derive(Debug, PartialEq)]
enum Step<'a> {
    /// Being deleted, its group still running: ask ECI to stop the group (it runs preStop
    /// hooks within the pod's grace period).
    StopGroup(&'a str),
    /// Being deleted, its group stopping and the pod's deadline not yet passed: wait.
    AwaitStop,
    /// Being deleted, and its group gone or the deadline passed: remove the pod.
    RemovePod,
    /// It cannot run on this node: fail it, with the reason.
    Reject(Unsupported),
    /// Write its status from its group; `settled` once the group has left its start.
    WriteStatus {
        /// Whether the group is no longer starting.
        settled: bool,
    },
    /// Finished (`Succeeded`/`Failed`) and without a group: nothing to do.
    Finished,
    /// Its group was deleted outside Kubernetes: remove the pod so its controller replaces it.
    GroupGone,
    /// It never had a group: create one.
    Create,
    /// Its group runs other images than the pod now names: update the group in place.
    Update(ImageUpdate),
    /// It is past its `activeDeadlineSeconds`: fail it and stop its group.
    DeadlineExceeded,
    /// Its group stayed Pending longer than `eci-max-pending-minute`: fail it, delete the group.
    PendingTimeout,
}

/// Decides what a pass does for `pod` and its `group` at `now`.
fn decide<'a>(pod: &Pod, group: Option<&'a ContainerGroup>, now: jiff::Timestamp) -> Step<'a> {
    if let Some(deleting) = &pod.metadata.deletion_timestamp {
        return match group {
            Some(group) if !matches!(group.status, eci::ContainerGroupStatus::Terminating) => {
                Step::StopGroup(&group.container_group_id)
            }
            // Still stopping: wait, but never past the pod's deadline (a pod stuck Terminating
            // is a known virtual-kubelet complaint).
            Some(_) if now < deleting.0 => Step::AwaitStop,
            _ => Step::RemovePod,
        };
    }
    if let Err(unsupported) = check_supported(pod) {
        return Step::Reject(unsupported);
    }
    if past_deadline(pod, now) {
        return Step::DeadlineExceeded;
    }
    // Once failed for it, the pod stays failed while its group goes.
    let failed_pending = pod.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some(PENDING_REASON)
    });
    if failed_pending || group.is_some_and(|g| pending_too_long(pod, g, now)) {
        return Step::PendingTimeout;
    }
    match group {
        // ECI updates only Pending and Running groups; one Updating already has a change.
        Some(group) if group.status.allows_restart_or_update() => match image_update(pod, group) {
            Some(update) => Step::Update(update),
            None => Step::WriteStatus {
                settled: !is_starting(group),
            },
        },
        Some(group) => Step::WriteStatus {
            settled: !is_starting(group),
        },
        None => {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            let reason = pod.status.as_ref().and_then(|s| s.reason.as_deref());
            // A fail-fast pod ECI refused stays as it is, for its owner to decide.
            if matches!(phase, Some("Succeeded" | "Failed")) || reason == Some(SCHEDULE_FAILED) {
                Step::Finished
            } else if had_group(pod) {
                Step::GroupGone
            } else {
                Step::Create
            }
        }
    }
}

/// Brings one pod and its group (if any) together.
async fn reconcile(
    ctx: &Arc<Context>,
    pod: &Pod,
    group: Option<&ContainerGroup>,
    described_at: tokio::time::Instant,
) {
    let Some(uid) = pod.uid() else {
        return;
    };
    if group.is_none() && ctx.starts.created_since(&uid, described_at) {
        // The group was made after this pass's describe was sent: its absence says nothing
        // (neither "create it" nor "it was deleted on the cloud side").
        return;
    }
    let step = decide(pod, group, jiff::Timestamp::now());
    // ECI's events show on the pod; a status to write goes first (see `look.rs`).
    if let Some(group) = group
        && !matches!(step, Step::WriteStatus { .. })
    {
        record(ctx, pod, &uid, group).await;
    }
    match step {
        Step::StopGroup(id) => {
            if let Err(error) = delete_group(&ctx.eci, id).await {
                warn!(error = %error, "container group not deleted; retrying next pass");
            }
        }
        Step::AwaitStop | Step::Finished => {}
        Step::RemovePod => delete_pod(ctx, pod, &uid).await,
        Step::Reject(unsupported) => reject(ctx, pod, &uid, &unsupported).await,
        Step::WriteStatus { settled } => {
            if settled
                && let Some((took, cache)) = ctx.starts.settled(&uid)
                && group.is_some_and(|g| g.status == crate::eci::ContainerGroupStatus::Running)
            {
                ctx.config.metrics.pod_started(cache, took);
            }
            if let Some(group) = group {
                sync_status(ctx, pod, &uid, group).await;
                record(ctx, pod, &uid, group).await;
            }
        }
        Step::GroupGone => {
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
        }
        Step::Update(change) => {
            if let Some(group) = group {
                update(ctx, pod, &uid, group, &change).await;
                // Its status still shows what runs until the group runs the new images.
                sync_status(ctx, pod, &uid, group).await;
            }
        }
        Step::DeadlineExceeded => enforce_deadline(ctx, pod, &uid, group).await,
        Step::PendingTimeout => {
            if let Some(group) = group {
                enforce_pending(ctx, pod, &uid, group).await;
            }
        }
        Step::Create => {
            // A create in flight, or one newer than this pass's describe, is not repeated.
            // It is handed off, not awaited: a create waits its turn in ECI's create quota,
            // and a pass (and the looks between passes) must not wait behind it, or pods
            // whose groups already run show ContainerCreating for the length of the queue.
            let Some(creating) = ctx.starts.begin_create(&uid, Some(described_at)) else {
                return;
            };
            let Ok(permit) = ctx.pass_creates.clone().try_acquire_owned() else {
                // Enough creates in flight; the next pass takes this pod up again.
                return;
            };
            let (task_ctx, pod) = (Arc::clone(ctx), pod.clone());
            ctx.spawn(
                async move {
                    let _held = (creating, permit);
                    create(&task_ctx, &pod, &uid).await;
                }
                .instrument(tracing::Span::current()),
            );
        }
    }
}

/// Whether a status we wrote names a container group.
pub(super) fn had_group(pod: &Pod) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use eci::ContainerGroupStatus as S;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("fixture pod")
    }

    fn group(status: S) -> ContainerGroup {
        ContainerGroup {
            container_group_id: "eci-1".into(),
            status,
            ..ContainerGroup::default()
        }
    }

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("a time")
    }

    const NEW: &str =
        "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i}]}";
    const DELETING_LATER: &str = "metadata: {name: a, namespace: b, uid: u, deletionTimestamp: '2026-01-01T00:00:30Z'}\nspec: {containers: [{name: c, image: i}]}";
    const DELETING_PAST: &str = "metadata: {name: a, namespace: b, uid: u, deletionTimestamp: '2025-12-31T23:59:30Z'}\nspec: {containers: [{name: c, image: i}]}";
    const RAN: &str = "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i}]}\nstatus: {phase: Running, containerStatuses: [{name: c, image: i, imageID: '', ready: true, restartCount: 0, containerID: 'eci://eci-1/c'}]}";

    #[test]
    fn a_new_pod_without_a_group_is_created() {
        assert_eq!(decide(&pod(NEW), None, now()), Step::Create);
    }

    #[test]
    fn a_pod_with_a_group_gets_its_status() {
        let running = group(S::Running);
        assert_eq!(
            decide(&pod(NEW), Some(&running), now()),
            Step::WriteStatus { settled: true }
        );
        let pending = group(S::Pending);
        assert_eq!(
            decide(&pod(NEW), Some(&pending), now()),
            Step::WriteStatus { settled: false }
        );
    }

    #[test]
    fn a_deleted_pod_stops_its_group_then_goes() {
        let running = group(S::Running);
        assert_eq!(
            decide(&pod(DELETING_LATER), Some(&running), now()),
            Step::StopGroup("eci-1")
        );
        let stopping = group(S::Terminating);
        assert_eq!(
            decide(&pod(DELETING_LATER), Some(&stopping), now()),
            Step::AwaitStop
        );
        // Never stuck Terminating past its deadline.
        assert_eq!(
            decide(&pod(DELETING_PAST), Some(&stopping), now()),
            Step::RemovePod
        );
        assert_eq!(decide(&pod(DELETING_LATER), None, now()), Step::RemovePod);
    }

    fn running_image(image: &str) -> ContainerGroup {
        let mut g = group(S::Running);
        g.containers = vec![eci::container_group::ContainerInfo {
            name: "c".into(),
            image: image.into(),
            ..Default::default()
        }];
        g
    }

    #[test]
    fn a_changed_image_updates_the_group_and_the_same_one_spelt_otherwise_does_not() {
        let asks = |image: &str| pod(&NEW.replace("image: i", &format!("image: '{image}'")));
        let group = running_image("docker.io/library/busybox:latest");
        assert_eq!(
            decide(&asks("busybox"), Some(&group), now()),
            Step::WriteStatus { settled: true }
        );
        assert_eq!(
            decide(&asks("busybox:1.37"), Some(&group), now()),
            Step::Update(ImageUpdate {
                containers: vec![("c".into(), "busybox:1.37".into())],
                init_containers: vec![],
            })
        );
        // Not while the group is already updating, nor for a pod being deleted.
        let mut updating = group.clone();
        updating.status = S::Updating;
        assert_eq!(
            decide(&asks("busybox:1.37"), Some(&updating), now()),
            Step::WriteStatus { settled: true }
        );
        let deleting = pod(&DELETING_LATER.replace("image: i", "image: 'busybox:1.37'"));
        assert_eq!(
            decide(&deleting, Some(&group), now()),
            Step::StopGroup("eci-1")
        );
    }

    #[test]
    fn a_pod_past_a_shortened_deadline_fails() {
        let shortened = pod(&RAN
            .replace("spec: {", "spec: {activeDeadlineSeconds: 10, ")
            .replace("status: {", "status: {startTime: '2025-12-31T23:59:00Z', "));
        assert_eq!(
            decide(&shortened, Some(&group(S::Running)), now()),
            Step::DeadlineExceeded
        );
    }

    #[test]
    fn a_pod_this_node_cannot_host_is_rejected() {
        let host = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {hostNetwork: true, containers: [{name: c, image: i}]}",
        );
        assert_eq!(
            decide(&host, None, now()),
            Step::Reject(Unsupported::HostNetwork)
        );
    }

    #[test]
    fn a_pod_whose_group_vanished_is_removed_and_a_finished_one_left_alone() {
        assert!(had_group(&pod(RAN)));
        assert!(!had_group(&pod(NEW)));
        assert_eq!(decide(&pod(RAN), None, now()), Step::GroupGone);
        let done = pod(&RAN.replace("phase: Running", "phase: Succeeded"));
        assert_eq!(decide(&done, None, now()), Step::Finished);
    }
}
