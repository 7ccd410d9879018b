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
mod zones;

pub use agent::{AgentAddress, AgentAddressError, AgentArgs, AgentOptions, DEFAULT_AGENT_SOCKET};
pub use emulator::EmulatorArgs;
pub use explain::ExplainMatchArgs;
pub use run::{
    Capacity, ConfigError, ConfigErrors, CredentialSettings, DEFAULT_NODE_NAME, DEFAULT_TAINT,
    ImageCachePolicyArgs, LeaderElection, LeaderElectionArgs, ProfileArgs, ProfileSource, RunArgs,
    RunConfig, TaintSpec, WebhookSettings,
};
pub use zones::{MAX_VSWITCHES, ZoneNode};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Which ECI `eci-vk run` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloudMode {
    /// Alibaba Cloud when the credential chain finds credentials without asking the network
    /// (environment, RRSA, credentials files, `ALIBABA_CLOUD_ECS_METADATA`, --credentials-dir),
    /// else the emulator in-process.
    Auto,
    /// Alibaba Cloud (or --eci-endpoint); without credentials elsewhere, the ECS instance's
    /// RAM role from the metadata service.
    Aliyun,
    /// The emulator in-process, whatever credentials are around.
    Emulator,
}

/// A duration flag: `2s`, `500ms`, `1m30s` or ISO 8601 (`PT2S`), as Kubernetes components
/// take them.
///
/// # Errors
/// A message for clap when the value is not a non-negative duration.
pub fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let parsed: jiff::SignedDuration = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 2s, 500ms or 1m30s"))?;
    std::time::Duration::try_from(parsed).map_err(|_| format!("{value:?} is negative"))
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
