//! The history of one simulated container as a pure function of the time since its group
//! started: runs, exits, back-off and restarts, and the log lines they leave.

use std::time::Duration;

use crate::agent::pb::ContainerSpec;

use super::SimulatedConfig;

/// How one container behaves over time, from its spec and the group's restart policy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeline {
    /// `None`: runs forever.
    exit: Option<(i32, Duration)>,
    restarts: bool,
    restart_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum CyclePhase {
    Running {
        started: Duration,
    },
    Exited {
        started: Duration,
        finished: Duration,
        code: i32,
    },
    /// Exited and waiting to be started again.
    BackOff {
        since: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct TimelineView {
    pub(super) current: CyclePhase,
    pub(super) previous: Option<CyclePhase>,
    pub(super) restarts: i32,
}

impl Timeline {
    pub(super) fn of(spec: &ContainerSpec, restart_policy: &str, config: &SimulatedConfig) -> Self {
        let env = |name: &str| {
            spec.env
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.value.trim().to_owned())
        };
        let exit = env("SIMULATED_EXIT_CODE")
            .and_then(|v| v.parse::<i32>().ok())
            .map(|code| {
                let run = env("SIMULATED_RUN_MS")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                (code, Duration::from_millis(run))
            });
        let restarts = match (restart_policy, exit) {
            ("Never", _) => false,
            ("OnFailure", Some((code, _))) => code != 0,
            _ => true,
        };
        Self {
            exit,
            restarts,
            restart_delay: config.restart_delay,
        }
    }

    pub(super) fn at(&self, elapsed: Duration) -> TimelineView {
        let Some((code, run)) = self.exit else {
            return TimelineView {
                current: CyclePhase::Running {
                    started: Duration::ZERO,
                },
                previous: None,
                restarts: 0,
            };
        };
        if !self.restarts {
            let current = if elapsed < run {
                CyclePhase::Running {
                    started: Duration::ZERO,
                }
            } else {
                CyclePhase::Exited {
                    started: Duration::ZERO,
                    finished: run,
                    code,
                }
            };
            return TimelineView {
                current,
                previous: None,
                restarts: 0,
            };
        }
        // A cycle is `run` then `restart_delay`; guard against a zero-length cycle.
        let period = (run + self.restart_delay).max(Duration::from_millis(1));
        let cycle = elapsed.as_nanos() / period.as_nanos();
        let cycle_u32 = u32::try_from(cycle).unwrap_or(u32::MAX);
        let cycle_start = period.saturating_mul(cycle_u32);
        let within = elapsed.saturating_sub(cycle_start);
        let exited = |start: Duration| CyclePhase::Exited {
            started: start,
            finished: start + run,
            code,
        };
        let restarts = i32::try_from(cycle).unwrap_or(i32::MAX);
        if within < run {
            TimelineView {
                current: CyclePhase::Running {
                    started: cycle_start,
                },
                previous: (cycle > 0).then(|| exited(cycle_start.saturating_sub(period))),
                restarts,
            }
        } else {
            TimelineView {
                current: CyclePhase::BackOff {
                    since: cycle_start + run,
                },
                previous: Some(exited(cycle_start)),
                restarts,
            }
        }
    }

    /// Log events (offset, line) of the container up to `elapsed`, oldest first, split into
    /// (earlier instances, current instance).
    pub(super) fn log_lines(
        &self,
        spec: &ContainerSpec,
        elapsed: Duration,
    ) -> (Vec<LogLine>, Vec<LogLine>) {
        let started = |at: Duration| {
            (
                at,
                format!(
                    "simulated container {} started: image {}, command {:?}",
                    spec.name,
                    spec.image,
                    spec.command.iter().chain(&spec.args).collect::<Vec<_>>()
                ),
            )
        };
        let Some((code, run)) = self.exit else {
            return (Vec::new(), vec![started(Duration::ZERO)]);
        };
        let exited = |at: Duration| {
            (
                at,
                format!("simulated container {} exited with code {code}", spec.name),
            )
        };
        let view = self.at(elapsed);
        let period = (run + self.restart_delay).max(Duration::from_millis(1));
        let cycles = u32::try_from(view.restarts).unwrap_or(0);
        let mut earlier = Vec::new();
        for k in 0..cycles {
            let s = period.saturating_mul(k);
            earlier.push(started(s));
            earlier.push(exited(s + run));
        }
        let s = period.saturating_mul(cycles);
        let mut current = vec![started(s)];
        if !matches!(view.current, CyclePhase::Running { .. }) {
            current.push(exited(s + run));
        }
        // The previous instance is the last cycle of `earlier`.
        let previous = if earlier.len() >= 2 {
            earlier.split_off(earlier.len() - 2)
        } else {
            Vec::new()
        };
        (previous, current)
    }
}

/// A log line and when it was written, relative to the group's start.
pub(super) type LogLine = (Duration, String);
