//! Entry points for the fuzz targets of `fuzz/` (issue #20) that read what a registry serves:
//! layer blobs, and manifests, indexes and image configs. Kept in this room so the targets run
//! exactly the code the agent runs on a pull. Not an API: hidden from the docs.

use std::{
    io::Cursor,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use oci_client::manifest::OciManifest;

use super::{
    registry::{Platform, blobs_of},
    snapshot::config_diff_ids,
    unpack::{Limits, UnpackOptions, unpack_layer as unpack},
};

/// Small limits, so one input costs milliseconds: the checks are the same at any size.
const LIMITS: Limits = Limits {
    bytes: 8 << 20,
    entries: 4096,
    header_bytes: 64 << 10,
    stream_bytes: 32 << 20,
    trailing_bytes: 64 << 10,
};

/// A layer blob (a tar, gzip or zstd as its magic says), unpacked twice onto one fresh root as
/// two layers of an image are (the second's whiteouts and replacements meet the first's
/// files). Whatever the bytes: no panic, and nothing is created beside the root.
pub fn unpack_layer(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let root = scratch.0.join("rootfs");
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    let options = UnpackOptions {
        limits: LIMITS,
        ..UnpackOptions::default()
    };
    for _ in 0..2 {
        let media_type = "application/vnd.oci.image.layer.v1.tar";
        if unpack(Cursor::new(data), media_type, &root, &options).is_err() {
            break;
        }
    }
    let beside: Vec<_> = std::fs::read_dir(&scratch.0)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(beside, ["rootfs"], "a layer wrote beside its root");
}

/// A manifest or index as the registry client receives it, read as a pull reads it: an index
/// selects this platform's entry, an image manifest yields its checked blobs. Also an image
/// config's `diff_ids`, which verify the unpacked layers. Never a panic.
pub fn oci_manifest(data: &[u8]) {
    let _ = config_diff_ids(data);
    match serde_json::from_slice::<OciManifest>(data) {
        Ok(OciManifest::Image(manifest)) => {
            if let Ok((_, layers)) = blobs_of("fuzz", &manifest) {
                assert_eq!(layers.len(), manifest.layers.len());
            }
        }
        Ok(OciManifest::ImageIndex(index)) => {
            for platform in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
                if let Ok(platform) = platform.parse::<Platform>()
                    && let Some(digest) = platform.select(&index.manifests)
                {
                    assert!(index.manifests.iter().any(|entry| entry.digest == digest));
                }
            }
        }
        Err(_) => {}
    }
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Option<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "eci-vk-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).ok()?;
        Some(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// Removes a tree the layer made, making its directories writable first (a layer may leave
/// a directory of mode 0 that even its owner cannot empty without root).
fn remove(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(path);
}
