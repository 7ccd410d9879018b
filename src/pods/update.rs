//! In-place image updates: Kubernetes lets a running pod change `spec.containers[*].image` and
//! `spec.initContainers[*].image`; the node sends them to ECI as one `UpdateContainerGroup`
//! (<https://www.alibabacloud.com/help/en/eci/developer-reference/api-eci-2018-08-08-updatecontainergroup>:
//! only `Pending`/`Running` instances can be updated, the instance is then `Updating`;
//! `IncrementalUpdate` changes only the parameters given).
//!
//! What differs is decided from the described group: a container whose image (normalised with
//! [`crate::reference::image_key`]) is not the pod's. The request is sent once per change: its
//! `ClientToken` comes from the pod's UID, generation and the new images, so a repeat (the next
//! pass, before ECI shows the new image) is the same request to ECI. A retryable failure is
//! tried again on the next pass; any other is a Warning event with ECI's code and message, and
//! that change is not sent again.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;
use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};
use tracing::{info, warn};

use super::{
    context::{Context, ECI_TIMEOUT},
    writes::publish,
};
use crate::{
    eci::{self, ContainerGroup, UpdateContainerGroup, container_group::UpdateType},
    reference::image_key,
};

/// The containers whose image the pod changed: (name, new image as the pod writes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ImageUpdate {
    /// Regular containers.
    pub containers: Vec<(String, String)>,
    /// Init containers.
    pub init_containers: Vec<(String, String)>,
}

/// Containers of the pod whose image is not the one its group's container has; `None` when
/// every image is the same (after normalisation) or the group does not show the container.
pub(super) fn image_update(pod: &Pod, group: &ContainerGroup) -> Option<ImageUpdate> {
    let spec = pod.spec.as_ref()?;
    let changed = |wanted: &mut dyn Iterator<Item = (&str, &str)>,
                   described: &[eci::container_group::ContainerInfo]|
     -> Vec<(String, String)> {
        wanted
            .filter_map(|(name, image)| {
                let running = described.iter().find(|c| c.name == name)?;
                (!running.image.is_empty() && image_key(image) != image_key(&running.image))
                    .then(|| (name.to_owned(), image.to_owned()))
            })
            .collect()
    };
    fn of(c: &k8s_openapi::api::core::v1::Container) -> (&str, &str) {
        (c.name.as_str(), c.image.as_deref().unwrap_or_default())
    }
    let update = ImageUpdate {
        containers: changed(&mut spec.containers.iter().map(of), &group.containers),
        init_containers: changed(
            &mut spec.init_containers.iter().flatten().map(of),
            &group.init_containers,
        ),
    };
    (!update.containers.is_empty() || !update.init_containers.is_empty()).then_some(update)
}

/// The idempotency token of one change: at most 64 ASCII characters (ECI's limit), the same
/// for the same pod, generation and new images.
fn client_token(uid: &str, generation: i64, update: &ImageUpdate) -> String {
    let mut hash = Sha256::new();
    hash.update(uid.as_bytes());
    hash.update(generation.to_be_bytes());
    for (kind, list) in [("c", &update.containers), ("i", &update.init_containers)] {
        for (name, image) in list {
            hash.update(format!("\0{kind}\0{name}\0{image}").as_bytes());
        }
    }
    format!("upd-{}", &hex::encode(hash.finalize())[..40])
}

/// The `UpdateContainerGroup` of one change: `IncrementalUpdate` with only the changed
/// containers' `Name` and `Image` (parameter names of the SDK's
/// `UpdateContainerGroupRequestContainer`), so nothing else of the group is touched.
pub(super) fn request(
    group_id: &str,
    uid: &str,
    generation: i64,
    update: &ImageUpdate,
) -> UpdateContainerGroup {
    let containers = |list: &[(String, String)]| {
        list.iter()
            .map(|(name, image)| eci::Container {
                name: name.clone(),
                image: image.clone(),
                ..eci::Container::default()
            })
            .collect()
    };
    UpdateContainerGroup {
        container_group_id: group_id.to_owned(),
        update_type: Some(UpdateType::IncrementalUpdate),
        containers: containers(&update.containers),
        init_containers: containers(&update.init_containers),
        client_token: Some(client_token(uid, generation, update)),
        ..UpdateContainerGroup::default()
    }
}

/// The last change sent for each pod: pod UID → its token, and whether ECI refused it (not
/// retryable), so a refused change is not sent again and an accepted one is announced once (a
/// new change has a new token).
#[derive(Debug, Default)]
pub(super) struct Refused(Mutex<HashMap<String, (String, bool)>>);

impl Refused {
    fn refused(&self, uid: &str, token: &str) -> bool {
        self.0
            .lock()
            .get(uid)
            .is_some_and(|(t, refused)| t == token && *refused)
    }

    fn remember(&self, uid: &str, token: &str) {
        self.0
            .lock()
            .insert(uid.to_owned(), (token.to_owned(), true));
    }

    /// Records that the change `token` was accepted; whether this is the first time (the one
    /// pass that announces it: later passes resend it, idempotently, until a describe shows it).
    fn accepted(&self, uid: &str, token: &str) -> bool {
        let mut sent = self.0.lock();
        if sent.get(uid).is_some_and(|(t, _)| t == token) {
            return false;
        }
        sent.insert(uid.to_owned(), (token.to_owned(), false));
        true
    }

    /// Forgets pods that are gone.
    pub(super) fn retain(&self, live: &HashSet<String>) {
        self.0.lock().retain(|uid, _| live.contains(uid));
    }
}

/// What the node says of the images it asks ECI to change.
fn describe(update: &ImageUpdate) -> String {
    update
        .init_containers
        .iter()
        .map(|(n, i)| format!("init container {n} to {i}"))
        .chain(
            update
                .containers
                .iter()
                .map(|(n, i)| format!("container {n} to {i}")),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sends one change of a pod's images to its group.
pub(super) async fn update(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    group: &ContainerGroup,
    update: &ImageUpdate,
) {
    let generation = pod.metadata.generation.unwrap_or_default();
    let request = request(&group.container_group_id, uid, generation, update);
    let token = request.client_token.clone().unwrap_or_default();
    if ctx.refused_updates.refused(uid, &token) {
        return;
    }
    let what = describe(update);
    match tokio::time::timeout(ECI_TIMEOUT, ctx.eci.update_container_group(&request)).await {
        Ok(Ok(_)) if !ctx.refused_updates.accepted(uid, &token) => {}
        Ok(Ok(_)) => {
            info!(group.id = %group.container_group_id, "container group updated in place");
            publish(
                ctx,
                pod,
                EventType::Normal,
                "ProviderUpdate",
                &format!(
                    "updating ECI container group {} in place: {what}",
                    group.container_group_id
                ),
            )
            .await;
        }
        Ok(Err(error)) if error.is_retryable() => {
            warn!(
                error = &error as &dyn std::error::Error,
                "UpdateContainerGroup failed; retrying next pass"
            );
        }
        Ok(Err(error)) => {
            warn!(
                error = &error as &dyn std::error::Error,
                "UpdateContainerGroup refused"
            );
            ctx.refused_updates.remember(uid, &token);
            let (code, message) = error.api().map_or_else(
                || ("Unknown".to_owned(), error.to_string()),
                |api| (api.code.clone(), api.message.clone()),
            );
            publish(
                ctx,
                pod,
                EventType::Warning,
                "ProviderUpdateFailed",
                &format!("ECI did not update the container group ({what}): {code}: {message}"),
            )
            .await;
        }
        Err(_) => {
            warn!(timeout = ?ECI_TIMEOUT, "UpdateContainerGroup timed out; retrying next pass")
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_change_is_announced_once_and_a_refused_one_not_sent_again() {
        let sent = Refused::default();
        assert!(sent.accepted("u1", "t1"), "first acceptance is announced");
        assert!(!sent.accepted("u1", "t1"), "resends are not");
        assert!(!sent.refused("u1", "t1"));
        assert!(sent.accepted("u1", "t2"), "a new change is");
        sent.remember("u1", "t3");
        assert!(sent.refused("u1", "t3"));
        assert!(!sent.refused("u1", "t2"));
        sent.retain(&HashSet::new());
        assert!(sent.accepted("u1", "t2"), "a forgotten pod starts afresh");
    }

    use super::*;
    use crate::eci::container_group::ContainerInfo;

    fn pod(image: &str) -> Pod {
        serde_yaml_ng::from_str(&format!(
            "metadata: {{name: a, namespace: b, uid: u, generation: 2}}\nspec: {{initContainers: [{{name: i, image: 'busybox:1'}}], containers: [{{name: c, image: '{image}'}}]}}"
        ))
        .expect("fixture pod")
    }

    fn group(image: &str) -> ContainerGroup {
        let info = |name: &str, image: &str| ContainerInfo {
            name: name.into(),
            image: image.into(),
            ..ContainerInfo::default()
        };
        ContainerGroup {
            container_group_id: "eci-1".into(),
            status: eci::ContainerGroupStatus::Running,
            containers: vec![info("c", image)],
            init_containers: vec![info("i", "docker.io/library/busybox:1")],
            ..ContainerGroup::default()
        }
    }

    #[test]
    fn the_same_image_spelt_another_way_is_no_update() {
        assert_eq!(
            image_update(&pod("busybox"), &group("docker.io/library/busybox:latest")),
            None
        );
    }

    #[test]
    fn a_new_tag_is_an_update_of_that_container_only() {
        let update = image_update(&pod("busybox:2"), &group("busybox:1")).expect("an update");
        assert_eq!(update.containers, vec![("c".into(), "busybox:2".into())]);
        assert!(update.init_containers.is_empty());
    }

    #[test]
    fn the_request_names_only_the_changed_containers_images() {
        let update = ImageUpdate {
            containers: vec![("c".into(), "reg/app:2".into())],
            init_containers: vec![],
        };
        let request = request("eci-1", "u", 2, &update);
        let params = eci::params::to_params(&request).expect("params");
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ClientToken",
                "Container.1.Image",
                "Container.1.Name",
                "ContainerGroupId",
                "UpdateType"
            ]
        );
        assert_eq!(params["UpdateType"], "IncrementalUpdate");
        assert_eq!(params["Container.1.Image"], "reg/app:2");
        assert!(params["ClientToken"].len() <= 64);
        // Once per change: the same change, the same token; another change, another one.
        assert_eq!(
            request.client_token,
            super::request("eci-1", "u", 2, &update).client_token
        );
        assert_ne!(
            request.client_token,
            super::request("eci-1", "u", 3, &update).client_token
        );
    }
}
