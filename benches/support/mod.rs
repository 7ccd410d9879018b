//! What the two ground benchmarks (pod_start, scale) share: the test ground's description,
//! child processes stopped with SIGTERM (so an emulator's agent removes its containers),
//! the emulator and node processes, a tiny HTTP GET for Prometheus text, summaries, and the
//! output directory `target/bench/`.
#![allow(dead_code)] // each bench uses a different part

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{sys::signal::Signal, unistd::Pid};

/// The AccessKey pair the bench's emulators accept (a fixture, not a secret).
pub const ACCESS_KEY_ID: &str = "LTAI-bench";
pub const ACCESS_KEY_SECRET: &str = "bench-secret";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where results go: `target/bench/`.
pub fn out_dir() -> Result<PathBuf> {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The eci-vk binary cargo built for this bench (release profile).
pub fn eci_vk() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_eci-vk"))
}

/// The test ground, as `integration/ground/up.sh` describes it in `ground.env`.
pub struct Ground {
    pub env: BTreeMap<String, String>,
    /// Whether this bench started it (and so stops it).
    started: bool,
}

impl Ground {
    /// Reuses a running ground, or starts one with `up.sh` (stopped again on drop). The ground
    /// lives in `GROUND_RUN_DIR` when set (as for `up.sh`), else `target/ground/run`.
    pub fn reuse_or_start() -> Result<Self> {
        let run_dir = std::env::var_os("GROUND_RUN_DIR")
            .map_or_else(|| root().join("target/ground/run"), PathBuf::from);
        let file = run_dir.join("ground.env");
        let running = file.exists() && {
            let env = read_env(&file)?;
            let kubectl =
                Path::new(env.get("GROUND_BIN").map_or("", String::as_str)).join("kubectl");
            Command::new(kubectl)
                .args(["get", "--raw", "/readyz"])
                .env(
                    "KUBECONFIG",
                    env.get("KUBECONFIG").map_or("", String::as_str),
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mut started = false;
        if !running {
            eprintln!("no running test ground: starting it with integration/ground/up.sh");
            let status = Command::new(root().join("integration/ground/up.sh")).status()?;
            if !status.success() {
                bail!("integration/ground/up.sh failed: {status}");
            }
            started = true;
        }
        Ok(Self {
            env: read_env(&file)?,
            started,
        })
    }

    pub fn get(&self, key: &str) -> Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("ground.env has no {key}"))
    }

    pub fn kubeconfig(&self) -> Result<&str> {
        self.get("KUBECONFIG")
    }

    pub fn kubectl(&self) -> Result<Command> {
        let mut cmd = Command::new(Path::new(self.get("GROUND_BIN")?).join("kubectl"));
        cmd.env("KUBECONFIG", self.kubeconfig()?);
        // The ground's own discovery cache (see `up.sh` on `KUBECACHEDIR`).
        if let Some(cache) = self.env.get("KUBECACHEDIR") {
            cmd.env("KUBECACHEDIR", cache);
        }
        Ok(cmd)
    }

    /// Installs the ImageCache CRD (`eci-vk crd | kubectl apply -f -`, as the README does) and
    /// waits until the API server serves it: a fresh ground has none.
    pub fn install_crd(&self) -> Result<()> {
        let crd = Command::new(eci_vk()).arg("crd").output()?;
        if !crd.status.success() {
            bail!("eci-vk crd failed: {}", crd.status);
        }
        let mut apply = self
            .kubectl()?
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        apply
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(&crd.stdout)?;
        let status = apply.wait()?;
        if !status.success() {
            bail!("kubectl apply of the CRD failed: {status}");
        }
        let status = self
            .kubectl()?
            .args([
                "wait",
                "--for=condition=established",
                "crd/imagecaches.eci.alibabacloud.com",
                "--timeout=60s",
            ])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("the ImageCache CRD was not established: {status}");
        }
        Ok(())
    }

    /// A kube client for the ground's apiserver.
    pub async fn client(&self) -> Result<kube::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let file = kube::config::Kubeconfig::read_from(self.kubeconfig()?)?;
        let config =
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(config)?)
    }
}

impl Drop for Ground {
    fn drop(&mut self) {
        if self.started {
            eprintln!("stopping the test ground this bench started (integration/ground/down.sh)");
            let _ = Command::new(root().join("integration/ground/down.sh")).status();
        }
    }
}

fn read_env(file: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect())
}

/// A child process stopped with SIGTERM (then SIGKILL after 30 s) when dropped.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "{} did not stop within 30 s of SIGTERM: killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `eci-vk emulator --listen 127.0.0.1:0 ARGS`, its log in `log`; returns it and its
/// endpoint (`http://127.0.0.1:PORT/`).
pub fn start_emulator(args: &[&str], log: &Path) -> Result<(Daemon, String)> {
    let mut child = Command::new(eci_vk())
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log)?)
        .spawn()
        .context("cannot start eci-vk emulator")?;
    let stdout = child.stdout.take().context("emulator stdout")?;
    let daemon = Daemon {
        name: "eci-vk emulator",
        child,
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(endpoint) = line.trim().strip_prefix("eci-vk emulator listening on ") else {
        bail!(
            "eci-vk emulator did not say where it listens: {line:?} (log: {})",
            log.display()
        );
    };
    Ok((daemon, endpoint.to_owned()))
}

/// Starts `eci-vk run` against `endpoint` with `args`, its log in `log`.
pub fn start_node(ground: &Ground, endpoint: &str, args: &[&str], log: &Path) -> Result<Daemon> {
    let child = Command::new(eci_vk())
        .arg("run")
        .args([
            "--kubeconfig",
            ground.kubeconfig()?,
            "--eci-endpoint",
            endpoint,
        ])
        .args(args)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        // BENCH_NODE_LOG: the node's log filter for a closer look (`info` unless set).
        .env(
            "RUST_LOG",
            std::env::var("BENCH_NODE_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        // A fixed identity: a restarted node takes its Lease back at once.
        .env("VK_LEADER_ELECT_IDENTITY", "bench-node")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log)?)
        .spawn()
        .context("cannot start eci-vk run")?;
    Ok(Daemon {
        name: "eci-vk run",
        child,
    })
}

/// What `kubectl get <args>` prints, trimmed; empty when it fails.
pub fn kubectl_get(ground: &Ground, args: &[&str]) -> String {
    ground
        .kubectl()
        .ok()
        .and_then(|mut k| k.arg("get").args(args).stderr(Stdio::null()).output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Whether node `name` reports Ready.
pub fn node_ready(ground: &Ground, name: &str) -> bool {
    kubectl_get(
        ground,
        &[
            "node",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
    ) == "True"
}

/// Waits until node `name` reports Ready.
pub fn wait_node_ready(ground: &Ground, name: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if node_ready(ground, name) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("node {name} not Ready within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET http://HOST:PORT/PATH` over HTTP/1.0 (the body of a 200).
pub fn http_get(endpoint: &str, path: &str) -> Result<String> {
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(&host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!(
            "GET {endpoint}{path}: {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body.to_owned())
}

/// The value of one series in Prometheus text (`name{labels}` exactly), if present.
pub fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every series of family `name` (`labels → value`).
pub fn family(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.trim().to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Median, p90, min and max of some samples (seconds).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        // Nearest-rank percentiles.
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        let median = if s.len() % 2 == 1 {
            s[s.len() / 2]
        } else {
            (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
        };
        Some(Self {
            n: s.len(),
            median,
            p90: rank(0.9),
            min: s[0],
            max: s[s.len() - 1],
        })
    }
}

/// Peak resident memory (VmHWM, bytes) and CPU seconds (user + system) of process `pid`.
pub fn proc_usage(pid: u32) -> Result<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let after = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat; `after` starts at field 3.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // USER_HZ: 100 on every Linux architecture we run on (the kernel's ABI for /proc).
    Ok((hwm_kib * 1024, ticks / 100.0))
}

/// The machine, for the record: cores, kernel, memory.
pub fn machine() -> serde_json::Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    serde_json::json!({
        "cores": cores,
        "kernel": kernel.trim(),
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
    })
}

/// The machine's load averages (1, 5, 15 min) as `/proc/loadavg` has them: whether the figures
/// were taken on a busy machine.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Seconds since `start`.
pub fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
