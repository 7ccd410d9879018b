//! ECI events → Events on the pod: the mapping, and that each is written once.

use std::collections::BTreeMap;

use super::*;

/// An apiserver holding Events by name, counting the calls it gets.
#[derive(Default)]
struct FakeApi {
    events: Mutex<BTreeMap<String, Event>>,
    creates: Mutex<usize>,
    patches: Mutex<usize>,
    /// Answers every call with this instead, when set.
    fail: Mutex<Option<Outcome>>,
}

impl FakeApi {
    fn calls(&self) -> (usize, usize) {
        (*self.creates.lock(), *self.patches.lock())
    }

    fn stored(&self) -> Vec<Event> {
        self.events.lock().values().cloned().collect()
    }
}

impl Sink for FakeApi {
    async fn create(&self, event: &Event) -> Outcome {
        *self.creates.lock() += 1;
        if let Some(fail) = *self.fail.lock() {
            return fail;
        }
        let name = event.metadata.name.clone().unwrap_or_default();
        let mut events = self.events.lock();
        if events.contains_key(&name) {
            return Outcome::Exists;
        }
        events.insert(name, event.clone());
        Outcome::Done
    }

    async fn patch(&self, _namespace: &str, name: &str, count: i32, last: &Time) -> Outcome {
        *self.patches.lock() += 1;
        if let Some(fail) = *self.fail.lock() {
            return fail;
        }
        match self.events.lock().get_mut(name) {
            Some(event) => {
                event.count = Some(count);
                event.last_timestamp = Some(last.clone());
                Outcome::Done
            }
            None => Outcome::Gone,
        }
    }
}

fn pod() -> Pod {
    serde_yaml_ng::from_str(
        "metadata: {name: web, namespace: shop, uid: u-1}\nspec: {containers: [{name: c, image: nginx}]}",
    )
    .expect("fixture pod")
}

fn eci_event(reason: &str, message: &str, count: i32, first: &str, last: &str) -> eci::Event {
    eci::Event {
        count,
        kind: "Normal".into(),
        name: "eci-1.17a0".into(),
        reason: reason.into(),
        message: message.into(),
        first_timestamp: first.into(),
        last_timestamp: last.into(),
    }
}

fn pulled() -> eci::Event {
    eci_event(
        "Pulled",
        "Successfully pulled image \"nginx\"",
        1,
        "2026-01-01T00:00:05Z",
        "2026-01-01T00:00:05Z",
    )
}

/// One pass over `events` of pod `web` (UID `u-1`) on node `vk-1`, at [`now`].
async fn sync_now(record: &CloudEvents, api: &FakeApi, events: &[eci::Event]) -> usize {
    record.sync(api, &pod(), "u-1", "vk-1", events, now()).await
}

fn now() -> jiff::Timestamp {
    "2026-01-01T01:00:00Z".parse().expect("a time")
}

fn time(text: &str) -> Option<Time> {
    Some(Time(text.parse().expect("a time")))
}

#[test]
fn an_eci_event_becomes_an_event_on_the_pod() {
    let mut backoff = eci_event(
        "BackOff",
        "Back-off restarting failed container c",
        3,
        "2026-01-01T00:00:10Z",
        "2026-01-01T00:02:00Z",
    );
    backoff.kind = "Warning".into();
    let event = kube_event(&pod(), "vk-1", &backoff, now()).expect("an event");
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some("BackOff"));
    assert_eq!(
        event.message.as_deref(),
        Some("Back-off restarting failed container c")
    );
    assert_eq!(event.count, Some(3));
    assert_eq!(event.first_timestamp, time("2026-01-01T00:00:10Z"));
    assert_eq!(event.last_timestamp, time("2026-01-01T00:02:00Z"));
    assert_eq!(event.metadata.namespace.as_deref(), Some("shop"));
    let object = &event.involved_object;
    assert_eq!(object.kind.as_deref(), Some("Pod"));
    assert_eq!(object.name.as_deref(), Some("web"));
    assert_eq!(object.namespace.as_deref(), Some("shop"));
    assert_eq!(object.uid.as_deref(), Some("u-1"));
    let source = event.source.expect("a source");
    assert_eq!(source.component.as_deref(), Some("EciService"));
    assert_eq!(source.host.as_deref(), Some("vk-1"));
    let name = event.metadata.name.expect("a name");
    assert!(name.starts_with("web."), "{name}");
}

#[test]
fn odd_types_counts_and_times_are_made_valid() {
    let mut odd = eci_event("Started", "Started container c", 0, "", "not a time");
    odd.kind = "normal".into();
    let event = kube_event(&pod(), "vk-1", &odd, now()).expect("an event");
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    assert_eq!(event.count, Some(1));
    assert_eq!(event.first_timestamp, Some(Time(now())));
    assert_eq!(event.last_timestamp, Some(Time(now())));
    // Only a last time: it is the first too.
    let only_last = eci_event("Started", "x", 1, "", "2026-01-01T00:00:05Z");
    let event = kube_event(&pod(), "vk-1", &only_last, now()).expect("an event");
    assert_eq!(event.first_timestamp, time("2026-01-01T00:00:05Z"));
}

#[test]
fn names_are_stable_per_event_and_pod_and_valid() {
    let a = event_name("web", "u-1", &pulled());
    assert_eq!(a, event_name("web", "u-1", &pulled()));
    // The count and last time grow on the same event: same name.
    let mut grown = pulled();
    grown.count = 4;
    grown.last_timestamp = "2026-01-01T00:09:00Z".into();
    assert_eq!(a, event_name("web", "u-1", &grown));
    // Another event, or the same one of a new pod with the same name: another name.
    let started = eci_event("Started", "Started container c", 1, "x", "x");
    assert_ne!(a, event_name("web", "u-1", &started));
    assert_ne!(a, event_name("web", "u-2", &pulled()));
    // A long pod name is cut to fit, without a trailing dash or dot before the hash.
    let long = format!("{}-{}", "a".repeat(235), "b".repeat(30));
    let name = event_name(&long, "u-1", &pulled());
    assert!(name.len() <= 253, "{}", name.len());
    assert!(!name.contains("-."), "{name}");
}

#[tokio::test]
async fn each_eci_event_is_written_once() {
    let api = FakeApi::default();
    let record = CloudEvents::default();
    let started = eci_event(
        "Started",
        "Started container c",
        1,
        "2026-01-01T00:00:06Z",
        "2026-01-01T00:00:06Z",
    );
    let events = [pulled(), started];
    assert_eq!(sync_now(&record, &api, &events).await, 2);
    assert_eq!(api.calls(), (2, 0));
    // The same events again, many passes: no call at all.
    for _ in 0..3 {
        assert_eq!(sync_now(&record, &api, &events).await, 0);
    }
    assert_eq!(api.calls(), (2, 0));
    assert_eq!(api.stored().len(), 2);
    // Nothing listed: nothing written.
    assert_eq!(sync_now(&record, &api, &[]).await, 0);
    assert_eq!(api.calls(), (2, 0));
}

#[tokio::test]
async fn a_grown_count_is_one_patch_of_the_same_event() {
    let api = FakeApi::default();
    let record = CloudEvents::default();
    let mut backoff = eci_event(
        "BackOff",
        "Back-off restarting failed container c",
        1,
        "2026-01-01T00:00:10Z",
        "2026-01-01T00:00:10Z",
    );
    sync_now(&record, &api, std::slice::from_ref(&backoff)).await;
    backoff.count = 5;
    backoff.last_timestamp = "2026-01-01T00:03:00Z".into();
    sync_now(&record, &api, std::slice::from_ref(&backoff)).await;
    sync_now(&record, &api, std::slice::from_ref(&backoff)).await;
    assert_eq!(api.calls(), (1, 1));
    let stored = api.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].count, Some(5));
    assert_eq!(stored[0].last_timestamp, time("2026-01-01T00:03:00Z"));
    assert_eq!(stored[0].first_timestamp, time("2026-01-01T00:00:10Z"));
}

#[tokio::test]
async fn after_a_restart_a_repeat_is_harmless_and_catches_up() {
    let api = FakeApi::default();
    let mut backoff = eci_event(
        "BackOff",
        "Back-off restarting failed container c",
        1,
        "2026-01-01T00:00:10Z",
        "2026-01-01T00:00:10Z",
    );
    let before = CloudEvents::default();
    let events = [pulled(), backoff.clone()];
    sync_now(&before, &api, &events).await;
    // The node restarts (a fresh record) while ECI counted two more back-offs.
    backoff.count = 3;
    backoff.last_timestamp = "2026-01-01T00:01:00Z".into();
    let after = CloudEvents::default();
    let events = [pulled(), backoff];
    sync_now(&after, &api, &events).await;
    let stored = api.stored();
    assert_eq!(stored.len(), 2, "no duplicate after a restart");
    let counts: Vec<_> = stored.iter().map(|e| e.count).collect();
    assert!(counts.contains(&Some(3)), "{counts:?}");
    // And then it is quiet again.
    let calls = api.calls();
    sync_now(&after, &api, &events).await;
    assert_eq!(api.calls(), calls);
}

#[tokio::test]
async fn a_failed_write_is_tried_again_and_a_refused_one_is_not() {
    let api = FakeApi::default();
    let record = CloudEvents::default();
    *api.fail.lock() = Some(Outcome::Failed);
    sync_now(&record, &api, &[pulled()]).await;
    *api.fail.lock() = None;
    sync_now(&record, &api, &[pulled()]).await;
    assert_eq!(api.stored().len(), 1);
    assert_eq!(api.calls(), (2, 0));

    let refused = FakeApi::default();
    let record = CloudEvents::default();
    *refused.fail.lock() = Some(Outcome::Refused);
    sync_now(&record, &refused, &[pulled()]).await;
    sync_now(&record, &refused, &[pulled()]).await;
    assert_eq!(refused.calls(), (1, 0));
}

#[tokio::test]
async fn a_pod_that_went_is_forgotten() {
    let api = FakeApi::default();
    let record = CloudEvents::default();
    sync_now(&record, &api, &[pulled()]).await;
    record.retain_live(&HashSet::new());
    assert!(record.written.lock().is_empty());
    // Seen again (say the store lagged): the name is the same, so still one Event.
    sync_now(&record, &api, &[pulled()]).await;
    assert_eq!(api.stored().len(), 1);
}

#[tokio::test]
async fn an_event_older_than_the_event_ttl_is_not_written_again_after_a_restart() {
    let api = FakeApi::default();
    let record = CloudEvents::default();
    // Pulled at 00:00:05; two hours later a freshly started node sees it for the first time.
    let later: jiff::Timestamp = "2026-01-01T02:00:06Z".parse().expect("a time");
    assert_eq!(
        record
            .sync(&api, &pod(), "u-1", "vk-1", &[pulled()], later)
            .await,
        0
    );
    assert_eq!(api.calls(), (0, 0), "the API server dropped it long ago");
    // A new event at that time is written as usual.
    let restarted = eci_event(
        "Started",
        "Started container c",
        1,
        "2026-01-01T02:00:00Z",
        "2026-01-01T02:00:00Z",
    );
    assert_eq!(
        record
            .sync(&api, &pod(), "u-1", "vk-1", &[pulled(), restarted], later)
            .await,
        1
    );
    assert_eq!(api.calls(), (1, 0));
}

#[tokio::test]
async fn a_restarted_node_that_reads_back_its_events_writes_none_again() {
    let api = FakeApi::default();
    let backoff = eci_event(
        "BackOff",
        "Back-off restarting failed container c",
        2,
        "2026-01-01T00:00:10Z",
        "2026-01-01T00:00:40.250Z",
    );
    // ECI gave no last time for this one: the Event keeps its first.
    let started = eci_event(
        "Started",
        "Started container c",
        1,
        "2026-01-01T00:00:06Z",
        "",
    );
    let events = [pulled(), backoff.clone(), started];
    sync_now(&CloudEvents::default(), &api, &events).await;
    let written = api.calls();

    // A new process reads back what the API server holds: its own events on live pods only.
    let after = CloudEvents::default();
    let mut others = api.stored();
    others[0].source = Some(EventSource {
        component: Some(SOURCE.to_owned()),
        host: Some("another-node".to_owned()),
    });
    assert_eq!(
        after.seed("vk-1", &HashSet::from(["u-1".to_owned()]), &others[..1]),
        0
    );
    assert_eq!(
        after.seed("vk-1", &HashSet::new(), &api.stored()),
        0,
        "not a live pod"
    );
    assert_eq!(
        after.seed("vk-1", &HashSet::from(["u-1".to_owned()]), &api.stored()),
        3
    );
    assert_eq!(sync_now(&after, &api, &events).await, 0);
    assert_eq!(api.calls(), written, "nothing written again");

    // What changed since is written.
    let mut grown = backoff;
    grown.count = 3;
    grown.last_timestamp = "2026-01-01T00:01:00Z".into();
    assert_eq!(sync_now(&after, &api, &[pulled(), grown]).await, 1);
    assert_eq!(api.calls(), (written.0, written.1 + 1));
}
