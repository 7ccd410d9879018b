//! Updating a running group in place (ECI `UpdateContainerGroup`): the group keeps its network,
//! volumes and `/etc` files; every container is stopped and started again, and a container
//! whose spec changed (a new image, above all) gets a fresh rootfs and bundle from its new
//! image first. Restart counts go on and last states become previous ones, as the kubelet
//! shows a container restarted on a new image.
//!
//! Changes a machine cannot make in place (other container names, volumes, DNS, hostname,
//! host aliases) are refused, so the caller re-creates the group instead.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::{
    PreparedImage, RuncRuntime, RuntimeError, blocking,
    group::{self, Container, Group},
    mounts, pb, supervise,
};

/// How long the containers of an updated group get between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why `new` cannot replace `old` in place, if it cannot.
fn not_in_place(old: &pb::CreateGroupRequest, new: &pb::CreateGroupRequest) -> Option<String> {
    let names =
        |list: &[pb::ContainerSpec]| list.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(&old.containers) != names(&new.containers)
        || names(&old.init_containers) != names(&new.init_containers)
    {
        return Some("the containers' names changed".into());
    }
    if old.volumes != new.volumes {
        return Some("the volumes changed".into());
    }
    if old.dns_name_servers != new.dns_name_servers
        || old.dns_searches != new.dns_searches
        || old.dns_options != new.dns_options
        || old.host_aliases != new.host_aliases
        || old.hostname != new.hostname
    {
        return Some("the DNS settings, hostname or host aliases changed".into());
    }
    None
}

// === impl RuncRuntime ===

impl RuncRuntime {
    /// Applies a new spec of a group in place; `images` are keyed by `ContainerSpec::image` as
    /// written. Same generation: the status, unchanged; lower: stale.
    ///
    /// # Errors
    /// [`RuntimeError::GroupNotFound`], [`RuntimeError::StaleGeneration`], an invalid request
    /// (also one that cannot be applied in place), or a rootfs that cannot be made.
    pub async fn update_group(
        &self,
        request: pb::CreateGroupRequest,
        images: HashMap<String, PreparedImage>,
    ) -> Result<pb::GroupStatus, RuntimeError> {
        let _changes = self.begin_change(&request, &images).await?;
        let old = self.group(&request.group_id)?;
        let generation = old.request.generation;
        if generation == request.generation {
            return Ok(old.status());
        }
        if generation > request.generation {
            return Err(RuntimeError::StaleGeneration {
                group_id: request.group_id,
                existing: generation,
                requested: request.generation,
            });
        }
        if let Some(reason) = not_in_place(&old.request, &request) {
            return Err(RuntimeError::invalid(format!(
                "group {} cannot be updated in place: {reason}",
                request.group_id
            )));
        }
        let cgroup = format!("/{}/{}", self.tag, old.id);
        supervise::stop(&self.runc, &old, &cgroup, STOP_GRACE, false).await;
        for container in old.all_containers() {
            let _ = self.runc.delete_force(&container.runc_id).await;
        }
        let hostname = if request.hostname.is_empty() {
            request.group_id.clone()
        } else {
            request.hostname.clone()
        };
        // Volumes are unchanged (checked above): where the create put them.
        let volumes = Arc::new(super::volumes::locate(
            &old.dir.join("volumes"),
            &self.config.root,
            &request.volumes,
        )?);
        let mut lists = (Vec::new(), Vec::new());
        for (init, spec) in request
            .init_containers
            .iter()
            .map(|c| (true, c))
            .chain(request.containers.iter().map(|c| (false, c)))
        {
            let old_specs = if init {
                &old.request.init_containers
            } else {
                &old.request.containers
            };
            let current = old.find(&spec.name).cloned();
            let unchanged = old_specs.iter().any(|o| o == spec);
            let container = match current {
                Some(current) if unchanged => current,
                current => {
                    let image = images.get(&spec.image).ok_or_else(|| {
                        RuntimeError::invalid(format!(
                            "container {}: image {} was not prepared",
                            spec.name, spec.image
                        ))
                    })?;
                    self.relay_container(&request, spec, image, &old, &hostname, &volumes, current)
                        .await?
                }
            };
            if init {
                lists.0.push(container);
            } else {
                lists.1.push(container);
            }
        }
        let group = Arc::new(Group {
            id: old.id.clone(),
            request,
            dir: old.dir.clone(),
            network: old.network.clone(),
            init_containers: lists.0,
            containers: lists.1,
            stage: Mutex::new(group::Stage::Initializing),
            stopping: watch::Sender::new(false),
            supervisor: tokio::sync::Mutex::new(None),
        });
        supervise::reset(&group);
        self.groups
            .lock()
            .insert(group.id.clone(), Arc::clone(&group));
        self.start_supervisor(&group).await;
        Ok(group.status())
    }

    /// Makes a container anew from its (new) image: the old overlay is unmounted and its
    /// writable layer dropped, then the bundle and overlay are laid out again. The new record
    /// carries the old one's run state (restart count, last state).
    #[allow(clippy::too_many_arguments)] // one call site, all of them the group's parts
    async fn relay_container(
        &self,
        request: &pb::CreateGroupRequest,
        spec: &pb::ContainerSpec,
        image: &PreparedImage,
        old: &Group,
        hostname: &str,
        volumes: &Arc<HashMap<String, super::volumes::Prepared>>,
        current: Option<Arc<Container>>,
    ) -> Result<Arc<Container>, RuntimeError> {
        let cdir = old.dir.join("containers").join(&spec.name);
        {
            let cdir = cdir.clone();
            blocking(move || {
                if let Some((point, errno)) = mounts::unmount_under(&cdir).into_iter().next() {
                    return Err(RuntimeError::Mount {
                        action: "unmount",
                        path: point,
                        source: errno,
                    });
                }
                for name in ["upper", "work", "rootfs"] {
                    let path = cdir.join(name);
                    if path.exists() {
                        std::fs::remove_dir_all(&path)
                            .map_err(RuntimeError::io("remove", &path))?;
                    }
                }
                Ok(())
            })
            .await?;
        }
        let made = self
            .lay_out_container(
                request,
                spec,
                image,
                &old.dir,
                &old.network,
                hostname,
                volumes,
            )
            .await?;
        if let Some(current) = current {
            let state = current.state.lock().clone();
            *made.state.lock() = state;
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(image: &str) -> pb::CreateGroupRequest {
        pb::CreateGroupRequest {
            group_id: "eci-1".into(),
            containers: vec![pb::ContainerSpec {
                name: "c".into(),
                image: image.into(),
                ..pb::ContainerSpec::default()
            }],
            ..pb::CreateGroupRequest::default()
        }
    }

    #[test]
    fn an_image_change_is_made_in_place_but_a_new_container_or_volume_is_not() {
        assert_eq!(not_in_place(&request("a:1"), &request("a:2")), None);
        let mut renamed = request("a:1");
        renamed.containers[0].name = "d".into();
        assert!(not_in_place(&request("a:1"), &renamed).is_some());
        let mut with_volume = request("a:1");
        with_volume.volumes.push(pb::Volume {
            name: "v".into(),
            ..pb::Volume::default()
        });
        assert!(not_in_place(&request("a:1"), &with_volume).is_some());
    }
}
