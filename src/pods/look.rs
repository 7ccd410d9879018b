//! A look at the groups just created: a describe by id of those due ([`super::starts`]), the
//! status of each pod whose group has left its start — so a start is seen within a fraction of
//! a second rather than at the next pass — and ECI's new events of each on its pod
//! ([`super::cloud_events`]), written by the events lane ([`events_lane`]) while the next look
//! goes on.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
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

/// Looks whose ECI events wait for the events lane; a look beyond them waits its turn.
pub(super) const LOOKS_QUEUED: usize = 32;

/// The groups of one look, for the events lane.
pub(super) type Seen = Vec<(Due, ContainerGroup)>;

/// One look at the starting groups that are due: describes by id (up to
/// [`super::starts::DESCRIBES_PER_LOOK`] at once, [`IDS_PER_DESCRIBE`] ids each), then the
/// status of each pod, [`CONCURRENCY`] pods at a time (one after another, status trailed the
/// creates of a scale-up by hundreds of pods; BENCHMARKS.md "Round two"), then the groups go
/// to `events` for their ECI events. A failed describe is only logged; its groups are looked
/// at again, and the passes go on.
///
/// The events are not written here: a pod's start brings seven of them, and while a look
/// wrote them the groups that ran meanwhile waited for the next look, two seconds behind
/// their creates in the quota's first burst (issue #21).
pub(super) async fn look(ctx: &Context, events: &tokio::sync::mpsc::Sender<Seen>) {
    let due = ctx.starts.take_due(Instant::now());
    if due.is_empty() {
        return;
    }
    let answers =
        futures::future::join_all(due.chunks(IDS_PER_DESCRIBE).map(|d| describe(ctx, d))).await;
    let seen: Seen = answers
        .into_iter()
        .flatten()
        .filter_map(|group| {
            let due = due
                .iter()
                .find(|d| d.group_id == group.container_group_id)?;
            Some((due.clone(), group))
        })
        .collect();
    futures::stream::iter(&seen)
        .for_each_concurrent(CONCURRENCY, |(due, group)| on_seen(ctx, due, group))
        .await;
    // Closed only when the controller stops.
    let _ = events.send(seen).await;
}

/// Writes the ECI events of the groups each look saw on their pods, one look after another
/// (so two looks never write one pod's events at once), [`CONCURRENCY`] pods at a time.
pub(super) async fn events_lane(ctx: &Context, mut looks: tokio::sync::mpsc::Receiver<Seen>) {
    while let Some(seen) = looks.recv().await {
        futures::stream::iter(&seen)
            .for_each_concurrent(CONCURRENCY, |(due, group)| async move {
                let Some(pod) = live_pod(ctx, due) else {
                    return;
                };
                record(ctx, &pod, &due.uid, group)
                    .instrument(pod_span(&pod))
                    .await;
            })
            .await;
    }
}

/// The pod of `due` from the store, unless it went, was replaced or is being deleted.
fn live_pod(ctx: &Context, due: &Due) -> Option<Arc<Pod>> {
    let pod = ctx.store.get(&due.pod)?;
    let live =
        pod.uid().as_deref() == Some(due.uid.as_str()) && pod.metadata.deletion_timestamp.is_none();
    live.then_some(pod)
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

/// What a look does with one group it saw: the start's metric once it runs, and the pod's
/// status once the group has left its start (its events follow in the events lane).
async fn on_seen(ctx: &Context, due: &Due, group: &ContainerGroup) {
    if is_starting(group) {
        return;
    }
    if let Some((took, cache)) = ctx.starts.settled(&due.uid)
        && group.status == ContainerGroupStatus::Running
    {
        ctx.config.metrics.pod_started(cache, took);
    }
    let Some(pod) = live_pod(ctx, due) else {
        return;
    };
    sync_status(ctx, &pod, &due.uid, group)
        .instrument(pod_span(&pod))
        .await;
}
