//! Caches ECI built on an automatic-match miss of this cluster's pods, made visible as
//! `ImageCache` objects and deleted when idle.
//!
//! # Expected flow (leader only, every [`AutoCreated::interval`])
//! 1. the cloud caches named `auto-create-for-<group>` in the index's cloud list that no object
//!    names yet are checked once each: the group they were built for is described, and only
//!    a group tagged with this cluster makes the cache ours (another cluster of the account
//!    keeps its own);
//! 2. ours get an object `auto-<id>` labelled [`LABEL_AUTO_CREATED`], holding the cache's images
//!    and naming it with [`ANNOTATION_CLOUD_ID`], so the reconciler adopts it instead of
//!    building another;
//! 3. an object so labelled whose cache was last matched (or, never matched, made) longer ago
//!    than [`AutoCreated::idle`], or whose cache is gone from the cloud, is deleted; the
//!    finalizer deletes the cloud cache, which frees the account's automatic-cache quota.
//!
//! Only objects of the node's ImageCache class are kept: another class's leader (another
//! account, another region) keeps its own.
//!
//! ECI documents no idle time for automatic caches; the default (7 days) is the flag's, see
//! `--auto-image-cache-idle`.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use jiff::{SignedDuration, Timestamp};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};

use super::Context;
use crate::{
    eci,
    imagecache::{
        cloud::is_auto_created,
        host::{LABEL_CLASS, class_selector},
        index::CacheIndexHandle,
        matcher::CacheEntry,
        resource::{DEFAULT_IMAGE_CACHE_SIZE_GIB, ImageCache, ImageCacheSpec},
    },
};

/// Label of the objects that stand for caches ECI built on an automatic-match miss.
pub const LABEL_AUTO_CREATED: &str = "eci.alibabacloud.com/auto-created";
/// Annotation naming the cloud cache an object stands for: the reconciler adopts that cache
/// rather than building one (also usable by hand, to bring a cache made elsewhere into the
/// cluster).
pub const ANNOTATION_CLOUD_ID: &str = "eci.alibabacloud.com/image-cache-id";

/// How the caches ECI builds for this cluster's pods are kept.
#[derive(Debug, Clone)]
pub struct AutoCreated {
    /// Time a cache may go unmatched before it is deleted.
    pub idle: Duration,
    /// Time between two rounds.
    pub interval: Duration,
    /// The class label the objects get (that of the node's ImageCaches).
    pub class: Option<String>,
}

/// The group id an automatic cache was built for, from its name.
fn built_for(name: &str) -> Option<&str> {
    name.strip_prefix(crate::imagecache::AUTO_CREATED_PREFIX)
        .filter(|id| !id.is_empty())
}

/// Since when `entry` has gone unmatched: its last match, or its making.
fn idle_since(entry: &CacheEntry) -> Timestamp {
    entry
        .last_matched
        .unwrap_or(entry.created)
        .max(entry.created)
}

/// The object standing for automatic cache `entry`.
fn object_for(entry: &CacheEntry, class: Option<&str>) -> ImageCache {
    let mut labels = BTreeMap::from([(LABEL_AUTO_CREATED.to_owned(), "true".to_owned())]);
    if let Some(class) = class {
        labels.insert(LABEL_CLASS.to_owned(), class.to_owned());
    }
    let size = i64::try_from(entry.size_gib)
        .unwrap_or(DEFAULT_IMAGE_CACHE_SIZE_GIB)
        .max(DEFAULT_IMAGE_CACHE_SIZE_GIB);
    ImageCache {
        metadata: ObjectMeta {
            name: Some(format!("auto-{}", entry.id)),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_CLOUD_ID.to_owned(),
                entry.id.clone(),
            )])),
            ..ObjectMeta::default()
        },
        spec: ImageCacheSpec {
            images: entry.images.iter().map(|i| i.reference.clone()).collect(),
            image_pull_secrets: Vec::new(),
            image_cache_size: size,
            retention_days: None,
        },
        status: None,
    }
}

/// Keeps the objects of automatic caches until `stop`.
pub(super) async fn keep(
    ctx: Arc<Context>,
    index: CacheIndexHandle,
    settings: AutoCreated,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    // Caches already found to be another cluster's (or whose group is gone), not asked again.
    let mut not_ours: HashSet<String> = HashSet::new();
    loop {
        if let Err(error) = round(&ctx, &index, &settings, &mut not_ours).await {
            tracing::warn!(
                error = &*error as &dyn std::error::Error,
                "cannot keep the automatically created image caches; retrying"
            );
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}

type RoundError = Box<dyn std::error::Error + Send + Sync>;

async fn round(
    ctx: &Context,
    index: &CacheIndexHandle,
    settings: &AutoCreated,
    not_ours: &mut HashSet<String>,
) -> Result<(), RoundError> {
    let api: Api<ImageCache> = Api::all(ctx.kube.clone());
    let objects = api
        .list(&ListParams::default().labels(&format!(
            "{LABEL_AUTO_CREATED}=true,{}",
            class_selector(settings.class.as_deref())
        )))
        .await?;
    let cloud: Vec<CacheEntry> = index
        .cloud_entries()
        .into_iter()
        .filter(|e| is_auto_created(&e.name))
        .collect();
    let named: HashSet<String> = objects
        .items
        .iter()
        .filter_map(|o| o.annotations().get(ANNOTATION_CLOUD_ID).cloned())
        .collect();
    for entry in &cloud {
        if named.contains(&entry.id) || not_ours.contains(&entry.id) {
            continue;
        }
        match made_for_this_cluster(ctx, &entry.name).await? {
            Some(true) => {}
            Some(false) => {
                not_ours.insert(entry.id.clone());
                continue;
            }
            // Its group is gone (a Job's pod that finished): nobody can tell whose it is, so
            // it is left to ECI's own retention, and asked about again next round.
            None => continue,
        }
        let object = object_for(entry, settings.class.as_deref());
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => tracing::info!(
                imagecache.id = %entry.id,
                imagecache.name = %object.name_any(),
                "ECI built an image cache for this cluster's pods; it is now an ImageCache"
            ),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
    }
    let now = (ctx.clock)();
    let idle = SignedDuration::try_from(settings.idle).unwrap_or(SignedDuration::MAX);
    for object in &objects.items {
        if object.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(id) = object.annotations().get(ANNOTATION_CLOUD_ID) else {
            continue;
        };
        let why = match cloud.iter().find(|e| &e.id == id) {
            Some(entry) if now.duration_since(idle_since(entry)) > idle => {
                format!("unused since {}", idle_since(entry))
            }
            Some(_) => continue,
            // Gone from the cloud (its retention, or deleted by hand): nothing to keep. Only a
            // whole list says so, an object younger than a list may be ahead of it, and the
            // cloud is asked by id before anything is deleted.
            None if index.cloud_listed()
                && object
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .is_some_and(|t| now.duration_since(t.0) > SignedDuration::from_mins(5))
                && !exists(ctx, id).await? =>
            {
                "its cloud cache is gone".to_owned()
            }
            None => continue,
        };
        tracing::info!(imagecache.name = %object.name_any(), imagecache.id = %id, %why, "deleting an automatically created image cache");
        match api
            .delete(&object.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Whether the cloud still has cache `id`.
async fn exists(ctx: &Context, id: &str) -> Result<bool, eci::Error> {
    let found = ctx
        .eci
        .describe_image_caches(&eci::DescribeImageCaches {
            image_cache_id: Some(id.to_owned()),
            ..eci::DescribeImageCaches::default()
        })
        .await?;
    Ok(found.image_caches.iter().any(|c| c.image_cache_id == id))
}

/// Whether the group an automatic cache was built for belongs to this cluster (its tag):
/// `None` when the group is gone and nobody can tell.
async fn made_for_this_cluster(
    ctx: &Context,
    cache_name: &str,
) -> Result<Option<bool>, eci::Error> {
    let Some(group) = built_for(cache_name) else {
        return Ok(Some(false));
    };
    let found = ctx
        .eci
        .describe_container_groups(&eci::DescribeContainerGroups {
            container_group_ids: vec![group.to_owned()],
            with_event: Some(false),
            ..eci::DescribeContainerGroups::default()
        })
        .await?;
    Ok(found
        .container_groups
        .iter()
        .find(|g| g.container_group_id == group)
        .map(|g| {
            g.tags
                .iter()
                .any(|t| t.key == eci::tag::CLUSTER && t.value == ctx.settings.cluster_name)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagecache::{CachedImage, Origin};

    fn entry(created: &str, last_matched: Option<&str>) -> CacheEntry {
        CacheEntry {
            id: "imc-auto1".into(),
            name: "auto-create-for-eci-123".into(),
            phase: "Ready".into(),
            expires: None,
            created: created.parse().expect("time"),
            images: vec![CachedImage {
                reference: "nginx:1.25".into(),
                bytes: 0,
                digests: Vec::new(),
            }],
            size_gib: 0,
            origin: Origin::Cloud,
            last_matched: last_matched.map(|t| t.parse().expect("time")),
            stale: false,
            private_registries: Vec::new(),
        }
    }

    #[test]
    fn an_automatic_cache_names_the_group_it_was_built_for() {
        assert_eq!(built_for("auto-create-for-eci-123"), Some("eci-123"));
        assert_eq!(built_for("auto-create-for-"), None);
        assert_eq!(built_for("web"), None);
    }

    #[test]
    fn idle_counts_from_the_last_match_or_the_making() {
        let never = entry("2026-01-01T00:00:00Z", None);
        assert_eq!(idle_since(&never), never.created);
        let used = entry("2026-01-01T00:00:00Z", Some("2026-01-05T00:00:00Z"));
        assert_eq!(
            idle_since(&used),
            "2026-01-05T00:00:00Z".parse::<Timestamp>().expect("time")
        );
    }

    #[test]
    fn the_object_adopts_the_cache_with_its_images_and_class() {
        let object = object_for(&entry("2026-01-01T00:00:00Z", None), Some("eu-1"));
        assert_eq!(object.name_any(), "auto-imc-auto1");
        assert_eq!(object.labels()[LABEL_AUTO_CREATED], "true");
        assert_eq!(object.labels()[LABEL_CLASS], "eu-1");
        assert_eq!(object.annotations()[ANNOTATION_CLOUD_ID], "imc-auto1");
        assert_eq!(object.spec.images, ["nginx:1.25"]);
        assert_eq!(object.spec.image_cache_size, DEFAULT_IMAGE_CACHE_SIZE_GIB);
        assert_eq!(object.spec.retention_days, None);
    }
}
