//! `eci-vk emulator` as a separate process, the way a stranger's client would meet it:
//! started on a free loopback port, reached over HTTP, stopped when the guard drops.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
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
}

impl EmulatorProcess {
    /// Starts `eci-vk emulator --listen 127.0.0.1:0` with `extra` flags and waits for its address.
    /// The runtime is `simulated` unless `extra` names one (`--runtime runc`).
    pub fn start(eci_vk: &std::path::Path, extra: &[&str]) -> Result<Self> {
        let runtime: &[&str] = if extra.contains(&"--runtime") {
            &[]
        } else {
            &["--runtime", "simulated"]
        };
        let mut child = Command::new(eci_vk)
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(runtime)
            .args([
                "--access-key-id",
                ACCESS_KEY_ID,
                "--access-key-secret",
                ACCESS_KEY_SECRET,
            ])
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
        })
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

impl Drop for EmulatorProcess {
    /// SIGTERM first: the emulator's agent then removes its containers, mounts and
    /// namespaces.
    fn drop(&mut self) {
        super::children::stop(&mut self.child);
    }
}
