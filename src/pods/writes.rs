//! What the pod loop writes to the apiserver about a pod: its status (through the status
//! subresource), its annotations, its removal, and its events. Every write carries the pod's
//! UID as a precondition, so a new pod with the same name is never touched; a write that fails
//! is logged and left to the next pass.
//!
//! Annotations ride with the status write whenever there is one: the status subresource of a
//! pod takes changes to its metadata too (kube-apiserver's pod status strategy keeps only the
//! spec, the owner references and the deletion timestamp of the old object; the NodeRestriction
//! admission plugin refuses a node's label changes there, not its annotations). What the node
//! learns at the create (the request and group ids, the image cache matched) is owed to the
//! pod until then ([`Owed`]), so a pod's start costs one write where it cost three
//! (issue #21: writes a pod are what a burst of creates waits on).

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    runtime::events::{Event, EventType},
};
use parking_lot::Mutex;
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

/// Annotations a pod is owed: decided at its group's create, written with its next status
/// write (or alone, at its next sync, if its status has not changed by then). Forgotten with
/// the pod.
#[derive(Debug, Default)]
pub(super) struct Owed(Mutex<HashMap<String, BTreeMap<&'static str, String>>>);

impl Owed {
    /// Adds to what the pod is owed.
    pub(super) fn owe(&self, uid: &str, annotations: BTreeMap<&'static str, String>) {
        if !annotations.is_empty() {
            self.0
                .lock()
                .entry(uid.to_owned())
                .or_default()
                .extend(annotations);
        }
    }

    /// What the pod is owed now.
    fn get(&self, uid: &str) -> BTreeMap<&'static str, String> {
        self.0.lock().get(uid).cloned().unwrap_or_default()
    }

    /// The pod has these values now: they are no longer owed (a value owed since, under the
    /// same key or another, still is).
    fn paid(&self, uid: &str, written: &BTreeMap<&'static str, String>) {
        let mut owed = self.0.lock();
        if let Some(entry) = owed.get_mut(uid) {
            entry.retain(|k, v| written.get(k) != Some(v));
            if entry.is_empty() {
                owed.remove(uid);
            }
        }
    }

    /// Forgets the pods not in `live`.
    pub(super) fn retain_live(&self, live: &HashSet<String>) {
        self.0.lock().retain(|uid, _| live.contains(uid));
    }
}

/// Writes the pod's status from its group, when it changed, with the annotations it lacks; a
/// new failure reason is also a Warning event.
pub(super) async fn sync_status(ctx: &Context, pod: &Pod, uid: &str, group: &ContainerGroup) {
    let status = pod_status(pod, group, &ctx.config.host_ip, jiff::Timestamp::now());
    // What the create decided, and what ECI's virtual node writes on a pod once its group
    // exists: the ones the pod lacks.
    let owed = ctx.owed.get(uid);
    let mut todo = missing(pod, written_back(pod, group));
    todo.extend(missing(pod, owed.clone()));
    let written = if differs(pod.status.as_ref(), &status) {
        if let Some((reason, note)) = failure_event(pod.status.as_ref(), &status) {
            publish(ctx, pod, EventType::Warning, &reason, &note).await;
        }
        send_status(ctx, pod, uid, &status, &todo).await
    } else {
        annotate(ctx, pod, uid, &todo).await
    };
    if written && !owed.is_empty() {
        // Owed values the pod already had are paid too.
        ctx.owed.paid(uid, &owed);
    }
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

/// The strategic-merge patch of a status write, with `annotations` (none: no
/// `metadata.annotations`); `metadata.uid` in it is a precondition.
///
/// Conditions merge by type, field by field: a condition whose reason or message went away
/// says so with `null`, or the old one stays (a `Ready=True` pod kept the reason
/// `ContainersNotReady`, and every pass wrote it again).
fn status_patch(
    uid: &str,
    status: &PodStatus,
    annotations: &BTreeMap<&str, String>,
) -> serde_json::Value {
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
    let mut metadata = serde_json::json!({ "uid": uid });
    if !annotations.is_empty() {
        metadata["annotations"] = serde_json::json!(annotations);
    }
    serde_json::json!({ "metadata": metadata, "status": status })
}

/// Writes `status` through the status subresource.
pub(super) async fn write_status(ctx: &Context, pod: &Pod, uid: &str, status: &PodStatus) {
    send_status(ctx, pod, uid, status, &BTreeMap::new()).await;
}

/// Writes `status` and `annotations` through the status subresource; whether it was written.
async fn send_status(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    status: &PodStatus,
    annotations: &BTreeMap<&str, String>,
) -> bool {
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return false;
    };
    let api: Api<Pod> = Api::namespaced(ctx.kube.clone(), &namespace);
    // metadata.uid in the patch is a precondition: a new pod with the same name is not touched.
    let patch = status_patch(uid, status, annotations);
    ctx.config.metrics.pod_write("status");
    let answer = tokio::time::timeout(
        KUBE_TIMEOUT,
        api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch)),
    )
    .await;
    match answer {
        Ok(Ok(_)) => {
            debug!(phase = ?status.phase, annotations = annotations.len(), "pod status written");
            return true;
        }
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
    false
}

/// The merge patch that sets annotations, with the UID as precondition.
fn annotation_patch(uid: &str, annotations: &BTreeMap<&str, String>) -> serde_json::Value {
    serde_json::json!({ "metadata": { "uid": uid, "annotations": annotations } })
}

/// Sets annotations on the pod (one merge patch with the UID as precondition); whether the
/// pod has them now (nothing to set: it has).
async fn annotate(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    annotations: &BTreeMap<&str, String>,
) -> bool {
    if annotations.is_empty() {
        return true;
    }
    let (Some(namespace), Some(name)) = (pod.namespace(), pod.metadata.name.as_deref()) else {
        return false;
    };
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
        Ok(Ok(_)) => return true,
        Ok(Err(error)) => warn!(
            annotation = key,
            error = &error as &dyn std::error::Error,
            "pod annotation not written"
        ),
        Err(_) => {
            warn!(annotation = key, timeout = ?KUBE_TIMEOUT, "pod annotation write timed out")
        }
    }
    false
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
        let none = BTreeMap::new();
        let patch = status_patch("u-1", &status("Running", None, None), &none);
        assert_eq!(patch["metadata"]["uid"], "u-1");
        assert_eq!(patch["status"]["phase"], "Running");
        // No annotations to write: none in the patch (an empty map would be a no-op too, but
        // says nothing).
        assert!(patch["metadata"].get("annotations").is_none(), "{patch}");
        let ready = PodStatus {
            conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..PodStatus::default()
        };
        let patch = status_patch("u-1", &ready, &none);
        let condition = &patch["status"]["conditions"][0];
        assert!(
            condition
                .get("reason")
                .is_some_and(serde_json::Value::is_null),
            "a reason that went away is cleared: {condition}"
        );
        let annotations =
            BTreeMap::from([("k8s.aliyun.com/eci-matched-image-cache", "imc-1".to_owned())]);
        for patch in [
            annotation_patch("u-1", &annotations),
            // Annotations ride with a status write.
            status_patch("u-1", &ready, &annotations),
        ] {
            assert_eq!(patch["metadata"]["uid"], "u-1");
            assert_eq!(
                patch["metadata"]["annotations"]["k8s.aliyun.com/eci-matched-image-cache"],
                "imc-1"
            );
        }
    }

    #[test]
    fn owed_annotations_are_kept_until_written_and_forgotten_with_the_pod() {
        let owed = Owed::default();
        let one = |k: &'static str, v: &str| BTreeMap::from([(k, v.to_owned())]);
        owed.owe("u-1", one("a", "1"));
        owed.owe("u-1", one("b", "2"));
        owed.owe("u-2", one("a", "9"));
        owed.owe("u-3", BTreeMap::new());
        let before = owed.get("u-1");
        assert_eq!(before.len(), 2);
        // Owed again while the write was on its way: that value is still owed.
        owed.owe("u-1", one("b", "3"));
        owed.paid("u-1", &before);
        assert_eq!(owed.get("u-1"), one("b", "3"));
        owed.paid("u-1", &one("b", "3"));
        assert!(owed.get("u-1").is_empty());
        assert!(owed.get("u-3").is_empty());
        owed.retain_live(&HashSet::new());
        assert!(owed.get("u-2").is_empty());
        assert!(owed.0.lock().is_empty());
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
