//! Injected faults for chaos runs (`--fault-rate`, `--fault-kinds`, …): the failures a client
//! of the real gateway meets now and then, on demand and reproducibly.
//!
//! A fault is chosen per OpenAPI call after its signature was checked (so its nonce is spent,
//! as on the gateway, and a retry must sign anew) and before the quota and the operation:
//!
//! - `5xx`: 503 `ServiceUnavailable` or 500 `InternalError`, nothing done;
//! - `throttling`: 400 `Throttling.User` "Request was denied due to user flow control." (the
//!   gateway's per-user flow control, answered like `Throttling.Api`), nothing done;
//! - `slow`: the answer comes after `--fault-slow-ms`, otherwise as usual;
//! - `applied-then-timeout` (writes only): the write is applied, then the answer is 503
//!   `ServiceUnavailable`, as when the gateway loses the backend's answer. The emulator answers
//!   at once rather than hanging past the client's 30 s per-attempt timeout, so chaos runs stay
//!   fast; to the client both are "outcome unknown", retried with the same `ClientToken`.
//!
//! Reads (`Describe*`, `List*`) get only the first three. The rate can change while the
//! emulator runs: with `--fault-file PATH` the file is read every second and, when it holds a
//! number from 0 to 1, that number is the rate; without the file the `--fault-rate` applies.

use std::{
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::http::StatusCode;
use parking_lot::Mutex;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

use super::{Core, error::ApiError};

/// One kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `5xx`: 503 `ServiceUnavailable` or 500 `InternalError`, nothing done.
    ServerError,
    /// `throttling`: 400 `Throttling.User`, nothing done.
    Throttling,
    /// `slow`: a normal answer after the configured delay.
    Slow,
    /// `applied-then-timeout`: a write is applied, then answered 503 `ServiceUnavailable`.
    AppliedThenTimeout,
}

impl FaultKind {
    /// Every kind, the default of `--fault-kinds`.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::ServerError,
        FaultKind::Throttling,
        FaultKind::Slow,
        FaultKind::AppliedThenTimeout,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ServerError => "5xx",
            FaultKind::Throttling => "throttling",
            FaultKind::Slow => "slow",
            FaultKind::AppliedThenTimeout => "applied-then-timeout",
        }
    }
}

/// A name that is not a fault kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind {0:?} (5xx, throttling, slow, applied-then-timeout)")]
pub struct UnknownFaultKind(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| UnknownFaultKind(s.to_owned()))
    }
}

/// How faults are injected.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Probability (0 to 1) that an OpenAPI call gets a fault.
    pub rate: f64,
    /// Seed of the choices, for a reproducible run; a random one without it.
    pub seed: Option<u64>,
    /// The kinds chosen from, uniformly (among those allowed for the action).
    pub kinds: Vec<FaultKind>,
    /// How late a `slow` answer comes.
    pub slow: Duration,
    /// A file read every second whose number (0 to 1), when present, replaces `rate`.
    pub file: Option<PathBuf>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            rate: 0.0,
            seed: None,
            kinds: FaultKind::ALL.to_vec(),
            slow: Duration::from_secs(3),
            file: None,
        }
    }
}

/// What to do with one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer this error and do nothing.
    Refuse(ApiError),
    /// Wait this long, then answer as usual.
    Slow(Duration),
    /// Do the write, then answer this error instead of its result.
    AppliedThen(ApiError),
}

/// Errors of reading the fault file.
#[derive(Debug, thiserror::Error)]
pub enum FaultFileError {
    /// The file exists but cannot be read.
    #[error("cannot read the fault file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a number from 0 to 1.
    #[error("the fault file {path} does not hold a rate from 0 to 1")]
    BadRate {
        /// The file.
        path: PathBuf,
    },
}

/// The fault injector of one emulator.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    /// The current rate, as `f64` bits (changed by the fault file).
    rate: AtomicU64,
    rng: Mutex<StdRng>,
}

/// Whether `action` only reads.
fn is_read(action: &str) -> bool {
    action.starts_with("Describe") || action.starts_with("List")
}

/// 503 `ServiceUnavailable`, Alibaba Cloud's common code for a temporary failure.
fn service_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    )
}

/// 500 `InternalError`, Alibaba Cloud's common code for an unknown server failure.
fn internal_error() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
    )
}

/// 400 `Throttling.User`, the gateway's per-user flow control (the status and shape of
/// `Throttling.Api`, see `throttle.rs`).
fn user_throttling() -> ApiError {
    ApiError::bad_request(
        "Throttling.User",
        "Request was denied due to user flow control.",
    )
}

fn valid_rate(rate: f64) -> bool {
    (0.0..=1.0).contains(&rate)
}

impl Faults {
    /// An injector for `config`; a rate outside 0 to 1 is taken as 0.
    pub fn new(config: FaultConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let rate = if valid_rate(config.rate) {
            config.rate
        } else {
            0.0
        };
        Self {
            config,
            rate: AtomicU64::new(rate.to_bits()),
            rng: Mutex::new(rng),
        }
    }

    /// The current rate.
    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Sets the rate; a value outside 0 to 1 is ignored.
    pub fn set_rate(&self, rate: f64) {
        if valid_rate(rate) {
            self.rate.store(rate.to_bits(), Ordering::Relaxed);
        }
    }

    /// The fault for one call of `action`, if any.
    pub fn pick(&self, action: &str) -> Option<Fault> {
        let rate = self.rate();
        if rate <= 0.0 {
            return None;
        }
        let allowed: Vec<FaultKind> = self
            .config
            .kinds
            .iter()
            .copied()
            .filter(|k| !(is_read(action) && *k == FaultKind::AppliedThenTimeout))
            .collect();
        if allowed.is_empty() {
            return None;
        }
        let mut rng = self.rng.lock();
        if rng.random::<f64>() >= rate {
            return None;
        }
        let kind = allowed[rng.random_range(0..allowed.len())];
        Some(match kind {
            FaultKind::ServerError if rng.random_bool(0.5) => Fault::Refuse(service_unavailable()),
            FaultKind::ServerError => Fault::Refuse(internal_error()),
            FaultKind::Throttling => Fault::Refuse(user_throttling()),
            FaultKind::Slow => Fault::Slow(self.config.slow),
            FaultKind::AppliedThenTimeout => Fault::AppliedThen(service_unavailable()),
        })
    }

    /// Reads the fault file once: its rate when it holds one, `--fault-rate` when it is absent.
    ///
    /// # Errors
    /// When the file cannot be read or holds no rate (the current rate stays).
    pub fn reload(&self) -> Result<(), FaultFileError> {
        let Some(path) = &self.config.file else {
            return Ok(());
        };
        let rate = match std::fs::read_to_string(path) {
            Ok(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| valid_rate(*r))
                .ok_or_else(|| FaultFileError::BadRate { path: path.clone() })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if valid_rate(self.config.rate) {
                    self.config.rate
                } else {
                    0.0
                }
            }
            Err(source) => {
                return Err(FaultFileError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        if rate.to_bits() != self.rate().to_bits() {
            tracing::info!(rate, "fault rate changed");
            self.set_rate(rate);
        }
        Ok(())
    }

    /// Whether a fault file is to be watched.
    pub fn watches_file(&self) -> bool {
        self.config.file.is_some()
    }
}

/// Reads the fault file every second (a lifecycle task, aborted at shutdown). A bad file is
/// warned about once per change of the problem, and the last good rate stays.
pub(crate) async fn reload_loop(core: Arc<Core>) {
    let mut last_problem: Option<String> = None;
    loop {
        let problem = core.faults.reload().err();
        let text = problem.as_ref().map(ToString::to_string);
        if text != last_problem
            && let Some(error) = &problem
        {
            tracing::warn!(
                error = error as &dyn std::error::Error,
                "fault file ignored"
            );
        }
        last_problem = text;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at(rate: f64) -> Faults {
        Faults::new(FaultConfig {
            rate,
            seed: Some(7),
            ..FaultConfig::default()
        })
    }

    #[test]
    fn a_rate_of_one_faults_every_call_and_reads_never_get_applied_then_timeout() {
        let faults = all_at(1.0);
        let mut codes = std::collections::BTreeSet::new();
        for _ in 0..200 {
            match faults.pick("DescribeContainerGroups").expect("rate 1") {
                Fault::Refuse(e) => {
                    codes.insert(e.code);
                }
                Fault::Slow(d) => assert_eq!(d, Duration::from_secs(3)),
                Fault::AppliedThen(_) => panic!("a read was applied-then-timeout"),
            }
        }
        assert_eq!(
            codes.into_iter().collect::<Vec<_>>(),
            ["InternalError", "ServiceUnavailable", "Throttling.User"]
        );
        assert!(all_at(0.0).pick("CreateContainerGroup").is_none());
    }

    #[test]
    fn one_seed_gives_one_sequence() {
        let (x, y) = (all_at(0.5), all_at(0.5));
        let (mut faults, mut clean) = (0, 0);
        for _ in 0..100 {
            let fault = x.pick("CreateContainerGroup");
            assert_eq!(fault, y.pick("CreateContainerGroup"));
            if fault.is_some() {
                faults += 1;
            } else {
                clean += 1;
            }
        }
        assert!(faults > 0 && clean > 0, "{faults} faults, {clean} clean");
    }

    #[test]
    fn the_fault_file_sets_the_rate_and_its_absence_restores_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rate");
        let faults = Faults::new(FaultConfig {
            rate: 0.25,
            file: Some(path.clone()),
            ..FaultConfig::default()
        });
        faults.reload().expect("absent file");
        assert!((faults.rate() - 0.25).abs() < f64::EPSILON);
        std::fs::write(&path, "1\n").expect("write");
        faults.reload().expect("a rate");
        assert!((faults.rate() - 1.0).abs() < f64::EPSILON);
        std::fs::write(&path, "lots").expect("write");
        assert!(matches!(
            faults.reload(),
            Err(FaultFileError::BadRate { .. })
        ));
        assert!((faults.rate() - 1.0).abs() < f64::EPSILON, "kept");
        std::fs::write(&path, "2").expect("write");
        assert!(faults.reload().is_err(), "above 1");
        std::fs::remove_file(&path).expect("remove");
        faults.reload().expect("absent again");
        assert!((faults.rate() - 0.25).abs() < f64::EPSILON);
    }
}
