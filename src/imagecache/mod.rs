//! The `ImageCache` resource (`imagecaches.eci.alibabacloud.com`): a cluster-scoped snapshot of
//! images that pods start from instead of pulling. This room owns the Rust type (the single
//! source of the CRD), the pod annotations that ask for a cache, the matcher that picks one,
//! and the reconciler that keeps cloud caches in step with the objects. Image references are
//! read through [`crate::reference`], shared with the emulator and the agent.

mod annotations;
mod cloud;
mod digests;
mod explain;
mod explain_pod;
#[doc(hidden)]
pub mod fuzz;
mod host;
mod index;
mod matcher;
mod pull_secrets;
mod reconciler;
mod resource;
mod snapshot;
mod status;

pub use annotations::{
    ANNOTATION_AUTO_IMC, ANNOTATION_IMAGE_CACHE, ANNOTATION_IMAGE_SNAPSHOT_ID, ANNOTATION_IMC_ID,
    ANNOTATION_MATCH_COUNT_REQUEST, ANNOTATION_PERFECT_MATCH, AnnotationError, SnapshotRequest,
    resolve_snapshot_request,
};
pub use cloud::{
    AUTO_CREATED_PREFIX, CloudSettings, cloud_entry, follow as follow_cloud, is_auto_created,
    look_up as look_up_cloud,
};
pub use explain::{explain, why_better};
pub use explain_pod::{ExplainError, explain_pod, read_pod, render as explain_match};
pub use host::{LABEL_CLASS, class_selector, host, lease_name};
pub use index::{CacheIndexHandle, entry_of};
pub use matcher::{
    CacheEntry, CacheIndex, CachedImage, Candidate, MatchOptions, MatchReport, Miss, Origin,
    READY_PHASE, Verdict, WantedImage,
};
pub use pull_secrets::{
    DOCKER_CFG, DOCKER_CONFIG_JSON, MAX_CREDENTIALS, PullSecretError,
    resolve as resolve_pull_secrets,
};
pub use reconciler::{
    ANNOTATION_CLOUD_ID, ANNOTATION_INSECURE, ANNOTATION_PLAIN_HTTP, ANNOTATION_WARM,
    ANNOTATION_WORKLOAD, AutoCreated, FIELD_MANAGER, FINALIZER, Freshness, ImageCacheController,
    LABEL_AUTO_CREATED, LABEL_WARM, Observer, ReconcileError, Report, RunError, Settings,
    TAG_CLUSTER, TAG_OBJECT, TAG_UID, Warm, object_tag_value, run,
};
pub use resource::{
    CONDITION_READY, CachedImageStatus, DEFAULT_IMAGE_CACHE_SIZE_GIB, ImageCache, ImageCacheSpec,
    ImageCacheStatus, MAX_IMAGES, crd, crd_yaml,
};
pub use snapshot::{
    ANNOTATION_MATCHED_IMAGE_CACHE, Policy, REASON_BAD_ANNOTATION, REASON_HIT, REASON_MISSED,
    REASON_NOT_COMPLETE, REASON_NOT_ENTITLED, REASON_NOT_FOUND, SnapshotDecision, SnapshotError,
    decide_snapshot, instance_storage_gib, pod_images,
};
