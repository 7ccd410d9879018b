//! Two `eci-vk run` processes for one Node, as the chart's two replicas: only the holder of
//! the node's leader Lease acts; the standby sends nothing to ECI and writes no pod; a frozen
//! leader is replaced within a lease duration and, woken, sends nothing; a killed one too; the
//! Node stays Ready throughout.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use nix::sys::signal::Signal;

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    node_child::{NodeChild, family_sum, metrics_at, probe_at},
    tap::Tap,
    wait::wait,
    workload,
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "leadership::a_standby_waits_and_a_frozen_or_killed_leader_is_replaced",
        phase: Phase::WithCrd,
        run: a_standby_waits_and_a_frozen_or_killed_leader_is_replaced,
    }]
}

/// Timing of the test's leases: 3 s, renew deadline 2 s, attempts every 250 ms.
const ELECTION: [&str; 6] = [
    "--leader-elect-lease-duration",
    "3s",
    "--leader-elect-renew-deadline",
    "2s",
    "--leader-elect-retry-period",
    "250ms",
];

/// ECI calls a process has sent, and pod writes it has made.
fn activity(port: u16) -> Result<(f64, f64)> {
    let text = metrics_at(port)?;
    Ok((
        family_sum(&text, "eci_vk_api_calls_total"),
        family_sum(&text, "eci_vk_pod_writes_total"),
    ))
}

/// Waits up to `seconds` until the process whose probes are on `port` is ready as `role`
/// (`leader` or `standby`).
fn wait_role(port: u16, role: &str, seconds: u64) -> Result<()> {
    wait(
        &format!("127.0.0.1:{port} ready as the {role}"),
        seconds,
        || {
            Ok(probe_at(port, "/readyz")
                .ok()
                .filter(|(code, body)| *code == 200 && body == role)
                .map(|_| ()))
        },
    )
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn a_standby_waits_and_a_frozen_or_killed_leader_is_replaced(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let ns = ns.name.as_str();
    let emulator = EmulatorProcess::start(
        ground.eci_vk(),
        &["--sim-pull-ms", "20", "--sim-start-ms", "20"],
    )?;
    let name = format!("vk-ha-{}", std::process::id());
    // a's calls to ECI go through a tap, which notes when a sent anything.
    let upstream: std::net::SocketAddr = emulator
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    let tap = Tap::start(&ground.runtime, upstream)?;
    let endpoint_a = format!("http://{}/", tap.addr);
    let spawn = |identity: &str, port: u16, dir: &std::path::Path, endpoint: &str| {
        let mut extra: Vec<String> = ELECTION.iter().map(|s| (*s).to_owned()).collect();
        extra.extend([
            "--leader-elect-identity".to_owned(),
            identity.to_owned(),
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{port}"),
        ]);
        NodeChild::spawn(ground, name.clone(), endpoint, dir, &extra, "info")
    };
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (port_a, port_b) = (free_port()?, free_port()?);
    let a = spawn("replica-a", port_a, dir_a.path(), &endpoint_a)?;
    a.wait_ready()?;
    let b = spawn("replica-b", port_b, dir_b.path(), &emulator.endpoint)?;
    let logs = || format!("a:\n{}\nb:\n{}", a.logs(), b.logs());
    wait_role(port_b, "standby", 30).with_context(logs)?;
    ensure!(
        probe_at(port_a, "/readyz")? == (200, "leader".to_owned()),
        "a is not the ready leader"
    );

    // The Node's Ready condition, watched (not sampled) for the whole test.
    let mut watch = ground
        .kubectl()
        .args([
            "get",
            "node",
            &name,
            "--watch",
            "--output-watch-events",
            "-o",
            "jsonpath={.object.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}",
        ])
        .spawn_piped()?;

    // Pods run, written by a alone.
    let running = |n: usize| workload::wait_running(ground, ns, "app=ha", n, 60).with_context(logs);
    let apply = |replicas: usize| {
        workload::apply(
            ground,
            ns,
            workload::busybox_deployment("ha", replicas, &name),
        )
    };
    apply(3)?;
    running(3)?;
    let standby = activity(port_b)?;
    ensure!(
        standby == (0.0, 0.0),
        "the standby acted: {} ECI calls, {} pod writes\n{}",
        standby.0,
        standby.1,
        logs()
    );

    // Freeze the leader: b takes over once the lease has not changed for its duration.
    a.signal(Signal::SIGSTOP)?;
    let frozen = Instant::now();
    wait_role(port_b, "leader", 20).with_context(logs)?;
    eprintln!(
        "[leadership] frozen leader replaced in {:.2} s (lease 3 s)",
        frozen.elapsed().as_secs_f64()
    );
    apply(4)?;
    running(4)?;

    // Wake a: its term ended while it slept; it sends nothing, and stands by.
    let woken = std::time::Instant::now();
    a.signal(Signal::SIGCONT)?;
    let woke = activity(port_a)?;
    std::thread::sleep(Duration::from_secs(3));
    let later = activity(port_a)?;
    ensure!(
        later == woke,
        "the woken leader acted: ECI calls {} → {}, pod writes {} → {}\n{}",
        woke.0,
        later.0,
        woke.1,
        later.1,
        logs()
    );
    // Nothing reached ECI from a once it woke, not even in the moment before it noticed.
    let sent = tap.sent_after(woken);
    ensure!(
        sent.is_empty(),
        "the woken leader sent {} requests to ECI after it woke\n{}",
        sent.len(),
        logs()
    );
    ensure!(
        probe_at(port_a, "/readyz")? == (200, "standby".to_owned()),
        "a is not a standby after waking: {:?}",
        probe_at(port_a, "/readyz")?
    );
    ensure!(
        a.logs().contains("stopped leading"),
        "a did not say it stopped leading\n{}",
        a.logs()
    );

    // Kill the leader outright: a takes over once the lease has lapsed, and acts.
    b.signal(Signal::SIGKILL)?;
    let killed = Instant::now();
    wait_role(port_a, "leader", 20).with_context(|| a.logs())?;
    eprintln!(
        "[leadership] killed leader replaced in {:.2} s (lease 3 s)",
        killed.elapsed().as_secs_f64()
    );
    apply(5)?;
    running(5)?;

    // The Node never left Ready.
    let _ = watch.kill();
    let seen = watch.wait_with_output()?;
    let states: Vec<String> = String::from_utf8_lossy(&seen.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    ensure!(
        !states.is_empty() && states.iter().all(|s| s == "True"),
        "the Node's Ready condition was {states:?}"
    );
    Ok(())
}
