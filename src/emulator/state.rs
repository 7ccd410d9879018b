//! The emulator's state: container groups, image caches and `ClientToken` records.
//!
//! Plain data behind one lock (`super::Core::store`): every handler validates first, then
//! mutates under the lock without awaiting, so a request either changes state completely or not
//! at all. The whole store serialises to JSON for `--data-dir`.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::spec::{CacheSpec, GroupSpec};

/// Most events kept per resource (DescribeContainerGroups returns at most 50).
pub const MAX_EVENTS: usize = 50;
/// How long a failed image cache is kept (reference §3.7: one day).
pub const FAILED_CACHE_TTL: SignedDuration = SignedDuration::from_hours(24);
/// How long a `ScheduleFailed` group is kept (reference §2.3: 24 h).
pub const SCHEDULE_FAILED_TTL: SignedDuration = SignedDuration::from_hours(24);
/// How long every terminal group is kept before only the newest [`TERMINAL_KEPT`] remain.
pub const TERMINAL_TTL: SignedDuration = SignedDuration::from_hours(1);
/// Terminal groups kept per region after [`TERMINAL_TTL`].
pub const TERMINAL_KEPT: usize = 100;
/// How long a `ClientToken` is remembered (the reference gives no window; a day covers every
/// retry schedule while bounding the table).
pub const TOKEN_TTL: SignedDuration = SignedDuration::from_hours(24);

/// Container-group status (reference §2.3): the client's type, so the emulator answers with
/// exactly the names the client reads. The emulator never enters `Unknown`.
pub use crate::eci::ContainerGroupStatus as GroupStatus;
/// Image-cache status (reference §3.3): the client's type, as [`GroupStatus`].
pub use crate::eci::ImageCacheStatus as CacheStatus;

/// One event of a resource (`Events[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// How often it happened.
    pub count: u32,
    /// `Normal` or `Warning`.
    pub kind: String,
    /// `<resource name>.<hex>`.
    pub name: String,
    /// PascalCase reason.
    pub reason: String,
    /// Text.
    pub message: String,
    /// First occurrence.
    pub first: Timestamp,
    /// Last occurrence.
    pub last: Timestamp,
}

/// Adds an event, keeping at most [`MAX_EVENTS`]. A repeat (same type, reason and message) of
/// a kept event is folded into it: its count grows and its last time moves, as Kubernetes
/// aggregates the kubelet's events (a container restarting shows `Started` ×N, not N events).
pub fn push_event(
    events: &mut Vec<Event>,
    resource: &str,
    kind: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    if let Some(same) = events
        .iter_mut()
        .find(|e| e.kind == kind && e.reason == reason && e.message == message)
    {
        same.count += 1;
        same.last = now;
        return;
    }
    let name = format!(
        "{resource}.{:016x}",
        now.as_nanosecond() as u128 as u64 ^ events.len() as u64
    );
    events.push(Event {
        count: 1,
        kind: kind.to_owned(),
        name,
        reason: reason.to_owned(),
        message,
        first: now,
        last: now,
    });
    if events.len() > MAX_EVENTS {
        let extra = events.len() - MAX_EVENTS;
        events.drain(..extra);
    }
}

/// A container's state (`CurrentState`/`PreviousState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContainerState {
    /// `Waiting`, `Running`, `Terminated`, or empty for none.
    pub state: String,
    /// Detail.
    pub detail_status: String,
    /// Exit code.
    pub exit_code: i32,
    /// Signal.
    pub signal: i32,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// Start.
    pub start_time: Option<Timestamp>,
    /// Finish.
    pub finish_time: Option<Timestamp>,
}

/// What is known of one container at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContainerRuntime {
    /// Name.
    pub name: String,
    /// The image the machine runs it from (empty until the machine reported it): during an
    /// update, the old image until the container was made again from the new one.
    #[serde(default)]
    pub image: String,
    /// Passed readiness.
    pub ready: bool,
    /// Restarts.
    pub restart_count: i32,
    /// Now.
    pub current: ContainerState,
    /// Before the last restart.
    pub previous: ContainerState,
}

impl ContainerRuntime {
    /// A container that waits for `reason`.
    pub fn waiting(name: &str, reason: &str) -> Self {
        Self {
            name: name.to_owned(),
            current: ContainerState {
                state: "Waiting".into(),
                reason: reason.into(),
                ..ContainerState::default()
            },
            ..Self::default()
        }
    }
}

/// A container group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `eci-…`.
    pub id: String,
    /// Region.
    pub region_id: String,
    /// The requested spec.
    pub spec: GroupSpec,
    /// Status.
    pub status: GroupStatus,
    /// When the status last changed.
    pub status_since: Timestamp,
    /// Created.
    pub creation_time: Timestamp,
    /// Reached Succeeded.
    pub succeeded_time: Option<Timestamp>,
    /// Reached Failed/ScheduleFailed.
    pub failed_time: Option<Timestamp>,
    /// Reached Expired.
    pub expired_time: Option<Timestamp>,
    /// `IntranetIp`.
    pub intranet_ip: String,
    /// The zone it landed in.
    pub zone_id: String,
    /// Events.
    pub events: Vec<Event>,
    /// Containers at run time, in spec order.
    pub containers: Vec<ContainerRuntime>,
    /// Init containers at run time.
    pub init_containers: Vec<ContainerRuntime>,
    /// The image cache it was created from (explicit or matched).
    pub image_cache_id: Option<String>,
    /// The snapshot of that cache at creation time.
    pub snapshot_id: Option<String>,
    /// Bumped by every restart/update/delete so an older lifecycle task stops.
    pub generation: u64,
}

impl Group {
    /// Moves to `status` (recording terminal times) and returns whether it changed.
    pub fn set_status(&mut self, status: GroupStatus, now: Timestamp) -> bool {
        if self.status == status {
            return false;
        }
        self.status = status;
        self.status_since = now;
        match status {
            GroupStatus::Succeeded => self.succeeded_time = Some(now),
            GroupStatus::Failed | GroupStatus::ScheduleFailed => self.failed_time = Some(now),
            GroupStatus::Expired => self.expired_time = Some(now),
            _ => {}
        }
        true
    }

    /// Adds an event to the group.
    pub fn event(&mut self, kind: &str, reason: &str, message: impl Into<String>, now: Timestamp) {
        push_event(
            &mut self.events,
            &self.spec.name,
            kind,
            reason,
            message.into(),
            now,
        );
    }
}

/// An image cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cache {
    /// `imc-…`.
    pub id: String,
    /// Region.
    pub region_id: String,
    /// The spec in force (or being built).
    pub spec: CacheSpec,
    /// Status.
    pub status: CacheStatus,
    /// Build progress, 0–100.
    pub progress: u8,
    /// `s-…` once a snapshot exists.
    pub snapshot_id: Option<String>,
    /// The local snapshot of an instant (Flash) cache while its regular one is made.
    #[serde(default)]
    pub flash_snapshot_id: Option<String>,
    /// The temporary build instance (`eci-…`; not listed as a group).
    pub container_group_id: String,
    /// Created.
    pub creation_time: Timestamp,
    /// Expiry (retention, or 24 h after a failure).
    pub expire_date_time: Option<Timestamp>,
    /// Last time a group was created from it.
    pub last_matched_time: Option<Timestamp>,
    /// Events.
    pub events: Vec<Event>,
    /// Size in bytes of each image of the snapshot, by image reference.
    pub image_sizes: BTreeMap<String, u64>,
    /// Bumped by every update/delete so an older build task stops.
    pub generation: u64,
    /// Made by the service on an `AutoMatchImageCache` miss, not by CreateImageCache.
    #[serde(default)]
    pub automatic: bool,
}

impl Cache {
    /// Adds an event to the cache.
    pub fn event(&mut self, kind: &str, reason: &str, message: impl Into<String>, now: Timestamp) {
        push_event(
            &mut self.events,
            &self.spec.name,
            kind,
            reason,
            message.into(),
            now,
        );
    }

    /// Usable for creating groups: `Ready` and not expired.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.status == CacheStatus::Ready && self.expire_date_time.is_none_or(|t| t > now)
    }
}

/// A remembered `ClientToken`: what the first request looked like and what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Fingerprint of the business parameters of the first request: `name=<hex HMAC of the
    /// value>` pairs, so the saved state holds no parameter value (registry passwords).
    pub fingerprint: String,
    /// Its answer without `RequestId`.
    pub answer: serde_json::Value,
    /// When it was first used.
    pub at: Timestamp,
}

/// Everything the emulator knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Store {
    /// Container groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Image caches by id.
    pub caches: BTreeMap<String, Cache>,
    /// `ClientToken` records by `Action` + `\n` + token.
    pub tokens: HashMap<String, TokenRecord>,
    /// Counter for intranet addresses.
    pub next_ip: u32,
}

/// What a purge removed, so the caller can release agent resources.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Snapshots of expired caches.
    pub snapshots: Vec<String>,
    /// Ids of removed caches.
    pub caches: Vec<String>,
    /// Ids of removed groups.
    pub groups: Vec<String>,
    /// How many `ClientToken` records expired.
    pub tokens: usize,
}

impl Purged {
    /// Whether nothing was removed (the store is unchanged).
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
            && self.caches.is_empty()
            && self.groups.is_empty()
            && self.tokens == 0
    }
}

impl Store {
    /// A fresh `172.16.x.y` address.
    pub fn allocate_ip(&mut self) -> String {
        self.next_ip += 1;
        let n = self.next_ip;
        format!("172.16.{}.{}", (n / 250) % 250, n % 250 + 1)
    }

    /// Removes what has expired at `now`: caches past `ExpireDateTime`, `ScheduleFailed` groups
    /// after 24 h, and terminal groups older than 1 h beyond the newest 100 per region.
    pub fn purge(&mut self, now: Timestamp) -> Purged {
        let mut purged = Purged::default();
        let tokens = self.tokens.len();
        self.tokens.retain(|_, t| {
            t.at.saturating_add(TOKEN_TTL)
                .is_ok_and(|until| until > now)
        });
        purged.tokens = tokens - self.tokens.len();
        self.caches.retain(|id, cache| {
            let expired = cache.expire_date_time.is_some_and(|t| t <= now);
            if expired {
                purged.caches.push(id.clone());
                purged.snapshots.extend(cache.snapshot_id.clone());
            }
            !expired
        });
        self.groups.retain(|id, group| {
            let gone = group.status == GroupStatus::ScheduleFailed
                && group
                    .status_since
                    .saturating_add(SCHEDULE_FAILED_TTL)
                    .is_ok_and(|t| t <= now);
            if gone {
                purged.groups.push(id.clone());
            }
            !gone
        });
        // Terminal groups past the hour, newest first, per region: keep the first 100.
        let mut old: Vec<(&String, &str, Timestamp)> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                g.status.is_terminal()
                    && g.status_since
                        .saturating_add(TERMINAL_TTL)
                        .is_ok_and(|t| t <= now)
            })
            .map(|(id, g)| (id, g.region_id.as_str(), g.status_since))
            .collect();
        old.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| b.0.cmp(a.0)));
        let mut per_region: HashMap<&str, usize> = HashMap::new();
        let mut drop = Vec::new();
        for (id, region, _) in old {
            let seen = per_region.entry(region).or_default();
            *seen += 1;
            if *seen > TERMINAL_KEPT {
                drop.push(id.clone());
            }
        }
        for id in drop {
            self.groups.remove(&id);
            purged.groups.push(id);
        }
        purged
    }
}

#[cfg(test)]
mod tests;
