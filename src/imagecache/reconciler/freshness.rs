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
//!
//! The registries are asked beside the reconciles ([`Looks`]), not inside one: a registry the
//! node cannot reach takes a DNS or connect timeout (5–10 s) to say so, and while a reconcile
//! waited on it the cache's `Ready` was not written and one of the controller's workers was
//! held. With 200 caches of such a registry Ready at once, their phases reached the API server
//! about 33 every 5 s (issue #21). Now a reconcile starts a look and writes what the cloud
//! says; a later one (the next poll) takes what the look found.

use std::{collections::HashMap, sync::Arc, time::Duration};

use kube::{Resource, ResourceExt, runtime::events::EventType};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::{Context, ReconcileError, build::Build, cloud::update, publish};
use crate::{
    eci,
    eci::ImageRegistryCredential,
    imagecache::{
        digests::{Access, DigestError},
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

/// Checks `object`'s Ready cloud cache: writes into `next` what a finished look at its
/// registries found, or starts one when a check is due. Returns whether a look is under way
/// (the caller polls again for its answer).
///
/// # Errors
/// Only the refresh's `UpdateImageCache`; registry failures are logged and skipped.
pub(super) async fn check(
    object: &ImageCache,
    build: &Build,
    cloud: &eci::ImageCache,
    ctx: &Context,
    next: &mut ImageCacheStatus,
) -> Result<bool, ReconcileError> {
    let Some(settings) = ctx.settings.freshness.as_ref() else {
        return Ok(false);
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
        return Ok(false);
    }
    let name = object.name_any();
    let recorded = !next.images.is_empty()
        && next
            .images
            .iter()
            .map(|i| &i.reference)
            .eq(object.spec.images.iter());
    let stale = carried.as_ref().is_some_and(|(stale, _, _)| *stale);
    match ctx
        .looks
        .take(&name, &cloud.image_cache_id, &object.spec.images)
    {
        Taken::Running => return Ok(true),
        Taken::Done(look) => {
            let seen = Seen {
                object,
                build,
                cloud,
                ctx,
                settings,
                recorded,
                stale,
                had_condition: carried.is_some(),
            };
            seen.write(look, next).await?;
            return Ok(false);
        }
        Taken::Nothing => {}
    }
    let now = tokio::time::Instant::now();
    if recorded
        && ctx
            .freshness_checked
            .lock()
            .get(&name)
            .is_some_and(|at| now.duration_since(*at) < settings.interval)
    {
        return Ok(false);
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
        return Ok(false);
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
    // Recorded: each tag is asked whether it moved from the recorded digest; else each image
    // is resolved.
    let against = if recorded {
        next.images.clone()
    } else {
        Vec::new()
    };
    ctx.looks.start(
        &name,
        Asked {
            cache_id: cloud.image_cache_id.clone(),
            images: object.spec.images.clone(),
            against,
        },
        access,
        logins,
    );
    Ok(true)
}

/// What a reconcile knows when it takes a finished look.
struct Seen<'a> {
    object: &'a ImageCache,
    build: &'a Build,
    cloud: &'a eci::ImageCache,
    ctx: &'a Context,
    settings: &'a Freshness,
    /// `next` already records the images' digests.
    recorded: bool,
    /// The cache is marked `Stale` now.
    stale: bool,
    /// The cache carries a `Stale` condition (true or false).
    had_condition: bool,
}

impl Seen<'_> {
    /// Writes into `next` what `look` found.
    async fn write(&self, look: Look, next: &mut ImageCacheStatus) -> Result<(), ReconcileError> {
        let (ctx, cloud) = (self.ctx, self.cloud);
        let name = self.object.name_any();
        let moved = match look.found {
            Some(Found::Unreachable(error)) => {
                unreachable(ctx, &name, &error);
                return Ok(());
            }
            Some(Found::Images(images)) => {
                if !self.recorded {
                    next.images = images;
                }
                ctx.registry_warned.lock().remove(&name);
                if self.had_condition {
                    mark_current(next, cloud, self.object.status.as_ref(), ctx);
                }
                return Ok(());
            }
            // Compared with digests that are no longer the record: the next check asks anew.
            Some(Found::Moved(_)) if !self.recorded || look.asked.against != next.images => {
                return Ok(());
            }
            Some(Found::Moved(moved)) => moved,
            None => return Ok(()),
        };
        ctx.registry_warned.lock().remove(&name);
        if moved.is_empty() {
            if self.stale {
                mark_current(next, cloud, self.object.status.as_ref(), ctx);
            }
            return Ok(());
        }
        self.mark_stale(moved.join("; "), next).await
    }

    /// Marks the cache `Stale` for the tags in `message` and, with refreshing on, updates it.
    async fn mark_stale(
        &self,
        message: String,
        next: &mut ImageCacheStatus,
    ) -> Result<(), ReconcileError> {
        let (object, ctx) = (self.object, self.ctx);
        let reason = if self.settings.refresh {
            "Refreshing"
        } else {
            "TagMoved"
        };
        status::set_stale(
            next,
            Some((true, reason, message.clone())),
            object.status.as_ref(),
            (ctx.clock)(),
        );
        if !self.stale {
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
        if self.settings.refresh {
            // One token per new content: a retry after a crash is the same update, the next
            // push of the tag another.
            use sha2::Digest as _;
            let uid = object.uid().unwrap_or_default();
            let digest = hex::encode(sha2::Sha256::digest(message.as_bytes()));
            update(
                object,
                self.build,
                self.cloud,
                format!("{uid}-r{}", &digest[..16]),
                ctx,
            )
            .await?;
            // Read anew once the cloud has pulled them again.
            next.images.clear();
            tracing::info!(imagecache.name = %object.name_any(), generation = ?object.meta().generation, "a tag moved; updating the cache");
        }
        Ok(())
    }
}

/// Looks at registries at most this many at once, beside the reconciles.
const LOOKS_AT_ONCE: usize = 16;

/// The looks at registries under way or finished and not yet taken, one per object.
pub(super) struct Looks {
    state: Arc<Mutex<HashMap<String, Look>>>,
    at_once: Arc<Semaphore>,
    /// Numbers each look, so an answer lands only on the look that asked.
    started: std::sync::atomic::AtomicU64,
}

/// What one look asks.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    /// The cloud cache looked at.
    cache_id: String,
    /// The object's images when the look started.
    images: Vec<String>,
    /// The recorded digests each tag is compared with; empty: resolve each image.
    against: Vec<CachedImageStatus>,
}

/// One look: what it asked and, once it answered, what it found.
struct Look {
    number: u64,
    asked: Asked,
    found: Option<Found>,
}

/// What the registries answered.
enum Found {
    /// Each image's digest and size.
    Images(Vec<CachedImageStatus>),
    /// The tags that point elsewhere than the recorded digests (none: all current).
    Moved(Vec<String>),
    /// A registry did not answer.
    Unreachable(DigestError),
}

/// A look, as [`Looks::take`] finds it for one cloud cache and spec.
enum Taken {
    Nothing,
    Running,
    Done(Look),
}

impl Default for Looks {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            at_once: Arc::new(Semaphore::new(LOOKS_AT_ONCE)),
            started: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Looks {
    /// The finished look of object `name` at `cache_id` with `images`, taken; whether one is
    /// under way; or nothing (a look at another cache or other images is dropped).
    fn take(&self, name: &str, cache_id: &str, images: &[String]) -> Taken {
        let mut state = self.state.lock();
        let Some(look) = state.get(name) else {
            return Taken::Nothing;
        };
        if look.asked.cache_id != cache_id || look.asked.images != images {
            state.remove(name);
            return Taken::Nothing;
        }
        if look.found.is_none() {
            return Taken::Running;
        }
        state.remove(name).map_or(Taken::Nothing, Taken::Done)
    }

    /// Starts a look for object `name` (replacing any it had).
    fn start(
        &self,
        name: &str,
        asked: Asked,
        access: Access,
        logins: Vec<ImageRegistryCredential>,
    ) {
        let number = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.state.lock().insert(
            name.to_owned(),
            Look {
                number,
                asked: asked.clone(),
                found: None,
            },
        );
        let (state, at_once, name) = (self.state.clone(), self.at_once.clone(), name.to_owned());
        tokio::spawn(async move {
            // A look that ends without an answer (it panicked) is dropped, so the next check
            // starts another rather than wait on this one for ever.
            let unanswered = Unanswered {
                state: state.clone(),
                name: name.clone(),
                number,
            };
            let Ok(_turn) = at_once.acquire_owned().await else {
                return;
            };
            let found = ask(&asked, &access, &logins).await;
            if let Some(look) = state.lock().get_mut(&name)
                && look.number == number
            {
                look.found = Some(found);
            }
            drop(unanswered);
        });
    }

    /// Drops what is known of object `name` (it is gone).
    pub(super) fn forget(&self, name: &str) {
        self.state.lock().remove(name);
    }
}

/// Drops look `number` of object `name` if it has no answer when this is dropped.
struct Unanswered {
    state: Arc<Mutex<HashMap<String, Look>>>,
    name: String,
    number: u64,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if state
            .get(&self.name)
            .is_some_and(|l| l.number == self.number && l.found.is_none())
        {
            state.remove(&self.name);
        }
    }
}

/// Asks the registries what `asked` wants to know.
async fn ask(asked: &Asked, access: &Access, logins: &[ImageRegistryCredential]) -> Found {
    if asked.against.is_empty() {
        let mut images = Vec::with_capacity(asked.images.len());
        for image in &asked.images {
            match access.resolve(image, logins).await {
                Ok(found) => images.push(CachedImageStatus {
                    reference: image.clone(),
                    platform_digest: (found.platform_digest != found.digest)
                        .then_some(found.platform_digest),
                    digest: found.digest,
                    size_bytes: i64::try_from(found.size).unwrap_or(i64::MAX),
                }),
                Err(error) => return Found::Unreachable(error),
            }
        }
        return Found::Images(images);
    }
    let mut moved = Vec::new();
    for image in &asked.against {
        match access.head(&image.reference, logins).await {
            Ok(digest) if digest != image.digest => moved.push(format!(
                "{} now points to {digest} (cached {})",
                image.reference, image.digest
            )),
            Ok(_) => {}
            Err(error) => return Found::Unreachable(error),
        }
    }
    Found::Moved(moved)
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
fn unreachable(ctx: &Context, name: &str, error: &DigestError) {
    if ctx.registry_warned.lock().insert(name.to_owned()) {
        tracing::warn!(imagecache.name = %name, error = error as &dyn std::error::Error, "cannot read the cache's images at their registry (see --plain-http-registry, --insecure-registry, --registry-ca-file); its sizes, digests and staleness wait until it answers");
    } else {
        tracing::debug!(imagecache.name = %name, error = error as &dyn std::error::Error, "registry still unreachable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(cache_id: &str, images: &[&str]) -> Asked {
        Asked {
            cache_id: cache_id.to_owned(),
            images: images.iter().map(|i| (*i).to_owned()).collect(),
            against: Vec::new(),
        }
    }

    #[test]
    fn a_look_is_taken_once_answered_and_only_for_what_it_asked() {
        let looks = Looks::default();
        let images = ["nginx:1.25".to_owned()];
        assert!(matches!(
            looks.take("web", "imc-1", &images),
            Taken::Nothing
        ));
        looks.state.lock().insert(
            "web".into(),
            Look {
                number: 0,
                asked: asked("imc-1", &["nginx:1.25"]),
                found: None,
            },
        );
        assert!(matches!(
            looks.take("web", "imc-1", &images),
            Taken::Running
        ));
        looks.state.lock().get_mut("web").expect("look").found = Some(Found::Moved(Vec::new()));
        assert!(matches!(
            looks.take("web", "imc-1", &images),
            Taken::Done(_)
        ));
        assert!(
            matches!(looks.take("web", "imc-1", &images), Taken::Nothing),
            "taken once"
        );
        // A look at a cache since replaced, or at other images, is dropped unread.
        looks.state.lock().insert(
            "web".into(),
            Look {
                number: 1,
                asked: asked("imc-old", &["nginx:1.25"]),
                found: Some(Found::Moved(vec!["moved".into()])),
            },
        );
        assert!(matches!(
            looks.take("web", "imc-1", &images),
            Taken::Nothing
        ));
        assert!(looks.state.lock().is_empty());
    }

    #[tokio::test]
    async fn a_look_runs_beside_the_caller_and_keeps_its_answer_for_it() {
        // As the binary does at its start.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Nothing listens on port 1: the registry is unreachable at once.
        let looks = Looks::default();
        let images = ["127.0.0.1:1/app:1".to_owned()];
        looks.start(
            "web",
            asked("imc-1", &["127.0.0.1:1/app:1"]),
            Access::default(),
            Vec::new(),
        );
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match looks.take("web", "imc-1", &images) {
                    Taken::Running => tokio::time::sleep(Duration::from_millis(10)).await,
                    Taken::Done(look) => return look.found,
                    Taken::Nothing => panic!("the look was lost"),
                }
            }
        })
        .await
        .expect("the look answers");
        assert!(matches!(found, Some(Found::Unreachable(_))));
    }
}
