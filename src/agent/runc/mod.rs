//! The real container runtime of the agent: container groups as runc containers.
//!
//! A group is one network namespace (a veth pair to the agent's host bridge, an address from the
//! pod CIDR, loopback up) shared by all its containers. Each container is an OCI bundle whose
//! rootfs is an overlay of the image's read-only unpacked layers and a writable upper dir of its
//! own, with the group's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and volumes
//! bind-mounted in, and cgroup limits under a parent cgroup dedicated to this agent's root.
//!
//! # Processes
//!
//! Every container instance is a *foreground* `runc run` child of the agent (and every exec a
//! foreground `runc exec`): runc stays the parent of the container's init, forwards it signals
//! and exits with its status, and tokio reaps runc. So the agent never has to become a child
//! subreaper (a process-wide setting a library should not make for its host, the emulator or a
//! test binary), no zombie is left, and exit codes come straight from `wait`. The container's
//! stdout and stderr are pipes the agent reads line by line into timestamped log files. The price:
//! containers do not survive the agent; [`RuncRuntime::open`] therefore removes whatever a
//! crashed agent left on the same root.
//!
//! A container or exec with a terminal gets a pseudo-terminal the agent opens as runc's stdio
//! (runc takes `--console-socket` only with `--detach`, which would lose the exit code); runc
//! copies between it and the container's own terminal and follows its size on SIGWINCH.
//!
//! Not done: a container's own stdin (`ContainerSpec::stdin`; the protocol has no attach), and
//! restarting a container on a fresh writable layer (an instance that restarts keeps the upper
//! dir of the one before).
//!
//! # Layout under `RuntimeConfig::root`
//!
//! `runc/` (runc's `--root`), `groups/<group>/` (`etc/`, `volumes/<name>/`,
//! `containers/<name>/{bundle,rootfs,upper,work,logs,subpaths}`); `disks/<disk-id>/` and
//! `nfs/<server>/<path>/`, the data of disk and NFS volumes, outlive every group.
//! The network namespaces are `<tag>-<group>`, the cgroups `/<tag>/<group>/<container>`, where
//! `<tag>` is derived from the root, so two agents on two roots never touch each other's.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;

use super::pb;

mod bundle;
mod cgroups;
mod command;
mod console;
mod error;
mod exec;
mod group;
mod logs;
mod mounts;
mod net;
mod private_dir;
mod stats;
mod supervise;
mod update;
mod validate;
mod volumes;

pub use self::error::RuntimeError;
pub(crate) use self::private_dir::create_private_dir;
use self::{
    command::Runc,
    group::{Container, Group, RunState},
    net::Network,
};

/// Where and how the runtime keeps its state.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// All state: bundles, overlay upper/work dirs, volumes, logs, runc's `--root`.
    pub root: PathBuf,
    /// The runc binary (a bare name is looked up on `PATH`).
    pub runc: PathBuf,
    /// The host bridge the runtime creates on demand (at most 15 characters).
    pub bridge: String,
    /// The pod network, e.g. `10.203.0.0/24`: the bridge takes the first host address, groups
    /// the next free ones.
    pub pod_cidr: String,
}

impl RuntimeConfig {
    /// A configuration with `runc` from `PATH`.
    pub fn new(
        root: impl Into<PathBuf>,
        bridge: impl Into<String>,
        pod_cidr: impl Into<String>,
    ) -> Self {
        Self {
            root: root.into(),
            runc: PathBuf::from("runc"),
            bridge: bridge.into(),
            pod_cidr: pod_cidr.into(),
        }
    }
}

/// One image, already unpacked by the snapshot store.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The read-only lower dir (never written to; other groups may share it).
    pub rootfs: PathBuf,
    /// The run configuration from the image's config blob.
    pub config: ImageRunConfig,
}

/// The parts of an image's config that decide how its containers run.
#[derive(Debug, Clone, Default)]
pub struct ImageRunConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `NAME=value`.
    pub env: Vec<String>,
    /// `WorkingDir`; empty for `/`.
    pub working_dir: String,
    /// `User`: `uid[:gid]` or a name from the image's `/etc/passwd`; empty for root.
    pub user: String,
}

/// The input of an exec after its `start` message.
pub type ExecInputStream =
    futures::stream::BoxStream<'static, Result<pb::ExecInput, tonic::Status>>;

/// The runc runtime. Shared as `Arc<RuncRuntime>`.
#[derive(Debug)]
pub struct RuncRuntime {
    config: RuntimeConfig,
    runc: Runc,
    network: Network,
    /// Derived from the root: prefix of netns names, name of the parent cgroup.
    tag: String,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    /// Creates, deletes and restarts hold it shared, [`RuncRuntime::shutdown`] exclusively.
    changes: tokio::sync::RwLock<()>,
    /// One lock per group id: changes to one group run one at a time, but a slow delete (a
    /// grace period of seconds) never holds up another group's start, as on separate machines.
    group_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    shutting_down: watch::Sender<bool>,
}

/// Held while one group changes.
struct ChangeGuard<'a> {
    _one: tokio::sync::OwnedMutexGuard<()>,
    _all: tokio::sync::RwLockReadGuard<'a, ()>,
}

/// The name a runtime on `root` (canonical) gives its network namespaces (`<tag>-<group>`)
/// and its parent cgroup: runtimes on different roots never touch each other's.
pub fn tag_of(root: &Path) -> String {
    format!(
        "ecivk-{}",
        &hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()))[..8]
    )
}

/// Runs a blocking closure off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(RuntimeError::Join)?
}

// === impl RuncRuntime ===

impl RuncRuntime {
    /// Opens the runtime on `config.root`, removing what a previous agent left there
    /// (containers, mounts, network namespaces, cgroups, directories).
    ///
    /// # Errors
    /// A bad configuration, or a root that cannot be created.
    pub async fn open(config: RuntimeConfig) -> Result<Arc<Self>, RuntimeError> {
        // The root is cleaned up as the runtime's own (unmounted under, `run/` and `groups/`
        // removed): a symlink there, planted or not, would turn that on where it points.
        if tokio::fs::symlink_metadata(&config.root)
            .await
            .is_ok_and(|meta| meta.file_type().is_symlink())
        {
            return Err(RuntimeError::InvalidConfig {
                reason: format!("runtime root {} is a symlink", config.root.display()),
            });
        }
        tokio::fs::create_dir_all(&config.root)
            .await
            .map_err(RuntimeError::io("create", &config.root))?;
        let root = tokio::fs::canonicalize(&config.root)
            .await
            .map_err(RuntimeError::io("resolve", &config.root))?;
        if root.parent().is_none() {
            return Err(RuntimeError::InvalidConfig {
                reason: format!("runtime root {} is /", config.root.display()),
            });
        }
        let tag = tag_of(&root);
        let network = Network::new(&config.bridge, &config.pod_cidr, &tag)?;
        let config = RuntimeConfig { root, ..config };
        let runtime = Self {
            runc: Runc::new(config.runc.clone(), config.root.join("runc")),
            config,
            network,
            tag,
            groups: Mutex::new(HashMap::new()),
            changes: tokio::sync::RwLock::new(()),
            group_locks: Mutex::new(HashMap::new()),
            shutting_down: watch::Sender::new(false),
        };
        runtime.remove_leftovers().await;
        for dir in ["runc", "groups"] {
            let path = runtime.config.root.join(dir);
            tokio::fs::create_dir_all(&path)
                .await
                .map_err(RuntimeError::io("create", &path))?;
        }
        Ok(Arc::new(runtime))
    }

    fn groups_dir(&self) -> PathBuf {
        self.config.root.join("groups")
    }

    /// Removes every container, mount, namespace, cgroup and directory of this root.
    async fn remove_leftovers(&self) {
        if let Ok(listed) = self.runc.list().await {
            for container in listed {
                tracing::info!(container = %container.id, "removing a leftover container");
                let _ = self.runc.kill(&container.id, "KILL", true).await;
                let _ = self.runc.delete_force(&container.id).await;
            }
        }
        let root = self.config.root.clone();
        let parent = format!("/{}", self.tag);
        let groups = self.groups_dir();
        let run = root.join("run");
        let removed = blocking(move || {
            for (point, errno) in mounts::unmount_under(&root) {
                tracing::warn!(mount = %point.display(), %errno, "cannot unmount a leftover");
            }
            cgroups::remove_tree(&parent);
            for dir in [groups, run] {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(RuntimeError::io("remove", dir))?;
                }
            }
            Ok(())
        })
        .await;
        if let Err(error) = removed {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot remove leftovers"
            );
        }
        self.network.remove_leftovers().await;
    }

    fn group(&self, group_id: &str) -> Result<Arc<Group>, RuntimeError> {
        self.groups
            .lock()
            .get(group_id)
            .cloned()
            .ok_or_else(|| RuntimeError::GroupNotFound {
                group_id: group_id.to_owned(),
            })
    }

    fn container(
        &self,
        group_id: &str,
        name: &str,
    ) -> Result<(Arc<Group>, Arc<Container>), RuntimeError> {
        let group = self.group(group_id)?;
        let container =
            group
                .find(name)
                .cloned()
                .ok_or_else(|| RuntimeError::ContainerNotFound {
                    group_id: group_id.to_owned(),
                    container: name.to_owned(),
                })?;
        Ok((group, container))
    }

    /// Creates and starts a group; `images` are keyed by `ContainerSpec::image` as written.
    /// Returns once the group's network, volumes and bundles exist; the containers start in
    /// the background (the status is Pending, then Running).
    ///
    /// Same generation as the existing group: its status, unchanged. Higher: the group is
    /// replaced. Lower: [`RuntimeError::StaleGeneration`].
    ///
    /// # Errors
    /// See [`RuntimeError`].
    pub async fn create_group(
        &self,
        request: pb::CreateGroupRequest,
        images: HashMap<String, PreparedImage>,
    ) -> Result<pb::GroupStatus, RuntimeError> {
        let _changes = self.begin_change(&request, &images).await?;
        let existing = self.groups.lock().get(&request.group_id).cloned();
        if let Some(existing) = existing {
            let generation = existing.request.generation;
            if generation == request.generation {
                return Ok(existing.status());
            }
            if generation > request.generation {
                return Err(RuntimeError::StaleGeneration {
                    group_id: request.group_id,
                    existing: generation,
                    requested: request.generation,
                });
            }
            self.remove_group(&existing, Duration::ZERO, true).await;
        }
        let group = self.build_group(request, &images).await?;
        let status = group.status();
        self.groups
            .lock()
            .insert(group.id.clone(), Arc::clone(&group));
        self.start_supervisor(&group).await;
        Ok(status)
    }

    /// Waits for the right to change one group (see `group_locks`).
    /// What a create or an update of a group does first: checks the request against its
    /// images, takes the group's change lock, and refuses once the runtime is shutting down.
    async fn begin_change(
        &self,
        request: &pb::CreateGroupRequest,
        images: &HashMap<String, PreparedImage>,
    ) -> Result<ChangeGuard<'_>, RuntimeError> {
        validate::create_request(request, images)?;
        let changes = self.change(&request.group_id).await;
        if *self.shutting_down.borrow() {
            return Err(RuntimeError::ShuttingDown);
        }
        Ok(changes)
    }

    async fn change(&self, group_id: &str) -> ChangeGuard<'_> {
        let all = self.changes.read().await;
        let one = {
            let mut locks = self.group_locks.lock();
            // Locks nobody holds or waits for are dropped, so the map stays small.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(group_id.to_owned()).or_default())
        };
        ChangeGuard {
            _one: one.lock_owned().await,
            _all: all,
        }
    }

    async fn start_supervisor(&self, group: &Arc<Group>) {
        let span = tracing::info_span!("group", group = %group.id);
        let handle = tokio::spawn(tracing::Instrument::instrument(
            supervise::supervise(self.runc.clone(), Arc::clone(group)),
            span,
        ));
        *group.supervisor.lock().await = Some(handle);
    }

    /// Makes the network, files, volumes, overlays and bundles of a group; on failure removes
    /// what was made.
    async fn build_group(
        &self,
        request: pb::CreateGroupRequest,
        images: &HashMap<String, PreparedImage>,
    ) -> Result<Arc<Group>, RuntimeError> {
        let dir = self.groups_dir().join(&request.group_id);
        // A directory of the same group can only be a leftover of a failed attempt.
        let stale = dir.clone();
        blocking(move || {
            let _ = mounts::unmount_under(&stale);
            let _ = std::fs::remove_dir_all(&stale);
            Ok(())
        })
        .await?;
        let network = self.network.create(&request.group_id).await?;
        let made = self.lay_out(&request, images, &dir, &network).await;
        match made {
            Ok((init_containers, containers)) => Ok(Arc::new(Group {
                id: request.group_id.clone(),
                request,
                dir,
                network,
                init_containers,
                containers,
                stage: Mutex::new(group::Stage::Initializing),
                stopping: watch::Sender::new(false),
                supervisor: tokio::sync::Mutex::new(None),
            })),
            Err(error) => {
                self.remove_files(&request.group_id, &dir).await;
                self.network.destroy(&network).await;
                Err(error)
            }
        }
    }

    #[allow(clippy::type_complexity)] // two lists of the same thing
    async fn lay_out(
        &self,
        request: &pb::CreateGroupRequest,
        images: &HashMap<String, PreparedImage>,
        dir: &Path,
        network: &net::GroupNetwork,
    ) -> Result<(Vec<Arc<Container>>, Vec<Arc<Container>>), RuntimeError> {
        let hostname = if request.hostname.is_empty() {
            request.group_id.clone()
        } else {
            request.hostname.clone()
        };
        let etc = dir.join("etc");
        let host_resolv = tokio::fs::read_to_string("/etc/resolv.conf")
            .await
            .unwrap_or_default();
        let files = [
            (
                "hosts",
                bundle::hosts_file(&network.ip.to_string(), &hostname, &request.host_aliases),
            ),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", bundle::resolv_conf(request, &host_resolv)),
        ];
        {
            let etc = etc.clone();
            blocking(move || {
                std::fs::create_dir_all(&etc).map_err(RuntimeError::io("create", &etc))?;
                for (name, content) in files {
                    let path = etc.join(name);
                    std::fs::write(&path, content).map_err(RuntimeError::io("write", &path))?;
                }
                Ok(())
            })
            .await?;
        }
        let volumes = {
            let volumes_dir = dir.join("volumes");
            let kept = self.config.root.clone();
            let specs = request.volumes.clone();
            blocking(move || volumes::prepare(&volumes_dir, &kept, &specs)).await?
        };
        let volumes = Arc::new(volumes);
        let mut made = (Vec::new(), Vec::new());
        for (init, spec) in request
            .init_containers
            .iter()
            .map(|c| (true, c))
            .chain(request.containers.iter().map(|c| (false, c)))
        {
            let image = images.get(&spec.image).ok_or_else(|| {
                RuntimeError::invalid(format!(
                    "container {}: image {} was not prepared",
                    spec.name, spec.image
                ))
            })?;
            let container = self
                .lay_out_container(request, spec, image, dir, network, &hostname, &volumes)
                .await?;
            if init {
                made.0.push(container);
            } else {
                made.1.push(container);
            }
        }
        Ok(made)
    }

    #[allow(clippy::too_many_arguments)] // one call site, all of them the group's parts
    async fn lay_out_container(
        &self,
        request: &pb::CreateGroupRequest,
        spec: &pb::ContainerSpec,
        image: &PreparedImage,
        dir: &Path,
        network: &net::GroupNetwork,
        hostname: &str,
        volumes: &Arc<HashMap<String, volumes::Prepared>>,
    ) -> Result<Arc<Container>, RuntimeError> {
        let runc_id = format!("{}_{}", request.group_id, spec.name);
        let cdir = dir.join("containers").join(&spec.name);
        let args = bundle::command_of(spec, &image.config);
        if args.is_empty() {
            return Err(RuntimeError::invalid(format!(
                "container {}: no command (none in the request or the image)",
                spec.name
            )));
        }
        let pick = |own: f64, group: f64| if own > 0.0 { own } else { group };
        let cpu = pick(spec.cpu, request.cpu);
        #[allow(clippy::cast_possible_truncation)] // GiB of a spec: small, non-negative
        let memory_bytes =
            (pick(spec.memory_gib, request.memory_gib).max(0.0) * 1024.0 * 1024.0 * 1024.0) as i64;
        let env = bundle::env_of(spec, &image.config, hostname);
        let cwd = bundle::cwd_of(spec, &image.config);
        let cgroups_path = format!("/{}/{}/{}", self.tag, request.group_id, spec.name);
        let netns = network.netns_path();
        let hostname = hostname.to_owned();
        let lower = image.rootfs.clone();
        let image_user = image.config.user.clone();
        let etc = dir.join("etc");
        let spec_owned = spec.clone();
        let volumes = Arc::clone(volumes);
        let id = runc_id.clone();
        let dirs = cdir.clone();
        let staged = blocking(move || {
            let user = bundle::resolve_user(&lower, spec_owned.run_as_user, &image_user)?;
            let user = bundle::secure_user(user, &spec_owned)?;
            let capability_add = bundle::capabilities_of(&spec_owned.capability_add)?;
            let process = bundle::ProcessPlan {
                args,
                env,
                cwd,
                user,
            };
            let (upper, work, rootfs, bundle_dir) = (
                dirs.join("upper"),
                dirs.join("work"),
                dirs.join("rootfs"),
                dirs.join("bundle"),
            );
            for path in [&upper, &work, &rootfs, &bundle_dir] {
                std::fs::create_dir_all(path).map_err(RuntimeError::io("create", path))?;
            }
            let spec_error = |source| RuntimeError::Spec {
                container_id: id.clone(),
                source,
            };
            let mut mounts_list = Vec::new();
            for name in ["hosts", "hostname", "resolv.conf"] {
                mounts_list.push(
                    bundle::bind_mount(&etc.join(name), &format!("/etc/{name}"), false)
                        .map_err(spec_error)?,
                );
            }
            let (volume_mounts, staged) =
                volumes::container_mounts(&volumes, &spec_owned, &id, &dirs.join("subpaths"))?;
            mounts_list.extend(volume_mounts);
            let oci = bundle::spec(&bundle::BundlePlan {
                rootfs: &rootfs,
                process: &process,
                hostname: &hostname,
                netns,
                cgroups_path,
                cpu,
                memory_bytes,
                mounts: mounts_list,
                terminal: spec_owned.tty,
                read_only_root: spec_owned.read_only_root_filesystem,
                capability_add,
                privileged: spec_owned.privileged,
            })
            .map_err(spec_error)?;
            oci.save(bundle_dir.join("config.json"))
                .map_err(spec_error)?;
            mounts::mount_overlay(&lower, &upper, &work, &rootfs)?;
            Ok(staged)
        })
        .await?;
        Ok(Arc::new(Container {
            name: spec.name.clone(),
            image: spec.image.clone(),
            runc_id,
            bundle: cdir.join("bundle"),
            lower: image.rootfs.clone(),
            dir: cdir.clone(),
            logs: logs::LogFiles::new(cdir.join("logs")),
            pre_stop: spec.pre_stop_exec.clone(),
            staged,
            tty: spec.tty,
            state: Mutex::new(RunState::waiting(if request.init_containers.is_empty() {
                "ContainerCreating"
            } else {
                "PodInitializing"
            })),
            ended: watch::Sender::new(0),
        }))
    }

    /// Unmounts and removes a group's directory and cgroups.
    async fn remove_files(&self, group_id: &str, dir: &Path) {
        let dir = dir.to_owned();
        let cgroup = format!("/{}/{group_id}", self.tag);
        let removed = blocking(move || {
            for (point, errno) in mounts::unmount_under(&dir) {
                tracing::warn!(mount = %point.display(), %errno, "cannot unmount");
            }
            cgroups::remove_tree(&cgroup);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(RuntimeError::io("remove", &dir))?;
            }
            Ok(())
        })
        .await;
        if let Err(error) = removed {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                group = group_id,
                "cannot remove a group's files"
            );
        }
    }

    /// Stops a group and removes all of it.
    async fn remove_group(&self, group: &Arc<Group>, grace: Duration, force: bool) {
        self.groups.lock().remove(&group.id);
        let cgroup = format!("/{}/{}", self.tag, group.id);
        supervise::stop(&self.runc, group, &cgroup, grace, force).await;
        for container in group.all_containers() {
            let _ = self.runc.delete_force(&container.runc_id).await;
        }
        self.remove_files(&group.id, &group.dir).await;
        self.network.destroy(&group.network).await;
    }

    /// The current state of a group.
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`].
    pub async fn inspect_group(&self, group_id: &str) -> Result<pb::GroupStatus, RuntimeError> {
        Ok(self.group(group_id)?.status())
    }

    /// Stops every container of a group (SIGTERM, 10 s, SIGKILL) and starts them again, init
    /// containers first; restart counts go on.
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`].
    pub async fn restart_group(&self, group_id: &str) -> Result<pb::GroupStatus, RuntimeError> {
        let _changes = self.change(group_id).await;
        let group = self.group(group_id)?;
        let cgroup = format!("/{}/{}", self.tag, group.id);
        supervise::stop(&self.runc, &group, &cgroup, Duration::from_secs(10), false).await;
        supervise::reset(&group);
        self.start_supervisor(&group).await;
        Ok(group.status())
    }

    /// Stops (preStop hooks and SIGTERM within `grace`, or SIGKILL at once with `force`) and
    /// removes a group: its processes, mounts, network namespace, veth, cgroups and files.
    /// An unknown group is not an error.
    ///
    /// # Errors
    /// None today: what cannot be removed is logged (and removed by the next `open`).
    pub async fn delete_group(
        &self,
        group_id: &str,
        grace: Duration,
        force: bool,
    ) -> Result<(), RuntimeError> {
        let _changes = self.change(group_id).await;
        let Ok(group) = self.group(group_id) else {
            return Ok(());
        };
        self.remove_group(&group, grace, force).await;
        Ok(())
    }

    /// The log of one container (see `pb::LogsRequest` for the options). A follow ends when
    /// the instance exits or the group is deleted.
    ///
    /// # Errors
    /// Unknown group or container.
    pub async fn logs(
        &self,
        request: pb::LogsRequest,
    ) -> Result<ReceiverStream<Result<pb::LogChunk, tonic::Status>>, RuntimeError> {
        let (_, container) = self.container(&request.group_id, &request.container)?;
        let instance = container.state.lock().instances;
        let files = container.logs.clone();
        let alive: logs::StillRunning = Box::new(move || {
            let state = container.state.lock();
            // A delete ends the instance (after its preStop hook and SIGTERM, whose output
            // is still followed).
            state.running && state.instances == instance
        });
        let rx = logs::read(&files, &request, alive).await?;
        Ok(ReceiverStream::new(rx))
    }

    /// Runs a command in a running container; the output ends with exactly one `exit`.
    ///
    /// # Errors
    /// Unknown group or container, [`RuntimeError::NotRunning`], or runc not startable.
    pub async fn exec(
        &self,
        start: pb::ExecStart,
        input: ExecInputStream,
    ) -> Result<ReceiverStream<Result<pb::ExecOutput, tonic::Status>>, RuntimeError> {
        let (_, container) = self.container(&start.group_id, &start.container)?;
        if !container.state.lock().running {
            return Err(RuntimeError::NotRunning {
                group_id: start.group_id,
                container: start.container,
            });
        }
        let rx = exec::start(&self.runc, &container.runc_id, start, input)?;
        Ok(ReceiverStream::new(rx))
    }

    /// Resource usage of a group and its containers (cgroup counters through `runc events
    /// --stats`; network counters of the group's veth).
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`].
    pub async fn stats(&self, group_id: &str) -> Result<pb::StatsResponse, RuntimeError> {
        let group = self.group(group_id)?;
        Ok(stats::collect(&self.runc, &group).await)
    }

    /// Stops and removes every group (SIGKILL at once), then the bridge: no process, mount,
    /// network namespace, veth, cgroup or bundle directory is left.
    pub async fn shutdown(&self) {
        self.shutting_down.send_replace(true);
        let _changes = self.changes.write().await;
        let groups: Vec<Arc<Group>> = self.groups.lock().values().cloned().collect();
        futures::future::join_all(
            groups
                .iter()
                .map(|group| self.remove_group(group, Duration::ZERO, true)),
        )
        .await;
        self.remove_leftovers().await;
        self.network.remove_bridge().await;
    }
}
