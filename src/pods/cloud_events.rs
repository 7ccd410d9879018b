//! ECI's own events of a container group (pulling, pulled, started, back-off, scheduling
//! failures…) as Kubernetes Events on the group's pod, so `kubectl describe pod` shows what
//! the cloud did, not only what the node did.
//!
//! The events come with the describes the pod loop already makes (the pass's batched describe
//! and the looks at starting groups): this file makes **no** ECI call. Each ECI event becomes
//! one core/v1 `Event`:
//!
//! - named deterministically, `<pod name>.<hash>` where the hash covers the pod's UID and the
//!   ECI event's identity (name, type, reason, message, first time) — so after a node restart
//!   a repeat create answers `AlreadyExists` and nothing is duplicated;
//! - with ECI's type, reason, message, count and first/last time, the pod (with its UID) as
//!   involved object, and source component `EciService`, the component ECI's own events carry
//!   (<https://www.alibabacloud.com/help/en/eci/user-guide/custom-events-of-elastic-container-instance>),
//!   with the node's name as host;
//! - when ECI folds a repeat into the same event (its `Count` and `LastTimestamp` grow), the
//!   existing Event's count and lastTimestamp are patched — no second Event.
//!
//! [`CloudEvents`] remembers per pod what was written, so a pass that sees nothing new makes
//! no apiserver call at all; the record of a pod is dropped when the pod goes. A write that
//! fails transiently is left to the next describe; one the apiserver refuses (4xx) is not
//! repeated.

use std::collections::{HashMap, HashSet};

use k8s_openapi::{
    api::core::v1::{Event, EventSource, Pod},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::{
    context::{Context, KUBE_TIMEOUT},
    writes::MAX_NOTE,
};
use crate::eci;

/// The source component of ECI's own events, as ECI names it.
pub(super) const SOURCE: &str = "EciService";
/// Longest Event name (a DNS subdomain).
const MAX_NAME: usize = 253;
/// Hex digits of the event's hash in its name.
const HASH_DIGITS: usize = 16;

/// The Event one ECI event of `pod` becomes, or `None` for a pod without name or namespace.
/// Times ECI gave that do not parse fall back to the other one, then to `now`.
pub(super) fn kube_event(
    pod: &Pod,
    node: &str,
    event: &eci::Event,
    now: jiff::Timestamp,
) -> Option<Event> {
    let namespace = pod.namespace()?;
    let pod_name = pod.metadata.name.as_deref()?;
    let uid = pod.uid()?;
    let first = parse_time(&event.first_timestamp);
    let last = parse_time(&event.last_timestamp);
    let first = first.or(last).unwrap_or(now);
    let last = last.unwrap_or(first).max(first);
    let kind = if event.kind.eq_ignore_ascii_case("Warning") {
        "Warning"
    } else {
        "Normal"
    };
    Some(Event {
        metadata: ObjectMeta {
            name: Some(event_name(pod_name, &uid, event)),
            namespace: Some(namespace),
            ..ObjectMeta::default()
        },
        involved_object: pod.object_ref(&()),
        type_: Some(kind.to_owned()),
        reason: Some(event.reason.clone()),
        message: Some(event.message.chars().take(MAX_NOTE).collect()),
        count: Some(event.count.max(1)),
        first_timestamp: Some(Time(first)),
        last_timestamp: Some(Time(last)),
        source: Some(EventSource {
            component: Some(SOURCE.to_owned()),
            host: Some(node.to_owned()),
        }),
        ..Event::default()
    })
}

fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

/// The Event's name: the pod's name (cut so the whole fits in a DNS subdomain), a dot, and a
/// hash of the pod's UID and the ECI event's identity. Count and last time are not part of
/// the identity: they grow on the same event.
pub(super) fn event_name(pod_name: &str, uid: &str, event: &eci::Event) -> String {
    let mut hash = Sha256::new();
    for part in [
        uid,
        &event.name,
        &event.kind,
        &event.reason,
        &event.message,
        &event.first_timestamp,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hex::encode(hash.finalize());
    let hash = digest.get(..HASH_DIGITS).unwrap_or(&digest);
    let room = MAX_NAME - HASH_DIGITS - 1;
    let prefix: String = pod_name.chars().take(room).collect();
    let prefix = prefix.trim_end_matches(['.', '-']);
    format!("{prefix}.{hash}")
}

/// What the apiserver answered one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Written.
    Done,
    /// A create found the name taken (409): written before, by this node or its predecessor.
    Exists,
    /// A patch found no such Event (404): it expired (the apiserver keeps Events an hour).
    Gone,
    /// Refused for good (another 4xx): not tried again.
    Refused,
    /// Failed for now (5xx, 429, timeout, transport): tried again at the next describe.
    Failed,
}

/// Where Events are written: the apiserver, or a fake in tests.
pub(super) trait Sink {
    /// Creates `event`.
    async fn create(&self, event: &Event) -> Outcome;
    /// Sets the count and last time of the Event `name` in `namespace`.
    async fn patch(&self, namespace: &str, name: &str, count: i32, last: &Time) -> Outcome;
}

/// The apiserver as a [`Sink`].
pub(super) struct KubeSink<'a>(pub(super) &'a kube::Client);

impl Sink for KubeSink<'_> {
    async fn create(&self, event: &Event) -> Outcome {
        let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.0.clone(), namespace);
        let answer =
            tokio::time::timeout(KUBE_TIMEOUT, api.create(&PostParams::default(), event)).await;
        outcome(answer.map(|a| a.map(drop)))
    }

    async fn patch(&self, namespace: &str, name: &str, count: i32, last: &Time) -> Outcome {
        let api: Api<Event> = Api::namespaced(self.0.clone(), namespace);
        let patch = serde_json::json!({ "count": count, "lastTimestamp": last });
        let answer = tokio::time::timeout(
            KUBE_TIMEOUT,
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await;
        outcome(answer.map(|a| a.map(drop)))
    }
}

/// Classifies an apiserver answer by its status code.
fn outcome(answer: Result<Result<(), kube::Error>, tokio::time::error::Elapsed>) -> Outcome {
    match answer {
        Ok(Ok(())) => Outcome::Done,
        Ok(Err(kube::Error::Api(status))) => match status.code {
            409 => Outcome::Exists,
            404 => Outcome::Gone,
            429 => Outcome::Failed,
            400..=499 => {
                warn!(
                    code = status.code,
                    reason = %status.reason,
                    "ECI event refused by the apiserver; not retried"
                );
                Outcome::Refused
            }
            _ => Outcome::Failed,
        },
        Ok(Err(error)) => {
            debug!(
                error = &error as &dyn std::error::Error,
                "ECI event not written"
            );
            Outcome::Failed
        }
        Err(_) => {
            debug!(timeout = ?KUBE_TIMEOUT, "ECI event write timed out");
            Outcome::Failed
        }
    }
}

/// How long the API server keeps an Event (kube-apiserver's `--event-ttl`, one hour by
/// default): an older ECI event the record does not know is not written again.
const EVENT_TTL_SECONDS: i64 = 3600;

/// What was written of one ECI event: its count and last time (whole seconds, as an Event
/// keeps them), as [`kube_event`] makes them — so an Event read back from the API server
/// compares equal to the ECI event it was written from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    count: i32,
    last: Option<i64>,
}

impl Written {
    fn of(event: &eci::Event) -> Self {
        let first = parse_time(&event.first_timestamp);
        let last = parse_time(&event.last_timestamp).or(first);
        let last = match (last, first) {
            (Some(last), Some(first)) => Some(last.max(first)),
            (last, _) => last,
        };
        Self {
            count: event.count.max(1),
            last: last.map(jiff::Timestamp::as_second),
        }
    }

    /// What an Event on the API server says was written.
    fn of_kube(event: &Event) -> Self {
        Self {
            count: event.count.unwrap_or(1).max(1),
            last: event.last_timestamp.as_ref().map(|t| t.0.as_second()),
        }
    }
}

/// One write to make: the Event, and whether one of that name was written already.
struct Todo {
    event: Event,
    name: String,
    written: Written,
    known: bool,
}

/// What was written of each pod's ECI events, by pod UID then Event name. Cheap to keep: at
/// most ECI's 50 events a pod.
#[derive(Debug, Default)]
pub(super) struct CloudEvents {
    written: Mutex<HashMap<String, HashMap<String, Written>>>,
}

impl CloudEvents {
    /// Writes what is new in `events` (the ECI events of the group of `pod`, UID `uid`), as of
    /// `now`:
    /// a create for an event not yet written, a patch for one whose count or last time grew.
    /// Returns how many ECI events needed a write (a create answering 409 adds a patch).
    pub(super) async fn sync(
        &self,
        sink: &impl Sink,
        pod: &Pod,
        uid: &str,
        node: &str,
        events: &[eci::Event],
        now: jiff::Timestamp,
    ) -> usize {
        let todo = self.plan(pod, uid, node, events, now);
        if todo.is_empty() {
            return 0;
        }
        let mut done = Vec::with_capacity(todo.len());
        for todo in &todo {
            if write(sink, todo).await {
                done.push((todo.name.clone(), todo.written.clone()));
            }
        }
        let mut record = self.written.lock();
        let pod_record = record.entry(uid.to_owned()).or_default();
        pod_record.extend(done);
        todo.len()
    }

    /// The writes `events` call for, given the record; drops from the record the events ECI
    /// no longer lists (it keeps the newest 50), which it will not list again.
    fn plan(
        &self,
        pod: &Pod,
        uid: &str,
        node: &str,
        events: &[eci::Event],
        now: jiff::Timestamp,
    ) -> Vec<Todo> {
        let mut newest: HashMap<String, Todo> = HashMap::new();
        for event in events {
            let Some(kube) = kube_event(pod, node, event, now) else {
                return Vec::new();
            };
            let Some(name) = kube.metadata.name.clone() else {
                continue;
            };
            let written = Written::of(event);
            // The same event listed twice: the later count wins.
            if newest
                .get(&name)
                .is_some_and(|t| t.written.count > written.count)
            {
                continue;
            }
            newest.insert(
                name.clone(),
                Todo {
                    event: kube,
                    name,
                    written,
                    known: false,
                },
            );
        }
        let mut record = self.written.lock();
        let listed: HashSet<&String> = newest.keys().collect();
        if let Some(pod_record) = record.get_mut(uid) {
            pod_record.retain(|name, _| listed.contains(name));
        }
        // An event not in the record whose last time is older than the API server keeps
        // Events (an hour by default) was written before a restart and has since expired:
        // writing it again would bring back a days-old `Pulled` as if it had just happened.
        let expired_before = now
            .checked_sub(jiff::SignedDuration::from_secs(EVENT_TTL_SECONDS))
            .unwrap_or(now);
        let mut expired: Vec<(String, Written)> = Vec::new();
        let pod_record = record.get(uid);
        let mut todo: Vec<Todo> = newest
            .into_values()
            .filter_map(|mut t| {
                match pod_record.and_then(|r| r.get(&t.name)) {
                    Some(before) if *before == t.written => return None,
                    Some(_) => t.known = true,
                    None => {
                        let last = t.event.last_timestamp.as_ref().map(|time| time.0);
                        if last.is_some_and(|last| last < expired_before) {
                            expired.push((t.name.clone(), t.written.clone()));
                            return None;
                        }
                    }
                }
                Some(t)
            })
            .collect();
        if !expired.is_empty() {
            record.entry(uid.to_owned()).or_default().extend(expired);
        }
        // Oldest first, as `kubectl get events` would have seen them happen.
        todo.sort_by(|a, b| {
            (&a.event.first_timestamp, &a.name).cmp(&(&b.event.first_timestamp, &b.name))
        });
        todo
    }

    /// Takes what earlier processes of node `node` wrote from `events` (Events read back from
    /// the API server), for the pods in `live`: a restarted node then writes only what is new,
    /// not every ECI event of every pod again (a create answered 409 and a patch each — 8,000
    /// writes for 1,000 running pods, which held a restarted node's first pass 50 s).
    pub(super) fn seed(&self, node: &str, live: &HashSet<String>, events: &[Event]) -> usize {
        let mut record = self.written.lock();
        let mut seeded = 0;
        for event in events {
            let source = event.source.as_ref();
            if source.and_then(|s| s.component.as_deref()) != Some(SOURCE)
                || source.and_then(|s| s.host.as_deref()) != Some(node)
            {
                continue;
            }
            let (Some(uid), Some(name)) = (
                event
                    .involved_object
                    .uid
                    .as_ref()
                    .filter(|u| live.contains(*u)),
                event.metadata.name.as_ref(),
            ) else {
                continue;
            };
            record
                .entry(uid.clone())
                .or_default()
                .insert(name.clone(), Written::of_kube(event));
            seeded += 1;
        }
        seeded
    }

    /// Forgets the pods not in `live`.
    pub(super) fn retain_live(&self, live: &HashSet<String>) {
        self.written.lock().retain(|uid, _| live.contains(uid));
    }
}

/// Reads back the ECI events earlier processes of this node wrote on its pods (every
/// namespace, by their source component, pages of 500) into the record, before the first
/// pass. A node that may not list Events (an older chart's RBAC), or an API server that does
/// not answer in time, starts without them: its first pass then writes them again, as before.
pub(super) async fn seed(ctx: &Context, live: &HashSet<String>) {
    let api: Api<Event> = Api::all(ctx.kube.clone());
    let mut params = ListParams::default()
        .fields(&format!("source={SOURCE}"))
        .limit(500);
    let mut seeded = 0;
    loop {
        let page = match tokio::time::timeout(KUBE_TIMEOUT, api.list(&params)).await {
            Ok(Ok(page)) => page,
            Ok(Err(error)) => {
                warn!(
                    error = &error as &dyn std::error::Error,
                    "cannot read back the ECI events written before; the first pass writes them again"
                );
                return;
            }
            Err(_) => {
                warn!(timeout = ?KUBE_TIMEOUT, "reading back the ECI events written before timed out");
                return;
            }
        };
        seeded += ctx
            .cloud_events
            .seed(&ctx.config.node_name, live, &page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    debug!(events = seeded, "read back the ECI events written before");
}

/// Writes what is new among the ECI events of `group` on its pod `pod` (UID `uid`).
pub(super) async fn record(ctx: &Context, pod: &Pod, uid: &str, group: &eci::ContainerGroup) {
    let sink = KubeSink(&ctx.kube);
    let node = &ctx.config.node_name;
    ctx.cloud_events
        .sync(&sink, pod, uid, node, &group.events, jiff::Timestamp::now())
        .await;
}

/// Makes one write; whether it is settled (written, or not worth trying again).
async fn write(sink: &impl Sink, todo: &Todo) -> bool {
    let namespace = todo.event.metadata.namespace.as_deref().unwrap_or_default();
    let count = todo.event.count.unwrap_or(1);
    let Some(last) = todo.event.last_timestamp.as_ref() else {
        return true;
    };
    let reason = todo.event.reason.as_deref().unwrap_or_default();
    if todo.known {
        match sink.patch(namespace, &todo.name, count, last).await {
            Outcome::Done | Outcome::Refused => return true,
            Outcome::Failed | Outcome::Exists => return false,
            // Expired since: written afresh below.
            Outcome::Gone => {}
        }
    }
    match sink.create(&todo.event).await {
        Outcome::Done => {
            debug!(event.reason = reason, "ECI event recorded on the pod");
            true
        }
        // Written before (by this node before a restart): bring its count up to date.
        Outcome::Exists => matches!(
            sink.patch(namespace, &todo.name, count, last).await,
            Outcome::Done | Outcome::Refused | Outcome::Gone
        ),
        // The namespace is going, or the write is refused: not worth repeating.
        Outcome::Gone | Outcome::Refused => true,
        Outcome::Failed => false,
    }
}

#[cfg(test)]
mod tests;
