//! The node's in-memory index of caches for the matcher, fed by the controller's watch of
//! `ImageCache` objects (each event updates only the cache it names; a relist replaces all)
//! and by the cloud's own list of caches ([`super::cloud`]): a cache of the account that no
//! object names (made in the console, through the API, by another cluster, or by ECI on an
//! automatic-match miss) is a candidate too, as ECI would take it. An object's entry wins over
//! the cloud's for the same id. Every replica keeps one, whether or not it reconciles.

use std::{collections::HashMap, sync::Arc};

use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use parking_lot::RwLock;

use super::{
    matcher::{CacheEntry, CacheIndex, CachedImage, Origin},
    resource::{CONDITION_STALE, ImageCache},
};

/// A cache entry for an object that names its cloud cache; `None` before it has one.
///
/// Image sizes and digests are those the node read from the registries into `status.images`
/// (ECI reports neither); 0 and none until then, so the bytes tie-break falls through to the
/// creation time.
pub fn entry_of(object: &ImageCache) -> Option<CacheEntry> {
    let status = object.status.as_ref()?;
    let id = status.image_cache_id.clone().filter(|id| !id.is_empty())?;
    let created = status
        .start_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| object.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Some(CacheEntry {
        id,
        name: object.name_any(),
        phase: status.phase.clone().unwrap_or_default(),
        expires: status.expire_date_time.as_ref().map(|t| t.0),
        created,
        images: object
            .spec
            .images
            .iter()
            .map(|reference| {
                let known = status.images.iter().find(|i| i.reference == *reference);
                CachedImage {
                    reference: reference.clone(),
                    bytes: known.map_or(0, |i| u64::try_from(i.size_bytes).unwrap_or(0)),
                    digests: known
                        .map(|i| {
                            std::iter::once(i.digest.clone())
                                .chain(i.platform_digest.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect(),
        size_gib: u64::try_from(object.spec.image_cache_size).unwrap_or(0),
        origin: Origin::Object,
        last_matched: None,
        stale: status
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_STALE && c.status == "True"),
        private_registries: status.private_registries.clone(),
    })
}

#[derive(Debug, Default)]
struct Inner {
    index: CacheIndex,
    /// Object name → cloud id, so a changed id replaces the old entry.
    ids: HashMap<String, String>,
    /// Cloud id → object name, the reverse of `ids`.
    held: HashMap<String, String>,
    /// Caches only the cloud knows (by id), as last listed or looked up.
    cloud: HashMap<String, CacheEntry>,
    /// When each id a pod named was last asked of the cloud (so a pod retrying its create
    /// does not ask again at once).
    looked_up: HashMap<String, tokio::time::Instant>,
    /// Objects seen during a relist, applied at its end.
    relist: Option<Vec<CacheEntry>>,
    /// Whether the index has ever been complete (a first list done, or the CRD known absent).
    synced: bool,
    /// Whether the last list of the account's caches was whole (every page read).
    cloud_complete: bool,
    /// When a pod first waited for the index to load.
    first_wait: Option<tokio::time::Instant>,
}

impl Inner {
    /// Drops the entry of object `name`; the cloud's entry for its id, if any, takes its place.
    fn forget_object(&mut self, name: &str) {
        let Some(old) = self.ids.remove(name) else {
            return;
        };
        self.held.remove(&old);
        self.index.remove(&old);
        if let Some(entry) = self.cloud.get(&old) {
            self.index.upsert(entry.clone());
        }
    }
}

/// A shared, cheaply cloned handle on the index.
#[derive(Debug, Clone, Default)]
pub struct CacheIndexHandle {
    inner: Arc<RwLock<Inner>>,
    /// Told when the index becomes complete (see [`Self::wait_synced`]).
    loaded: Arc<tokio::sync::Notify>,
}

impl CacheIndexHandle {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the index holds every cache the cluster has: true after the first complete list,
    /// or once the CRD is known not to be installed (then there are no caches to know of).
    /// Until then a pod that asks for a cache waits rather than being judged on a partial view.
    pub fn is_synced(&self) -> bool {
        self.inner.read().synced
    }

    /// Returns once the index is complete: the pods that waited for it are created then, not at
    /// the next pass (at a node's start the first list can come a second or two after the
    /// first pods, while the API server takes a scale-up's pods).
    pub async fn wait_synced(&self) {
        loop {
            let loaded = self.loaded.notified();
            tokio::pin!(loaded);
            loaded.as_mut().enable();
            if self.is_synced() {
                return;
            }
            loaded.await;
        }
    }

    /// Whether pods have waited for the index longer than `limit` (it never loaded: the
    /// ImageCache API refuses this node, say); false once it has loaded.
    pub fn waited_too_long(&self, limit: std::time::Duration) -> bool {
        let mut inner = self.inner.write();
        if inner.synced {
            return false;
        }
        let now = tokio::time::Instant::now();
        now.duration_since(*inner.first_wait.get_or_insert(now)) > limit
    }

    /// Records that the cluster has no `ImageCache` API (the CRD is not installed): the index is
    /// complete and empty, so pods asking for a cache get an answer (not found, or a miss).
    pub fn mark_absent(&self) {
        let mut inner = self.inner.write();
        inner.ids.clear();
        inner.held.clear();
        inner.relist = None;
        inner.index = CacheIndex::from_entries(inner.cloud.values().cloned());
        inner.synced = true;
        self.loaded.notify_waiters();
    }

    /// Replaces the caches only the cloud knows with `entries` (a complete list): the ones no
    /// object names become candidates, the ones gone from the cloud stop being.
    pub fn replace_cloud(&self, entries: Vec<CacheEntry>) {
        self.replace_cloud_listed(entries, true);
    }

    /// [`Self::replace_cloud`] with a list that is whole (`complete`) or cut short.
    pub fn replace_cloud_listed(&self, entries: Vec<CacheEntry>, complete: bool) {
        let mut inner = self.inner.write();
        let inner = &mut *inner;
        inner.cloud_complete = complete;
        for id in inner.cloud.keys() {
            if !inner.held.contains_key(id) {
                inner.index.remove(id);
            }
        }
        inner.cloud = entries.into_iter().map(|e| (e.id.clone(), e)).collect();
        for (id, entry) in &inner.cloud {
            if !inner.held.contains_key(id) {
                inner.index.upsert(entry.clone());
            }
        }
    }

    /// Adds or refreshes one cache only the cloud knows (found by id for a pod that names it).
    pub fn upsert_cloud(&self, entry: CacheEntry) {
        let mut inner = self.inner.write();
        if !inner.held.contains_key(&entry.id) {
            inner.index.upsert(entry.clone());
        }
        inner.cloud.insert(entry.id.clone(), entry);
    }

    /// Whether `id` was asked of the cloud less than `ttl` ago; if not, records that it is
    /// being asked now.
    pub fn asked_recently(&self, id: &str, ttl: std::time::Duration) -> bool {
        let now = tokio::time::Instant::now();
        let mut inner = self.inner.write();
        inner
            .looked_up
            .retain(|_, at| now.duration_since(*at) < ttl);
        if inner.looked_up.contains_key(id) {
            return true;
        }
        inner.looked_up.insert(id.to_owned(), now);
        false
    }

    /// Forgets that `id` was asked (the cloud could not answer): the pod's retry asks again
    /// rather than taking the silence for "no such cache".
    pub fn forget_asked(&self, id: &str) {
        self.inner.write().looked_up.remove(id);
    }

    /// Whether the account's caches were listed whole at least once: until then, a cache missing
    /// from the list may simply not have been read.
    pub fn cloud_listed(&self) -> bool {
        self.inner.read().cloud_complete
    }

    /// The caches only the cloud knows, as last listed.
    pub fn cloud_entries(&self) -> Vec<CacheEntry> {
        self.inner.read().cloud.values().cloned().collect()
    }

    /// Runs `f` on the current index (under a short read lock: do not block in `f`).
    pub fn read<R>(&self, f: impl FnOnce(&CacheIndex) -> R) -> R {
        f(&self.inner.read().index)
    }

    /// Keeps the index current from a watch of `api` until `shutdown`. Watch errors are retried
    /// with the watcher's default backoff and logged, never dropped silently.
    pub async fn follow(
        &self,
        api: Api<ImageCache>,
        config: watcher::Config,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let events = watcher(api, config).default_backoff();
        let mut events = std::pin::pin!(events.take_until(shutdown));
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(&event),
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "image cache index watch failed; retrying"
                ),
            }
        }
    }

    /// Applies one watch event.
    pub fn apply(&self, event: &watcher::Event<ImageCache>) {
        let mut inner = self.inner.write();
        match event {
            watcher::Event::Init => inner.relist = Some(Vec::new()),
            watcher::Event::InitApply(object) => {
                if let Some(entry) = entry_of(object) {
                    inner.relist.get_or_insert_with(Vec::new).push(entry);
                }
            }
            watcher::Event::InitDone => {
                let entries = inner.relist.take().unwrap_or_default();
                inner.ids = entries
                    .iter()
                    .map(|e| (e.name.clone(), e.id.clone()))
                    .collect();
                inner.held = entries
                    .iter()
                    .map(|e| (e.id.clone(), e.name.clone()))
                    .collect();
                let cloud_only: Vec<CacheEntry> = inner
                    .cloud
                    .values()
                    .filter(|e| !inner.held.contains_key(&e.id))
                    .cloned()
                    .collect();
                inner.index = CacheIndex::from_entries(cloud_only.into_iter().chain(entries));
                inner.synced = true;
                self.loaded.notify_waiters();
            }
            watcher::Event::Apply(object) => {
                let name = object.name_any();
                inner.forget_object(&name);
                if let Some(entry) = entry_of(object) {
                    inner.ids.insert(name.clone(), entry.id.clone());
                    inner.held.insert(entry.id.clone(), name);
                    inner.index.upsert(entry);
                }
            }
            watcher::Event::Delete(object) => inner.forget_object(&object.name_any()),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::imagecache::{ImageCacheSpec, ImageCacheStatus, MatchOptions};

    fn object(name: &str, id: Option<&str>, phase: &str, images: &[&str]) -> ImageCache {
        let mut o = ImageCache::new(
            name,
            ImageCacheSpec {
                images: images.iter().map(|s| (*s).to_owned()).collect(),
                image_pull_secrets: Vec::new(),
                image_cache_size: 20,
                retention_days: None,
            },
        );
        o.status = Some(ImageCacheStatus {
            phase: Some(phase.into()),
            image_cache_id: id.map(str::to_owned),
            start_time: Some(Time("2026-01-01T00:00:00Z".parse().expect("time"))),
            ..ImageCacheStatus::default()
        });
        o
    }

    fn pick(handle: &CacheIndexHandle, image: &str) -> Option<String> {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().expect("time");
        handle.read(|index| {
            index
                .select([image], MatchOptions::default(), now)
                .winner()
                .map(|w| w.cache.id.clone())
        })
    }

    #[test]
    fn an_id_the_cloud_could_not_answer_is_asked_again() {
        let h = CacheIndexHandle::new();
        let ttl = std::time::Duration::from_secs(10);
        assert!(!h.asked_recently("imc-x", ttl), "first time: ask");
        assert!(
            h.asked_recently("imc-x", ttl),
            "again within the TTL: don't"
        );
        h.forget_asked("imc-x");
        assert!(
            !h.asked_recently("imc-x", ttl),
            "after a failed answer: ask again"
        );
    }

    #[tokio::test]
    async fn waiters_are_told_when_the_index_is_complete() {
        let h = CacheIndexHandle::new();
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.wait_synced().await }
        });
        tokio::task::yield_now().await;
        h.apply(&watcher::Event::Init);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a list begun is not a list done");
        h.apply(&watcher::Event::InitDone);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("told when the first list is done")
            .unwrap();
        // Complete already: at once. And a cluster without the CRD is complete too.
        h.wait_synced().await;
        let absent = CacheIndexHandle::new();
        let waiting = tokio::spawn({
            let h = absent.clone();
            async move { h.wait_synced().await }
        });
        tokio::task::yield_now().await;
        absent.mark_absent();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("told when the CRD is known absent")
            .unwrap();
    }

    #[test]
    fn follows_the_watch() {
        let h = CacheIndexHandle::new();
        h.apply(&watcher::Event::Init);
        h.apply(&watcher::Event::InitApply(object(
            "a",
            Some("imc-a"),
            "Ready",
            &["nginx"],
        )));
        h.apply(&watcher::Event::InitApply(object(
            "b",
            None,
            "Preparing",
            &["redis"],
        )));
        assert_eq!(pick(&h, "nginx"), None, "not applied before InitDone");
        assert!(!h.is_synced());
        h.apply(&watcher::Event::InitDone);
        assert!(h.is_synced());
        assert_eq!(pick(&h, "nginx"), Some("imc-a".into()));
        assert_eq!(h.read(CacheIndex::len), 1);

        h.apply(&watcher::Event::Apply(object(
            "b",
            Some("imc-b"),
            "Ready",
            &["redis"],
        )));
        assert_eq!(pick(&h, "redis"), Some("imc-b".into()));
        // A recreated cloud cache replaces the old id.
        h.apply(&watcher::Event::Apply(object(
            "b",
            Some("imc-b2"),
            "Ready",
            &["redis"],
        )));
        assert_eq!(pick(&h, "redis"), Some("imc-b2".into()));
        assert_eq!(h.read(CacheIndex::len), 2);

        h.apply(&watcher::Event::Delete(object(
            "a",
            Some("imc-a"),
            "Ready",
            &["nginx"],
        )));
        assert_eq!(pick(&h, "nginx"), None);
        assert_eq!(h.read(CacheIndex::len), 1);
    }
}
