//! `eci-vk emulator` as a separate process, the way a stranger's client would meet it:
//! started on a free loopback port, reached over HTTP, stopped when the guard drops.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result, bail};

/// The AccessKey pair the test emulators accept (a fixture, not a secret).
pub const ACCESS_KEY_ID: &str = "LTAI-integration-test";
pub const ACCESS_KEY_SECRET: &str = "integration-test-secret";

/// A running `eci-vk emulator`.
pub struct EmulatorProcess {
    child: Child,
    /// The endpoint it printed, e.g. `http://127.0.0.1:PORT/`.
    pub endpoint: String,
    /// The data directory of an emulator with the runc agent (removed after it stops).
    data: Option<tempfile::TempDir>,
    /// The pod range of its runc agent (`10.x.y.0/24`).
    pub pod_cidr: Option<String>,
}

impl EmulatorProcess {
    /// Starts `eci-vk emulator --listen 127.0.0.1:0` with `extra` flags and waits for its address.
    /// The runtime is `simulated` unless `extra` names one (`--runtime runc`).
    pub fn start(eci_vk: &std::path::Path, extra: &[&str]) -> Result<Self> {
        Self::start_on(eci_vk, "127.0.0.1:0", extra)
    }

    /// [`EmulatorProcess::start`] listening on `listen` (e.g. the worker node's side of the
    /// host, so that a node running in the cluster reaches it).
    pub fn start_on(eci_vk: &std::path::Path, listen: &str, extra: &[&str]) -> Result<Self> {
        let runtime: &[&str] = if extra.contains(&"--runtime") {
            &[]
        } else {
            &["--runtime", "simulated"]
        };
        let mut child = Command::new(eci_vk)
            .args(["emulator", "--listen", listen])
            .args(runtime)
            .args(["--access-key-id", ACCESS_KEY_ID])
            // The secret goes in the environment, never on the command line.
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("RUST_LOG", "warn")
            .spawn()
            .context("cannot start eci-vk emulator")?;
        super::children::register(&child);
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(endpoint) = line.trim().strip_prefix("eci-vk emulator listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            super::children::forget(&child);
            bail!("eci-vk emulator did not say where it listens: {line:?}");
        };
        Ok(Self {
            endpoint: endpoint.to_owned(),
            child,
            data: None,
            pod_cidr: None,
        })
    }

    /// Starts an emulator with the real (runc) agent: its own data directory, host bridge and
    /// pod range (so emulators of parallel tests, and of other test processes, do not meet),
    /// the ground's plain registry over HTTP and the authenticated one's CA trusted.
    pub fn start_runc(ground: &super::Ground, extra: &[&str]) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let data = tempfile::Builder::new()
            .prefix("eci-vk-agent-test-")
            .tempdir()?;
        let data_dir = data.path().to_string_lossy().into_owned();
        // Bridge names are at most 15 characters; the pid keeps test processes apart.
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 256;
        let pid = std::process::id();
        let bridge = format!("ecivk{:x}-{n:x}", pid & 0xffff);
        let cidr = format!("10.{}.{n}.0/24", 160 + pid % 64);
        let ca = ground
            .auth_registry
            .ca
            .as_ref()
            .context("the authenticated registry has a CA")?
            .to_string_lossy()
            .into_owned();
        let mut args = vec![
            "--runtime",
            "runc",
            "--data-dir",
            &data_dir,
            "--bridge",
            &bridge,
            "--pod-cidr",
            &cidr,
            "--plain-http-registry",
            &ground.registry.host,
            "--registry-ca-file",
            &ca,
        ];
        args.extend_from_slice(extra);
        let mut emulator = Self::start(ground.eci_vk(), &args)?;
        emulator.data = Some(data);
        emulator.pod_cidr = Some(cidr);
        Ok(emulator)
    }

    /// The agent's data directory (`<data>/agent`) of an emulator from [`Self::start_runc`].
    pub fn agent_dir(&self) -> Option<std::path::PathBuf> {
        self.data.as_ref().map(|d| d.path().join("agent"))
    }

    /// One counter of the in-process agent's Prometheus text (0 when the series is absent).
    pub async fn agent_counter(&self, series: &str) -> Result<u64> {
        let url = format!("{}metrics", self.endpoint);
        let text = reqwest::get(&url).await?.error_for_status()?.text().await?;
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Bytes the agent pulled for container group `id`.
    pub async fn group_pulled(&self, id: &str) -> Result<u64> {
        self.agent_counter(&format!(
            "eci_agent_container_group_pulled_bytes_total{{container_group=\"{id}\"}}"
        ))
        .await
    }

    /// A configuration of our ECI client for this emulator (V3, default retries and budget),
    /// for tests to adjust before building the client.
    pub fn client_config(&self) -> eci_vk::eci::ClientConfig {
        let credentials = eci_vk::eci::Credentials::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET, None);
        let mut config = eci_vk::eci::ClientConfig::new("cn-hangzhou", credentials);
        config.endpoint = eci_vk::eci::Endpoint::Url(self.endpoint.clone());
        config
    }

    /// Our ECI client, pointed at this emulator.
    pub fn client(&self) -> Result<eci_vk::eci::Client> {
        Ok(eci_vk::eci::Client::new(self.client_config())?)
    }

    /// `host:port` of the endpoint, as SDKs that add the scheme themselves want it.
    pub fn host_port(&self) -> &str {
        let rest = self
            .endpoint
            .split_once("://")
            .map_or(self.endpoint.as_str(), |(_, r)| r);
        rest.trim_end_matches('/')
    }
}

impl EmulatorProcess {
    /// `kill -9`: no last save, no cleanup, as a crash or an OOM kill ends it.
    pub fn kill(mut self) {
        super::children::kill(&mut self.child);
    }
}

impl Drop for EmulatorProcess {
    /// SIGTERM first: the emulator's agent then removes its containers, mounts and
    /// namespaces.
    fn drop(&mut self) {
        super::children::stop(&mut self.child);
        // The data directory goes only after the agent in the child stopped using it.
        drop(self.data.take());
    }
}

/// The Python of the official ECI SDK's virtualenv, installed (once, pinned) by
/// `integration/ground/install-python-sdk.sh`.
pub fn python_sdk() -> anyhow::Result<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("bash")
        .arg(format!("{root}/integration/ground/install-python-sdk.sh"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "install-python-sdk.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Runs `integration/sdk/<script>` with the official SDK's Python and the emulator's test
/// AccessKey; its standard output.
pub fn sdk_script(python: &str, script: &str, args: &[&str]) -> Result<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(python)
        .arg(format!("{root}/integration/sdk/{script}"))
        .args(args)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .output()
        .with_context(|| format!("cannot run {script}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
