//! What the chart's probes ask of the process: `/livez` (is every loop it runs still making
//! progress?) and `/readyz` (should it count as available: a leader that has synced, or a
//! standby that can reach its Lease?). `/healthz` is `/livez`, for old charts.
//!
//! A loop that fails keeps beating (a renewal that the API server refuses is progress of the
//! loop, and restarting the process would not help); a loop that stops beating is stuck
//! (a deadlock, a call without a timeout), and only a restart helps that.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::election::Leadership;

/// The probes' shared state; clones share it.
#[derive(Clone, Default)]
pub struct Probes(Arc<Mutex<State>>);

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    loops: BTreeMap<&'static str, Beat>,
    election: Option<(Leadership, Duration)>,
    synced: bool,
}

struct Beat {
    last: Instant,
    stuck_after: Duration,
}

impl Probes {
    /// Readiness and liveness follow `leadership` (a Lease of `lease_duration`).
    pub fn follow_election(&self, leadership: Leadership, lease_duration: Duration) {
        self.0.lock().election = Some((leadership, lease_duration));
    }

    /// Whether this process leads its node now; `None` without election.
    pub fn leading(&self) -> Option<bool> {
        self.0
            .lock()
            .election
            .as_ref()
            .map(|(leadership, _)| leadership.is_leading())
    }

    /// The loop `name` made progress; it is stuck if it does not again within `stuck_after`.
    pub fn beat(&self, name: &'static str, stuck_after: Duration) {
        self.0.lock().loops.insert(
            name,
            Beat {
                last: Instant::now(),
                stuck_after,
            },
        );
    }

    /// The first full sync of this term is done.
    pub fn synced(&self) {
        self.0.lock().synced = true;
    }

    /// A term of leadership ended: its loops stopped on purpose, and the next term syncs anew.
    pub fn end_term(&self) {
        let mut state = self.0.lock();
        state.loops.clear();
        state.synced = false;
    }

    /// `Ok(what runs)` while every loop beats; `Err(the stuck one)` otherwise.
    ///
    /// # Errors
    /// A sentence naming the stuck loop.
    pub fn liveness(&self) -> Result<String, String> {
        let state = self.0.lock();
        let now = Instant::now();
        for (name, beat) in &state.loops {
            let silent = now.saturating_duration_since(beat.last);
            if silent > beat.stuck_after {
                return Err(format!(
                    "{name} stuck: no progress for {}s (limit {}s)",
                    silent.as_secs(),
                    beat.stuck_after.as_secs()
                ));
            }
        }
        if let Some((leadership, lease)) = &state.election {
            // Attempts come every retry period and each ends within the renew deadline.
            let limit = *lease * 2;
            // A Lease the API server refuses (no RBAC, no namespace) is a setting to fix: a
            // restart loop says so louder than a standby that never leads.
            if let Some(since) = leadership.last_attempt().and_then(|a| a.refused_since)
                && now.saturating_duration_since(since) > limit
            {
                return Err(format!(
                    "the leader Lease is refused (403/404) for {}s: grant get, create and update on leases in its namespace, or set --leader-elect=false",
                    now.saturating_duration_since(since).as_secs()
                ));
            }
            let last = leadership.last_attempt().map(|a| a.at);
            if let Some(at) = last
                && now.saturating_duration_since(at) > limit
            {
                return Err(format!(
                    "leader election stuck: no attempt for {}s (limit {}s)",
                    now.saturating_duration_since(at).as_secs(),
                    limit.as_secs()
                ));
            }
        }
        Ok("ok".to_owned())
    }

    /// `Ok("leader")` once a leader has synced, `Ok("standby")` while a standby reaches its
    /// Lease; `Err(why not)` otherwise.
    ///
    /// # Errors
    /// A sentence saying what the process waits for.
    pub fn readiness(&self) -> Result<String, String> {
        let state = self.0.lock();
        let Some((leadership, lease)) = &state.election else {
            return if state.synced {
                Ok("ok".to_owned())
            } else {
                Err("the first sync of pods is not done".to_owned())
            };
        };
        if leadership.is_leading() {
            return if state.synced {
                Ok("leader".to_owned())
            } else {
                Err("leader: the first sync of pods is not done".to_owned())
            };
        }
        match leadership.last_attempt() {
            Some(attempt)
                if attempt.answered
                    && Instant::now().saturating_duration_since(attempt.at) <= *lease =>
            {
                Ok("standby".to_owned())
            }
            Some(_) => Err("standby: the leader Lease cannot be read".to_owned()),
            None => Err("standby: the leader Lease was not read yet".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_loop_fails_liveness_and_a_term_end_forgets_it() {
        let probes = Probes::default();
        assert!(
            probes.readiness().is_err(),
            "not ready before the first sync"
        );
        probes.beat("pod loop", Duration::from_secs(120));
        probes.synced();
        assert_eq!(probes.readiness().as_deref(), Ok("ok"));
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(probes.liveness().is_ok());
        tokio::time::advance(Duration::from_secs(30)).await;
        let stuck = probes.liveness().expect_err("130 s without a pass");
        assert!(stuck.contains("pod loop stuck"), "{stuck}");
        probes.end_term();
        assert!(probes.liveness().is_ok(), "a term's loops end with it");
        assert!(probes.readiness().is_err(), "the next term syncs anew");
    }

    #[tokio::test]
    async fn a_standby_without_an_answer_is_not_ready() {
        let probes = Probes::default();
        probes.follow_election(Leadership::always(), Duration::from_secs(15));
        assert!(probes.readiness().is_err(), "a leader that has not synced");
        probes.synced();
        assert_eq!(probes.readiness().as_deref(), Ok("leader"));
    }
}
