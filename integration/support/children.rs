//! Every process a test spawns is registered here, so that an interrupted run (SIGINT or
//! SIGTERM, when destructors in other threads never run) can still end them all.

use std::{
    process::Child,
    sync::{Mutex, PoisonError},
};

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

/// Kills every registered child that is still running.
pub fn kill_all() {
    for pid in PIDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
    {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}
