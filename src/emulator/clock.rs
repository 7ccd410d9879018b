//! The seams for time and identifiers, so tests can drive both.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use parking_lot::Mutex;

use jiff::{SignedDuration, Timestamp};
use rand::Rng as _;

/// Wall-clock time as the emulator sees it (timestamps, windows, expiry, throttling).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to. Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (or back, for a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock();
        *now = now.saturating_add(by).unwrap_or(*now);
    }

    /// Sets the clock.
    pub fn set(&self, to: Timestamp) {
        *self.now.lock() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }
}

/// Length of the random part of resource ids (`eci-` + 20 characters).
pub const ID_LEN: usize = 20;

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Where resource ids and request ids come from.
pub trait IdSource: Send + Sync + std::fmt::Debug {
    /// `prefix` + `-` + 20 characters of `[0-9a-z]`, e.g. `eci-2zeditzeoemfhqor4rf8`.
    fn resource_id(&self, prefix: &str) -> String;
    /// An uppercase UUID, e.g. `89945DD3-9072-47D0-A318-353284CFC7B3`.
    fn request_id(&self) -> String;
}

/// Random ids, as the cloud hands out.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn resource_id(&self, prefix: &str) -> String {
        let mut rng = rand::rng();
        let tail: String = (0..ID_LEN)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        format!("{prefix}-{tail}")
    }

    fn request_id(&self) -> String {
        uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
    }
}

/// Counting ids for tests: `eci-00000000000000000001`, then `…2`, in base 36.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl IdSource for SequentialIds {
    fn resource_id(&self, prefix: &str) -> String {
        let mut n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut tail = [b'0'; ID_LEN];
        for slot in tail.iter_mut().rev() {
            *slot = ALPHABET[usize::try_from(n % 36).unwrap_or(0)];
            n /= 36;
        }
        format!("{prefix}-{}", String::from_utf8_lossy(&tail))
    }

    fn request_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        format!("00000000-0000-4000-8000-{n:012X}")
    }
}

/// Whether `id` is `prefix-` followed by exactly 20 characters of `[0-9a-z]`.
pub fn is_resource_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|tail| {
            tail.len() == ID_LEN
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_cloud_format() {
        let ids = RandomIds;
        let a = ids.resource_id("eci");
        let b = ids.resource_id("eci");
        assert!(is_resource_id(&a, "eci"), "{a}");
        assert!(is_resource_id(&ids.resource_id("imc"), "imc"));
        assert_ne!(a, b);
        let request = ids.request_id();
        assert_eq!(request.len(), 36);
        assert_eq!(request, request.to_ascii_uppercase());
    }

    #[test]
    fn sequential_ids_count_in_base_36() {
        let ids = SequentialIds::default();
        assert_eq!(ids.resource_id("imc"), "imc-00000000000000000001");
        assert_eq!(ids.resource_id("eci"), "eci-00000000000000000002");
        assert!(is_resource_id(&ids.resource_id("eci"), "eci"));
    }

    #[test]
    fn id_format_check_rejects_near_misses() {
        assert!(!is_resource_id("eci-0000000000000000000", "eci")); // 19
        assert!(!is_resource_id("eci-000000000000000000000", "eci")); // 21
        assert!(!is_resource_id("eci-0000000000000000000A", "eci")); // uppercase
        assert!(!is_resource_id("imc-00000000000000000001", "eci"));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::UNIX_EPOCH);
        assert_eq!(clock.now(), Timestamp::UNIX_EPOCH);
        clock.advance(SignedDuration::from_secs(90));
        assert_eq!(clock.now().as_second(), 90);
    }
}
