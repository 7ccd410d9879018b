//! `eci-vk agent`, and the agent settings the emulator and `eci-vk run`'s embedded emulator
//! share: one set of options ([`AgentOptions`]), one way to turn them into the agent's typed
//! configuration ([`local_agent_config`]).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::{
    agent::{
        AgentListener, AuthToken, Bandwidth, LocalAgent, LocalAgentConfig, Platform,
        RegistryConfig, UnixSocket,
    },
    config::{
        AgentAddress, AgentArgs, AgentOptions,
        env::{
            ENV_AGENT_AUTH_TOKEN_FILE, ENV_PLATFORM, ENV_REGISTRY_BANDWIDTH, ENV_REGISTRY_CA_FILE,
        },
    },
};

use super::{Failure, exit, runtime, shutdown};

/// The agent's configuration from its options, keeping its data under `data_dir`, or, without
/// one, in a new temporary directory of a random name, removed when the agent shuts down.
///
/// # Errors
/// [`Failure::Usage`] naming the flag and its environment variable, when the bandwidth or the
/// platform does not parse or the CA file cannot be read.
pub(super) fn local_agent_config(
    options: &AgentOptions,
    data_dir: Option<PathBuf>,
) -> Result<LocalAgentConfig, Failure> {
    let (bandwidth, platform) = parse_options(options)?;
    let scratch = data_dir.is_none();
    // An unguessable name: the agent creates it exclusively (mode 0700) and refuses one that
    // exists, so nobody can plant it (or a symlink in its place) in the shared temp dir.
    let data_dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "eci-vk-agent-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ))
    });
    let mut registry = RegistryConfig::default().with_platform(platform);
    registry
        .plain_http
        .extend(options.plain_http_registries.iter().cloned());
    registry
        .insecure
        .extend(options.insecure_registries.iter().cloned());
    if let Some(path) = &options.registry_ca_file {
        let pem = std::fs::read(path).map_err(|error| {
            Failure::Usage(format!(
                "--registry-ca-file (env {ENV_REGISTRY_CA_FILE}) cannot read {}: {error}",
                path.display()
            ))
        })?;
        registry = registry.with_root_certificate(pem);
    }
    Ok(LocalAgentConfig {
        registry,
        bandwidth,
        runc: options.runc.clone(),
        bridge: options.bridge.clone(),
        pod_cidr: options.pod_cidr.clone(),
        scratch,
        ..LocalAgentConfig::new(data_dir)
    })
}

/// The agent options that are text in `config` (a leaf), parsed into the agent's types: every
/// subcommand checks them at start, whether or not a local agent will use them, so a bad value
/// is always exit 2 naming the flag and its variable.
///
/// # Errors
/// [`Failure::Usage`] for a bandwidth or platform that does not parse.
pub(super) fn parse_options(
    options: &AgentOptions,
) -> Result<(Option<Bandwidth>, Platform), Failure> {
    let bandwidth = match &options.registry_bandwidth {
        Some(text) => Some(text.parse::<Bandwidth>().map_err(|error| {
            Failure::Usage(format!(
                "--registry-bandwidth (env {ENV_REGISTRY_BANDWIDTH}) {text:?}: {error}"
            ))
        })?),
        None => None,
    };
    let platform = options.platform.parse::<Platform>().map_err(|error| {
        Failure::Usage(format!(
            "--platform (env {ENV_PLATFORM}) {:?}: {error}",
            options.platform
        ))
    })?;
    Ok((bandwidth, platform))
}

/// Runs the agent standalone until SIGINT or SIGTERM, then removes every container group.
pub(super) fn main(args: AgentArgs) -> ExitCode {
    exit("agent", runtime::block_on(serve(args)))
}

async fn serve(args: AgentArgs) -> Result<(), Failure> {
    let config = local_agent_config(&args.options, Some(args.data_dir.clone()))?;
    let token = args
        .auth_token_file
        .as_deref()
        .map(|path| read_token_file(path, "--auth-token-file", ENV_AGENT_AUTH_TOKEN_FILE))
        .transpose()?;
    let listener = bind(&args.listen, token).await?;
    let agent = LocalAgent::start(config)
        .await
        .map_err(|error| Failure::runtime(&error))?;
    if let Some(addr) = args.metrics_addr
        && let Err(error) = serve_metrics(addr, agent.clone()).await
    {
        agent.shutdown().await;
        return Err(Failure::Usage(format!(
            "cannot serve metrics on {addr}: {error}"
        )));
    }
    println!("eci-vk agent listening on {}", args.listen);
    agent
        .serve(listener, shutdown::signal())
        .await
        .map_err(|error| Failure::runtime(&error))
}

/// Binds the agent's address: a unix socket (peers checked at accept, the token required too
/// when given), or TCP, which is refused without a token since nothing else would stop any
/// user who can reach the port.
///
/// # Errors
/// [`Failure::Usage`] for TCP without a token, or an address that cannot be bound.
pub(super) async fn bind(
    address: &AgentAddress,
    token: Option<AuthToken>,
) -> Result<AgentListener, Failure> {
    match address {
        AgentAddress::Unix(path) => {
            let socket = UnixSocket::bind(path).await.map_err(|error| {
                Failure::Usage(format!(
                    "cannot listen on {address}: {}",
                    crate::error_chain(&error)
                ))
            })?;
            Ok(AgentListener::unix(socket, token))
        }
        AgentAddress::Tcp(addr) => {
            let Some(token) = token else {
                return Err(Failure::Usage(format!(
                    "--listen {address} needs --auth-token-file (env {ENV_AGENT_AUTH_TOKEN_FILE}): the agent protocol over TCP requires a bearer token"
                )));
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| Failure::Usage(format!("cannot listen on {address}: {error}")))?;
            Ok(AgentListener::tcp(listener, token))
        }
    }
}

/// The bearer token in the file at `path` (surrounding whitespace trimmed), read at start.
///
/// # Errors
/// [`Failure::Usage`] naming `flag`, its variable `env` and the path (never the content), when
/// the file cannot be read or holds no usable token.
pub(super) fn read_token_file(path: &Path, flag: &str, env: &str) -> Result<AuthToken, Failure> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Failure::Usage(format!(
            "{flag} (env {env}) cannot read {}: {error}",
            path.display()
        ))
    })?;
    AuthToken::new(&text)
        .map_err(|error| Failure::Usage(format!("{flag} (env {env}) {}: {error}", path.display())))
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
