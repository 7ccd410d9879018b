//! Pods between "create the group" and "the group runs".
//!
//! ECI pushes nothing: a node learns that a group runs only by describing it. Learning it from
//! the periodic batched pass alone adds up to a pass interval to every start, and for a pod
//! whose images come from a cache that wait was most of its start. So the pod loop:
//!
//! - creates a new pod's group the moment the watch shows the pod (the `ClientToken` makes a
//!   second create of the same pod answer the same group, so no describe is needed first);
//! - describes its starting groups by id ("looks"), every 0.1 s for the first seconds (a
//!   start from a cache), then less and less often as the start drags on (an image pull), until
//!   each leaves `Scheduling`/`Pending`.
//!
//! [`Starts`] is the bookkeeping both need: which pods have a create in flight (so the pass and
//! the watch never create one pod twice at once), which groups were just created (so a pass
//! whose describe predates the create does not create again), and which groups are due a look.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;
use parking_lot::Mutex;
use tokio::{sync::Notify, time::Instant};

/// Looks come this often at first.
const FIRST_LOOK: Duration = Duration::from_millis(100);
/// For this long after the create; then each look waits 1.5 times longer than the last. A
/// start from a cache is over well within it; one that pulls images takes far longer.
const QUICK_LOOKS_FOR: Duration = Duration::from_secs(3);
/// Looks never come further apart than this; an image pull is seen within it of finishing.
const MAX_LOOK_GAP: Duration = Duration::from_secs(1);
/// After this a start is left to the periodic passes.
const LOOK_FOR: Duration = Duration::from_secs(120);
/// As many ids as ECI's `DescribeContainerGroups` takes.
pub const IDS_PER_DESCRIBE: usize = crate::eci::DescribeContainerGroups::MAX_IDS;
/// Describes one look sends at once: with hundreds of groups starting (a scale-up at the
/// create quota), one describe of 20 per look left groups that already ran waiting their turn
/// for seconds (issue #21). Two a look at most ten looks a second stay well inside ECI's read
/// quota (about 33 a second) beside the passes.
pub const DESCRIBES_PER_LOOK: usize = 2;
/// Groups one look describes.
pub const IDS_PER_LOOK: usize = IDS_PER_DESCRIBE * DESCRIBES_PER_LOOK;

/// A group the node created and has not yet seen running.
#[derive(Debug, Clone)]
struct Starting {
    group_id: String,
    pod: ObjectRef<Pod>,
    created: Instant,
    next_look: Instant,
    gap: Duration,
    /// What it starts from, a metrics label (`crate::metrics::decision_labels`).
    cache: &'static str,
}

/// One group due a look: the pod's UID, the group and where the pod is in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The pod's UID.
    pub uid: String,
    /// Its container group.
    pub group_id: String,
    /// The pod in the reflector store.
    pub pod: ObjectRef<Pod>,
}

#[derive(Debug, Default)]
struct Inner {
    creating: HashSet<String>,
    starting: HashMap<String, Starting>,
    /// When each pod's group was created, kept after its start (until the pod goes): a pass
    /// whose describe was sent before then cannot tell the group is there.
    created: HashMap<String, Instant>,
}

/// Creates in flight and groups starting, by pod UID. Cheap to share.
#[derive(Debug, Default, Clone)]
pub struct Starts {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

/// Held while one pod's create runs; dropping it (also when the create is cancelled) lets the
/// next attempt in.
#[derive(Debug)]
pub struct CreateGuard {
    starts: Starts,
    uid: String,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        self.starts.inner.lock().creating.remove(&self.uid);
    }
}

impl Starts {
    /// The right to create the pod's group now, unless a create is in flight, the group is
    /// starting, or it was created after `described` — when the caller's describe of the
    /// node's groups was sent (`None`: the caller described nothing, so any group this node
    /// created counts).
    pub fn begin_create(&self, uid: &str, described: Option<Instant>) -> Option<CreateGuard> {
        let mut inner = self.inner.lock();
        let created_since = inner
            .created
            .get(uid)
            .is_some_and(|at| described.is_none_or(|d| *at >= d));
        if created_since
            || inner.starting.contains_key(uid)
            || !inner.creating.insert(uid.to_owned())
        {
            return None;
        }
        Some(CreateGuard {
            starts: self.clone(),
            uid: uid.to_owned(),
        })
    }

    /// Whether this node created the pod's group at or after `described` (so a describe sent
    /// then cannot show it).
    pub fn created_since(&self, uid: &str, described: Instant) -> bool {
        self.inner
            .lock()
            .created
            .get(uid)
            .is_some_and(|at| *at >= described)
    }

    /// Records a group just created for the pod; its first look is due shortly.
    pub fn created(
        &self,
        uid: &str,
        group_id: &str,
        pod: ObjectRef<Pod>,
        now: Instant,
        cache: &'static str,
    ) {
        let mut inner = self.inner.lock();
        inner.created.insert(uid.to_owned(), now);
        inner.starting.insert(
            uid.to_owned(),
            Starting {
                group_id: group_id.to_owned(),
                pod,
                created: now,
                next_look: now + FIRST_LOOK,
                gap: FIRST_LOOK,
                cache,
            },
        );
        self.changed.notify_one();
    }

    /// The pod's group has left its start (it runs, ended or failed): no more looks. Answers
    /// how long the start took and what it started from, the first time only.
    pub fn settled(&self, uid: &str) -> Option<(Duration, &'static str)> {
        self.inner
            .lock()
            .starting
            .remove(uid)
            .map(|s| (s.created.elapsed(), s.cache))
    }

    /// When the next look is due, if any group is starting.
    pub fn next_look(&self) -> Option<Instant> {
        self.inner
            .lock()
            .starting
            .values()
            .map(|s| s.next_look)
            .min()
    }

    /// Resolves when a group was added (the next look may now be sooner).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Up to [`IDS_PER_LOOK`] groups due a look at `now`, the longest-waiting first, each
    /// scheduled for its next look. Starts older than [`LOOK_FOR`] are dropped.
    pub fn take_due(&self, now: Instant) -> Vec<Due> {
        let mut inner = self.inner.lock();
        inner
            .starting
            .retain(|_, s| now.saturating_duration_since(s.created) < LOOK_FOR);
        let mut due: Vec<(&String, &mut Starting)> = inner
            .starting
            .iter_mut()
            .filter(|(_, s)| s.next_look <= now)
            .collect();
        due.sort_by_key(|(_, s)| s.next_look);
        due.truncate(IDS_PER_LOOK);
        due.into_iter()
            .map(|(uid, s)| {
                if now.saturating_duration_since(s.created) >= QUICK_LOOKS_FOR {
                    s.gap = s.gap.mul_f32(1.5).min(MAX_LOOK_GAP);
                }
                s.next_look = now + s.gap;
                Due {
                    uid: uid.clone(),
                    group_id: s.group_id.clone(),
                    pod: s.pod.clone(),
                }
            })
            .collect()
    }

    /// Forgets pods that are gone.
    pub fn retain_live(&self, live: &HashSet<String>) {
        let mut inner = self.inner.lock();
        inner.starting.retain(|uid, _| live.contains(uid));
        inner.created.retain(|uid, _| live.contains(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_ref(name: &str) -> ObjectRef<Pod> {
        ObjectRef::new(name).within("default")
    }

    #[test]
    fn one_create_at_a_time_and_none_after_success() {
        let starts = Starts::default();
        let t0 = Instant::now();
        let guard = starts
            .begin_create("u1", None)
            .expect("first create goes ahead");
        assert!(
            starts.begin_create("u1", None).is_none(),
            "a second create waits"
        );
        assert!(
            starts.begin_create("u2", None).is_some(),
            "other pods are independent"
        );
        drop(guard);
        let again = starts
            .begin_create("u1", None)
            .expect("a failed create may be retried");
        starts.created(
            "u1",
            "eci-1",
            pod_ref("a"),
            t0 + Duration::from_secs(1),
            "none",
        );
        drop(again);
        assert!(
            starts.begin_create("u1", Some(t0)).is_none(),
            "a pass whose describe predates the create must not create again"
        );
        starts.settled("u1");
        assert!(
            starts.begin_create("u1", Some(t0)).is_none(),
            "not even once the group has left its start"
        );
        assert!(starts.begin_create("u1", None).is_none(), "nor the watch");
        assert!(
            starts.created_since("u1", t0),
            "a pass of then knows nothing of it"
        );
        assert!(!starts.created_since("u1", t0 + Duration::from_secs(2)));
        assert!(
            starts
                .begin_create("u1", Some(t0 + Duration::from_secs(2)))
                .is_some(),
            "a describe sent after the create that shows no group: it is gone"
        );
    }

    #[test]
    fn looks_start_soon_then_space_out() {
        let starts = Starts::default();
        let t0 = Instant::now();
        starts.created("u1", "eci-1", pod_ref("a"), t0, "none");
        assert_eq!(starts.next_look(), Some(t0 + FIRST_LOOK));
        assert!(
            starts.take_due(t0).is_empty(),
            "not due before the first look"
        );

        let mut at = t0 + FIRST_LOOK;
        let mut gaps = Vec::new();
        for _ in 0..40 {
            let due = starts.take_due(at);
            assert_eq!(due.len(), 1);
            assert_eq!(due[0].group_id, "eci-1");
            let next = starts.next_look().expect("still starting");
            gaps.push(next - at);
            at = next;
        }
        let quick = gaps.iter().take_while(|g| **g == FIRST_LOOK).count();
        assert!(
            (25..=30).contains(&quick),
            "every 0.1 s for the first 3 s: {gaps:?}"
        );
        assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "gaps grow: {gaps:?}");
        assert_eq!(*gaps.last().unwrap(), MAX_LOOK_GAP);

        starts.settled("u1");
        assert_eq!(starts.next_look(), None);
    }

    #[test]
    fn a_look_takes_at_most_forty_the_longest_waiting_first() {
        let starts = Starts::default();
        let t0 = Instant::now();
        for i in 0..45u64 {
            let uid = format!("u{i:02}");
            let at = t0 + Duration::from_millis(i);
            starts.created(&uid, &format!("eci-{i:02}"), pod_ref(&uid), at, "none");
        }
        let now = t0 + Duration::from_secs(1);
        let first = starts.take_due(now);
        assert_eq!(first.len(), IDS_PER_LOOK);
        assert_eq!(first[0].uid, "u00");
        let second = starts.take_due(now);
        let rest: Vec<_> = second.iter().map(|d| d.uid.as_str()).collect();
        assert_eq!(rest, ["u40", "u41", "u42", "u43", "u44"]);
    }

    #[test]
    fn old_starts_and_gone_pods_are_dropped() {
        let starts = Starts::default();
        let t0 = Instant::now();
        starts.created("old", "eci-1", pod_ref("old"), t0, "none");
        starts.created("gone", "eci-2", pod_ref("gone"), t0 + LOOK_FOR, "none");
        starts.created("kept", "eci-3", pod_ref("kept"), t0 + LOOK_FOR, "none");
        starts.retain_live(&["old".to_owned(), "kept".to_owned()].into());
        let due = starts.take_due(t0 + LOOK_FOR + FIRST_LOOK);
        let uids: Vec<_> = due.iter().map(|d| d.uid.as_str()).collect();
        assert_eq!(uids, ["kept"]);
    }
}
