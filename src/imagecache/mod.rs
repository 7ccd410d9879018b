//! The `ImageCache` resource (`imagecaches.eci.alibabacloud.com`): a cluster-scoped snapshot of
//! images that pods start from instead of pulling. This room owns the Rust type (the single
//! source of the CRD); the reconciler and the pod matcher join it in their issues.

mod resource;

pub use resource::{
    CONDITION_READY, DEFAULT_IMAGE_CACHE_SIZE_GIB, ImageCache, ImageCacheSpec, ImageCacheStatus,
    MAX_IMAGES, crd, crd_yaml,
};
