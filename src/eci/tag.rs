//! Resource tags, shared by container groups and image caches (`Tag.N.Key` / `Tag.N.Value` in
//! requests, `Tags[{Key, Value}]` in responses). The node finds what it owns by its tags.
//!
//! Every tag key the node writes is here, spelt one way (`eci-vk.io/…`) for groups and caches
//! alike. The previous release tagged caches `eci-vk.cluster` / `eci-vk.imagecache` /
//! `eci-vk.uid`; those spellings are kept as `LEGACY_*` and only ever read, so an upgraded
//! node still finds (and adopts or deletes) the caches it made before instead of making a
//! second one or orphaning the old.

use serde::{Deserialize, Serialize};

/// The cluster the resource belongs to (groups and caches).
pub const CLUSTER: &str = "eci-vk.io/cluster";
/// The node that owns a container group.
pub const NODE: &str = "eci-vk.io/node";
/// The namespace of a group's pod.
pub const NAMESPACE: &str = "eci-vk.io/namespace";
/// The name of a group's pod.
pub const NAME: &str = "eci-vk.io/name";
/// The UID of the Kubernetes object a resource was made for (a group's pod, a cache's
/// `ImageCache`).
pub const UID: &str = "eci-vk.io/uid";
/// The name of the `ImageCache` object a cloud cache was made for.
pub const IMAGE_CACHE: &str = "eci-vk.io/imagecache";
/// A fingerprint of the build settings of a cache that `UpdateImageCache` cannot change
/// (registry protocols, OS, CPU architecture): a cache whose fingerprint is not the object's
/// is built anew.
pub const BUILD: &str = "eci-vk.io/imagecache-build";

/// [`CLUSTER`] as the previous release spelt it on caches; read, never written.
pub const LEGACY_CACHE_CLUSTER: &str = "eci-vk.cluster";
/// [`IMAGE_CACHE`] as the previous release spelt it; read, never written.
pub const LEGACY_CACHE_OBJECT: &str = "eci-vk.imagecache";
/// [`UID`] as the previous release spelt it on caches; read, never written.
pub const LEGACY_CACHE_UID: &str = "eci-vk.uid";

/// One tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    /// Key: 1–64 chars, not starting with `acs:` or `aliyun`.
    pub key: String,
    /// Value: up to 128 chars, may be empty.
    pub value: String,
}

impl Tag {
    /// A tag from key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}
