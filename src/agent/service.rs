//! The real agent: the gRPC agent protocol served over the snapshot store (images) and the
//! runc runtime (containers).
//!
//! # Scopes
//! `PrepareImages` works for a scope: an image-cache build (`imc-…`) or a container group
//! (`eci-…`). A cache scope builds a staging snapshot `prep-<scope>` that `BuildSnapshot`
//! renames to the emulator's snapshot id, so a Ready cache costs one unpack and no copy. A
//! group scope looks each image up in its base snapshot (ECI `ImageSnapshotId`) first and
//! pulls only the rest, into a snapshot of its own (`grp-<scope>-<hash>`) that lives as long
//! as the group. See [`prepare`] for the pull policies.
//!
//! # Snapshots in use
//! A container's rootfs is an overlay whose lower layer is a directory of a snapshot. Deleting
//! a cache's snapshot while groups still run from it hides it at once (nothing new can use it)
//! and frees its disk when the last of those groups is deleted, as a file system frees an
//! unlinked file only when its last user closes it. The check and the mark are one decision
//! under one lock ([`usage`]), so a group cannot start from a snapshot a delete is removing.
//!
//! # Bounded state
//! Nothing the agent keeps per group or cache outlives it: a deleted group's and a deleted
//! cache snapshot's pull counters go (as cAdvisor drops the series of removed containers), and
//! what `PrepareImages` made for a scope that nobody used within [`PREPARED_TTL`] is dropped
//! with its snapshots at the next `PrepareImages`.

use std::{
    collections::HashMap,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::Stream;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument as _, debug, info, info_span, warn};

mod images;
mod metrics;
mod prepare;
mod usage;

pub use self::metrics::render_metrics;
use self::{
    prepare::Prepared,
    usage::{DeleteDecision, SnapshotUsage},
};
use super::{
    image::{
        Bandwidth, ContentStore, PullScope, PullStats, RegistryClient, RegistryConfig, Shaper,
        SnapshotError, SnapshotStore, StoreError,
    },
    listen::{self, AgentListener},
    loopback::{LoopbackAgent, LoopbackError},
    pb,
    runc::{RuncRuntime, RuntimeConfig, RuntimeError, create_private_dir},
    status::AgentError,
};

/// How long what `PrepareImages` made for a scope waits for its `CreateContainerGroup` or
/// `BuildSnapshot`. The emulator asks for those right after the pull; an hour covers any
/// retry, and past it the scope was abandoned (its group or cache failed or was deleted
/// before it was created), so its snapshots would otherwise hold the disk for ever.
pub(crate) const PREPARED_TTL: Duration = Duration::from_secs(60 * 60);

/// How to build a [`LocalAgent`].
#[derive(Clone, Debug)]
pub struct LocalAgentConfig {
    /// Everything the agent keeps: `content/` (blobs), `snapshots/`, `runtime/`.
    pub data_dir: PathBuf,
    /// How registries are reached (plain HTTP, insecure, platform).
    pub registry: RegistryConfig,
    /// The total download rate of the agent (the emulated WAN); `None` for unshaped.
    pub bandwidth: Option<Bandwidth>,
    /// The runc binary.
    pub runc: PathBuf,
    /// The host bridge the agent creates for its groups.
    pub bridge: String,
    /// The pod address range of that bridge (`10.203.0.0/24`).
    pub pod_cidr: String,
    /// `data_dir` is made for this run (it must not exist yet) and removed on shutdown.
    pub scratch: bool,
}

impl LocalAgentConfig {
    /// Defaults for an agent keeping its data under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            registry: RegistryConfig::default(),
            bandwidth: None,
            runc: PathBuf::from("runc"),
            bridge: "ecivk0".to_owned(),
            pod_cidr: "10.203.0.0/24".to_owned(),
            scratch: false,
        }
    }
}

/// Errors of starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is not this process's own (or cannot be made).
    #[error("cannot use the agent's data directory")]
    DataDir(#[source] RuntimeError),
    /// The content store could not be opened.
    #[error("cannot open the agent's content store")]
    Content(#[source] StoreError),
    /// The snapshot store could not be opened.
    #[error("cannot open the agent's snapshot store")]
    Snapshots(#[source] SnapshotError),
    /// The container runtime could not be started.
    #[error("cannot start the runc runtime")]
    Runtime(#[source] RuntimeError),
}

/// The real agent. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct LocalAgent {
    inner: Arc<Inner>,
}

struct Inner {
    /// The data directory when it is removed on shutdown.
    scratch: Option<PathBuf>,
    content: Arc<ContentStore>,
    snapshots: SnapshotStore,
    registry: RegistryClient,
    runtime: Arc<RuncRuntime>,
    stats: PullStats,
    /// What `PrepareImages` made ready, by scope.
    prepared: Mutex<HashMap<String, Prepared>>,
    /// Which groups run from which snapshots, and which snapshots are deleted.
    usage: Mutex<SnapshotUsage>,
    /// The scope a cache snapshot was built for (snapshot id → scope), so that deleting the
    /// snapshot drops the scope's pull counters.
    snapshot_scopes: Mutex<HashMap<String, PullScope>>,
    /// A garbage collection of the content store is spawned and has not started yet.
    gc_queued: AtomicBool,
}

impl LocalAgent {
    /// Opens the stores under the data directory and starts the runtime, removing what a
    /// previous agent on the same directory left running or half-built.
    ///
    /// # Errors
    /// When a store or the runtime cannot be opened.
    pub async fn start(config: LocalAgentConfig) -> Result<Self, StartError> {
        // Before anything is created inside: the directory must be this process's alone.
        {
            let (dir, scratch) = (config.data_dir.clone(), config.scratch);
            tokio::task::spawn_blocking(move || create_private_dir(&dir, scratch))
                .await
                .map_err(|join| StartError::DataDir(RuntimeError::Join(join)))?
                .map_err(StartError::DataDir)?;
        }
        let content = Arc::new(
            ContentStore::open(config.data_dir.join("content"))
                .await
                .map_err(StartError::Content)?,
        );
        let registry = RegistryClient::new(config.registry.clone());
        let stats = PullStats::default();
        let shaper = config.bandwidth.map(|rate| Arc::new(Shaper::new(rate)));
        let snapshots = SnapshotStore::open(
            config.data_dir.join("snapshots"),
            content.clone(),
            registry.clone(),
            shaper,
            stats.clone(),
        )
        .await
        .map_err(StartError::Snapshots)?;
        let runtime = RuncRuntime::open(RuntimeConfig {
            root: config.data_dir.join("runtime"),
            runc: config.runc.clone(),
            bridge: config.bridge.clone(),
            pod_cidr: config.pod_cidr.clone(),
        })
        .await
        .map_err(StartError::Runtime)?;
        let agent = Self {
            inner: Arc::new(Inner {
                scratch: config.scratch.then(|| config.data_dir.clone()),
                content,
                snapshots,
                registry,
                runtime,
                stats,
                prepared: Mutex::new(HashMap::new()),
                usage: Mutex::new(SnapshotUsage::default()),
                snapshot_scopes: Mutex::new(HashMap::new()),
                gc_queued: AtomicBool::new(false),
            }),
        };
        agent.remove_group_snapshots().await;
        // Blobs of the snapshots a previous agent deleted or left behind.
        agent.collect_garbage_later();
        Ok(agent)
    }

    /// Bytes pulled so far, for stats and Prometheus.
    pub fn pull_stats(&self) -> &PullStats {
        &self.inner.stats
    }

    /// Prometheus text of the agent's counters.
    pub fn metrics(&self) -> String {
        render_metrics(&self.inner.stats.snapshot())
    }

    /// Stops and removes every container group (processes, mounts, namespaces, disk).
    pub async fn shutdown(&self) {
        self.inner.runtime.shutdown().await;
        self.remove_group_snapshots().await;
        if let Some(dir) = &self.inner.scratch {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }

    /// Serves the agent protocol on `listener` (a unix socket whose peers are checked, or TCP
    /// with a bearer token) until `shutdown` completes, then stops every group.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn serve(
        self,
        listener: AgentListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let agent = self.clone();
        let served = listen::serve(self, listener, shutdown).await;
        agent.shutdown().await;
        served
    }

    /// Serves the agent on a private unix socket in a background task (the emulator's
    /// in-process agent); stopping it removes every group.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn spawn_loopback(self) -> Result<LoopbackAgent, LoopbackError> {
        let agent = self.clone();
        LoopbackAgent::spawn("local", Some(agent), move |listener, shutdown| {
            self.serve(listener, shutdown)
        })
        .await
    }

    /// Group snapshots (`grp-…`) belong to groups of this agent's life only.
    async fn remove_group_snapshots(&self) {
        let root = self.inner.snapshots.root().to_owned();
        let Ok(mut entries) = tokio::fs::read_dir(&root).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prepare::GROUP_SNAPSHOT_PREFIX) {
                let _ = self.inner.snapshots.delete(&name).await;
            }
        }
    }

    /// Removes snapshot `id`, which [`SnapshotUsage`] marked `deleting`, then clears the mark
    /// and the pull counters of the cache it was built for.
    async fn remove_snapshot(&self, id: &str) -> Result<(), SnapshotError> {
        let removed = self.inner.snapshots.delete(id).await;
        self.inner.usage.lock().finish_delete(id);
        if let Some(scope) = self.inner.snapshot_scopes.lock().remove(id) {
            self.inner.stats.forget(&scope);
        }
        self.collect_garbage_later();
        removed.map(|_| ())
    }

    /// Removes, in the background, the blobs no snapshot refers to any more (one collection
    /// for any number of deletes made while it waits for running builds).
    fn collect_garbage_later(&self) {
        if self.inner.gc_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let agent = self.clone();
        tokio::spawn(
            async move {
                agent.inner.gc_queued.store(false, Ordering::Release);
                match agent.inner.snapshots.collect_garbage().await {
                    Ok(removed) => debug!(blobs.removed = removed, "collected garbage"),
                    Err(error) => {
                        warn!(
                            error = &error as &dyn std::error::Error,
                            "cannot collect garbage"
                        );
                    }
                }
            }
            .instrument(info_span!("collect_garbage")),
        );
    }

    /// Drops what `PrepareImages` made for scopes that were neither created nor built within
    /// [`PREPARED_TTL`] of `now`, with their snapshots and counters.
    async fn sweep_prepared(&self, now: Instant) {
        let expired: Vec<(String, Prepared)> = {
            let mut prepared = self.inner.prepared.lock();
            let old: Vec<String> = prepared
                .iter()
                .filter(|(_, p)| {
                    !p.created && now.saturating_duration_since(p.prepared_at) >= PREPARED_TTL
                })
                .map(|(scope, _)| scope.clone())
                .collect();
            old.into_iter()
                .filter_map(|scope| prepared.remove_entry(&scope))
                .collect()
        };
        for (scope, p) in expired {
            info!(scope = %scope, "dropping images prepared for a scope that never used them");
            for snapshot in p.staging_snapshot.iter().chain(&p.own_snapshots) {
                if let Err(error) = self.inner.snapshots.delete(snapshot).await {
                    warn!(snapshot = %snapshot, error = &error as &dyn std::error::Error, "cannot remove an abandoned snapshot");
                }
            }
            self.inner.stats.forget(&prepare::pull_scope(&scope));
            self.collect_garbage_later();
        }
    }
}

impl std::fmt::Debug for LocalAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAgent")
            .field("snapshots", &self.inner.snapshots.root())
            .finish_non_exhaustive()
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::agent_server::Agent for LocalAgent {
    type PrepareImagesStream = ReceiverStream<Result<pb::PrepareImagesProgress, Status>>;
    type LogsStream = BoxStream<pb::LogChunk>;
    type ExecStream = BoxStream<pb::ExecOutput>;

    async fn prepare_images(
        &self,
        request: Request<pb::PrepareImagesRequest>,
    ) -> Result<Response<Self::PrepareImagesStream>, Status> {
        let stream = prepare::start(self.clone(), request.into_inner())?;
        Ok(Response::new(stream))
    }

    async fn build_snapshot(
        &self,
        request: Request<pb::BuildSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        let request = request.into_inner();
        let snapshots = &self.inner.snapshots;
        if let Some(existing) = snapshots.get(&request.snapshot_id).await? {
            return Ok(Response::new(images::snapshot_message(&existing)));
        }
        let staging = self
            .inner
            .prepared
            .lock()
            .get(&request.scope)
            .and_then(|p| p.staging_snapshot.clone())
            .ok_or_else(|| AgentError::NoImagesPrepared {
                scope: request.scope.clone(),
            })?;
        let manifest = snapshots.rename(&staging, &request.snapshot_id).await?;
        self.inner.prepared.lock().remove(&request.scope);
        self.inner
            .snapshot_scopes
            .lock()
            .insert(manifest.id.clone(), PullScope::Cache(request.scope.clone()));
        info!(snapshot = %manifest.id, size_bytes = manifest.size_bytes, "snapshot built");
        Ok(Response::new(images::snapshot_message(&manifest)))
    }

    async fn delete_snapshot(
        &self,
        request: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        let id = request.into_inner().snapshot_id;
        let decision = self.inner.usage.lock().request_delete(&id);
        match decision {
            DeleteDecision::Deferred => {
                info!(snapshot = %id, "snapshot deleted while groups run from it; freed after them");
            }
            DeleteDecision::DeleteNow => self.remove_snapshot(&id).await?,
        }
        Ok(Response::new(pb::DeleteSnapshotResponse {}))
    }

    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::GroupStatus>, Status> {
        let request = request.into_inner();
        let images = images::for_group(self, &request).await?;
        let status = self.inner.runtime.create_group(request, images).await?;
        Ok(Response::new(status))
    }

    async fn update_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::GroupStatus>, Status> {
        let request = request.into_inner();
        let images = images::for_group(self, &request).await?;
        let status = self.inner.runtime.update_group(request, images).await?;
        Ok(Response::new(status))
    }

    async fn inspect_group(
        &self,
        request: Request<pb::InspectGroupRequest>,
    ) -> Result<Response<pb::GroupStatus>, Status> {
        let id = request.into_inner().group_id;
        let status = self.inner.runtime.inspect_group(&id).await?;
        Ok(Response::new(status))
    }

    async fn restart_group(
        &self,
        request: Request<pb::RestartGroupRequest>,
    ) -> Result<Response<pb::GroupStatus>, Status> {
        let id = request.into_inner().group_id;
        let status = self.inner.runtime.restart_group(&id).await?;
        Ok(Response::new(status))
    }

    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        let request = request.into_inner();
        let grace = std::time::Duration::from_secs(
            u64::try_from(request.grace_period_seconds).unwrap_or(0),
        );
        self.inner
            .runtime
            .delete_group(&request.group_id, grace, request.force)
            .await?;
        let own = self.inner.prepared.lock().remove(&request.group_id);
        let released = self.inner.usage.lock().release(&request.group_id);
        self.inner
            .stats
            .forget(&PullScope::Group(request.group_id.clone()));
        // Every removal is tried (each clears its `deleting` mark); the first failure is
        // reported.
        let mut first_error = None;
        for snapshot in own.into_iter().flat_map(|p| p.own_snapshots) {
            if let Err(error) = self.inner.snapshots.delete(&snapshot).await {
                first_error.get_or_insert(error);
            }
            self.collect_garbage_later();
        }
        for snapshot in released {
            info!(snapshot = %snapshot, "freeing a deleted snapshot its last group no longer uses");
            if let Err(error) = self.remove_snapshot(&snapshot).await {
                first_error.get_or_insert(error);
            }
        }
        if let Some(error) = first_error {
            return Err(error.into());
        }
        Ok(Response::new(pb::DeleteGroupResponse {}))
    }

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let stream = self.inner.runtime.logs(request.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn exec(
        &self,
        request: Request<Streaming<pb::ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        use futures::StreamExt as _;
        let mut input = request.into_inner();
        let start = match input.next().await {
            Some(Ok(pb::ExecInput {
                input: Some(pb::exec_input::Input::Start(start)),
            })) => start,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(AgentError::ExecWithoutStart.into());
            }
        };
        let stream = self.inner.runtime.exec(start, input.boxed()).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stats(
        &self,
        request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsResponse>, Status> {
        let id = request.into_inner().group_id;
        let stats = self.inner.runtime.stats(&id).await?;
        Ok(Response::new(stats))
    }
}

#[cfg(test)]
mod tests;
