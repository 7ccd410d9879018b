//! kubectl as a user runs it: the tests drive the cluster through the same commands the user
//! guide shows, and read what a person would read.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use anyhow::{Context, Result, bail};

/// A kubectl invocation being built.
pub struct Kubectl {
    program: PathBuf,
    args: Vec<String>,
    stdin: Option<String>,
}

/// What a finished kubectl printed.
pub struct Outcome {
    /// Whether kubectl exited 0.
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// kubectl whose arguments start with `base` (see [`Ground::kubectl_base_args`]).
    pub(super) fn new(program: &Path, base: Vec<String>) -> Self {
        Self {
            program: program.to_owned(),
            args: base,
            stdin: None,
        }
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Feeds `text` on standard input (for `-f -`).
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// Runs kubectl and returns what it printed, whatever its exit code.
    pub fn run(self) -> Result<Outcome> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        if let Some(text) = &self.stdin {
            child
                .stdin
                .take()
                .context("kubectl stdin")?
                .write_all(text.as_bytes())
                .context("cannot write kubectl stdin")?;
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output()?;
        Ok(Outcome {
            success: status.success(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Starts kubectl in the background with its stdout piped (for `--watch`); registered
    /// with the suite's children, so it is killed however the test ends.
    pub fn spawn_piped(self) -> Result<std::process::Child> {
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        super::children::register(&child);
        Ok(child)
    }

    /// Runs kubectl and returns its stdout, or an error with its stderr if it failed.
    pub fn ok(self) -> Result<String> {
        let line = self.args[1..].join(" ");
        let out = self.run()?;
        if !out.success {
            bail!("kubectl {line} failed: {}", out.stderr.trim());
        }
        Ok(out.stdout)
    }

    /// Runs kubectl expecting it to fail, and returns its stderr.
    pub fn fails(self) -> Result<String> {
        let line = self.args[1..].join(" ");
        let out = self.run()?;
        if out.success {
            bail!(
                "kubectl {line} succeeded but should have failed: {}",
                out.stdout.trim()
            );
        }
        Ok(out.stderr)
    }
}
