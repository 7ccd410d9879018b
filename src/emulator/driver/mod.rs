//! Lifecycle tasks: what happens after a write was answered, by asking the agent.
//!
//! A container group goes `Scheduling → Pending` (images pulled, from the snapshot when it has
//! one) `→ Running` (the agent started the containers) and then follows the agent's view of its
//! containers to `Succeeded`/`Failed` (per restart policy and exit codes); `Restarting` and
//! `Updating` return to `Pending`/`Running`; `Terminating` ends in removal. An image cache goes
//! `Preparing → Creating` (progress rising with the pull) `→ Ready`, or `Failed` (kept 24 h);
//! an update goes `Updating → Ready | UpdateFailed`.
//!
//! Every resource carries a generation, bumped by each write that starts new work; a task whose
//! generation is no longer current stops at its next step, so an older task never undoes a newer
//! request. A task that finds its group deleted removes what it made on the agent.

mod agent_request;
mod cache;
mod group;

use std::sync::Arc;

use self::{
    cache::build_cache,
    group::{delete_group, run_group},
};
use super::{
    Core,
    state::{CacheStatus, GroupStatus, Purged, Store},
};
use crate::agent::pb::DeleteSnapshotRequest;

/// How a group task starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMode {
    /// A new group: schedule, pull, start.
    Create,
    /// The spec changed: replace the containers.
    Update,
    /// RestartContainerGroup.
    Restart,
    /// After an emulator restart: adopt what the agent has, or start again.
    Resume,
}

/// Work left by a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Drive a group.
    Group {
        /// Group id.
        id: String,
        /// Generation the task belongs to.
        generation: u64,
        /// How to start.
        mode: GroupMode,
    },
    /// Remove a group from the agent (and from the store afterwards when `remove_after`).
    DeleteGroup {
        /// Group id.
        id: String,
        /// Grace period for preStop hooks.
        grace_seconds: i64,
        /// Skip preStop hooks.
        force: bool,
        /// The group is `Terminating` and is removed once the agent is done.
        remove_after: bool,
    },
    /// Build (or rebuild) an image cache.
    BuildCache {
        /// Cache id.
        id: String,
        /// Generation the task belongs to.
        generation: u64,
        /// UpdateImageCache rather than CreateImageCache.
        update: bool,
    },
    /// Forget a snapshot on the agent.
    DeleteSnapshot {
        /// Snapshot id.
        snapshot_id: String,
    },
}

/// Starts `work` as a lifecycle task.
pub fn start(core: &Arc<Core>, work: Work) {
    let task_core = core.clone();
    match work {
        Work::Group {
            id,
            generation,
            mode,
        } => {
            let span = tracing::info_span!("group", %id, ?mode);
            core.spawn(span, async move {
                run_group(task_core, id, generation, mode).await
            });
        }
        Work::DeleteGroup {
            id,
            grace_seconds,
            force,
            remove_after,
        } => {
            let span = tracing::info_span!("group_delete", %id);
            core.spawn(span, async move {
                delete_group(task_core, id, grace_seconds, force, remove_after).await;
            });
        }
        Work::BuildCache {
            id,
            generation,
            update,
        } => {
            let span = tracing::info_span!("image_cache", %id, update);
            core.spawn(span, async move {
                build_cache(task_core, id, generation, update).await
            });
        }
        Work::DeleteSnapshot { snapshot_id } => {
            let span = tracing::info_span!("snapshot_delete", %snapshot_id);
            core.spawn(span, async move {
                let request = DeleteSnapshotRequest {
                    snapshot_id: snapshot_id.clone(),
                };
                if let Err(status) = task_core.agent.clone().delete_snapshot(request).await {
                    tracing::warn!(code = ?status.code(), message = status.message(), "agent cannot delete the snapshot");
                }
            });
        }
    }
}

/// Releases on the agent what a purge removed from the store.
pub fn release(core: &Arc<Core>, purged: Purged) {
    for snapshot_id in purged.snapshots {
        start(core, Work::DeleteSnapshot { snapshot_id });
    }
    for id in purged.groups {
        start(
            core,
            Work::DeleteGroup {
                id,
                grace_seconds: 0,
                force: true,
                remove_after: false,
            },
        );
    }
}

/// Restarts the work of every unfinished resource (after loading saved state).
pub async fn resume_all(core: &Arc<Core>) {
    let mut work = Vec::new();
    let mut restore = Vec::new();
    {
        let store = core.store.lock().await;
        for g in store.groups.values() {
            match g.status {
                GroupStatus::Terminating => work.push(Work::DeleteGroup {
                    id: g.id.clone(),
                    grace_seconds: g.spec.termination_grace_period_seconds.unwrap_or(30),
                    force: false,
                    remove_after: true,
                }),
                s if s.is_terminal() => {}
                _ => work.push(Work::Group {
                    id: g.id.clone(),
                    generation: g.generation,
                    mode: GroupMode::Resume,
                }),
            }
        }
        for c in store.caches.values() {
            match c.status {
                CacheStatus::Preparing | CacheStatus::Creating => work.push(Work::BuildCache {
                    id: c.id.clone(),
                    generation: c.generation,
                    update: false,
                }),
                CacheStatus::Updating => work.push(Work::BuildCache {
                    id: c.id.clone(),
                    generation: c.generation,
                    update: true,
                }),
                CacheStatus::Ready | CacheStatus::UpdateFailed if c.snapshot_id.is_some() => {
                    restore.push(c.id.clone());
                }
                _ => {}
            }
        }
    }
    // Snapshots first, before anything is served, so a group created from a cache right after a
    // restart finds its images.
    for id in restore {
        cache::restore_snapshot(core.clone(), id).await;
    }
    for w in work {
        start(core, w);
    }
}

/// Applies `f` to the resource `pick` finds (a group or cache at the task's generation), and
/// tells the core when `f` changed it; `None` when it is gone or a newer request replaced it,
/// so an older task can never undo a newer one.
async fn with_current<T: Clone + PartialEq, R>(
    core: &Core,
    pick: impl FnOnce(&mut Store) -> Option<&mut T>,
    f: impl FnOnce(&mut T, jiff::Timestamp) -> R,
) -> Option<R> {
    let now = core.now();
    let (result, changed) = {
        let mut store = core.store.lock().await;
        let resource = pick(&mut store)?;
        let before = resource.clone();
        let result = f(resource, now);
        (result, *resource != before)
    };
    if changed {
        core.changed();
    }
    Some(result)
}

/// `ImageRegistryCredential.N` as the agent takes them.
fn logins(
    credentials: &[crate::emulator::spec::RegistryCredential],
) -> Vec<crate::agent::pb::RegistryCredential> {
    credentials
        .iter()
        .map(|c| crate::agent::pb::RegistryCredential {
            server: c.server.clone(),
            username: c.user_name.clone(),
            password: c.password.clone(),
        })
        .collect()
}

/// `PlainHttpRegistry`/`InsecureRegistry`: comma-separated hosts.
fn registries(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
