//! CreateImageCache, DescribeImageCaches, UpdateImageCache, DeleteImageCache.

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::{Ctx, Outcome, page, render};
use crate::emulator::{
    driver::Work,
    error::ApiError,
    matching::{self, MatchFilter},
    params::Params,
    spec,
    state::{Cache, CacheStatus, Group, Store},
};

/// Most `MatchImage.N` (reference §3.3).
const MAX_MATCH_IMAGES: usize = 100;
/// `Limit` of DescribeImageCaches: the reference documents neither default nor maximum; the
/// emulator uses 20 by default (the example) and caps at 100.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

fn expiry(created: jiff::Timestamp, days: Option<i64>) -> Option<jiff::Timestamp> {
    days.and_then(|d| {
        created
            .saturating_add(SignedDuration::from_hours(d.saturating_mul(24)))
            .ok()
    })
}

fn find<'a>(store: &'a mut Store, region: &str, id: &str) -> Result<&'a mut Cache, ApiError> {
    store
        .caches
        .get_mut(id)
        .filter(|c| c.region_id == region)
        .ok_or_else(|| ApiError::not_found("image cache", id))
}

pub fn create(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let spec = spec::parse_cache(p)?;
    let used = store
        .caches
        .values()
        .filter(|c| c.region_id == ctx.region && !c.automatic)
        .count();
    if used >= ctx.core.settings.max_image_caches {
        // No documented code: `QuotaExceed.ImageCache` in the documented `QuotaExceed.*` style.
        return Err(ApiError::bad_request(
            "QuotaExceed.ImageCache",
            format!(
                "The image cache quota of {} is used up.",
                ctx.core.settings.max_image_caches
            ),
        ));
    }
    let id = ctx.core.ids.resource_id("imc");
    let builder = ctx.core.ids.resource_id("eci");
    let cache = Cache {
        id: id.clone(),
        region_id: ctx.region.to_owned(),
        status: CacheStatus::Preparing,
        progress: 0,
        snapshot_id: None,
        flash_snapshot_id: None,
        container_group_id: builder.clone(),
        creation_time: ctx.now,
        expire_date_time: expiry(ctx.now, spec.retention_days),
        last_matched_time: None,
        events: Vec::new(),
        image_sizes: std::collections::BTreeMap::new(),
        generation: 0,
        automatic: false,
        spec,
    };
    store.caches.insert(id.clone(), cache);
    Ok((
        json!({"ImageCacheId": id, "ContainerGroupId": builder}),
        vec![Work::BuildCache {
            id,
            generation: 0,
            update: false,
        }],
    ))
}

/// On an auto-match miss (when enabled): an automatic cache of the group's images, within the
/// automatic-cache quota, and the work that builds it.
pub fn create_automatic(ctx: &Ctx<'_>, store: &mut Store, group: &Group) -> Option<(String, Work)> {
    let settings = &ctx.core.settings;
    if !settings.auto_create_image_cache {
        return None;
    }
    let used = store
        .caches
        .values()
        .filter(|c| c.region_id == ctx.region && c.automatic)
        .count();
    let images = group.spec.images();
    if used >= settings.max_auto_image_caches || images.len() > spec::MAX_CACHE_IMAGES {
        return None;
    }
    // One automatic cache per set of images: groups created while it builds start without it
    // rather than each building another.
    let key = |images: &[String]| {
        images
            .iter()
            .map(|i| matching::normalize_image(i))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let wanted = key(&images);
    if store.caches.values().any(|c| {
        c.region_id == ctx.region
            && c.automatic
            && c.status != CacheStatus::Failed
            && key(&c.spec.images) == wanted
    }) {
        return None;
    }
    let id = ctx.core.ids.resource_id("imc");
    let cache = Cache {
        id: id.clone(),
        region_id: ctx.region.to_owned(),
        status: CacheStatus::Preparing,
        progress: 0,
        snapshot_id: None,
        flash_snapshot_id: None,
        container_group_id: group.id.clone(),
        creation_time: ctx.now,
        expire_date_time: None,
        last_matched_time: None,
        events: Vec::new(),
        image_sizes: std::collections::BTreeMap::new(),
        generation: 0,
        automatic: true,
        spec: spec::CacheSpec {
            name: format!("auto-create-for-{}", group.id),
            images,
            size_gib: spec::DEFAULT_CACHE_SIZE_GIB,
            credentials: group.spec.credentials.clone(),
            ..spec::CacheSpec::default()
        },
    };
    store.caches.insert(id.clone(), cache);
    let work = Work::BuildCache {
        id: id.clone(),
        generation: 0,
        update: false,
    };
    Some((id, work))
}

pub fn describe(ctx: &Ctx<'_>, store: &Store, p: &Params) -> Result<Value, ApiError> {
    let limit = page::limit(p, DEFAULT_LIMIT, MAX_LIMIT)?;
    let tags = spec::parse_tags(p)?;
    let match_images = p.strings("MatchImage")?;
    if match_images.len() > MAX_MATCH_IMAGES {
        return Err(ApiError::invalid(
            "MatchImage",
            format!("at most {MAX_MATCH_IMAGES} images"),
        ));
    }
    let at_least = p
        .int("ImageMatchCountRequest")?
        .map(|n| {
            usize::try_from(n)
                .map_err(|_| ApiError::invalid("ImageMatchCountRequest", "must not be negative"))
        })
        .transpose()?;
    let filter = MatchFilter {
        full: p.bool("ImageFullMatch")?.unwrap_or(false),
        at_least,
    };
    let same = |want: Option<&str>, have: &str| want.is_none_or(|w| w == have);
    let image = p.get("Image").map(matching::normalize_image);
    let selected = store
        .caches
        .values()
        .filter(|c| c.region_id == ctx.region)
        .filter(|c| same(p.get("ImageCacheId"), &c.id))
        .filter(|c| same(p.get("ImageCacheName"), &c.spec.name))
        .filter(|c| {
            same(
                p.get("SnapshotId"),
                c.snapshot_id.as_deref().unwrap_or_default(),
            )
        })
        .filter(|c| same(p.get("ResourceGroupId"), &c.spec.resource_group_id))
        .filter(|c| spec::tags_match(&c.spec.tags, &tags))
        .filter(|c| {
            image.as_ref().is_none_or(|i| {
                c.spec
                    .images
                    .iter()
                    .any(|ci| matching::normalize_image(ci) == *i)
            })
        });
    let (items, next, total) = if match_images.is_empty() {
        let all: Vec<&Cache> = selected.collect();
        let total = all.len();
        let (items, next) = page::page(
            all,
            |c| page::time_key(c.creation_time, &c.id),
            p.get("NextToken"),
            limit,
        )?;
        (items, next, total)
    } else {
        // Best match first: only usable caches that hold at least one of the images.
        let ranked: Vec<(usize, &Cache)> = matching::rank(selected, &match_images, filter, ctx.now)
            .into_iter()
            .map(|(c, _)| c)
            .enumerate()
            .collect();
        let total = ranked.len();
        let (items, next) = page::page(
            ranked,
            |(i, _)| format!("{i:08}"),
            p.get("NextToken"),
            limit,
        )?;
        (items.into_iter().map(|(_, c)| c).collect(), next, total)
    };
    Ok(json!({
        "TotalCount": total,
        "NextToken": next,
        "ImageCaches": items.iter().map(|c| render::cache(c)).collect::<Vec<_>>(),
    }))
}

pub fn update(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let id = p.required("ImageCacheId")?;
    let cache = find(store, ctx.region, id)?;
    if !cache.status.allows_update() {
        return Err(ApiError::incorrect_status(
            "image cache",
            id,
            cache.status.as_str(),
            "an update",
        ));
    }
    let next = spec::apply_cache_update(&cache.spec, p)?;
    cache.expire_date_time = expiry(cache.creation_time, next.retention_days);
    cache.spec = next;
    cache.generation += 1;
    cache.status = CacheStatus::Updating;
    cache.progress = 0;
    cache.event("Normal", "Updating", "Updating image cache.", ctx.now);
    Ok((
        json!({}),
        vec![Work::BuildCache {
            id: id.to_owned(),
            generation: cache.generation,
            update: true,
        }],
    ))
}

pub fn delete(ctx: &Ctx<'_>, store: &mut Store, p: &Params) -> Result<Outcome, ApiError> {
    let id = p.required("ImageCacheId")?;
    find(store, ctx.region, id)?;
    let cache = store.caches.remove(id);
    let work = cache
        .and_then(|c| c.snapshot_id)
        .map(|snapshot_id| Work::DeleteSnapshot { snapshot_id })
        .into_iter()
        .collect();
    Ok((json!({}), work))
}
