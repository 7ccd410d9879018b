//! Flags of the agent: standalone (`eci-vk agent`), and the same options of the agent that
//! `eci-vk emulator` and `eci-vk run` start in-process.
//!
//! Raw values only: the bandwidth and the platform stay text here and are parsed into the
//! agent's own types by the CLI ([`crate::cli`]) before anything starts, so this module needs
//! no room of the crate.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use super::env::{
    ENV_AGENT_AUTH_TOKEN_FILE, ENV_AGENT_DATA_DIR, ENV_AGENT_LISTEN, ENV_BRIDGE,
    ENV_INSECURE_REGISTRIES, ENV_METRICS_ADDR, ENV_PLAIN_HTTP_REGISTRIES, ENV_PLATFORM,
    ENV_POD_CIDR, ENV_REGISTRY_BANDWIDTH, ENV_REGISTRY_CA_FILE, ENV_RUNC,
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
    /// Where to serve the agent protocol (gRPC): `unix:///PATH` (only root and the agent's own
    /// user may connect; the directory is created 0700, the socket is 0600) or
    /// `tcp://IP:PORT`, which requires --auth-token-file.
    #[arg(long, env = ENV_AGENT_LISTEN, default_value = DEFAULT_AGENT_SOCKET)]
    pub listen: AgentAddress,
    /// A file holding the bearer token every call must carry (`authorization: Bearer
    /// <token>`); required with a tcp:// --listen.
    #[arg(long, env = ENV_AGENT_AUTH_TOKEN_FILE)]
    pub auth_token_file: Option<PathBuf>,
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

/// Where `eci-vk agent` listens unless told otherwise.
pub const DEFAULT_AGENT_SOCKET: &str = "unix:///run/eci-vk/agent.sock";

/// Where the agent protocol is served (`agent --listen`) or reached (`emulator --agent`).
///
/// Only two forms are accepted, each naming its transport: `unix:///PATH` and
/// `tcp://IP:PORT`. A bare `IP:PORT` (the agent's address before it had authentication) is
/// refused rather than taken as TCP, so a configuration written for the open port fails at
/// start with a message saying what to write, instead of serving without the operator
/// having chosen TCP and its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAddress {
    /// A unix socket at this absolute path.
    Unix(PathBuf),
    /// A TCP address; the agent then requires a bearer token.
    Tcp(SocketAddr),
}

/// Why an agent address does not parse.
#[derive(Debug, thiserror::Error)]
pub enum AgentAddressError {
    /// The path of a unix:// address is not absolute.
    #[error("unix:// needs an absolute path, as in unix:///run/eci-vk/agent.sock")]
    RelativeSocket,
    /// The rest of a tcp:// address is not `IP:PORT`.
    #[error("tcp:// needs an IP address and a port, as in tcp://127.0.0.1:7000")]
    BadTcp(#[source] std::net::AddrParseError),
    /// A bare address without a scheme.
    #[error(
        "write unix:///PATH, or tcp://{0} with a bearer token file (the agent protocol over TCP requires one)"
    )]
    Bare(SocketAddr),
    /// Any other text.
    #[error("expected unix:///PATH or tcp://IP:PORT")]
    Unknown,
}

// === impl AgentAddress ===

impl AgentAddress {
    /// The URL a tonic client connects to: `unix:///PATH` or `http://IP:PORT`.
    pub fn grpc_url(&self) -> String {
        match self {
            Self::Unix(path) => format!("unix://{}", path.display()),
            Self::Tcp(addr) => format!("http://{addr}"),
        }
    }

    /// The socket path, for a unix address.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            Self::Unix(path) => Some(path),
            Self::Tcp(_) => None,
        }
    }
}

impl FromStr for AgentAddress {
    type Err = AgentAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix://") {
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err(AgentAddressError::RelativeSocket);
            }
            return Ok(Self::Unix(path.to_owned()));
        }
        if let Some(addr) = text.strip_prefix("tcp://") {
            return addr
                .parse()
                .map(Self::Tcp)
                .map_err(AgentAddressError::BadTcp);
        }
        match text.parse::<SocketAddr>() {
            Ok(addr) => Err(AgentAddressError::Bare(addr)),
            Err(_) => Err(AgentAddressError::Unknown),
        }
    }
}

impl fmt::Display for AgentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_addresses_name_their_transport() {
        assert_eq!(
            "unix:///run/eci-vk/agent.sock".parse::<AgentAddress>().ok(),
            Some(AgentAddress::Unix("/run/eci-vk/agent.sock".into()))
        );
        assert_eq!(
            "tcp://127.0.0.1:7000".parse::<AgentAddress>().ok(),
            Some(AgentAddress::Tcp(([127, 0, 0, 1], 7000).into()))
        );
        assert_eq!(
            "tcp://[::1]:7000".parse::<AgentAddress>().ok(),
            Some(AgentAddress::Tcp("[::1]:7000".parse().expect("v6")))
        );
        // The old bare form is refused with what to write instead.
        let bare = "127.0.0.1:7000".parse::<AgentAddress>().expect_err("bare");
        assert!(matches!(bare, AgentAddressError::Bare(_)));
        assert!(bare.to_string().contains("tcp://127.0.0.1:7000"), "{bare}");
        assert!(matches!(
            "unix://agent.sock".parse::<AgentAddress>(),
            Err(AgentAddressError::RelativeSocket)
        ));
        assert!(matches!(
            "tcp://localhost:7000".parse::<AgentAddress>(),
            Err(AgentAddressError::BadTcp(_))
        ));
        assert!(matches!(
            "http://127.0.0.1:7000".parse::<AgentAddress>(),
            Err(AgentAddressError::Unknown)
        ));
    }

    #[test]
    fn agent_addresses_round_trip_and_give_grpc_urls() {
        for text in ["unix:///run/eci-vk/agent.sock", "tcp://127.0.0.1:7000"] {
            let addr: AgentAddress = text.parse().expect("valid");
            assert_eq!(addr.to_string(), text);
        }
        let unix: AgentAddress = DEFAULT_AGENT_SOCKET.parse().expect("default parses");
        assert_eq!(unix.grpc_url(), "unix:///run/eci-vk/agent.sock");
        let tcp: AgentAddress = "tcp://127.0.0.1:7000".parse().expect("valid");
        assert_eq!(tcp.grpc_url(), "http://127.0.0.1:7000");
    }
}
