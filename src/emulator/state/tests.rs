use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::emulator::spec::{CacheSpec, GroupSpec};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("time")
}

fn group(id: &str, status: GroupStatus, since: Timestamp) -> Group {
    Group {
        id: id.into(),
        region_id: "cn-hangzhou".into(),
        spec: GroupSpec {
            name: id.into(),
            ..GroupSpec::default()
        },
        status,
        status_since: since,
        creation_time: since,
        succeeded_time: None,
        failed_time: None,
        expired_time: None,
        intranet_ip: String::new(),
        zone_id: String::new(),
        events: Vec::new(),
        containers: Vec::new(),
        init_containers: Vec::new(),
        image_cache_id: None,
        snapshot_id: None,
        generation: 0,
    }
}

#[test]
fn status_names_round_trip_and_classify() {
    for s in [
        "Scheduling",
        "Pending",
        "Running",
        "Restarting",
        "Updating",
        "Terminating",
        "Succeeded",
        "Failed",
        "Expired",
        "ScheduleFailed",
    ] {
        assert_eq!(GroupStatus::parse(s).map(GroupStatus::as_str), Some(s));
    }
    assert!(GroupStatus::parse("running").is_none());
    assert!(GroupStatus::Succeeded.is_terminal() && GroupStatus::ScheduleFailed.is_terminal());
    assert!(!GroupStatus::Terminating.is_terminal());
    assert!(GroupStatus::Running.allows_restart_or_update());
    assert!(GroupStatus::Pending.allows_restart_or_update());
    assert!(!GroupStatus::Scheduling.allows_restart_or_update());
    assert!(!GroupStatus::Failed.allows_restart_or_update());
    assert!(CacheStatus::Ready.allows_update() && CacheStatus::UpdateFailed.allows_update());
    for s in [
        CacheStatus::Preparing,
        CacheStatus::Creating,
        CacheStatus::Updating,
        CacheStatus::Failed,
    ] {
        assert!(!s.allows_update(), "{s:?}");
    }
}

#[test]
fn set_status_records_terminal_times_once() {
    let mut g = group("eci-a", GroupStatus::Running, t(0));
    assert!(g.set_status(GroupStatus::Failed, t(10)));
    assert_eq!(g.failed_time, Some(t(10)));
    assert!(!g.set_status(GroupStatus::Failed, t(20)), "no change");
    assert_eq!(g.status_since, t(10));
}

#[test]
fn events_fold_repeats_and_keep_the_newest_50() {
    let mut events = Vec::new();
    push_event(&mut events, "web", "Normal", "Pulled", "x".into(), t(0));
    push_event(&mut events, "web", "Normal", "Pulled", "x".into(), t(5));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count, 2);
    assert_eq!(events[0].last, t(5));
    // A repeat folds even with other events in between (a container restarting).
    push_event(&mut events, "web", "Warning", "BackOff", "y".into(), t(6));
    push_event(&mut events, "web", "Normal", "Pulled", "x".into(), t(7));
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].count, events[0].first, events[0].last),
        (3, t(0), t(7))
    );
    events.truncate(1);
    for i in 0..60 {
        push_event(
            &mut events,
            "web",
            "Normal",
            "Started",
            format!("{i}"),
            t(i),
        );
    }
    assert_eq!(events.len(), MAX_EVENTS);
    assert_eq!(events.last().map(|e| e.message.as_str()), Some("59"));
}

#[test]
fn purge_drops_expired_caches_and_old_failed_groups() {
    let mut store = Store::default();
    let now = t(0);
    let cache = |id: &str, expire: Option<Timestamp>| Cache {
        id: id.into(),
        region_id: "cn-hangzhou".into(),
        spec: CacheSpec::default(),
        status: CacheStatus::Failed,
        progress: 0,
        snapshot_id: Some(format!("s-{id}")),
        flash_snapshot_id: None,
        container_group_id: String::new(),
        creation_time: now,
        expire_date_time: expire,
        last_matched_time: None,
        events: Vec::new(),
        image_sizes: std::collections::BTreeMap::new(),
        generation: 0,
        automatic: false,
    };
    store.caches.insert(
        "imc-old".into(),
        cache("imc-old", Some(now - SignedDuration::from_secs(1))),
    );
    store.caches.insert(
        "imc-new".into(),
        cache("imc-new", Some(now + SignedDuration::from_hours(1))),
    );
    store
        .caches
        .insert("imc-forever".into(), cache("imc-forever", None));
    store.groups.insert(
        "eci-sf-old".into(),
        group(
            "eci-sf-old",
            GroupStatus::ScheduleFailed,
            now - SignedDuration::from_hours(25),
        ),
    );
    store.groups.insert(
        "eci-sf-new".into(),
        group(
            "eci-sf-new",
            GroupStatus::ScheduleFailed,
            now - SignedDuration::from_mins(30),
        ),
    );
    store.groups.insert(
        "eci-run".into(),
        group(
            "eci-run",
            GroupStatus::Running,
            now - SignedDuration::from_hours(100),
        ),
    );
    let purged = store.purge(now);
    assert_eq!(purged.caches, ["imc-old"]);
    assert_eq!(purged.snapshots, ["s-imc-old"]);
    assert_eq!(purged.groups, ["eci-sf-old"]);
    assert!(store.caches.contains_key("imc-new") && store.caches.contains_key("imc-forever"));
    assert!(store.groups.contains_key("eci-sf-new") && store.groups.contains_key("eci-run"));
}

#[test]
fn purge_keeps_the_newest_100_terminal_groups_after_an_hour() {
    let mut store = Store::default();
    let now = t(100_000);
    for i in 0..105 {
        let id = format!("eci-{i:03}");
        store.groups.insert(
            id.clone(),
            group(
                &id,
                GroupStatus::Succeeded,
                now - SignedDuration::from_hours(2) + SignedDuration::from_secs(i),
            ),
        );
    }
    // A recent one never counts against the 100.
    store.groups.insert(
        "eci-recent".into(),
        group("eci-recent", GroupStatus::Failed, now),
    );
    let purged = store.purge(now);
    assert_eq!(purged.groups.len(), 5);
    for i in 0..5 {
        assert!(
            !store.groups.contains_key(&format!("eci-{i:03}")),
            "oldest {i} dropped"
        );
    }
    assert!(store.groups.contains_key("eci-104") && store.groups.contains_key("eci-recent"));
}
