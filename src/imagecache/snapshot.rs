//! The image snapshot a new pod starts from (DESIGN.md "A snapshot for a pod"): its
//! annotations ([`super::annotations`]) read against the node's cache index, giving the
//! `ImageSnapshotId` to pass, or a reason the pod fails, or a miss. Pure: the pod controller
//! calls it once, at creation, and turns the result into the request, the pod's annotation
//! and its events.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::{
    annotations::{AnnotationError, SnapshotRequest, resolve_snapshot_request},
    matcher::{CacheIndex, Miss},
};

/// Pod annotation recording the cache a pod was created from.
pub const ANNOTATION_MATCHED_IMAGE_CACHE: &str = crate::eci::annotation::MATCHED_IMAGE_CACHE;
/// Event reason: the pod starts from a cache (Normal).
pub const REASON_HIT: &str = "SuccessfulHitImageCache";
/// Event reason: automatic matching found no cache (Warning); the pod pulls its images.
pub const REASON_MISSED: &str = "ImageCacheMissed";
/// Event and failure reason: the named cache does not exist (Warning).
pub const REASON_NOT_FOUND: &str = "ImageCacheNotFound";
/// Event and failure reason: the named cache is not Ready yet (Normal in ECI's list).
pub const REASON_NOT_COMPLETE: &str = "ImageCacheNotComplete";
/// Failure reason: an image-cache annotation of the pod is malformed.
pub const REASON_BAD_ANNOTATION: &str = "InvalidImageCacheAnnotation";

/// What the pod starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDecision {
    /// The pod asked for no cache: it pulls its images.
    NotRequested,
    /// Start from this cache (`ImageSnapshotId`).
    Use {
        /// The `imc-…` id.
        id: String,
        /// The `ImageCache` object's name.
        name: String,
        /// Whether it was chosen by automatic matching (else named by the pod).
        automatic: bool,
    },
    /// Automatic matching found nothing usable: the pod pulls its images.
    Missed(Miss),
}

impl SnapshotDecision {
    /// The event reason and message the pod gets, if any (`SuccessfulHitImageCache`,
    /// `ImageCacheMissed`), worded as ECI's.
    pub fn event(&self) -> Option<(&'static str, String)> {
        match self {
            Self::NotRequested => None,
            Self::Use { id, .. } => {
                Some((REASON_HIT, format!("Successfully hit image cache {id}.")))
            }
            Self::Missed(miss) => Some((
                REASON_MISSED,
                format!("Missed image cache: {}.", miss_text(*miss)),
            )),
        }
    }
}

/// Why a pod cannot be created as asked. The pod fails with [`SnapshotError::reason`]; the
/// node carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// An image-cache annotation is malformed.
    #[error("invalid image cache annotation")]
    Annotation(#[source] AnnotationError),
    /// The named cache is unknown to the node (or expired and removed).
    #[error("The specified image cache {id} does not exist.")]
    NotFound {
        /// The id the pod named.
        id: String,
    },
    /// The named cache exists but is not Ready.
    #[error("The production for specified image cache {id} is not yet complete (phase {phase}).")]
    NotComplete {
        /// The id the pod named.
        id: String,
        /// Its phase.
        phase: String,
    },
}

impl SnapshotError {
    /// The pod's failure reason and event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Annotation(_) => REASON_BAD_ANNOTATION,
            Self::NotFound { .. } => REASON_NOT_FOUND,
            Self::NotComplete { .. } => REASON_NOT_COMPLETE,
        }
    }
}

fn miss_text(miss: Miss) -> &'static str {
    match miss {
        Miss::NoImages => "the pod names no images",
        Miss::NoCacheHoldsAnImage => "no image cache holds any of the pod's images",
        Miss::NoneUsable => {
            "the image caches holding the pod's images are not Ready or have expired"
        }
        Miss::FilteredOut => {
            "no Ready image cache satisfies imc-perfect-match or imc-match-count-request"
        }
    }
}

/// The pod's images, init containers first, as they are written.
pub fn pod_images(pod: &Pod) -> Vec<&str> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter_map(|c| c.image.as_deref())
        .collect()
}

/// Decides the snapshot of `pod` from its own annotations and the caches in `index` at `now`.
///
/// # Errors
/// [`SnapshotError`]: a malformed annotation, or an explicit id that is unknown, expired, or
/// not Ready. A miss of automatic matching is not an error.
pub fn decide_snapshot(
    pod: &Pod,
    index: &CacheIndex,
    now: Timestamp,
) -> Result<SnapshotDecision, SnapshotError> {
    let empty = std::collections::BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    match resolve_snapshot_request(annotations).map_err(SnapshotError::Annotation)? {
        SnapshotRequest::None => Ok(SnapshotDecision::NotRequested),
        SnapshotRequest::Explicit { id, .. } => match index.get(&id) {
            None => Err(SnapshotError::NotFound { id }),
            Some(cache) if cache.is_expired(now) => Err(SnapshotError::NotFound { id }),
            Some(cache) if !cache.is_ready() => Err(SnapshotError::NotComplete {
                id,
                phase: cache.phase.clone(),
            }),
            Some(cache) => Ok(SnapshotDecision::Use {
                id,
                name: cache.name.clone(),
                automatic: false,
            }),
        },
        SnapshotRequest::Automatic(options) => {
            let report = index.select(pod_images(pod), options, now);
            Ok(match report.outcome() {
                Ok(winner) => SnapshotDecision::Use {
                    id: winner.cache.id.clone(),
                    name: winner.cache.name.clone(),
                    automatic: true,
                },
                Err(miss) => SnapshotDecision::Missed(miss),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;
    use crate::imagecache::{
        ANNOTATION_IMAGE_CACHE, ANNOTATION_IMAGE_SNAPSHOT_ID, ANNOTATION_MATCH_COUNT_REQUEST,
        CacheEntry, CachedImage,
    };

    fn now() -> Timestamp {
        "2026-01-10T00:00:00Z".parse().expect("time")
    }

    fn pod(annotations: &[(&str, &str)], init: &[&str], images: &[&str]) -> Pod {
        let container = |(i, image): (usize, &&str)| Container {
            name: format!("c{i}"),
            image: Some((*image).to_owned()),
            ..Container::default()
        };
        let mut pod = Pod {
            spec: Some(PodSpec {
                init_containers: Some(init.iter().enumerate().map(container).collect()),
                containers: images.iter().enumerate().map(container).collect(),
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

    fn index() -> CacheIndex {
        let entry = |id: &str, phase: &str, images: &[&str]| CacheEntry {
            id: id.into(),
            name: format!("obj-{id}"),
            phase: phase.into(),
            expires: None,
            created: "2026-01-01T00:00:00Z".parse().expect("time"),
            images: images
                .iter()
                .map(|r| CachedImage {
                    reference: (*r).into(),
                    bytes: 1,
                })
                .collect(),
        };
        let mut expired = entry("imc-expired", "Ready", &["redis"]);
        expired.expires = Some("2026-01-05T00:00:00Z".parse().expect("time"));
        CacheIndex::from_entries([
            entry("imc-ready", "Ready", &["nginx:1.7.9", "busybox"]),
            entry("imc-creating", "Creating", &["nginx:1.7.9"]),
            expired,
        ])
    }

    #[test]
    fn explicit_ready_cache_is_used() {
        let p = pod(
            &[(ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-ready")],
            &[],
            &["nginx:1.7.9"],
        );
        let d = decide_snapshot(&p, &index(), now()).expect("decided");
        assert_eq!(
            d,
            SnapshotDecision::Use {
                id: "imc-ready".into(),
                name: "obj-imc-ready".into(),
                automatic: false
            }
        );
        assert_eq!(d.event().map(|e| e.0), Some(REASON_HIT));
    }

    #[test]
    fn explicit_unknown_expired_or_unready_cache_fails_the_pod() {
        for (id, reason) in [
            ("imc-unknown", REASON_NOT_FOUND),
            ("imc-expired", REASON_NOT_FOUND),
            ("imc-creating", REASON_NOT_COMPLETE),
        ] {
            let p = pod(&[(ANNOTATION_IMAGE_SNAPSHOT_ID, id)], &[], &["nginx:1.7.9"]);
            let err = decide_snapshot(&p, &index(), now()).expect_err(id);
            assert_eq!(err.reason(), reason, "{id}");
            assert!(err.to_string().contains(id));
        }
    }

    #[test]
    fn automatic_matching_counts_init_containers() {
        let p = pod(
            &[
                (ANNOTATION_IMAGE_CACHE, "true"),
                (ANNOTATION_MATCH_COUNT_REQUEST, "2"),
            ],
            &["busybox:latest"],
            &["nginx:1.7.9"],
        );
        assert_eq!(pod_images(&p), ["busybox:latest", "nginx:1.7.9"]);
        assert_eq!(
            decide_snapshot(&p, &index(), now()),
            Ok(SnapshotDecision::Use {
                id: "imc-ready".into(),
                name: "obj-imc-ready".into(),
                automatic: true
            })
        );
    }

    #[test]
    fn automatic_miss_is_an_event_not_a_failure() {
        let p = pod(&[(ANNOTATION_IMAGE_CACHE, "true")], &[], &["redis"]);
        let d = decide_snapshot(&p, &index(), now()).expect("decided");
        assert_eq!(d, SnapshotDecision::Missed(Miss::NoneUsable));
        assert_eq!(d.event().map(|e| e.0), Some(REASON_MISSED));
    }

    #[test]
    fn no_annotation_no_cache_and_bad_annotation_fails() {
        let p = pod(&[], &[], &["nginx:1.7.9"]);
        assert_eq!(
            decide_snapshot(&p, &index(), now()),
            Ok(SnapshotDecision::NotRequested)
        );
        let p = pod(
            &[
                (ANNOTATION_IMAGE_CACHE, "true"),
                (ANNOTATION_MATCH_COUNT_REQUEST, "x"),
            ],
            &[],
            &["nginx:1.7.9"],
        );
        let err = decide_snapshot(&p, &index(), now()).expect_err("bad");
        assert_eq!(err.reason(), REASON_BAD_ANNOTATION);
    }
}
