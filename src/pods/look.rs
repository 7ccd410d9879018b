//! A look at the groups just created: a describe by id of those due ([`super::starts`]),
//! ECI's new events of each on its pod ([`super::cloud_events`]), and the status of each pod
//! whose group has left its start — so a start is seen within a fraction of a second rather
//! than at the next pass.

use std::time::Duration;

use kube::ResourceExt;
use tokio::time::Instant;
use tracing::{Instrument, debug};

use super::{
    cloud_events::record,
    context::{Context, pod_span},
    groups::is_starting,
    writes::sync_status,
};
use crate::eci::DescribeContainerGroups;

/// Limit on one look: a slow answer is left to the next look or pass.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// One look at the starting groups that are due: a describe by id, and the status of each pod
/// whose group has left its start. A failed look is only logged; the passes go on regardless.
pub(super) async fn look(ctx: &Context) {
    let due = ctx.starts.take_due(Instant::now());
    if due.is_empty() {
        return;
    }
    let request = DescribeContainerGroups {
        container_group_ids: due.iter().map(|d| d.group_id.clone()).collect(),
        with_event: Some(true),
        ..DescribeContainerGroups::default()
    };
    let groups =
        match tokio::time::timeout(LOOK_TIMEOUT, ctx.eci.describe_container_groups(&request)).await
        {
            Ok(Ok(page)) => page.container_groups,
            Ok(Err(error)) => {
                debug!(
                    error = &error as &dyn std::error::Error,
                    "look at starting groups failed"
                );
                return;
            }
            Err(_) => {
                debug!(timeout = ?LOOK_TIMEOUT, "look at starting groups timed out");
                return;
            }
        };
    for group in groups {
        let Some(due) = due.iter().find(|d| d.group_id == group.container_group_id) else {
            continue;
        };
        let starting = is_starting(&group);
        if !starting
            && let Some((took, cache)) = ctx.starts.settled(&due.uid)
            && group.status == crate::eci::ContainerGroupStatus::Running
        {
            ctx.config.metrics.pod_started(cache, took);
        }
        let Some(pod) = ctx.store.get(&due.pod) else {
            continue;
        };
        if pod.uid().as_deref() != Some(due.uid.as_str())
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        // ECI's events (pulling, pulled, started…) show on the pod while it starts, too.
        async {
            record(ctx, &pod, &due.uid, &group).await;
            if !starting {
                sync_status(ctx, &pod, &due.uid, &group).await;
            }
        }
        .instrument(pod_span(&pod))
        .await;
    }
}
