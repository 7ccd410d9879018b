//! A group's in-memory record: its containers' states and how they add up to a `GroupStatus`.

use std::{path::PathBuf, sync::Arc};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::{logs::LogFiles, net::GroupNetwork, pb, volumes::Staged};

/// Where a group is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Init containers run (or are about to).
    Initializing,
    /// An init container failed and will not be retried: the group failed.
    InitFailed,
    /// The regular containers were started.
    Started,
}

/// One container of a group (init or regular).
#[derive(Debug)]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
    /// runc's id: `<group>_<name>` (`_` is never in a container name, so ids cannot collide).
    pub runc_id: String,
    pub bundle: PathBuf,
    /// The image's read-only rootfs and this container's dir (`rootfs`, `upper`, `work`).
    pub lower: PathBuf,
    pub dir: PathBuf,
    pub logs: LogFiles,
    pub pre_stop: Vec<String>,
    /// Volume sources bound afresh before every start (`sub_path`s): `config.json` names
    /// their staging paths.
    pub staged: Vec<Staged>,
    /// Runs on a terminal (ContainerSpec.tty): its output is the terminal's, logged as stdout.
    pub tty: bool,
    pub state: Mutex<RunState>,
    /// Bumped whenever an instance ends (log followers wait on it).
    pub ended: watch::Sender<u64>,
}

/// The observable state of a container.
#[derive(Debug, Clone)]
pub(crate) struct RunState {
    pub current: pb::ContainerState,
    pub previous: Option<pb::ContainerState>,
    pub restart_count: i32,
    /// Instances started so far.
    pub instances: u64,
    pub running: bool,
    /// Exited and will not run again (under the restart policy).
    pub finished: bool,
    /// The last CPU sample, for a usage rate: (when, total ns).
    pub last_cpu: Option<(tokio::time::Instant, u64)>,
}

impl RunState {
    pub(crate) fn waiting(reason: &str) -> Self {
        Self {
            current: pb::ContainerState {
                kind: pb::ContainerStateKind::Waiting.into(),
                reason: reason.to_owned(),
                ..pb::ContainerState::default()
            },
            previous: None,
            restart_count: 0,
            instances: 0,
            running: false,
            finished: false,
            last_cpu: None,
        }
    }
}

/// A live group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub request: pb::CreateGroupRequest,
    pub dir: PathBuf,
    pub network: GroupNetwork,
    pub init_containers: Vec<Arc<Container>>,
    pub containers: Vec<Arc<Container>>,
    pub stage: Mutex<Stage>,
    /// True once the group is being stopped (delete, restart, shutdown): nothing restarts.
    pub stopping: watch::Sender<bool>,
    /// The supervisor task of the current run.
    pub supervisor: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Group {
    pub(crate) fn all_containers(&self) -> impl Iterator<Item = &Arc<Container>> {
        self.init_containers.iter().chain(&self.containers)
    }

    pub(crate) fn find(&self, name: &str) -> Option<&Arc<Container>> {
        self.all_containers().find(|c| c.name == name)
    }

    /// The group's status now.
    pub(crate) fn status(&self) -> pb::GroupStatus {
        let stage = *self.stage.lock();
        let view = |c: &Arc<Container>| {
            let state = c.state.lock().clone();
            (
                pb::ContainerStatus {
                    name: c.name.clone(),
                    image: c.image.clone(),
                    ready: state.running,
                    restart_count: state.restart_count,
                    current: Some(state.current.clone()),
                    previous: state.previous.clone(),
                },
                state,
            )
        };
        let init: Vec<_> = self.init_containers.iter().map(view).collect();
        let main: Vec<_> = self.containers.iter().map(view).collect();
        let phase = match stage {
            Stage::Initializing => pb::GroupPhase::Pending,
            Stage::InitFailed => pb::GroupPhase::Failed,
            Stage::Started => phase_of(main.iter().map(|(_, s)| s)),
        };
        pb::GroupStatus {
            group_id: self.id.clone(),
            phase: phase.into(),
            init_containers: init.into_iter().map(|(s, _)| s).collect(),
            containers: main.into_iter().map(|(s, _)| s).collect(),
            ip: self.network.ip.to_string(),
        }
    }
}

/// The phase of a group whose regular containers were started (proto `GroupPhase`): Running
/// while one runs or will restart, Pending while none has started yet, else Succeeded when all
/// exited 0, Failed otherwise.
fn phase_of<'a>(states: impl Iterator<Item = &'a RunState>) -> pb::GroupPhase {
    let mut live = false;
    let mut unstarted = false;
    let mut failed = false;
    for state in states {
        if state.finished {
            failed |= state.current.exit_code != 0;
        } else if state.instances == 0 {
            unstarted = true;
        } else {
            live = true;
        }
    }
    if live {
        pb::GroupPhase::Running
    } else if unstarted {
        pb::GroupPhase::Pending
    } else if failed {
        pb::GroupPhase::Failed
    } else {
        pb::GroupPhase::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(instances: u64, finished: bool, code: i32) -> RunState {
        let mut s = RunState::waiting("x");
        s.instances = instances;
        s.finished = finished;
        s.current.exit_code = code;
        s
    }

    #[test]
    fn phases_follow_the_proto() {
        let p = |v: Vec<RunState>| phase_of(v.iter());
        assert_eq!(p(vec![state(0, false, 0)]), pb::GroupPhase::Pending);
        assert_eq!(
            p(vec![state(1, false, 0), state(1, true, 1)]),
            pb::GroupPhase::Running
        );
        assert_eq!(
            p(vec![state(1, true, 0), state(2, true, 0)]),
            pb::GroupPhase::Succeeded
        );
        assert_eq!(
            p(vec![state(1, true, 0), state(1, true, 2)]),
            pb::GroupPhase::Failed
        );
    }
}
