//! `eci-vk agent` and the agent flags the emulator (and `eci-vk run`'s embedded emulator)
//! share: one set of options, one way to turn them into a [`LocalAgentConfig`].

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use super::{Bandwidth, LocalAgent, LocalAgentConfig, Platform, RegistryConfig};

/// Flags of the real agent.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentOptions {
    /// Limit the agent's total download rate from registries (e.g. `8MiB/s`), emulating the
    /// WAN between an ECI instance and a public registry. Off by default.
    #[arg(long, env = "ECI_AGENT_REGISTRY_BANDWIDTH")]
    pub registry_bandwidth: Option<Bandwidth>,
    /// A registry (`host[:port]`) reached over plain HTTP; repeatable.
    #[arg(
        long = "plain-http-registry",
        env = "ECI_AGENT_PLAIN_HTTP_REGISTRIES",
        value_delimiter = ','
    )]
    pub plain_http_registries: Vec<String>,
    /// A registry reached over TLS without verifying its certificate; repeatable.
    #[arg(
        long = "insecure-registry",
        env = "ECI_AGENT_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// A PEM file of CA certificates trusted for every registry, besides the system's.
    #[arg(long, env = "ECI_AGENT_REGISTRY_CA_FILE")]
    pub registry_ca_file: Option<PathBuf>,
    /// The platform picked from multi-platform images.
    #[arg(long, default_value = "linux/amd64")]
    pub platform: Platform,
    /// The host bridge the agent creates for its container groups (at most 15 characters).
    #[arg(long, default_value = "ecivk0")]
    pub bridge: String,
    /// The pod addresses on that bridge; the bridge takes the first, groups the next.
    #[arg(long, default_value = "10.203.0.0/24")]
    pub pod_cidr: String,
    /// The runc binary.
    #[arg(long, default_value = "runc")]
    pub runc: PathBuf,
}

impl AgentOptions {
    /// The agent configuration keeping its data under `data_dir`, or, without one, in a
    /// temporary directory removed when the agent shuts down.
    ///
    /// # Errors
    /// When the CA file cannot be read.
    pub fn config(&self, data_dir: Option<PathBuf>) -> Result<LocalAgentConfig, String> {
        let scratch = data_dir.is_none();
        let data_dir = data_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!("eci-vk-agent-{}", std::process::id()))
        });
        let mut registry = RegistryConfig::default().with_platform(self.platform.clone());
        registry
            .plain_http
            .extend(self.plain_http_registries.iter().cloned());
        registry
            .insecure
            .extend(self.insecure_registries.iter().cloned());
        if let Some(path) = &self.registry_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the registry CA file {}: {e}", path.display()))?;
            registry = registry.with_root_certificate(pem);
        }
        Ok(LocalAgentConfig {
            registry,
            bandwidth: self.registry_bandwidth,
            runc: self.runc.clone(),
            bridge: self.bridge.clone(),
            pod_cidr: self.pod_cidr.clone(),
            scratch,
            ..LocalAgentConfig::new(data_dir)
        })
    }
}

/// Flags of `eci-vk agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Address to serve the agent protocol (gRPC) on. The protocol has no authentication:
    /// bind it to an address only the emulator can reach.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: SocketAddr,
    /// Where images, snapshots and container state live.
    #[arg(long, default_value = "/var/lib/eci-vk/agent")]
    pub data_dir: PathBuf,
    /// Serve Prometheus metrics (bytes pulled per image, cache and group) at /metrics here.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub options: AgentOptions,
}

/// Runs the agent standalone until SIGINT or SIGTERM, then removes every container group.
pub fn main(args: AgentArgs) -> ExitCode {
    crate::cli::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("eci-vk agent: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let config = match args.options.config(Some(args.data_dir.clone())) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("eci-vk agent: {error}");
                return ExitCode::from(crate::cli::EXIT_USAGE);
            }
        };
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("eci-vk agent: cannot listen on {}: {error}", args.listen);
                return ExitCode::from(crate::cli::EXIT_USAGE);
            }
        };
        let agent = match LocalAgent::start(config).await {
            Ok(agent) => agent,
            Err(error) => {
                eprintln!("eci-vk agent: {}", crate::error_chain(&error));
                return ExitCode::FAILURE;
            }
        };
        if let Some(addr) = args.metrics_listen
            && let Err(error) = serve_metrics(addr, agent.clone()).await
        {
            eprintln!("eci-vk agent: cannot serve metrics on {addr}: {error}");
            agent.shutdown().await;
            return ExitCode::from(crate::cli::EXIT_USAGE);
        }
        println!("eci-vk agent listening on {}", args.listen);
        match agent.serve(listener, crate::cli::wait_for_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("eci-vk agent: {}", crate::error_chain(&error));
                ExitCode::FAILURE
            }
        }
    })
}

async fn serve_metrics(addr: SocketAddr, agent: LocalAgent) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let agent = agent.clone();
            async move { agent.metrics() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}
