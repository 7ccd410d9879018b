//! The reconciler's calls to ECI: finding the cloud cache of an object (by id, else by tags),
//! deciding whether it matches the spec, and creating, updating and deleting it with the
//! object's registry logins, tags and ClientTokens.

use jiff::{SignedDuration, Timestamp};
use kube::{Resource, ResourceExt, runtime::events::EventType};

use super::{
    Context, ReconcileError, TAG_CLUSTER, TAG_OBJECT, TAG_UID, build::Build, publish, write_status,
};
use crate::{
    eci::{self, Tag},
    imagecache::{
        pull_secrets,
        resource::{ImageCache, ImageCacheSpec},
        status,
    },
    reference::{image_key, registry_host},
};

/// The value of the [`TAG_OBJECT`] tag: the object's name, or for a name longer than the 128
/// characters a tag value may have, its first 111 characters, `-` and 16 hex digits of its
/// SHA-256 (unique in practice, and the same on every call).
pub fn object_tag_value(name: &str) -> String {
    const MAX: usize = 128;
    if name.len() <= MAX {
        return name.to_owned();
    }
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    // Object names are ASCII (DNS subdomains), so byte 111 is a character boundary.
    let head: String = name.chars().take(MAX - 17).collect();
    format!("{head}-{}", &digest[..16])
}

pub(super) fn uid_of(object: &ImageCache) -> Result<String, ReconcileError> {
    object.uid().ok_or_else(|| ReconcileError::MissingUid {
        name: object.name_any(),
    })
}

pub(super) fn cloud_error(
    name: &str,
    action: &'static str,
) -> impl FnOnce(eci::Error) -> ReconcileError {
    let name = name.to_owned();
    move |source| ReconcileError::Cloud {
        name,
        action,
        source: Box::new(source),
    }
}

/// Finds the cloud cache of `object`: by the id in its status, else the one it adopts
/// ([`super::ANNOTATION_CLOUD_ID`]), else by its tags.
pub(super) async fn find_cloud(
    object: &ImageCache,
    ctx: &Context,
) -> Result<Option<eci::ImageCache>, ReconcileError> {
    let name = object.name_any();
    let known = object
        .status
        .as_ref()
        .and_then(|s| s.image_cache_id.clone())
        .filter(|id| !id.is_empty());
    // An object made for a cache that already exists names it: that cache or none, never
    // one built anew.
    let adopted = annotation(object, super::ANNOTATION_CLOUD_ID).filter(|id| !id.is_empty());
    // The shared listing answers for every cache of this cluster (see [`super::view`]); a cache
    // it lacks (adopted from outside the cluster, or gone) is asked about by its id.
    let listing = ctx
        .view
        .listing(&ctx.eci)
        .await
        .map_err(cloud_error(&name, "DescribeImageCaches"))?;
    if let Some(id) = known.or_else(|| adopted.clone()) {
        if let Some(cache) = listing.by_id(&id) {
            return Ok(Some(cache.clone()));
        }
        if let Some(cache) = by_id(ctx, &name, &id).await? {
            return Ok(Some(cache));
        }
    }
    if adopted.is_some() {
        return Ok(None);
    }
    // Both spellings: a cache made by the previous release is adopted, not made twice.
    Ok(pick_adopted(
        listing.of_object(&name),
        &object.uid().unwrap_or_default(),
    ))
}

/// The cloud cache with `id`, asked about by itself: after a write of this reconcile, which a
/// shared listing may predate, or for a cache the listing does not hold.
pub(super) async fn by_id(
    ctx: &Context,
    name: &str,
    id: &str,
) -> Result<Option<eci::ImageCache>, ReconcileError> {
    let found = ctx
        .eci
        .describe_image_caches(&eci::DescribeImageCaches {
            image_cache_id: Some(id.to_owned()),
            ..eci::DescribeImageCaches::default()
        })
        .await
        .map_err(cloud_error(name, "DescribeImageCaches"))?;
    Ok(found
        .image_caches
        .into_iter()
        .find(|c| c.image_cache_id == id))
}

/// Every cloud cache tagged for object `name` (and for `uid`, when given) in this cluster, in
/// either tag spelling, each once.
pub(super) async fn owned_caches(
    ctx: &Context,
    name: &str,
    uid: Option<&str>,
) -> Result<Vec<eci::ImageCache>, ReconcileError> {
    let mut owned: Vec<eci::ImageCache> = Vec::new();
    for tags in owner_filters(&ctx.settings.cluster_name, name, uid) {
        let found = ctx
            .eci
            .describe_all_image_caches(&eci::DescribeImageCaches {
                tags,
                ..eci::DescribeImageCaches::default()
            })
            .await
            .map_err(cloud_error(name, "DescribeImageCaches"))?;
        for cache in found {
            if !owned
                .iter()
                .any(|c| c.image_cache_id == cache.image_cache_id)
            {
                owned.push(cache);
            }
        }
    }
    Ok(owned)
}

/// The tag filters that find the cloud caches of object `name` in `cluster` (and of `uid`, when
/// given): the current spelling first, then the previous release's ([`eci::tag`]'s `LEGACY_*`).
pub(super) fn owner_filters(cluster: &str, name: &str, uid: Option<&str>) -> [Vec<Tag>; 2] {
    let object = object_tag_value(name);
    let filter = |cluster_key: &str, object_key: &str, uid_key: &str| {
        let mut tags = vec![
            Tag::new(cluster_key, cluster),
            Tag::new(object_key, object.as_str()),
        ];
        if let Some(uid) = uid {
            tags.push(Tag::new(uid_key, uid));
        }
        tags
    };
    [
        filter(TAG_CLUSTER, TAG_OBJECT, TAG_UID),
        filter(
            eci::tag::LEGACY_CACHE_CLUSTER,
            eci::tag::LEGACY_CACHE_OBJECT,
            eci::tag::LEGACY_CACHE_UID,
        ),
    ]
}

/// The cache to adopt among those tagged for the object: the one made for this very object
/// (its UID, in either spelling), then the newest.
pub(super) fn pick_adopted(tagged: Vec<eci::ImageCache>, uid: &str) -> Option<eci::ImageCache> {
    tagged.into_iter().max_by_key(|c| {
        (
            c.tags.iter().any(|t| {
                (t.key == TAG_UID || t.key == eci::tag::LEGACY_CACHE_UID) && t.value == uid
            }),
            c.creation_time.clone(),
        )
    })
}

/// The tags a new cloud cache gets: the current spelling only.
pub(super) fn creation_tags(cluster: &str, name: &str, uid: &str) -> Vec<Tag> {
    vec![
        Tag::new(TAG_CLUSTER, cluster),
        Tag::new(TAG_OBJECT, object_tag_value(name)),
        Tag::new(TAG_UID, uid),
    ]
}

/// Whether the cloud cache holds what the spec asks for.
pub(super) fn in_sync(spec: &ImageCacheSpec, cloud: &eci::ImageCache) -> bool {
    let mut want: Vec<String> = spec.images.iter().map(|i| image_key(i)).collect();
    let mut have: Vec<String> = cloud.images.iter().map(|i| image_key(i)).collect();
    want.sort();
    want.dedup();
    have.sort();
    have.dedup();
    let expiry = |days: i64| {
        cloud.creation_time.parse::<Timestamp>().ok().and_then(|t| {
            t.checked_add(SignedDuration::from_hours(days.saturating_mul(24)))
                .ok()
        })
    };
    // A failed build expires a day after the failure, whatever the retention.
    let retention_ok = cloud.status == eci::ImageCacheStatus::Failed
        || match spec.retention_days {
            Some(days) => cloud.expire_date_time.parse::<Timestamp>().ok() == expiry(days),
            None => cloud.expire_date_time.is_empty(),
        };
    want == have && cloud.image_cache_size == spec.image_cache_size && retention_ok
}

pub(super) fn size_and_retention(
    object: &ImageCache,
) -> Result<(u32, Option<u32>), ReconcileError> {
    let name = object.name_any();
    let spec = &object.spec;
    let size = u32::try_from(spec.image_cache_size).map_err(|_| ReconcileError::OutOfRange {
        name: name.clone(),
        field: "imageCacheSize",
        value: spec.image_cache_size,
    })?;
    let retention = spec
        .retention_days
        .map(|d| {
            u32::try_from(d).map_err(|_| ReconcileError::OutOfRange {
                name: name.clone(),
                field: "retentionDays",
                value: d,
            })
        })
        .transpose()?;
    Ok((size, retention))
}

/// Resolves pull secrets; on failure marks the object Failed and publishes an Event naming the
/// Secret, then returns the error so the retry backs off.
pub(super) async fn credentials(
    object: &ImageCache,
    ctx: &Context,
) -> Result<Vec<eci::ImageRegistryCredential>, ReconcileError> {
    let name = object.name_any();
    match pull_secrets::resolve(
        &ctx.kube,
        &object.spec.image_pull_secrets,
        &object.spec.images,
    )
    .await
    {
        Ok(credentials) => {
            // The registries this build logs into: the status names them, so pods without a
            // login of their own for them do not start from it.
            let mut hosts: Vec<String> = credentials
                .iter()
                .map(|c| registry_host(&c.server))
                .collect();
            hosts.sort();
            hosts.dedup();
            ctx.logged_in.lock().insert(name, hosts);
            Ok(credentials)
        }
        Err(source) => {
            let message = source.to_string();
            let failed = status::failed(
                "PullSecretFailed",
                message.clone(),
                object.meta().generation,
                object.status.as_ref(),
                (ctx.clock)(),
            );
            write_status(object, &failed, ctx).await?;
            publish(
                object,
                ctx,
                EventType::Warning,
                "PullSecretFailed",
                message,
                "ResolvePullSecrets",
            )
            .await;
            Err(ReconcileError::PullSecret { name, source })
        }
    }
}

pub(super) fn annotation(object: &ImageCache, key: &str) -> Option<String> {
    object
        .annotations()
        .get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `ClientToken` of CreateImageCache: the same for every attempt at one cloud cache (a
/// retry after a crash gets the same cache back), different once that cache is gone — a
/// failed build being replaced or a cache deleted behind our back — so the cloud does not
/// answer with the old, deleted id. At most 61 characters (ECI allows 64).
pub(super) fn create_token(object: &ImageCache, uid: &str) -> String {
    match object
        .status
        .as_ref()
        .and_then(|s| s.image_cache_id.as_deref())
        .filter(|id| !id.is_empty())
    {
        Some(previous) => format!("{uid}-{previous}"),
        None => format!("{uid}-g{}", object.meta().generation.unwrap_or(0)),
    }
}

pub(super) async fn create(
    object: &ImageCache,
    build: &Build,
    ctx: &Context,
) -> Result<String, ReconcileError> {
    let name = object.name_any();
    let uid = uid_of(object)?;
    let (size, retention) = size_and_retention(object)?;
    let credentials = credentials(object, ctx).await?;
    let mut tags = creation_tags(&ctx.settings.cluster_name, &name, &uid);
    tags.push(build.tag());
    let mut request = eci::CreateImageCache {
        image_cache_name: name.clone(),
        images: object.spec.images.clone(),
        image_cache_size: Some(size),
        retention_days: retention,
        image_registry_credentials: credentials,
        tags,
        client_token: Some(create_token(object, &uid)),
        ..eci::CreateImageCache::default()
    };
    build.create(&mut request);
    let created = ctx
        .eci
        .create_image_cache(&request)
        .await
        .map_err(cloud_error(&name, "CreateImageCache"))?;
    tracing::info!(imagecache.name = %name, imagecache.id = %created.image_cache_id, "created cloud image cache");
    publish(
        object,
        ctx,
        EventType::Normal,
        "Creating",
        format!("Creating image cache {}", created.image_cache_id),
        "CreateImageCache",
    )
    .await;
    Ok(created.image_cache_id)
}

/// `UpdateImageCache` to the object's spec and build settings; `token` makes retries of one
/// update one update ([`update_token`] for a changed spec).
pub(super) async fn update(
    object: &ImageCache,
    build: &Build,
    cloud: &eci::ImageCache,
    token: String,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let name = object.name_any();
    let (size, retention) = size_and_retention(object)?;
    let credentials = credentials(object, ctx).await?;
    let mut request = eci::UpdateImageCache {
        image_cache_id: cloud.image_cache_id.clone(),
        images: object.spec.images.clone(),
        image_cache_size: Some(size),
        retention_days: retention,
        image_registry_credentials: credentials,
        client_token: Some(token),
        ..eci::UpdateImageCache::default()
    };
    build.update(&mut request);
    ctx.eci
        .update_image_cache(&request)
        .await
        .map_err(cloud_error(&name, "UpdateImageCache"))?;
    tracing::info!(imagecache.name = %name, imagecache.id = %cloud.image_cache_id, "updating cloud image cache");
    publish(
        object,
        ctx,
        EventType::Normal,
        "Updating",
        format!("Updating image cache {}", cloud.image_cache_id),
        "UpdateImageCache",
    )
    .await;
    Ok(())
}

/// The `ClientToken` of the update to the object's current spec: `<uid>-u<generation>`.
pub(super) fn update_token(object: &ImageCache) -> Result<String, ReconcileError> {
    let uid = uid_of(object)?;
    Ok(format!("{uid}-u{}", object.meta().generation.unwrap_or(0)))
}

pub(super) async fn delete_cloud(
    name: &str,
    id: &str,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    match ctx
        .eci
        .delete_image_cache(&eci::DeleteImageCache {
            image_cache_id: id.to_owned(),
            client_token: None,
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some("InvalidParameter.NotFound") => Ok(()),
        Err(error) => Err(cloud_error(name, "DeleteImageCache")(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagecache::ImageCacheStatus;

    fn spec(images: &[&str], retention: Option<i64>) -> ImageCacheSpec {
        ImageCacheSpec {
            images: images.iter().map(|s| (*s).to_owned()).collect(),
            image_pull_secrets: Vec::new(),
            image_cache_size: 20,
            retention_days: retention,
        }
    }

    fn cloud(images: &[&str], expire: &str) -> eci::ImageCache {
        eci::ImageCache {
            image_cache_id: "imc-1".into(),
            images: images.iter().map(|s| (*s).to_owned()).collect(),
            image_cache_size: 20,
            status: eci::ImageCacheStatus::Ready,
            creation_time: "2026-01-01T00:00:00Z".into(),
            expire_date_time: expire.into(),
            ..eci::ImageCache::default()
        }
    }

    #[test]
    fn object_tags_fit_ecis_value_limit() {
        assert_eq!(object_tag_value("imagecache-sample"), "imagecache-sample");
        let long = "a".repeat(200);
        let value = object_tag_value(&long);
        assert_eq!(value.len(), 128);
        assert_eq!(value, object_tag_value(&long));
        assert_ne!(value, object_tag_value(&"a".repeat(201)));
        assert_eq!(object_tag_value(&"b".repeat(128)), "b".repeat(128));
    }

    /// Whether a service filtering by `filter` (every tag must be on the cache) returns `cache`.
    fn selects(filter: &[Tag], cache: &eci::ImageCache) -> bool {
        filter.iter().all(|t| cache.tags.contains(t))
    }

    #[test]
    fn caches_of_the_previous_release_are_found_and_adopted() {
        let uid = "e83a1c53-f663-11e9-a0d4-fa13fc175b32";
        let mut legacy = cloud(&["nginx"], "");
        legacy.image_cache_id = "imc-legacy".into();
        legacy.tags = vec![
            Tag::new("eci-vk.cluster", "c1"),
            Tag::new("eci-vk.imagecache", "web"),
            Tag::new("eci-vk.uid", uid),
        ];
        // Found when adopting (by cluster and object) and when cleaning up (with the UID).
        assert!(
            owner_filters("c1", "web", None)
                .iter()
                .any(|f| selects(f, &legacy))
        );
        assert!(
            owner_filters("c1", "web", Some(uid))
                .iter()
                .any(|f| selects(f, &legacy))
        );
        assert!(
            !owner_filters("c2", "web", None)
                .iter()
                .any(|f| selects(f, &legacy))
        );
        // Made for this very object, it beats a newer cache of another object by that name.
        let mut newer = cloud(&["nginx"], "");
        newer.image_cache_id = "imc-newer".into();
        newer.creation_time = "2026-06-01T00:00:00Z".into();
        newer.tags = creation_tags("c1", "web", "another-uid");
        let adopted = pick_adopted(vec![newer, legacy], uid).expect("one is adopted");
        assert_eq!(adopted.image_cache_id, "imc-legacy");
    }

    #[test]
    fn new_caches_get_only_the_new_spelling() {
        let tags = creation_tags("c1", "web", "u1");
        assert_eq!(
            tags,
            [
                Tag::new("eci-vk.io/cluster", "c1"),
                Tag::new("eci-vk.io/imagecache", "web"),
                Tag::new("eci-vk.io/uid", "u1"),
            ]
        );
        let mut made = cloud(&["nginx"], "");
        made.tags = tags;
        assert!(selects(&owner_filters("c1", "web", Some("u1"))[0], &made));
    }

    #[test]
    fn create_tokens_stay_within_ecis_limit_and_change_with_the_cache_replaced() {
        let uid = "e83a1c53-f663-11e9-a0d4-fa13fc175b32";
        let mut object = ImageCache::new("x", spec(&["nginx"], None));
        object.metadata.generation = Some(3);
        assert_eq!(create_token(&object, uid), format!("{uid}-g3"));
        object.status = Some(ImageCacheStatus {
            image_cache_id: Some("imc-2zeditzeoemfhqor4rf8".into()),
            ..ImageCacheStatus::default()
        });
        let token = create_token(&object, uid);
        assert_eq!(token, format!("{uid}-imc-2zeditzeoemfhqor4rf8"));
        assert!(token.len() <= 64 && token.is_ascii());
    }

    #[test]
    fn sync_compares_normalised_images_size_and_retention() {
        let c = cloud(
            &["docker.io/library/nginx:latest", "busybox"],
            "2026-01-08T00:00:00Z",
        );
        assert!(in_sync(&spec(&["busybox:latest", "nginx"], Some(7)), &c));
        assert!(!in_sync(&spec(&["nginx"], Some(7)), &c));
        assert!(!in_sync(&spec(&["nginx", "busybox"], Some(8)), &c));
        assert!(!in_sync(&spec(&["nginx", "busybox"], None), &c));
        let mut bigger = spec(&["nginx", "busybox"], Some(7));
        bigger.image_cache_size = 40;
        assert!(!in_sync(&bigger, &c));
        let forever = cloud(&["nginx"], "");
        assert!(in_sync(&spec(&["nginx"], None), &forever));
        let mut failed = cloud(&["nginx"], "2026-01-02T00:00:00Z");
        failed.status = eci::ImageCacheStatus::Failed;
        assert!(in_sync(&spec(&["nginx"], Some(7)), &failed));
        assert!(!in_sync(&spec(&["redis"], Some(7)), &failed));
    }
}
