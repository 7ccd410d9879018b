//! The snapshot store's file-system steps: durable manifest writes and syncs, reading a
//! manifest that may be torn, sweeping broken snapshots, measuring and removing trees.

use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use tracing::warn;

use super::{MANIFEST_FILE, MANIFEST_TEMP, SnapshotManifest};

/// Bytes of regular-file content under `root`, each inode once, symlinks not followed.
pub(super) fn disk_usage(root: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut inodes = HashSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?; // does not follow symlinks
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() && inodes.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// What a snapshot directory's manifest file holds.
#[derive(Debug)]
pub(super) enum ManifestState {
    Valid(SnapshotManifest),
    Missing,
    /// Present but not a manifest (truncated, torn).
    Corrupt(serde_json::Error),
}

/// Reads the manifest at `path`; only an I/O error other than "not found" is an error.
pub(super) async fn read_manifest(path: &Path) -> std::io::Result<ManifestState> {
    match tokio::fs::read(path).await {
        Ok(data) => Ok(match serde_json::from_slice(&data) {
            Ok(manifest) => ManifestState::Valid(manifest),
            Err(e) => ManifestState::Corrupt(e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ManifestState::Missing),
        Err(e) => Err(e),
    }
}

/// Writes `manifest` as `dir/snapshot.json` so that a crash leaves the old file or the new
/// one, never part of one: a synced temporary file renamed into place, then the directory
/// synced (the order etcd's `fileutil` and containerd's metadata writes use).
pub(super) async fn write_manifest(dir: &Path, manifest: &SnapshotManifest) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(manifest)?;
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let temp = dir.join(MANIFEST_TEMP);
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, dir.join(MANIFEST_FILE))?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Syncs a directory, making the renames inside it durable.
pub(super) async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

/// Syncs the whole file system holding `dir`: one call for every file an unpack wrote,
/// instead of one `fsync` per file.
pub(super) async fn sync_fs(dir: &Path) -> std::io::Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(dir)?;
        nix::unistd::syncfs(&file).map_err(std::io::Error::from)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Removes the snapshot directories under `root` without a valid manifest. A complete
/// snapshot always has one (it is written before the directory gets its id), so these are
/// leftovers of a crash or of a disk that lost the write; left in place they would make
/// every later build or rename of their id fail.
pub(super) async fn sweep_broken(root: &Path) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(root).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type().await?.is_dir() {
            continue;
        }
        let path = entry.path();
        // An unreadable manifest (EIO, permissions) is left alone: that needs an operator.
        if matches!(
            read_manifest(&path.join(MANIFEST_FILE)).await,
            Ok(ManifestState::Missing | ManifestState::Corrupt(_))
        ) {
            warn!(snapshot.id = %name, "removing a snapshot directory without a valid manifest");
            remove_tree(path).await;
        }
    }
    Ok(())
}

pub(super) async fn remove_tree(path: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(path)).await;
}
