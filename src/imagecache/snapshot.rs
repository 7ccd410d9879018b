//! The image snapshot a new pod starts from (DESIGN.md "A snapshot for a pod"): its
//! annotations ([`super::annotations`]) read against the node's cache index, giving the
//! `ImageSnapshotId` to pass, or a reason the pod fails, or a miss. Pure: the pod controller
//! calls it once, at creation, and turns the result into the request, the pod's annotation
//! and its events.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::{
    annotations::{AnnotationError, SnapshotRequest, resolve_snapshot_request},
    matcher::{CacheIndex, MatchOptions, Miss, Verdict},
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
/// Event and failure reason: the named cache was built with logins the pod lacks (Warning).
pub const REASON_NOT_ENTITLED: &str = "ImageCacheNotEntitled";
/// Failure reason: an image-cache annotation of the pod is malformed.
pub const REASON_BAD_ANNOTATION: &str = "InvalidImageCacheAnnotation";

/// How the node decides for pods that do not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Automatic matching for pods without `eci-auto-imc`/`eci-image-cache` (ECI's default is
    /// on; `--auto-match-image-cache`).
    pub auto_default: bool,
    /// When no cache holds every image of a matching pod, have ECI build one
    /// (`AutoMatchImageCache`, as current ECI does on a miss; `--auto-create-image-cache`).
    pub auto_create: bool,
    /// A cache built with logins serves only pods with pull secrets for the same registries
    /// (`--image-cache-pull-secret-guard`).
    pub private_guard: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            auto_default: true,
            auto_create: true,
            private_guard: true,
        }
    }
}

/// What the pod starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDecision {
    /// The pod asked for no cache: it pulls its images.
    NotRequested,
    /// Start from this cache (`ImageSnapshotId`).
    Use {
        /// The `imc-…` id.
        id: String,
        /// The `ImageCache` object's name (the cloud's name for a cache only the cloud knows).
        name: String,
        /// Whether it was chosen by automatic matching (else named by the pod).
        automatic: bool,
    },
    /// No cache holds every image of the pod: ECI is asked to match (`AutoMatchImageCache`), so
    /// it starts the pod from the best cache it has and builds one of all the pod's images for
    /// the pods after it ("Use an image cache to accelerate ECI instance creation": "If no
    /// match is found, the system automatically creates an image cache while creating the
    /// instance").
    AutoCreate {
        /// The cache holding some of the images that ECI is expected to start the pod from.
        partial: Option<String>,
    },
    /// Automatic matching found nothing usable: the pod pulls its images.
    Missed {
        /// Why.
        miss: Miss,
        /// Whether the pod's own annotation asked for matching (only then is the miss an
        /// event: with matching on by default, most pods of most clusters would get one).
        asked: bool,
    },
}

impl SnapshotDecision {
    /// The event reason and message the pod gets from the node, if any
    /// (`SuccessfulHitImageCache`, `ImageCacheMissed`), worded as ECI's. Caches ECI chooses
    /// itself are reported by ECI's own events on the group.
    pub fn event(&self) -> Option<(&'static str, String)> {
        match self {
            Self::NotRequested
            | Self::AutoCreate { .. }
            | Self::Missed {
                asked: false,
                miss:
                    Miss::NoImages | Miss::NoCacheHoldsAnImage | Miss::NoneUsable | Miss::FilteredOut,
            } => None,
            Self::Use { id, .. } => {
                Some((REASON_HIT, format!("Successfully hit image cache {id}.")))
            }
            // A pod kept from a private cache is told why, asked or not.
            Self::Missed { miss, .. } => Some((
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
    /// The named cache was built with logins for registries the pod has no pull secret for.
    #[error(
        "The image cache {id} was built with logins for {registries}; the pod has no pull secret for them."
    )]
    NotEntitled {
        /// The id the pod named.
        id: String,
        /// The registries it logged into.
        registries: String,
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
            Self::NotEntitled { .. } => REASON_NOT_ENTITLED,
        }
    }
}

fn miss_text(miss: Miss) -> &'static str {
    match miss {
        Miss::NoImages => "the pod names no images",
        Miss::NoCacheHoldsAnImage => "no image cache holds any of the pod's images",
        Miss::NoneUsable => {
            "the image caches holding the pod's images are not Ready, have expired, or are larger than the instance's storage"
        }
        Miss::FilteredOut => {
            "no Ready image cache satisfies imc-perfect-match or imc-match-count-request"
        }
        Miss::NotEntitled => {
            "the image caches holding the pod's images were built with logins for registries the pod has no pull secret for"
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

/// Whether a container of the pod pulls `Always`: it must never start from a cache whose
/// tags moved.
pub fn pulls_always(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|spec| {
        spec.init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .any(|c| c.image_pull_policy.as_deref() == Some("Always"))
    })
}

/// The instance's temporary storage in GiB: the free 30 and what
/// `k8s.aliyun.com/eci-extra-ephemeral-storage` adds (a malformed value adds nothing here; the
/// pod is refused for it when its request is built).
pub fn instance_storage_gib(pod: &Pod) -> u64 {
    let extra = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::eci::annotation::EXTRA_EPHEMERAL_STORAGE))
        .and_then(|v| crate::quantity::parse(v.trim()).ok())
        .map(|q| q.value() / f64::from(1u32 << 30))
        .filter(|gib| gib.is_finite() && *gib > 0.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let extra = extra.map_or(0, |gib| gib.ceil() as u64);
    crate::eci::instance_spec::DEFAULT_TEMPORARY_STORAGE_GIB.saturating_add(extra)
}

/// Decides the snapshot of `pod` from its own annotations, the node's `policy` and the caches
/// in `index` at `now`; `logins` are the registries the pod has pull secrets for.
///
/// # Errors
/// [`SnapshotError`]: a malformed annotation, or an explicit id that is unknown, expired, or
/// not Ready. A miss of automatic matching is not an error.
pub fn decide_snapshot(
    pod: &Pod,
    index: &CacheIndex,
    policy: Policy,
    logins: &[String],
    now: Timestamp,
) -> Result<SnapshotDecision, SnapshotError> {
    let empty = std::collections::BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    match resolve_snapshot_request(annotations, policy.auto_default)
        .map_err(SnapshotError::Annotation)?
    {
        SnapshotRequest::None => Ok(SnapshotDecision::NotRequested),
        SnapshotRequest::Explicit { id, .. } => match index.get(&id) {
            None => Err(SnapshotError::NotFound { id }),
            Some(cache) if cache.is_expired(now) => Err(SnapshotError::NotFound { id }),
            Some(cache) if !cache.is_ready() => Err(SnapshotError::NotComplete {
                id,
                phase: cache.phase.clone(),
            }),
            // Naming a private cache's id is no way around the guard.
            Some(cache)
                if policy.private_guard
                    && cache.private_registries.iter().any(|h| !logins.contains(h)) =>
            {
                Err(SnapshotError::NotEntitled {
                    id,
                    registries: cache.private_registries.join(", "),
                })
            }
            Some(cache) => Ok(SnapshotDecision::Use {
                id,
                name: cache.name.clone(),
                automatic: false,
            }),
        },
        SnapshotRequest::Automatic { options, asked } => {
            let options = MatchOptions {
                storage_gib: Some(instance_storage_gib(pod)),
                fresh_only: pulls_always(pod),
                ..options
            };
            let guard = policy.private_guard.then_some(logins);
            let report = index.select_for(pod_images(pod), options, guard, now);
            // ECI's own match knows neither the pod's filters nor its storage: it is asked only
            // when every cache it could pick instead is one the node would pick too.
            // ECI would build an automatic cache with the pod's own logins and share it with
            // every pod: a pod with private images is never handed to ECI's matching.
            let shares_no_login = guard.is_none_or(<[String]>::is_empty);
            let ecis_choice_is_ours = shares_no_login
                && report.candidates.iter().all(|c| {
                    matches!(
                        c.verdict,
                        Verdict::Qualified | Verdict::NotReady | Verdict::Expired(_)
                    )
                });
            Ok(match report.outcome() {
                Ok(winner) if winner.full || !policy.auto_create || !ecis_choice_is_ours => {
                    SnapshotDecision::Use {
                        id: winner.cache.id.clone(),
                        name: winner.cache.name.clone(),
                        automatic: true,
                    }
                }
                Ok(winner) => SnapshotDecision::AutoCreate {
                    partial: Some(winner.cache.id.clone()),
                },
                Err(Miss::NoCacheHoldsAnImage | Miss::NoneUsable)
                    if policy.auto_create && ecis_choice_is_ours =>
                {
                    SnapshotDecision::AutoCreate { partial: None }
                }
                Err(miss) => SnapshotDecision::Missed { miss, asked },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;
    use crate::imagecache::{
        ANNOTATION_AUTO_IMC, ANNOTATION_IMAGE_CACHE, ANNOTATION_IMAGE_SNAPSHOT_ID,
        ANNOTATION_MATCH_COUNT_REQUEST, ANNOTATION_PERFECT_MATCH, CacheEntry, CachedImage, Origin,
    };

    /// The user guide's node: matching only when asked, no automatic caches.
    const GUIDE: Policy = Policy {
        auto_default: false,
        auto_create: false,
        private_guard: true,
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
                    digests: Vec::new(),
                })
                .collect(),
            size_gib: 20,
            origin: Origin::Object,
            last_matched: None,
            stale: false,
            private_registries: Vec::new(),
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
        let d = decide_snapshot(&p, &index(), GUIDE, &[], now()).expect("decided");
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
            let err = decide_snapshot(&p, &index(), GUIDE, &[], now()).expect_err(id);
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
            decide_snapshot(&p, &index(), GUIDE, &[], now()),
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
        let d = decide_snapshot(&p, &index(), GUIDE, &[], now()).expect("decided");
        assert_eq!(
            d,
            SnapshotDecision::Missed {
                miss: Miss::NoneUsable,
                asked: true
            }
        );
        assert_eq!(d.event().map(|e| e.0), Some(REASON_MISSED));
    }

    #[test]
    fn current_eci_matches_by_default_and_has_a_cache_built_on_a_miss() {
        let current = Policy::default();
        // No annotation at all: matched, and a full hit is used as is.
        let p = pod(&[], &["busybox"], &["nginx:1.7.9"]);
        assert!(matches!(
            decide_snapshot(&p, &index(), current, &[], now()),
            Ok(SnapshotDecision::Use {
                automatic: true,
                ..
            })
        ));
        // Only part of the images cached: ECI matches and builds a cache of them all.
        let p = pod(&[], &[], &["nginx:1.7.9", "redis"]);
        let d = decide_snapshot(&p, &index(), current, &[], now()).expect("decided");
        assert_eq!(
            d,
            SnapshotDecision::AutoCreate {
                partial: Some("imc-ready".into())
            }
        );
        assert_eq!(d.event(), None, "ECI's own events report what it chose");
        // Nothing usable holds an image: the same, with nothing to start from meanwhile.
        let p = pod(&[], &[], &["redis"]);
        assert_eq!(
            decide_snapshot(&p, &index(), current, &[], now()),
            Ok(SnapshotDecision::AutoCreate { partial: None })
        );
        // The pod's "false" turns it all off.
        let p = pod(&[(ANNOTATION_AUTO_IMC, "false")], &[], &["redis"]);
        assert_eq!(
            decide_snapshot(&p, &index(), current, &[], now()),
            Ok(SnapshotDecision::NotRequested)
        );
        // A filter ECI's match cannot honour keeps the choice with the node: it pulls.
        let p = pod(
            &[(ANNOTATION_PERFECT_MATCH, "true")],
            &[],
            &["nginx:1.7.9", "redis"],
        );
        assert_eq!(
            decide_snapshot(&p, &index(), current, &[], now()),
            Ok(SnapshotDecision::Missed {
                miss: Miss::FilteredOut,
                asked: false
            })
        );
    }

    #[test]
    fn a_cache_built_with_logins_serves_only_pods_with_logins_for_them() {
        let mut private = index();
        let mut entry = private.get("imc-ready").expect("entry").clone();
        entry.private_registries = vec!["registry.example.com".into()];
        private.upsert(entry);
        let p = pod(
            &[(ANNOTATION_IMAGE_CACHE, "true")],
            &[],
            &["nginx:1.7.9", "busybox"],
        );
        let d = decide_snapshot(&p, &private, GUIDE, &[], now()).expect("decided");
        assert_eq!(
            d,
            SnapshotDecision::Missed {
                miss: Miss::NotEntitled,
                asked: true
            }
        );
        let (reason, note) = d.event().expect("an event");
        assert_eq!(reason, REASON_MISSED);
        assert!(note.contains("no pull secret"), "{note}");
        // Not asked, the pod is still told why (under ECI's default matching).
        let quiet = pod(&[], &[], &["nginx:1.7.9", "busybox"]);
        let d = decide_snapshot(&quiet, &private, Policy::default(), &[], now()).expect("decided");
        assert!(d.event().is_some(), "{d:?}");
        assert!(
            !matches!(d, SnapshotDecision::AutoCreate { .. }),
            "ECI would pick the private cache"
        );
        let logins = ["registry.example.com".to_owned()];
        assert!(matches!(
            decide_snapshot(&p, &private, GUIDE, &logins, now()),
            Ok(SnapshotDecision::Use { .. })
        ));
        // Naming the id is no way around it.
        let named = pod(
            &[(ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-ready")],
            &[],
            &["nginx:1.7.9"],
        );
        let refused = decide_snapshot(&named, &private, GUIDE, &[], now()).expect_err("guarded");
        assert_eq!(refused.reason(), REASON_NOT_ENTITLED);
        assert!(
            refused.to_string().contains("registry.example.com"),
            "{refused}"
        );
        assert!(decide_snapshot(&named, &private, GUIDE, &logins, now()).is_ok());
        // A pod with logins of its own is never handed to ECI's matching: ECI would build an
        // automatic cache with them and share it.
        let own = pod(&[], &[], &["redis"]);
        assert!(matches!(
            decide_snapshot(&own, &index(), Policy::default(), &logins, now()),
            Ok(SnapshotDecision::Missed { .. })
        ));
        assert_eq!(
            decide_snapshot(&own, &index(), Policy::default(), &[], now()),
            Ok(SnapshotDecision::AutoCreate { partial: None })
        );
        let open = Policy {
            private_guard: false,
            ..GUIDE
        };
        assert!(matches!(
            decide_snapshot(&p, &private, open, &[], now()),
            Ok(SnapshotDecision::Use { .. })
        ));
    }

    #[test]
    fn a_cache_larger_than_the_instances_storage_is_skipped() {
        let mut big = index();
        let mut entry = big.get("imc-ready").expect("entry").clone();
        entry.size_gib = 40;
        big.upsert(entry);
        let p = pod(
            &[(ANNOTATION_IMAGE_CACHE, "true")],
            &[],
            &["nginx:1.7.9", "busybox"],
        );
        assert_eq!(instance_storage_gib(&p), 30);
        assert_eq!(
            decide_snapshot(&p, &big, GUIDE, &[], now()),
            Ok(SnapshotDecision::Missed {
                miss: Miss::NoneUsable,
                asked: true
            })
        );
        let p = pod(
            &[
                (ANNOTATION_IMAGE_CACHE, "true"),
                (crate::eci::annotation::EXTRA_EPHEMERAL_STORAGE, "10Gi"),
            ],
            &[],
            &["nginx:1.7.9", "busybox"],
        );
        assert_eq!(instance_storage_gib(&p), 40);
        assert!(matches!(
            decide_snapshot(&p, &big, GUIDE, &[], now()),
            Ok(SnapshotDecision::Use { .. })
        ));
    }

    #[test]
    fn no_annotation_no_cache_and_bad_annotation_fails() {
        let p = pod(&[], &[], &["nginx:1.7.9"]);
        assert_eq!(
            decide_snapshot(&p, &index(), GUIDE, &[], now()),
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
        let err = decide_snapshot(&p, &index(), GUIDE, &[], now()).expect_err("bad");
        assert_eq!(err.reason(), REASON_BAD_ANNOTATION);
    }
}
