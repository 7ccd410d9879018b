//! Whether a Ready cache still holds what its references name: a tag pushed again points to
//! other content, and a pod started from the cache would run yesterday's image thinking it is
//! today's.
//!
//! # Expected flow (for a Ready cache, at most every [`Freshness::interval`])
//! 1. no images recorded for this cloud cache yet (just built, updated or adopted): each image
//!    is resolved at its registry with the cache's logins, protocols and platform, and
//!    `status.images` records its digest and size (the size rank of matching uses them);
//! 2. recorded: each tag is asked for its digest again (a HEAD); one that moved makes the cache
//!    `Stale` (condition and Warning event naming the image), and, with
//!    [`Freshness::refresh`], the cache is updated in the cloud (`UpdateImageCache` with the
//!    same images); its records are dropped so step 1 reads the new content once it is Ready.
//!
//! A registry that cannot be reached leaves everything as it was (logged); it never fails the
//! object, since the cache itself is fine.

use std::{sync::Arc, time::Duration};

use kube::{Resource, ResourceExt, runtime::events::EventType};

use super::{Context, ReconcileError, build::Build, cloud::update, publish};
use crate::{
    eci,
    imagecache::{
        digests::Access,
        pull_secrets,
        resource::{CONDITION_STALE, CachedImageStatus, ImageCache, ImageCacheStatus},
        status,
    },
};

/// How caches are checked against their registries.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// Time between two checks of one cache.
    pub interval: Duration,
    /// Update a stale cache in the cloud (else only mark it).
    pub refresh: bool,
    /// Extra CA certificates (PEM) the node trusts for registries.
    pub roots: Arc<Vec<Vec<u8>>>,
    /// Registries the node reaches over plain HTTP, besides a cache's own.
    pub plain_http: Vec<String>,
    /// Registries whose certificate the node does not verify, besides a cache's own.
    pub insecure: Vec<String>,
}

/// Checks `object`'s Ready cloud cache, writing what it finds into `next`.
///
/// # Errors
/// Only the refresh's `UpdateImageCache`; registry failures are logged and skipped.
pub(super) async fn check(
    object: &ImageCache,
    build: &Build,
    cloud: &eci::ImageCache,
    ctx: &Context,
    next: &mut ImageCacheStatus,
) -> Result<(), ReconcileError> {
    let Some(settings) = ctx.settings.freshness.as_ref() else {
        return Ok(());
    };
    let previous = object.status.as_ref();
    // The Stale condition holds for this cloud cache only.
    let carried = previous
        .filter(|p| p.image_cache_id.as_deref() == Some(cloud.image_cache_id.as_str()))
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == CONDITION_STALE))
        .map(|c| (c.status == "True", c.reason.clone(), c.message.clone()));
    if let Some((stale, reason, message)) = &carried {
        status::set_stale(
            next,
            Some((*stale, reason, message.clone())),
            previous,
            (ctx.clock)(),
        );
    }
    if cloud.status != eci::ImageCacheStatus::Ready {
        return Ok(());
    }
    let name = object.name_any();
    let now = tokio::time::Instant::now();
    let recorded = !next.images.is_empty()
        && next
            .images
            .iter()
            .map(|i| &i.reference)
            .eq(object.spec.images.iter());
    if recorded
        && ctx
            .freshness_checked
            .lock()
            .get(&name)
            .is_some_and(|at| now.duration_since(*at) < settings.interval)
    {
        return Ok(());
    }
    ctx.freshness_checked.lock().insert(name.clone(), now);
    let Ok(logins) = pull_secrets::resolve(
        &ctx.kube,
        &object.spec.image_pull_secrets,
        &object.spec.images,
    )
    .await
    else {
        // An unusable pull secret is reported by the build; nothing to check with.
        return Ok(());
    };
    // The registries the cache's pull secrets log into, read again at each check: a cache
    // made before the record existed, or whose status write was lost, is guarded too.
    let mut hosts: Vec<String> = logins
        .iter()
        .map(|l| crate::reference::registry_host(&l.server))
        .collect();
    hosts.sort();
    hosts.dedup();
    next.private_registries = hosts;
    let (mut plain_http, mut insecure) = build.registries();
    plain_http.extend(settings.plain_http.iter().cloned());
    insecure.extend(settings.insecure.iter().cloned());
    let access = Access {
        plain_http,
        insecure,
        roots: settings.roots.clone(),
        platform: build.platform(),
    };
    if !recorded {
        let mut images = Vec::with_capacity(object.spec.images.len());
        for image in &object.spec.images {
            match access.resolve(image, &logins).await {
                Ok(found) => images.push(CachedImageStatus {
                    reference: image.clone(),
                    platform_digest: (found.platform_digest != found.digest)
                        .then_some(found.platform_digest),
                    digest: found.digest,
                    size_bytes: i64::try_from(found.size).unwrap_or(i64::MAX),
                }),
                Err(error) => {
                    unreachable(ctx, &name, &error);
                    return Ok(());
                }
            }
        }
        next.images = images;
        ctx.registry_warned.lock().remove(&name);
        if carried.is_some() {
            mark_current(next, cloud, previous, ctx);
        }
        return Ok(());
    }
    let mut moved = Vec::new();
    for image in &next.images {
        match access.head(&image.reference, &logins).await {
            Ok(digest) if digest != image.digest => {
                moved.push(format!(
                    "{} now points to {digest} (cached {})",
                    image.reference, image.digest
                ));
            }
            Ok(_) => {}
            Err(error) => {
                unreachable(ctx, &name, &error);
                return Ok(());
            }
        }
    }
    ctx.registry_warned.lock().remove(&name);
    if moved.is_empty() {
        if carried.as_ref().is_some_and(|(stale, _, _)| *stale) {
            mark_current(next, cloud, previous, ctx);
        }
        return Ok(());
    }
    let message = moved.join("; ");
    let was_stale = carried.as_ref().is_some_and(|(stale, _, _)| *stale);
    let reason = if settings.refresh {
        "Refreshing"
    } else {
        "TagMoved"
    };
    status::set_stale(
        next,
        Some((true, reason, message.clone())),
        previous,
        (ctx.clock)(),
    );
    if !was_stale {
        publish(
            object,
            ctx,
            EventType::Warning,
            CONDITION_STALE,
            message.clone(),
            "CheckImageDigests",
        )
        .await;
    }
    if settings.refresh {
        // One token per new content: a retry after a crash is the same update, the next push
        // of the tag another.
        use sha2::Digest as _;
        let uid = object.uid().unwrap_or_default();
        let digest = hex::encode(sha2::Sha256::digest(message.as_bytes()));
        update(
            object,
            build,
            cloud,
            format!("{uid}-r{}", &digest[..16]),
            ctx,
        )
        .await?;
        // Read anew once the cloud has pulled them again.
        next.images.clear();
        tracing::info!(imagecache.name = %name, generation = ?object.meta().generation, "a tag moved; updating the cache");
    }
    Ok(())
}

/// Clears a `Stale` condition: the cache holds what its references name.
fn mark_current(
    next: &mut ImageCacheStatus,
    cloud: &eci::ImageCache,
    previous: Option<&ImageCacheStatus>,
    ctx: &Context,
) {
    let message = format!(
        "image cache {} holds what its references name",
        cloud.image_cache_id
    );
    status::set_stale(
        next,
        Some((false, "Current", message)),
        previous,
        (ctx.clock)(),
    );
}

/// A registry that did not answer: a warning the first time for the object (it repeats every
/// check until the registry answers, or the node is told how to reach it), then debug lines.
fn unreachable(ctx: &Context, name: &str, error: &crate::imagecache::digests::DigestError) {
    if ctx.registry_warned.lock().insert(name.to_owned()) {
        tracing::warn!(imagecache.name = %name, error = error as &dyn std::error::Error, "cannot read the cache's images at their registry (see --plain-http-registry, --insecure-registry, --registry-ca-file); its sizes, digests and staleness wait until it answers");
    } else {
        tracing::debug!(imagecache.name = %name, error = error as &dyn std::error::Error, "registry still unreachable");
    }
}
