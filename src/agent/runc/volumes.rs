//! A group's volumes: `emptyDir` (a directory, or a tmpfs for `Memory`), `ConfigFile` (files
//! written with their modes), a disk (`disks/<disk-id>` under the agent's root) and an NFS share
//! (`nfs/<server>/<path>`), the last two kept after the group is gone; and where each appears
//! in a container: bind mounts, read-only when the mount or the volume says so, a `sub_path`
//! resolved inside its volume without following a symlink.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt as _,
    path::{Component, Path, PathBuf},
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
        let (path, read_only) = match &volume.source {
            Some(pb::volume::Source::Disk(disk)) => (
                kept.join("disks")
                    .join(component(&disk.disk_id, "disk id")?),
                false,
            ),
            Some(pb::volume::Source::Nfs(nfs)) => (
                kept.join("nfs")
                    .join(component(&nfs.server, "NFS server")?)
                    .join(share_path(&nfs.path)?),
                nfs.read_only,
            ),
            _ => (dir.join(&name), false),
        };
        located.insert(volume.name.clone(), Prepared { path, read_only });
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
        let Some(Prepared { path, .. }) = located.get(&volume.name) else {
            continue;
        };
        match &volume.source {
            Some(pb::volume::Source::Disk(_) | pb::volume::Source::Nfs(_)) => {
                create_kept(kept, path)?
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

/// `sub` inside `root`, every component a real directory or absent (then created), never a
/// symlink: a container cannot point a later mount outside its volume.
fn resolve_sub_path(root: &Path, sub: &str) -> Result<PathBuf, RuntimeError> {
    let relative = bundle::safe_relative(sub, "sub_path")?;
    resolve_beneath(root, &relative).map_err(|part| {
        RuntimeError::invalid(format!(
            "sub_path {sub:?} goes through a symlink at {part:?}; it must stay inside its volume"
        ))
    })?
}

/// `relative` inside `root`, walked one component at a time: each is a real directory, or
/// absent and then created; a symlink or a file on the way is refused (`Err` names the part),
/// so what a container wrote into a shared directory (an emptyDir, a disk, an NFS share) can
/// never point a later mount, or a later volume's directory, outside it. `root` itself is
/// trusted.
fn resolve_beneath(root: &Path, relative: &Path) -> Result<Result<PathBuf, RuntimeError>, String> {
    let mut at = root.to_owned();
    for part in relative.components() {
        let Component::Normal(part) = part else {
            continue;
        };
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(part.to_string_lossy().into_owned()),
            Err(_) => {
                if let Err(error) = create_dir(&at, 0o777) {
                    return Ok(Err(error));
                }
            }
        }
    }
    Ok(Ok(at))
}

/// Creates a directory kept across groups (a disk's, an NFS share's) under the agent's `kept`
/// root, without following a symlink on the way: an NFS path below another share's directory
/// (`/a/b` beside `/a`) cannot be turned by a container of the first into a path on the host.
fn create_kept(kept: &Path, path: &Path) -> Result<(), RuntimeError> {
    let relative = path.strip_prefix(kept).map_err(|_| {
        RuntimeError::invalid(format!("{} is outside {}", path.display(), kept.display()))
    })?;
    resolve_beneath(kept, relative)
        .map_err(|part| {
            RuntimeError::invalid(format!(
                "{} goes through {part:?}, which is not a directory (a symlink?)",
                path.display()
            ))
        })?
        .map(|_| ())
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

/// The bind mounts of a container's volume mounts (blocking: a missing `sub_path` is created,
/// as the kubelet does).
pub(crate) fn container_mounts(
    volumes: &HashMap<String, Prepared>,
    container: &pb::ContainerSpec,
    container_id: &str,
) -> Result<Vec<Mount>, RuntimeError> {
    let mut out = Vec::new();
    for mount in &container.volume_mounts {
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
        let source = if mount.sub_path.is_empty() {
            volume.path.clone()
        } else {
            resolve_sub_path(&volume.path, &mount.sub_path)?
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
    Ok(out)
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
        container_mounts(made, &container, "g-c")
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
        let made = prepare(
            &root.path().join("g"),
            root.path(),
            &[volume(
                "v",
                pb::volume::Source::EmptyDir(pb::EmptyDirVolume::default()),
            )],
        )
        .expect("prepared");
        let mounts = mounts_of(&made, vec![mount("v", "a/b", false)]).expect("mounts");
        assert_eq!(
            mounts[0].source().as_deref(),
            Some(made["v"].path.join("a/b").as_path())
        );
        assert!(made["v"].path.join("a/b").is_dir());
        std::os::unix::fs::symlink("/etc", made["v"].path.join("out")).expect("symlink");
        assert!(mounts_of(&made, vec![mount("v", "out", false)]).is_err());
        assert!(mounts_of(&made, vec![mount("v", "out/x", false)]).is_err());
        assert!(mounts_of(&made, vec![mount("v", "../x", false)]).is_err());
    }
}
