//! `activeDeadlineSeconds`, which Kubernetes lets a pod set or shorten while it runs. ECI takes
//! it only at creation (`CreateContainerGroup`'s `ActiveDeadlineSeconds`): the SDK's
//! `UpdateContainerGroupRequest` has no such parameter, so the node enforces the pod's current
//! deadline itself, as the kubelet does: a pod active longer than its deadline (counted from its
//! `startTime`) fails with reason `DeadlineExceeded`, and its container group is stopped.

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

/// Fails a pod past its deadline (once) and stops its group (until it is stopping).
pub(super) async fn enforce(ctx: &Context, pod: &Pod, uid: &str, group: Option<&ContainerGroup>) {
    let said = pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some(REASON);
    if !said {
        info!("pod is past its activeDeadlineSeconds; failing it");
        publish(ctx, pod, EventType::Warning, REASON, MESSAGE).await;
        write_status(ctx, pod, uid, &failed_status(REASON, MESSAGE.to_owned())).await;
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
}
