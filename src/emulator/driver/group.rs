//! The lifecycle of a container group: schedule, pull, start, follow, restart, update, delete.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio_stream::StreamExt as _;

use super::{GroupMode, agent_request, logins, registries, with_current};
use crate::{
    agent::pb::{
        self, DeleteGroupRequest, GroupPhase, InspectGroupRequest, PrepareImagesRequest,
        RestartGroupRequest,
    },
    emulator::{
        Core,
        spec::GroupSpec,
        state::{ContainerRuntime, ContainerState, Group, GroupStatus, Store},
    },
};

/// Applies `f` to the group if it still exists at `generation`; `None` otherwise.
async fn with_group<R>(
    core: &Core,
    id: &str,
    generation: u64,
    f: impl FnOnce(&mut Group, Timestamp) -> R,
) -> Option<R> {
    with_current(
        core,
        |store: &mut Store| {
            store
                .groups
                .get_mut(id)
                .filter(|x| x.generation == generation)
        },
        f,
    )
    .await
}

/// Whether the group still exists at all (at any generation).
async fn exists(core: &Core, id: &str) -> bool {
    core.store.lock().await.groups.contains_key(id)
}

fn to_timestamp(ms: i64) -> Option<Timestamp> {
    (ms > 0)
        .then(|| Timestamp::from_millisecond(ms).ok())
        .flatten()
}

fn to_state(s: Option<&pb::ContainerState>) -> ContainerState {
    let Some(s) = s else {
        return ContainerState::default();
    };
    let state = match s.kind() {
        pb::ContainerStateKind::Waiting => "Waiting",
        pb::ContainerStateKind::Running => "Running",
        pb::ContainerStateKind::Terminated => "Terminated",
        pb::ContainerStateKind::Unspecified => "",
    };
    ContainerState {
        state: state.into(),
        detail_status: String::new(),
        exit_code: s.exit_code,
        signal: s.signal,
        reason: s.reason.clone(),
        message: s.message.clone(),
        start_time: to_timestamp(s.started_at_ms),
        finish_time: to_timestamp(s.finished_at_ms),
    }
}

fn to_runtime(c: &pb::ContainerStatus) -> ContainerRuntime {
    ContainerRuntime {
        name: c.name.clone(),
        image: c.image.clone(),
        ready: c.ready,
        restart_count: c.restart_count,
        current: to_state(c.current.as_ref()),
        previous: to_state(c.previous.as_ref()),
    }
}

/// When the container's last two runs started, as far as its states tell.
fn start_times(c: &ContainerRuntime) -> Vec<Timestamp> {
    [c.previous.start_time, c.current.start_time]
        .into_iter()
        .flatten()
        .collect()
}

/// Takes the agent's view of the group: container states, events for what changed, status.
fn apply_status(group: &mut Group, status: &pb::GroupStatus, now: Timestamp) {
    // A real agent gives the group the address its network namespace has; the simulated one
    // gives none and the emulator's own allocation stands.
    if !status.ip.is_empty() && group.intranet_ip != status.ip {
        group.intranet_ip.clone_from(&status.ip);
    }
    let next: Vec<ContainerRuntime> = status.containers.iter().map(to_runtime).collect();
    for c in &next {
        let before = group.containers.iter().find(|b| b.name == c.name).cloned();
        // Each start the agent reports for the first time (also one that already ended, or
        // two between looks), as the kubelet reports them: created, then started.
        let seen: Vec<Timestamp> = before.as_ref().map(start_times).unwrap_or_default();
        let new_starts = start_times(c)
            .into_iter()
            .filter(|t| !seen.contains(t))
            .count();
        for _ in 0..new_starts {
            group.event(
                "Normal",
                "Created",
                format!("Created container {}", c.name),
                now,
            );
            group.event(
                "Normal",
                "Started",
                format!("Started container {}", c.name),
                now,
            );
        }
        let backoff = c.current.reason == "CrashLoopBackOff";
        if backoff
            && before
                .as_ref()
                .is_none_or(|b| b.current.reason != "CrashLoopBackOff")
        {
            group.event(
                "Warning",
                "BackOff",
                format!("Back-off restarting failed container {}", c.name),
                now,
            );
        }
    }
    group.containers = next;
    group.init_containers = status.init_containers.iter().map(to_runtime).collect();
    let target = match status.phase() {
        GroupPhase::Pending | GroupPhase::Unspecified => GroupStatus::Pending,
        GroupPhase::Running => GroupStatus::Running,
        GroupPhase::Succeeded => GroupStatus::Succeeded,
        GroupPhase::Failed => GroupStatus::Failed,
    };
    group.set_status(target, now);
}

fn set_waiting(group: &mut Group, reason: &str, message: &str) {
    for c in &mut group.containers {
        c.ready = false;
        c.current = ContainerState {
            state: "Waiting".into(),
            reason: reason.into(),
            message: message.into(),
            ..ContainerState::default()
        };
    }
}

/// Pulls the group's images and creates it on the agent. `false` when the task must stop.
async fn provision(core: &Arc<Core>, id: &str, generation: u64, mode: GroupMode) -> bool {
    let Some((spec, snapshot, zone)) = with_group(core, id, generation, |g, _| {
        (g.spec.clone(), g.snapshot_id.clone(), g.zone_id.clone())
    })
    .await
    else {
        return false;
    };
    if crate::eci::round_up_spec(spec.cpu, spec.memory).is_none() {
        // No instance is that large: the documented outcome of an unsatisfiable request.
        with_group(core, id, generation, |g, now| {
            g.set_status(GroupStatus::ScheduleFailed, now);
            // ECI's documented reason and message for a group that cannot be scheduled:
            // https://www.alibabacloud.com/help/en/eci/user-guide/custom-events-of-elastic-container-instance
            g.event(
                "Warning",
                "FailedScheduling",
                format!(
                    "Schedule eci failed: no instance specification offers {} vCPU and {} GiB.",
                    spec.cpu, spec.memory
                ),
                now,
            );
        })
        .await;
        return false;
    }
    if mode == GroupMode::Create {
        with_group(core, id, generation, |g, now| {
            g.set_status(GroupStatus::Pending, now);
            g.event(
                "Normal",
                "Scheduled",
                format!("Successfully assigned {id} to {zone}"),
                now,
            );
        })
        .await;
    }
    if !pull(core, id, generation, &spec, snapshot.as_deref()).await {
        return false;
    }
    let request = agent_request::create_group(id, generation, &spec);
    match core.agent.clone().create_group(request).await {
        Ok(status) => {
            let status = status.into_inner();
            let fallback_ip = if status.ip.is_empty() {
                core.store.lock().await.allocate_ip()
            } else {
                String::new()
            };
            let applied = with_group(core, id, generation, |g, now| {
                apply_status(g, &status, now);
                if g.intranet_ip.is_empty() {
                    g.intranet_ip = fallback_ip;
                }
            })
            .await;
            if applied.is_none() && !exists(core, id).await {
                // Deleted while being created: do not leave the containers behind.
                forget_group(core, id).await;
            }
            applied.is_some()
        }
        Err(status) => {
            runtime_failed(id, "create", &status);
            with_group(core, id, generation, |g, now| {
                g.set_status(GroupStatus::Failed, now);
                g.event(
                    "Warning",
                    "Failed",
                    format!("Failed to create containers: {}", status.message()),
                    now,
                );
            })
            .await;
            false
        }
    }
}

/// Pulls until it works (`ErrImagePull` → `ImagePullBackOff`, retried) or the task is stale.
async fn pull(
    core: &Arc<Core>,
    id: &str,
    generation: u64,
    spec: &GroupSpec,
    snapshot: Option<&str>,
) -> bool {
    let images = spec.images();
    loop {
        let request = PrepareImagesRequest {
            scope: id.to_owned(),
            images: images.clone(),
            credentials: logins(&spec.credentials),
            base_snapshot_id: snapshot.unwrap_or_default().to_owned(),
            plain_http_registries: registries(&spec.plain_http_registry),
            insecure_registries: registries(&spec.insecure_registry),
            pull_policies: agent_request::pull_policies(spec),
            size_limit_bytes: 0,
            platform: String::new(),
        };
        let result = async {
            let mut stream = core
                .agent
                .clone()
                .prepare_images(request)
                .await?
                .into_inner();
            let mut announced = false;
            let mut last = None;
            while let Some(message) = stream.next().await {
                let message = message?;
                if !announced {
                    announced = true;
                    let pulling: Vec<String> = message
                        .images
                        .iter()
                        .filter(|i| !i.from_snapshot)
                        .map(|i| i.image.clone())
                        .collect();
                    with_group(core, id, generation, |g, now| {
                        for image in pulling {
                            g.event(
                                "Normal",
                                "Pulling",
                                format!("Pulling image \"{image}\""),
                                now,
                            );
                        }
                    })
                    .await;
                }
                if message.done {
                    last = Some(message);
                }
            }
            Ok::<_, tonic::Status>(last)
        }
        .await;
        match result {
            Ok(Some(done)) => {
                return with_group(core, id, generation, |g, now| {
                    for image in &done.images {
                        let message = if image.from_snapshot {
                            format!(
                                "Container image \"{}\" already present on machine",
                                image.image
                            )
                        } else {
                            format!("Successfully pulled image \"{}\"", image.image)
                        };
                        g.event("Normal", "Pulled", message, now);
                    }
                })
                .await
                .is_some();
            }
            Ok(None) => {}
            Err(status) => {
                runtime_failed(id, "pull", &status);
                let message = format!("Failed to pull image: {}", status.message());
                let alive = with_group(core, id, generation, |g, now| {
                    g.event("Warning", "Failed", message.clone(), now);
                    set_waiting(g, "ErrImagePull", &message);
                })
                .await;
                if alive.is_none() {
                    return false;
                }
            }
        }
        tokio::time::sleep(core.settings.pull_retry).await;
        let alive = with_group(core, id, generation, |g, _| {
            set_waiting(g, "ImagePullBackOff", "Back-off pulling image");
        })
        .await;
        if alive.is_none() {
            return false;
        }
    }
}

/// Applies an UpdateContainerGroup: pulls the new spec's images, then has the machine restart
/// the containers in place on it (same address, restart counts going on). A machine that lost
/// the group, cannot take the change in place, or fails in the middle of it gets the group
/// created afresh.
async fn update(core: &Arc<Core>, id: &str, generation: u64) -> bool {
    let Some((spec, snapshot)) = with_group(core, id, generation, |g, _| {
        (g.spec.clone(), g.snapshot_id.clone())
    })
    .await
    else {
        return false;
    };
    if !pull(core, id, generation, &spec, snapshot.as_deref()).await {
        return false;
    }
    let request = agent_request::create_group(id, generation, &spec);
    match core.agent.clone().update_group(request).await {
        Ok(status) => {
            let status = status.into_inner();
            with_group(core, id, generation, |g, now| {
                g.event(
                    "Normal",
                    "Updated",
                    "Updated the container group; its containers were restarted.",
                    now,
                );
                apply_status(g, &status, now);
            })
            .await
            .is_some()
        }
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            forget_group(core, id).await;
            provision(core, id, generation, GroupMode::Update).await
        }
        // Anything else may have happened after the machine stopped the containers: marking
        // the group Running again would show a group whose containers are gone. Record why,
        // and create it afresh on the new spec, as for a change that cannot be made in place.
        Err(status) => {
            let recorded = with_group(core, id, generation, |g, now| {
                g.event(
                    "Warning",
                    "UpdateFailed",
                    format!(
                        "Failed to update containers in place ({}); recreating them",
                        status.message()
                    ),
                    now,
                );
            })
            .await
            .is_some();
            if !recorded {
                return false;
            }
            forget_group(core, id).await;
            provision(core, id, generation, GroupMode::Update).await
        }
    }
}

async fn forget_group(core: &Core, id: &str) {
    let request = DeleteGroupRequest {
        group_id: id.to_owned(),
        grace_period_seconds: 0,
        force: true,
    };
    if let Err(status) = core.agent.clone().delete_group(request).await {
        tracing::warn!(code = ?status.code(), message = status.message(), "agent cannot delete the group");
    }
}

pub(super) async fn run_group(core: Arc<Core>, id: String, generation: u64, mode: GroupMode) {
    let ready = match mode {
        GroupMode::Create => provision(&core, &id, generation, mode).await,
        GroupMode::Update => update(&core, &id, generation).await,
        GroupMode::Restart => {
            let request = RestartGroupRequest {
                group_id: id.clone(),
            };
            match core.agent.clone().restart_group(request).await {
                Ok(status) => {
                    let status = status.into_inner();
                    with_group(&core, &id, generation, |g, now| {
                        apply_status(g, &status, now)
                    })
                    .await
                    .is_some()
                }
                // The machine lost the group (agent restarted): start it afresh.
                Err(status) if status.code() == tonic::Code::NotFound => {
                    provision(&core, &id, generation, mode).await
                }
                Err(status) => with_group(&core, &id, generation, |g, now| {
                    g.event("Warning", "RestartFailed", status.message().to_owned(), now);
                    g.set_status(GroupStatus::Running, now);
                })
                .await
                .is_some(),
            }
        }
        GroupMode::Resume => {
            let request = InspectGroupRequest {
                group_id: id.clone(),
            };
            match core.agent.clone().inspect_group(request).await {
                Ok(status) => {
                    let status = status.into_inner();
                    with_group(&core, &id, generation, |g, now| {
                        apply_status(g, &status, now)
                    })
                    .await
                    .is_some()
                }
                Err(_) => provision(&core, &id, generation, GroupMode::Create).await,
            }
        }
    };
    if ready {
        watch(&core, &id, generation).await;
    }
}

/// How often a starting group's status is read from the agent.
const STARTING_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Follows the agent's view of a group until it is terminal, deleted or superseded.
async fn watch(core: &Arc<Core>, id: &str, generation: u64) {
    loop {
        let terminal = with_group(core, id, generation, |g, now| {
            let deadline = g.spec.active_deadline_seconds.and_then(|s| {
                g.creation_time
                    .saturating_add(SignedDuration::from_secs(s))
                    .ok()
            });
            (
                g.status.is_terminal(),
                deadline.is_some_and(|d| d <= now),
                matches!(g.status, GroupStatus::Scheduling | GroupStatus::Pending),
            )
        })
        .await;
        let starting = match terminal {
            None | Some((true, _, _)) => return,
            Some((false, true, _)) => {
                // ActiveDeadlineSeconds passed: the instance is stopped and fails (reference §2.1.1).
                forget_group(core, id).await;
                with_group(core, id, generation, |g, now| {
                    g.set_status(GroupStatus::Failed, now);
                    for c in &mut g.containers {
                        c.ready = false;
                        c.current = ContainerState {
                            state: "Terminated".into(),
                            reason: "DeadlineExceeded".into(),
                            exit_code: 137,
                            signal: 9,
                            finish_time: Some(now),
                            ..ContainerState::default()
                        };
                    }
                    g.event(
                        "Warning",
                        "DeadlineExceeded",
                        "The instance was active longer than ActiveDeadlineSeconds.",
                        now,
                    );
                })
                .await;
                return;
            }
            Some((false, false, pending)) => pending,
        };
        // A machine reports its containers' start at once: while the group starts, its
        // status is read often, so Running is seen within a fraction of a second.
        let pause = if starting {
            STARTING_POLL.min(core.settings.poll_interval)
        } else {
            core.settings.poll_interval
        };
        tokio::time::sleep(pause).await;
        let request = InspectGroupRequest {
            group_id: id.to_owned(),
        };
        match core.agent.clone().inspect_group(request).await {
            Ok(status) => {
                let status = status.into_inner();
                with_group(core, id, generation, |g, now| apply_status(g, &status, now)).await;
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                with_group(core, id, generation, |g, now| {
                    g.set_status(GroupStatus::Failed, now);
                    g.event(
                        "Warning",
                        "InstanceLost",
                        "The instance is no longer known to the agent.",
                        now,
                    );
                })
                .await;
                return;
            }
            Err(status) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "cannot inspect the group; retrying");
            }
        }
    }
}

pub(super) async fn delete_group(
    core: Arc<Core>,
    id: String,
    grace_seconds: i64,
    force: bool,
    remove_after: bool,
) {
    let request = DeleteGroupRequest {
        group_id: id.clone(),
        grace_period_seconds: grace_seconds,
        force,
    };
    if let Err(status) = core.agent.clone().delete_group(request).await {
        tracing::warn!(code = ?status.code(), message = status.message(), "agent cannot delete the group");
    }
    if remove_after {
        let mut store = core.store.lock().await;
        if store
            .groups
            .get(&id)
            .is_some_and(|g| g.status == GroupStatus::Terminating)
        {
            store.groups.remove(&id);
        }
        drop(store);
        core.changed();
    }
}

/// Logs a runtime call that failed, with the whole error chain: a group's event says only what
/// ECI would ("transport error"), and the cause below it is the emulator's own to explain.
fn runtime_failed(id: &str, call: &str, status: &tonic::Status) {
    tracing::warn!(
        group.id = id,
        call,
        code = ?status.code(),
        error = status as &dyn std::error::Error,
        "the runtime failed a call"
    );
}
