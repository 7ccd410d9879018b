//! Leader takeover (issue #19, BENCHMARKS.md): two `eci-vk run` processes for one node, as the
//! chart's two replicas, with the chart's election timing (15 s lease, 10 s renew deadline, 2 s
//! between attempts). The leader is stopped — SIGTERM, as a rolling update or a drain does,
//! and SIGKILL, as a crash or a lost machine does — and the time runs until the standby
//! *acts*: its `/readyz` answers `leader` only once it has registered the Node and finished its
//! first pass over the pods (a describe of the cloud and the status writes). The stopped one is
//! started again as the next standby, and the roles swap each round.
//!
//! `cargo bench --bench takeover -- [--rounds 5]`
//! Results: a table on stdout and `target/bench/takeover.json`.
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

#[path = "support/mod.rs"]
mod support;

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{sys::signal::Signal, unistd::Pid};
use support::{Daemon, Ground, Summary};

/// One of the node's two processes.
struct Replica {
    identity: &'static str,
    port: u16,
    daemon: Option<Daemon>,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What `/readyz` says (`leader`, `standby`), or `None` while it is not ready or not up.
fn role(port: u16) -> Option<String> {
    support::http_get(&format!("http://127.0.0.1:{port}/"), "/readyz")
        .ok()
        .map(|body| body.trim().to_owned())
}

fn wait_role(port: u16, wanted: &str, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if role(port).as_deref() == Some(wanted) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!("127.0.0.1:{port} not {wanted} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(5);
    let ground = Ground::reuse_or_start()?;
    let out = support::out_dir()?;
    let (_emulator, endpoint) = support::start_emulator(
        &[
            "--runtime",
            "simulated",
            "--sim-pull-ms",
            "20",
            "--sim-start-ms",
            "20",
        ],
        &out.join("takeover-emulator.log"),
    )?;
    let node = format!("vk-takeover-{}", std::process::id());
    let start = |replica: &mut Replica| -> Result<()> {
        let metrics = format!("127.0.0.1:{}", replica.port);
        let daemon = support::start_node(
            &ground,
            &endpoint,
            &[
                "--node-name",
                &node,
                "--kubelet-listen",
                "127.0.0.1:0",
                "--metrics-addr",
                &metrics,
                "--leader-elect-identity",
                replica.identity,
            ],
            &out.join(format!("takeover-{}.log", replica.identity)),
        )?;
        replica.daemon = Some(daemon);
        Ok(())
    };
    let mut replicas = [
        Replica {
            identity: "replica-a",
            port: free_port()?,
            daemon: None,
        },
        Replica {
            identity: "replica-b",
            port: free_port()?,
            daemon: None,
        },
    ];
    start(&mut replicas[0])?;
    wait_role(replicas[0].port, "leader", Duration::from_secs(60))?;
    start(&mut replicas[1])?;
    wait_role(replicas[1].port, "standby", Duration::from_secs(60))?;
    // Pods for the new leader's first pass to adopt.
    let mut kubectl = ground.kubectl()?;
    let applied = kubectl
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    {
        use std::io::Write as _;
        let mut applied = applied;
        applied.stdin.take().context("kubectl stdin")?.write_all(
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {node}, namespace: default}}\nspec:\n  replicas: 20\n  selector: {{matchLabels: {{app: {node}}}}}\n  template:\n    metadata:\n      labels: {{app: {node}}}\n    spec:\n      nodeName: {node}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: busybox\n"
            )
            .as_bytes(),
        )?;
        applied.wait()?;
    }
    std::thread::sleep(Duration::from_secs(5));

    let mut results = serde_json::Map::new();
    println!("| stop | rounds | median (s) | p90 (s) | min (s) | max (s) |");
    println!("|---|---|---|---|---|---|");
    for (mode, signal) in [("SIGTERM", Signal::SIGTERM), ("SIGKILL", Signal::SIGKILL)] {
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let leader = replicas
                .iter()
                .position(|r| role(r.port).as_deref() == Some("leader"))
                .context("no leader")?;
            let standby = 1 - leader;
            let mut daemon = replicas[leader]
                .daemon
                .take()
                .context("leader not running")?;
            let pid = Pid::from_raw(i32::try_from(daemon.pid())?);
            let stopped = Instant::now();
            nix::sys::signal::kill(pid, signal)?;
            wait_role(replicas[standby].port, "leader", Duration::from_secs(60))?;
            samples.push(stopped.elapsed().as_secs_f64());
            daemon.child.wait()?;
            start(&mut replicas[leader])?;
            wait_role(replicas[leader].port, "standby", Duration::from_secs(60))?;
        }
        let summary = Summary::of(&samples).context("no samples")?;
        println!(
            "| {mode} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            summary.n, summary.median, summary.p90, summary.min, summary.max
        );
        results.insert(
            mode.to_owned(),
            serde_json::json!({ "samples": samples, "summary": summary }),
        );
    }
    let _ = ground
        .kubectl()?
        .args([
            "-n",
            "default",
            "delete",
            "deployment",
            &node,
            "--wait=false",
        ])
        .output();
    let report = serde_json::json!({
        "bench": "takeover",
        "lease": {"duration_s": 15, "renew_deadline_s": 10, "retry_period_s": 2},
        "results": results,
        "machine": support::machine(),
        "load_average": support::load_average(),
    });
    std::fs::write(
        out.join("takeover.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    drop(replicas);
    let _ = ground
        .kubectl()?
        .args(["delete", "node", &node, "--wait=false"])
        .output();
    Ok(())
}
