//! The invariants a chaos run ends with, each checked against the cloud's groups and caches
//! (read with our own ECI client) and the API server, and reported as one row of the table.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use eci_vk::eci::{self, DescribeContainerGroups, DescribeImageCaches, Tag};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{Api, api::ListParams};

/// One invariant: what it says, how many things it looked at, and what broke it.
pub struct Row {
    pub name: &'static str,
    pub checked: usize,
    pub violations: Vec<String>,
}

impl Row {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            checked: 0,
            violations: Vec::new(),
        }
    }
}

/// What the run observed while it ran, for the checks that are about the run's course.
pub struct Course {
    /// Samples of the Node's Ready condition taken while the node process had been up a while.
    pub ready_samples: usize,
    /// Those that said NotReady, with the second of the run they were seen in.
    pub not_ready: Vec<String>,
    /// Node processes that ended on their own.
    pub node_crashes: Vec<String>,
    /// Single pods the run created and never deleted.
    pub kept_single_pods: BTreeSet<String>,
}

/// The cloud and the cluster as they are at the end.
pub struct World {
    pub groups: Vec<eci::ContainerGroup>,
    pub pods: Vec<Pod>,
    pub caches: Vec<eci_vk::imagecache::ImageCache>,
    pub cloud_caches: Vec<eci::ImageCache>,
    pub events: Vec<Event>,
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

pub async fn read_world(
    client: &kube::Client,
    cloud: &eci::Client,
    namespace: &str,
    node: &str,
) -> Result<World> {
    let groups = cloud
        .describe_all_container_groups(&DescribeContainerGroups {
            tags: vec![Tag::new(eci_vk::pods::tags::NODE, node)],
            limit: Some(100),
            ..DescribeContainerGroups::default()
        })
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let class = format!("{}={node}", eci_vk::imagecache::LABEL_CLASS);
    let caches = Api::<eci_vk::imagecache::ImageCache>::all(client.clone())
        .list(&ListParams::default().labels(&class))
        .await?
        .items;
    let cloud_caches = cloud
        .describe_all_image_caches(&DescribeImageCaches::default())
        .await?;
    let events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    Ok(World {
        groups,
        pods,
        caches,
        cloud_caches,
        events,
    })
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The groups' invariants, true once the run has settled: one group per pod, none without a
/// pod, none missing for a pod that should run, and Running pods as their groups say.
pub fn groups(world: &World) -> Vec<Row> {
    let mut by_uid: BTreeMap<&str, Vec<&eci::ContainerGroup>> = BTreeMap::new();
    for group in &world.groups {
        if let Some(uid) = tag(&group.tags, eci_vk::pods::tags::UID) {
            by_uid.entry(uid).or_default().push(group);
        }
    }
    let live: BTreeMap<&str, &Pod> = world
        .pods
        .iter()
        .filter_map(|p| Some((p.metadata.uid.as_deref()?, p)))
        .collect();

    let mut twice = Row::new("no pod has two container groups");
    twice.checked = by_uid.len();
    for (uid, groups) in &by_uid {
        if groups.len() > 1 {
            let ids: Vec<&str> = groups
                .iter()
                .map(|g| g.container_group_id.as_str())
                .collect();
            twice.violations.push(format!("pod uid {uid}: {ids:?}"));
        }
    }

    let mut orphans = Row::new("no group without its pod (no orphan)");
    orphans.checked = world.groups.len();
    for group in &world.groups {
        let uid = tag(&group.tags, eci_vk::pods::tags::UID).unwrap_or_default();
        if !live.contains_key(uid) {
            orphans.violations.push(format!(
                "{} ({}) of pod uid {uid}",
                group.container_group_id, group.container_group_name
            ));
        }
    }

    let mut missing = Row::new("no pod that should run is missing its group");
    let mut matches = Row::new("every Running pod's status matches its group");
    for pod in &world.pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        missing.checked += 1;
        let Some(group) = by_uid.get(uid).and_then(|g| g.first()) else {
            missing
                .violations
                .push(format!("{} ({})", pod_key(pod), phase(pod)));
            continue;
        };
        if phase(pod) == "Running" {
            matches.checked += 1;
            let running = group.status == eci::ContainerGroupStatus::Running;
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
            if !running || ip != Some(group.intranet_ip.as_str()) {
                matches.violations.push(format!(
                    "{}: pod Running at {ip:?}, group {} {:?} at {}",
                    pod_key(pod),
                    group.container_group_id,
                    group.status,
                    group.intranet_ip
                ));
            }
        }
    }
    vec![twice, orphans, missing, matches]
}

/// No pod was failed by the node, and none the run created was deleted by anyone but the run.
pub fn pods_kept(world: &World, course: &Course) -> Row {
    let mut row = Row::new("no pod Failed or deleted by the node because of a fault");
    row.checked = world.pods.len();
    for pod in &world.pods {
        if phase(pod) == "Failed" {
            let reason = pod
                .status
                .as_ref()
                .and_then(|s| s.reason.clone())
                .unwrap_or_default();
            row.violations
                .push(format!("{} Failed ({reason})", pod_key(pod)));
        }
    }
    let present: BTreeSet<&str> = world
        .pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    for name in &course.kept_single_pods {
        row.checked += 1;
        if !present.contains(name.as_str()) {
            row.violations
                .push(format!("pod {name} is gone, and the run did not delete it"));
        }
    }
    row
}

pub fn node_ready(course: &Course) -> Vec<Row> {
    let mut ready = Row::new("the Node never NotReady while its process was up");
    ready.checked = course.ready_samples;
    ready.violations.clone_from(&course.not_ready);
    let mut crashes = Row::new("the node process never ended on its own");
    crashes.checked = 1;
    crashes.violations.clone_from(&course.node_crashes);
    vec![ready, crashes]
}

/// Every ImageCache's phase is the one its cloud cache has.
pub fn caches(world: &World) -> Row {
    let mut row = Row::new("every ImageCache's phase is the cloud's");
    let cloud: BTreeMap<&str, &eci::ImageCache> = world
        .cloud_caches
        .iter()
        .map(|c| (c.image_cache_id.as_str(), c))
        .collect();
    for cache in &world.caches {
        if cache.metadata.deletion_timestamp.is_some() {
            continue;
        }
        row.checked += 1;
        let name = cache.metadata.name.as_deref().unwrap_or_default();
        let status = cache.status.clone().unwrap_or_default();
        let phase = status.phase.unwrap_or_default();
        let id = status.image_cache_id.unwrap_or_default();
        let Some(in_cloud) = cloud.get(id.as_str()) else {
            row.violations
                .push(format!("{name}: {phase:?}, cloud cache {id:?} not found"));
            continue;
        };
        let cloud_phase = in_cloud.status.as_str();
        if phase != cloud_phase {
            row.violations.push(format!(
                "{name}: {phase:?}, the cloud's {id}: {cloud_phase:?}"
            ));
        }
    }
    row
}

/// No secret value in the node's or the emulator's logs, in events or in any status.
pub fn secrets(world: &World, secrets: &[(&str, &str)], logs: &[(&str, String)]) -> Row {
    let mut row = Row::new("no secret in logs, events or status");
    let mut places: Vec<(String, String)> = logs
        .iter()
        .map(|(name, text)| ((*name).to_owned(), text.clone()))
        .collect();
    for event in &world.events {
        places.push((
            format!(
                "event {}",
                event.metadata.name.as_deref().unwrap_or_default()
            ),
            serde_json::to_string(event).unwrap_or_default(),
        ));
    }
    for pod in &world.pods {
        places.push((
            format!("status of pod {}", pod_key(pod)),
            serde_json::to_string(&pod.status).unwrap_or_default(),
        ));
        places.push((
            format!("annotations of pod {}", pod_key(pod)),
            serde_json::to_string(&pod.metadata.annotations).unwrap_or_default(),
        ));
    }
    for cache in &world.caches {
        places.push((
            format!(
                "status of imagecache {}",
                cache.metadata.name.as_deref().unwrap_or_default()
            ),
            serde_json::to_string(&cache.status).unwrap_or_default(),
        ));
    }
    for (what, text) in &places {
        row.checked += 1;
        for (name, value) in secrets {
            if text.contains(value) {
                row.violations.push(format!("the {name} is in the {what}"));
            }
        }
    }
    row
}
