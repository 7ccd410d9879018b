//! From prepared snapshots to what the runtime runs: each container image's rootfs and its
//! run configuration (entrypoint, cmd, env, working directory, user from the image config).

use std::collections::HashMap;

use tonic::Status;

use super::{LocalAgent, status};
use crate::agent::{
    pb::{self, ImageProgress},
    runc::{ImageRunConfig, PreparedImage},
    snapshot::SnapshotManifest,
    store::Digest,
};

/// The images of a group's containers and the snapshots they come from.
///
/// # Errors
/// `FAILED_PRECONDITION` when `PrepareImages` did not run for the group or an image is missing
/// from its snapshot.
pub(super) async fn for_group(
    agent: &LocalAgent,
    request: &pb::CreateGroupRequest,
) -> Result<(HashMap<String, PreparedImage>, Vec<String>), Status> {
    let located: HashMap<String, String> = agent
        .inner
        .prepared
        .lock()
        .get(&request.group_id)
        .map(|p| p.images.clone())
        .ok_or_else(|| {
            Status::failed_precondition(format!(
                "the images of {} were not prepared",
                request.group_id
            ))
        })?;
    let mut manifests: HashMap<String, SnapshotManifest> = HashMap::new();
    let mut out = HashMap::new();
    for container in request.init_containers.iter().chain(&request.containers) {
        if out.contains_key(&container.image) {
            continue;
        }
        let snapshot = located.get(&container.image).ok_or_else(|| {
            Status::failed_precondition(format!("image {} was not prepared", container.image))
        })?;
        if !manifests.contains_key(snapshot) {
            let manifest = agent
                .inner
                .snapshots
                .get(snapshot)
                .await
                .map_err(status)?
                .ok_or_else(|| {
                    Status::failed_precondition(format!("snapshot {snapshot} is gone"))
                })?;
            manifests.insert(snapshot.clone(), manifest);
        }
        let manifest = &manifests[snapshot];
        let image = manifest
            .images
            .iter()
            .find(|i| i.requested == container.image)
            .or_else(|| {
                let normalised = container
                    .image
                    .parse::<crate::agent::registry::ImageRef>()
                    .ok()?
                    .to_string();
                manifest.images.iter().find(|i| i.image == normalised)
            })
            .ok_or_else(|| {
                Status::failed_precondition(format!(
                    "snapshot {snapshot} does not hold image {}",
                    container.image
                ))
            })?;
        let config = run_config(agent, &image.config_digest).await?;
        let rootfs = agent
            .inner
            .snapshots
            .path(snapshot)
            .map_err(status)?
            .join(&image.rootfs);
        out.insert(container.image.clone(), PreparedImage { rootfs, config });
    }
    Ok((out, manifests.into_keys().collect()))
}

/// The run configuration of an image, from its config blob in the content store.
async fn run_config(agent: &LocalAgent, digest: &str) -> Result<ImageRunConfig, Status> {
    let digest: Digest = digest
        .parse()
        .map_err(|e| Status::internal(format!("bad config digest {digest}: {e}")))?;
    let data = agent
        .inner
        .content
        .read(&digest)
        .await
        .map_err(|e| Status::unavailable(crate::error_chain(&e)))?;
    let file: oci_client::config::ConfigFile = serde_json::from_slice(&data).map_err(|e| {
        Status::failed_precondition(format!("unreadable image config {digest}: {e}"))
    })?;
    let config = file.config.unwrap_or_default();
    Ok(ImageRunConfig {
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        working_dir: config.working_dir.unwrap_or_default(),
        user: config.user.unwrap_or_default(),
    })
}

/// The protocol's form of a snapshot.
pub(super) fn snapshot_message(manifest: &SnapshotManifest) -> pb::Snapshot {
    pb::Snapshot {
        snapshot_id: manifest.id.clone(),
        images: manifest
            .images
            .iter()
            .map(|i| ImageProgress {
                image: i.requested.clone(),
                bytes_done: i.pull_size,
                bytes_total: i.pull_size,
                from_snapshot: false,
                complete: true,
            })
            .collect(),
        size_bytes: manifest.size_bytes,
    }
}
