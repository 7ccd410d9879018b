//! A look at the groups just created: a describe by id of those due ([`super::starts`]),
//! ECI's new events of each on its pod ([`super::cloud_events`]), and the status of each pod
//! whose group has left its start — so a start is seen within a fraction of a second rather
//! than at the next pass.

use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use tokio::time::Instant;
use tracing::{Instrument, debug};

use super::{
    cloud_events::record,
    context::{CONCURRENCY, Context, pod_span},
    groups::is_starting,
    starts::{Due, IDS_PER_DESCRIBE},
    writes::sync_status,
};
use crate::eci::{ContainerGroup, ContainerGroupStatus, DescribeContainerGroups};

/// Limit on one describe of a look: a slow answer is left to the next look or pass.
const LOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// One look at the starting groups that are due: describes by id (up to
/// [`super::starts::DESCRIBES_PER_LOOK`] at once, [`IDS_PER_DESCRIBE`] ids each), then the
/// status and ECI's events of each pod, [`CONCURRENCY`] pods at a time (one after another,
/// status trailed the creates of a scale-up by hundreds of pods; BENCHMARKS.md "Round two").
/// A failed describe is only logged; its groups are looked at again, and the passes go on.
pub(super) async fn look(ctx: &Context) {
    let due = ctx.starts.take_due(Instant::now());
    if due.is_empty() {
        return;
    }
    let answers =
        futures::future::join_all(due.chunks(IDS_PER_DESCRIBE).map(|d| describe(ctx, d))).await;
    let seen = answers.into_iter().flatten().filter_map(|group| {
        let due = due
            .iter()
            .find(|d| d.group_id == group.container_group_id)?;
        Some((due, group))
    });
    futures::stream::iter(seen)
        .for_each_concurrent(CONCURRENCY, |(due, group)| on_seen(ctx, due, group))
        .await;
}

/// One `DescribeContainerGroups` of up to [`IDS_PER_DESCRIBE`] groups; none on failure.
async fn describe(ctx: &Context, due: &[Due]) -> Vec<ContainerGroup> {
    let request = DescribeContainerGroups {
        container_group_ids: due.iter().map(|d| d.group_id.clone()).collect(),
        with_event: Some(true),
        ..DescribeContainerGroups::default()
    };
    match tokio::time::timeout(LOOK_TIMEOUT, ctx.eci.describe_container_groups(&request)).await {
        Ok(Ok(page)) => page.container_groups,
        Ok(Err(error)) => {
            debug!(
                error = &error as &dyn std::error::Error,
                "look at starting groups failed"
            );
            Vec::new()
        }
        Err(_) => {
            debug!(timeout = ?LOOK_TIMEOUT, "look at starting groups timed out");
            Vec::new()
        }
    }
}

/// What a look does with one group it saw: the start's metric once it runs, ECI's events on
/// the pod, and the pod's status once the group has left its start.
async fn on_seen(ctx: &Context, due: &Due, group: ContainerGroup) {
    let starting = is_starting(&group);
    if !starting
        && let Some((took, cache)) = ctx.starts.settled(&due.uid)
        && group.status == ContainerGroupStatus::Running
    {
        ctx.config.metrics.pod_started(cache, took);
    }
    let Some(pod) = ctx.store.get(&due.pod) else {
        return;
    };
    if pod.uid().as_deref() != Some(due.uid.as_str()) || pod.metadata.deletion_timestamp.is_some() {
        return;
    }
    // The status first: a pod that runs is shown Running before ECI's events of its start
    // (pulling, pulled, started…; seven writes a pod), which show on the pod while it starts
    // too. In a burst of creates the API server's writes are what a look waits on.
    async {
        if !starting {
            sync_status(ctx, &pod, &due.uid, &group).await;
        }
        record(ctx, &pod, &due.uid, &group).await;
    }
    .instrument(pod_span(&pod))
    .await;
}
