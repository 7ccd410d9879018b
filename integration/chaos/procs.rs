//! The processes a chaos run kills and restarts: the emulator (its state kept in its data
//! directory), the node (its Node object kept, as a crashed kubelet's is) and kube-apiserver
//! (restarted by the ground's own `up.sh`). Each keeps every log it wrote across restarts, for
//! the secret check at the end.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::support::{Ground, children};

/// The emulator's AccessKey for this run: its secret is one of the values that must never
/// appear in a log, an event or a status.
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

/// `eci-vk emulator` on a fixed port with a data directory, restarted from it after a kill.
pub struct Emulator {
    eci_vk: PathBuf,
    dir: PathBuf,
    listen: String,
    key: AccessKey,
    child: Option<Child>,
    starts: u32,
    seed: u64,
    /// `http://127.0.0.1:PORT/`.
    pub endpoint: String,
}

impl Emulator {
    pub fn start(eci_vk: &Path, dir: &Path, key: AccessKey, seed: u64) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut emulator = Self {
            eci_vk: eci_vk.to_owned(),
            dir: dir.to_owned(),
            listen: format!("127.0.0.1:{port}"),
            key,
            child: None,
            starts: 0,
            seed,
            endpoint: format!("http://127.0.0.1:{port}/"),
        };
        emulator.restart()?;
        Ok(emulator)
    }

    /// The file the emulator re-reads its fault settings from (`--fault-file`).
    pub fn fault_file(&self) -> PathBuf {
        self.dir.join("faults")
    }

    /// Starts the emulator again on the same port and data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("emulator.log"))?;
        let mut child = Command::new(&self.eci_vk)
            .args([
                "emulator",
                "--listen",
                &self.listen,
                "--runtime",
                "simulated",
            ])
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--sim-start-ms", "300", "--sim-pull-ms", "500"])
            .arg("--fault-file")
            .arg(self.fault_file())
            .args([
                "--fault-seed",
                &self.seed.to_string(),
                "--fault-slow-ms",
                "2000",
            ])
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &self.key.id)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", &self.key.secret)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("cannot start eci-vk emulator")?;
        children::register(&child);
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "emulator start {} did not say where it listens: {line:?}",
                self.starts
            );
        }
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            children::kill(&mut child);
        }
    }

    pub fn client(&self) -> Result<eci_vk::eci::Client> {
        let credentials = eci_vk::eci::Credentials::new(&self.key.id, &self.key.secret, None);
        let mut config = eci_vk::eci::ClientConfig::new("cn-hangzhou", credentials);
        config.endpoint = eci_vk::eci::Endpoint::Url(self.endpoint.clone());
        Ok(eci_vk::eci::Client::new(config)?)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("emulator.log")).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            children::stop(&mut child);
        }
    }
}

/// `eci-vk run` for the chaos node. Unlike the suites' `NodeChild`, a kill leaves the Node
/// object alone: a crashed node's pods stay where they are, and the restarted process adopts
/// them.
pub struct Node {
    eci_vk: PathBuf,
    kubeconfig: PathBuf,
    node_ip: String,
    dir: PathBuf,
    key: AccessKey,
    endpoint: String,
    child: Option<Child>,
    starts: u32,
    /// When the running process started.
    pub up_since: Option<Instant>,
    pub name: String,
}

impl Node {
    pub fn start(
        ground: &Ground,
        name: &str,
        dir: &Path,
        endpoint: &str,
        key: AccessKey,
    ) -> Result<Self> {
        let mut node = Self {
            eci_vk: ground.eci_vk().to_owned(),
            kubeconfig: ground.kubeconfig.clone(),
            node_ip: ground.node_ip.clone(),
            dir: dir.to_owned(),
            key,
            endpoint: endpoint.to_owned(),
            child: None,
            starts: 0,
            up_since: None,
            name: name.to_owned(),
        };
        node.restart()?;
        Ok(node)
    }

    pub fn restart(&mut self) -> Result<()> {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))?;
        let child = Command::new(&self.eci_vk)
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--node-name", &self.name, "--pod-sync-interval", "1s"])
            .args(["--kubelet-listen", &format!("{}:0", self.node_ip)])
            .args(["--internal-ip", &self.node_ip])
            .args(["--eci-endpoint", &self.endpoint])
            .args(["--image-cache-controller", "true"])
            .args(["--image-cache-class", &self.name])
            .arg("--data-dir")
            .arg(self.dir.join("node-data"))
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &self.key.id)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", &self.key.secret)
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("VK_LEADER_ELECT_IDENTITY", format!("{}-chaos", self.name))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start eci-vk run")?;
        children::register(&child);
        self.child = Some(child);
        self.up_since = Some(Instant::now());
        Ok(())
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            children::kill(&mut child);
        }
        self.up_since = None;
    }

    /// Whether the process ended on its own (a crash is a finding).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            children::stop(&mut child);
        }
    }
}

/// The ground's run directory (pid files, `up.sh`'s state).
fn run_dir() -> PathBuf {
    std::env::var_os("GROUND_RUN_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ground/run"),
        PathBuf::from,
    )
}

/// `kill -9` of kube-apiserver, then the ground's `up.sh` starts it again (it starts only what
/// is not running) and waits for `/readyz`. Returns how long the API server was away.
pub fn restart_apiserver() -> Result<Duration> {
    let pidfile = run_dir().join("pids/kube-apiserver.pid");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("reading {}", pidfile.display()))?
        .trim()
        .parse()?;
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    // Wait for it to be gone before up.sh looks, or it would see it still running.
    for _ in 0..100 {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/ground/up.sh"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if !out.status.success() {
        bail!(
            "up.sh did not bring kube-apiserver back: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(started.elapsed())
}
