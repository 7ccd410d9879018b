//! Every process a test spawns is registered here, so that an interrupted run (SIGINT or
//! SIGTERM, when destructors in other threads never run) can still end them all.

use std::{
    process::Child,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Remembers `child` until [`forget`] (call it once the child was waited for).
pub fn register(child: &Child) {
    PIDS.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(child.id());
}

/// The child was reaped; its pid may be reused and must not be signalled any more.
pub fn forget(child: &Child) {
    PIDS.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|&pid| pid != child.id());
}

/// How long a child gets to clean up after SIGTERM (an emulator's agent removes its
/// containers, mounts and namespaces then) before it is killed.
const GRACE: Duration = Duration::from_secs(20);

/// Stops every registered child that is still running: SIGTERM, then SIGKILL for those still
/// there after the grace period.
pub fn kill_all() {
    let pids: Vec<u32> = PIDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    for &pid in &pids {
        let _ = signal(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && pids.iter().any(|&pid| signal(pid, None).is_ok()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for &pid in &pids {
        let _ = signal(pid, Signal::SIGKILL);
    }
}

/// `kill -9` of one child, reaped: no last save, no cleanup, as a crash or an OOM kill.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    forget(child);
}

/// Stops one child the same way and reaps it.
pub fn stop(child: &mut Child) {
    // One already reaped (killed before) is not signalled: its pid may be another's by now.
    if matches!(child.try_wait(), Ok(Some(_))) {
        forget(child);
        return;
    }
    let _ = signal(child.id(), Signal::SIGTERM);
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            forget(child);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    forget(child);
}

fn signal(pid: u32, signal: impl Into<Option<Signal>>) -> nix::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| nix::errno::Errno::EINVAL)?;
    nix::sys::signal::kill(Pid::from_raw(pid), signal.into())
}
