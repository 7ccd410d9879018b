//! The lifecycle of an image cache: pull with rising progress, snapshot, Ready; or Failed /
//! UpdateFailed.

use std::sync::Arc;

use jiff::Timestamp;
use tokio_stream::StreamExt as _;

use super::{Work, logins, registries, start, with_current};
use crate::{
    agent::pb::{BuildSnapshotRequest, PrepareImagesRequest},
    emulator::{
        Core,
        spec::CacheSpec,
        state::{Cache, CacheStatus, FAILED_CACHE_TTL, Store},
    },
};

async fn with_cache<R>(
    core: &Core,
    id: &str,
    generation: u64,
    f: impl FnOnce(&mut Cache, Timestamp) -> R,
) -> Option<R> {
    with_current(
        core,
        |store: &mut Store| {
            store
                .caches
                .get_mut(id)
                .filter(|x| x.generation == generation)
        },
        f,
    )
    .await
}

const GIB: u64 = 1024 * 1024 * 1024;

async fn fail_cache(
    core: &Core,
    id: &str,
    generation: u64,
    update: bool,
    reason: &str,
    message: String,
) {
    with_cache(core, id, generation, |c, now| {
        if update {
            c.status = CacheStatus::UpdateFailed;
        } else {
            c.status = CacheStatus::Failed;
            // A failed cache is kept one day (reference §3.7).
            c.expire_date_time = now.saturating_add(FAILED_CACHE_TTL).ok();
        }
        c.event("Warning", reason, message, now);
    })
    .await;
}

/// What the agent is asked to pull for cache `id`: its images with its logins, registry
/// protocols and platform (`Annotations`' architecture, `OsType`), within `size_limit` bytes
/// (0: none).
fn prepare_request(id: &str, spec: &CacheSpec, size_limit: u64) -> PrepareImagesRequest {
    let os = if spec.os_type == "Windows" {
        "windows"
    } else {
        "linux"
    };
    PrepareImagesRequest {
        scope: id.to_owned(),
        images: spec.images.clone(),
        credentials: logins(&spec.credentials),
        base_snapshot_id: String::new(),
        pull_policies: Default::default(),
        size_limit_bytes: size_limit,
        plain_http_registries: registries(&spec.plain_http_registry),
        insecure_registries: registries(&spec.insecure_registry),
        // The agent's own platform unless the cache names an architecture.
        platform: if spec.cpu_arch.is_empty() {
            String::new()
        } else {
            format!("{os}/{}", spec.cpu_arch)
        },
    }
}

pub(super) async fn build_cache(core: Arc<Core>, id: String, generation: u64, update: bool) {
    let Some(spec) = with_cache(&core, &id, generation, |c, now| {
        if !update {
            c.event(
                "Normal",
                "Started",
                "Successfully check image cache resource.",
                now,
            );
            c.status = CacheStatus::Creating;
            c.progress = 0;
        }
        c.spec.clone()
    })
    .await
    else {
        return;
    };
    let limit = u64::try_from(spec.size_gib)
        .unwrap_or(0)
        .saturating_mul(GIB);
    let request = prepare_request(&id, &spec, limit);
    let pulled = async {
        let mut stream = core
            .agent
            .clone()
            .prepare_images(request)
            .await?
            .into_inner();
        let mut last = None;
        let mut pulled: Vec<String> = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message?;
            let total: u64 = message.images.iter().map(|i| i.bytes_total).sum();
            let done: u64 = message.images.iter().map(|i| i.bytes_done).sum();
            // Pulling is the first 90%; the snapshot the rest.
            let progress = u8::try_from(done.saturating_mul(90) / total.max(1))
                .unwrap_or(90)
                .min(90);
            // One event per image as it completes, as the cloud reports a cache's pulls.
            let newly: Vec<String> = message
                .images
                .iter()
                .filter(|i| i.complete && !pulled.contains(&i.image))
                .map(|i| i.image.clone())
                .collect();
            pulled.extend(newly.iter().cloned());
            let alive = with_cache(&core, &id, generation, |c, now| {
                c.progress = c.progress.max(progress);
                for image in &newly {
                    c.event(
                        "Normal",
                        "Pulled",
                        format!("Success pull image {image}"),
                        now,
                    );
                }
            })
            .await;
            if alive.is_none() {
                return Ok(None);
            }
            if message.done {
                last = Some(message);
            }
        }
        Ok::<_, tonic::Status>(last)
    }
    .await;
    let done = match pulled {
        Ok(Some(done)) => done,
        Ok(None) => return,
        Err(status) if status.code() == tonic::Code::ResourceExhausted => {
            // The agent found the unpacked images larger than the cache's disk.
            let message = format!(
                "The images do not fit the ImageCacheSize of {} GiB: {}",
                spec.size_gib,
                status.message()
            );
            fail_cache(
                &core,
                &id,
                generation,
                update,
                "ImageCacheSizeExceeded",
                message,
            )
            .await;
            return;
        }
        Err(status) => {
            let message = format!("Failed to pull image: {}", status.message());
            fail_cache(&core, &id, generation, update, "Failed", message).await;
            return;
        }
    };
    let total: u64 = done.images.iter().map(|i| i.bytes_total).sum();
    if total > limit {
        let message = format!(
            "The images need {total} bytes, more than the ImageCacheSize of {} GiB.",
            spec.size_gib
        );
        fail_cache(
            &core,
            &id,
            generation,
            update,
            "ImageCacheSizeExceeded",
            message,
        )
        .await;
        return;
    }
    let snapshot_id = core.ids.resource_id("s");
    let request = BuildSnapshotRequest {
        scope: id.clone(),
        snapshot_id: snapshot_id.clone(),
    };
    let snapshot = match core.agent.clone().build_snapshot(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            let message = format!("Failed to create the snapshot: {}", status.message());
            fail_cache(&core, &id, generation, update, "Failed", message).await;
            return;
        }
    };
    // ECI's regular snapshot takes a while after the pull; an instant (Flash) cache is usable
    // from its local snapshot meanwhile, and Progress is then the regular one's.
    let delay = core.settings.regular_snapshot_delay;
    if !spec.flash && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let flash = spec
        .flash
        .then(|| core.ids.resource_id("s"))
        .filter(|_| !delay.is_zero());
    let replaced = with_cache(&core, &id, generation, |c, now| {
        let old = c.snapshot_id.replace(snapshot_id.clone());
        c.image_sizes = snapshot
            .images
            .iter()
            .map(|i| (i.image.clone(), i.bytes_total))
            .collect();
        c.status = CacheStatus::Ready;
        c.progress = if flash.is_some() { 90 } else { 100 };
        c.flash_snapshot_id.clone_from(&flash);
        let (reason, message) = if update {
            ("Updated", "Successfully updated image cache.")
        } else {
            ("Created", "Successfully created image cache.")
        };
        c.event("Normal", reason, message, now);
        old
    })
    .await;
    match replaced {
        // Deleted or superseded meanwhile: the new snapshot is nobody's.
        None => start(&core, Work::DeleteSnapshot { snapshot_id }),
        Some(Some(old)) => start(&core, Work::DeleteSnapshot { snapshot_id: old }),
        Some(None) => {}
    }
    if flash.is_some() {
        tokio::time::sleep(delay).await;
        // The regular snapshot is made: the local one is deleted.
        with_cache(&core, &id, generation, |c, _| {
            c.progress = 100;
            c.flash_snapshot_id = None;
        })
        .await;
    }
}

/// Rebuilds a cache's snapshot on the agent under its recorded id when the agent lacks it.
///
/// `BuildSnapshot` is idempotent, so an agent that kept its snapshots answers at once; the
/// simulated agent of a restarted emulator gets the images and snapshot back.
pub(super) async fn restore_snapshot(core: Arc<Core>, id: String) {
    let found = {
        let store = core.store.lock().await;
        store
            .caches
            .get(&id)
            .and_then(|c| Some((c.spec.clone(), c.snapshot_id.clone()?)))
    };
    let Some((spec, snapshot_id)) = found else {
        return;
    };
    let mut agent = core.agent.clone();
    let build = BuildSnapshotRequest {
        scope: id.clone(),
        snapshot_id: snapshot_id.clone(),
    };
    if agent.build_snapshot(build.clone()).await.is_ok() {
        return;
    }
    let request = prepare_request(&id, &spec, 0);
    let prepared = async {
        let mut stream = agent.prepare_images(request).await?.into_inner();
        while let Some(message) = stream.next().await {
            message?;
        }
        agent.build_snapshot(build).await
    }
    .await;
    if let Err(status) = prepared {
        tracing::warn!(code = ?status.code(), message = status.message(), "cannot restore the snapshot on the agent");
    }
}
