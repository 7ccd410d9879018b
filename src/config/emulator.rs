//! Flags of `eci-vk emulator`: the ECI OpenAPI on loopback, the local stand-in for Alibaba
//! Cloud.

use std::{net::SocketAddr, path::PathBuf};

use super::{
    Runtime,
    agent::{AgentAddress, AgentOptions},
    env::{
        ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_DATA_DIR, ENV_EMULATOR_AGENT,
        ENV_EMULATOR_AGENT_TOKEN_FILE, ENV_EMULATOR_AUTO_CREATE_IMAGE_CACHE,
        ENV_EMULATOR_ECS_RAM_ROLE, ENV_EMULATOR_IMAGE_CACHE_QUOTA, ENV_EMULATOR_LISTEN,
        ENV_EMULATOR_NO_THROTTLE, ENV_EMULATOR_REGULAR_SNAPSHOT_MS, ENV_EMULATOR_SOLD_OUT,
        ENV_EMULATOR_STS_CREDENTIAL_TTL, ENV_RUNTIME, ENV_SIM_PULL_MS, ENV_SIM_SNAPSHOT_MS,
        ENV_SIM_START_MS,
    },
};

/// Flags of `eci-vk emulator`. `Debug` leaves the secret out.
#[derive(Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to serve the OpenAPI on (port 0 picks a free port; the address is printed).
    #[arg(long, env = ENV_EMULATOR_LISTEN, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The one AccessKey ID the emulator accepts.
    #[arg(long, env = ENV_ACCESS_KEY_ID)]
    pub access_key_id: String,
    /// Its secret (never logged or echoed).
    #[arg(long, env = ENV_ACCESS_KEY_SECRET, hide_env_values = true)]
    pub access_key_secret: String,
    /// The in-process agent runtime (ignored with --agent).
    #[arg(long, env = ENV_RUNTIME, value_enum, default_value_t = Runtime::Runc)]
    pub runtime: Runtime,
    /// Use the agent at this address instead of an in-process one: `unix:///PATH` (e.g.
    /// unix:///run/eci-vk/agent.sock) or `tcp://IP:PORT`, which requires --agent-token-file.
    #[arg(long, env = ENV_EMULATOR_AGENT)]
    pub agent: Option<AgentAddress>,
    /// A file holding the agent's bearer token (its --auth-token-file), sent with every call.
    #[arg(long, env = ENV_EMULATOR_AGENT_TOKEN_FILE, requires = "agent")]
    pub agent_token_file: Option<PathBuf>,
    /// Keep state in this directory so a restarted emulator knows its groups and caches.
    #[arg(long, env = ENV_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Serve without the per-action quotas.
    #[arg(long, env = ENV_EMULATOR_NO_THROTTLE, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_throttle: bool,
    /// When AutoMatchImageCache finds no cache holding every image of a group, build an
    /// automatic image cache of them, as current ECI does (`false` only matches).
    #[arg(long, env = ENV_EMULATOR_AUTO_CREATE_IMAGE_CACHE, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub auto_create_image_cache: bool,
    /// Manual image caches the account may hold (ListUsage `MaxImageCacheCount`). ECI's default
    /// is 50; an account can have it raised through Quota Center.
    #[arg(
        long,
        env = ENV_EMULATOR_IMAGE_CACHE_QUOTA,
        default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub image_cache_quota: u32,
    /// Instance specs out of stock (`2-4Gi`, `ecs.c6.large`; repeat or comma-separate): a
    /// create gets the next spec it names, or `ContainerGroup.NoStock`.
    #[arg(long, env = ENV_EMULATOR_SOLD_OUT, value_delimiter = ',')]
    pub sold_out: Vec<String>,
    /// Longest life of the temporary credentials its STS (`AssumeRole`,
    /// `AssumeRoleWithOIDC`) and ECS metadata stand-ins issue, e.g. `30s` to see refreshes.
    #[arg(long, env = ENV_EMULATOR_STS_CREDENTIAL_TTL, default_value = "1h", value_parser = super::parse_duration)]
    pub sts_credential_ttl: std::time::Duration,
    /// The RAM role its metadata stand-in says is attached to the instance.
    #[arg(long, env = ENV_EMULATOR_ECS_RAM_ROLE, default_value = "EciVirtualKubeletRole")]
    pub ecs_ram_role: String,
    /// Simulated runtime: milliseconds to "pull" one image.
    #[arg(long, env = ENV_SIM_PULL_MS, default_value_t = 500)]
    pub sim_pull_ms: u64,
    /// Simulated runtime: milliseconds to build a snapshot.
    #[arg(long, env = ENV_SIM_SNAPSHOT_MS, default_value_t = 200)]
    pub sim_snapshot_ms: u64,
    /// Milliseconds ECI's regular snapshot of a cache takes after its images are pulled: a
    /// cache is Ready only then, unless it is an instant (Flash) cache, which is Ready at once
    /// from its local snapshot.
    #[arg(long, env = ENV_EMULATOR_REGULAR_SNAPSHOT_MS, default_value_t = 0)]
    pub regular_snapshot_ms: u64,
    /// Simulated runtime: milliseconds from create to running containers.
    #[arg(long, env = ENV_SIM_START_MS, default_value_t = 200)]
    pub sim_start_ms: u64,
    /// The in-process runc agent's options.
    #[command(flatten)]
    pub agent_options: AgentOptions,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("runtime", &self.runtime)
            .field("agent", &self.agent)
            .field("agent_token_file", &self.agent_token_file)
            .field("data_dir", &self.data_dir)
            .field("no_throttle", &self.no_throttle)
            .field("auto_create_image_cache", &self.auto_create_image_cache)
            .field("image_cache_quota", &self.image_cache_quota)
            .finish_non_exhaustive()
    }
}
