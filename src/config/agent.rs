//! Flags of the agent: standalone (`eci-vk agent`), and the same options of the agent that
//! `eci-vk emulator` and `eci-vk run` start in-process.
//!
//! Raw values only: the bandwidth and the platform stay text here and are parsed into the
//! agent's own types by the CLI ([`crate::cli`]) before anything starts, so this module needs
//! no room of the crate.

use std::{net::SocketAddr, path::PathBuf};

use super::env::{
    ENV_AGENT_DATA_DIR, ENV_AGENT_LISTEN, ENV_BRIDGE, ENV_INSECURE_REGISTRIES, ENV_METRICS_ADDR,
    ENV_PLAIN_HTTP_REGISTRIES, ENV_PLATFORM, ENV_POD_CIDR, ENV_REGISTRY_BANDWIDTH,
    ENV_REGISTRY_CA_FILE, ENV_RUNC,
};

/// Options of a real (runc) agent, wherever it runs.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentOptions {
    /// Limit the agent's total download rate from registries (e.g. `8MiB/s`), emulating the
    /// WAN between an ECI instance and a public registry. Off by default.
    #[arg(long, env = ENV_REGISTRY_BANDWIDTH)]
    pub registry_bandwidth: Option<String>,
    /// A registry (`host[:port]`) reached over plain HTTP; repeatable.
    #[arg(long = "plain-http-registry", env = ENV_PLAIN_HTTP_REGISTRIES, value_delimiter = ',')]
    pub plain_http_registries: Vec<String>,
    /// A registry reached over TLS without verifying its certificate; repeatable.
    #[arg(long = "insecure-registry", env = ENV_INSECURE_REGISTRIES, value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
    /// A PEM file of CA certificates trusted for every registry, besides the system's.
    #[arg(long, env = ENV_REGISTRY_CA_FILE)]
    pub registry_ca_file: Option<PathBuf>,
    /// The platform picked from multi-platform images (`os/arch[/variant]`).
    #[arg(long, env = ENV_PLATFORM, default_value = "linux/amd64")]
    pub platform: String,
    /// The host bridge the agent creates for its container groups (at most 15 characters).
    #[arg(long, env = ENV_BRIDGE, default_value = "ecivk0")]
    pub bridge: String,
    /// The pod addresses on that bridge; the bridge takes the first, groups the next.
    #[arg(long, env = ENV_POD_CIDR, default_value = "10.203.0.0/24")]
    pub pod_cidr: String,
    /// The runc binary.
    #[arg(long, env = ENV_RUNC, default_value = "runc")]
    pub runc: PathBuf,
}

/// Flags of `eci-vk agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Address to serve the agent protocol (gRPC) on. The protocol has no authentication:
    /// bind it to an address only the emulator can reach.
    #[arg(long, env = ENV_AGENT_LISTEN, default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// Where images, snapshots and container state live.
    #[arg(long, env = ENV_AGENT_DATA_DIR, default_value = "/var/lib/eci-vk/agent")]
    pub data_dir: PathBuf,
    /// Serve Prometheus metrics (bytes pulled per image, cache and group) at /metrics here
    /// (`--metrics-listen` is its former name).
    #[arg(long, env = ENV_METRICS_ADDR, visible_alias = "metrics-listen")]
    pub metrics_addr: Option<SocketAddr>,
    /// The agent's options.
    #[command(flatten)]
    pub options: AgentOptions,
}
