//! The mounts the runtime makes in the host's mount namespace: each container's overlay rootfs
//! and the tmpfs of `Memory` emptyDir volumes. (Bind mounts of volumes and `/etc` files are
//! runc's, inside the container's own namespace, and vanish with it.)

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::RuntimeError;

/// Characters that would split overlayfs' option string.
fn check_overlay_path(path: &Path) -> Result<(), RuntimeError> {
    let text = path.to_string_lossy();
    if text.contains([',', ':', '\\']) {
        return Err(RuntimeError::invalid(format!(
            "path {text} cannot be used in an overlay (contains ',', ':' or '\\')"
        )));
    }
    Ok(())
}

/// Mounts `overlay(lower, upper, work)` on `target` (blocking).
pub(crate) fn mount_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), RuntimeError> {
    for path in [lower, upper, work] {
        check_overlay_path(path)?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|source| RuntimeError::Mount {
        action: "mount an overlay on",
        path: target.to_owned(),
        source,
    })
}

/// Mounts a tmpfs on `target`, limited to `size_bytes` when not 0 (blocking).
pub(crate) fn mount_tmpfs(target: &Path, size_bytes: u64) -> Result<(), RuntimeError> {
    let options = if size_bytes > 0 {
        format!("mode=0777,size={size_bytes}")
    } else {
        "mode=0777".to_owned()
    };
    nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|source| RuntimeError::Mount {
        action: "mount a tmpfs on",
        path: target.to_owned(),
        source,
    })
}

/// Mount points at or under `root`, deepest first, from `/proc/self/mountinfo`.
pub(crate) fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(root))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything at or under `root`, deepest first (blocking). Lazy (`MNT_DETACH`), so a
/// mount still busy somewhere goes away when its last user does. Returns what could not be
/// unmounted.
pub(crate) fn unmount_under(root: &Path) -> Vec<(PathBuf, nix::Error)> {
    let mut failed = Vec::new();
    for point in mounts_under(root) {
        if let Err(errno) = nix::mount::umount2(&point, MntFlags::MNT_DETACH)
            && errno != nix::Error::EINVAL
        {
            failed.push((point, errno));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\04"), r"/end\04");
    }

    #[test]
    fn overlay_paths_with_separators_are_refused() {
        assert!(check_overlay_path(Path::new("/a,b")).is_err());
        assert!(check_overlay_path(Path::new("/a:b")).is_err());
        assert!(check_overlay_path(Path::new("/a/b")).is_ok());
    }
}
