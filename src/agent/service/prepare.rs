//! `PrepareImages`: pulling the images of a cache build or a container group, with progress.
//!
//! A group's image is taken from its base snapshot (ECI `ImageSnapshotId`) when the snapshot
//! holds it, by the ECI pull policy of its containers:
//! - `IfNotPresent` (and no policy): from the snapshot, nothing fetched;
//! - `Always`: the tag is resolved again; the same manifest means nothing is fetched, a new one
//!   is pulled fetching only the blobs this machine lacks;
//! - `Never`: from the snapshot, or the request fails when the snapshot lacks it.
//!
//! Any other image is pulled as a fresh ECI instance pulls it: every blob downloaded again,
//! even one another group already has on this host, so a group's counters show what it would
//! cost on the cloud.

use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    hash::{Hash as _, Hasher as _},
};

use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{Instrument as _, info, info_span};

use super::LocalAgent;
use crate::agent::{
    image::{
        BuildEvent, BuildRequest, Fetch, ImageRef, PullScope, RegistryClient, RegistryCredential,
        SnapshotManifest,
    },
    pb::{self, ImageProgress, PrepareImagesProgress},
    status::AgentError,
};

/// Snapshots made for one group, removed with it (and at agent start).
pub(crate) const GROUP_SNAPSHOT_PREFIX: &str = "grp-";
/// The staging snapshot of a cache build, renamed by `BuildSnapshot`.
const CACHE_STAGING_PREFIX: &str = "prep-";

/// What `PrepareImages` made ready for one scope.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// When it was made ready (for [`super::PREPARED_TTL`]).
    pub prepared_at: Instant,
    /// Whether a group was created from it; then it lives until `DeleteContainerGroup`.
    pub created: bool,
    /// A cache build's staging snapshot.
    pub staging_snapshot: Option<String>,
    /// A group's images (as requested) → the snapshot holding each.
    pub images: HashMap<String, String>,
    /// Snapshots built for this group alone.
    pub own_snapshots: Vec<String>,
}

impl Prepared {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            prepared_at: now,
            created: false,
            staging_snapshot: None,
            images: HashMap::new(),
            own_snapshots: Vec::new(),
        }
    }
}

/// Whom a scope's downloads are counted for.
pub(crate) fn pull_scope(scope: &str) -> PullScope {
    if is_group(scope) {
        PullScope::Group(scope.to_owned())
    } else {
        PullScope::Cache(scope.to_owned())
    }
}

/// Checks the request and starts preparing in the background; the stream carries progress
/// and ends with `done` or an error status.
pub(super) fn start(
    agent: LocalAgent,
    request: pb::PrepareImagesRequest,
) -> Result<ReceiverStream<Result<PrepareImagesProgress, Status>>, Status> {
    if request.scope.is_empty() || request.images.is_empty() {
        return Err(AgentError::EmptyPrepare.into());
    }
    let mut images: Vec<String> = Vec::new();
    for image in &request.images {
        parse_image(image)?;
        if !images.contains(image) {
            images.push(image.clone());
        }
    }
    let (tx, rx) = mpsc::channel(16);
    let span = info_span!("prepare_images", scope = %request.scope);
    tokio::spawn(
        async move {
            agent.sweep_prepared(Instant::now()).await;
            let result = if is_group(&request.scope) {
                prepare_group(&agent, &request, images, &tx).await
            } else {
                prepare_cache(&agent, &request, images, &tx).await
            };
            if let Err(status) = result {
                info!(error = %status.message(), "preparing images failed");
                let _ = tx.send(Err(status)).await;
            }
        }
        .instrument(span),
    );
    Ok(ReceiverStream::new(rx))
}

/// A requested image as a reference.
fn parse_image(image: &str) -> Result<ImageRef, AgentError> {
    image
        .parse::<ImageRef>()
        .map_err(|source| AgentError::ParseImage {
            image: image.to_owned(),
            source: Box::new(source),
        })
}

fn is_group(scope: &str) -> bool {
    scope.starts_with("eci-")
}

type Sender = mpsc::Sender<Result<PrepareImagesProgress, Status>>;

async fn prepare_cache(
    agent: &LocalAgent,
    request: &pb::PrepareImagesRequest,
    images: Vec<String>,
    tx: &Sender,
) -> Result<(), Status> {
    let inner = &agent.inner;
    let staging = format!("{CACHE_STAGING_PREFIX}{}", request.scope);
    // A staging snapshot left by an earlier prepare of this scope may hold other images.
    inner.snapshots.delete(&staging).await?;
    let mut progress = Tracker::new(&images);
    let mut build = BuildRequest::new(
        staging.clone(),
        PullScope::Cache(request.scope.clone()),
        images.clone(),
    );
    build.credentials = credentials(request);
    build.size_limit = (request.size_limit_bytes > 0).then_some(request.size_limit_bytes);
    build.registry = registry_for(agent, request)?;
    run_build(agent, build, (0..images.len()).collect(), &mut progress, tx).await?;
    let mut prepared = Prepared::new(Instant::now());
    prepared.staging_snapshot = Some(staging);
    inner
        .prepared
        .lock()
        .insert(request.scope.clone(), prepared);
    let _ = tx.send(Ok(progress.message(true))).await;
    Ok(())
}

async fn prepare_group(
    agent: &LocalAgent,
    request: &pb::PrepareImagesRequest,
    images: Vec<String>,
    tx: &Sender,
) -> Result<(), Status> {
    let inner = &agent.inner;
    let base = base_snapshot(agent, &request.base_snapshot_id).await?;
    let registry = registry_for(agent, request)?;
    let credentials = credentials(request);
    let mut progress = Tracker::new(&images);
    let mut prepared = Prepared::new(Instant::now());
    // Images to pull as a fresh instance does, and images whose tag moved since the snapshot.
    let (mut fresh, mut refresh) = (Vec::new(), Vec::new());
    for (index, requested) in images.iter().enumerate() {
        let policy = request
            .pull_policies
            .get(requested)
            .map_or("IfNotPresent", String::as_str);
        let normalised = parse_image(requested)?.to_string();
        let held = base.as_ref().and_then(|b| {
            b.images
                .iter()
                .find(|i| i.image == normalised)
                .map(|i| (b, i))
        });
        match (held, policy) {
            (Some((snapshot, image)), "Always") => {
                let image_ref = parse_image(requested)?;
                let current = registry
                    .as_ref()
                    .unwrap_or(&inner.registry)
                    .resolve(&image_ref, &credentials)
                    .await?;
                if current.manifest_digest == image.manifest_digest {
                    progress.mark_from_snapshot(index, image.pull_size);
                    prepared
                        .images
                        .insert(requested.clone(), snapshot.id.clone());
                } else {
                    refresh.push(index);
                }
            }
            (Some((snapshot, image)), _) => {
                progress.mark_from_snapshot(index, image.pull_size);
                prepared
                    .images
                    .insert(requested.clone(), snapshot.id.clone());
            }
            (None, "Never") => {
                return Err(AgentError::NeverPull {
                    image: requested.clone(),
                }
                .into());
            }
            (None, _) => fresh.push(index),
        }
    }
    let _ = tx.send(Ok(progress.message(false))).await;
    // Snapshots this call made (not those an earlier prepare of the group made and a running
    // group may use): removed again when a later build of the call fails.
    let mut made: Vec<String> = Vec::new();
    for (indices, fetch, tag) in [(fresh, Fetch::Always, ""), (refresh, Fetch::IfMissing, "r")] {
        if indices.is_empty() {
            continue;
        }
        let subset: Vec<String> = indices.iter().map(|&i| images[i].clone()).collect();
        let id = group_snapshot_id(&request.scope, tag, &subset);
        let mut build = BuildRequest::new(
            id.clone(),
            PullScope::Group(request.scope.clone()),
            subset.clone(),
        );
        build.credentials = credentials.clone();
        build.fetch = fetch;
        build.registry = registry.clone();
        let existed = inner.snapshots.get(&id).await?.is_some();
        if let Err(status) = run_build(agent, build, indices, &mut progress, tx).await {
            for snapshot in &made {
                let _ = inner.snapshots.delete(snapshot).await;
            }
            return Err(status);
        }
        if !existed {
            made.push(id.clone());
        }
        for image in subset {
            prepared.images.insert(image, id.clone());
        }
        prepared.own_snapshots.push(id);
    }
    if let Some(base) = &base {
        prepared.own_snapshots.retain(|s| *s != base.id);
    }
    {
        let mut all = inner.prepared.lock();
        if let Some(earlier) = all.remove(&request.scope) {
            // An update prepares a created group again: its earlier snapshots still go with
            // the group, and it stays created (never swept while it runs).
            prepared.created = earlier.created;
            for snapshot in earlier.own_snapshots {
                if !prepared.own_snapshots.contains(&snapshot) {
                    prepared.own_snapshots.push(snapshot);
                }
            }
        }
        all.insert(request.scope.clone(), prepared);
    }
    let _ = tx.send(Ok(progress.message(true))).await;
    Ok(())
}

/// The base snapshot, unless it is unknown or already deleted (then the group pulls).
async fn base_snapshot(agent: &LocalAgent, id: &str) -> Result<Option<SnapshotManifest>, Status> {
    if id.is_empty() || agent.inner.usage.lock().is_gone(id) {
        return Ok(None);
    }
    Ok(agent.inner.snapshots.get(id).await?)
}

/// Runs one snapshot build, turning its events into progress for the images at `indices`.
async fn run_build(
    agent: &LocalAgent,
    build: BuildRequest,
    indices: Vec<usize>,
    progress: &mut Tracker,
    tx: &Sender,
) -> Result<(), Status> {
    let (events_tx, mut events) = mpsc::channel(64);
    let snapshot_agent = agent.clone();
    let task = tokio::spawn(async move {
        snapshot_agent
            .inner
            .snapshots
            .build(build, Some(events_tx))
            .await
    });
    while let Some(event) = events.recv().await {
        progress.apply(&indices, &event);
        if tx.send(Ok(progress.message(false))).await.is_err() {
            // The caller went away: finishing the build still serves a retry.
            break;
        }
    }
    // Nobody reads the build's events any more: unread, they would fill the channel and
    // hold the build (and its lock on the store) in a send for ever.
    drop(events);
    task.await.map_err(AgentError::BuildTask)??;
    Ok(())
}

fn credentials(request: &pb::PrepareImagesRequest) -> Vec<RegistryCredential> {
    request
        .credentials
        .iter()
        .map(|c| RegistryCredential {
            server: c.server.clone(),
            username: c.username.clone(),
            password: c.password.clone().into(),
        })
        .collect()
}

/// A client for this request's plain-HTTP and insecure registries and platform, if it names
/// any.
///
/// # Errors
/// `INVALID_ARGUMENT` for a platform that is not `os/arch[/variant]`.
fn registry_for(
    agent: &LocalAgent,
    request: &pb::PrepareImagesRequest,
) -> Result<Option<RegistryClient>, Status> {
    if request.plain_http_registries.is_empty()
        && request.insecure_registries.is_empty()
        && request.platform.is_empty()
    {
        return Ok(None);
    }
    let mut config = agent.inner.registry.config().clone();
    if !request.platform.is_empty() {
        config.platform =
            request
                .platform
                .parse()
                .map_err(|e: crate::agent::image::RegistryError| {
                    Status::invalid_argument(e.to_string())
                })?;
    }
    config
        .plain_http
        .extend(request.plain_http_registries.iter().cloned());
    config
        .insecure
        .extend(request.insecure_registries.iter().cloned());
    Ok(Some(RegistryClient::new(config)))
}

/// `grp-<scope>-<tag><hash of the images>`: a new image list (an updated group) gets a new
/// snapshot rather than the old one's images.
fn group_snapshot_id(scope: &str, tag: &str, images: &[String]) -> String {
    let mut hasher = DefaultHasher::new();
    images.hash(&mut hasher);
    format!(
        "{GROUP_SNAPSHOT_PREFIX}{scope}-{tag}{:08x}",
        hasher.finish() & 0xffff_ffff
    )
}

/// Per-image progress of a request, in request order.
struct Tracker {
    images: Vec<ImageProgress>,
}

impl Tracker {
    fn new(images: &[String]) -> Self {
        Self {
            images: images
                .iter()
                .map(|image| ImageProgress {
                    image: image.clone(),
                    ..ImageProgress::default()
                })
                .collect(),
        }
    }

    fn mark_from_snapshot(&mut self, index: usize, size: u64) {
        let image = &mut self.images[index];
        image.bytes_total = size;
        image.bytes_done = size;
        image.from_snapshot = true;
        image.complete = true;
    }

    /// Applies a build event of the images at `indices` (the build's images, in its order).
    fn apply(&mut self, indices: &[usize], event: &BuildEvent) {
        match event {
            BuildEvent::Resolved { images } => {
                for (&index, (_, size)) in indices.iter().zip(images) {
                    self.images[index].bytes_total = *size;
                }
            }
            BuildEvent::Progress { bytes_done, .. } => {
                // A build reports its total only (its images download side by side): shown
                // filling them in build order. Readers use the sum (the cache's progress).
                let mut left = *bytes_done;
                for &index in indices {
                    let image = &mut self.images[index];
                    let part = left.min(image.bytes_total);
                    if !image.complete {
                        image.bytes_done = part;
                    }
                    left -= part;
                }
            }
            BuildEvent::ImagePulled { image, .. } => {
                if let Some(&index) = indices.iter().find(|&&i| self.images[i].image == *image) {
                    let image = &mut self.images[index];
                    image.bytes_done = image.bytes_total;
                    image.complete = true;
                }
            }
        }
    }

    fn message(&self, done: bool) -> PrepareImagesProgress {
        PrepareImagesProgress {
            images: self.images.clone(),
            done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_fills_images_in_build_order() {
        let mut t = Tracker::new(&["a".into(), "b".into(), "c".into()]);
        t.mark_from_snapshot(1, 50);
        let indices = [0, 2];
        t.apply(
            &indices,
            &BuildEvent::Resolved {
                images: vec![("a".into(), 100), ("c".into(), 30)],
            },
        );
        t.apply(
            &indices,
            &BuildEvent::Progress {
                bytes_done: 110,
                bytes_total: 130,
            },
        );
        let m = t.message(false);
        assert_eq!(
            m.images.iter().map(|i| i.bytes_done).collect::<Vec<_>>(),
            [100, 50, 10]
        );
        t.apply(
            &indices,
            &BuildEvent::ImagePulled {
                image: "c".into(),
                bytes_pulled: 30,
            },
        );
        let m = t.message(true);
        assert!(m.images[2].complete && m.images[2].bytes_done == 30);
        assert!(m.images[1].from_snapshot && !m.images[0].from_snapshot);
    }

    #[test]
    fn group_snapshots_are_named_for_their_images() {
        let a = group_snapshot_id("eci-1", "", &["busybox".into()]);
        let b = group_snapshot_id("eci-1", "", &["nginx".into()]);
        assert!(a.starts_with("grp-eci-1-"));
        assert_ne!(a, b);
    }
}
