//! The image snapshot a pod is created from, read once, at creation (DESIGN.md "A snapshot for
//! a pod"): the pod's own annotations against the node's cache index
//! ([`imagecache::decide_snapshot`]). A pod that asks for a cache while the index is still
//! loading waits for it rather than being judged on a partial view; a pod that asks for none
//! never waits.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::imagecache::{self, CacheIndexHandle, SnapshotDecision, SnapshotError, SnapshotRequest};

/// Why no decision is available now.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve {
    /// The cache index has not completed its first list: try again shortly.
    Wait,
    /// The pod cannot be created as asked: it fails with this reason.
    Fail(SnapshotError),
}

/// Decides what `pod` starts from at `now`.
///
/// # Errors
/// [`Resolve::Wait`] while the index loads (only for pods that ask for a cache);
/// [`Resolve::Fail`] for a malformed annotation or an explicit cache that is unknown or not
/// Ready.
pub fn resolve(
    index: &CacheIndexHandle,
    pod: &Pod,
    now: Timestamp,
) -> Result<SnapshotDecision, Resolve> {
    let empty = std::collections::BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    match imagecache::resolve_snapshot_request(annotations) {
        Err(error) => return Err(Resolve::Fail(SnapshotError::Annotation(error))),
        Ok(SnapshotRequest::None) => return Ok(SnapshotDecision::NotRequested),
        Ok(_) => {}
    }
    if !index.is_synced() {
        return Err(Resolve::Wait);
    }
    index
        .read(|caches| imagecache::decide_snapshot(pod, caches, now))
        .map_err(Resolve::Fail)
}

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

    #[test]
    fn pods_without_annotations_never_wait() {
        let index = CacheIndexHandle::new();
        assert_eq!(
            resolve(&index, &pod(&[]), now()),
            Ok(SnapshotDecision::NotRequested)
        );
        let asks = pod(&[(ANNOTATION_IMAGE_CACHE, "true")]);
        assert_eq!(resolve(&index, &asks, now()), Err(Resolve::Wait));
    }

    #[test]
    fn explicit_and_automatic_against_a_synced_index() {
        let index = synced_with_ready_cache();
        let both = pod(&[
            (ANNOTATION_IMAGE_CACHE, "true"),
            (ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-unknown"),
        ]);
        let Err(Resolve::Fail(error)) = resolve(&index, &both, now()) else {
            panic!("explicit wins and is unknown");
        };
        assert_eq!(error.reason(), imagecache::REASON_NOT_FOUND);
        let auto = pod(&[(ANNOTATION_IMAGE_CACHE, "true")]);
        assert!(matches!(
            resolve(&index, &auto, now()),
            Ok(SnapshotDecision::Use { id, automatic: true, .. }) if id == "imc-web"
        ));
    }

    #[test]
    fn a_missing_crd_answers_instead_of_waiting() {
        let index = CacheIndexHandle::new();
        index.mark_absent();
        let explicit = pod(&[(ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-web")]);
        assert!(matches!(
            resolve(&index, &explicit, now()),
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
        let Err(Resolve::Fail(error)) = resolve(&index, &bad, now()) else {
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
