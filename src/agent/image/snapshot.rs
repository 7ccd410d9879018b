//! Cache snapshots: the unpacked images of one image cache, on disk, with a manifest.
//!
//! Layout under `<data>/snapshots/`: a snapshot `ID` is a directory `ID/` holding
//! `images/<n>/rootfs/` (image `n` of the request, its layers applied in order, whiteouts
//! honoured) and `snapshot.json` ([`SnapshotManifest`]: which images, which layers, sizes).
//! A snapshot is built under a `.staging-…` directory and renamed into place with its
//! manifest, so `ID/` exists only complete; a failed or interrupted build leaves nothing.
//!
//! # Expected flow
//! [`SnapshotStore::build`] resolves every image first (so the total is known), then pulls the
//! missing blobs into the content store through the shaped link, several at a time, counting
//! bytes per image and per scope, and unpacks each image onto its rootfs while its layers
//! download (`pipeline`). It reports [`BuildEvent::Progress`]
//! (blob bytes done / total; blobs already in the content store count as done at once) and one
//! [`BuildEvent::ImagePulled`] per image, which the emulator turns into its Progress and
//! `Success pull image X` events.
//!
//! # Size
//! The snapshot is a disk of `ImageCacheSize` GiB: the content its layers write must fit in
//! the limit while it is written, so a build fails ([`SnapshotError::ExceedSizeLimit`]) as
//! soon as a layer would overflow it, before the disk fills. Files a later layer removes
//! still counted while they were there, as they would on a real disk.
//!
//! Blobs no snapshot refers to any more are removed by [`SnapshotStore::collect_garbage`]
//! (mark and sweep, as containerd's garbage collector does for its content store), which the
//! agent runs after it deletes snapshots. It holds the store's build lock alone, so no build
//! or rename is between fetching a blob and writing the manifest that refers to it.
//!
//! Deleting a snapshot renames its directory to a `.staging-del-…` name and then removes it, so
//! a delete cut short by a crash leaves nothing under the snapshot's id (the sweep of `open`
//! finishes it). Blobs stay in the content store (a later cache or group of the same images
//! pulls nothing).
//!
//! # Crashes
//! As containerd's snapshotter and etcd's WAL do, nothing is called done before it is on disk:
//! a manifest is written to a temporary file, synced, renamed over the old one and its directory
//! synced; a staging directory's file system is synced (`syncfs`) before the directory is
//! renamed into place, and the store's directory after. A snapshot whose manifest is missing or
//! unreadable all the same (a torn write on a disk that lied) counts as absent: `open` removes
//! it, and `build`/`rename` replace it instead of failing on it forever.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{Instrument as _, info_span, warn};

use super::{
    registry::{ImageRef, RegistryClient, RegistryCredential, RegistryError, ResolvedImage},
    shaper::{PullScope, PullStats, Shaper},
    store::{ContentStore, Fetch, StoreError},
    unpack::UnpackError,
};

mod disk;
mod pipeline;

use self::{
    disk::{
        ManifestState, disk_usage, read_manifest, remove_tree, sweep_broken, sync_dir, sync_fs,
        write_manifest,
    },
    pipeline::Pipeline,
};

const MANIFEST_FILE: &str = "snapshot.json";
/// The manifest while it is written, renamed to [`MANIFEST_FILE`] once synced.
const MANIFEST_TEMP: &str = ".snapshot.json.tmp";
/// Directories being built or removed; whatever carries it at `open` is a crash's leftover.
const STAGING_PREFIX: &str = ".staging-";

/// Why a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshot id is empty, too long or has characters unfit for a directory name.
    #[error("invalid snapshot id {id:?}")]
    ParseSnapshotId {
        /// The id as given.
        id: String,
    },
    /// The snapshot store's directory could not be created or read.
    #[error("cannot open the snapshot store at {}", path.display())]
    OpenStore {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// There is no snapshot of that id.
    #[error("snapshot {snapshot} does not exist")]
    NotFound {
        /// The id asked for.
        snapshot: String,
    },
    /// An image could not be resolved (bad reference, unknown tag, refused credentials).
    #[error("cannot resolve image {image} for snapshot {snapshot}")]
    ResolveImage {
        /// The snapshot being built.
        snapshot: String,
        /// The image as requested.
        image: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// A blob could not be pulled into the content store (network, digest mismatch).
    #[error("cannot pull {digest} of image {image} for snapshot {snapshot}")]
    PullBlob {
        /// The snapshot being built.
        snapshot: String,
        /// The normalised image.
        image: String,
        /// The blob.
        digest: String,
        /// The cause.
        #[source]
        source: Box<PullError>,
    },
    /// A layer could not be unpacked (corrupt, or refused because it would escape its root).
    #[error("cannot unpack layer {digest} of image {image} for snapshot {snapshot}")]
    UnpackLayer {
        /// The snapshot being built.
        snapshot: String,
        /// The normalised image.
        image: String,
        /// The layer.
        digest: String,
        /// The cause.
        #[source]
        source: Box<UnpackError>,
    },
    /// An image config could not be read or does not describe its layers.
    #[error("cannot read the config of image {image} for snapshot {snapshot}")]
    ReadConfig {
        /// The snapshot being built.
        snapshot: String,
        /// The normalised image.
        image: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A layer's uncompressed content does not match the `diff_id` its image config lists.
    #[error(
        "layer {digest} of image {image} unpacked to {actual}, its config says {expected} (snapshot {snapshot})"
    )]
    VerifyDiffId {
        /// The snapshot being built.
        snapshot: String,
        /// The normalised image.
        image: String,
        /// The layer.
        digest: String,
        /// The config's diff_id.
        expected: String,
        /// The digest of the uncompressed tar.
        actual: String,
    },
    /// The images do not fit in the snapshot's size limit.
    #[error(
        "snapshot {snapshot} exceeds its size limit of {limit_bytes} bytes while unpacking image {image}"
    )]
    ExceedSizeLimit {
        /// The snapshot being built.
        snapshot: String,
        /// The image that did not fit.
        image: String,
        /// The limit in bytes.
        limit_bytes: u64,
    },
    /// Writing the snapshot's files or manifest failed (disk full, permissions).
    #[error("cannot write snapshot {snapshot} at {}", path.display())]
    WriteSnapshot {
        /// The snapshot.
        snapshot: String,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot's manifest could not be read back.
    #[error("cannot read the manifest of snapshot {snapshot} at {}", path.display())]
    ReadManifest {
        /// The snapshot.
        snapshot: String,
        /// The manifest file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The snapshots could not be listed to find the blobs they refer to.
    #[error("cannot list the snapshots at {} to collect garbage", path.display())]
    ScanSnapshots {
        /// The directory or manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Unreferenced blobs could not be removed.
    #[error("cannot remove unreferenced blobs")]
    RemoveBlobs(#[source] StoreError),
    /// Removing a snapshot's directory failed.
    #[error("cannot delete snapshot {snapshot}")]
    DeleteSnapshot {
        /// The snapshot.
        snapshot: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task (unpack, delete) panicked or was cancelled; never expected.
    #[error("background task of snapshot {snapshot} failed")]
    JoinTask {
        /// The snapshot.
        snapshot: String,
        /// The cause.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl SnapshotError {
    /// Whether a registry refused the credentials.
    pub fn is_authentication(&self) -> bool {
        matches!(self, Self::ResolveImage { source, .. } if source.is_authentication())
    }

    /// Whether an image does not exist in its registry (or not for the platform).
    pub fn is_image_not_found(&self) -> bool {
        matches!(self, Self::ResolveImage { source, .. } if source.is_not_found())
    }
}

/// Why one blob pull failed: starting the download, or storing it.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry did not serve the blob.
    #[error("registry refused the download")]
    Registry(#[from] RegistryError),
    /// The content store rejected or could not write it (digest or size mismatch).
    #[error("content store rejected the blob")]
    Store(#[from] StoreError),
}

/// The description of a built snapshot, stored as its `snapshot.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotManifest {
    /// The snapshot id.
    pub id: String,
    /// The images, in request order (duplicates removed).
    pub images: Vec<SnapshotImage>,
    /// Bytes of file content in the snapshot (hard links counted once).
    pub size_bytes: u64,
}

/// One image of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotImage {
    /// The image as requested.
    pub requested: String,
    /// The normalised reference (`docker.io/library/busybox:latest`).
    pub image: String,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    /// The config blob's digest.
    pub config_digest: String,
    /// Bytes of config and layers on the wire (the image's pull size).
    pub pull_size: u64,
    /// The layers, bottom first.
    pub layers: Vec<SnapshotLayer>,
    /// The rootfs, relative to the snapshot's directory.
    pub rootfs: PathBuf,
}

/// One layer of a snapshot image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotLayer {
    /// The compressed blob's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Compressed bytes.
    pub size: u64,
    /// Bytes of file content it wrote.
    pub unpacked_bytes: u64,
}

/// What a build reports while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildEvent {
    /// Every image is resolved; what each will pull when none of its blobs is present.
    Resolved {
        /// `(image as requested, pull size in bytes)`, in build order (duplicates removed).
        images: Vec<(String, u64)>,
    },
    /// Blob bytes done (downloaded or found in the content store) out of the total.
    Progress {
        /// Bytes done.
        bytes_done: u64,
        /// Bytes of all distinct blobs of the request.
        bytes_total: u64,
    },
    /// One image is pulled and unpacked ("Success pull image X").
    ImagePulled {
        /// The image as requested.
        image: String,
        /// Bytes downloaded for it in this build (0 when every blob was present).
        bytes_pulled: u64,
    },
}

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// The snapshot id (a directory name: letters, digits, `-`, `_`, `.`).
    pub snapshot_id: String,
    /// Whom the downloads are counted for.
    pub scope: PullScope,
    /// The images, as the user wrote them.
    pub images: Vec<String>,
    /// Registry credentials.
    pub credentials: Vec<RegistryCredential>,
    /// The size limit in bytes (`ImageCacheSize` GiB × 2^30); `None` for none.
    pub size_limit: Option<u64>,
    /// Whether blobs already in the content store are used ([`Fetch::IfMissing`], an image
    /// cache) or pulled again ([`Fetch::Always`], a group without a snapshot, which on ECI
    /// is a fresh machine). Either way a blob is pulled at most once per build.
    pub fetch: Fetch,
    /// A registry client for this build only (one with the request's plain-HTTP and insecure
    /// registries); `None` for the store's own.
    pub registry: Option<RegistryClient>,
}

impl BuildRequest {
    /// A request for `images` counted for `scope`, without credentials or size limit, using
    /// what the content store has.
    pub fn new(snapshot_id: impl Into<String>, scope: PullScope, images: Vec<String>) -> Self {
        Self {
            snapshot_id: snapshot_id.into(),
            scope,
            images,
            credentials: Vec::new(),
            size_limit: None,
            fetch: Fetch::IfMissing,
            registry: None,
        }
    }

    /// Sets the size limit to `gib` GiB, as `ImageCacheSize` gives it.
    #[must_use]
    pub fn with_size_limit_gib(mut self, gib: u64) -> Self {
        self.size_limit = Some(gib.saturating_mul(1 << 30));
        self
    }
}

// === impl SnapshotStore ===

/// Snapshots on disk, built from the content store.
#[derive(Debug)]
pub struct SnapshotStore {
    root: PathBuf,
    content: Arc<ContentStore>,
    registry: RegistryClient,
    shaper: Option<Arc<Shaper>>,
    stats: PullStats,
    next_staging: AtomicU64,
    /// Held shared by every build and rename, alone by [`Self::collect_garbage`]: an async
    /// lock, since a build holds it for as long as it pulls.
    builds: tokio::sync::RwLock<()>,
}

impl SnapshotStore {
    /// Opens (creating if needed) the snapshot store under `root`, removing staging
    /// directories left by an interrupted build.
    pub async fn open(
        root: impl Into<PathBuf>,
        content: Arc<ContentStore>,
        registry: RegistryClient,
        shaper: Option<Arc<Shaper>>,
        stats: PullStats,
    ) -> Result<Self, SnapshotError> {
        let root = root.into();
        let open_error = |source| SnapshotError::OpenStore {
            path: root.clone(),
            source,
        };
        create_private_dir(&root).await.map_err(open_error)?;
        let mut entries = tokio::fs::read_dir(&root).await.map_err(open_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(open_error)? {
            if entry.file_name().to_string_lossy().starts_with(".staging-") {
                let _ = tokio::fs::remove_dir_all(entry.path()).await;
            }
        }
        sweep_broken(&root).await.map_err(open_error)?;
        Ok(Self {
            root,
            content,
            registry,
            shaper,
            stats,
            next_staging: AtomicU64::new(0),
            builds: tokio::sync::RwLock::new(()),
        })
    }

    /// The directory holding every snapshot.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The pull counters this store adds to.
    pub fn stats(&self) -> &PullStats {
        &self.stats
    }

    /// The directory of snapshot `id` (whether or not it exists).
    pub fn path(&self, id: &str) -> Result<PathBuf, SnapshotError> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    /// The manifest of snapshot `id`, or `None` if there is no such snapshot.
    pub async fn get(&self, id: &str) -> Result<Option<SnapshotManifest>, SnapshotError> {
        let path = self.path(id)?.join(MANIFEST_FILE);
        let read_error = |source| SnapshotError::ReadManifest {
            snapshot: id.to_owned(),
            path: path.clone(),
            source,
        };
        match read_manifest(&path).await {
            Ok(ManifestState::Valid(manifest)) => Ok(Some(manifest)),
            Ok(ManifestState::Missing) => Ok(None),
            Ok(ManifestState::Corrupt(error)) => {
                // Absent rather than an error: `build` and `rename` replace it.
                warn!(snapshot.id = %id, error = &error as &dyn std::error::Error, "ignoring a snapshot with a corrupt manifest");
                Ok(None)
            }
            Err(e) => Err(read_error(Box::new(e))),
        }
    }

    /// Removes the directory of `id` when it exists without a readable manifest (a crash's
    /// leftover), so that a build or rename can put a complete snapshot in its place.
    async fn clear_broken(&self, id: &str) -> Result<(), SnapshotError> {
        let path = self.path(id)?;
        let broken = tokio::fs::symlink_metadata(&path).await.is_ok()
            && matches!(
                read_manifest(&path.join(MANIFEST_FILE)).await,
                Ok(ManifestState::Missing | ManifestState::Corrupt(_))
            );
        if broken {
            warn!(snapshot.id = %id, "removing a snapshot directory without a valid manifest");
            self.delete(id).await?;
        }
        Ok(())
    }

    /// Deletes snapshot `id` and frees its disk; returns whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, SnapshotError> {
        let path = self.path(id)?;
        let snapshot = id.to_owned();
        // Renamed out of the way first (one atomic step): from here on the id is free, and a
        // crash during the slow removal leaves a `.staging-` directory that `open` sweeps.
        let n = self.next_staging.fetch_add(1, Ordering::Relaxed);
        let doomed = self.root.join(format!(
            "{STAGING_PREFIX}del-{id}-{}-{n}",
            std::process::id()
        ));
        tokio::task::spawn_blocking(move || {
            match std::fs::rename(&path, &doomed) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(source) => return Err(SnapshotError::DeleteSnapshot { snapshot, source }),
            }
            std::fs::remove_dir_all(&doomed)
                .map(|()| true)
                .map_err(|source| SnapshotError::DeleteSnapshot { snapshot, source })
        })
        .await
        .map_err(|source| SnapshotError::JoinTask {
            snapshot: id.to_owned(),
            source,
        })?
    }

    /// Gives the built snapshot `from` the id `to` (a directory rename, so no byte is copied)
    /// and returns its manifest. Idempotent: when `to` exists already it is returned as it is.
    pub async fn rename(&self, from: &str, to: &str) -> Result<SnapshotManifest, SnapshotError> {
        // A garbage collection must not list the store while the manifest moves.
        let _renaming = self.builds.read().await;
        if let Some(existing) = self.get(to).await? {
            return Ok(existing);
        }
        self.clear_broken(to).await?;
        let Some(mut manifest) = self.get(from).await? else {
            return Err(SnapshotError::NotFound {
                snapshot: from.to_owned(),
            });
        };
        let (source, target) = (self.path(from)?, self.path(to)?);
        let write_error = |path: &Path, source| SnapshotError::WriteSnapshot {
            snapshot: to.to_owned(),
            path: path.to_owned(),
            source,
        };
        manifest.id = to.to_owned();
        // Rewritten atomically before the move: a crash in between leaves `from` complete
        // (with `to`'s id, which the retried rename writes again).
        write_manifest(&source, &manifest)
            .await
            .map_err(|e| write_error(&source.join(MANIFEST_FILE), e))?;
        tokio::fs::rename(&source, &target)
            .await
            .map_err(|e| write_error(&target, e))?;
        sync_dir(&self.root)
            .await
            .map_err(|e| write_error(&self.root, e))?;
        Ok(manifest)
    }

    /// Builds a snapshot (see the module docs). Idempotent: an existing snapshot of that id
    /// is returned as it is. `events` receives progress (dropped when the receiver lags) and
    /// per-image notifications (always delivered while the receiver lives).
    pub async fn build(
        &self,
        request: BuildRequest,
        events: Option<mpsc::Sender<BuildEvent>>,
    ) -> Result<SnapshotManifest, SnapshotError> {
        let span = info_span!("build_snapshot", snapshot.id = %request.snapshot_id);
        async move {
            // Blobs this build fetches are referenced by no manifest until it finishes.
            let _building = self.builds.read().await;
            let id = request.snapshot_id.clone();
            let final_path = self.path(&id)?;
            if let Some(existing) = self.get(&id).await? {
                return Ok(existing);
            }
            self.clear_broken(&id).await?;
            let n = self.next_staging.fetch_add(1, Ordering::Relaxed);
            let staging = self
                .root
                .join(format!("{STAGING_PREFIX}{id}-{}-{n}", std::process::id()));
            let result = self.build_in(&request, &staging, events).await;
            let manifest = match result {
                Ok(manifest) => manifest,
                Err(error) => {
                    remove_tree(staging).await;
                    return Err(error);
                }
            };
            match tokio::fs::rename(&staging, &final_path).await {
                Ok(()) => {
                    sync_dir(&self.root)
                        .await
                        .map_err(|source| SnapshotError::WriteSnapshot {
                            snapshot: id.clone(),
                            path: self.root.clone(),
                            source,
                        })?;
                    Ok(manifest)
                }
                Err(source) => {
                    remove_tree(staging).await;
                    // Another build of the same id finished first: that one stands.
                    match self.get(&id).await? {
                        Some(existing) => Ok(existing),
                        None => Err(SnapshotError::WriteSnapshot {
                            snapshot: id,
                            path: final_path,
                            source,
                        }),
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Removes the blobs of the content store that no snapshot's manifest refers to (the
    /// configs and layers of deleted snapshots); returns how many. Waits for running builds.
    ///
    /// # Errors
    /// When the snapshots cannot be listed or a blob cannot be removed; nothing is removed
    /// when a manifest cannot be read (what it refers to is unknown).
    pub async fn collect_garbage(&self) -> Result<u64, SnapshotError> {
        let _alone = self.builds.write().await;
        let scan_error = |path: &Path| {
            let path = path.to_owned();
            move |source| SnapshotError::ScanSnapshots { path, source }
        };
        let mut live = HashSet::new();
        let mut entries = tokio::fs::read_dir(&self.root)
            .await
            .map_err(scan_error(&self.root))?;
        while let Some(entry) = entries.next_entry().await.map_err(scan_error(&self.root))? {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path().join(MANIFEST_FILE);
            // A directory without a valid manifest is no snapshot: it keeps nothing alive.
            if let ManifestState::Valid(manifest) =
                read_manifest(&path).await.map_err(scan_error(&path))?
            {
                for image in manifest.images {
                    live.insert(image.config_digest);
                    live.extend(image.layers.into_iter().map(|l| l.digest));
                }
            }
        }
        self.content
            .remove_unreferenced(&live)
            .await
            .map_err(SnapshotError::RemoveBlobs)
    }

    async fn build_in(
        &self,
        request: &BuildRequest,
        staging: &Path,
        events: Option<mpsc::Sender<BuildEvent>>,
    ) -> Result<SnapshotManifest, SnapshotError> {
        let id = &request.snapshot_id;
        let write_error = |path: &Path, source| SnapshotError::WriteSnapshot {
            snapshot: id.clone(),
            path: path.to_owned(),
            source,
        };

        // Resolve every image first: the total is known before the first byte moves.
        let mut seen = HashSet::new();
        let mut images: Vec<(String, ResolvedImage)> = Vec::new();
        for requested in &request.images {
            let resolve_error = |source| SnapshotError::ResolveImage {
                snapshot: id.clone(),
                image: requested.clone(),
                source: Box::new(source),
            };
            let image: ImageRef = requested.parse().map_err(resolve_error)?;
            if !seen.insert(image.to_string()) {
                continue;
            }
            let resolved = request
                .registry
                .as_ref()
                .unwrap_or(&self.registry)
                .resolve(&image, &request.credentials)
                .await
                .map_err(resolve_error)?;
            images.push((requested.clone(), resolved));
        }
        if let Some(events) = &events {
            let sizes = images
                .iter()
                .map(|(requested, image)| (requested.clone(), image.pull_size()))
                .collect();
            let _ = events.send(BuildEvent::Resolved { images: sizes }).await;
        }
        let manifest_images = Pipeline::new(self, request, staging, &images, events)
            .run()
            .await?;

        let measured = staging.to_owned();
        let size_bytes = tokio::task::spawn_blocking(move || disk_usage(&measured))
            .await
            .map_err(|source| SnapshotError::JoinTask {
                snapshot: id.clone(),
                source,
            })?
            .map_err(|e| write_error(staging, e))?;
        let manifest = SnapshotManifest {
            id: id.clone(),
            images: manifest_images,
            size_bytes,
        };
        // Every unpacked file reaches the disk before the directory can be renamed into
        // place (containerd syncs a snapshot's file system before committing it).
        sync_fs(staging)
            .await
            .map_err(|e| write_error(staging, e))?;
        write_manifest(staging, &manifest)
            .await
            .map_err(|e| write_error(&staging.join(MANIFEST_FILE), e))?;
        Ok(manifest)
    }
}

// === impl SnapshotStore (config) ===

impl SnapshotStore {
    /// The `rootfs.diff_ids` of an image's config (now in the content store), one per layer;
    /// `None` when the config lists none (an artifact rather than a runnable image).
    async fn diff_ids(
        &self,
        snapshot: &str,
        name: &str,
        image: &ResolvedImage,
    ) -> Result<Option<Vec<String>>, SnapshotError> {
        let config_error = |source| SnapshotError::ReadConfig {
            snapshot: snapshot.to_owned(),
            image: name.to_owned(),
            source,
        };
        let config = self
            .content
            .read_metadata(&image.config.digest)
            .await
            .map_err(|e| config_error(Box::new(e)))?;
        let ids = config_diff_ids(&config).map_err(|e| config_error(Box::new(e)))?;
        match ids {
            Some(ids) if ids.len() != image.layers.len() => Err(config_error(
                format!(
                    "the config lists {} diff_ids for {} layers",
                    ids.len(),
                    image.layers.len()
                )
                .into(),
            )),
            other => Ok(other),
        }
    }
}

/// The `rootfs.diff_ids` of an image config, if it has any.
pub(super) fn config_diff_ids(config: &[u8]) -> Result<Option<Vec<String>>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Config {
        rootfs: Option<RootFs>,
    }
    #[derive(Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    let config: Config = serde_json::from_slice(config)?;
    Ok(config.rootfs.map(|r| r.diff_ids))
}

/// Progress reporting, throttled to about one message per percent (and per MiB at least).
struct Progress {
    done: u64,
    total: u64,
    reported: u64,
    step: u64,
    events: Option<mpsc::Sender<BuildEvent>>,
}

impl Progress {
    fn new(total: u64, events: Option<mpsc::Sender<BuildEvent>>) -> Self {
        Self {
            done: 0,
            total,
            reported: 0,
            step: (total / 100).max(1024 * 1024),
            events,
        }
    }

    fn advance(&mut self, bytes: u64) {
        self.done = (self.done + bytes).min(self.total);
        if self.done - self.reported >= self.step || self.done == self.total {
            self.report();
        }
    }

    fn report(&mut self) {
        self.reported = self.done;
        if let Some(events) = &self.events {
            // Progress is a level: a lagging receiver loses nothing it needs from a drop.
            let _ = events.try_send(BuildEvent::Progress {
                bytes_done: self.done,
                bytes_total: self.total,
            });
        }
    }

    fn finish(&mut self) {
        if self.reported != self.total {
            self.done = self.total;
            self.report();
        }
    }
}

fn check_id(id: &str) -> Result<(), SnapshotError> {
    let valid = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(SnapshotError::ParseSnapshotId { id: id.to_owned() })
    }
}

/// Creates `root` (and its parents) and makes it 0700, as containerd keeps its snapshotters'
/// roots: rootfs directories below stay traversable for the containers' users, but other
/// users of the node never reach the images' files (setuid binaries, world-writable dirs).
async fn create_private_dir(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::create_dir_all(root).await?;
    tokio::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).await
}

/// Raises its flag when dropped: a future awaiting a blocking unpack holds one.
#[derive(Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::{super::store::Digest, *};

    /// The emulator spawns builds on its runtime: the future must be `Send`.
    #[allow(dead_code, clippy::needless_pass_by_value)]
    fn build_is_send(store: &SnapshotStore, request: BuildRequest) {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&store.build(request, None));
    }

    #[test]
    fn reads_diff_ids_from_image_configs() {
        let config = br#"{"architecture":"amd64","os":"linux",
            "rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:b"]}}"#;
        assert_eq!(
            config_diff_ids(config).unwrap(),
            Some(vec!["sha256:a".to_owned(), "sha256:b".to_owned()])
        );
        assert_eq!(config_diff_ids(b"{}").unwrap(), None);
        assert!(config_diff_ids(b"not json").is_err());
    }

    #[test]
    fn snapshot_ids_are_safe_directory_names() {
        for good in ["s-0123456789abcdefghij", "imc-x.y_z"] {
            check_id(good).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".staging-x",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn progress_is_throttled_and_ends_at_the_total() {
        let (tx, mut rx) = mpsc::channel(1000);
        let mut progress = Progress::new(300 * 1024 * 1024, Some(tx));
        for _ in 0..300 * 16 {
            progress.advance(64 * 1024);
        }
        progress.finish();
        let mut last = 0;
        let mut count = 0;
        while let Ok(BuildEvent::Progress {
            bytes_done,
            bytes_total,
        }) = rx.try_recv()
        {
            assert!(bytes_done >= last);
            assert_eq!(bytes_total, 300 * 1024 * 1024);
            last = bytes_done;
            count += 1;
        }
        assert_eq!(last, 300 * 1024 * 1024);
        assert!((90..=110).contains(&count), "{count} progress messages");
    }

    #[tokio::test]
    async fn the_store_root_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data/snapshots");
        let open = || async {
            let content = Arc::new(
                ContentStore::open(dir.path().join("content"))
                    .await
                    .unwrap(),
            );
            let registry = RegistryClient::new(super::super::registry::RegistryConfig::default());
            SnapshotStore::open(&root, content, registry, None, PullStats::default())
                .await
                .unwrap()
        };
        open().await;
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        // A root an older agent made open is tightened too.
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        open().await;
        assert_eq!(
            std::fs::metadata(&root).unwrap().permissions().mode() & 0o077,
            0
        );
    }

    async fn open_store(dir: &Path) -> SnapshotStore {
        let content = Arc::new(ContentStore::open(dir.join("content")).await.unwrap());
        SnapshotStore::open(
            dir.join("snapshots"),
            content,
            RegistryClient::new(super::super::registry::RegistryConfig::default()),
            None,
            PullStats::default(),
        )
        .await
        .unwrap()
    }

    /// A complete snapshot `id` made by hand: one image with one file, and its manifest.
    async fn put_snapshot(store: &SnapshotStore, id: &str) -> SnapshotManifest {
        let dir = store.root().join(id);
        std::fs::create_dir_all(dir.join("images/0/rootfs")).unwrap();
        std::fs::write(dir.join("images/0/rootfs/hello"), b"hello").unwrap();
        let manifest = SnapshotManifest {
            id: id.to_owned(),
            images: vec![SnapshotImage {
                requested: "busybox".into(),
                image: "docker.io/library/busybox:latest".into(),
                manifest_digest: format!("sha256:{}", "a".repeat(64)),
                config_digest: format!("sha256:{}", "b".repeat(64)),
                pull_size: 10,
                layers: vec![SnapshotLayer {
                    digest: format!("sha256:{}", "c".repeat(64)),
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    size: 10,
                    unpacked_bytes: 5,
                }],
                rootfs: "images/0/rootfs".into(),
            }],
            size_bytes: 5,
        };
        write_manifest(&dir, &manifest).await.unwrap();
        manifest
    }

    #[tokio::test]
    async fn a_torn_manifest_does_not_block_the_rename_onto_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let staged = put_snapshot(&store, "prep-x").await;
        // What a crash after a non-durable write leaves: `s-1/` with half a manifest.
        let broken = store.root().join("s-1");
        std::fs::create_dir_all(broken.join("images/0/rootfs")).unwrap();
        std::fs::write(broken.join(MANIFEST_FILE), b"{\"id\":\"s-1\",\"ima").unwrap();
        assert_eq!(store.get("s-1").await.unwrap(), None);

        let renamed = store.rename("prep-x", "s-1").await.unwrap();
        assert_eq!(renamed.id, "s-1");
        assert_eq!(renamed.images, staged.images);
        assert_eq!(store.get("s-1").await.unwrap(), Some(renamed));
        assert!(store.root().join("s-1/images/0/rootfs/hello").exists());
        assert_eq!(store.get("prep-x").await.unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["s-1"], "the broken directory was not removed");
    }

    #[tokio::test]
    async fn open_sweeps_snapshots_without_a_valid_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        put_snapshot(&store, "good").await;
        std::fs::create_dir_all(store.root().join("no-manifest/images")).unwrap();
        std::fs::create_dir_all(store.root().join("torn")).unwrap();
        std::fs::write(store.root().join("torn").join(MANIFEST_FILE), b"{").unwrap();
        std::fs::create_dir_all(store.root().join(".staging-del-old-1-0/x")).unwrap();
        drop(store);

        let store = open_store(dir.path()).await;
        let mut left: Vec<_> = std::fs::read_dir(store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["good"]);
        assert!(store.get("good").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn delete_moves_the_directory_away_before_removing_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        put_snapshot(&store, "s-2").await;
        assert!(store.delete("s-2").await.unwrap());
        assert!(!store.delete("s-2").await.unwrap());
        assert_eq!(std::fs::read_dir(store.root()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn garbage_collection_keeps_only_the_blobs_snapshots_refer_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        put_snapshot(&store, "s-1").await;
        let blob = |c: char| {
            let digest: Digest = format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap();
            store.content.blob_path(&digest)
        };
        for c in ['b', 'c', 'd'] {
            std::fs::write(blob(c), b"x").unwrap();
        }
        assert_eq!(store.collect_garbage().await.unwrap(), 1);
        assert!(blob('b').exists() && blob('c').exists() && !blob('d').exists());

        assert!(store.delete("s-1").await.unwrap());
        assert_eq!(store.collect_garbage().await.unwrap(), 2);
        assert!(!blob('b').exists() && !blob('c').exists());
    }

    #[test]
    fn disk_usage_counts_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/a"), [0u8; 1000]).unwrap();
        std::fs::hard_link(dir.path().join("d/a"), dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("c"), [0u8; 24]).unwrap();
        assert_eq!(disk_usage(dir.path()).unwrap(), 1024);
    }
}
