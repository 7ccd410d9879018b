//! How the cloud builds an object's cache, from the ImageCache's annotations (ECI's "ImageCache
//! annotations",
//! https://www.alibabacloud.com/help/en/eci/user-guide/annotations-that-can-be-added-to-create-an-image-cache):
//! the build instance's network, ACR Enterprise instances, plain-HTTP and insecure registries,
//! layer reuse, instant (Flash) caches and their copies, LRU eviction, an EIP, the OS and CPU
//! architecture.
//!
//! `UpdateImageCache` takes neither the registries' protocols nor the OS (the SDK's
//! `UpdateImageCacheRequest` has no such fields), and the architecture travels only in
//! CreateImageCache's free-form `Annotations`. Those settings are fingerprinted into the
//! cache's [`eci::tag::BUILD`] tag; a cache whose fingerprint differs from the object's is
//! built anew rather than updated, so it never keeps pulling the old way.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::{
    eci::{
        self, annotation as key,
        annotation_value::{
            Invalid, acr_registries, boolean, ids, invalid, one_of, registries, small,
        },
        container_group::AcrRegistryInfo,
    },
    imagecache::resource::ImageCache,
};

/// Everything an object's annotations ask of its cache's build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Build {
    vswitch_id: Option<String>,
    security_group_id: Option<String>,
    resource_group_id: Option<String>,
    acr: Vec<AcrRegistryInfo>,
    plain_http: Option<String>,
    insecure: Option<String>,
    reuse: Option<bool>,
    flash: Option<bool>,
    flash_copy_count: Option<u32>,
    standard_copy_count: Option<u32>,
    elimination: Option<String>,
    eip: Option<String>,
    os_type: Option<String>,
    cpu_arch: Option<String>,
}

/// The object's annotation `k`, trimmed; empty counts as absent.
fn get<'a>(object: &'a ImageCache, k: &str) -> Option<&'a str> {
    object
        .annotations()
        .get(k)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

impl Build {
    /// Reads `object`'s annotations, with the node's security group and vSwitches where the
    /// object names none.
    ///
    /// # Errors
    /// [`Invalid`] naming the first malformed annotation.
    pub(super) fn read(
        object: &ImageCache,
        security_group: Option<&str>,
        vswitch: Option<&str>,
    ) -> Result<Self, Invalid> {
        let count = |k: &'static str| get(object, k).map(|v| small(k, v, 1..=100)).transpose();
        let reuse = match (
            get(object, key::IMC_ENABLE_REUSE),
            get(object, key::IMC_AUTO_MATCH_LEGACY),
        ) {
            (Some(v), _) => Some(boolean(key::IMC_ENABLE_REUSE, v)?),
            (None, Some(v)) => Some(boolean(key::IMC_AUTO_MATCH_LEGACY, v)?),
            (None, None) => None,
        };
        let flash = get(object, key::IMC_ENABLE_FLASH)
            .map(|v| boolean(key::IMC_ENABLE_FLASH, v))
            .transpose()?;
        let flash_copy_count = count(key::IMC_FLASH_COPY_COUNT)?;
        if flash_copy_count.is_some() && flash != Some(true) {
            let v = get(object, key::IMC_FLASH_COPY_COUNT).unwrap_or_default();
            return Err(invalid(
                key::IMC_FLASH_COPY_COUNT,
                v,
                format!(
                    "copies of the local snapshot need {}: \"true\"",
                    key::IMC_ENABLE_FLASH
                ),
            ));
        }
        let single_id = |k: &'static str, prefix: &str| -> Result<Option<String>, Invalid> {
            get(object, k)
                .map(|v| {
                    let mut found = ids(k, v, prefix, 1)?;
                    Ok(found.pop().unwrap_or_default())
                })
                .transpose()
        };
        let vswitch_id = match get(object, key::IMC_VSWITCH_IDS) {
            Some(v) => Some(ids(key::IMC_VSWITCH_IDS, v, "vsw-", 10)?.join(",")),
            None => vswitch.map(str::to_owned),
        };
        Ok(Self {
            vswitch_id,
            security_group_id: single_id(key::IMC_SECURITY_GROUP_ID, "sg-")?
                .or_else(|| security_group.map(str::to_owned)),
            resource_group_id: single_id(key::IMC_RESOURCE_GROUP_ID, "rg-")?,
            acr: acr_registries(
                get(object, key::ACR_INSTANCE_IDS),
                get(object, key::ACR_SERVICE_ARNS),
                get(object, key::ACR_USER_ARNS),
            )?,
            plain_http: get(object, key::PLAIN_HTTP_REGISTRY)
                .map(|v| registries(key::PLAIN_HTTP_REGISTRY, v))
                .transpose()?,
            insecure: get(object, key::INSECURE_REGISTRY)
                .map(|v| registries(key::INSECURE_REGISTRY, v))
                .transpose()?,
            reuse,
            flash,
            flash_copy_count,
            standard_copy_count: count(key::IMC_STANDARD_COPY_COUNT)?,
            elimination: get(object, key::IMC_ELIMINATION_STRATEGY)
                .map(|v| one_of(key::IMC_ELIMINATION_STRATEGY, v, &["LRU"]))
                .transpose()?,
            eip: single_id(key::IMC_EIP_INSTANCE_ID, "eip-")?,
            os_type: get(object, key::IMC_OS_TYPE)
                .map(|v| {
                    one_of(
                        key::IMC_OS_TYPE,
                        &v.to_ascii_lowercase(),
                        &["linux", "windows"],
                    )
                    .map(|os| if os == "linux" { "Linux" } else { "Windows" }.to_owned())
                })
                .transpose()?,
            cpu_arch: get(object, key::IMC_CPU_ARCH)
                .map(|v| {
                    one_of(
                        key::IMC_CPU_ARCH,
                        &v.to_ascii_lowercase(),
                        &["amd64", "arm64"],
                    )
                })
                .transpose()?,
        })
    }

    /// The settings `UpdateImageCache` cannot change, as the value of the cache's
    /// [`eci::tag::BUILD`] tag: empty when none is set (so caches made before the tag existed,
    /// and plain ones, compare equal).
    pub(super) fn fingerprint(&self) -> String {
        let parts = [
            ("plain-http", self.plain_http.as_deref()),
            ("insecure", self.insecure.as_deref()),
            ("os", self.os_type.as_deref()),
            ("arch", self.cpu_arch.as_deref()),
        ];
        if parts.iter().all(|(_, v)| v.is_none()) {
            return String::new();
        }
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for (name, value) in parts {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(value.unwrap_or_default().as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..8])
    }

    /// Whether the cloud cache was built with these create-only settings. A cache without the
    /// tag (made before it existed) is taken as built alike: an upgrade rebuilds nothing.
    pub(super) fn built_alike(&self, cloud: &eci::ImageCache) -> bool {
        cloud
            .tags
            .iter()
            .find(|t| t.key == eci::tag::BUILD)
            .is_none_or(|t| t.value == self.fingerprint())
    }

    /// The tag recording [`Self::fingerprint`] (empty when no such setting is made): every
    /// cache this release builds carries it, so a setting added later is seen as a change.
    pub(super) fn tag(&self) -> eci::Tag {
        eci::Tag::new(eci::tag::BUILD, self.fingerprint())
    }

    /// The registries reached over plain HTTP and without certificate checks.
    pub(super) fn registries(&self) -> (Vec<String>, Vec<String>) {
        let hosts = |list: &Option<String>| {
            list.as_deref()
                .map(|l| l.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        (hosts(&self.plain_http), hosts(&self.insecure))
    }

    /// The platform the images are pulled for: `os`, `arch`.
    pub(super) fn platform(&self) -> (String, String) {
        (
            self.os_type
                .as_deref()
                .unwrap_or("Linux")
                .to_ascii_lowercase(),
            self.cpu_arch.clone().unwrap_or_else(|| "amd64".to_owned()),
        )
    }

    /// Sets the request's build fields.
    pub(super) fn create(&self, request: &mut eci::CreateImageCache) {
        request.vswitch_id.clone_from(&self.vswitch_id);
        request
            .security_group_id
            .clone_from(&self.security_group_id);
        request
            .resource_group_id
            .clone_from(&self.resource_group_id);
        request.acr_registry_info.clone_from(&self.acr);
        request.plain_http_registry.clone_from(&self.plain_http);
        request.insecure_registry.clone_from(&self.insecure);
        request.auto_match_image_cache = self.reuse;
        request.flash = self.flash;
        request.flash_copy_count = self.flash_copy_count;
        request.standard_copy_count = self.standard_copy_count;
        request.elimination_strategy.clone_from(&self.elimination);
        request.eip_instance_id.clone_from(&self.eip);
        request.os_type.clone_from(&self.os_type);
        request.annotations = self.cpu_arch.as_ref().map(|arch| {
            serde_json::to_string(&BTreeMap::from([(key::IMC_CPU_ARCH, arch)])).unwrap_or_default()
        });
    }

    /// Sets the update request's build fields (those `UpdateImageCache` takes).
    pub(super) fn update(&self, request: &mut eci::UpdateImageCache) {
        request.vswitch_id.clone_from(&self.vswitch_id);
        request
            .security_group_id
            .clone_from(&self.security_group_id);
        request
            .resource_group_id
            .clone_from(&self.resource_group_id);
        request.acr_registry_info.clone_from(&self.acr);
        request.auto_match_image_cache = self.reuse;
        request.flash = self.flash;
        request.flash_copy_count = self.flash_copy_count;
        request.standard_copy_count = self.standard_copy_count;
        request.elimination_strategy.clone_from(&self.elimination);
        request.eip_instance_id.clone_from(&self.eip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagecache::ImageCacheSpec;

    fn object(annotations: &[(&str, &str)]) -> ImageCache {
        let mut o = ImageCache::new(
            "web",
            ImageCacheSpec {
                images: vec!["nginx".into()],
                image_pull_secrets: Vec::new(),
                image_cache_size: 20,
                retention_days: None,
            },
        );
        o.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        o
    }

    #[test]
    fn every_documented_annotation_reaches_the_request() {
        let o = object(&[
            (key::IMC_VSWITCH_IDS, "vsw-a, vsw-b"),
            (key::IMC_SECURITY_GROUP_ID, "sg-1"),
            (key::IMC_RESOURCE_GROUP_ID, "rg-1"),
            (key::ACR_INSTANCE_IDS, "cri-a,cn-beijing:cri-b"),
            (key::ACR_SERVICE_ARNS, "acs:ram::1:role/assume"),
            (key::PLAIN_HTTP_REGISTRY, "reg.local:5000"),
            (key::INSECURE_REGISTRY, "harbor.local"),
            (key::IMC_ENABLE_REUSE, "true"),
            (key::IMC_ENABLE_FLASH, "true"),
            (key::IMC_FLASH_COPY_COUNT, "2"),
            (key::IMC_STANDARD_COPY_COUNT, "3"),
            (key::IMC_ELIMINATION_STRATEGY, "LRU"),
            (key::IMC_EIP_INSTANCE_ID, "eip-1"),
            (key::IMC_OS_TYPE, "linux"),
            (key::IMC_CPU_ARCH, "arm64"),
        ]);
        let build = Build::read(&o, Some("sg-node"), Some("vsw-node")).expect("reads");
        let mut create = eci::CreateImageCache::default();
        build.create(&mut create);
        assert_eq!(create.vswitch_id.as_deref(), Some("vsw-a,vsw-b"));
        assert_eq!(create.security_group_id.as_deref(), Some("sg-1"));
        assert_eq!(create.resource_group_id.as_deref(), Some("rg-1"));
        assert_eq!(create.acr_registry_info.len(), 2);
        assert_eq!(
            create.acr_registry_info[1].region_id.as_deref(),
            Some("cn-beijing")
        );
        assert_eq!(
            create.plain_http_registry.as_deref(),
            Some("reg.local:5000")
        );
        assert_eq!(create.insecure_registry.as_deref(), Some("harbor.local"));
        assert_eq!(create.auto_match_image_cache, Some(true));
        assert_eq!(create.flash, Some(true));
        assert_eq!(create.flash_copy_count, Some(2));
        assert_eq!(create.standard_copy_count, Some(3));
        assert_eq!(create.elimination_strategy.as_deref(), Some("LRU"));
        assert_eq!(create.eip_instance_id.as_deref(), Some("eip-1"));
        assert_eq!(create.os_type.as_deref(), Some("Linux"));
        assert_eq!(
            create.annotations.as_deref(),
            Some(r#"{"k8s.aliyun.com/imc-cpu-arch":"arm64"}"#)
        );
        let mut update = eci::UpdateImageCache::default();
        build.update(&mut update);
        assert_eq!(update.flash_copy_count, Some(2));
        assert_eq!(update.acr_registry_info.len(), 2);
    }

    #[test]
    fn the_node_defaults_fill_in_and_plain_objects_have_no_fingerprint() {
        let build = Build::read(&object(&[]), Some("sg-node"), Some("vsw-node")).expect("reads");
        let mut create = eci::CreateImageCache::default();
        build.create(&mut create);
        assert_eq!(create.security_group_id.as_deref(), Some("sg-node"));
        assert_eq!(create.vswitch_id.as_deref(), Some("vsw-node"));
        assert_eq!(build.fingerprint(), "");
        assert_eq!(build.tag().value, "");
        assert!(build.built_alike(&eci::ImageCache::default()));
        let plain = Build::read(&object(&[(key::PLAIN_HTTP_REGISTRY, "a:5000")]), None, None)
            .expect("reads");
        assert!(
            plain.built_alike(&eci::ImageCache::default()),
            "a cache made before the tag is not rebuilt"
        );
    }

    #[test]
    fn a_changed_registry_protocol_or_architecture_changes_the_fingerprint() {
        let plain = Build::read(&object(&[(key::PLAIN_HTTP_REGISTRY, "a:5000")]), None, None)
            .expect("reads");
        let other = Build::read(&object(&[(key::PLAIN_HTTP_REGISTRY, "b:5000")]), None, None)
            .expect("reads");
        let arm = Build::read(&object(&[(key::IMC_CPU_ARCH, "arm64")]), None, None).expect("reads");
        assert_ne!(plain.fingerprint(), other.fingerprint());
        assert_ne!(plain.fingerprint(), arm.fingerprint());
        let cloud = eci::ImageCache {
            tags: vec![plain.tag()],
            ..eci::ImageCache::default()
        };
        assert!(plain.built_alike(&cloud));
        assert!(!other.built_alike(&cloud));
        let untagged = Build::read(&object(&[]), None, None).expect("reads");
        assert!(!untagged.built_alike(&cloud), "a tag that differs rebuilds");
        let built_plain = eci::ImageCache {
            tags: vec![untagged.tag()],
            ..eci::ImageCache::default()
        };
        assert!(
            !plain.built_alike(&built_plain),
            "a setting added to a cache built without it rebuilds"
        );
    }

    #[test]
    fn malformed_annotations_name_themselves() {
        for (k, v) in [
            (key::IMC_ENABLE_FLASH, "yes"),
            (key::IMC_CPU_ARCH, "sparc"),
            (key::IMC_OS_TYPE, "plan9"),
            (key::IMC_ELIMINATION_STRATEGY, "FIFO"),
            (key::IMC_VSWITCH_IDS, "subnet-1"),
            (key::IMC_STANDARD_COPY_COUNT, "0"),
            (key::ACR_INSTANCE_IDS, "registry-1"),
            (key::PLAIN_HTTP_REGISTRY, "http://reg"),
        ] {
            let error = Build::read(&object(&[(k, v)]), None, None).expect_err(k);
            assert_eq!(error.key, k);
        }
        let error = Build::read(&object(&[(key::IMC_FLASH_COPY_COUNT, "2")]), None, None)
            .expect_err("copies without flash");
        assert_eq!(error.key, key::IMC_FLASH_COPY_COUNT);
    }
}
