//! The `simulated` runtime: an agent that behaves like a machine without running anything.
//!
//! No process is started and no byte is pulled. Images "pull" in a few progress steps whose
//! duration is configured, containers "run" from the moment they start, and their whole history
//! (exits, restarts, back-off, logs, usage) is a pure function of the time elapsed since the group
//! was created, read from tokio's clock. Tests that pause tokio's clock therefore see exactly the
//! same sequence every run.
//!
//! A container's behaviour is chosen through its environment:
//! - `SIMULATED_EXIT_CODE=N`: the container exits with `N` after `SIMULATED_RUN_MS` (default 0)
//!   milliseconds; whether it restarts follows the group's restart policy.
//! - without it the container runs until the group is deleted.
//!
//! An image whose reference contains one of [`SimulatedConfig::fail_images`] fails to pull with
//! `NOT_FOUND`, like a missing manifest; one containing one of [`SimulatedConfig::huge_images`]
//! weighs 64 GiB.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{sync::Mutex, time::Instant};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

mod timeline;

use self::timeline::{CyclePhase, Timeline};
use super::{
    listen::{self, AgentListener},
    loopback::{LoopbackAgent, LoopbackError},
    pb::{
        self, BuildSnapshotRequest, ContainerSpec, ContainerState, ContainerStateKind,
        ContainerStatus, CreateGroupRequest, DeleteGroupRequest, DeleteGroupResponse,
        DeleteSnapshotRequest, DeleteSnapshotResponse, ExecInput, ExecOutput, GroupPhase,
        GroupStatus, ImageProgress, InspectGroupRequest, LogChunk, LogsRequest,
        PrepareImagesProgress, PrepareImagesRequest, ResourceUsage, RestartGroupRequest, Snapshot,
        StatsRequest, StatsResponse, agent_server::AgentServer, exec_input, exec_output,
    },
    status::AgentError,
};

/// Timing and failure knobs of the simulated machine.
#[derive(Debug, Clone)]
pub struct SimulatedConfig {
    /// Time to "pull" one image that is not in the base snapshot.
    pub pull_delay_per_image: Duration,
    /// Progress messages per pulled image (at least 1).
    pub progress_steps: u32,
    /// Time to build a snapshot.
    pub snapshot_delay: Duration,
    /// Time from CreateGroup to the containers running.
    pub start_delay: Duration,
    /// Back-off before a container that exited is started again.
    pub restart_delay: Duration,
    /// Time a delete takes when a container has a preStop hook (capped by the grace period).
    pub pre_stop_delay: Duration,
    /// Image references containing any of these fail to pull.
    pub fail_images: Vec<String>,
    /// Image references containing any of these weigh 64 GiB (to overflow a cache).
    pub huge_images: Vec<String>,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            pull_delay_per_image: Duration::ZERO,
            progress_steps: 4,
            snapshot_delay: Duration::ZERO,
            start_delay: Duration::ZERO,
            restart_delay: Duration::from_secs(1),
            pre_stop_delay: Duration::ZERO,
            fail_images: vec!["does-not-exist".to_owned()],
            huge_images: vec!["huge-image".to_owned()],
        }
    }
}

/// The simulated agent, a `tonic` service. Cheap to clone; clones share one machine.
#[derive(Debug, Clone)]
pub struct SimulatedAgent {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SimulatedConfig,
    /// Wall time (unix ms) at `epoch`, to turn tokio instants into timestamps.
    epoch_wall_ms: i64,
    epoch: Instant,
    state: Mutex<Machine>,
}

#[derive(Debug, Default)]
struct Machine {
    /// Prepared images per scope (`eci-…` or `imc-…`).
    scopes: HashMap<String, Vec<ImageProgress>>,
    snapshots: HashMap<String, Snapshot>,
    groups: HashMap<String, SimGroup>,
}

#[derive(Debug, Clone)]
struct SimGroup {
    spec: CreateGroupRequest,
    /// Start of the current generation (creation or last restart).
    generation_start: Instant,
    /// Restarts carried over from earlier generations, per container.
    carried_restarts: i32,
}

// === impl SimulatedAgent ===

impl SimulatedAgent {
    /// A fresh machine with `config`.
    pub fn new(config: SimulatedConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                epoch_wall_ms: jiff::Timestamp::now().as_millisecond(),
                epoch: Instant::now(),
                state: Mutex::new(Machine::default()),
            }),
        }
    }

    /// The tonic service wrapping this agent.
    pub fn into_service(self) -> AgentServer<Self> {
        AgentServer::new(self)
    }

    /// Serves this agent on `listener` (a unix socket whose peers are checked, or TCP with a
    /// bearer token) until `shutdown` resolves.
    ///
    /// # Errors
    /// The transport error that ended the server.
    pub async fn serve(
        self,
        listener: AgentListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        listen::serve(self, listener, shutdown).await
    }

    /// Serves this agent on a private unix socket in a background task.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn spawn_loopback(self) -> Result<LoopbackAgent, LoopbackError> {
        LoopbackAgent::spawn("simulated", None, move |listener, shutdown| {
            self.serve(listener, shutdown)
        })
        .await
    }

    fn wall_ms(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.inner.epoch);
        self.inner.epoch_wall_ms + i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 2)
    }

    fn fails(&self, image: &str) -> bool {
        self.inner
            .config
            .fail_images
            .iter()
            .any(|pattern| !pattern.is_empty() && image.contains(pattern.as_str()))
    }

    fn size_of(&self, image: &str) -> u64 {
        let huge = self
            .inner
            .config
            .huge_images
            .iter()
            .any(|pattern| !pattern.is_empty() && image.contains(pattern.as_str()));
        if huge {
            64 * 1024 * 1024 * 1024
        } else {
            simulated_image_size(image)
        }
    }

    async fn status_of(&self, group_id: &str) -> Result<GroupStatus, Status> {
        let machine = self.inner.state.lock().await;
        let group = machine
            .groups
            .get(group_id)
            .ok_or_else(|| AgentError::GroupUnknown {
                group_id: group_id.to_owned(),
            })?;
        Ok(self.group_status(group_id, group, Instant::now()))
    }

    fn group_status(&self, group_id: &str, group: &SimGroup, now: Instant) -> GroupStatus {
        let start = group.generation_start + self.inner.config.start_delay;
        let init_containers = group
            .spec
            .init_containers
            .iter()
            .map(|c| {
                if now < start {
                    waiting(c, "PodInitializing", "")
                } else {
                    let at = self.wall_ms(start);
                    ContainerStatus {
                        name: c.name.clone(),
                        image: c.image.clone(),
                        ready: false,
                        restart_count: 0,
                        current: Some(ContainerState {
                            kind: ContainerStateKind::Terminated.into(),
                            reason: "Completed".into(),
                            started_at_ms: at,
                            finished_at_ms: at,
                            ..ContainerState::default()
                        }),
                        previous: None,
                    }
                }
            })
            .collect();
        let mut containers = Vec::with_capacity(group.spec.containers.len());
        let mut any_live = false;
        let mut any_failed = false;
        for spec in &group.spec.containers {
            let timeline = Timeline::of(spec, &group.spec.restart_policy, &self.inner.config);
            if now < start {
                containers.push(waiting(spec, "ContainerCreating", ""));
                any_live = true;
                continue;
            }
            let view = timeline.at(now.duration_since(start));
            let to_state = |phase: &CyclePhase| self.cycle_state(start, phase);
            let (current, live) = match &view.current {
                CyclePhase::Running { .. } => (to_state(&view.current), true),
                CyclePhase::BackOff { .. } => (to_state(&view.current), true),
                CyclePhase::Exited { code, .. } => {
                    any_failed |= *code != 0;
                    (to_state(&view.current), false)
                }
            };
            any_live |= live;
            containers.push(ContainerStatus {
                name: spec.name.clone(),
                image: spec.image.clone(),
                ready: matches!(view.current, CyclePhase::Running { .. }),
                restart_count: view.restarts.saturating_add(group.carried_restarts),
                current: Some(current),
                previous: view.previous.as_ref().map(to_state),
            });
        }
        let phase = if now < start {
            GroupPhase::Pending
        } else if any_live {
            GroupPhase::Running
        } else if any_failed {
            GroupPhase::Failed
        } else {
            GroupPhase::Succeeded
        };
        GroupStatus {
            group_id: group_id.to_owned(),
            phase: phase.into(),
            init_containers,
            containers,
            ip: String::new(),
        }
    }

    fn cycle_state(&self, start: Instant, phase: &CyclePhase) -> ContainerState {
        match *phase {
            CyclePhase::Running { started } => ContainerState {
                kind: ContainerStateKind::Running.into(),
                reason: "Started".into(),
                started_at_ms: self.wall_ms(start + started),
                ..ContainerState::default()
            },
            CyclePhase::Exited {
                started,
                finished,
                code,
            } => ContainerState {
                kind: ContainerStateKind::Terminated.into(),
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                exit_code: code,
                started_at_ms: self.wall_ms(start + started),
                finished_at_ms: self.wall_ms(start + finished),
                ..ContainerState::default()
            },
            CyclePhase::BackOff { .. } => ContainerState {
                kind: ContainerStateKind::Waiting.into(),
                reason: "CrashLoopBackOff".into(),
                message: "Back-off restarting failed container".into(),
                ..ContainerState::default()
            },
        }
    }
}

fn waiting(spec: &ContainerSpec, reason: &str, message: &str) -> ContainerStatus {
    ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone(),
        ready: false,
        restart_count: 0,
        current: Some(ContainerState {
            kind: ContainerStateKind::Waiting.into(),
            reason: reason.into(),
            message: message.into(),
            ..ContainerState::default()
        }),
        previous: None,
    }
}

/// A deterministic size for an image reference: 8 MiB plus up to 248 MiB, from an FNV-1a hash.
pub fn simulated_image_size(image: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in image.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (8 + hash % 248) * 1024 * 1024
}

// === impl Agent for SimulatedAgent ===

type StreamOf<T> = ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl pb::agent_server::Agent for SimulatedAgent {
    type PrepareImagesStream = StreamOf<PrepareImagesProgress>;
    type LogsStream = StreamOf<LogChunk>;
    type ExecStream = StreamOf<ExecOutput>;

    async fn prepare_images(
        &self,
        request: Request<PrepareImagesRequest>,
    ) -> Result<Response<Self::PrepareImagesStream>, Status> {
        let request = request.into_inner();
        if request.scope.is_empty() {
            return Err(AgentError::EmptyScope.into());
        }
        if let Some(image) = request.images.iter().find(|i| self.fails(i)) {
            return Err(AgentError::SimulatedPullFailed {
                image: image.clone(),
            }
            .into());
        }
        let in_snapshot: Vec<String> = {
            let machine = self.inner.state.lock().await;
            machine
                .snapshots
                .get(&request.base_snapshot_id)
                .map(|s| s.images.iter().map(|i| i.image.clone()).collect())
                .unwrap_or_default()
        };
        let mut images: Vec<ImageProgress> = request
            .images
            .iter()
            .map(|image| {
                let size = self.size_of(image);
                let cached = in_snapshot.iter().any(|i| i == image);
                ImageProgress {
                    image: image.clone(),
                    bytes_done: if cached { size } else { 0 },
                    bytes_total: size,
                    from_snapshot: cached,
                    complete: cached,
                }
            })
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let agent = self.clone();
        let scope = request.scope.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let steps = agent.inner.config.progress_steps.max(1);
                let step_delay = agent.inner.config.pull_delay_per_image / steps;
                for index in 0..images.len() {
                    if images[index].complete {
                        continue;
                    }
                    for step in 1..=steps {
                        tokio::time::sleep(step_delay).await;
                        let image = &mut images[index];
                        image.bytes_done = image.bytes_total * u64::from(step) / u64::from(steps);
                        image.complete = step == steps;
                        let progress = PrepareImagesProgress {
                            images: images.clone(),
                            done: false,
                        };
                        if tx.send(Ok(progress)).await.is_err() {
                            return; // the caller went away; nothing is recorded
                        }
                    }
                }
                agent
                    .inner
                    .state
                    .lock()
                    .await
                    .scopes
                    .insert(scope, images.clone());
                let _ = tx
                    .send(Ok(PrepareImagesProgress { images, done: true }))
                    .await;
            },
            tracing::info_span!("simulated_prepare_images", scope = %request.scope),
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn build_snapshot(
        &self,
        request: Request<BuildSnapshotRequest>,
    ) -> Result<Response<Snapshot>, Status> {
        let request = request.into_inner();
        if let Some(existing) = self
            .inner
            .state
            .lock()
            .await
            .snapshots
            .get(&request.snapshot_id)
        {
            return Ok(Response::new(existing.clone()));
        }
        tokio::time::sleep(self.inner.config.snapshot_delay).await;
        let mut machine = self.inner.state.lock().await;
        let images =
            machine
                .scopes
                .remove(&request.scope)
                .ok_or_else(|| AgentError::NothingPrepared {
                    scope: request.scope.clone(),
                })?;
        let snapshot = Snapshot {
            snapshot_id: request.snapshot_id.clone(),
            size_bytes: images.iter().map(|i| i.bytes_total).sum(),
            images,
        };
        machine
            .snapshots
            .insert(request.snapshot_id, snapshot.clone());
        Ok(Response::new(snapshot))
    }

    async fn delete_snapshot(
        &self,
        request: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<DeleteSnapshotResponse>, Status> {
        let id = request.into_inner().snapshot_id;
        self.inner.state.lock().await.snapshots.remove(&id);
        Ok(Response::new(DeleteSnapshotResponse {}))
    }

    async fn create_group(
        &self,
        request: Request<CreateGroupRequest>,
    ) -> Result<Response<GroupStatus>, Status> {
        let spec = request.into_inner();
        if spec.group_id.is_empty() || spec.containers.is_empty() {
            return Err(AgentError::EmptyGroup.into());
        }
        let id = spec.group_id.clone();
        {
            let mut machine = self.inner.state.lock().await;
            machine.scopes.remove(&id);
            match machine.groups.get(&id).map(|g| g.spec.generation) {
                Some(existing) if existing == spec.generation => {}
                Some(existing) if existing > spec.generation => {
                    return Err(AgentError::StaleGeneration {
                        group_id: id,
                        existing,
                        requested: spec.generation,
                    }
                    .into());
                }
                _ => {
                    machine.groups.insert(
                        id.clone(),
                        SimGroup {
                            spec,
                            generation_start: Instant::now(),
                            carried_restarts: 0,
                        },
                    );
                }
            }
        }
        self.status_of(&id).await.map(Response::new)
    }

    async fn update_group(
        &self,
        request: Request<CreateGroupRequest>,
    ) -> Result<Response<GroupStatus>, Status> {
        let spec = request.into_inner();
        let id = spec.group_id.clone();
        {
            let mut machine = self.inner.state.lock().await;
            machine.scopes.remove(&id);
            let now = Instant::now();
            let group = machine
                .groups
                .get(&id)
                .ok_or_else(|| AgentError::GroupUnknown {
                    group_id: id.clone(),
                })?;
            let existing = group.spec.generation;
            if existing > spec.generation {
                return Err(AgentError::StaleGeneration {
                    group_id: id,
                    existing,
                    requested: spec.generation,
                }
                .into());
            }
            if existing < spec.generation {
                let most = self
                    .group_status(&id, group, now)
                    .containers
                    .iter()
                    .map(|c| c.restart_count)
                    .max()
                    .unwrap_or(0);
                // Every container is stopped and started again on the new spec: one restart
                // on top of what it had, as for RestartGroup.
                machine.groups.insert(
                    id.clone(),
                    SimGroup {
                        spec,
                        generation_start: now,
                        carried_restarts: most.saturating_add(1),
                    },
                );
            }
        }
        self.status_of(&id).await.map(Response::new)
    }

    async fn inspect_group(
        &self,
        request: Request<InspectGroupRequest>,
    ) -> Result<Response<GroupStatus>, Status> {
        self.status_of(&request.into_inner().group_id)
            .await
            .map(Response::new)
    }

    async fn restart_group(
        &self,
        request: Request<RestartGroupRequest>,
    ) -> Result<Response<GroupStatus>, Status> {
        let id = request.into_inner().group_id;
        {
            let mut machine = self.inner.state.lock().await;
            let now = Instant::now();
            let status = machine
                .groups
                .get(&id)
                .map(|g| self.group_status(&id, g, now))
                .ok_or_else(|| AgentError::GroupUnknown {
                    group_id: id.clone(),
                })?;
            let most = status
                .containers
                .iter()
                .map(|c| c.restart_count)
                .max()
                .unwrap_or(0);
            if let Some(group) = machine.groups.get_mut(&id) {
                // Every container is started once more: one restart on top of what it had.
                group.carried_restarts = most.saturating_add(1);
                group.generation_start = now;
            }
        }
        self.status_of(&id).await.map(Response::new)
    }

    async fn delete_group(
        &self,
        request: Request<DeleteGroupRequest>,
    ) -> Result<Response<DeleteGroupResponse>, Status> {
        let request = request.into_inner();
        let has_pre_stop = {
            let machine = self.inner.state.lock().await;
            machine.groups.get(&request.group_id).is_some_and(|g| {
                g.spec
                    .containers
                    .iter()
                    .any(|c| !c.pre_stop_exec.is_empty())
            })
        };
        if has_pre_stop && !request.force {
            let grace =
                Duration::from_secs(u64::try_from(request.grace_period_seconds).unwrap_or(0));
            tokio::time::sleep(self.inner.config.pre_stop_delay.min(grace)).await;
        }
        let mut machine = self.inner.state.lock().await;
        machine.groups.remove(&request.group_id);
        machine.scopes.remove(&request.group_id);
        Ok(Response::new(DeleteGroupResponse {}))
    }

    async fn logs(
        &self,
        request: Request<LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let request = request.into_inner();
        let (lines, start) = {
            let machine = self.inner.state.lock().await;
            let group =
                machine
                    .groups
                    .get(&request.group_id)
                    .ok_or_else(|| AgentError::GroupUnknown {
                        group_id: request.group_id.clone(),
                    })?;
            let spec = group
                .spec
                .containers
                .iter()
                .chain(&group.spec.init_containers)
                .find(|c| c.name == request.container)
                .ok_or_else(|| AgentError::ContainerUnknown {
                    group_id: request.group_id.clone(),
                    container: request.container.clone(),
                })?;
            let start = group.generation_start + self.inner.config.start_delay;
            let now = Instant::now();
            if now < start {
                (Vec::new(), start)
            } else {
                let timeline = Timeline::of(spec, &group.spec.restart_policy, &self.inner.config);
                let (previous, current) = timeline.log_lines(spec, now.duration_since(start));
                (if request.previous { previous } else { current }, start)
            }
        };
        let mut rendered: Vec<String> = lines
            .into_iter()
            .filter_map(|(offset, line)| {
                let at = self.wall_ms(start + offset);
                if request.since_ms > 0 && at < request.since_ms {
                    return None;
                }
                Some(if request.timestamps {
                    let ts = jiff::Timestamp::from_millisecond(at)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    format!("{ts} {line}\n")
                } else {
                    format!("{line}\n")
                })
            })
            .collect();
        if request.tail_lines > 0 {
            let keep = usize::try_from(request.tail_lines).unwrap_or(usize::MAX);
            let skip = rendered.len().saturating_sub(keep);
            rendered.drain(..skip);
        }
        let mut data = rendered.concat().into_bytes();
        if request.limit_bytes > 0 {
            data.truncate(usize::try_from(request.limit_bytes).unwrap_or(usize::MAX));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.try_send(Ok(LogChunk { data }))
            .map_err(|_| AgentError::LogChannelClosed)?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn exec(
        &self,
        request: Request<Streaming<ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let mut inbound = request.into_inner();
        let start = match inbound.next().await {
            Some(Ok(ExecInput {
                input: Some(exec_input::Input::Start(start)),
            })) => start,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(AgentError::ExecWithoutStart.into());
            }
        };
        let status = self.status_of(&start.group_id).await?;
        let container = status
            .containers
            .iter()
            .find(|c| c.name == start.container)
            .ok_or_else(|| AgentError::ContainerUnknown {
                group_id: start.group_id.clone(),
                container: start.container.clone(),
            })?;
        if !container.ready {
            return Err(AgentError::NotRunning {
                container: start.container.clone(),
            }
            .into());
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let group_id = start.group_id.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let out = |bytes: Vec<u8>| ExecOutput {
                    output: Some(exec_output::Output::Stdout(bytes)),
                };
                let exit = |code: i32| ExecOutput {
                    output: Some(exec_output::Output::Exit(pb::ExecExit { exit_code: code })),
                };
                let program = start
                    .command
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default();
                let program = program.rsplit('/').next().unwrap_or(program);
                let code = match program {
                    "echo" => {
                        let text = format!("{}\n", start.command[1..].join(" "));
                        let _ = tx.send(Ok(out(text.into_bytes()))).await;
                        0
                    }
                    "hostname" => {
                        let _ = tx.send(Ok(out(format!("{group_id}\n").into_bytes()))).await;
                        0
                    }
                    "true" => 0,
                    "false" => 1,
                    // `cat` echoes stdin until it is closed.
                    "cat" => {
                        while let Some(Ok(message)) = inbound.next().await {
                            let bytes = match message.input {
                                Some(exec_input::Input::Stdin(bytes)) => bytes,
                                Some(exec_input::Input::CloseStdin(true)) => break,
                                _ => continue,
                            };
                            if tx.send(Ok(out(bytes))).await.is_err() {
                                return;
                            }
                        }
                        0
                    }
                    _ => {
                        let text = format!("simulated exec: {}\n", start.command.join(" "));
                        let _ = tx.send(Ok(out(text.into_bytes()))).await;
                        0
                    }
                };
                let _ = tx.send(Ok(exit(code))).await;
            },
            tracing::info_span!("simulated_exec", group = %start.group_id, container = %start.container),
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn stats(
        &self,
        request: Request<StatsRequest>,
    ) -> Result<Response<StatsResponse>, Status> {
        let id = request.into_inner().group_id;
        let (status, memory_gib, elapsed) = {
            let machine = self.inner.state.lock().await;
            let group = machine
                .groups
                .get(&id)
                .ok_or_else(|| AgentError::GroupUnknown {
                    group_id: id.clone(),
                })?;
            let now = Instant::now();
            (
                self.group_status(&id, group, now),
                group.spec.memory_gib,
                now.duration_since(group.generation_start),
            )
        };
        let secs = elapsed.as_secs();
        let containers: Vec<pb::ContainerStats> = status
            .containers
            .iter()
            .map(|c| {
                let running = c.ready;
                let nano_cores = if running { 5_000_000 } else { 0 };
                let memory = if running { 32 * 1024 * 1024 } else { 0 };
                pb::ContainerStats {
                    name: c.name.clone(),
                    usage: Some(ResourceUsage {
                        cpu_usage_core_nanoseconds: nano_cores * secs,
                        cpu_usage_nano_cores: nano_cores,
                        memory_usage_bytes: memory,
                        memory_working_set_bytes: memory,
                        memory_rss_bytes: memory / 2,
                        memory_cache_bytes: memory / 2,
                        memory_available_bytes: 0,
                    }),
                }
            })
            .collect();
        let sum = |f: fn(&ResourceUsage) -> u64| -> u64 {
            containers
                .iter()
                .filter_map(|c| c.usage.as_ref())
                .map(f)
                .sum()
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // GiB of a spec: small, non-negative
        let limit = (memory_gib.max(0.0) * 1024.0 * 1024.0 * 1024.0) as u64;
        let usage = ResourceUsage {
            cpu_usage_core_nanoseconds: sum(|u| u.cpu_usage_core_nanoseconds),
            cpu_usage_nano_cores: sum(|u| u.cpu_usage_nano_cores),
            memory_usage_bytes: sum(|u| u.memory_usage_bytes),
            memory_working_set_bytes: sum(|u| u.memory_working_set_bytes),
            memory_rss_bytes: sum(|u| u.memory_rss_bytes),
            memory_cache_bytes: sum(|u| u.memory_cache_bytes),
            memory_available_bytes: limit.saturating_sub(sum(|u| u.memory_working_set_bytes)),
        };
        Ok(Response::new(StatsResponse {
            timestamp_ms: self.wall_ms(Instant::now()),
            usage: Some(usage),
            containers,
            network_rx_bytes: 1024 * secs,
            network_tx_bytes: 512 * secs,
        }))
    }
}

#[cfg(test)]
mod tests;
