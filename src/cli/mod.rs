//! The one edge of the crate: the `eci-vk` command line.
//!
//! Everything that touches the process lives here and only here: parsing the command line
//! (the flags themselves are [`crate::config`]'s), logging set-up ([`telemetry`]), the async
//! runtime ([`runtime`]), signals ([`shutdown`]), the exit codes, and the wiring of rooms into a
//! running program, one file per subcommand. It is also the only module that may build the
//! emulator and the agent (DESIGN.md): the node's rooms only ever see an ECI client.

mod agent;
mod crd;
mod emulator;
mod explain_match;
mod kube_client;
mod run;
mod runtime;
mod shutdown;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{
    AgentArgs, EmulatorArgs, ExplainMatchArgs, LogFormat, RunArgs, env::ENV_LOG_FORMAT,
};

/// Exit code for bad input (flags, settings, files), decided here only.
const EXIT_USAGE: u8 = 2;

/// A Kubernetes virtual node for Alibaba Cloud ECI, with the ImageCache controller.
#[derive(Debug, Parser)]
#[command(name = "eci-vk", version, about, long_about = None)]
pub struct Cli {
    /// Log format (logs go to standard error).
    #[arg(long, global = true, env = ENV_LOG_FORMAT, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `eci-vk`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the virtual node: register it and run its pods as ECI container groups.
    Run(Box<RunArgs>),
    /// Serve the ECI OpenAPI on loopback (the local stand-in for Alibaba Cloud).
    Emulator(Box<EmulatorArgs>),
    /// Run the emulator's data plane (image pulls, snapshots, runc containers) standalone.
    Agent(Box<AgentArgs>),
    /// Print the ImageCache CustomResourceDefinition as YAML.
    Crd,
    /// Show which of the cluster's ImageCaches a pod would start from, and why.
    ExplainMatch(ExplainMatchArgs),
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let renamed = renamed_variables(std::env::vars_os().map(|(name, _)| name));
    if !renamed.is_empty() {
        // A setting an operator wrote under the old name is bad input, not something to run
        // without: one line naming every variable to rename.
        let list: Vec<String> = renamed
            .iter()
            .map(|(old, new)| format!("{old} → {new}"))
            .collect();
        eprintln!(
            "eci-vk: environment variables of an earlier release are no longer read; rename {}",
            list.join(", ")
        );
        return ExitCode::from(EXIT_USAGE);
    }
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Crd => crd::main(),
        Command::Run(args) => run::main(*args),
        Command::Emulator(args) => emulator::main(*args),
        Command::Agent(args) => agent::main(*args),
        Command::ExplainMatch(args) => explain_match::main(args),
    }
}

/// The agent's variables of the release before the one `VK_` prefix (`ECI_AGENT_X`), each with
/// the name that replaced it (`VK_X`).
fn renamed_variables(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<(String, String)> {
    let mut renamed: Vec<(String, String)> = names
        .filter_map(|name| {
            let name = name.into_string().ok()?;
            let rest = name.strip_prefix("ECI_AGENT_")?.to_owned();
            Some((name, format!("VK_{rest}")))
        })
        .collect();
    renamed.sort();
    renamed
}

/// How a subcommand ended badly: the one line it prints, and its exit code.
#[derive(Debug)]
enum Failure {
    /// Bad input: flags, settings, files (exit 2).
    Usage(String),
    /// Anything else (exit 1).
    Runtime(String),
}

impl Failure {
    /// Bad input described by `error` and its causes, on one line.
    fn usage(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Usage(crate::error_chain(error))
    }

    /// A failure described by `error` and its causes, on one line.
    fn runtime(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Runtime(crate::error_chain(error))
    }

    /// Prints `eci-vk <command>: <line>` to stderr and returns the exit code.
    fn report(self, command: &str) -> ExitCode {
        match self {
            Self::Usage(line) => {
                eprintln!("eci-vk {command}: {line}");
                ExitCode::from(EXIT_USAGE)
            }
            Self::Runtime(line) => {
                eprintln!("eci-vk {command}: {line}");
                ExitCode::FAILURE
            }
        }
    }
}

/// The exit code of a subcommand's outcome, printing its failure.
fn exit(command: &str, outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(command),
    }
}

#[cfg(test)]
mod tests;
