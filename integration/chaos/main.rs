//! The chaos run (issue #20): the node, the emulator (simulated runtime, ECI's quotas on) and
//! the real control plane under a workload of Deployments, Jobs, single pods and ImageCaches
//! that never stops changing, while faults arrive at random times: `kill -9` of the node
//! (restarted at once, or after longer than its Lease), `kill -9` of the emulator (restarted
//! from its data directory), a restart of kube-apiserver, and the emulator's own faults (5xx,
//! `Throttling.User`, writes applied and then answered with an error, slow answers). Then the
//! workload stops, the faults clear, and once the node has settled the invariants of
//! `checks.rs` are read from the cloud and the API server and printed as a table.
//!
//! `scripts/chaos.sh [--minutes 3] [--seed N]`: the same seed draws the same workload and the
//! same faults in the same order (their moments depend on the machine's pace), so a failing
//! seed is the first thing to try again. Results: the table on stdout and
//! `target/chaos/<seed>/` (logs and `result.json`).
// Test code, not shipped: a failed assumption may panic, and it times with the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

mod checks;
mod procs;
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;
mod workload;

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

use procs::{AccessKey, Emulator, Node};
use support::Ground;
use workload::{Secrets, Workload};

/// The faults, each drawn at least once in a run of three minutes or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `kill -9` of the node, started again at once.
    NodeKill,
    /// `kill -9` of the node, started again after longer than its Lease (40 s).
    NodeKillLong,
    /// `kill -9` of the emulator, started again from its data directory.
    EmulatorKill,
    /// kube-apiserver killed and started again.
    ApiserverRestart,
    /// For a while, a quarter of the emulator's answers are faults: 5xx, `Throttling.User`,
    /// slow, or (writes only) applied and then answered 503.
    CloudFaults,
}

const FAULTS: [Fault; 5] = [
    Fault::NodeKill,
    Fault::NodeKillLong,
    Fault::EmulatorKill,
    Fault::ApiserverRestart,
    Fault::CloudFaults,
];
/// The share of the emulator's answers that are faults during a [`Fault::CloudFaults`] window.
const FAULT_RATE: f64 = 0.25;

/// Longer than the node's Lease (40 s), so the node lifecycle controller has marked the Node
/// NotReady when the node comes back.
const LONG_ABSENCE: Duration = Duration::from_secs(50);
/// How long an emulator fault window lasts.
const FAULT_WINDOW: Duration = Duration::from_secs(20);
/// A node process up for less than this may not have renewed its Lease yet.
const NODE_SETTLE: Duration = Duration::from_secs(20);
/// How long the run waits, after the faults stop, for the node to settle.
const SETTLE: Duration = Duration::from_secs(240);

struct Args {
    minutes: f64,
    seed: u64,
}

fn args() -> Result<Args> {
    let mut minutes = 3.0;
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => minutes = args.next().context("--minutes N")?.parse()?,
            "--seed" => seed = Some(args.next().context("--seed N")?.parse()?),
            // What cargo's test runner may pass on.
            "--nocapture" | "--test-threads" | "-q" | "--quiet" => {}
            other => bail!("unknown argument {other:?} (use --minutes N, --seed N)"),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    Ok(Args { minutes, seed })
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("chaos: {error:#}");
            return ExitCode::from(2);
        }
    };
    let ground = match Ground::start_or_reuse() {
        Ok(ground) => ground,
        Err(error) => {
            eprintln!("chaos: cannot bring up the test ground: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(&ground, &args);
    support::children::kill_all();
    ground.stop();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "chaos: invariants broken; reproduce with scripts/chaos.sh --minutes {} --seed {}",
                args.minutes, args.seed
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("chaos (seed {}): {error:#}", args.seed);
            ExitCode::FAILURE
        }
    }
}

/// Seconds since the run began, for the timeline.
struct Clock(Instant);

impl Clock {
    fn at(&self) -> String {
        format!("{:7.1}s", self.0.elapsed().as_secs_f64())
    }
}

fn run(ground: &Ground, args: &Args) -> Result<bool> {
    let seed = args.seed;
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/chaos")
        .join(seed.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    println!(
        "chaos: seed {seed}, {} minutes, logs in {}",
        args.minutes,
        dir.display()
    );

    let key = || AccessKey {
        id: "LTAI-chaos".to_owned(),
        secret: format!("chaos-ak-secret-{seed}"),
    };
    let secrets = Secrets {
        data: format!("chaos-secret-data-{seed}"),
        registry_password: format!("chaos-registry-pw-{seed}"),
    };
    // A ground this run started (CI's, after the integration suite stopped its own) has no
    // CRD yet.
    support::harness::install_crd(ground).context("installing the ImageCache CRD")?;
    let node_name = "vk-chaos".to_owned();
    let namespace = format!("chaos-{seed}");
    set_faults(&dir.join("faults"), 0.0)?;
    let mut emulator = Emulator::start(ground.eci_vk(), &dir, key(), seed)?;
    let mut workload = Workload::new(ground, &namespace, &node_name);
    workload.set_up(&secrets)?;
    let node = Arc::new(Mutex::new(Node::start(
        ground,
        &node_name,
        &dir,
        &emulator.endpoint,
        key(),
    )?));
    wait_node_ready(ground, &node_name)?;

    // The Node's Ready condition, sampled every second by a thread of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let not_ready = Arc::new(Mutex::new(Vec::<String>::new()));
    let samples = Arc::new(Mutex::new(0usize));
    let clock = Arc::new(Clock(Instant::now()));
    let sampler = {
        let (stop, not_ready, samples, node, clock) = (
            stop.clone(),
            not_ready.clone(),
            samples.clone(),
            node.clone(),
            clock.clone(),
        );
        let kubectl = ground.bin.join("kubectl");
        let kubectl_args = ground.kubectl_base_args();
        let name = node_name.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let settled = node
                    .lock()
                    .up_since
                    .is_some_and(|t| t.elapsed() >= NODE_SETTLE);
                if !settled {
                    continue;
                }
                let Ok(out) = std::process::Command::new(&kubectl)
                    .args(&kubectl_args)
                    .args(["get", "node", &name, "-o"])
                    .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
                    .output()
                else {
                    continue;
                };
                let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                // Read again after the answer: a node killed meanwhile does not count.
                let still = node
                    .lock()
                    .up_since
                    .is_some_and(|t| t.elapsed() >= NODE_SETTLE);
                if !out.status.success() || !still {
                    continue;
                }
                *samples.lock() += 1;
                if text != "True" {
                    not_ready
                        .lock()
                        .push(format!("{} Ready={text:?}", clock.at()));
                }
            }
        })
    };

    // The faults' schedule: evenly spread with jitter, each kind once before any repeats.
    let length = Duration::from_secs_f64(args.minutes * 60.0);
    let slots = ((args.minutes * 2.0).round() as usize).max(FAULTS.len());
    let mut kinds = Vec::new();
    while kinds.len() < slots {
        let mut round = FAULTS.to_vec();
        round.shuffle(&mut rng);
        kinds.extend(round);
    }
    kinds.truncate(slots);
    let span = length.saturating_sub(Duration::from_secs(20)).as_secs_f64();
    let slot = span / slots as f64;
    let mut schedule: Vec<(Duration, Fault)> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let at = 10.0 + slot * i as f64 + rng.random_range(0.0..slot * 0.5);
            (Duration::from_secs_f64(at), kind)
        })
        .collect();
    schedule.reverse();

    let mut node_back_at: Option<Instant> = None;
    let mut apiserver: Option<std::thread::JoinHandle<Result<Duration>>> = None;
    let mut faults_done = 0u32;
    let mut faults_off_at: Option<Instant> = None;
    let mut crashes = Vec::new();
    let mut log = Vec::new();
    let mut note = |line: String| {
        println!("{line}");
        log.push(line);
    };
    while clock.0.elapsed() < length {
        if let Some(status) = node.lock().exited() {
            crashes.push(format!("{} node exited: {status}", clock.at()));
        }
        if node_back_at.is_some_and(|t| Instant::now() >= t) {
            node_back_at = None;
            node.lock().restart()?;
            note(format!("{} fault: node started again", clock.at()));
        }
        if faults_off_at.is_some_and(|t| Instant::now() >= t) {
            faults_off_at = None;
            set_faults(&emulator.fault_file(), 0.0)?;
            note(format!(
                "{} fault: emulator answers cleanly again",
                clock.at()
            ));
        }
        if schedule
            .last()
            .is_some_and(|(at, _)| clock.0.elapsed() >= *at)
        {
            let (_, fault) = schedule.pop().unwrap();
            let busy = node_back_at.is_some()
                || faults_off_at.is_some()
                || apiserver.as_ref().is_some_and(|t| !t.is_finished());
            let what = match fault {
                // One absence or window at a time: a fault drawn meanwhile waits its turn.
                _ if busy => {
                    schedule.push((clock.0.elapsed() + Duration::from_secs(5), fault));
                    None
                }
                Fault::NodeKill => {
                    let mut node = node.lock();
                    node.kill();
                    node.restart()?;
                    Some("kill -9 node, started again at once".to_owned())
                }
                Fault::NodeKillLong => {
                    node.lock().kill();
                    node_back_at = Some(Instant::now() + LONG_ABSENCE);
                    Some(format!("kill -9 node, back in {}s", LONG_ABSENCE.as_secs()))
                }
                Fault::EmulatorKill => {
                    emulator.kill();
                    emulator.restart()?;
                    Some("kill -9 emulator, started again from its data directory".to_owned())
                }
                Fault::ApiserverRestart => {
                    // Restarted beside the workload, whose kubectl calls meet the outage.
                    apiserver = Some(std::thread::spawn(procs::restart_apiserver));
                    Some("kube-apiserver killed".to_owned())
                }
                Fault::CloudFaults => {
                    set_faults(&emulator.fault_file(), FAULT_RATE)?;
                    faults_off_at = Some(Instant::now() + FAULT_WINDOW);
                    Some(format!(
                        "emulator: {}% of answers 5xx, Throttling.User, slow, or applied then 503",
                        FAULT_RATE * 100.0
                    ))
                }
            };
            if let Some(what) = what {
                faults_done += 1;
                note(format!("{} fault: {what}", clock.at()));
            }
        }
        if apiserver.as_ref().is_some_and(|t| t.is_finished())
            && let Some(thread) = apiserver.take()
        {
            let away = thread
                .join()
                .map_err(|_| anyhow::anyhow!("the restart panicked"))??;
            note(format!(
                "{} fault: kube-apiserver started again ({:.1}s away)",
                clock.at(),
                away.as_secs_f64()
            ));
        }
        let action = workload.step(&mut rng);
        note(format!("{} {action}", clock.at()));
        std::thread::sleep(Duration::from_millis(rng.random_range(500..1500)));
    }

    // Quiet: no more faults, everything running, and time for the node to settle.
    if let Some(thread) = apiserver.take() {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the restart panicked"))??;
    }
    set_faults(&emulator.fault_file(), 0.0)?;
    if node_back_at.is_some() {
        node.lock().restart()?;
    }
    println!(
        "{} workload stopped; waiting up to {}s for the node to settle",
        clock.at(),
        SETTLE.as_secs()
    );
    let client = ground.runtime.block_on(kube_client(ground))?;
    let cloud = emulator.client()?;
    let settled_by = Instant::now() + SETTLE;
    let world = loop {
        let world = ground
            .runtime
            .block_on(checks::read_world(&client, &cloud, &namespace, &node_name));
        let calm = world.as_ref().is_ok_and(|w| {
            checks::groups(w).iter().all(|r| r.violations.is_empty())
                && checks::caches(w).violations.is_empty()
                && w.pods
                    .iter()
                    .all(|p| p.metadata.deletion_timestamp.is_none())
        });
        if calm || Instant::now() >= settled_by {
            break world?;
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    if let Some(status) = node.lock().exited() {
        crashes.push(format!("{} node exited: {status}", clock.at()));
    }
    println!("{} settled", clock.at());

    let course = checks::Course {
        ready_samples: *samples.lock(),
        not_ready: not_ready.lock().clone(),
        node_crashes: crashes,
        kept_single_pods: workload.pods.clone(),
    };
    let mut rows = checks::groups(&world);
    rows.push(checks::pods_kept(&world, &course));
    rows.extend(checks::node_ready(&course));
    rows.push(checks::caches(&world));
    let logs = [
        ("node's log", node.lock().logs()),
        ("emulator's log", emulator.logs()),
    ];
    rows.push(checks::secrets(
        &world,
        &[
            ("AccessKey secret", &key().secret),
            ("Secret's data", &secrets.data),
            ("registry password", &secrets.registry_password),
        ],
        &logs,
    ));
    rows.push(kubelet_api(ground, &node_name, &namespace));
    rows.push(checks::Row {
        name: "every kind of action succeeded at least once",
        checked: workload::KINDS.len(),
        violations: workload::KINDS
            .iter()
            .filter(|kind| !workload.succeeded.contains(**kind))
            .map(|kind| (*kind).to_owned())
            .collect(),
    });

    let passed = rows.iter().all(|r| r.violations.is_empty());
    let table = render(&rows);
    println!(
        "\nchaos: seed {seed}, {} minutes, {} actions ({} failed while the API server was away), {faults_done} faults\n{table}",
        args.minutes, workload.actions, workload.failed_actions,
    );
    let result = serde_json::json!({
        "seed": seed,
        "minutes": args.minutes,
        "actions": workload.actions,
        "failed_actions": workload.failed_actions,
        "faults": faults_done,
        "passed": passed,
        "invariants": rows.iter().map(|r| serde_json::json!({
            "invariant": r.name, "checked": r.checked, "violations": r.violations,
        })).collect::<Vec<_>>(),
        "timeline": log,
    });
    std::fs::write(
        dir.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    if passed {
        workload.tear_down();
    }
    Ok(passed)
}

/// The share of answers that are faults, in the file the emulator re-reads every second
/// (`--fault-file`; the kinds are those of `--fault-kinds`, all by default).
fn set_faults(file: &std::path::Path, rate: f64) -> Result<()> {
    let text = format!("{rate}\n");
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

fn wait_node_ready(ground: &Ground, name: &str) -> Result<()> {
    support::wait::wait(&format!("node {name} Ready"), 90, || {
        let out = ground
            .kubectl()
            .args(["get", "node", name, "-o"])
            .args(["jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
            .run()?;
        Ok((out.stdout.trim() == "True").then_some(()))
    })
}

async fn kube_client(ground: &Ground) -> Result<kube::Client> {
    let file = kube::config::Kubeconfig::read_from(&ground.kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

/// The kubelet API after the run, as its suite checks it: 401 without credentials, 403 for a
/// token without `nodes/proxy`, and the pods through the API server's proxy.
fn kubelet_api(ground: &Ground, node: &str, namespace: &str) -> checks::Row {
    let mut row = checks::Row {
        name: "the kubelet API: 401, 403, and pods via the API server",
        checked: 3,
        violations: Vec::new(),
    };
    let mut check = || -> Result<()> {
        let port = ground
            .kubectl()
            .args(["get", "node", node, "-o"])
            .args(["jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"])
            .ok()?;
        let url = format!("https://{}:{}/pods", ground.node_ip, port.trim());
        let curl = |token: Option<&str>| -> Result<u16> {
            let mut command = std::process::Command::new("curl");
            command.args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ]);
            if let Some(token) = token {
                command.args(["-H", &format!("Authorization: Bearer {token}")]);
            }
            let out = command.arg(&url).output()?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
        };
        let code = curl(None)?;
        if code != 401 {
            row.violations.push(format!("no credentials: {code}"));
        }
        ground
            .kubectl()
            .args(["-n", namespace, "create", "serviceaccount", "stranger"])
            .run()?;
        let token = ground
            .kubectl()
            .args(["-n", namespace, "create", "token", "stranger"])
            .ok()?;
        let code = curl(Some(token.trim()))?;
        if code != 403 {
            row.violations
                .push(format!("a token without nodes/proxy: {code}"));
        }
        ground.let_apiserver_reach_kubelets()?;
        let pods = ground
            .kubectl()
            .args(["get", "--raw", &format!("/api/v1/nodes/{node}/proxy/pods")])
            .ok()?;
        if !pods.contains("\"PodList\"") {
            row.violations
                .push("the API server's proxy did not list the node's pods".to_owned());
        }
        Ok(())
    };
    if let Err(error) = check() {
        row.violations.push(format!("{error:#}"));
    }
    row
}

fn render(rows: &[checks::Row]) -> String {
    let mut out = String::from("| invariant | checked | violations |\n|---|---:|---|\n");
    for row in rows {
        let violations = if row.violations.is_empty() {
            "none".to_owned()
        } else {
            format!(
                "**{}**: {}",
                row.violations.len(),
                row.violations
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        out.push_str(&format!(
            "| {} | {} | {violations} |\n",
            row.name, row.checked
        ));
    }
    out
}
