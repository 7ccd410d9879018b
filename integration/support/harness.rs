//! The integration binary's `main`: starts (or reuses) the test ground once, runs every test
//! against it with libtest-mimic, and stops what it started — also when a test fails or the
//! run is interrupted.
//!
//! Tests run in two phases. `Phase::FreshCluster` tests see a cluster without the ImageCache
//! CRD (the guide's "Before you begin"); then the harness installs the CRD the way the README
//! does (`eci-vk crd | kubectl apply -f -`) and runs the `Phase::WithCrd` tests.

use std::{
    process::ExitCode,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use libtest_mimic::{Arguments, Conclusion, Trial};

use super::{Ground, ground::Namespace};

/// Name of the CRD the product installs.
pub const CRD_NAME: &str = "imagecaches.eci.alibabacloud.com";

/// When a test runs relative to the CRD's installation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    FreshCluster,
    WithCrd,
}

/// One integration test.
pub struct Test {
    pub name: &'static str,
    pub phase: Phase,
    /// The test body: the ground, and a namespace of the test's own (deleted afterwards).
    pub run: fn(&Ground, &Namespace) -> Result<()>,
}

/// Runs `tests`; the process exit code says whether all passed.
pub fn main(tests: Vec<Test>) -> ExitCode {
    let args = Arguments::from_args();
    if args.list {
        let trials = tests
            .iter()
            .map(|t| Trial::test(t.name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let ground: &'static Ground = match Ground::start_or_reuse() {
        Ok(ground) => Box::leak(Box::new(ground)),
        Err(error) => {
            eprintln!("[harness] cannot bring up the test ground: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    stop_on_signal(ground);
    let result = run_phases(ground, &args, tests);
    super::children::kill_all();
    ground.stop();
    match result {
        Ok(failed) if !failed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(101),
        Err(error) => {
            eprintln!("[harness] {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether any test failed.
fn run_phases(ground: &'static Ground, args: &Arguments, tests: Vec<Test>) -> Result<bool> {
    let (fresh, with_crd): (Vec<_>, Vec<_>) = tests
        .into_iter()
        .partition(|t| t.phase == Phase::FreshCluster);
    let mut failed = false;
    if selected(args, &fresh) {
        // ImageCaches an earlier run left (its node killed before it released them) would hold
        // the CRD's deletion forever: their finalizers go first.
        ground.force_remove_image_caches("");
        ground
            .kubectl()
            .args([
                "delete",
                "crd",
                CRD_NAME,
                "--ignore-not-found",
                "--wait=true",
            ])
            .ok()
            .context("cannot remove the CRD before the fresh-cluster tests")?;
        // These tests change what the whole cluster sees (one installs the CRD, another needs
        // it absent): one at a time.
        let mut one_at_a_time = args.clone();
        one_at_a_time.test_threads = Some(1);
        failed |= run_trials(ground, &one_at_a_time, fresh).has_failed();
    }
    install_crd(ground)?;
    if selected(args, &with_crd) {
        failed |= run_trials(ground, args, with_crd).has_failed();
    }
    Ok(failed)
}

/// Installs the CRD as the README does and waits until the API server serves it.
pub fn install_crd(ground: &Ground) -> Result<()> {
    let crd = std::process::Command::new(ground.eci_vk())
        .arg("crd")
        .output()?;
    anyhow::ensure!(crd.status.success(), "eci-vk crd failed");
    ground
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(String::from_utf8(crd.stdout)?)
        .ok()?;
    ground
        .kubectl()
        .args([
            "wait",
            "--for=condition=established",
            &format!("crd/{CRD_NAME}"),
            "--timeout=60s",
        ])
        .ok()?;
    Ok(())
}

fn selected(args: &Arguments, tests: &[Test]) -> bool {
    tests.iter().any(|t| match &args.filter {
        None => true,
        Some(f) if args.exact => t.name == f,
        Some(f) => t.name.contains(f.as_str()),
    })
}

/// Runs `tests`, then names the slowest, so a run that takes longer than it used to says where
/// the time went.
fn run_trials(ground: &'static Ground, args: &Arguments, tests: Vec<Test>) -> Conclusion {
    let took: Arc<Mutex<Vec<(&'static str, Duration)>>> = Arc::default();
    let trials = tests
        .into_iter()
        .map(|t| {
            let run = t.run;
            let took = Arc::clone(&took);
            Trial::test(t.name, move || {
                let start = Instant::now();
                let result = ground
                    .namespace(t.name)
                    .and_then(|namespace| run(ground, &namespace));
                took.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((t.name, start.elapsed()));
                result.map_err(|e| format!("{e:#}").into())
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(args, trials);
    let mut took = std::mem::take(&mut *took.lock().unwrap_or_else(PoisonError::into_inner));
    took.sort_by_key(|t| std::cmp::Reverse(t.1));
    for (name, time) in took.iter().take(SLOWEST_SHOWN) {
        eprintln!("[harness] {:>6.1} s  {name}", time.as_secs_f64());
    }
    conclusion
}

/// How many of a phase's slowest tests the harness names.
const SLOWEST_SHOWN: usize = 8;

/// An interrupted run still stops the ground it started.
fn stop_on_signal(ground: &'static Ground) {
    ground.runtime.spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("[harness] interrupted");
        super::children::kill_all();
        ground.stop();
        std::process::exit(130);
    });
}
