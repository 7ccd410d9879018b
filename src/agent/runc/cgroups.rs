//! The runtime's cgroups: one parent per agent root (`/<tag>`), a child per group and a
//! grandchild per container (`/<tag>/<group>/<container>`, runc's `cgroupsPath`). runc creates
//! and removes the container level; the runtime removes the levels above, and on open clears a
//! tree a crashed agent left. Works on cgroup v1 (one tree per controller) and v2 (one tree).

use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The hierarchy roots to look in: the unified tree on v2, every controller's tree on v1.
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_owned()];
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                // `cpu` and `cpuacct` are often links to `cpu,cpuacct`.
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The directories of the cgroup `relative` (`/a/b`) in every hierarchy where it exists.
pub(crate) fn dirs_of(relative: &str) -> Vec<PathBuf> {
    let relative = relative.trim_start_matches('/');
    hierarchies()
        .into_iter()
        .map(|h| h.join(relative))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes the cgroup `relative` and everything below it in every hierarchy (blocking).
/// Processes still inside are killed first (only leftovers of a crashed agent can be).
pub(crate) fn remove_tree(relative: &str) {
    for dir in dirs_of(relative) {
        remove_dir_tree(&dir);
    }
}

fn remove_dir_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                remove_dir_tree(&path);
            }
        }
    }
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        kill_members(dir);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tracing::warn!(cgroup = %dir.display(), "cannot remove a cgroup of the runtime");
}

/// Kills every process in the cgroup `relative` and below (blocking): the last resort when runc
/// no longer knows a container whose processes still run.
pub(crate) fn kill_tree(relative: &str) {
    fn walk(dir: &Path) {
        kill_members(dir);
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() && !path.is_symlink() {
                    walk(&path);
                }
            }
        }
    }
    for dir in dirs_of(relative) {
        walk(&dir);
    }
}

fn kill_members(dir: &Path) {
    let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
