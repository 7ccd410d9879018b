//! A group's volumes: `emptyDir` (a directory, or a tmpfs for `Memory`), `ConfigFile` (files
//! written with their modes), a disk (`disks/<disk-id>` under the agent's root) and an NFS share
//! (`nfs/<server>/<path>`), the last two kept after the group is gone; and where each appears
//! in a container: bind mounts, read-only when the mount or the volume says so.
//!
//! # Sources a container can write to
//!
//! A `sub_path` (and an NFS share below another share of the same server) is a path inside a
//! directory some container may write to. Naming it in `config.json` would let runc resolve
//! it on the host at every start, after an init container (or an earlier instance) replaced a
//! component with a symlink to `/` (CVE-2017-1002101). So, as the kubelet fixed it, such a
//! source is [`Staged`]: at every start of the container ([`bind_staged`]) it is opened one
//! component at a time with `O_NOFOLLOW` from the trusted directory it lives in, and the
//! opened descriptor (`/proc/self/fd/N`) is bind-mounted onto an agent-owned staging path,
//! which is what `config.json` names.

use std::{
    collections::HashMap,
    os::{
        fd::{AsFd, AsRawFd as _, OwnedFd},
        unix::fs::PermissionsExt as _,
    },
    path::{Component, Path, PathBuf},
};

use nix::{
    errno::Errno,
    fcntl::{AT_FDCWD, OFlag},
    mount::{MntFlags, MsFlags},
    sys::stat::{Mode, SFlag},
};
use oci_spec::runtime::Mount;

use super::{RuntimeError, bundle, mounts, pb};

/// A volume ready to mount: its host directory, and whether every mount of it is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prepared {
    /// The host directory.
    pub path: PathBuf,
    /// Every mount is read-only (an NFS volume with `ReadOnly`).
    pub read_only: bool,
    /// The deepest directory at or above `path` that no container can write to or replace
    /// (`path` itself, but a share's server directory for an NFS share): what lies between
    /// it and a mount's source is opened without following symlinks.
    pub trusted: PathBuf,
}

/// A bind source reached through directories a container can write to: bound afresh onto
/// `staging` at every start of its container ([`bind_staged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Staged {
    /// What the request called it, for errors: `sub_path "x" of volume "v"`.
    pub what: String,
    /// A directory no container can write to.
    pub trusted: PathBuf,
    /// The source below `trusted`: no `..`, no symlink allowed on the way.
    pub relative: PathBuf,
    /// The agent-owned path `config.json` names as the bind source.
    pub staging: PathBuf,
}

/// Where every volume of a group lives, without touching the disk: group-lived ones under
/// `dir`, disks and NFS shares under `kept`; volume name → where it is. The one mapping both a
/// create ([`prepare`]) and an in-place update (which keeps the volumes) use.
pub(crate) fn locate(
    dir: &Path,
    kept: &Path,
    volumes: &[pb::Volume],
) -> Result<HashMap<String, Prepared>, RuntimeError> {
    let mut located = HashMap::new();
    for volume in volumes {
        let name = bundle::safe_relative(&volume.name, "volume name")?;
        if name.components().count() != 1 || located.contains_key(&volume.name) {
            return Err(RuntimeError::invalid(format!(
                "volume name {:?} must be a single, unique path component",
                volume.name
            )));
        }
        let prepared = match &volume.source {
            Some(pb::volume::Source::Disk(disk)) => {
                let path = kept
                    .join("disks")
                    .join(component(&disk.disk_id, "disk id")?);
                Prepared {
                    trusted: path.clone(),
                    path,
                    read_only: false,
                }
            }
            Some(pb::volume::Source::Nfs(nfs)) => {
                // A share of `/` exposes the server's directory to its containers, so only
                // `nfs/<server>` itself is the agent's.
                let server = kept.join("nfs").join(component(&nfs.server, "NFS server")?);
                Prepared {
                    path: server.join(share_path(&nfs.path)?),
                    read_only: nfs.read_only,
                    trusted: server,
                }
            }
            _ => {
                let path = dir.join(&name);
                Prepared {
                    trusted: path.clone(),
                    path,
                    read_only: false,
                }
            }
        };
        located.insert(volume.name.clone(), prepared);
    }
    Ok(located)
}

/// Creates every volume of a group (blocking) where [`locate`] puts it: disks and NFS shares
/// are kept across groups, the others made for this one; volume name → where it is.
pub(crate) fn prepare(
    dir: &Path,
    kept: &Path,
    volumes: &[pb::Volume],
) -> Result<HashMap<String, Prepared>, RuntimeError> {
    let located = locate(dir, kept, volumes)?;
    for volume in volumes {
        let Some(Prepared { path, trusted, .. }) = located.get(&volume.name) else {
            continue;
        };
        match &volume.source {
            Some(pb::volume::Source::Disk(_) | pb::volume::Source::Nfs(_)) => {
                // Kept from group to group: made once, its mode then the containers' business.
                if !trusted.is_dir() {
                    create_dir(trusted, 0o777)?;
                }
                if let Ok(below) = path.strip_prefix(trusted)
                    && below.components().next().is_some()
                {
                    open_beneath(trusted, below, true).map_err(|refused| {
                        refused.into_error(&format!("NFS path of volume {:?}", volume.name))
                    })?;
                }
            }
            Some(pb::volume::Source::EmptyDir(empty)) => {
                create_dir(path, 0o777)?;
                if empty.medium == "Memory" {
                    mounts::mount_tmpfs(path, empty.size_limit_bytes)?;
                } else if !empty.medium.is_empty() {
                    return Err(RuntimeError::invalid(format!(
                        "volume {}: emptyDir medium {:?} is not \"\" or \"Memory\"",
                        volume.name, empty.medium
                    )));
                }
            }
            Some(pb::volume::Source::ConfigFile(config)) => {
                create_dir(path, 0o777)?;
                write_config_files(path, config)?;
            }
            None => {
                return Err(RuntimeError::invalid(format!(
                    "volume {} has no source",
                    volume.name
                )));
            }
        }
    }
    Ok(located)
}

/// One path component from a name the request gave: letters, digits, `-`, `_`, `.`, `:` only,
/// and not `.` or `..`.
fn component(name: &str, what: &str) -> Result<String, RuntimeError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(RuntimeError::invalid(format!(
            "{what} {name:?} must be one path component of letters, digits, '-', '_', '.', ':'"
        )))
    }
}

/// An NFS export path as a relative path: `/` and empty are the share's root; `..` is refused.
fn share_path(path: &str) -> Result<PathBuf, RuntimeError> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(PathBuf::new());
    }
    bundle::safe_relative(trimmed, "NFS path")
}

/// Why [`open_beneath`] refused a path.
#[derive(Debug)]
pub(crate) enum Refused {
    /// `part` is a symlink, or not a directory where one must be.
    Escapes { part: String },
    /// A syscall on `part` failed.
    Failed { part: String, errno: Errno },
}

impl Refused {
    /// The error of a source named `what` (`sub_path "x" of volume "v"`).
    pub(crate) fn into_error(self, what: &str) -> RuntimeError {
        match self {
            Self::Escapes { part } => RuntimeError::invalid(format!(
                "{what} goes through {part:?}, a symlink or not a directory; it must stay \
                 inside its volume"
            )),
            Self::Failed { part, errno } => {
                RuntimeError::invalid(format!("{what}: cannot open {part:?}: {errno}"))
            }
        }
    }
}

/// Opens `relative` beneath `trusted` (blocking), one component at a time with
/// `openat(O_PATH|O_NOFOLLOW)` from the descriptor of the one before, so no symlink is ever
/// followed and nothing swapped in meanwhile can lead out of `trusted` (the kubelet's
/// `doSafeOpen`/`doSafeMakeDir`, its fix of CVE-2017-1002101). Every component but the last
/// must be a directory; the last a directory or a regular file. A missing component is
/// created as a directory (mode 0777, as emptyDir's) when `create`. `trusted` itself is
/// followed: it is the agent's.
pub(crate) fn open_beneath(
    trusted: &Path,
    relative: &Path,
    create: bool,
) -> Result<OwnedFd, Refused> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut at =
        nix::fcntl::openat(AT_FDCWD, trusted, dir_flags, Mode::empty()).map_err(|errno| {
            Refused::Failed {
                part: trusted.display().to_string(),
                errno,
            }
        })?;
    let parts: Vec<_> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let name = || part.to_string_lossy().into_owned();
        let flags = if last {
            // O_PATH with O_NOFOLLOW opens a symlink itself, refused by its type below.
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
        } else {
            dir_flags | OFlag::O_NOFOLLOW
        };
        let opened = match nix::fcntl::openat(&at, *part, flags, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                make_dir_at(&at, part).map_err(|errno| Refused::Failed {
                    part: name(),
                    errno,
                })?
            }
            Err(Errno::ENOTDIR | Errno::ELOOP) => return Err(Refused::Escapes { part: name() }),
            Err(errno) => {
                return Err(Refused::Failed {
                    part: name(),
                    errno,
                });
            }
            Ok(fd) => fd,
        };
        if last {
            let kind = kind_of(&opened).map_err(|errno| Refused::Failed {
                part: name(),
                errno,
            })?;
            if kind != SFlag::S_IFDIR && kind != SFlag::S_IFREG {
                return Err(Refused::Escapes { part: name() });
            }
        }
        at = opened;
    }
    Ok(at)
}

/// Makes directory `name` in `dir` (mode 0777 whatever the umask) and opens it without
/// following a symlink put there meanwhile.
fn make_dir_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> Result<OwnedFd, Errno> {
    match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o777)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(errno),
    }
    let opened = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| {
        if errno == Errno::ELOOP {
            Errno::ENOTDIR
        } else {
            errno
        }
    })?;
    nix::sys::stat::fchmod(&opened, Mode::from_bits_truncate(0o777))?;
    Ok(opened)
}

fn kind_of(fd: &impl AsFd) -> Result<SFlag, Errno> {
    let stat = nix::sys::stat::fstat(fd)?;
    Ok(SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT)
}

/// Binds every staged source of a container afresh (blocking; before each start): whatever
/// was mounted on a staging path is unmounted, the source is opened with [`open_beneath`]
/// (created when missing, as the kubelet does) and its descriptor bind-mounted there. A
/// staging mount stays until the next start or the removal of the container's directory
/// (`mounts::unmount_under`).
///
/// # Errors
/// [`RuntimeError::InvalidRequest`] naming the source when it leads through a symlink or a
/// file; [`RuntimeError::Mount`] or [`RuntimeError::Io`] when the staging path cannot be made.
pub(crate) fn bind_staged(staged: &[Staged]) -> Result<(), RuntimeError> {
    for one in staged {
        unmount_all(&one.staging)?;
        let source = open_beneath(&one.trusted, &one.relative, true)
            .map_err(|refused| refused.into_error(&one.what))?;
        let kind = kind_of(&source).map_err(|errno| RuntimeError::Mount {
            action: "inspect the source of",
            path: one.staging.clone(),
            source: errno,
        })?;
        make_staging(&one.staging, kind == SFlag::S_IFDIR)?;
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
        nix::mount::mount(
            Some(&proc_path),
            &one.staging,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| RuntimeError::Mount {
            action: "bind the source onto",
            path: one.staging.clone(),
            source: errno,
        })?;
    }
    Ok(())
}

/// Unmounts every mount stacked on `path` (an earlier start's).
fn unmount_all(path: &Path) -> Result<(), RuntimeError> {
    loop {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(errno) => {
                return Err(RuntimeError::Mount {
                    action: "unmount",
                    path: path.to_owned(),
                    source: errno,
                });
            }
        }
    }
}

/// An empty directory, or an empty file, at `path` (an agent-owned path no container sees),
/// replacing one of the other kind.
fn make_staging(path: &Path, dir: bool) -> Result<(), RuntimeError> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.is_dir() != dir
    {
        // Never recursive: nothing is mounted there any more, and it was made empty.
        if meta.is_dir() {
            std::fs::remove_dir(path).map_err(RuntimeError::io("remove", path))?;
        } else {
            std::fs::remove_file(path).map_err(RuntimeError::io("remove", path))?;
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(RuntimeError::io("create", parent))?;
    }
    if dir {
        std::fs::create_dir_all(path).map_err(RuntimeError::io("create", path))
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(|_| ())
            .map_err(RuntimeError::io("create", path))
    }
}

fn create_dir(path: &Path, mode: u32) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(path).map_err(RuntimeError::io("create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(RuntimeError::io("set the mode of", path))
}

fn write_config_files(root: &Path, config: &pb::ConfigFileVolume) -> Result<(), RuntimeError> {
    let default_mode = if config.default_mode == 0 {
        0o644
    } else {
        config.default_mode
    };
    for file in &config.files {
        let relative = bundle::safe_relative(&file.path, "config file path")?;
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(RuntimeError::io("create", parent))?;
        }
        std::fs::write(&path, &file.content).map_err(RuntimeError::io("write", &path))?;
        let mode = if file.mode == 0 {
            default_mode
        } else {
            file.mode
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(RuntimeError::io("set the mode of", &path))?;
    }
    Ok(())
}

/// The bind mounts of a container's volume mounts, and the sources among them to bind at
/// each start (blocking: a missing `sub_path` is created now, to fail early, and again at
/// each start if it went away). The `i`-th mount of a staged source names
/// `<staging_dir>/<i>`.
pub(crate) fn container_mounts(
    volumes: &HashMap<String, Prepared>,
    container: &pb::ContainerSpec,
    container_id: &str,
    staging_dir: &Path,
) -> Result<(Vec<Mount>, Vec<Staged>), RuntimeError> {
    let mut out = Vec::new();
    let mut staged = Vec::new();
    for (i, mount) in container.volume_mounts.iter().enumerate() {
        let volume = volumes.get(&mount.name).ok_or_else(|| {
            RuntimeError::invalid(format!(
                "container {}: volume mount {:?} names no volume of the group",
                container.name, mount.name
            ))
        })?;
        if !mount.mount_path.starts_with('/') {
            return Err(RuntimeError::invalid(format!(
                "container {}: mount path {:?} is not absolute",
                container.name, mount.mount_path
            )));
        }
        let mut relative = volume
            .path
            .strip_prefix(&volume.trusted)
            .map_err(|_| {
                RuntimeError::invalid(format!(
                    "volume {:?} is outside {}",
                    mount.name,
                    volume.trusted.display()
                ))
            })?
            .to_owned();
        let what = if mount.sub_path.is_empty() {
            format!("volume {:?}", mount.name)
        } else {
            relative.push(bundle::safe_relative(&mount.sub_path, "sub_path")?);
            format!("sub_path {:?} of volume {:?}", mount.sub_path, mount.name)
        };
        let source = if relative.components().next().is_none() {
            volume.path.clone()
        } else {
            open_beneath(&volume.trusted, &relative, true).map_err(|refused| {
                refused.into_error(&format!("container {}: {what}", container.name))
            })?;
            let staging = staging_dir.join(i.to_string());
            staged.push(Staged {
                what: format!("container {}: {what}", container.name),
                trusted: volume.trusted.clone(),
                relative,
                staging: staging.clone(),
            });
            staging
        };
        let read_only = mount.read_only || volume.read_only;
        out.push(
            bundle::bind_mount(&source, &mount.mount_path, read_only).map_err(|source| {
                RuntimeError::Spec {
                    container_id: container_id.to_owned(),
                    source,
                }
            })?,
        );
    }
    Ok((out, staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(name: &str, source: pb::volume::Source) -> pb::Volume {
        pb::Volume {
            name: name.into(),
            source: Some(source),
        }
    }

    fn mount(name: &str, sub_path: &str, read_only: bool) -> pb::VolumeMount {
        pb::VolumeMount {
            name: name.into(),
            mount_path: "/mnt".into(),
            read_only,
            sub_path: sub_path.into(),
        }
    }

    fn mounts_of(
        made: &HashMap<String, Prepared>,
        mounts: Vec<pb::VolumeMount>,
    ) -> Result<Vec<Mount>, RuntimeError> {
        let container = pb::ContainerSpec {
            name: "c".into(),
            volume_mounts: mounts,
            ..pb::ContainerSpec::default()
        };
        container_mounts(made, &container, "g-c", Path::new("/staging")).map(|(m, _)| m)
    }

    fn staged_of(
        made: &HashMap<String, Prepared>,
        mounts: Vec<pb::VolumeMount>,
        staging: &Path,
    ) -> Result<(Vec<Mount>, Vec<Staged>), RuntimeError> {
        let container = pb::ContainerSpec {
            name: "c".into(),
            volume_mounts: mounts,
            ..pb::ContainerSpec::default()
        };
        container_mounts(made, &container, "g-c", staging)
    }

    fn empty_dir(root: &Path) -> HashMap<String, Prepared> {
        prepare(
            &root.join("g"),
            root,
            &[volume(
                "v",
                pb::volume::Source::EmptyDir(pb::EmptyDirVolume::default()),
            )],
        )
        .expect("prepared")
    }

    fn is_read_only(m: &Mount) -> bool {
        m.options().iter().flatten().any(|o| o == "ro")
    }

    #[test]
    fn config_files_get_their_modes() {
        let root = tempfile::tempdir().expect("tempdir");
        let config = pb::ConfigFileVolume {
            files: vec![
                pb::ConfigFile {
                    path: "run.sh".into(),
                    content: b"#!/bin/sh".to_vec(),
                    mode: 0o755,
                },
                pb::ConfigFile {
                    path: "dir/secret".into(),
                    content: b"pw".to_vec(),
                    mode: 0,
                },
            ],
            default_mode: 0o400,
        };
        let made = prepare(
            &root.path().join("g"),
            root.path(),
            &[volume("cfg", pb::volume::Source::ConfigFile(config))],
        )
        .expect("prepared");
        let mode = |p: &str| {
            std::fs::metadata(made["cfg"].path.join(p))
                .expect("written")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("run.sh"), 0o755);
        assert_eq!(mode("dir/secret"), 0o400);
    }

    #[test]
    fn disks_and_shares_are_kept_outside_the_group_and_shares_can_be_read_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let disk = pb::volume::Source::Disk(pb::DiskVolume {
            disk_id: "d-abc".into(),
            fs_type: String::new(),
        });
        let share = pb::volume::Source::Nfs(pb::NfsVolume {
            server: "nas.example".into(),
            path: "/exports/a/".into(),
            read_only: true,
        });
        let made = prepare(
            &root.path().join("groups/g1/volumes"),
            root.path(),
            &[volume("data", disk.clone()), volume("share", share)],
        )
        .expect("prepared");
        assert_eq!(made["data"].path, root.path().join("disks/d-abc"));
        assert_eq!(
            made["share"].path,
            root.path().join("nfs/nas.example/exports/a")
        );
        std::fs::write(made["data"].path.join("kept"), "1").expect("write");
        // A later group with the same disk sees what the first wrote.
        let again = prepare(
            &root.path().join("groups/g2/volumes"),
            root.path(),
            &[volume("data", disk)],
        )
        .expect("prepared");
        assert_eq!(
            std::fs::read_to_string(again["data"].path.join("kept")).expect("kept"),
            "1"
        );
        let mounts = mounts_of(
            &made,
            vec![
                mount("data", "", false),
                mount("share", "", false),
                mount("data", "", true),
            ],
        )
        .expect("mounts");
        let ro: Vec<bool> = mounts.iter().map(is_read_only).collect();
        assert_eq!(ro, [false, true, true]);
    }

    #[test]
    fn names_that_would_leave_the_root_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("g");
        let disk = |id: &str| {
            volume(
                "v",
                pb::volume::Source::Disk(pb::DiskVolume {
                    disk_id: id.into(),
                    fs_type: String::new(),
                }),
            )
        };
        let nfs = |server: &str, path: &str| {
            volume(
                "v",
                pb::volume::Source::Nfs(pb::NfsVolume {
                    server: server.into(),
                    path: path.into(),
                    read_only: false,
                }),
            )
        };
        for bad in [
            disk(".."),
            disk("a/b"),
            nfs("..", "/x"),
            nfs("s", "/a/../../b"),
        ] {
            assert!(
                prepare(&dir, root.path(), std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_sub_path_is_created_inside_and_never_through_a_symlink() {
        let root = tempfile::tempdir().expect("tempdir");
        let made = empty_dir(root.path());
        let staging = root.path().join("staging");
        let (mounts, staged) =
            staged_of(&made, vec![mount("v", "a/b", false)], &staging).expect("mounts");
        assert_eq!(
            mounts[0].source().as_deref(),
            Some(staging.join("0").as_path()),
            "config.json names the agent's staging path, never the volume's"
        );
        assert_eq!(staged[0].relative, Path::new("a/b"));
        assert!(made["v"].path.join("a/b").is_dir());
        std::os::unix::fs::symlink("/etc", made["v"].path.join("out")).expect("symlink");
        std::fs::write(made["v"].path.join("file"), "x").expect("file");
        assert!(mounts_of(&made, vec![mount("v", "out", false)]).is_err());
        assert!(mounts_of(&made, vec![mount("v", "out/x", false)]).is_err());
        assert!(mounts_of(&made, vec![mount("v", "file/x", false)]).is_err());
        assert!(mounts_of(&made, vec![mount("v", "../x", false)]).is_err());
        // A file is a sub path too (a single config file), bound onto a staging file.
        assert!(mounts_of(&made, vec![mount("v", "file", false)]).is_ok());
    }

    /// CVE-2017-1002101: an init container sharing the volume replaces the sub path, laid out
    /// as a directory, by a symlink to `/` before the container using it starts.
    #[test]
    fn a_sub_path_swapped_for_a_symlink_after_layout_is_refused_at_start() {
        let root = tempfile::tempdir().expect("tempdir");
        let made = empty_dir(root.path());
        let staging = root.path().join("g/containers/c/subpaths");
        let (mounts, staged) =
            staged_of(&made, vec![mount("v", "x", false)], &staging).expect("laid out");
        let x = made["v"].path.join("x");
        std::fs::remove_dir(&x).expect("rm -rf /v/x");
        std::os::unix::fs::symlink("/", &x).expect("ln -s / /v/x");
        let source = mounts[0].source().clone().expect("a source");
        assert_ne!(
            std::fs::canonicalize(&source).ok().as_deref(),
            Some(Path::new("/")),
            "the source runc would mount leads to the host's root"
        );
        let refused = bind_staged(&staged).expect_err("the symlink is refused at start");
        let text = refused.to_string();
        assert!(text.contains("sub_path \"x\" of volume \"v\""), "{text}");
        // Deeper: a symlinked directory on the way is refused too.
        std::fs::remove_file(&x).expect("rm");
        std::fs::create_dir(&x).expect("mkdir");
        let (_, deeper) =
            staged_of(&made, vec![mount("v", "x/y/z", false)], &staging).expect("laid out");
        std::fs::remove_dir_all(x.join("y")).expect("rm");
        std::os::unix::fs::symlink("/", x.join("y")).expect("ln");
        assert!(bind_staged(&deeper).is_err());
    }

    #[test]
    fn a_share_below_another_share_never_goes_through_a_symlink() {
        let root = tempfile::tempdir().expect("tempdir");
        let share = |path: &str| {
            volume(
                "s",
                pb::volume::Source::Nfs(pb::NfsVolume {
                    server: "nas".into(),
                    path: path.into(),
                    read_only: false,
                }),
            )
        };
        let whole = prepare(&root.path().join("g1"), root.path(), &[share("/")]).expect("made");
        // A container of the first group, which sees the server's directory, plants a link.
        std::os::unix::fs::symlink("/", whole["s"].path.join("b")).expect("ln -s / b");
        assert!(prepare(&root.path().join("g2"), root.path(), &[share("/b")]).is_err());
        assert!(prepare(&root.path().join("g2"), root.path(), &[share("/b/c")]).is_err());
        // A share below another one is bound from a staging path at each start.
        let below = prepare(&root.path().join("g3"), root.path(), &[share("/d")]).expect("made");
        let (mounts, staged) =
            staged_of(&below, vec![mount("s", "", false)], Path::new("/staging")).expect("ok");
        assert_eq!(mounts[0].source().as_deref(), Some(Path::new("/staging/0")));
        assert_eq!(staged[0].relative, Path::new("d"));
    }

    /// The bind itself needs root (mount(2)); skipped otherwise.
    #[test]
    fn a_sub_path_is_bound_afresh_at_each_start() {
        use std::os::unix::fs::MetadataExt as _;
        // /proc/self is owned by the effective uid (proc(5)).
        if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
            return;
        }
        /// Unmounts what the test bound, however it ends (dropped before the tempdir).
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = mounts::unmount_under(&self.0);
            }
        }
        let root = tempfile::tempdir().expect("tempdir");
        let _unmount = Unmount(root.path().to_owned());
        let made = empty_dir(root.path());
        let staging = root.path().join("g/containers/c/subpaths");
        std::fs::create_dir_all(made["v"].path.join("x")).expect("mkdir");
        std::fs::write(made["v"].path.join("x/one"), "1").expect("write");
        std::fs::write(made["v"].path.join("f"), "file").expect("write");
        let (_, staged) = staged_of(
            &made,
            vec![mount("v", "x", false), mount("v", "f", true)],
            &staging,
        )
        .expect("laid out");
        bind_staged(&staged).expect("bound");
        assert!(staging.join("0/one").is_file());
        assert_eq!(
            std::fs::read_to_string(staging.join("1")).expect("a bound file"),
            "file"
        );
        // The next start sees the volume as it is then, with one mount per staging path.
        std::fs::rename(made["v"].path.join("x"), made["v"].path.join("old")).expect("mv");
        std::fs::create_dir(made["v"].path.join("x")).expect("mkdir");
        bind_staged(&staged).expect("bound again");
        assert!(!staging.join("0/one").exists());
        assert_eq!(mounts::mounts_under(&staging).len(), 2);
        assert!(mounts::unmount_under(root.path()).is_empty());
        assert!(mounts::mounts_under(&staging).is_empty());
    }
}
