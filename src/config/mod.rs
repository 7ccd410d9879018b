//! Every setting of every subcommand: flag, environment variable and default, validated once
//! at start.
//!
//! A leaf: it imports no room of the crate, and rooms read the typed values it hands out
//! (`node/` takes [`Capacity`] and [`TaintSpec`]). What can only be checked with a room's own
//! types (a registry bandwidth, an image platform) stays text here and is parsed by the CLI
//! before anything starts. The environment variables are in one table, [`env`].

mod agent;
mod checks;
mod emulator;
pub mod env;
mod explain;
mod run;

pub use agent::{AgentArgs, AgentOptions};
pub use emulator::EmulatorArgs;
pub use explain::ExplainMatchArgs;
pub use run::{Capacity, ConfigError, ConfigErrors, DEFAULT_TAINT, RunArgs, RunConfig, TaintSpec};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The agent runtime of the emulator (standalone, or in-process under `eci-vk run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// Real pulls from registries into cache snapshots, real containers under runc (needs
    /// root and runc).
    Runc,
    /// No processes and no pulls: containers and images are simulated (scale tests).
    Simulated,
}
