//! Answers that the pods created together share for a moment: the Services of a namespace
//! (their link variables) and its `kube-root-ca.crt` ConfigMap (in every pod's service-account
//! volume). In a scale-up each pod read both again, two of its sixteen API-server requests
//! (BENCHMARKS.md, "Peer"), for answers that do not change between pods created a few
//! milliseconds apart. A kubelet reads Services from an informer and can read ConfigMaps
//! through a TTL cache (its `configMapAndSecretChangeDetectionStrategy: Cache`); here an
//! answer is reused for [`FRESH_FOR`], so a pod sees them at most that much older than a read
//! of its own would.

use std::{collections::HashMap, time::Duration};

use parking_lot::Mutex;
use tokio::time::Instant;

/// How long an answer is reused.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);
/// Keys past which a new answer first drops the stale ones (namespaces on one node).
const PRUNE_PAST: usize = 256;

/// Recent answers by key (a namespace), each reused while it is fresh.
#[derive(Debug)]
pub(super) struct Recent<V> {
    fresh_for: Duration,
    answers: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Self {
            fresh_for: FRESH_FOR,
            answers: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Recent<V> {
    /// The answer for `key` read within [`FRESH_FOR`] of `now`, if any.
    pub(super) fn get(&self, key: &str, now: Instant) -> Option<V> {
        let answers = self.answers.lock();
        let (at, value) = answers.get(key)?;
        (now.saturating_duration_since(*at) < self.fresh_for).then(|| value.clone())
    }

    /// Keeps `value`, read at `at`, for `key`.
    pub(super) fn put(&self, key: &str, value: V, at: Instant) {
        let mut answers = self.answers.lock();
        if answers.len() >= PRUNE_PAST {
            let fresh_for = self.fresh_for;
            answers.retain(|_, (read, _)| at.saturating_duration_since(*read) < fresh_for);
        }
        answers.insert(key.to_owned(), (at, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_reused_while_fresh_and_only_for_its_key() {
        let recent = Recent::default();
        let t0 = Instant::now();
        recent.put("a", 1, t0);
        assert_eq!(recent.get("a", t0 + FRESH_FOR / 2), Some(1));
        assert_eq!(recent.get("b", t0), None);
        assert_eq!(recent.get("a", t0 + FRESH_FOR), None, "stale");
        recent.put("a", 2, t0 + FRESH_FOR);
        assert_eq!(recent.get("a", t0 + FRESH_FOR), Some(2));
    }

    #[test]
    fn stale_answers_are_dropped_once_there_are_many() {
        let recent = Recent::default();
        let t0 = Instant::now();
        for i in 0..PRUNE_PAST {
            recent.put(&format!("ns-{i}"), i, t0);
        }
        let later = t0 + FRESH_FOR * 2;
        recent.put("new", 0, later);
        assert_eq!(recent.answers.lock().len(), 1);
    }
}
