//! The image snapshot a pod is created from, read once, at creation (DESIGN.md "A snapshot for
//! a pod"): the pod's own annotations and the node's policy against the node's cache index
//! ([`imagecache::decide_snapshot`]). A cache id the index does not know is asked of the cloud
//! first (ECI takes any Ready cache of the account). A pod that asks for a cache while the
//! index is still loading waits for it rather than being judged on a partial view; a pod that
//! asks for none never waits.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::{
    eci,
    imagecache::{
        self, CacheIndexHandle, Policy, SnapshotDecision, SnapshotError, SnapshotRequest,
    },
};

/// Why no decision is available now.
#[derive(Debug)]
pub enum Resolve {
    /// The cache index has not completed its first list: try again shortly.
    Wait,
    /// The pod cannot be created as asked: it fails with this reason.
    Fail(SnapshotError),
    /// The cloud could not be asked for the cache the pod names: try again after a backoff.
    Cloud(eci::Error),
}

impl PartialEq for Resolve {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Wait, Self::Wait) => true,
            (Self::Fail(a), Self::Fail(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Resolve {}

/// Decides what `pod` starts from at `now`.
///
/// # Errors
/// [`Resolve::Wait`] while the index loads (only for pods that ask for a cache);
/// [`Resolve::Fail`] for a malformed annotation or an explicit cache that is unknown or not
/// Ready.
pub async fn resolve(
    index: &CacheIndexHandle,
    cloud: Option<&eci::Client>,
    policy: Policy,
    pod: &Pod,
    logins: &[eci::ImageRegistryCredential],
    now: Timestamp,
) -> Result<SnapshotDecision, Resolve> {
    let empty = std::collections::BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    match imagecache::resolve_snapshot_request(annotations, policy.auto_default) {
        Err(error) => return Err(Resolve::Fail(SnapshotError::Annotation(error))),
        Ok(SnapshotRequest::None) => return Ok(SnapshotDecision::NotRequested),
        Ok(SnapshotRequest::Explicit { id, .. }) => {
            // Unknown, or known as not Ready: the index may be a list older than the cache's
            // last change (a cache made elsewhere, Ready a moment ago), and a pod failed for
            // it is not retried, so ask the cloud itself first.
            if let Some(eci) = cloud
                && index.read(|caches| caches.get(&id).is_none_or(|c| !c.is_ready()))
            {
                imagecache::look_up_cloud(eci, index, &id, LOOKUP_TTL)
                    .await
                    .map_err(Resolve::Cloud)?;
            }
        }
        Ok(SnapshotRequest::Automatic { asked, .. }) => {
            // Matching by default must not hold pods back for good when the index cannot
            // load (the ImageCache API refuses the node): after a while they pull.
            if !asked && !index.is_synced() && index.waited_too_long(UNASKED_WAIT) {
                return Ok(SnapshotDecision::NotRequested);
            }
        }
    }
    if !index.is_synced() {
        return Err(Resolve::Wait);
    }
    let hosts: Vec<String> = logins
        .iter()
        .map(|l| crate::reference::registry_host(&l.server))
        .collect();
    index
        .read(|caches| imagecache::decide_snapshot(pod, caches, policy, &hosts, now))
        .map_err(Resolve::Fail)
}

/// How long pods that did not ask for a cache wait for the index before they pull.
const UNASKED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an id a pod names and the cloud does not know is not asked again: a pod failed for
/// it is not retried, so this only spares the cloud pods that name the same missing id.
const LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The failure as one line for the pod's status message and event: the error and its causes.
pub fn message(error: &SnapshotError) -> String {
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use kube::runtime::watcher;

    use super::*;
    use crate::imagecache::{
        ANNOTATION_IMAGE_CACHE, ANNOTATION_IMAGE_SNAPSHOT_ID, ANNOTATION_MATCH_COUNT_REQUEST,
        ImageCache, ImageCacheSpec, ImageCacheStatus,
    };

    fn pod(annotations: &[(&str, &str)]) -> Pod {
        let mut pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("nginx:1.7.9".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        pod.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        pod
    }

    fn synced_with_ready_cache() -> CacheIndexHandle {
        let mut object = ImageCache::new(
            "web",
            ImageCacheSpec {
                images: vec!["nginx:1.7.9".into()],
                image_pull_secrets: Vec::new(),
                image_cache_size: 20,
                retention_days: None,
            },
        );
        object.status = Some(ImageCacheStatus {
            phase: Some("Ready".into()),
            image_cache_id: Some("imc-web".into()),
            ..ImageCacheStatus::default()
        });
        let index = CacheIndexHandle::new();
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(object));
        index.apply(&watcher::Event::InitDone);
        index
    }

    fn now() -> Timestamp {
        "2026-01-10T00:00:00Z".parse().expect("time")
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    /// Resolves under the user guide's policy (matching only when asked), without a cloud.
    fn guide(index: &CacheIndexHandle, pod: &Pod) -> Result<SnapshotDecision, Resolve> {
        let policy = Policy {
            auto_default: false,
            auto_create: false,
            private_guard: true,
        };
        block_on(resolve(index, None, policy, pod, &[], now()))
    }

    #[test]
    fn under_ecis_default_every_pod_waits_for_the_index() {
        let index = CacheIndexHandle::new();
        let plain = pod(&[]);
        let resolved = block_on(resolve(&index, None, Policy::default(), &plain, &[], now()));
        assert_eq!(resolved, Err(Resolve::Wait));
        let declines = pod(&[(crate::imagecache::ANNOTATION_AUTO_IMC, "false")]);
        let resolved = block_on(resolve(
            &index,
            None,
            Policy::default(),
            &declines,
            &[],
            now(),
        ));
        assert_eq!(resolved, Ok(SnapshotDecision::NotRequested));
    }

    #[test]
    fn pods_without_annotations_never_wait() {
        let index = CacheIndexHandle::new();
        assert_eq!(guide(&index, &pod(&[])), Ok(SnapshotDecision::NotRequested));
        let asks = pod(&[(ANNOTATION_IMAGE_CACHE, "true")]);
        assert_eq!(guide(&index, &asks), Err(Resolve::Wait));
    }

    #[test]
    fn explicit_and_automatic_against_a_synced_index() {
        let index = synced_with_ready_cache();
        let both = pod(&[
            (ANNOTATION_IMAGE_CACHE, "true"),
            (ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-unknown"),
        ]);
        let Err(Resolve::Fail(error)) = guide(&index, &both) else {
            panic!("explicit wins and is unknown");
        };
        assert_eq!(error.reason(), imagecache::REASON_NOT_FOUND);
        let auto = pod(&[(ANNOTATION_IMAGE_CACHE, "true")]);
        assert!(matches!(
            guide(&index, &auto),
            Ok(SnapshotDecision::Use { id, automatic: true, .. }) if id == "imc-web"
        ));
    }

    #[test]
    fn a_missing_crd_answers_instead_of_waiting() {
        let index = CacheIndexHandle::new();
        index.mark_absent();
        let explicit = pod(&[(ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-web")]);
        assert!(matches!(
            guide(&index, &explicit),
            Err(Resolve::Fail(SnapshotError::NotFound { .. }))
        ));
    }

    #[test]
    fn a_malformed_annotation_names_itself() {
        let index = CacheIndexHandle::new();
        let bad = pod(&[
            (ANNOTATION_IMAGE_CACHE, "true"),
            (ANNOTATION_MATCH_COUNT_REQUEST, "many"),
        ]);
        let Err(Resolve::Fail(error)) = guide(&index, &bad) else {
            panic!("malformed");
        };
        assert_eq!(error.reason(), imagecache::REASON_BAD_ANNOTATION);
        assert!(
            message(&error).contains(ANNOTATION_MATCH_COUNT_REQUEST),
            "{}",
            message(&error)
        );
    }
}
