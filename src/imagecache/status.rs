//! The status an `ImageCache` shows, computed from what the cloud says about its cache (pure,
//! so every rule is unit-tested): phase and progress as the cloud reports them, the guide's
//! times, one `Success pull image …` event per image once the cache is Ready, the cloud's
//! warnings when it failed, and a `Ready` condition.

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time},
};

use super::resource::{CONDITION_READY, CONDITION_STALE, ImageCacheStatus};
use crate::eci;

/// The phase shown when the controller itself failed the object (e.g. a missing pull secret).
pub const PHASE_FAILED: &str = "Failed";

/// The name of a cloud status, as the CRD shows it.
pub fn phase_name(status: eci::ImageCacheStatus) -> &'static str {
    use eci::ImageCacheStatus as S;
    match status {
        S::Preparing => "Preparing",
        S::Creating => "Creating",
        S::Ready => "Ready",
        S::Failed => "Failed",
        S::Updating => "Updating",
        S::UpdateFailed => "UpdateFailed",
        S::Unknown => "Unknown",
    }
}

fn time(text: &str) -> Option<Time> {
    text.parse::<Timestamp>().ok().map(Time)
}

/// An event in the shape of the guide's example (`source: {component: kubelet, host: eci}`).
fn event(name: &str, kind: &str, reason: Option<&str>, message: String, at: Time) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference::default(),
        count: Some(1),
        first_timestamp: Some(at.clone()),
        last_timestamp: Some(at),
        message: Some(message),
        reason: reason.map(str::to_owned),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some("eci".into()),
        }),
        type_: Some(kind.to_owned()),
        ..Event::default()
    }
}

fn condition(
    ready: bool,
    reason: &str,
    message: String,
    previous: Option<&ImageCacheStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let since = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == CONDITION_READY))
        .filter(|c| c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: CONDITION_READY.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// Sets the `Stale` condition of `next` (its transition time kept from `previous` while it
/// stays the same), or drops it when `stale` is `None`.
pub fn set_stale(
    next: &mut ImageCacheStatus,
    stale: Option<(bool, &str, String)>,
    previous: Option<&ImageCacheStatus>,
    now: Timestamp,
) {
    next.conditions.retain(|c| c.type_ != CONDITION_STALE);
    let Some((is_stale, reason, message)) = stale else {
        return;
    };
    let status = if is_stale { "True" } else { "False" };
    let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == CONDITION_STALE));
    let since = before
        .filter(|c| c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    next.conditions.push(Condition {
        type_: CONDITION_STALE.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: since,
        observed_generation: next.observed_generation,
    });
}

/// The status for a cloud cache.
///
/// `in_sync` says whether the cloud cache reflects the object's current spec (then
/// `observedGeneration` becomes `generation`); `previous` keeps times and events stable across
/// polls that change nothing.
pub fn from_cloud(
    cloud: &eci::ImageCache,
    generation: Option<i64>,
    in_sync: bool,
    previous: Option<&ImageCacheStatus>,
    now: Timestamp,
) -> ImageCacheStatus {
    let phase = phase_name(cloud.status);
    let progress = if cloud.progress.is_empty() {
        None
    } else {
        Some(cloud.progress.clone())
    };
    let changed = previous.is_none_or(|p| {
        p.phase.as_deref() != Some(phase)
            || p.progress != progress
            || p.image_cache_id.as_deref() != Some(cloud.image_cache_id.as_str())
    });
    let last_updated_time = if changed {
        Some(Time(now))
    } else {
        previous.and_then(|p| p.last_updated_time.clone())
    };
    let events = match cloud.status {
        eci::ImageCacheStatus::Ready => {
            // One event per image, as the guide's status has: at the time of the cloud's own
            // `Success pull image X` event when it reports one, else when the cache was done.
            let pulled_at = |image: &str| {
                let message = format!("Success pull image {image}");
                cloud
                    .events
                    .iter()
                    .find(|e| e.kind == "Normal" && e.message == message)
                    .and_then(|e| time(&e.first_timestamp))
            };
            let done = cloud
                .events
                .iter()
                .rev()
                .find(|e| e.kind == "Normal" && matches!(e.reason.as_str(), "Created" | "Updated"))
                .and_then(|e| time(&e.last_timestamp))
                .unwrap_or(Time(now));
            cloud
                .images
                .iter()
                .map(|image| {
                    previous
                        .and_then(|p| {
                            p.events.iter().find(|e| {
                                e.metadata.name.as_deref() == Some(image.as_str())
                                    && e.type_.as_deref() == Some("Normal")
                            })
                        })
                        .cloned()
                        .unwrap_or_else(|| {
                            event(
                                image,
                                "Normal",
                                None,
                                format!("Success pull image {image}"),
                                pulled_at(image).unwrap_or_else(|| done.clone()),
                            )
                        })
                })
                .collect()
        }
        eci::ImageCacheStatus::Failed | eci::ImageCacheStatus::UpdateFailed => cloud
            .events
            .iter()
            .filter(|e| e.kind == "Warning")
            .map(|e| {
                event(
                    &e.name,
                    "Warning",
                    Some(&e.reason),
                    e.message.clone(),
                    time(&e.last_timestamp).unwrap_or(Time(now)),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let ready = cloud.status == eci::ImageCacheStatus::Ready;
    let message = match cloud.status {
        eci::ImageCacheStatus::Ready => format!("image cache {} is ready", cloud.image_cache_id),
        eci::ImageCacheStatus::Failed | eci::ImageCacheStatus::UpdateFailed => cloud
            .events
            .iter()
            .rev()
            .find(|e| e.kind == "Warning")
            .map_or_else(
                || format!("image cache {} failed", cloud.image_cache_id),
                |e| e.message.clone(),
            ),
        _ => format!(
            "image cache {} is {} ({})",
            cloud.image_cache_id,
            phase,
            progress.as_deref().unwrap_or("0%")
        ),
    };
    let observed_generation = if in_sync {
        generation
    } else {
        previous.and_then(|p| p.observed_generation)
    };
    ImageCacheStatus {
        phase: Some(phase.to_owned()),
        progress,
        image_cache_id: Some(cloud.image_cache_id.clone()),
        start_time: time(&cloud.creation_time),
        last_updated_time,
        expire_date_time: time(&cloud.expire_date_time),
        last_matched_time: time(&cloud.last_matched_time),
        events,
        observed_generation,
        conditions: vec![condition(
            ready,
            phase,
            message,
            previous,
            observed_generation,
            now,
        )],
        // What the images are is known for this cloud cache only; the digest check fills it.
        images: previous
            .filter(|p| p.image_cache_id.as_deref() == Some(cloud.image_cache_id.as_str()))
            .map(|p| p.images.clone())
            .unwrap_or_default(),
        private_registries: previous
            .filter(|p| p.image_cache_id.as_deref() == Some(cloud.image_cache_id.as_str()))
            .map(|p| p.private_registries.clone())
            .unwrap_or_default(),
    }
}

/// The phase of an object whose cloud cache reached its expiry and was removed by the cloud.
pub const PHASE_EXPIRED: &str = "Expired";

/// The status once the cloud removed an expired cache: a Ready cache becomes `Expired`, a
/// failed one stays `Failed`; either way `Ready` is false. Stable across repeated calls.
pub fn expired(previous: &ImageCacheStatus, now: Timestamp) -> ImageCacheStatus {
    let mut next = previous.clone();
    if next.phase.as_deref() != Some(PHASE_FAILED) {
        next.phase = Some(PHASE_EXPIRED.to_owned());
    }
    let id = previous.image_cache_id.as_deref().unwrap_or("(none)");
    let message = format!("image cache {id} expired and was removed by the cloud");
    if next != *previous
        || !previous
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_READY && c.message == message)
    {
        next.last_updated_time = Some(Time(now));
    }
    let generation = previous.observed_generation;
    next.conditions = vec![condition(
        false,
        PHASE_EXPIRED,
        message,
        Some(previous),
        generation,
        now,
    )];
    next
}

/// The status of an object the controller could not hand to the cloud: phase `Failed`, the
/// reason in the `Ready` condition and one Warning event.
pub fn failed(
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: Option<&ImageCacheStatus>,
    now: Timestamp,
) -> ImageCacheStatus {
    let same = previous.is_some_and(|p| {
        p.phase.as_deref() == Some(PHASE_FAILED)
            && p.conditions
                .iter()
                .any(|c| c.type_ == CONDITION_READY && c.message == message)
    });
    let at = if same {
        previous
            .and_then(|p| p.last_updated_time.clone())
            .unwrap_or(Time(now))
    } else {
        Time(now)
    };
    ImageCacheStatus {
        phase: Some(PHASE_FAILED.to_owned()),
        progress: None,
        image_cache_id: previous.and_then(|p| p.image_cache_id.clone()),
        start_time: previous.and_then(|p| p.start_time.clone()),
        last_updated_time: Some(at.clone()),
        expire_date_time: previous.and_then(|p| p.expire_date_time.clone()),
        last_matched_time: previous.and_then(|p| p.last_matched_time.clone()),
        events: vec![event(reason, "Warning", Some(reason), message.clone(), at)],
        observed_generation: generation,
        conditions: vec![condition(false, reason, message, previous, generation, now)],
        images: Vec::new(),
        private_registries: previous
            .map(|p| p.private_registries.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-10T00:00:00Z".parse().expect("time")
    }

    fn cloud(status: eci::ImageCacheStatus, progress: &str) -> eci::ImageCache {
        eci::ImageCache {
            image_cache_id: "imc-2zeditzeoemfhqor4rf8".into(),
            image_cache_name: "imagecache-sample".into(),
            images: vec!["centos:latest".into(), "busybox:latest".into()],
            status,
            progress: progress.into(),
            creation_time: "2026-01-09T13:40:58Z".into(),
            expire_date_time: "2026-01-16T13:40:58Z".into(),
            events: vec![eci::container_group::Event {
                count: 1,
                kind: "Normal".into(),
                name: "imagecache-sample".into(),
                reason: "Created".into(),
                message: "Successfully created image cache.".into(),
                first_timestamp: "2026-01-09T13:44:17Z".into(),
                last_timestamp: "2026-01-09T13:44:17Z".into(),
            }],
            ..eci::ImageCache::default()
        }
    }

    #[test]
    fn a_pulled_image_event_keeps_the_clouds_time() {
        let mut c = cloud(eci::ImageCacheStatus::Ready, "100%");
        c.events.insert(
            0,
            eci::container_group::Event {
                count: 1,
                kind: "Normal".into(),
                name: "imagecache-sample.1".into(),
                reason: "Pulled".into(),
                message: "Success pull image busybox:latest".into(),
                first_timestamp: "2026-01-09T13:42:04Z".into(),
                last_timestamp: "2026-01-09T13:42:04Z".into(),
            },
        );
        let s = from_cloud(&c, Some(1), true, None, now());
        let at = |image: &str| {
            s.events
                .iter()
                .find(|e| e.metadata.name.as_deref() == Some(image))
                .and_then(|e| e.first_timestamp.clone())
        };
        assert_eq!(at("busybox:latest"), time("2026-01-09T13:42:04Z"));
        // No cloud event for centos: the time the cache was done.
        assert_eq!(at("centos:latest"), time("2026-01-09T13:44:17Z"));
    }

    #[test]
    fn ready_cache_shows_the_guides_fields() {
        let s = from_cloud(
            &cloud(eci::ImageCacheStatus::Ready, "100%"),
            Some(1),
            true,
            None,
            now(),
        );
        assert_eq!(s.phase.as_deref(), Some("Ready"));
        assert_eq!(s.progress.as_deref(), Some("100%"));
        assert_eq!(
            s.image_cache_id.as_deref(),
            Some("imc-2zeditzeoemfhqor4rf8")
        );
        assert_eq!(s.start_time, time("2026-01-09T13:40:58Z"));
        assert_eq!(s.expire_date_time, time("2026-01-16T13:40:58Z"));
        assert_eq!(s.last_updated_time, Some(Time(now())));
        assert_eq!(s.observed_generation, Some(1));
        let messages: Vec<_> = s
            .events
            .iter()
            .filter_map(|e| e.message.as_deref())
            .collect();
        assert_eq!(
            messages,
            [
                "Success pull image centos:latest",
                "Success pull image busybox:latest"
            ]
        );
        let e = &s.events[0];
        assert_eq!(e.metadata.name.as_deref(), Some("centos:latest"));
        assert_eq!(e.count, Some(1));
        assert_eq!(e.first_timestamp, time("2026-01-09T13:44:17Z"));
        assert_eq!(
            e.source.as_ref().and_then(|s| s.host.as_deref()),
            Some("eci")
        );
        let ready = &s.conditions[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );
    }

    #[test]
    fn an_unchanged_poll_keeps_times_and_events() {
        let first = from_cloud(
            &cloud(eci::ImageCacheStatus::Ready, "100%"),
            Some(1),
            true,
            None,
            now(),
        );
        let later: Timestamp = "2026-01-11T00:00:00Z".parse().expect("time");
        let again = from_cloud(
            &cloud(eci::ImageCacheStatus::Ready, "100%"),
            Some(1),
            true,
            Some(&first),
            later,
        );
        assert_eq!(again, first);
    }

    #[test]
    fn progress_changes_move_last_updated_and_keep_generation_until_in_sync() {
        let creating = from_cloud(
            &cloud(eci::ImageCacheStatus::Creating, "40%"),
            Some(2),
            false,
            None,
            now(),
        );
        assert_eq!(creating.phase.as_deref(), Some("Creating"));
        assert!(creating.events.is_empty());
        assert_eq!(creating.observed_generation, None);
        assert_eq!(creating.conditions[0].status, "False");
        let later: Timestamp = "2026-01-10T00:01:00Z".parse().expect("time");
        let more = from_cloud(
            &cloud(eci::ImageCacheStatus::Creating, "80%"),
            Some(2),
            false,
            Some(&creating),
            later,
        );
        assert_eq!(more.last_updated_time, Some(Time(later)));
        // The condition did not change status: its transition time stays.
        assert_eq!(more.conditions[0].last_transition_time, Time(now()));
    }

    #[test]
    fn failed_cache_shows_the_clouds_warning() {
        let mut c = cloud(eci::ImageCacheStatus::Failed, "0%");
        c.expire_date_time = "2026-01-10T13:41:00Z".into();
        c.events.push(eci::container_group::Event {
            count: 1,
            kind: "Warning".into(),
            name: "imagecache-sample".into(),
            reason: "Failed".into(),
            message: "Failed to pull image: 127.0.0.1:5443/private/app:v1 unauthorized".into(),
            first_timestamp: "2026-01-09T13:41:00Z".into(),
            last_timestamp: "2026-01-09T13:41:00Z".into(),
        });
        let s = from_cloud(&c, Some(1), true, None, now());
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].type_.as_deref(), Some("Warning"));
        assert!(
            s.conditions[0]
                .message
                .contains("127.0.0.1:5443/private/app:v1")
        );
        assert_eq!(s.expire_date_time, time("2026-01-10T13:41:00Z"));
    }

    #[test]
    fn an_expired_cache_stops_being_ready() {
        let ready = from_cloud(
            &cloud(eci::ImageCacheStatus::Ready, "100%"),
            Some(1),
            true,
            None,
            now(),
        );
        let later: Timestamp = "2026-01-17T00:00:00Z".parse().expect("time");
        let gone = expired(&ready, later);
        assert_eq!(gone.phase.as_deref(), Some("Expired"));
        assert_eq!(gone.conditions[0].status, "False");
        assert_eq!(gone.last_updated_time, Some(Time(later)));
        assert_eq!(gone.image_cache_id, ready.image_cache_id);
        let even_later: Timestamp = "2026-01-18T00:00:00Z".parse().expect("time");
        assert_eq!(expired(&gone, even_later), gone);
        let failed = from_cloud(
            &cloud(eci::ImageCacheStatus::Failed, "0%"),
            Some(1),
            true,
            None,
            now(),
        );
        assert_eq!(expired(&failed, later).phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn controller_failures_are_stable_across_retries() {
        let first = failed(
            "PullSecretFailed",
            "image pull secret default/x not found".into(),
            Some(1),
            None,
            now(),
        );
        assert_eq!(first.phase.as_deref(), Some("Failed"));
        assert_eq!(
            first.events[0].message.as_deref(),
            Some("image pull secret default/x not found")
        );
        let later: Timestamp = "2026-01-10T00:05:00Z".parse().expect("time");
        let again = failed(
            "PullSecretFailed",
            "image pull secret default/x not found".into(),
            Some(1),
            Some(&first),
            later,
        );
        assert_eq!(again, first);
    }
}
