//! One listing of the cluster's cloud caches answers every reconcile that waits on it.
//!
//! Each reconcile used to ask ECI about its own cache: two `DescribeImageCaches` by tags (both
//! spellings) for a new object, one after the create, and one per poll — 8.4 a cache when 200
//! were built at once, which the read quota (2,000 a minute) then paced (issue #21). A
//! reconcile now reads the cache from a [`CloudView`]: one paged listing of every cache tagged
//! for this cluster, in either tag spelling, shared by every reconcile that asks while it is
//! fresh. `DescribeImageCaches` filters by one `ImageCacheId` at most (reference §3.3; D-DIC,
//! <https://help.aliyun.com/document_detail/146894.html>), so a batch is a listing by the
//! cluster's tag, in pages of [`PAGE_SIZE`], the most the emulator answers.
//!
//! A listing is fresh for [`CloudView::MAX_AGE`] after it started, shorter than the poll
//! interval, so a cache polled after its own create or update always reads a listing that
//! started after that write. One reconcile lists at a time; the others wait for it and take
//! its answer (single flight).

use std::{sync::Arc, time::Duration};

use tokio::{sync::Mutex, time::Instant};

use super::{TAG_CLUSTER, object_tag_value};
use crate::{
    eci::{self, Tag},
    imagecache::cloud::PAGE_SIZE,
};

/// Every cloud cache of this cluster, as one listing found them.
#[derive(Debug, Default)]
pub(super) struct Listing {
    caches: Vec<eci::ImageCache>,
}

impl Listing {
    /// The cache with this id, when the listing holds it.
    pub(super) fn by_id(&self, id: &str) -> Option<&eci::ImageCache> {
        self.caches.iter().find(|c| c.image_cache_id == id)
    }

    /// The caches tagged for object `name`, in either tag spelling.
    pub(super) fn of_object(&self, name: &str) -> Vec<eci::ImageCache> {
        let value = object_tag_value(name);
        self.caches
            .iter()
            .filter(|c| {
                c.tags.iter().any(|t| {
                    (t.key == super::TAG_OBJECT || t.key == eci::tag::LEGACY_CACHE_OBJECT)
                        && t.value == value
                })
            })
            .cloned()
            .collect()
    }
}

/// The shared, short-lived listing of the cluster's cloud caches.
pub(super) struct CloudView {
    cluster: String,
    /// The last listing and when it started; locked while a listing runs, so callers that
    /// arrive meanwhile wait for it instead of starting their own.
    last: Mutex<Option<(Instant, Arc<Listing>)>>,
}

impl CloudView {
    /// How long a listing answers reconciles after it started: well under the 5 s poll, so a
    /// poll never reads a listing older than the reconcile that wrote before it.
    pub(super) const MAX_AGE: Duration = Duration::from_secs(1);

    pub(super) fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            last: Mutex::new(None),
        }
    }

    /// A listing that started no more than [`Self::MAX_AGE`] before this call, listing anew
    /// when there is none.
    ///
    /// # Errors
    /// The first failing page's error; the next caller lists again.
    pub(super) async fn listing(&self, eci: &eci::Client) -> Result<Arc<Listing>, eci::Error> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, listing)) = last.as_ref()
            && started
                .checked_add(Self::MAX_AGE)
                .is_some_and(|t| t >= asked)
        {
            return Ok(listing.clone());
        }
        let started = Instant::now();
        let mut caches: Vec<eci::ImageCache> = Vec::new();
        for key in [TAG_CLUSTER, eci::tag::LEGACY_CACHE_CLUSTER] {
            let found = eci
                .describe_all_image_caches(&eci::DescribeImageCaches {
                    tags: vec![Tag::new(key, self.cluster.as_str())],
                    limit: Some(PAGE_SIZE),
                    ..eci::DescribeImageCaches::default()
                })
                .await?;
            for cache in found {
                if !caches
                    .iter()
                    .any(|c| c.image_cache_id == cache.image_cache_id)
                {
                    caches.push(cache);
                }
            }
        }
        let listing = Arc::new(Listing { caches });
        *last = Some((started, listing.clone()));
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(id: &str, tags: &[(&str, &str)]) -> eci::ImageCache {
        eci::ImageCache {
            image_cache_id: id.to_owned(),
            tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
            ..eci::ImageCache::default()
        }
    }

    #[test]
    fn a_listing_finds_an_object_s_caches_in_either_spelling() {
        let listing = Listing {
            caches: vec![
                cache("imc-new", &[(super::super::TAG_OBJECT, "web")]),
                cache("imc-old", &[(eci::tag::LEGACY_CACHE_OBJECT, "web")]),
                cache("imc-other", &[(super::super::TAG_OBJECT, "api")]),
            ],
        };
        let mut ids: Vec<String> = listing
            .of_object("web")
            .into_iter()
            .map(|c| c.image_cache_id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["imc-new", "imc-old"]);
        assert!(listing.by_id("imc-other").is_some());
        assert!(listing.by_id("imc-gone").is_none());
    }
}
