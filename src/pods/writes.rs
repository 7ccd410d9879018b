//! What the pod loop writes to the apiserver about a pod: its status (through the status
//! subresource), one annotation, its removal, and its events. Every write carries the pod's
//! UID as a precondition, so a new pod with the same name is never touched; a write that fails
//! is logged and left to the next pass.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    runtime::events::{Event, EventType},
};
use tracing::{debug, info, warn};

use super::{
    annotations::{missing, written_back},
    context::{Context, KUBE_TIMEOUT},
    status::{differs, pod_status},
    translate::Unsupported,
};
use crate::eci::ContainerGroup;

/// Longest event note, in characters.
pub(super) const MAX_NOTE: usize = 1000;

/// Writes the pod's status from its group, when it changed; a new failure reason is also a
/// Warning event.
pub(super) async fn sync_status(ctx: &Context, pod: &Pod, uid: &str, group: &ContainerGroup) {
    let status = pod_status(pod, group, &ctx.config.host_ip, jiff::Timestamp::now());
    if differs(pod.status.as_ref(), &status) {
        if let Some((reason, note)) = failure_event(pod.status.as_ref(), &status) {
            publish(ctx, pod, EventType::Warning, &reason, &note).await;
        }
        write_status(ctx, pod, uid, &status).await;
    }
    // What ECI's virtual node writes on a pod once its group exists, when the pod lacks it.
    let todo = missing(pod, written_back(pod, group));
    annotate(ctx, pod, uid, &todo).await;
}

/// The Warning event a new status brings: its reason and message, unless the pod had already
/// failed (it was said then).
fn failure_event(old: Option<&PodStatus>, new: &PodStatus) -> Option<(String, String)> {
    let was_failed = old.and_then(|s| s.phase.as_deref()) == Some("Failed");
    if was_failed {
        return None;
    }
    let reason = new.reason.clone()?;
    Some((reason, new.message.clone().unwrap_or_default()))
}

/// The status of a pod that will not run: phase `Failed` with the reason and message users see
/// in `kubectl get`/`describe`.
pub(super) fn failed_status(reason: &str, message: String) -> PodStatus {
    PodStatus {
        phase: Some("Failed".into()),
        reason: Some(reason.into()),
        message: Some(message),
        ..PodStatus::default()
    }
}

/// The pod cannot run on this node: it fails with the reason as its status reason and a
/// Warning event, once (not again for a pod already Failed or already told).
pub(super) async fn reject(ctx: &Context, pod: &Pod, uid: &str, why: &Unsupported) {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Failed") || !ctx.rejected.lock().insert(uid.to_owned()) {
        return;
    }
    info!(reason = why.reason(), "pod cannot run on this node");
    ctx.config.metrics.pod_create("rejected");
    publish(ctx, pod, EventType::Warning, why.reason(), &why.to_string()).await;
    let status = failed_status(why.reason(), why.to_string());
    write_status(ctx, pod, uid, &status).await;
}

/// The strategic-merge patch of a status write; `metadata.uid` in it is a precondition.
///
/// Conditions merge by type, field by field: a condition whose reason or message went away
/// says so with `null`, or the old one stays (a `Ready=True` pod kept the reason
/// `ContainersNotReady`, and every pass wrote it again).
fn status_patch(uid: &str, status: &PodStatus) -> serde_json::Value {
    let mut status = serde_json::to_value(status).unwrap_or_default();
    if let Some(conditions) = status
        .get_mut("conditions")
        .and_then(serde_json::Value::as_array_mut)
    {
        for condition in conditions
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for field in ["reason", "message"] {
                condition.entry(field).or_insert(serde_json::Value::Null);
            }
        }
    }
    serde_json::json!({ "metadata": { "uid": uid }, "status": status })
}

/// Writes `status` through the status subresource.
pub(super) async fn write_status(ctx: &Context, pod: &Pod, uid: &str, status: &PodStatus) {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    // metadata.uid in the patch is a precondition: a new pod with the same name is not touched.
    let patch = status_patch(uid, status);
    ctx.config.metrics.pod_write("status");
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

/// The merge patch that sets annotations, with the UID as precondition.
fn annotation_patch(uid: &str, annotations: &BTreeMap<&str, String>) -> serde_json::Value {
    serde_json::json!({ "metadata": { "uid": uid, "annotations": annotations } })
}

/// Sets annotations on the pod (one merge patch with the UID as precondition).
pub(super) async fn annotate(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    annotations: &BTreeMap<&str, String>,
) {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return;
    };
    if annotations.is_empty() {
        return;
    }
    let key = annotations.keys().next().copied().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    let patch = annotation_patch(uid, annotations);
    ctx.config.metrics.pod_write("annotations");
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

/// How a pod is removed: at once (grace 0), and only the pod with this UID.
fn delete_params(uid: &str) -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

/// Removes the pod (grace 0, UID precondition); one already gone is fine.
pub(super) async fn delete_pod(ctx: &Context, pod: &Pod, uid: &str) {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    let params = delete_params(uid);
    match tokio::time::timeout(KUBE_TIMEOUT, api.delete(name, &params)).await {
        Ok(Ok(_)) => info!("pod removed"),
        Ok(Err(kube::Error::Api(status))) if status.code == 404 || status.code == 409 => {
            debug!("pod already gone");
        }
        Ok(Err(error)) => warn!(error = &error as &dyn std::error::Error, "pod not removed"),
        Err(_) => warn!(timeout = ?KUBE_TIMEOUT, "pod delete timed out"),
    }
}

/// The event a pod gets: action `Sync`, the note cut to [`MAX_NOTE`] characters.
fn event(kind: EventType, reason: &str, note: &str) -> Event {
    Event {
        type_: kind,
        reason: reason.to_owned(),
        note: Some(note.chars().take(MAX_NOTE).collect()),
        action: "Sync".to_owned(),
        secondary: None,
    }
}

/// Publishes an event on the pod; a failure is only logged at debug (events are best effort).
pub(super) async fn publish(ctx: &Context, pod: &Pod, kind: EventType, reason: &str, note: &str) {
    let event = event(kind, reason, note);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: &str, reason: Option<&str>, message: Option<&str>) -> PodStatus {
        PodStatus {
            phase: Some(phase.into()),
            reason: reason.map(Into::into),
            message: message.map(Into::into),
            ..PodStatus::default()
        }
    }

    #[test]
    fn a_new_failure_reason_is_a_warning_once() {
        let failed = status("Failed", Some("OOMKilled"), Some("main ran out of memory"));
        assert_eq!(
            failure_event(Some(&status("Running", None, None)), &failed),
            Some(("OOMKilled".into(), "main ran out of memory".into()))
        );
        assert_eq!(
            failure_event(None, &status("Pending", Some("ImagePullBackOff"), None)),
            Some(("ImagePullBackOff".into(), String::new()))
        );
        // Already failed: it was said then.
        assert_eq!(failure_event(Some(&failed), &failed), None);
        // No reason: nothing to say.
        assert_eq!(failure_event(None, &status("Running", None, None)), None);
    }

    #[test]
    fn a_refused_pod_is_failed_with_its_reason() {
        let written = failed_status(
            "HostNetworkUnsupported",
            "hostNetwork is not available on ECI".into(),
        );
        assert_eq!(
            written,
            status(
                "Failed",
                Some("HostNetworkUnsupported"),
                Some("hostNetwork is not available on ECI")
            )
        );
    }

    #[test]
    fn status_patches_carry_the_uid_precondition() {
        let patch = status_patch("u-1", &status("Running", None, None));
        assert_eq!(patch["metadata"]["uid"], "u-1");
        assert_eq!(patch["status"]["phase"], "Running");
        let ready = PodStatus {
            conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..PodStatus::default()
        };
        let patch = status_patch("u-1", &ready);
        let condition = &patch["status"]["conditions"][0];
        assert!(
            condition
                .get("reason")
                .is_some_and(serde_json::Value::is_null),
            "a reason that went away is cleared: {condition}"
        );
        let annotations =
            BTreeMap::from([("k8s.aliyun.com/eci-matched-image-cache", "imc-1".to_owned())]);
        let patch = annotation_patch("u-1", &annotations);
        assert_eq!(patch["metadata"]["uid"], "u-1");
        assert_eq!(
            patch["metadata"]["annotations"]["k8s.aliyun.com/eci-matched-image-cache"],
            "imc-1"
        );
    }

    #[test]
    fn pods_are_removed_at_once_and_only_by_uid() {
        let params = delete_params("u-1");
        assert_eq!(params.grace_period_seconds, Some(0));
        let uid = params.preconditions.and_then(|p| p.uid);
        assert_eq!(uid.as_deref(), Some("u-1"));
    }

    #[test]
    fn event_notes_are_cut_to_a_thousand_characters() {
        let long = "é".repeat(1500);
        let event = event(EventType::Warning, "ProviderFailed", &long);
        assert_eq!(event.note.map(|n| n.chars().count()), Some(MAX_NOTE));
        assert_eq!(event.reason, "ProviderFailed");
        assert_eq!(event.action, "Sync");
    }
}
