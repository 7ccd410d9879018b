//! `activeDeadlineSeconds`, which Kubernetes lets a pod set or shorten while it runs. ECI takes
//! it only at creation (`CreateContainerGroup`'s `ActiveDeadlineSeconds`): the SDK's
//! `UpdateContainerGroupRequest` has no such parameter, so the node enforces the pod's current
//! deadline itself, as the kubelet does: a pod active longer than its deadline (counted from its
//! `startTime`) fails with reason `DeadlineExceeded`, and its container group is stopped.
//!
//! The same holds for ECI's longest Pending time (`k8s.aliyun.com/eci-max-pending-minute`,
//! 240 minutes unless the pod says; "Customize the maximum pending duration of an ECI pod",
//! <https://www.alibabacloud.com/help/en/eci/user-guide/customize-the-maximum-pending-duration-of-the-eci-pod>):
//! a group still Scheduling or Pending that long after its creation is deleted and the pod
//! fails with reason `PendingTimeout`. `DescribeContainerGroups` gives no time the group
//! entered Pending, so the node counts from its creation (ECI counts the Pending state only).

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;
use tracing::{info, warn};

use super::{
    groups::delete_group,
    writes::{failed_status, publish, write_status},
};
use crate::eci::{ContainerGroup, ContainerGroupStatus};

use super::context::Context;

/// The reason the kubelet gives a pod past its deadline.
pub(super) const REASON: &str = "DeadlineExceeded";
/// The kubelet's message for it.
const MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// Whether `pod` is past its `activeDeadlineSeconds` at `now` and not finished otherwise (a pod
/// this node already failed for its deadline stays past it, so its group is stopped).
pub(super) fn past_deadline(pod: &Pod, now: jiff::Timestamp) -> bool {
    let Some(seconds) = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds) else {
        return false;
    };
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let finished_otherwise = match status.phase.as_deref() {
        Some("Succeeded") => true,
        Some("Failed") => status.reason.as_deref() != Some(REASON),
        _ => false,
    };
    let Some(started) = status.start_time.as_ref() else {
        return false;
    };
    !finished_otherwise
        && started
            .0
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .is_ok_and(|deadline| deadline <= now)
}

/// The reason of a pod whose group stayed Pending too long.
pub(super) const PENDING_REASON: &str = "PendingTimeout";

/// Whether `group` has been starting (Scheduling or Pending) for longer than `pod` allows at
/// `now`.
pub(super) fn pending_too_long(pod: &Pod, group: &ContainerGroup, now: jiff::Timestamp) -> bool {
    if !matches!(
        group.status,
        ContainerGroupStatus::Scheduling | ContainerGroupStatus::Pending
    ) {
        return false;
    }
    let Ok(created) = group.creation_time.parse::<jiff::Timestamp>() else {
        return false;
    };
    let limit = super::annotations::behaviour(pod).max_pending;
    jiff::SignedDuration::try_from(limit)
        .ok()
        .and_then(|limit| created.checked_add(limit).ok())
        .is_some_and(|deadline| deadline <= now)
}

/// Fails a pod past its deadline (once) and stops its group (until it is stopping).
pub(super) async fn enforce(ctx: &Context, pod: &Pod, uid: &str, group: Option<&ContainerGroup>) {
    fail_and_stop(ctx, pod, uid, group, REASON, MESSAGE.to_owned()).await;
}

/// Fails a pod whose group stayed Pending past its limit, and deletes the group.
pub(super) async fn enforce_pending(ctx: &Context, pod: &Pod, uid: &str, group: &ContainerGroup) {
    let minutes = super::annotations::behaviour(pod).max_pending.as_secs() / 60;
    let message = format!(
        "the ECI instance was not running {minutes} minutes after it was created ({})",
        crate::eci::annotation::MAX_PENDING_MINUTE
    );
    fail_and_stop(ctx, pod, uid, Some(group), PENDING_REASON, message).await;
}

/// Fails the pod with `reason` (once) and stops its group (until it is stopping).
async fn fail_and_stop(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    group: Option<&ContainerGroup>,
    reason: &str,
    message: String,
) {
    let said = pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some(reason);
    if !said {
        info!(reason, "failing the pod");
        publish(ctx, pod, EventType::Warning, reason, &message).await;
        write_status(ctx, pod, uid, &failed_status(reason, message)).await;
    }
    if let Some(group) = group
        && group.status != ContainerGroupStatus::Terminating
        && !group.status.is_terminal()
        && let Err(error) = delete_group(&ctx.eci, &group.container_group_id).await
    {
        warn!(error = %error, "container group of a pod past its deadline not deleted; retrying next pass");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(extra_status: &str) -> Pod {
        serde_yaml_ng::from_str(&format!(
            "metadata: {{name: a, namespace: b, uid: u}}\nspec: {{activeDeadlineSeconds: 60, containers: [{{name: c, image: i}}]}}\nstatus: {{startTime: '2026-01-01T00:00:00Z'{extra_status}}}"
        ))
        .expect("fixture pod")
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("a time")
    }

    #[test]
    fn a_pod_fails_once_its_deadline_passed_unless_it_finished() {
        let running = pod(", phase: Running");
        assert!(!past_deadline(&running, at("2026-01-01T00:00:59Z")));
        assert!(past_deadline(&running, at("2026-01-01T00:01:00Z")));
        let done = pod(", phase: Succeeded");
        assert!(!past_deadline(&done, at("2026-01-01T00:05:00Z")));
        let failed = pod(", phase: Failed, reason: Error");
        assert!(!past_deadline(&failed, at("2026-01-01T00:05:00Z")));
        let ours = pod(", phase: Failed, reason: DeadlineExceeded");
        assert!(past_deadline(&ours, at("2026-01-01T00:05:00Z")));
    }

    #[test]
    fn a_group_pending_past_its_limit_is_given_up() {
        let group = |status| ContainerGroup {
            status,
            creation_time: "2026-01-01T00:00:00Z".into(),
            ..ContainerGroup::default()
        };
        let plain = pod("");
        let pending = group(ContainerGroupStatus::Pending);
        assert!(!pending_too_long(
            &plain,
            &pending,
            at("2026-01-01T03:59:00Z")
        ));
        assert!(
            pending_too_long(&plain, &pending, at("2026-01-01T04:00:00Z")),
            "240 minutes by default"
        );
        let mut short = pod("");
        short.metadata.annotations = Some(
            [(
                crate::eci::annotation::MAX_PENDING_MINUTE.to_owned(),
                "10".to_owned(),
            )]
            .into(),
        );
        assert!(pending_too_long(
            &short,
            &pending,
            at("2026-01-01T00:10:00Z")
        ));
        let running = group(ContainerGroupStatus::Running);
        assert!(!pending_too_long(
            &short,
            &running,
            at("2026-01-02T00:00:00Z")
        ));
    }
}
