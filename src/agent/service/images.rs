//! From prepared snapshots to what the runtime runs: each container image's rootfs and its
//! run configuration (entrypoint, cmd, env, working directory, user from the image config).

use std::collections::HashMap;

use tonic::Status;

use super::LocalAgent;
use crate::agent::{
    image::{Digest, ImageRef, SnapshotManifest},
    pb::{self, ImageProgress},
    runc::{ImageRunConfig, PreparedImage},
    status::AgentError,
};

/// The images of a group's containers, with the group registered as a user of the snapshots
/// they come from.
///
/// The group is registered before any snapshot is read, and refused when a snapshot was
/// deleted, in one step under the usage lock: a concurrent `DeleteSnapshot` then either sees
/// the user and defers, or has marked the snapshot first and this call fails.
///
/// # Errors
/// `FAILED_PRECONDITION` when `PrepareImages` did not run for the group, a snapshot was
/// deleted, or an image is missing from its snapshot.
pub(super) async fn for_group(
    agent: &LocalAgent,
    request: &pb::CreateGroupRequest,
) -> Result<HashMap<String, PreparedImage>, Status> {
    let located: HashMap<String, String> = agent
        .inner
        .prepared
        .lock()
        .get_mut(&request.group_id)
        .map(|p| {
            // Created: no longer subject to the prepared TTL.
            p.created = true;
            p.images.clone()
        })
        .ok_or_else(|| AgentError::GroupNotPrepared {
            group_id: request.group_id.clone(),
        })?;
    agent
        .inner
        .usage
        .lock()
        .claim(&request.group_id, located.values())
        .map_err(|snapshot| AgentError::SnapshotGone { snapshot })?;
    let mut manifests: HashMap<String, SnapshotManifest> = HashMap::new();
    let mut out = HashMap::new();
    for container in request.init_containers.iter().chain(&request.containers) {
        if out.contains_key(&container.image) {
            continue;
        }
        let snapshot =
            located
                .get(&container.image)
                .ok_or_else(|| AgentError::ImageNotPrepared {
                    image: container.image.clone(),
                })?;
        if !manifests.contains_key(snapshot) {
            let manifest = agent.inner.snapshots.get(snapshot).await?.ok_or_else(|| {
                AgentError::SnapshotGone {
                    snapshot: snapshot.clone(),
                }
            })?;
            manifests.insert(snapshot.clone(), manifest);
        }
        let manifest = &manifests[snapshot];
        let image = manifest
            .images
            .iter()
            .find(|i| i.requested == container.image)
            .or_else(|| {
                let normalised = container.image.parse::<ImageRef>().ok()?.to_string();
                manifest.images.iter().find(|i| i.image == normalised)
            })
            .ok_or_else(|| AgentError::ImageNotInSnapshot {
                snapshot: snapshot.clone(),
                image: container.image.clone(),
            })?;
        let config = run_config(agent, &image.config_digest).await?;
        let rootfs = agent.inner.snapshots.path(snapshot)?.join(&image.rootfs);
        out.insert(container.image.clone(), PreparedImage { rootfs, config });
    }
    Ok(out)
}

/// The run configuration of an image, from its config blob in the content store.
async fn run_config(agent: &LocalAgent, digest: &str) -> Result<ImageRunConfig, AgentError> {
    let digest: Digest = digest
        .parse()
        .map_err(|source| AgentError::ParseConfigDigest {
            digest: digest.to_owned(),
            source,
        })?;
    let data = agent
        .inner
        .content
        .read_metadata(&digest)
        .await
        .map_err(|source| AgentError::ReadConfig {
            digest: digest.to_string(),
            source,
        })?;
    let file: oci_client::config::ConfigFile =
        serde_json::from_slice(&data).map_err(|source| AgentError::ParseConfig {
            digest: digest.to_string(),
            source,
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
