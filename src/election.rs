//! Leader election through a `coordination.k8s.io/v1` Lease, with the semantics of client-go's
//! `leaderelection` package, written once for every part that must have a single writer: the
//! virtual node's writes (Node, node Lease, pod statuses, cloud calls) and the ImageCache
//! controller.
//!
//! # How a term works
//! - A candidate reads the Lease every `retry_period`. It never compares a timestamp in the
//!   Lease with its own clock: it remembers the record it last saw and *when it saw it change*
//!   (a monotonic instant), and takes the Lease only when the record has not changed for the
//!   holder's `leaseDurationSeconds`. Clocks that disagree (a follower running an hour ahead)
//!   therefore cannot make a live lease look expired.
//! - Writes carry the `resourceVersion` that was read, so two candidates cannot both win one
//!   term: the second gets 409 Conflict.
//! - The leader renews every `retry_period`. Each renewal must succeed within `renew_deadline`
//!   of the start of the last successful one; when it does not, the leader stops leading at
//!   once, *before* any follower can have seen the record unchanged for a whole lease duration
//!   (`renew_deadline < lease_duration`; the difference is the margin for the work to stop).
//! - On shutdown the holder releases the Lease (empty holder, duration 1 s), so a standby takes
//!   over at its next read rather than after a lease duration.
//!
//! # Caveat
//! The margin assumes the two processes' clocks *run* at the same rate (not that they agree),
//! as client-go does; a process frozen for longer than the margin between its deadline check and
//! a write may still overlap. Callers keep their writes idempotent (ClientTokens, tags,
//! resourceVersions), so an overlap cannot duplicate a container group or a cache.

use std::{future::Future, sync::Arc, time::Duration};

use futures::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use parking_lot::Mutex;
use tokio::{sync::watch, time::Instant};

/// Where the Lease lives, who asks for it, and the timing of terms.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This process, written as `holderIdentity`: unique among the candidates (a pod name).
    pub identity: String,
    /// How long a follower waits, after it last saw the record change, before it takes over.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// Time between two attempts, of candidates and of the leader.
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// Client-go's defaults (as kube-controller-manager's): 15 s lease, 10 s renew deadline,
    /// 2 s between attempts.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Whether the timing can keep its promise: `retry_period < renew_deadline <
    /// lease_duration`, and an identity to write.
    ///
    /// # Errors
    /// A sentence naming what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.identity.is_empty() {
            return Err("the leader election identity is empty".into());
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?}), or two leaders can overlap",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(format!(
                "the retry period ({:?}) must be above zero and shorter than the renew deadline ({:?})",
                self.retry_period, self.renew_deadline
            ));
        }
        Ok(())
    }

    /// The lease duration as the record holds it, whole seconds rounded *up*: a follower waits
    /// at least as long as configured, never less (rounding down could let it take over before
    /// the leader's renew deadline).
    fn lease_seconds(&self) -> i32 {
        let whole =
            self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(whole.max(1)).unwrap_or(i32::MAX)
    }
}

/// Reading or writing the Lease failed (not: someone else holds it).
#[derive(Debug, thiserror::Error)]
#[error("cannot {operation} lease {namespace}/{name}")]
pub struct ElectionError {
    /// `get`, `create` or `replace`.
    operation: &'static str,
    namespace: String,
    name: String,
    #[source]
    source: Box<kube::Error>,
}

/// The wall clock written into the Lease (`acquireTime`, `renewTime`) for people and tools to
/// read; never used to decide anything. Replaceable so tests can skew it.
pub type WallClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The record last read, and the monotonic instant it was first seen in that state.
#[derive(Debug)]
struct Observed {
    spec: LeaseSpec,
    since: Instant,
}

/// One candidate: reads and writes the Lease (see the module documentation).
pub struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    wall: WallClock,
    observed: Option<Observed>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .field("observed", &self.observed)
            .finish_non_exhaustive()
    }
}

impl ElectionError {
    /// Whether the API server refused the Lease outright (403: no RBAC for it; 404: no such
    /// namespace): a setting to fix, not a passing failure.
    pub fn refused(&self) -> bool {
        matches!(&*self.source, kube::Error::Api(status) if matches!(status.code, 403 | 404))
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl Elector {
    /// A candidate for `config`'s Lease, writing the system clock into it.
    pub fn new(kube: kube::Client, config: ElectionConfig) -> Self {
        Self::with_wall_clock(kube, config, Arc::new(Timestamp::now))
    }

    /// A candidate that writes `wall`'s time into the Lease (tests skew it).
    pub fn with_wall_clock(kube: kube::Client, config: ElectionConfig, wall: WallClock) -> Self {
        Self {
            api: Api::namespaced(kube, &config.namespace),
            config,
            wall,
            observed: None,
        }
    }

    /// The settings of this candidate.
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// The holder of the record last read, if any.
    pub fn observed_holder(&self) -> Option<&str> {
        self.observed
            .as_ref()
            .and_then(|o| o.spec.holder_identity.as_deref())
            .filter(|h| !h.is_empty())
    }

    fn error(&self, operation: &'static str) -> impl FnOnce(kube::Error) -> ElectionError + '_ {
        move |source| ElectionError {
            operation,
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source: Box::new(source),
        }
    }

    fn observe(&mut self, spec: &LeaseSpec, now: Instant) {
        if self.observed.as_ref().is_none_or(|o| &o.spec != spec) {
            self.observed = Some(Observed {
                spec: spec.clone(),
                since: now,
            });
        }
    }

    /// One attempt: takes the Lease if it is free or has not changed for a lease duration, or
    /// renews it if this candidate holds it. `Ok(false)`: someone else holds it, or won the
    /// race for it.
    ///
    /// # Errors
    /// [`ElectionError`] when the API server cannot be read or written.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, ElectionError> {
        let now = Instant::now();
        let wall = MicroTime((self.wall)());
        let identity = self.config.identity.clone();
        let seconds = self.config.lease_seconds();
        let existing = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(self.error("get"))?;
        let Some(mut lease) = existing else {
            let spec = LeaseSpec {
                holder_identity: Some(identity),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(wall.clone()),
                renew_time: Some(wall),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observe(&spec, now);
                    Ok(true)
                }
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(self.error("create")(e)),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        self.observe(&current, now);
        let holder = current.holder_identity.as_deref().filter(|h| !h.is_empty());
        let mine = holder == Some(identity.as_str());
        if !mine && holder.is_some() {
            let held_for = Duration::from_secs(
                u64::try_from(current.lease_duration_seconds.unwrap_or(seconds)).unwrap_or(0),
            );
            let since = self.observed.as_ref().map_or(now, |o| o.since);
            if now < since + held_for {
                return Ok(false);
            }
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if !mine {
            spec.holder_identity = Some(identity);
            spec.acquire_time = Some(wall.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(wall);
        let written = spec.clone();
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observe(&written, now);
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.error("replace")(e)),
        }
    }

    /// Gives the Lease up if this candidate holds it (an empty holder and a one-second
    /// duration), so a standby takes over at its next attempt. Best effort.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let wall = MicroTime((self.wall)());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(wall);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.config.name, identity = %self.config.identity, "leader lease released")
            }
            Err(error) => tracing::debug!(
                error = &error as &dyn std::error::Error,
                "cannot release the leader lease"
            ),
        }
    }
}

/// What a campaign tells the parts it gates: whether this process leads now, and the progress
/// of its attempts (for liveness).
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    last_attempt: watch::Receiver<Option<Attempted>>,
    /// Until when the current term is safe to act in (`None` inside: no term); `None`: a
    /// process without election, always safe.
    valid_until: Option<ValidUntil>,
}

/// The outcome of the latest attempt and when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempted {
    /// When the attempt ended.
    pub at: Instant,
    /// Whether the API server answered it (taken, renewed or held by another).
    pub answered: bool,
    /// Since when every attempt has been refused ([`ElectionError::refused`]), if the latest was.
    pub refused_since: Option<Instant>,
}

/// Until when a term may act: both clocks must agree. The monotonic one is what the term is
/// measured in; the wall clock also moves while the machine sleeps or a VM is paused (the
/// monotonic one may not), so a process woken from either does not write on an old term.
type ValidUntil = Arc<Mutex<Option<(Instant, Timestamp)>>>;

impl Leadership {
    /// A leadership that is always held: for a process that runs without election.
    pub fn always() -> Self {
        let (_tx, leading) = watch::channel(true);
        let (_tx, last_attempt) = watch::channel(None);
        Self {
            leading,
            last_attempt,
            valid_until: None,
        }
    }

    /// Whether a write sent now is inside this process's term: checked by the clients of the
    /// gated work right before each request, so a process that was frozen past its renew
    /// deadline sends nothing when it wakes, even before its campaign notices.
    pub fn holds_now(&self) -> bool {
        self.valid_until.as_ref().is_none_or(|until| {
            until
                .lock()
                .is_some_and(|(mono, wall)| Instant::now() < mono && Timestamp::now() < wall)
        })
    }

    /// Whether this process leads now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// The latest attempt (none before the first ends, or without election).
    pub fn last_attempt(&self) -> Option<Attempted> {
        *self.last_attempt.borrow()
    }

    /// Resolves once this process leads (at once if it does).
    pub async fn acquired(&mut self) {
        let _ = self.leading.wait_for(|leading| *leading).await;
    }

    /// Resolves once this process no longer leads; never, if the campaign has ended while
    /// leading (the process is stopping).
    pub async fn lost(&mut self) {
        if self.leading.wait_for(|leading| !*leading).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A campaign: its [`Leadership`] for the gated parts and the future that runs it.
pub struct Campaign {
    elector: Elector,
    leading: watch::Sender<bool>,
    attempt: watch::Sender<Option<Attempted>>,
    valid_until: ValidUntil,
    refused_since: Option<Instant>,
}

impl Campaign {
    /// A campaign of `elector`, and the leadership it reports.
    pub fn new(elector: Elector) -> (Self, Leadership) {
        let (leading, leading_rx) = watch::channel(false);
        let (attempt, attempt_rx) = watch::channel(None);
        let valid_until = Arc::new(Mutex::new(None));
        (
            Self {
                elector,
                leading,
                attempt,
                valid_until: valid_until.clone(),
                refused_since: None,
            },
            Leadership {
                leading: leading_rx,
                last_attempt: attempt_rx,
                valid_until: Some(valid_until),
            },
        )
    }

    /// One attempt, abandoned at `deadline`; `None` when it failed or timed out.
    async fn attempt(&mut self, deadline: Instant) -> Option<bool> {
        let outcome = match tokio::time::timeout_at(deadline, self.elector.try_acquire_or_renew())
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(lease = %self.elector.config.name, "leader lease attempt timed out");
                self.report(false, false);
                return None;
            }
        };
        match outcome {
            Ok(taken) => {
                self.report(true, false);
                Some(taken)
            }
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "leader election: lease unavailable"
                );
                self.report(false, error.refused());
                None
            }
        }
    }

    fn report(&mut self, answered: bool, refused: bool) {
        let now = Instant::now();
        self.refused_since = refused.then(|| self.refused_since.unwrap_or(now));
        self.attempt.send_replace(Some(Attempted {
            at: now,
            answered,
            refused_since: self.refused_since,
        }));
    }

    /// Campaigns, leads while renewals succeed, and campaigns again after a loss, until
    /// `stop` resolves; then releases the Lease if it holds it. Callers resolve `stop` only
    /// after the gated work has stopped, so the release cannot let a successor overlap it.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let config = self.elector.config.clone();
        // A released Lease is taken at once rather than at the next attempt: a rolling update's
        // handover then leaves the node without a leader for a round trip, not a retry period.
        let mut released = std::pin::pin!(released(self.elector.api.clone(), config.name.clone()));
        loop {
            // Campaign.
            let (term_start, wall_start) = loop {
                let started = (Instant::now(), Timestamp::now());
                if self.attempt(started.0 + config.renew_deadline).await == Some(true) {
                    break started;
                }
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(config.retry_period) => {}
                    Some(()) = released.next() => {}
                }
            };
            tracing::info!(lease = %config.name, identity = %config.identity, "became the leader");
            *self.valid_until.lock() = Some(valid_until(term_start, wall_start, &config));
            self.leading.send_replace(true);
            // Lead: each renewal must succeed within renew_deadline of the start of the last
            // successful one.
            let mut renewed_at = term_start;
            let stopping = loop {
                tokio::select! {
                    () = &mut stop => break true,
                    () = tokio::time::sleep(config.retry_period) => {}
                }
                let deadline = renewed_at + config.renew_deadline;
                let started = Instant::now();
                let wall_started = Timestamp::now();
                if started >= deadline {
                    break false;
                }
                match self.attempt(deadline).await {
                    Some(true) => {
                        renewed_at = started;
                        *self.valid_until.lock() =
                            Some(valid_until(started, wall_started, &config));
                    }
                    Some(false) => {
                        tracing::warn!(lease = %config.name, holder = ?self.elector.observed_holder(), "the leader lease was taken by another process");
                        break false;
                    }
                    None if Instant::now() >= deadline => break false,
                    None => {}
                }
            };
            *self.valid_until.lock() = None;
            self.leading.send_replace(false);
            if stopping {
                self.elector.release().await;
                return;
            }
            tracing::warn!(lease = %config.name, identity = %config.identity, "stopped leading: no renewal within the renew deadline; campaigning again");
        }
    }
}

/// Each time the Lease `name` is seen released (no holder) or deleted, from a watch of that
/// one object (RBAC: `list` and `watch` on it by name).
fn released(api: Api<Lease>, name: String) -> impl futures::Stream<Item = ()> + Send {
    use kube::runtime::{WatchStreamExt as _, watcher};
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(api, config).default_backoff().filter_map(|event| {
        let released = match event {
            Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => lease
                .spec
                .and_then(|s| s.holder_identity)
                .is_none_or(|h| h.is_empty()),
            Ok(watcher::Event::Delete(_)) => true,
            Ok(_) | Err(_) => false,
        };
        std::future::ready(released.then_some(()))
    })
}

/// The end of a term whose last successful renewal started at `started` (both clocks).
fn valid_until(started: Instant, wall: Timestamp, config: &ElectionConfig) -> (Instant, Timestamp) {
    let deadline =
        jiff::SignedDuration::try_from(config.renew_deadline).unwrap_or(jiff::SignedDuration::ZERO);
    (
        started + config.renew_deadline,
        wall.checked_add(deadline).unwrap_or(wall),
    )
}

/// Resolves when the work of a term must stop (see [`while_leading`]).
pub type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// Runs `work` whenever `leadership` is held, until `stop` resolves.
///
/// - Leadership lost: the work is **dropped at once**, not drained: its successor may start
///   writing once the lease duration has passed, and only the margin between the renew
///   deadline and the lease duration separates the two. (Work that spawns tasks aborts them
///   when dropped.)
/// - `stop`: the future handed to `work` resolves and the work drains on its own terms; the
///   lease is still held meanwhile (the campaign is stopped after this returns).
/// - The work ends by itself: `Err` is returned; `Ok` waits for the next term.
///
/// # Errors
/// The work's own error.
pub async fn while_leading<W, F, E>(
    mut leadership: Leadership,
    stop: impl Future<Output = ()> + Clone,
    mut work: W,
) -> Result<(), E>
where
    W: FnMut(StopSignal) -> F,
    F: Future<Output = Result<(), E>>,
{
    loop {
        tokio::select! {
            () = stop.clone() => return Ok(()),
            () = leadership.acquired() => {}
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run = work(Box::pin(async move {
            let _ = rx.await;
        }));
        tokio::pin!(run);
        let mut lost = leadership.clone();
        tokio::select! {
            result = &mut run => {
                result?;
                tokio::select! {
                    () = stop.clone() => return Ok(()),
                    () = lost.lost() => {}
                }
            }
            () = stop.clone() => {
                let _ = tx.send(());
                return run.await;
            }
            () = lost.lost() => {
                tracing::warn!("leadership lost: the leader's work stopped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_lease_is_never_shorter_than_configured() {
        let config = |lease_ms: u64, renew_ms: u64| ElectionConfig {
            lease_duration: Duration::from_millis(lease_ms),
            renew_deadline: Duration::from_millis(renew_ms),
            retry_period: Duration::from_millis(100),
            ..ElectionConfig::new("ns", "lease", "me")
        };
        assert_eq!(config(15_000, 10_000).lease_seconds(), 15);
        // 2.5 s written as 2 would let a follower in 0.4 s before a 2.4 s renew deadline.
        assert_eq!(config(2_500, 2_400).lease_seconds(), 3);
        assert_eq!(config(200, 150).lease_seconds(), 1);
        assert!(config(2_500, 2_400).check().is_ok());
        assert!(config(2_000, 2_000).check().is_err(), "deadline == lease");
        assert!(
            ElectionConfig::new("ns", "lease", "").check().is_err(),
            "no identity"
        );
    }

    #[tokio::test]
    async fn a_term_holds_only_while_both_clocks_say_so() {
        let config = ElectionConfig::new("ns", "lease", "me");
        let until: ValidUntil = Arc::new(Mutex::new(None));
        let (_tx, leading) = watch::channel(true);
        let (_tx, last_attempt) = watch::channel(None);
        let leadership = Leadership {
            leading,
            last_attempt,
            valid_until: Some(until.clone()),
        };
        assert!(!leadership.holds_now(), "no term yet");
        *until.lock() = Some(valid_until(Instant::now(), Timestamp::now(), &config));
        assert!(leadership.holds_now());
        // The wall clock says the deadline passed (the machine slept): not held.
        let an_hour_ago = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        *until.lock() = Some(valid_until(Instant::now(), an_hour_ago, &config));
        assert!(!leadership.holds_now());
        assert!(Leadership::always().holds_now(), "no election: always");
    }
}
