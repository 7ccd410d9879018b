//! The pulls of one build: every blob downloaded once, several layers at a time over the
//! (shaped) link, and each image's layers unpacked in order while they download.
//!
//! Layers of one image must be applied bottom first (a later layer's whiteouts remove what an
//! earlier one put there), but images are unpacked onto rootfs directories of their own, so
//! each image has its own unpacking, beside the others. An unpack reads its layer through a
//! [`GrowingBlob`]: it keeps up with the download and is done a moment after the last byte
//! arrives, and a layer whose lower layer is still unpacking simply downloads to its file
//! meanwhile. With the link the only limit, a build ends as its last download does; it used
//! to download one blob at a time and unpack each image after its last blob.

use std::{
    collections::{HashMap, HashSet},
    io::BufReader,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::{StreamExt as _, TryStreamExt as _, future::try_join_all};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::{debug, debug_span};

use super::{
    super::{
        growing::GrowingBlob,
        registry::{BlobRef, ResolvedImage},
        store::{Digest, IngestOptions, Ingested},
        unpack::{self, UnpackError},
    },
    BuildEvent, BuildRequest, CancelOnDrop, Progress, PullError, SnapshotError, SnapshotImage,
    SnapshotLayer, SnapshotStore,
};

/// Layer downloads of one build in flight at once: containerd's default for its CRI plugin
/// (`max_concurrent_downloads = 3`). Over a shaped link they share its rate; more at once
/// would only spread it thinner, and keep more unpacks waiting.
pub(super) const MAX_CONCURRENT_DOWNLOADS: usize = 3;

/// Read buffer of one unpack.
const UNPACK_BUFFER: usize = 256 * 1024;

/// One blob to download, for the first image of the request that lists it.
struct Download<'a> {
    /// That image's index in the request.
    image: usize,
    blob: &'a BlobRef,
}

/// One build's downloads and unpacks, in flight together.
pub(super) struct Pipeline<'a> {
    store: &'a SnapshotStore,
    request: &'a BuildRequest,
    staging: &'a Path,
    /// `(image as requested, resolved)`, in request order, duplicates removed.
    images: &'a [(String, ResolvedImage)],
    progress: Mutex<Progress>,
    events: Option<mpsc::Sender<BuildEvent>>,
    /// Bytes downloaded for each image (a blob shared by two counts for the first).
    pulled: Vec<AtomicU64>,
    /// The size limit, shared by the images unpacking side by side.
    budget: Option<Arc<unpack::SizeBudget>>,
    /// Held shared by every running unpack thread: taken alone, none runs any more.
    unpacking: Arc<tokio::sync::RwLock<()>>,
    /// Each distinct config, then each distinct layer, in request order (the layers of the
    /// first image first, bottom first).
    configs: Vec<Download<'a>>,
    layer_downloads: Vec<Download<'a>>,
    /// Every layer of the request, as far as its download has come.
    layers: HashMap<Digest, Arc<GrowingBlob>>,
}

impl<'a> Pipeline<'a> {
    pub(super) fn new(
        store: &'a SnapshotStore,
        request: &'a BuildRequest,
        staging: &'a Path,
        images: &'a [(String, ResolvedImage)],
        events: Option<mpsc::Sender<BuildEvent>>,
    ) -> Self {
        let (configs, layer_downloads) = distinct_blobs(images);
        let bytes_total = (configs.iter().chain(&layer_downloads))
            .map(|d| d.blob.size)
            .sum();
        let progress = Progress::new(bytes_total, events.clone());
        let layers = layer_downloads
            .iter()
            .map(|d| (d.blob.digest.clone(), Arc::default()))
            .collect();
        Self {
            store,
            request,
            staging,
            images,
            progress: Mutex::new(progress),
            events,
            pulled: images.iter().map(|_| AtomicU64::new(0)).collect(),
            configs,
            layer_downloads,
            budget: request
                .size_limit
                .map(|limit| Arc::new(unpack::SizeBudget::new(limit))),
            unpacking: Arc::default(),
            layers,
        }
    }

    /// Downloads and unpacks every image; their manifest entries in request order.
    pub(super) async fn run(self) -> Result<Vec<SnapshotImage>, SnapshotError> {
        self.progress.lock().report();
        // The configs first (a few KiB each): an image's diff_ids are checked as each of its
        // layers is unpacked.
        // The futures are collected before they are joined: a closure inside the joined
        // future's type would make it too generic to be `Send`.
        let configs: Vec<_> = self
            .configs
            .iter()
            .map(|d| self.download(d, None))
            .collect();
        try_join_all(configs).await?;
        let layers: Vec<_> = self
            .layer_downloads
            .iter()
            .map(|d| self.download(d, Some(&*self.layers[&d.blob.digest])))
            .collect();
        let downloads = futures::stream::iter(layers)
            .buffer_unordered(MAX_CONCURRENT_DOWNLOADS)
            .try_collect::<()>();
        let unpacks: Vec<_> = self
            .images
            .iter()
            .enumerate()
            .map(|(index, (requested, image))| self.unpack_image(index, requested, image))
            .collect();
        let unpacks = try_join_all(unpacks);
        let ((), images) = match tokio::try_join!(downloads, unpacks) {
            Ok(done) => done,
            Err(error) => {
                // The unpacks were dropped, raising their cancel flags; their threads stop at
                // their next read. The caller then removes the staging directory, which must
                // not happen while one still writes into it.
                let _stopped = self.unpacking.write().await;
                return Err(error);
            }
        };
        self.progress.lock().finish();
        Ok(images)
    }

    /// Downloads one blob, publishing its bytes to `growing` (a layer's, for its unpacks).
    async fn download(
        &self,
        download: &Download<'_>,
        growing: Option<&GrowingBlob>,
    ) -> Result<(), SnapshotError> {
        let (_, image) = &self.images[download.image];
        let blob = download.blob;
        let name = image.image.to_string();
        let options = IngestOptions {
            fetch: self.request.fetch,
            shaper: self.store.shaper.as_deref(),
            growing,
        };
        let ingested = self
            .store
            .content
            .ingest(
                &blob.digest,
                blob.size,
                options,
                async { image.open_blob(blob).await.map_err(PullError::from) },
                |n| {
                    let n = n as u64;
                    self.store.stats.record(&self.request.scope, &name, n);
                    self.pulled[download.image].fetch_add(n, Ordering::Relaxed);
                    self.progress.lock().advance(n);
                },
            )
            .await
            .map_err(|source| SnapshotError::PullBlob {
                snapshot: self.request.snapshot_id.clone(),
                image: name.clone(),
                digest: blob.digest.to_string(),
                source: Box::new(source),
            })?;
        debug!(blob.digest = %blob.digest, blob.size = blob.size, ?ingested, "blob ready");
        if ingested == Ingested::Present {
            self.progress.lock().advance(blob.size);
        }
        Ok(())
    }

    /// Unpacks image `index`'s layers in order onto its rootfs, each as it downloads.
    async fn unpack_image(
        &self,
        index: usize,
        requested: &str,
        image: &ResolvedImage,
    ) -> Result<SnapshotImage, SnapshotError> {
        let id = &self.request.snapshot_id;
        let name = image.image.to_string();
        let diff_ids = self.store.diff_ids(id, &name, image).await?;
        let rootfs_rel = PathBuf::from(format!("images/{index}/rootfs"));
        let rootfs = self.staging.join(&rootfs_rel);
        tokio::fs::create_dir_all(&rootfs).await.map_err(|source| {
            SnapshotError::WriteSnapshot {
                snapshot: id.clone(),
                path: rootfs.clone(),
                source,
            }
        })?;
        let exceeded = || SnapshotError::ExceedSizeLimit {
            snapshot: id.clone(),
            image: requested.to_owned(),
            limit_bytes: self.request.size_limit.unwrap_or(u64::MAX),
        };
        let mut layers = Vec::new();
        for (layer_index, layer) in image.layers.iter().enumerate() {
            let growing = Arc::clone(&self.layers[&layer.digest]);
            // A blocking unpack outlives this future: if the build is dropped (its gRPC
            // caller went away), dropping `cancel` stops the unpack at its next read.
            let cancel = CancelOnDrop::default();
            let reader = BufReader::with_capacity(
                UNPACK_BUFFER,
                growing.reader(Some(Arc::clone(&cancel.0))),
            );
            let mut options = unpack::UnpackOptions::default().with_cancel(Arc::clone(&cancel.0));
            if let Some(budget) = &self.budget {
                options = options.with_budget(Arc::clone(budget));
            }
            let media_type = layer.media_type.clone();
            let target = rootfs.clone();
            let span = debug_span!("unpack_layer", layer.digest = %layer.digest);
            let running = Arc::clone(&self.unpacking).read_owned().await;
            let unpacked = tokio::task::spawn_blocking(move || {
                let _running = running;
                span.in_scope(|| unpack::unpack_layer(reader, &media_type, &target, &options))
            })
            .await
            .map_err(|source| SnapshotError::JoinTask {
                snapshot: id.clone(),
                source,
            })?;
            let stats = match unpacked {
                Ok(stats) => stats,
                // Bytes that are not the blob fail the unpack before the download has checked
                // them: which of the two is at fault is known when the download ends. A
                // failed download's own error ends the build and says why.
                Err(_) if growing.download_failed().await => {
                    return std::future::pending().await;
                }
                Err(UnpackError::ExceedSize { .. }) => return Err(exceeded()),
                Err(source) => {
                    return Err(SnapshotError::UnpackLayer {
                        snapshot: id.clone(),
                        image: name,
                        digest: layer.digest.to_string(),
                        source: Box::new(source),
                    });
                }
            };
            if let Some(expected) = diff_ids.as_ref().and_then(|ids| ids.get(layer_index))
                && *expected != stats.diff_id
            {
                return Err(SnapshotError::VerifyDiffId {
                    snapshot: id.clone(),
                    image: name,
                    digest: layer.digest.to_string(),
                    expected: expected.clone(),
                    actual: stats.diff_id,
                });
            }
            layers.push(SnapshotLayer {
                digest: layer.digest.to_string(),
                media_type: layer.media_type.clone(),
                size: layer.size,
                unpacked_bytes: stats.bytes,
            });
        }
        let bytes_pulled = self.pulled[index].load(Ordering::Relaxed);
        debug!(image = %name, bytes_pulled, "image pulled");
        if let Some(events) = &self.events {
            // A receiver that went away wants no more events; the build goes on.
            let _ = events
                .send(BuildEvent::ImagePulled {
                    image: requested.to_owned(),
                    bytes_pulled,
                })
                .await;
        }
        Ok(SnapshotImage {
            requested: requested.to_owned(),
            image: name,
            manifest_digest: image.manifest_digest.clone(),
            config_digest: image.config.digest.to_string(),
            pull_size: image.pull_size(),
            layers,
            rootfs: rootfs_rel,
        })
    }
}

/// The configs and the layers to download, each distinct blob once, for the first image that
/// lists it, in request order.
fn distinct_blobs(images: &[(String, ResolvedImage)]) -> (Vec<Download<'_>>, Vec<Download<'_>>) {
    let (mut configs, mut layers) = (Vec::new(), Vec::new());
    let (mut seen_configs, mut seen_layers) = (HashSet::new(), HashSet::new());
    for (index, (_, image)) in images.iter().enumerate() {
        if seen_configs.insert(&image.config.digest) {
            configs.push(Download {
                image: index,
                blob: &image.config,
            });
        }
        for layer in &image.layers {
            if seen_layers.insert(&layer.digest) {
                layers.push(Download {
                    image: index,
                    blob: layer,
                });
            }
        }
    }
    (configs, layers)
}
