//! The shaped link: one token bucket for every blob byte the agent downloads, and the counters
//! of bytes pulled per image, per image cache and per container group.
//!
//! An ECI instance reaches a public registry over a WAN; on one machine the local registry
//! answers at memory speed, which would hide what image caches are for. `--registry-bandwidth`
//! (e.g. `8MiB/s`) puts a [`Shaper`] in front of all downloads of the agent together; without it
//! downloads run unshaped (the default).
//!
//! The bucket starts empty and lends: a caller that asks for more tokens than the bucket holds
//! takes them as debt and sleeps until the debt is paid back. So `n` bytes through a fresh
//! shaper never take less than `n / rate`, whatever the chunk sizes, and concurrent downloads
//! share the rate roughly in order of arrival. The clock is tokio's, so tests can pause it.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
    num::NonZeroU64,
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use tokio::time::Instant;

/// Why a bandwidth setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum ShaperError {
    /// The text is not `<number><unit>[/s]` with a known unit, e.g. `8MiB/s` or `500kB/s`.
    #[error("cannot parse bandwidth {text:?}: expected e.g. 8MiB/s, 500KiB/s or 10MB/s")]
    ParseBandwidth {
        /// The text as given.
        text: String,
    },
    /// The rate is zero or below one byte per second; use no shaper for an unlimited link.
    #[error("bandwidth {text:?} is below 1 byte per second")]
    ZeroBandwidth {
        /// The text as given.
        text: String,
    },
}

/// A download rate in bytes per second, parsed from text such as `8MiB/s`.
///
/// Units: `B`, decimal `kB`/`KB`, `MB`, `GB` (powers of 1000) and binary `KiB`, `MiB`, `GiB`
/// (powers of 1024); the `/s` suffix is optional, the number may have a fraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bandwidth {
    bytes_per_second: NonZeroU64,
}

impl Bandwidth {
    /// A rate of `bytes_per_second`.
    pub fn from_bytes_per_second(bytes_per_second: NonZeroU64) -> Self {
        Self { bytes_per_second }
    }

    /// The rate in bytes per second.
    pub fn bytes_per_second(self) -> u64 {
        self.bytes_per_second.get()
    }
}

impl FromStr for Bandwidth {
    type Err = ShaperError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse_error = || ShaperError::ParseBandwidth { text: text.into() };
        let trimmed = text.trim();
        let body = trimmed.strip_suffix("/s").unwrap_or(trimmed).trim();
        let split = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (number, unit) = body.split_at(split);
        let number: f64 = number.parse().map_err(|_| parse_error())?;
        let multiplier: f64 = match unit.trim() {
            "" | "B" => 1.0,
            "kB" | "KB" | "k" | "K" => 1e3,
            "MB" | "M" => 1e6,
            "GB" | "G" => 1e9,
            "KiB" | "Ki" => 1024.0,
            "MiB" | "Mi" => 1024.0 * 1024.0,
            "GiB" | "Gi" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(parse_error()),
        };
        let rate = number * multiplier;
        if !rate.is_finite() || rate > u64::MAX as f64 {
            return Err(parse_error());
        }
        // Truncation is intended: a fraction of a byte per second is no rate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate = rate as u64;
        NonZeroU64::new(rate)
            .map(Self::from_bytes_per_second)
            .ok_or_else(|| ShaperError::ZeroBandwidth { text: text.into() })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B/s", self.bytes_per_second)
    }
}

// === impl Shaper ===

/// A token bucket of bytes shared by every download of one agent.
#[derive(Debug)]
pub struct Shaper {
    rate: Bandwidth,
    /// Tokens the bucket holds at most while idle (a tenth of a second of traffic, at least
    /// 64 KiB), so a pause does not buy a burst much faster than the link.
    capacity: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may pass now; negative while callers owe bytes they already took.
    tokens: f64,
    refilled_at: Instant,
}

impl Shaper {
    /// A shaper at `rate`, with an empty bucket.
    pub fn new(rate: Bandwidth) -> Self {
        #[allow(clippy::cast_precision_loss)] // rates far below 2^52 B/s
        let per_second = rate.bytes_per_second() as f64;
        Self {
            rate,
            capacity: (per_second / 10.0).max(64.0 * 1024.0),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// The configured rate.
    pub fn rate(&self) -> Bandwidth {
        self.rate
    }

    /// Waits until `bytes` more bytes may pass the link.
    pub async fn acquire(&self, bytes: u64) {
        #[allow(clippy::cast_precision_loss)]
        let (wanted, per_second) = (bytes as f64, self.rate.bytes_per_second() as f64);
        let wait = {
            let mut bucket = self.bucket.lock();
            let now = Instant::now();
            let earned = now.duration_since(bucket.refilled_at).as_secs_f64() * per_second;
            bucket.tokens = (bucket.tokens + earned).min(self.capacity);
            bucket.refilled_at = now;
            bucket.tokens -= wanted;
            if bucket.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-bucket.tokens / per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

// === impl PullStats ===

/// Who a download was for: an image-cache build or a container group pulling on its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PullScope {
    /// An image cache (`imc-…`) being built.
    Cache(String),
    /// A container group (`eci-…`) pulling images it has no snapshot for.
    Group(String),
}

/// Counters of bytes pulled from registries (blob bytes actually downloaded: configs and
/// layers; manifests and content-store hits count nothing). Cheap to clone and share.
#[derive(Clone, Debug, Default)]
pub struct PullStats {
    inner: Arc<Mutex<Counters>>,
}

#[derive(Debug, Default)]
struct Counters {
    counters: PullCounters,
    /// The live scopes that pulled each image: an image's series goes with the last of them.
    image_scopes: HashMap<String, HashSet<PullScope>>,
}

/// A copy of the counters at one moment, for agent stats and Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullCounters {
    /// Every byte pulled by this agent.
    pub total: u64,
    /// By normalised image reference (`docker.io/library/busybox:latest`).
    pub images: BTreeMap<String, u64>,
    /// By image-cache id.
    pub caches: BTreeMap<String, u64>,
    /// By container-group id.
    pub groups: BTreeMap<String, u64>,
}

impl PullStats {
    /// Counts `bytes` pulled for `image` on behalf of `scope`.
    pub fn record(&self, scope: &PullScope, image: &str, bytes: u64) {
        let mut inner = self.inner.lock();
        inner
            .image_scopes
            .entry(image.to_owned())
            .or_default()
            .insert(scope.clone());
        let counters = &mut inner.counters;
        counters.total += bytes;
        *counters.images.entry(image.to_owned()).or_default() += bytes;
        let by_scope = match scope {
            PullScope::Cache(id) => counters.caches.entry(id.clone()),
            PullScope::Group(id) => counters.groups.entry(id.clone()),
        };
        *by_scope.or_default() += bytes;
    }

    /// Drops the counter of `scope` (a deleted group or image cache), and the counter of
    /// every image only it pulled, so that the series of an agent's metrics follow what lives
    /// on it (cAdvisor drops the series of a removed container the same way). The total keeps
    /// counting.
    pub fn forget(&self, scope: &PullScope) {
        let mut inner = self.inner.lock();
        let Counters {
            counters,
            image_scopes,
        } = &mut *inner;
        match scope {
            PullScope::Cache(id) => counters.caches.remove(id),
            PullScope::Group(id) => counters.groups.remove(id),
        };
        image_scopes.retain(|image, scopes| {
            scopes.remove(scope);
            if scopes.is_empty() {
                counters.images.remove(image);
                return false;
            }
            true
        });
    }

    /// The counters now.
    pub fn snapshot(&self) -> PullCounters {
        self.inner.lock().counters.clone()
    }

    /// Bytes pulled for one scope so far (0 when it pulled nothing).
    pub fn scope_bytes(&self, scope: &PullScope) -> u64 {
        let counters = &self.inner.lock().counters;
        let map = match scope {
            PullScope::Cache(_) => &counters.caches,
            PullScope::Group(_) => &counters.groups,
        };
        let (PullScope::Cache(id) | PullScope::Group(id)) = scope;
        map.get(id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parses_bandwidths() {
        let rate = |s: &str| s.parse::<Bandwidth>().map(Bandwidth::bytes_per_second);
        assert_eq!(rate("8MiB/s").unwrap(), 8 * MIB);
        assert_eq!(rate("500KiB/s").unwrap(), 500 * 1024);
        assert_eq!(rate("10MB/s").unwrap(), 10_000_000);
        assert_eq!(rate("1.5MiB").unwrap(), 3 * MIB / 2);
        assert_eq!(rate(" 2 GiB/s ").unwrap(), 2 * 1024 * MIB);
        assert_eq!(rate("100").unwrap(), 100);
        assert_eq!(rate("250kB/s").unwrap(), 250_000);
        for bad in [
            "",
            "fast",
            "8XB/s",
            "MiB/s",
            "-1MiB/s",
            "1e400GB/s",
            "8 MiB per s",
        ] {
            assert!(
                matches!(rate(bad), Err(ShaperError::ParseBandwidth { .. })),
                "{bad:?} was accepted"
            );
        }
        assert!(matches!(
            rate("0MiB/s"),
            Err(ShaperError::ZeroBandwidth { .. })
        ));
        assert!(matches!(
            rate("0.1B/s"),
            Err(ShaperError::ZeroBandwidth { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn shaped_bytes_take_at_least_bytes_over_rate() {
        let shaper = Shaper::new("1MiB/s".parse().unwrap());
        let start = Instant::now();
        // 4 MiB in uneven chunks, some larger than the bucket.
        let mut sent = 0;
        for chunk in [1u64, 300_000, 16 * 1024, 2 * MIB, 1_000_000]
            .into_iter()
            .cycle()
        {
            if sent >= 4 * MIB {
                break;
            }
            let chunk = chunk.min(4 * MIB - sent);
            shaper.acquire(chunk).await;
            sent += chunk;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
        // The shaper does not slow down more than its rate asks for.
        assert!(elapsed <= Duration::from_millis(4100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_downloads_share_the_rate() {
        let shaper = Arc::new(Shaper::new("1MiB/s".parse().unwrap()));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let shaper = shaper.clone();
                tokio::spawn(async move {
                    for _ in 0..8 {
                        shaper.acquire(64 * 1024).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // 4 × 8 × 64 KiB = 2 MiB through one 1 MiB/s link.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_buys_only_a_small_burst() {
        let shaper = Shaper::new("1MiB/s".parse().unwrap());
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        shaper.acquire(2 * MIB).await;
        // At most a tenth of a second of traffic was saved up during the minute of idleness.
        assert!(start.elapsed() >= Duration::from_millis(1900));
    }

    #[test]
    fn counts_bytes_per_image_cache_and_group() {
        let stats = PullStats::default();
        let cache = PullScope::Cache("imc-1".into());
        let group = PullScope::Group("eci-1".into());
        stats.record(&cache, "docker.io/library/busybox:latest", 100);
        stats.record(&cache, "example.com/app:v1", 50);
        stats.record(&group, "docker.io/library/busybox:latest", 7);
        let counters = stats.snapshot();
        assert_eq!(counters.total, 157);
        assert_eq!(counters.images["docker.io/library/busybox:latest"], 107);
        assert_eq!(counters.caches["imc-1"], 150);
        assert_eq!(counters.groups["eci-1"], 7);
        assert_eq!(stats.scope_bytes(&cache), 150);
        assert_eq!(stats.scope_bytes(&PullScope::Group("eci-2".into())), 0);
    }

    #[test]
    fn forgets_a_deleted_scope_and_the_images_only_it_pulled() {
        let stats = PullStats::default();
        let cache = PullScope::Cache("imc-1".into());
        let group = PullScope::Group("eci-1".into());
        stats.record(&cache, "busybox", 100);
        stats.record(&group, "busybox", 7);
        stats.record(&group, "nginx", 5);
        stats.forget(&group);
        let counters = stats.snapshot();
        assert!(counters.groups.is_empty());
        assert_eq!(counters.images.keys().collect::<Vec<_>>(), ["busybox"]);
        assert_eq!(counters.total, 112);
        stats.forget(&cache);
        let counters = stats.snapshot();
        assert!(counters.caches.is_empty() && counters.images.is_empty());
        assert!(stats.inner.lock().image_scopes.is_empty());
    }
}
