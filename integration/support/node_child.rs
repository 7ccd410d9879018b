//! `eci-vk run` as a test's child process, pointed at an `eci-vk emulator` the test started:
//! one way to start it, and a guard that stops it and deletes its Node however the test ends.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use anyhow::{Context, Result};

use super::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET},
};

/// A running `eci-vk run`; dropping it kills the process and deletes its Node.
pub struct NodeChild<'g> {
    ground: &'g Ground,
    /// The Node's name (the first node's, with a node per zone).
    pub name: String,
    /// Every Node it registers: `name`, or one per zone.
    pub nodes: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

/// The Prometheus text a node serves with `--metrics-addr 127.0.0.1:<port>`.
pub fn metrics_at(port: u16) -> Result<String> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async { reqwest::get(url).await?.text().await })?)
}

/// `GET http://127.0.0.1:<port><path>`: the status code and the body.
pub fn probe_at(port: u16, path: &str) -> Result<(u16, String)> {
    let url = format!("http://127.0.0.1:{port}{path}");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let answer = reqwest::get(url).await?;
            let status = answer.status().as_u16();
            Ok((status, answer.text().await?))
        })
}

/// The sum of every sample of the metric family `name` (all label sets) in `text`.
pub fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum()
}

/// The value of the sample `series` (name and labels, as written) in `text`; 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The credentials a node child starts with.
pub enum CloudEnv {
    /// The emulator's AccessKey in `ALIBABA_CLOUD_ACCESS_KEY_*`.
    AccessKey,
    /// No AccessKey in the environment, `HOME` set to the test's directory (so no file of the
    /// machine's user is found), and these variables set.
    Chain(Vec<(String, String)>),
}

impl<'g> NodeChild<'g> {
    /// Starts node `name` against the emulator at `endpoint` (with the emulator's test
    /// AccessKey), its kubelet API on a free loopback port, a status pass every 0.5 s, state
    /// under `dir/data` and its log in `dir/node.log`; `extra` flags are added, and `rust_log`
    /// is its `RUST_LOG`. It leaves the cluster's ImageCaches to the suites about them.
    pub fn spawn(
        ground: &'g Ground,
        name: String,
        endpoint: &str,
        dir: &Path,
        extra: &[String],
        rust_log: &str,
    ) -> Result<Self> {
        Self::spawn_with(
            ground,
            name,
            endpoint,
            dir,
            extra,
            rust_log,
            CloudEnv::AccessKey,
        )
    }

    /// [`NodeChild::spawn`] with the credentials of `cloud`.
    pub fn spawn_with(
        ground: &'g Ground,
        name: String,
        endpoint: &str,
        dir: &Path,
        extra: &[String],
        rust_log: &str,
        cloud: CloudEnv,
    ) -> Result<Self> {
        let naming = vec!["--node-name".to_owned(), name.clone()];
        Self::spawn_named(
            ground,
            vec![name],
            &naming,
            endpoint,
            dir,
            extra,
            rust_log,
            cloud,
        )
    }

    /// Starts one process serving a node per zone of `zones` (`(zone, vSwitch)`), named
    /// `<prefix>-<zone>`, like [`NodeChild::spawn`] otherwise.
    pub fn spawn_zones(
        ground: &'g Ground,
        prefix: &str,
        zones: &[(&str, &str)],
        endpoint: &str,
        dir: &Path,
        extra: &[String],
    ) -> Result<Self> {
        let layout = zones
            .iter()
            .map(|(zone, vswitch)| format!("{zone}={vswitch}"))
            .collect::<Vec<_>>()
            .join(";");
        let naming = vec![
            "--zone-node-prefix".to_owned(),
            prefix.to_owned(),
            "--zone-vswitches".to_owned(),
            layout,
        ];
        let nodes = zones
            .iter()
            .map(|(zone, _)| format!("{prefix}-{zone}"))
            .collect();
        Self::spawn_named(
            ground,
            nodes,
            &naming,
            endpoint,
            dir,
            extra,
            "info",
            CloudEnv::AccessKey,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_named(
        ground: &'g Ground,
        nodes: Vec<String>,
        naming: &[String],
        endpoint: &str,
        dir: &Path,
        extra: &[String],
        rust_log: &str,
        cloud: CloudEnv,
    ) -> Result<Self> {
        let name = nodes.first().cloned().context("no node")?;
        let log = dir.join("node.log");
        let mut command = Command::new(ground.eci_vk());
        match cloud {
            CloudEnv::AccessKey => {
                command
                    .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
                    .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET);
            }
            CloudEnv::Chain(vars) => {
                command
                    .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
                    .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
                    .env("HOME", dir)
                    .envs(vars);
            }
        }
        let child = command
            .arg("run")
            .arg("--kubeconfig")
            .arg(&ground.kubeconfig)
            .args(naming)
            .args(["--pod-sync-interval", "500ms"])
            .args(["--kubelet-listen", &format!("{}:0", ground.node_ip)])
            .args(["--internal-ip", &ground.node_ip])
            .args(["--eci-endpoint", endpoint])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("RUST_LOG", rust_log)
            .env("VK_IMAGE_CACHE_CONTROLLER", "false")
            // One identity per node name, as a pod's name: a restarted node takes its Lease
            // back at once, as a restarted container of the same pod would.
            .env("VK_LEADER_ELECT_IDENTITY", format!("{name}-test"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start eci-vk run")?;
        super::children::register(&child);
        Ok(Self {
            ground,
            name,
            nodes,
            child: Some(child),
            log,
        })
    }

    /// Waits up to a minute for every Node to be Ready; the error carries the node's log.
    pub fn wait_ready(&self) -> Result<()> {
        for name in &self.nodes {
            self.ground
                .wait_node_ready(name, 60)
                .with_context(|| format!("node log:\n{}", self.logs()))?;
        }
        Ok(())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` to the process (SIGSTOP freezes it, SIGCONT wakes it).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<()> {
        let pid = self.pid().context("the node process has ended")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }

    /// Kills the process with SIGKILL and leaves its Nodes in place, as a crash would.
    pub fn crash(mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
            super::children::forget(&child);
        }
        self.nodes.clear();
        Ok(())
    }

    /// What the node has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeChild<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            super::children::forget(&child);
        }
        if !self.nodes.is_empty() {
            let _ = self
                .ground
                .kubectl()
                .args(["delete", "node", "--wait=false", "--ignore-not-found"])
                .args(&self.nodes)
                .ok();
        }
    }
}
