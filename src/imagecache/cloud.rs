//! The account's image caches as the cloud lists them (`DescribeImageCaches`), for the caches
//! no `ImageCache` object of this cluster names: ECI accepts any Ready cache of the account in
//! the region, whoever made it ("Use an image cache to accelerate ECI instance creation",
//! https://help.aliyun.com/en/eci/user-guide/use-the-image-cache-feature-to-accelerate-the-creation-of-an-elastic-container-instance).
//!
//! - [`follow`] lists them every [`CloudSettings::list_interval`] (at most
//!   [`MAX_LIST_PAGES`] pages of [`PAGE_SIZE`] each time, so the calls per minute are bounded
//!   whatever the account holds) into the index;
//! - [`look_up`] asks for one id a pod names that the index does not know, at most once per
//!   [`CloudSettings::lookup_ttl`].
//!
//! Caches tagged as made by this cluster are left out: their objects speak for them (an
//! object of another class, or one being deleted, must not be matched here).

use std::{future::Future, time::Duration};

use jiff::Timestamp;

use super::{
    index::CacheIndexHandle,
    matcher::{CacheEntry, CachedImage, Origin},
};
use crate::eci;

/// Page size of the list (the largest ECI takes).
pub const PAGE_SIZE: u32 = 100;
/// Pages read per list: 1,000 caches, far above ECI's quotas.
pub const MAX_LIST_PAGES: usize = 10;
/// Name prefix of the caches ECI creates on an automatic-match miss (ECI's naming, as seen
/// in accounts that use automatic matching).
pub const AUTO_CREATED_PREFIX: &str = "auto-create-for-";

/// How the cloud is read.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// This cluster's name, as in the caches' [`eci::tag::CLUSTER`] tag.
    pub cluster_name: String,
    /// Time between two lists of the account's caches.
    pub list_interval: Duration,
    /// Time before an id a pod names is asked of the cloud again.
    pub lookup_ttl: Duration,
}

impl Default for CloudSettings {
    fn default() -> Self {
        Self {
            cluster_name: "default".into(),
            list_interval: Duration::from_secs(60),
            lookup_ttl: Duration::from_secs(10),
        }
    }
}

/// The matcher's view of a cache the cloud described.
pub fn cloud_entry(cache: &eci::ImageCache) -> CacheEntry {
    let time = |s: &str| s.parse::<Timestamp>().ok();
    CacheEntry {
        id: cache.image_cache_id.clone(),
        name: cache.image_cache_name.clone(),
        phase: cache.status.as_str().to_owned(),
        expires: time(&cache.expire_date_time),
        created: time(&cache.creation_time).unwrap_or(Timestamp::UNIX_EPOCH),
        images: cache
            .images
            .iter()
            .map(|reference| CachedImage {
                reference: reference.clone(),
                ..CachedImage::default()
            })
            .collect(),
        size_gib: u64::try_from(cache.image_cache_size).unwrap_or(0),
        origin: Origin::Cloud,
        last_matched: time(&cache.last_matched_time),
        stale: false,
        // ECI does not say which logins a cache was built with: the account's caches made
        // elsewhere are matched as ECI matches them.
        private_registries: Vec::new(),
    }
}

/// Whether ECI made the cache on an automatic-match miss.
pub fn is_auto_created(name: &str) -> bool {
    name.starts_with(AUTO_CREATED_PREFIX)
}

/// Whether this cluster's reconciler made the cache (either tag spelling).
fn made_here(cache: &eci::ImageCache, cluster: &str) -> bool {
    cache.tags.iter().any(|t| {
        (t.key == eci::tag::CLUSTER || t.key == eci::tag::LEGACY_CACHE_CLUSTER)
            && t.value == cluster
    })
}

/// The account's caches in the region that this cluster did not make, at most
/// [`MAX_LIST_PAGES`] pages, and whether that was all of them.
///
/// # Errors
/// The first failing page's error.
pub async fn list(eci: &eci::Client, cluster: &str) -> Result<(Vec<CacheEntry>, bool), eci::Error> {
    let mut request = eci::DescribeImageCaches {
        limit: Some(PAGE_SIZE),
        ..eci::DescribeImageCaches::default()
    };
    let mut entries = Vec::new();
    for _ in 0..MAX_LIST_PAGES {
        let page = eci.describe_image_caches(&request).await?;
        entries.extend(
            page.image_caches
                .iter()
                .filter(|c| !made_here(c, cluster))
                .map(cloud_entry),
        );
        if page.next_token.is_empty() || request.next_token.as_deref() == Some(&page.next_token) {
            return Ok((entries, true));
        }
        request.next_token = Some(page.next_token);
    }
    tracing::warn!(
        pages = MAX_LIST_PAGES,
        "the account holds more image caches than one list reads; the rest are not candidates"
    );
    Ok((entries, false))
}

/// Keeps the index's cloud caches current until `shutdown`. A failed list keeps the last one
/// and is tried again at the next interval.
pub async fn follow(
    eci: eci::Client,
    index: CacheIndexHandle,
    settings: CloudSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        match list(&eci, &settings.cluster_name).await {
            Ok((entries, complete)) => {
                tracing::debug!(caches = entries.len(), "listed the account's image caches");
                index.replace_cloud_listed(entries, complete);
            }
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot list the account's image caches; keeping the last list"
            ),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(settings.list_interval) => {}
        }
    }
}

/// Asks the cloud for cache `id` (one a pod names that the index does not know) and adds it to
/// the index when it exists; asks at most once per `ttl` for one id.
///
/// # Errors
/// The describe's error; the caller retries the pod later.
pub async fn look_up(
    eci: &eci::Client,
    index: &CacheIndexHandle,
    id: &str,
    ttl: Duration,
) -> Result<(), eci::Error> {
    if index.asked_recently(id, ttl) {
        return Ok(());
    }
    let found = match eci
        .describe_image_caches(&eci::DescribeImageCaches {
            image_cache_id: Some(id.to_owned()),
            ..eci::DescribeImageCaches::default()
        })
        .await
    {
        Ok(found) => found,
        Err(error) => {
            index.forget_asked(id);
            return Err(error);
        }
    };
    if let Some(cache) = found.image_caches.iter().find(|c| c.image_cache_id == id) {
        index.upsert_cloud(cloud_entry(cache));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(id: &str, name: &str, tags: &[(&str, &str)]) -> eci::ImageCache {
        eci::ImageCache {
            image_cache_id: id.into(),
            image_cache_name: name.into(),
            image_cache_size: 40,
            images: vec!["nginx:1.25".into()],
            status: eci::ImageCacheStatus::Ready,
            creation_time: "2026-01-01T00:00:00Z".into(),
            last_matched_time: "2026-01-02T00:00:00Z".into(),
            tags: tags.iter().map(|(k, v)| eci::Tag::new(*k, *v)).collect(),
            ..eci::ImageCache::default()
        }
    }

    #[test]
    fn a_described_cache_becomes_a_cloud_candidate() {
        let entry = cloud_entry(&described("imc-1", "from-console", &[]));
        assert_eq!(entry.origin, Origin::Cloud);
        assert_eq!(entry.size_gib, 40);
        assert!(entry.is_ready());
        assert_eq!(entry.expires, None);
        assert_eq!(
            entry.last_matched,
            Some("2026-01-02T00:00:00Z".parse().expect("time"))
        );
        assert!(is_auto_created("auto-create-for-eci-abc"));
        assert!(!is_auto_created("web"));
    }

    #[test]
    fn caches_of_this_cluster_speak_through_their_objects() {
        let ours = described("imc-1", "web", &[(eci::tag::CLUSTER, "prod")]);
        let legacy = described("imc-2", "web", &[(eci::tag::LEGACY_CACHE_CLUSTER, "prod")]);
        let theirs = described("imc-3", "web", &[(eci::tag::CLUSTER, "staging")]);
        assert!(made_here(&ours, "prod"));
        assert!(made_here(&legacy, "prod"));
        assert!(!made_here(&theirs, "prod"));
    }
}
