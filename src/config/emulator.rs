//! Flags of `eci-vk emulator`: the ECI OpenAPI on loopback, the local stand-in for Alibaba
//! Cloud.

use std::{net::SocketAddr, path::PathBuf};

use super::{
    Runtime,
    agent::{AgentAddress, AgentOptions},
    env::{
        ENV_ACCESS_KEY_ID, ENV_DATA_DIR, ENV_EMULATOR_ACCESS_KEY_SECRET_FILE, ENV_EMULATOR_AGENT,
        ENV_EMULATOR_AGENT_TOKEN_FILE, ENV_EMULATOR_AUTO_CREATE_IMAGE_CACHE,
        ENV_EMULATOR_ECS_RAM_ROLE, ENV_EMULATOR_FAULT_FILE, ENV_EMULATOR_FAULT_KINDS,
        ENV_EMULATOR_FAULT_RATE, ENV_EMULATOR_FAULT_SEED, ENV_EMULATOR_FAULT_SLOW_MS,
        ENV_EMULATOR_IMAGE_CACHE_QUOTA, ENV_EMULATOR_LISTEN, ENV_EMULATOR_NO_THROTTLE,
        ENV_EMULATOR_REGULAR_SNAPSHOT_MS, ENV_EMULATOR_SOLD_OUT, ENV_EMULATOR_STS_CREDENTIAL_TTL,
        ENV_EMULATOR_VSWITCH_ZONES, ENV_RUNTIME, ENV_SIM_PULL_MS, ENV_SIM_SNAPSHOT_MS,
        ENV_SIM_START_MS,
    },
};

/// Flags of `eci-vk emulator`. The secret is not among them (see `access_key_secret_file`).
#[derive(Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to serve the OpenAPI on (port 0 picks a free port; the address is printed).
    #[arg(long, env = ENV_EMULATOR_LISTEN, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The one AccessKey ID the emulator accepts.
    #[arg(long, env = ENV_ACCESS_KEY_ID)]
    pub access_key_id: String,
    /// A file holding its secret (one line). Without it the secret is read from
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`; there is no flag for the secret itself, which `ps`
    /// and shell history would show.
    #[arg(long, env = ENV_EMULATOR_ACCESS_KEY_SECRET_FILE)]
    pub access_key_secret_file: Option<PathBuf>,
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
    /// Which zone each vSwitch is in, `ZONE=vsw-1,vsw-2;ZONE2=vsw-3` (the node's
    /// `--zone-vswitches` syntax). A group is in its vSwitch's zone; a create whose vSwitches
    /// are all in another zone than its `ZoneId` is refused. A vSwitch not listed is in the
    /// zone the create names (`<region>-a` when it names none).
    #[arg(long, env = ENV_EMULATOR_VSWITCH_ZONES, value_parser = parse_vswitch_zones)]
    pub vswitch_zones: Option<std::collections::BTreeMap<String, String>>,
    /// Longest life of the temporary credentials its STS (`AssumeRole`,
    /// `AssumeRoleWithOIDC`) and ECS metadata stand-ins issue, e.g. `30s` to see refreshes.
    #[arg(long, env = ENV_EMULATOR_STS_CREDENTIAL_TTL, default_value = "1h", value_parser = super::parse_duration)]
    pub sts_credential_ttl: std::time::Duration,
    /// The RAM role its metadata stand-in says is attached to the instance.
    #[arg(long, env = ENV_EMULATOR_ECS_RAM_ROLE, default_value = "EciVirtualKubeletRole")]
    pub ecs_ram_role: String,
    /// Chaos: the probability (0 to 1) that an OpenAPI call gets an injected fault.
    #[arg(long, env = ENV_EMULATOR_FAULT_RATE, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Chaos: seed of the fault choices, for a reproducible run (random without it).
    #[arg(long, env = ENV_EMULATOR_FAULT_SEED)]
    pub fault_seed: Option<u64>,
    /// Chaos: the kinds of fault injected (repeat or comma-separate): `5xx` (503/500, nothing
    /// done), `throttling` (`Throttling.User`), `slow` (answer after --fault-slow-ms),
    /// `applied-then-timeout` (writes only: applied, then 503).
    #[arg(
        long,
        env = ENV_EMULATOR_FAULT_KINDS,
        value_delimiter = ',',
        default_value = "5xx,throttling,slow,applied-then-timeout",
        value_parser = ["5xx", "throttling", "slow", "applied-then-timeout"]
    )]
    pub fault_kinds: Vec<String>,
    /// Chaos: milliseconds a `slow` answer waits.
    #[arg(long, env = ENV_EMULATOR_FAULT_SLOW_MS, default_value_t = 3000)]
    pub fault_slow_ms: u64,
    /// Chaos: a file read every second; a number from 0 to 1 in it replaces --fault-rate while
    /// it exists (a chaos driver writes it to turn faults up and down).
    #[arg(long, env = ENV_EMULATOR_FAULT_FILE)]
    pub fault_file: Option<PathBuf>,
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

/// A probability: a number from 0 to 1.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{text:?} is not a number from 0 to 1"))
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret_file", &self.access_key_secret_file)
            .field("runtime", &self.runtime)
            .field("agent", &self.agent)
            .field("agent_token_file", &self.agent_token_file)
            .field("data_dir", &self.data_dir)
            .field("no_throttle", &self.no_throttle)
            .field("auto_create_image_cache", &self.auto_create_image_cache)
            .field("image_cache_quota", &self.image_cache_quota)
            .field("fault_rate", &self.fault_rate)
            .field("fault_seed", &self.fault_seed)
            .field("fault_kinds", &self.fault_kinds)
            .field("fault_slow_ms", &self.fault_slow_ms)
            .field("fault_file", &self.fault_file)
            .finish_non_exhaustive()
    }
}

/// `--vswitch-zones`: each vSwitch id and its zone.
///
/// # Errors
/// The list does not parse (see [`super::zones::parse_zone_vswitches`]).
pub fn parse_vswitch_zones(
    value: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    Ok(super::zones::parse_zone_vswitches(value)?
        .into_iter()
        .flat_map(|z| z.vswitches.into_iter().map(move |v| (v, z.zone.clone())))
        .collect())
}
