//! From a request's `{namespace}/{pod}/{container}` to the ECI container group that runs it.
//!
//! The pod is read from the API server (it must be bound to this node); its group is the one
//! the pod controller recorded in the container statuses (`containerID: eci://<group>/<name>`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use super::ApiError;

/// Limit on the pod read.
const GET_TIMEOUT: Duration = Duration::from_secs(10);

/// A pod of this node and its container group.
#[derive(Debug, Clone)]
pub struct Target {
    /// The pod.
    pub pod: Pod,
    /// Its ECI container group.
    pub group_id: String,
}

/// The group id in a pod's container statuses, if the controller recorded one.
pub fn group_of(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .flatten()
        .filter_map(|c| c.container_id.as_deref())
        .find_map(|id| {
            let rest = id.strip_prefix("eci://")?;
            let group = rest.split('/').next()?;
            (!group.is_empty()).then(|| group.to_owned())
        })
}

/// Whether the pod declares `container` (regular, init or ephemeral).
pub fn has_container(pod: &Pod, container: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.containers.iter().any(|c| c.name == container)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == container)
}

/// The pod `namespace/name` on node `node` and its group.
///
/// # Errors
/// 404 when the pod does not exist or is on another node; 400 when it has no container group
/// yet or no such container.
pub async fn find(
    kube: &kube::Client,
    node: &str,
    namespace: &str,
    name: &str,
    container: Option<&str>,
) -> Result<Target, ApiError> {
    let api: Api<Pod> = Api::namespaced(kube.clone(), namespace);
    let pod = tokio::time::timeout(GET_TIMEOUT, api.get_opt(name))
        .await
        .map_err(|_| ApiError::unavailable("the API server did not answer the pod read"))?
        .map_err(|error| {
            ApiError::unavailable(format!("cannot read pod {namespace}/{name}: {error}"))
        })?
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .ok_or_else(|| {
            ApiError::not_found(format!("pod {namespace}/{name} is not on node {node}"))
        })?;
    if let Some(container) = container
        && !has_container(&pod, container)
    {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let group_id = group_of(&pod).ok_or_else(|| {
        ApiError::bad_request(format!(
            "pod {namespace}/{name} has no running ECI container group yet"
        ))
    })?;
    Ok(Target { pod, group_id })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};

    use super::*;

    #[test]
    fn the_group_comes_from_the_container_id() {
        let mut pod = Pod::default();
        assert_eq!(group_of(&pod), None);
        pod.status = Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                container_id: Some("eci://eci-abc/app".into()),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        });
        assert_eq!(group_of(&pod).as_deref(), Some("eci-abc"));
    }
}
