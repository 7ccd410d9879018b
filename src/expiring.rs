//! Answers kept for a while: the kubelet API's token and access reviews (`kubelet/auth.rs`,
//! each answer for its own time) and the reads shared by the pods created together
//! (`pods/sources.rs`). Past its size limit, a new entry first drops the expired ones, and
//! every one if none has expired, so a cache never grows without bound.

use std::{borrow::Borrow, collections::HashMap, hash::Hash};

use parking_lot::Mutex;
use tokio::time::Instant;

/// Values by key, each until its own deadline.
#[derive(Debug)]
pub struct Expiring<K, V> {
    limit: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> Expiring<K, V> {
    /// An empty cache of at most about `limit` entries.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key`, unless it expired by `now`.
    pub fn get<Q>(&self, key: &Q, now: Instant) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock();
        let (value, until) = entries.get(key)?;
        (*until > now).then(|| value.clone())
    }

    /// Keeps `value` for `key` until `until`; `now` decides what has expired.
    pub fn insert(&self, key: K, value: V, now: Instant, until: Instant) {
        let mut entries = self.entries.lock();
        if entries.len() >= self.limit {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.limit {
                entries.clear();
            }
        }
        entries.insert(key, (value, until));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const TTL: Duration = Duration::from_secs(1);

    #[test]
    fn a_value_is_kept_until_its_deadline_and_only_for_its_key() {
        let cache = Expiring::new(8);
        let t0 = Instant::now();
        cache.insert("a".to_owned(), 1, t0, t0 + TTL);
        assert_eq!(cache.get("a", t0 + TTL / 2), Some(1));
        assert_eq!(cache.get("b", t0), None);
        assert_eq!(cache.get("a", t0 + TTL), None, "expired");
        cache.insert("a".to_owned(), 2, t0 + TTL, t0 + TTL * 2);
        assert_eq!(cache.get("a", t0 + TTL), Some(2));
    }

    #[test]
    fn at_its_limit_the_cache_drops_what_expired_then_everything() {
        let cache = Expiring::new(4);
        let t0 = Instant::now();
        for i in 0..3 {
            cache.insert(i, i, t0, t0 + TTL);
        }
        cache.insert(3, 3, t0, t0 + TTL * 10);
        // Full: the three that expired go, the live one stays.
        cache.insert(4, 4, t0 + TTL * 2, t0 + TTL * 3);
        assert_eq!(cache.entries.lock().len(), 2);
        assert_eq!(cache.get(&3, t0 + TTL * 2), Some(3));
        // Full of live entries: all go.
        cache.insert(5, 5, t0 + TTL * 2, t0 + TTL * 3);
        cache.insert(6, 6, t0 + TTL * 2, t0 + TTL * 3);
        cache.insert(7, 7, t0 + TTL * 2, t0 + TTL * 3);
        assert_eq!(cache.entries.lock().len(), 1);
    }
}
