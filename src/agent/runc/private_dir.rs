//! The agent's data directory, which it uses as root: bundles, overlays and mounts live there,
//! and a leftover's cleanup unmounts and removes under it. Whoever else can write to it (or
//! to where a link in its place points) could steer that at the host's `/`, so it is this
//! process's own: a scratch directory is made afresh and exclusively (never one that already
//! exists, as `mkdtemp` does), a directory the user names must be a real directory owned by
//! this process's user and writable by nobody else.

use std::{
    fs::DirBuilder,
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _},
    path::Path,
};

use super::RuntimeError;

/// Makes (or checks) the agent's data directory at `path` (blocking).
///
/// `exclusive` (a scratch directory in a shared place such as `/tmp`): created here with mode
/// 0700, non-recursively; anything already there, a directory or a symlink, is refused.
/// Otherwise (a directory the user named): created with its missing parents (mode 0700) when
/// absent; then it must be a directory (not a symlink), owned by the effective uid and not
/// writable by group or others.
///
/// # Errors
/// [`RuntimeError::InvalidConfig`] naming the path and what is wrong with it;
/// [`RuntimeError::Io`] when it cannot be created or inspected.
pub(crate) fn create_private_dir(path: &Path, exclusive: bool) -> Result<(), RuntimeError> {
    let refuse = |why: String| RuntimeError::InvalidConfig {
        reason: format!("data directory {}: {why}", path.display()),
    };
    if exclusive {
        return DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    refuse("already exists; a scratch directory must be new".to_owned())
                }
                _ => RuntimeError::io("create", path)(error),
            });
    }
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(RuntimeError::io("create", path))?,
        Err(error) => return Err(RuntimeError::io("inspect", path)(error)),
        Ok(_) => {}
    }
    let meta = std::fs::symlink_metadata(path).map_err(RuntimeError::io("inspect", path))?;
    if meta.file_type().is_symlink() {
        return Err(refuse("is a symlink; name the directory itself".to_owned()));
    }
    if !meta.is_dir() {
        return Err(refuse("is not a directory".to_owned()));
    }
    let euid = effective_uid()?;
    if meta.uid() != euid {
        return Err(refuse(format!(
            "is owned by uid {}, not by this process's uid {euid}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "is writable by group or others (mode {:o}); chmod go-w it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// This process's effective uid: the owner of `/proc/self` (proc(5)), which the runtime reads
/// anyway (mountinfo, descriptors).
fn effective_uid() -> Result<u32, RuntimeError> {
    std::fs::metadata("/proc/self")
        .map(|meta| meta.uid())
        .map_err(RuntimeError::io("inspect", "/proc/self"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_scratch_directory_is_new_and_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fresh = tmp.path().join("fresh");
        create_private_dir(&fresh, true).expect("created");
        let mode = std::fs::metadata(&fresh).expect("made").mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Planted beforehand: a directory, or a symlink (to `/`, say).
        assert!(create_private_dir(&fresh, true).is_err());
        let planted = tmp.path().join("planted");
        std::os::unix::fs::symlink("/", &planted).expect("symlink");
        assert!(create_private_dir(&planted, true).is_err());
    }

    #[tokio::test]
    async fn a_runtime_root_that_is_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::create_dir(target.join("run")).expect("mkdir");
        let link = tmp.path().join("runtime");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let opened = super::super::RuncRuntime::open(super::super::RuntimeConfig::new(
            &link,
            "ecivk-none",
            "10.254.0.0/24",
        ))
        .await;
        assert!(
            matches!(opened, Err(RuntimeError::InvalidConfig { .. })),
            "{opened:?}"
        );
        assert!(target.join("run").is_dir(), "nothing was cleaned up there");
    }

    #[test]
    fn a_named_directory_must_be_a_private_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let named = tmp.path().join("a/b");
        create_private_dir(&named, false).expect("created with its parents");
        assert_eq!(
            std::fs::metadata(&named).expect("made").mode() & 0o777,
            0o700
        );
        create_private_dir(&named, false).expect("an existing private directory is fine");
        std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(&named, false).expect("readable by others is fine");
        std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let refused = create_private_dir(&named, false).expect_err("world-writable");
        assert!(refused.to_string().contains("writable"), "{refused}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).expect("symlink");
        assert!(create_private_dir(&link, false).is_err());
        let file = tmp.path().join("file");
        std::fs::write(&file, "").expect("file");
        assert!(create_private_dir(&file, false).is_err());
    }
}
