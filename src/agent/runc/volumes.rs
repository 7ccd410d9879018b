//! A group's volumes: `emptyDir` (a directory, or a tmpfs for `Memory`) and `ConfigFile` (files
//! written with their modes), and where each appears in a container.

use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use oci_spec::runtime::Mount;

use super::{RuntimeError, bundle, mounts, pb};

/// Creates every volume of a group under `dir` (blocking); volume name → host directory.
pub(crate) fn prepare(
    dir: &Path,
    volumes: &[pb::Volume],
) -> Result<HashMap<String, PathBuf>, RuntimeError> {
    let mut made = HashMap::new();
    for volume in volumes {
        let name = bundle::safe_relative(&volume.name, "volume name")?;
        if name.components().count() != 1 || made.contains_key(&volume.name) {
            return Err(RuntimeError::invalid(format!(
                "volume name {:?} must be a single, unique path component",
                volume.name
            )));
        }
        let path = dir.join(&name);
        create_dir(&path, 0o777)?;
        match &volume.source {
            Some(pb::volume::Source::EmptyDir(empty)) => {
                if empty.medium == "Memory" {
                    mounts::mount_tmpfs(&path, empty.size_limit_bytes)?;
                } else if !empty.medium.is_empty() {
                    return Err(RuntimeError::invalid(format!(
                        "volume {}: emptyDir medium {:?} is not \"\" or \"Memory\"",
                        volume.name, empty.medium
                    )));
                }
            }
            Some(pb::volume::Source::ConfigFile(config)) => write_config_files(&path, config)?,
            None => {
                return Err(RuntimeError::invalid(format!(
                    "volume {} has no source",
                    volume.name
                )));
            }
        }
        made.insert(volume.name.clone(), path);
    }
    Ok(made)
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
    volumes: &HashMap<String, PathBuf>,
    container: &pb::ContainerSpec,
    container_id: &str,
) -> Result<Vec<Mount>, RuntimeError> {
    let mut out = Vec::new();
    for mount in &container.volume_mounts {
        let dir = volumes.get(&mount.name).ok_or_else(|| {
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
            dir.clone()
        } else {
            let sub = dir.join(bundle::safe_relative(&mount.sub_path, "sub_path")?);
            if std::fs::symlink_metadata(&sub).is_err() {
                create_dir(&sub, 0o777)?;
            }
            sub
        };
        out.push(
            bundle::bind_mount(&source, &mount.mount_path, mount.read_only).map_err(|source| {
                RuntimeError::Spec {
                    container_id: container_id.to_owned(),
                    source,
                }
            })?,
        );
    }
    Ok(out)
}
