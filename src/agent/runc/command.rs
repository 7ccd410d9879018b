//! Helper programs: runc (typed argv, never a shell string) and `ip`.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Stdio,
};

use serde::Deserialize;
use tokio::process::Command;

use super::RuntimeError;

/// Runs `program args...` to completion; its stdout on success, [`RuntimeError::CommandFailed`]
/// with its stderr otherwise.
pub(crate) async fn run_checked(
    program: impl AsRef<OsStr>,
    args: &[&OsStr],
) -> Result<Vec<u8>, RuntimeError> {
    let program = program.as_ref();
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| RuntimeError::Spawn {
            program: program.to_string_lossy().into_owned(),
            source,
        })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(RuntimeError::CommandFailed {
            command: command_line(program, args),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn command_line(program: &OsStr, args: &[&OsStr]) -> String {
    let mut line = program.to_string_lossy().into_owned();
    for arg in args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `ip args...`.
pub(crate) async fn ip(args: &[&str]) -> Result<Vec<u8>, RuntimeError> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run_checked("ip", &args).await
}

/// The runc binary with the runtime's `--root`.
#[derive(Debug, Clone)]
pub(crate) struct Runc {
    binary: PathBuf,
    root: PathBuf,
}

/// One entry of `runc list --format json`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListedContainer {
    pub id: String,
}

/// The part of `runc events --stats` the runtime reads (the same shape on cgroup v1 and v2).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RuncStats {
    #[serde(default)]
    pub cpu: RuncCpu,
    #[serde(default)]
    pub memory: RuncMemory,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RuncCpu {
    #[serde(default)]
    pub usage: RuncCpuUsage,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RuncCpuUsage {
    #[serde(default)]
    pub total: u64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RuncMemory {
    #[serde(default)]
    pub cache: u64,
    #[serde(default)]
    pub usage: RuncMemoryEntry,
    /// The cgroup's `memory.stat` (v1 names, or v2's `anon`, `file`, `inactive_file`).
    #[serde(default)]
    pub raw: std::collections::HashMap<String, u64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RuncMemoryEntry {
    #[serde(default)]
    pub usage: u64,
    #[serde(default)]
    pub limit: u64,
}

#[derive(Debug, Deserialize)]
struct RuncEvent {
    #[serde(default)]
    data: RuncStats,
}

impl Runc {
    pub(crate) fn new(binary: PathBuf, root: PathBuf) -> Self {
        Self { binary, root }
    }

    /// A command `runc --root <root> args...`, stdin from /dev/null.
    pub(crate) fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.root).args(args);
        command.stdin(Stdio::null());
        command
    }

    async fn checked(&self, args: &[&OsStr]) -> Result<Vec<u8>, RuntimeError> {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--root"), self.root.as_os_str()];
        all.extend_from_slice(args);
        run_checked(&self.binary, &all).await
    }

    /// `runc run --bundle <bundle> <id>` in the foreground, stdout and stderr piped.
    pub(crate) fn run_foreground(&self, id: &str, bundle: &Path) -> Command {
        let mut command = self.command([OsStr::new("run"), OsStr::new("--bundle")]);
        command
            .arg(bundle)
            .arg(id)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `runc kill [--all] <id> <signal>`.
    pub(crate) async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuntimeError> {
        let mut args = vec![OsStr::new("kill")];
        if all {
            args.push(OsStr::new("--all"));
        }
        args.extend([OsStr::new(id), OsStr::new(signal)]);
        self.checked(&args).await.map(drop)
    }

    /// `runc delete --force <id>`.
    pub(crate) async fn delete_force(&self, id: &str) -> Result<(), RuntimeError> {
        self.checked(&[OsStr::new("delete"), OsStr::new("--force"), OsStr::new(id)])
            .await
            .map(drop)
    }

    /// Every container runc knows under the runtime's root.
    pub(crate) async fn list(&self) -> Result<Vec<ListedContainer>, RuntimeError> {
        let out = self
            .checked(&[
                OsStr::new("list"),
                OsStr::new("--format"),
                OsStr::new("json"),
            ])
            .await?;
        let listed: Option<Vec<ListedContainer>> =
            serde_json::from_slice(&out).map_err(|source| RuntimeError::Parse {
                command: "runc list --format json".into(),
                source,
            })?;
        Ok(listed.unwrap_or_default())
    }

    /// One `runc events --stats <id>` sample.
    pub(crate) async fn stats(&self, id: &str) -> Result<RuncStats, RuntimeError> {
        let out = self
            .checked(&[OsStr::new("events"), OsStr::new("--stats"), OsStr::new(id)])
            .await?;
        let event: RuncEvent =
            serde_json::from_slice(&out).map_err(|source| RuntimeError::Parse {
                command: format!("runc events --stats {id}"),
                source,
            })?;
        Ok(event.data)
    }
}
