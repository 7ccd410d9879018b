//! The life of a group's containers: init containers in order to completion, then every
//! container, each restarted under the restart policy with back-off; and stopping them all.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::{
    RuntimeError, cgroups,
    command::Runc,
    console::Terminal,
    group::{Container, Group, RunState, Stage},
    logs::LogSink,
    mounts, pb, volumes,
};

/// First back-off after an exit; doubled per consecutive restart up to [`MAX_BACK_OFF`].
const FIRST_BACK_OFF: Duration = Duration::from_secs(1);
const MAX_BACK_OFF: Duration = Duration::from_secs(10);
/// An instance that ran this long resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(10);
/// Rounds of SIGKILL through runc (500 ms apart) before the cgroup's processes are killed
/// directly.
const KILL_ATTEMPTS: u32 = 10;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// How one instance ended.
struct Exit {
    code: i32,
    ran: Duration,
}

/// Whether an instance that exited with `code` runs again under `policy` ("" is Always, the
/// Kubernetes default).
fn restarts(policy: &str, code: i32) -> bool {
    match policy {
        "OnFailure" => code != 0,
        "Never" => false,
        _ => true,
    }
}

/// Runs the group until every container is finished or the group is stopped.
pub(crate) async fn supervise(runc: Runc, group: Arc<Group>) {
    let policy = group.request.restart_policy.clone();
    *group.stage.lock() = Stage::Initializing;
    for init in &group.init_containers {
        let mut failures = 0;
        loop {
            let Some(exit) = run_instance(&runc, &group, init).await else {
                return;
            };
            if exit.code == 0 {
                init.state.lock().finished = true;
                break;
            }
            // An init container is retried unless the policy is Never (Kubernetes: a failed
            // init container is restarted for Always and OnFailure alike).
            if policy == "Never" {
                init.state.lock().finished = true;
                *group.stage.lock() = Stage::InitFailed;
                return;
            }
            if !back_off(&group, init, &mut failures, exit.ran).await {
                return;
            }
        }
    }
    *group.stage.lock() = Stage::Started;
    let runs = group
        .containers
        .iter()
        .map(|c| keep_running(&runc, &group, c, &policy));
    futures::future::join_all(runs).await;
}

async fn keep_running(runc: &Runc, group: &Arc<Group>, container: &Arc<Container>, policy: &str) {
    let mut failures = 0;
    loop {
        let Some(exit) = run_instance(runc, group, container).await else {
            return;
        };
        if !restarts(policy, exit.code) || *group.stopping.borrow() {
            container.state.lock().finished = true;
            return;
        }
        if !back_off(group, container, &mut failures, exit.ran).await {
            return;
        }
    }
}

/// Waits out the back-off before the next instance; false when the group stops meanwhile.
async fn back_off(group: &Group, container: &Container, failures: &mut u32, ran: Duration) -> bool {
    if ran >= STABLE_RUN {
        *failures = 0;
    }
    let delay = FIRST_BACK_OFF
        .saturating_mul(1 << (*failures).min(8))
        .min(MAX_BACK_OFF);
    *failures += 1;
    {
        let mut state = container.state.lock();
        state.previous = Some(state.current.clone());
        state.current = pb::ContainerState {
            kind: pb::ContainerStateKind::Waiting.into(),
            reason: "CrashLoopBackOff".into(),
            message: format!(
                "back-off {}s restarting failed container {}",
                delay.as_secs(),
                container.name
            ),
            ..pb::ContainerState::default()
        };
    }
    let mut stopping = group.stopping.subscribe();
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        _ = stopping.wait_for(|s| *s) => {
            container.state.lock().finished = true;
            false
        }
    }
}

/// Runs one instance of a container to its end; `None` when the group is stopping and nothing
/// was started.
async fn run_instance(runc: &Runc, group: &Group, container: &Container) -> Option<Exit> {
    let id = container.runc_id.as_str();
    let sink = match container.logs.rotate().await {
        Ok(sink) => sink,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                container = id,
                "cannot open a log"
            );
            return Some(start_failed(container, &error.to_string()));
        }
    };
    // A previous instance's stopped container would block the id.
    let _ = runc.delete_force(id).await;
    if container.state.lock().instances > 0 {
        // A restarted container starts from its image again, as Kubernetes' new container
        // does: a fresh writable layer (volumes keep their data).
        let (lower, dir) = (container.lower.clone(), container.dir.clone());
        let fresh = tokio::task::spawn_blocking(move || fresh_layer(&lower, &dir)).await;
        let fresh = match fresh {
            Ok(result) => result,
            Err(join) => Err(RuntimeError::Join(join)),
        };
        if let Err(error) = fresh {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                container = id,
                "cannot renew the rootfs"
            );
            return Some(start_failed(container, &error.to_string()));
        }
    }
    // Every start binds its sub paths afresh from the volume as it is now, never through a
    // symlink a container put there since the last (see `volumes::bind_staged`).
    if !container.staged.is_empty() {
        let staged = container.staged.clone();
        let bound = tokio::task::spawn_blocking(move || volumes::bind_staged(&staged)).await;
        let bound = match bound {
            Ok(result) => result,
            Err(join) => Err(RuntimeError::Join(join)),
        };
        if let Err(error) = bound {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                container = id,
                "cannot bind a volume's sub path"
            );
            return Some(start_failed(container, &error.to_string()));
        }
    }
    let started = Instant::now();
    let (mut child, terminal) = {
        let mut state = container.state.lock();
        // Checked under the state lock: `stop` reads `running` under it after setting the flag,
        // so an instance is either seen by `stop` or never started.
        if *group.stopping.borrow() {
            state.finished = true;
            return None;
        }
        let spawned = if container.tty {
            spawn_on_terminal(runc, container)
        } else {
            runc.run_foreground(id, &container.bundle)
                .spawn()
                .map(|child| (child, None))
        };
        match spawned {
            Ok((child, terminal)) => {
                state.instances += 1;
                if state.instances > 1 {
                    state.restart_count = state.restart_count.saturating_add(1);
                }
                state.running = true;
                state.finished = false;
                state.current = pb::ContainerState {
                    kind: pb::ContainerStateKind::Running.into(),
                    reason: "Started".into(),
                    started_at_ms: now_ms(),
                    ..pb::ContainerState::default()
                };
                (child, terminal)
            }
            Err(error) => {
                drop(state);
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    container = id,
                    "cannot start runc"
                );
                return Some(start_failed(
                    container,
                    &format!("cannot start runc: {error}"),
                ));
            }
        }
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let pumps = async {
        let out = async {
            if let Some(out) = stdout {
                sink.clone().pump("stdout", out).await;
            }
        };
        let err = async {
            if let Some(err) = stderr {
                sink.clone().pump("stderr", err).await;
            }
        };
        let tty = async {
            if let Some(terminal) = terminal {
                pump_terminal(sink.clone(), terminal).await;
            }
        };
        tokio::join!(out, err, tty);
    };
    let (status, ()) = tokio::join!(child.wait(), pumps);
    let (code, signal) = match status {
        Ok(status) => decode_exit(status),
        Err(_) => (128, 0),
    };
    {
        let mut state = container.state.lock();
        let started_at_ms = state.current.started_at_ms;
        state.running = false;
        state.last_cpu = None;
        state.current = pb::ContainerState {
            kind: pb::ContainerStateKind::Terminated.into(),
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            exit_code: code,
            signal,
            started_at_ms,
            finished_at_ms: now_ms(),
            ..pb::ContainerState::default()
        };
    }
    container.ended.send_modify(|n| *n += 1);
    let _ = runc.delete_force(id).await;
    Some(Exit {
        code,
        ran: started.elapsed(),
    })
}

/// Starts `runc run` with a pseudo-terminal as its stdio (runc requires one for a container
/// whose process has a terminal, and copies between it and the container's own).
fn spawn_on_terminal(
    runc: &Runc,
    container: &Container,
) -> std::io::Result<(tokio::process::Child, Option<Terminal>)> {
    let (terminal, slave) = Terminal::open()?;
    let mut command = runc.run_foreground(&container.runc_id, &container.bundle);
    command
        .stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    // The command holds the only slave descriptors; they close in this process once the
    // command is dropped after the spawn, so the master reads EOF when runc is gone.
    let child = command.spawn()?;
    drop(command);
    Ok((child, Some(terminal)))
}

/// Copies a terminal's output into the log, a line at a time (`\r\n` ends a line too).
async fn pump_terminal(sink: LogSink, terminal: Terminal) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending = Vec::new();
    while let Ok(n) = terminal.read(&mut buf).await {
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = pending.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            sink.line("stdout", &line).await;
        }
    }
    if !pending.is_empty() {
        sink.line("stdout", &pending).await;
    }
}

/// Replaces the overlay of a container by one with an empty upper dir (blocking).
fn fresh_layer(lower: &std::path::Path, dir: &std::path::Path) -> Result<(), RuntimeError> {
    let (rootfs, upper, work) = (dir.join("rootfs"), dir.join("upper"), dir.join("work"));
    if let Some((point, errno)) = mounts::unmount_under(&rootfs).into_iter().next() {
        return Err(RuntimeError::Mount {
            action: "unmount",
            path: point,
            source: errno,
        });
    }
    for path in [&upper, &work] {
        std::fs::remove_dir_all(path).map_err(RuntimeError::io("remove", path))?;
        std::fs::create_dir_all(path).map_err(RuntimeError::io("create", path))?;
    }
    mounts::mount_overlay(lower, &upper, &work, &rootfs)
}

/// runc exits with the container's code, or 128 + the signal that killed it.
fn decode_exit(status: std::process::ExitStatus) -> (i32, i32) {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) if code > 128 && code <= 128 + 64 => (code, code - 128),
        (Some(code), _) => (code, 0),
        (None, Some(signal)) => (128 + signal, signal),
        (None, None) => (128, 0),
    }
}

fn start_failed(container: &Container, message: &str) -> Exit {
    let mut state = container.state.lock();
    state.running = false;
    state.current = pb::ContainerState {
        kind: pb::ContainerStateKind::Terminated.into(),
        reason: "StartError".into(),
        message: message.to_owned(),
        exit_code: 128,
        finished_at_ms: now_ms(),
        ..pb::ContainerState::default()
    };
    drop(state);
    container.ended.send_modify(|n| *n += 1);
    Exit {
        code: 128,
        ran: Duration::ZERO,
    }
}

/// Stops every container of a group and waits for its supervisor: preStop hooks and SIGTERM
/// within `grace` (unless `force`), then SIGKILL until every instance is gone.
pub(crate) async fn stop(runc: &Runc, group: &Group, cgroup: &str, grace: Duration, force: bool) {
    group.stopping.send_replace(true);
    let mut supervisor = group.supervisor.lock().await;
    let running = |group: &Group| -> Vec<Arc<Container>> {
        group
            .all_containers()
            .filter(|c| c.state.lock().running)
            .cloned()
            .collect()
    };
    if !force {
        let deadline = Instant::now() + grace;
        let hooks = running(group)
            .into_iter()
            .filter(|c| !c.pre_stop.is_empty())
            .map(|c| async move {
                let mut command = runc.command(["exec"]);
                command.arg(&c.runc_id).args(&c.pre_stop).kill_on_drop(true);
                command
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                if let Ok(mut child) = command.spawn() {
                    let _ = child.wait().await;
                }
            });
        let _ = tokio::time::timeout_at(deadline, futures::future::join_all(hooks)).await;
        for container in running(group) {
            let _ = runc.kill(&container.runc_id, "TERM", false).await;
        }
        if let Some(handle) = supervisor.as_mut()
            && tokio::time::timeout_at(deadline, handle).await.is_ok()
        {
            *supervisor = None;
        }
    }
    let mut attempts = 0;
    while let Some(handle) = supervisor.as_mut() {
        for container in running(group) {
            let _ = runc.kill(&container.runc_id, "KILL", true).await;
        }
        if attempts >= KILL_ATTEMPTS {
            // runc no longer knows the container (its state was removed under it): kill what
            // is left in the group's cgroup directly.
            let cgroup = cgroup.to_owned();
            let _ = tokio::task::spawn_blocking(move || cgroups::kill_tree(&cgroup)).await;
        }
        if tokio::time::timeout(Duration::from_millis(500), &mut *handle)
            .await
            .is_ok()
        {
            *supervisor = None;
        } else if attempts >= 2 * KILL_ATTEMPTS {
            tracing::warn!(group = %group.id, "the group's processes do not end; giving up on them");
            handle.abort();
            *supervisor = None;
        }
        attempts += 1;
    }
}

/// Makes a stopped group ready to run again (RestartGroup): containers wait to be created,
/// keeping their restart counts and last states.
pub(crate) fn reset(group: &Group) {
    for container in group.all_containers() {
        let mut state = container.state.lock();
        let last = state.current.clone();
        let kept = RunState {
            previous: Some(last),
            restart_count: state.restart_count,
            instances: state.instances,
            ..RunState::waiting("ContainerCreating")
        };
        *state = kept;
    }
    *group.stage.lock() = Stage::Initializing;
    group.stopping.send_replace(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_rules() {
        assert!(restarts("Always", 0));
        assert!(restarts("", 1));
        assert!(restarts("OnFailure", 2));
        assert!(!restarts("OnFailure", 0));
        assert!(!restarts("Never", 1));
    }

    #[test]
    fn exit_codes_and_signals_decode() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(
            decode_exit(std::process::ExitStatus::from_raw(3 << 8)),
            (3, 0)
        );
        assert_eq!(
            decode_exit(std::process::ExitStatus::from_raw(137 << 8)),
            (137, 9)
        );
        assert_eq!(
            decode_exit(std::process::ExitStatus::from_raw(15)),
            (143, 15)
        );
    }
}
