//! The retry policy of the client: how many attempts, and how long to wait between them.
//!
//! Exponential backoff with "equal jitter": the n-th wait is drawn uniformly from
//! `[d/2, d]` where `d = min(max_backoff, initial_backoff × multiplier^(n-1))`, so callers that
//! were throttled together spread out, yet none retries immediately. A server hint
//! (`x-ratelimit-user-api: TimeLeft:…`) raises the wait to at least that hint, still capped.
//! Which errors are retried is decided by [`super::Error::is_retryable`].

use std::time::Duration;

use rand::Rng as _;

/// How often and how patiently a failed call is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first; `1` disables retries.
    pub max_attempts: u32,
    /// Base wait before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any single wait.
    pub max_backoff: Duration,
    /// Growth factor of the base wait per retry.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    /// Six attempts, 200 ms doubling up to 10 s: about 6 s of patience in the median case,
    /// enough to ride out a burst of throttling without stalling a controller for long.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry), given an optional server
    /// hint.
    pub fn backoff(&self, retry: u32, hint: Option<Duration>) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        let cap = self.max_backoff.as_secs_f64();
        let d = if base.is_finite() { base.min(cap) } else { cap };
        let jittered = if d > 0.0 {
            rand::rng().random_range(d / 2.0..=d)
        } else {
            0.0
        };
        let wait = Duration::from_secs_f64(jittered.max(0.0));
        match hint {
            Some(h) => wait.max(h).min(self.max_backoff),
            None => wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            for (retry, lo, hi) in [(1, 50, 100), (2, 100, 200), (3, 200, 400), (8, 500, 1000)] {
                let d = p.backoff(retry, None);
                assert!(
                    d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi),
                    "retry {retry}: {d:?}"
                );
                if retry == 1 {
                    seen.insert(d);
                }
            }
        }
        // Jitter: two hundred draws are not all the same wait.
        assert!(seen.len() > 10);
        // A huge retry count neither overflows nor exceeds the cap.
        assert!(p.backoff(u32::MAX, None) <= p.max_backoff);
    }

    #[test]
    fn server_hint_raises_the_wait_within_the_cap() {
        let p = RetryPolicy::default();
        assert!(p.backoff(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(p.backoff(1, Some(Duration::from_secs(60))), p.max_backoff);
    }
}
