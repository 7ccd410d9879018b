//! Container group → PodStatus: a pure function of the described group, the pod and the time.
//!
//! Phase: `Scheduling`/`Pending` → Pending; `Running`/`Restarting`/`Updating`/`Terminating` →
//! Running; `Succeeded` → Succeeded; `Failed`/`Expired`/`ScheduleFailed` → Failed. Conditions
//! keep their `lastTransitionTime` while their status holds, so a status write only happens when
//! something a user can see changed.

use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, Pod, PodCondition, PodIP, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};

use crate::eci::{
    ContainerGroup, ContainerGroupStatus,
    container_group::{ContainerInfo, ContainerState as EciState},
};

/// ECI's pod condition: whether the container instance was created, and if not why.
pub const INSTANCE_CREATED: &str = "ContainerInstanceCreated";
/// The status reason of a fail-fast pod whose instance could not be created (ECI's "Configure
/// a fault handling policy for a pod").
pub const SCHEDULE_FAILED: &str = "ContainerInstanceScheduleFailed";

/// A condition of `pod` at `now`, keeping its `lastTransitionTime` while its status holds.
fn pod_condition(
    pod: &Pod,
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<&str>,
    now: jiff::Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == status))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        last_transition_time: Some(since),
        reason: reason.map(str::to_owned),
        message: message.map(str::to_owned),
        ..PodCondition::default()
    }
}

/// The status of a pod whose instance ECI could not create (`code`, e.g. `ContainerGroup.NoStock`):
/// Pending, the reason in its `ContainerInstanceCreated` condition; a fail-fast pod also has
/// [`SCHEDULE_FAILED`] as its reason, since it is not tried again.
pub fn not_created_status(
    pod: &Pod,
    code: &str,
    message: &str,
    fail_fast: bool,
    now: jiff::Timestamp,
) -> PodStatus {
    PodStatus {
        phase: Some("Pending".into()),
        reason: fail_fast.then(|| SCHEDULE_FAILED.to_owned()),
        message: Some(message.to_owned()),
        conditions: Some(vec![
            pod_condition(pod, "PodScheduled", true, None, None, now),
            pod_condition(pod, INSTANCE_CREATED, false, Some(code), Some(message), now),
        ]),
        ..PodStatus::default()
    }
}

/// The pod status `group` implies for `pod`, at `now`, on a node with `host_ip`.
pub fn pod_status(
    pod: &Pod,
    group: &ContainerGroup,
    host_ip: &str,
    now: jiff::Timestamp,
) -> PodStatus {
    let phase = match group.status {
        ContainerGroupStatus::Scheduling | ContainerGroupStatus::Pending => "Pending",
        ContainerGroupStatus::Running
        | ContainerGroupStatus::Restarting
        | ContainerGroupStatus::Updating
        | ContainerGroupStatus::Terminating => "Running",
        ContainerGroupStatus::Succeeded => "Succeeded",
        ContainerGroupStatus::Failed
        | ContainerGroupStatus::Expired
        | ContainerGroupStatus::ScheduleFailed => "Failed",
        ContainerGroupStatus::Unknown => "Pending",
    };
    let spec = pod.spec.as_ref();
    let reported = |name: &str| -> Option<String> {
        let old = pod.status.as_ref()?;
        old.container_statuses
            .iter()
            .chain(&old.init_container_statuses)
            .flatten()
            .find(|c| c.name == name)
            .map(|c| c.image.clone())
    };
    let statuses = |names: Vec<(&str, &str)>, infos: &[ContainerInfo]| -> Vec<ContainerStatus> {
        names
            .into_iter()
            .map(|(name, image)| {
                let info = infos.iter().find(|i| i.name == name);
                let shown = shown_image(image, info, reported(name));
                container_status(name, &shown, info, &group.container_group_id)
            })
            .collect()
    };
    let container_names: Vec<(&str, &str)> = spec
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let init_names: Vec<(&str, &str)> = spec
        .and_then(|s| s.init_containers.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let containers = statuses(container_names, &group.containers);
    let inits = statuses(init_names, &group.init_containers);

    let initialized = inits.iter().all(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0)
    }) || matches!(phase, "Running" | "Succeeded");
    let containers_ready = phase == "Running" && containers.iter().all(|c| c.ready);
    let condition = |kind: &str, ok: bool, reason: Option<&str>| {
        pod_condition(pod, kind, ok, reason, None, now)
    };
    let not_ready_reason = (!containers_ready).then_some("ContainersNotReady");
    // ECI's own condition ("ECI custom conditions"): the instance exists once it has left
    // Scheduling; a group that failed to schedule says so.
    let created = match group.status {
        ContainerGroupStatus::Scheduling => condition(INSTANCE_CREATED, false, Some("Creating")),
        ContainerGroupStatus::ScheduleFailed => {
            condition(INSTANCE_CREATED, false, Some("FailedScheduling"))
        }
        _ => condition(INSTANCE_CREATED, true, None),
    };
    let conditions = vec![
        condition("PodScheduled", true, None),
        created,
        condition(
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
        ),
        condition("ContainersReady", containers_ready, not_ready_reason),
        condition("Ready", containers_ready, not_ready_reason),
    ];
    let pod_ip = (!group.intranet_ip.is_empty()).then(|| group.intranet_ip.clone());
    let (reason, message) = match group.status {
        ContainerGroupStatus::ScheduleFailed => (
            Some("ProviderFailed".to_owned()),
            group
                .events
                .last()
                .map(|e| e.message.clone())
                .or_else(|| Some("ECI could not schedule the container group".to_owned())),
        ),
        ContainerGroupStatus::Expired => (
            Some("Expired".to_owned()),
            Some("the ECI spot instance was reclaimed".to_owned()),
        ),
        _ => (None, None),
    };
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.to_owned()),
        host_ips: None,
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: time(&group.creation_time)
            .or_else(|| pod.status.as_ref().and_then(|s| s.start_time.clone())),
        container_statuses: Some(containers),
        init_container_statuses: (!inits.is_empty()).then_some(inits),
        reason,
        message,
        qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        ..PodStatus::default()
    }
}

/// The image a container's status shows: the one its group's container runs or ran (from
/// `DescribeContainerGroups`, not the pod's spec), so a changed image shows only once the
/// container runs it. While the container waits (between an update's stop and its start on the
/// new image) the image reported before stays; with nothing described yet, the spec's.
fn shown_image(spec: &str, info: Option<&ContainerInfo>, reported: Option<String>) -> String {
    let Some(info) = info.filter(|i| !i.image.is_empty()) else {
        return spec.to_owned();
    };
    let ran = matches!(info.current_state.state.as_str(), "Running" | "Terminated");
    match reported {
        Some(before) if !ran && !before.is_empty() => before,
        _ => info.image.clone(),
    }
}

fn container_status(
    name: &str,
    image: &str,
    info: Option<&ContainerInfo>,
    group_id: &str,
) -> ContainerStatus {
    let Some(info) = info else {
        return ContainerStatus {
            name: name.to_owned(),
            image: image.to_owned(),
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(waiting("ContainerCreating", "")),
            ..ContainerStatus::default()
        };
    };
    let state = state(&info.current_state).unwrap_or_else(|| waiting("ContainerCreating", ""));
    let running = state.running.is_some();
    ContainerStatus {
        name: name.to_owned(),
        image: image.to_owned(),
        image_id: String::new(),
        container_id: Some(format!("eci://{group_id}/{name}")),
        ready: running && info.ready,
        restart_count: info.restart_count,
        started: Some(running),
        last_state: state_of_previous(&info.previous_state),
        state: Some(state),
        ..ContainerStatus::default()
    }
}

fn state_of_previous(previous: &EciState) -> Option<ContainerState> {
    state(previous).filter(|s| s.terminated.is_some())
}

fn state(s: &EciState) -> Option<ContainerState> {
    match s.state.as_str() {
        "Running" => Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(&s.start_time),
            }),
            ..ContainerState::default()
        }),
        "Terminated" => Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: s.exit_code,
                signal: (s.signal != 0).then_some(s.signal),
                reason: Some(if s.reason.is_empty() {
                    if s.exit_code == 0 {
                        "Completed"
                    } else {
                        "Error"
                    }
                    .to_owned()
                } else {
                    s.reason.clone()
                }),
                message: (!s.message.is_empty()).then(|| s.message.clone()),
                started_at: time(&s.start_time),
                finished_at: time(&s.finish_time),
                container_id: None,
            }),
            ..ContainerState::default()
        }),
        "Waiting" => Some(waiting(
            if s.reason.is_empty() {
                &s.detail_status
            } else {
                &s.reason
            },
            &s.message,
        )),
        _ => None,
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(
                if reason.is_empty() {
                    "ContainerCreating"
                } else {
                    reason
                }
                .to_owned(),
            ),
            message: (!message.is_empty()).then(|| message.to_owned()),
        }),
        ..ContainerState::default()
    }
}

fn time(text: &str) -> Option<Time> {
    text.parse::<jiff::Timestamp>().ok().map(Time)
}

/// Whether the user-visible parts of two statuses differ (timestamps of unchanged conditions
/// are carried over by [`pod_status`], so equal statuses compare equal).
pub fn differs(old: Option<&PodStatus>, new: &PodStatus) -> bool {
    let Some(old) = old else {
        return true;
    };
    // The API server answers an absent `lastState` as `{}`: the same thing, not a change
    // (taken as one, every pod's status was written again on every pass).
    let statuses = |list: &Option<Vec<ContainerStatus>>| {
        list.as_ref().map(|cs| {
            cs.iter()
                .map(|c| {
                    let mut c = c.clone();
                    if c.last_state.as_ref() == Some(&ContainerState::default()) {
                        c.last_state = None;
                    }
                    c
                })
                .collect::<Vec<_>>()
        })
    };
    let key = |s: &PodStatus| {
        serde_json::json!({
            "phase": s.phase,
            "podIP": s.pod_ip,
            "hostIP": s.host_ip,
            "reason": s.reason,
            "start": s.start_time,
            "containers": statuses(&s.container_statuses),
            "inits": statuses(&s.init_container_statuses),
            "conditions": s.conditions.as_ref().map(|cs| cs.iter().filter(|c| matches!(c.type_.as_str(), "PodScheduled" | "Initialized" | "ContainersReady" | "Ready" | INSTANCE_CREATED)).map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone())).collect::<Vec<_>>()),
        })
    };
    key(old) != key(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_yaml_ng::from_str(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: main, image: busybox}]}",
        )
        .expect("fixture")
    }

    fn group(status: ContainerGroupStatus, state: &str, exit: i32) -> ContainerGroup {
        ContainerGroup {
            container_group_id: "eci-1".into(),
            status,
            intranet_ip: "10.1.2.3".into(),
            creation_time: "2026-01-01T00:00:00Z".into(),
            containers: vec![ContainerInfo {
                name: "main".into(),
                ready: state == "Running",
                restart_count: 2,
                current_state: EciState {
                    state: state.into(),
                    exit_code: exit,
                    start_time: "2026-01-01T00:00:01Z".into(),
                    ..EciState::default()
                },
                ..ContainerInfo::default()
            }],
            ..ContainerGroup::default()
        }
    }

    fn cond<'a>(s: &'a PodStatus, kind: &str) -> &'a str {
        s.conditions
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
            .map_or("", |c| c.status.as_str())
    }

    #[test]
    fn running_group_is_a_ready_running_pod() {
        let s = pod_status(
            &pod(),
            &group(ContainerGroupStatus::Running, "Running", 0),
            "1.1.1.1",
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(cond(&s, "Ready"), "True");
        assert_eq!(cond(&s, "Initialized"), "True");
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        assert!(c.ready);
        assert_eq!(c.restart_count, 2);
        assert!(s.start_time.is_some());
    }

    #[test]
    fn the_image_shown_is_the_one_the_group_runs_once_it_runs() {
        // The pod now asks for busybox:2; the group still runs busybox:1.
        let mut asked = pod();
        if let Some(spec) = asked.spec.as_mut() {
            spec.containers[0].image = Some("busybox:2".into());
        }
        let mut running_old = group(ContainerGroupStatus::Running, "Running", 0);
        running_old.containers[0].image = "busybox:1".into();
        let image = |p: &Pod, g: &ContainerGroup| {
            let s = pod_status(p, g, "1.1.1.1", jiff::Timestamp::UNIX_EPOCH);
            s.container_statuses.expect("statuses")[0].image.clone()
        };
        assert_eq!(image(&asked, &running_old), "busybox:1");
        // Stopped for the update and waiting to start on the new image: still the old one.
        let mut before = asked.clone();
        before.status = Some(pod_status(
            &asked,
            &running_old,
            "1.1.1.1",
            jiff::Timestamp::UNIX_EPOCH,
        ));
        let mut waiting_new = group(ContainerGroupStatus::Updating, "Waiting", 0);
        waiting_new.containers[0].image = "busybox:2".into();
        assert_eq!(image(&before, &waiting_new), "busybox:1");
        // Running on it: the new image.
        waiting_new.containers[0].current_state.state = "Running".into();
        assert_eq!(image(&before, &waiting_new), "busybox:2");
    }

    #[test]
    fn failed_group_keeps_the_exit_code() {
        let s = pod_status(
            &pod(),
            &group(ContainerGroupStatus::Failed, "Terminated", 1),
            "1.1.1.1",
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(cond(&s, "Ready"), "False");
        let c = &s.container_statuses.as_ref().expect("statuses")[0];
        let t = c
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (1, Some("Error")));
    }

    #[test]
    fn unchanged_status_does_not_differ() {
        let g = group(ContainerGroupStatus::Running, "Running", 0);
        let first = pod_status(&pod(), &g, "1.1.1.1", jiff::Timestamp::UNIX_EPOCH);
        let mut written = pod();
        written.status = Some(first.clone());
        let second = pod_status(&written, &g, "1.1.1.1", jiff::Timestamp::now());
        assert!(!differs(Some(&first), &second));
        assert_eq!(first.conditions, second.conditions);
        let failed = pod_status(
            &written,
            &group(ContainerGroupStatus::Failed, "Terminated", 1),
            "1.1.1.1",
            jiff::Timestamp::now(),
        );
        assert!(differs(Some(&first), &failed));
    }

    #[test]
    fn the_api_servers_empty_last_state_is_no_change() {
        let g = group(ContainerGroupStatus::Running, "Running", 0);
        let ours = pod_status(&pod(), &g, "1.1.1.1", jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            ours.container_statuses
                .as_ref()
                .map(|c| c[0].last_state.is_none()),
            Some(true)
        );
        // What a read of the written status gives back.
        let mut stored: PodStatus =
            serde_json::from_value(serde_json::to_value(&ours).expect("json")).expect("status");
        if let Some(cs) = stored.container_statuses.as_mut() {
            cs[0].last_state = Some(ContainerState::default());
        }
        assert!(!differs(Some(&stored), &ours));
    }
}
