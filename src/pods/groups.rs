//! This node's container groups on the cloud: the one way to describe them all (filtered by
//! the node's cluster and node tags, paged), which of the answer are ours by their tags, and
//! deleting one. The pod loop and the kubelet API (`/runningpods/`) both describe through
//! [`describe_node_groups`].

use std::collections::HashMap;

use tracing::{info, warn};

use super::{
    context::ECI_TIMEOUT,
    translate::{Placement, tags},
};
use crate::eci::{self, ContainerGroup, DeleteContainerGroup, DescribeContainerGroups, Tag};

/// The request that describes every group tagged with `cluster` and `node`, pages as large
/// as ECI gives (20), with their events (which become Events on the pods, `cloud_events.rs`).
pub fn node_groups_request(cluster: &str, node: &str) -> DescribeContainerGroups {
    DescribeContainerGroups {
        tags: vec![Tag::new(tags::CLUSTER, cluster), Tag::new(tags::NODE, node)],
        limit: Some(DescribeContainerGroups::MAX_LIMIT),
        with_event: Some(true),
        ..DescribeContainerGroups::default()
    }
}

/// Describes every container group tagged with `cluster` and `node`: one batched
/// `DescribeContainerGroups`, all pages. No timeout of its own: callers bound it.
///
/// # Errors
/// The cloud's answer to a page that failed.
pub async fn describe_node_groups(
    eci: &eci::Client,
    cluster: &str,
    node: &str,
) -> Result<Vec<ContainerGroup>, eci::Error> {
    eci.describe_all_container_groups(&node_groups_request(cluster, node))
        .await
}

/// The groups whose tags say they belong to this node and cluster (whatever the filter
/// returned), by their pod's UID. A group without a UID tag is nobody's pod.
pub(super) fn ours_by_uid(
    groups: Vec<ContainerGroup>,
    placement: &Placement,
) -> HashMap<String, ContainerGroup> {
    let mut by_uid: HashMap<String, ContainerGroup> = HashMap::new();
    for group in groups {
        if group.tag(tags::NODE) != Some(placement.node.as_str())
            || group.tag(tags::CLUSTER) != Some(placement.cluster.as_str())
        {
            continue;
        }
        if let Some(uid) = group.tag(tags::UID).map(str::to_owned) {
            by_uid.insert(uid, group);
        }
    }
    by_uid
}

/// Whether a group is still on its way to running.
pub(super) fn is_starting(group: &ContainerGroup) -> bool {
    matches!(
        group.status,
        eci::ContainerGroupStatus::Scheduling | eci::ContainerGroupStatus::Pending
    )
}

/// Deletes a group; one already gone counts as deleted, and a timeout is only logged (the
/// next pass sees the group again if it is still there).
pub(super) async fn delete_group(eci: &eci::Client, id: &str) -> Result<(), eci::Error> {
    let request = DeleteContainerGroup {
        container_group_id: id.to_owned(),
        ..DeleteContainerGroup::default()
    };
    match tokio::time::timeout(ECI_TIMEOUT, eci.delete_container_group(&request)).await {
        Ok(Ok(_)) => {
            info!(group.id = %id, "container group deleted");
            Ok(())
        }
        Ok(Err(error)) if is_not_found(&error) => Ok(()),
        Ok(Err(error)) => Err(error),
        Err(_) => {
            warn!(group.id = %id, timeout = ?ECI_TIMEOUT, "DeleteContainerGroup timed out");
            Ok(())
        }
    }
}

fn is_not_found(error: &eci::Error) -> bool {
    error
        .code()
        .is_some_and(|code| code.contains("NotFound") || code.contains("NotExist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, status: eci::ContainerGroupStatus, tags: &[(&str, &str)]) -> ContainerGroup {
        ContainerGroup {
            container_group_id: id.into(),
            status,
            tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
            ..ContainerGroup::default()
        }
    }

    fn placement() -> Placement {
        Placement {
            cluster: "c1".into(),
            node: "vk".into(),
            ..Placement::default()
        }
    }

    #[test]
    fn the_describe_asks_for_this_nodes_tags_only() {
        let request = node_groups_request("c1", "vk");
        let asked: Vec<_> = request
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(asked, [(tags::CLUSTER, "c1"), (tags::NODE, "vk")]);
        assert_eq!(request.limit, Some(20), "ECI's largest page");
        assert_eq!(request.with_event, Some(true), "events reach the pods");
        assert!(request.container_group_ids.is_empty());
    }

    #[test]
    fn only_groups_tagged_with_this_node_and_cluster_are_ours() {
        use eci::ContainerGroupStatus::Running;
        let groups = vec![
            group(
                "eci-mine",
                Running,
                &[(tags::CLUSTER, "c1"), (tags::NODE, "vk"), (tags::UID, "u1")],
            ),
            group(
                "eci-other-node",
                Running,
                &[
                    (tags::CLUSTER, "c1"),
                    (tags::NODE, "vk2"),
                    (tags::UID, "u2"),
                ],
            ),
            group(
                "eci-other-cluster",
                Running,
                &[(tags::CLUSTER, "c2"), (tags::NODE, "vk"), (tags::UID, "u3")],
            ),
            group(
                "eci-no-uid",
                Running,
                &[(tags::CLUSTER, "c1"), (tags::NODE, "vk")],
            ),
        ];
        let ours = ours_by_uid(groups, &placement());
        assert_eq!(ours.len(), 1);
        assert_eq!(ours["u1"].container_group_id, "eci-mine");
    }

    #[test]
    fn scheduling_and_pending_groups_are_starting() {
        use eci::ContainerGroupStatus as S;
        assert!(is_starting(&group("g", S::Scheduling, &[])));
        assert!(is_starting(&group("g", S::Pending, &[])));
        assert!(!is_starting(&group("g", S::Running, &[])));
        assert!(!is_starting(&group("g", S::Failed, &[])));
    }
}
