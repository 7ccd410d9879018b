//! Per-action request quotas, answered with `Throttling.Api` like the cloud's flow control.
//!
//! The reference documents no numbers; issue 3 gives them: create/delete (and the other
//! mutating actions) a burst of 100 refilled at 20 per second, describe-style reads 2000 per
//! minute (a bucket of 2000 refilled at 2000/60 per second). Each action has its own bucket.

use std::collections::HashMap;

use parking_lot::Mutex;

use jiff::Timestamp;

use super::error::ApiError;

/// One token bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Most requests in a burst.
    pub burst: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

/// The quotas of every action.
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    /// Create/delete/update/restart/exec and the image-cache writes.
    pub write: Quota,
    /// Describe*, ListUsage, logs, metrics.
    pub read: Quota,
    /// No throttling at all.
    pub disabled: bool,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            write: Quota {
                burst: 100.0,
                per_second: 20.0,
            },
            read: Quota {
                burst: 2000.0,
                per_second: 2000.0 / 60.0,
            },
            disabled: false,
        }
    }
}

impl Quotas {
    /// The quota of `action`.
    pub fn of(&self, action: &str) -> Quota {
        if action.starts_with("Describe") || action.starts_with("List") {
            self.read
        } else {
            self.write
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// Token buckets per action.
#[derive(Debug)]
pub struct Throttle {
    quotas: Quotas,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    /// Buckets for `quotas`, all full.
    pub fn new(quotas: Quotas) -> Self {
        Self {
            quotas,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `action` at `now`.
    ///
    /// # Errors
    /// `Throttling.Api` (400) with the milliseconds until a token is available.
    pub fn take(&self, action: &str, now: Timestamp) -> Result<(), ApiError> {
        if self.quotas.disabled {
            return Ok(());
        }
        let quota = self.quotas.of(action);
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(action.to_owned()).or_insert(Bucket {
            tokens: quota.burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * quota.per_second).min(quota.burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - bucket.tokens) / quota.per_second * 1000.0).ceil();
        let mut error = ApiError::bad_request(
            "Throttling.Api",
            format!("Request was denied due to api flow control of {action}."),
        );
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // small positive
        {
            error.retry_after_ms = Some(wait_ms.max(1.0) as u64);
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    #[test]
    fn a_burst_of_writes_is_cut_at_100_and_refills_at_20_per_second() {
        let throttle = Throttle::new(Quotas::default());
        let t0 = Timestamp::UNIX_EPOCH;
        for _ in 0..100 {
            throttle
                .take("CreateContainerGroup", t0)
                .expect("within burst");
        }
        let error = throttle
            .take("CreateContainerGroup", t0)
            .expect_err("101st");
        assert_eq!(error.code, "Throttling.Api");
        assert_eq!(error.retry_after_ms, Some(50));
        // Another action has its own bucket.
        throttle
            .take("DeleteContainerGroup", t0)
            .expect("own bucket");
        // 100 ms later two tokens are back, not three.
        let t1 = t0 + SignedDuration::from_millis(100);
        throttle
            .take("CreateContainerGroup", t1)
            .expect("refilled 1");
        throttle
            .take("CreateContainerGroup", t1)
            .expect("refilled 2");
        assert!(throttle.take("CreateContainerGroup", t1).is_err());
    }

    #[test]
    fn describes_allow_2000_per_minute() {
        let throttle = Throttle::new(Quotas::default());
        let t0 = Timestamp::UNIX_EPOCH;
        for _ in 0..2000 {
            throttle
                .take("DescribeContainerGroups", t0)
                .expect("within quota");
        }
        assert!(throttle.take("DescribeContainerGroups", t0).is_err());
        let later = t0 + SignedDuration::from_secs(60);
        for _ in 0..2000 {
            throttle
                .take("DescribeContainerGroups", later)
                .expect("a minute later");
        }
    }

    #[test]
    fn disabled_quotas_never_throttle() {
        let throttle = Throttle::new(Quotas {
            disabled: true,
            ..Quotas::default()
        });
        for _ in 0..500 {
            throttle
                .take("CreateContainerGroup", Timestamp::UNIX_EPOCH)
                .expect("off");
        }
    }
}
