//! The `ImageCache` custom resource as the user guide documents it, with the limits ECI enforces
//! turned into schema validation so the API server rejects a bad object with a message that
//! names the field, before any controller sees it.

use k8s_openapi::{
    api::core::v1::Event,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// ECI accepts at most this many images in one cache (CreateImageCache `Image.N`).
pub const MAX_IMAGES: usize = 20;
/// Disk size of a cache when `spec.imageCacheSize` is not given, in GiB.
pub const DEFAULT_IMAGE_CACHE_SIZE_GIB: i64 = 20;
/// Type of the condition that tools such as `kubectl wait --for=condition=Ready` read.
pub const CONDITION_READY: &str = "Ready";
/// The condition saying a tag of the cache's images points to other content than it holds.
pub const CONDITION_STALE: &str = "Stale";

/// `namespace:secretName`: a DNS-1123 label, a colon, a DNS-1123 subdomain.
const PULL_SECRET_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// What the user asks for: the images to snapshot, where their credentials are, and the disk.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "eci.alibabacloud.com",
    version = "v1",
    kind = "ImageCache",
    plural = "imagecaches",
    singular = "imagecache",
    shortname = "ic",
    shortname = "imc",
    category = "all",
    doc = "A cluster-scoped snapshot of container images that pods on the virtual node start from.",
    status = "ImageCacheStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"CacheId","type":"string","jsonPath":".status.imageCacheId"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"Images","type":"string","priority":1,"jsonPath":".spec.images"}"#,
    printcolumn = r#"{"name":"LastMatched","type":"date","priority":1,"jsonPath":".status.lastMatchedTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageCacheSpec {
    /// The images in the image cache (1 to 20 references, e.g. `busybox:latest`).
    #[schemars(length(min = 1, max = 20), inner(length(min = 1)))]
    pub images: Vec<String>,

    /// Secrets of private registries, each as `namespace:secretName`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = PULL_SECRET_PATTERN)))]
    pub image_pull_secrets: Vec<String>,

    /// Size of the disk that holds the snapshot, in GiB (20 to 32768).
    #[serde(default = "default_image_cache_size")]
    #[schemars(range(min = 20, max = 32768))]
    pub image_cache_size: i64,

    /// Days the cache is kept (1 to 65536); unset means it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65536))]
    pub retention_days: Option<i64>,
}

fn default_image_cache_size() -> i64 {
    DEFAULT_IMAGE_CACHE_SIZE_GIB
}

/// What the controller reports: the cloud cache behind this object and how far it got.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageCacheStatus {
    /// Cloud phase: Preparing, Creating, Ready, Failed, Updating, UpdateFailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Build progress as the cloud reports it, e.g. `100%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The cloud id of the cache (`imc-…`), the value pods name in their annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_cache_id: Option<String>,
    /// When the cloud started building the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// The most recent change of the cloud cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_time: Option<Time>,
    /// When the cache expires: end of retention, or 24 h after a failed build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_date_time: Option<Time>,
    /// When a pod last started from the cache, as the cloud reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_matched_time: Option<Time>,
    /// Events of the build, one per pulled image (core/v1 Event shape, as the guide shows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` is true once pods can use the cache; `Stale` is true once
    /// a tag of its images points to other content than it holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What each image of the cache is, read from its registry when the cache became Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<CachedImageStatus>,
    /// Registries the cache's images were pulled from with a login (its pull secrets): only a
    /// pod with a pull secret for each of them starts from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_registries: Vec<String>,
}

/// One image of a cache as its registry described it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedImageStatus {
    /// The reference as the spec names it.
    pub reference: String,
    /// The digest the reference resolved to (an image index's, when the tag names one).
    pub digest: String,
    /// The digest of the platform's manifest, when it differs from `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
    /// Bytes of the platform's config and layers, as the registry serves them.
    pub size_bytes: i64,
}

/// The CustomResourceDefinition generated from [`ImageCache`].
pub fn crd() -> CustomResourceDefinition {
    ImageCache::crd()
}

/// The CRD as the YAML document that `eci-vk crd` prints and the Helm chart ships.
pub fn crd_yaml() -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(&crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_names_match_the_guide() {
        let crd = crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("imagecaches.eci.alibabacloud.com")
        );
        assert_eq!(crd.spec.scope, "Cluster");
        let names = &crd.spec.names;
        assert_eq!(names.kind, "ImageCache");
        assert_eq!(names.singular.as_deref(), Some("imagecache"));
        assert_eq!(
            names.short_names.as_deref(),
            Some(&["ic".to_string(), "imc".to_string()][..])
        );
        assert_eq!(names.categories.as_deref(), Some(&["all".to_string()][..]));
        let version = &crd.spec.versions[0];
        assert!(version.served && version.storage);
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Age", ".metadata.creationTimestamp"),
                ("CacheId", ".status.imageCacheId"),
                ("Phase", ".status.phase"),
                ("Progress", ".status.progress"),
                ("Images", ".spec.images"),
                ("LastMatched", ".status.lastMatchedTime"),
            ]
        );
    }

    #[test]
    fn spec_defaults_size_and_leaves_retention_unset() {
        let spec: ImageCacheSpec = serde_json::from_str(r#"{"images":["busybox"]}"#).unwrap();
        assert_eq!(spec.image_cache_size, 20);
        assert_eq!(spec.retention_days, None);
        assert!(spec.image_pull_secrets.is_empty());
    }

    #[test]
    fn chart_crd_is_the_generated_one() {
        let chart = include_str!("../../charts/eci-virtual-kubelet/files/crds/imagecache.yaml");
        assert_eq!(
            chart,
            crd_yaml().unwrap(),
            "charts/eci-virtual-kubelet/files/crds/imagecache.yaml is stale: run `cargo run -- crd > charts/eci-virtual-kubelet/files/crds/imagecache.yaml`"
        );
    }
}
