//! The `eci-vk` command line: one subcommand per way to run the product.

use std::{io::Write, process::ExitCode};

use clap::{Parser, Subcommand};

/// Exit code for bad input and for commands this build does not have yet.
pub const EXIT_USAGE: u8 = 2;

/// A Kubernetes virtual node for Alibaba Cloud ECI, with the ImageCache controller.
#[derive(Debug, Parser)]
#[command(name = "eci-vk", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `eci-vk`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the virtual node: register it and run its pods as ECI container groups.
    Run(Box<crate::config::RunArgs>),
    /// Serve the ECI OpenAPI on loopback (the local stand-in for Alibaba Cloud).
    Emulator(EmulatorArgs),
    /// Run the emulator's data plane (image pulls, snapshots, runc containers) standalone.
    Agent(crate::agent::AgentArgs),
    /// Print the ImageCache CustomResourceDefinition as YAML.
    Crd,
    /// Show which of the cluster's ImageCaches a pod would start from, and why.
    ExplainMatch(crate::imagecache::ExplainMatchArgs),
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crd => print_crd(),
        Command::Run(args) => crate::run::main(*args),
        Command::Emulator(args) => run_emulator(args),
        Command::Agent(args) => crate::agent::cli_main(args),
        Command::ExplainMatch(args) => crate::imagecache::explain_match_main(args),
    }
}

fn print_crd() -> ExitCode {
    let yaml = match crate::imagecache::crd_yaml() {
        Ok(yaml) => yaml,
        Err(error) => {
            eprintln!("eci-vk crd: cannot render the CRD as YAML: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(yaml.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`eci-vk crd | head`) is not a failure of ours.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("eci-vk crd: cannot write to stdout: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The agent runtime of the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// Real pulls from registries into cache snapshots, real containers under runc (needs
    /// root and runc).
    Runc,
    /// No processes and no pulls: containers and images are simulated (scale tests).
    Simulated,
}

/// Flags of `eci-vk emulator`. `Debug` leaves the secret out.
#[derive(clap::Args)]
pub struct EmulatorArgs {
    /// Address to serve the OpenAPI on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// The one AccessKey ID the emulator accepts.
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_ID")]
    pub access_key_id: String,
    /// Its secret (never logged or echoed).
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET", hide_env_values = true)]
    pub access_key_secret: String,
    /// The in-process agent runtime (ignored with --agent).
    #[arg(long, value_enum, default_value_t = Runtime::Runc)]
    pub runtime: Runtime,
    /// Use the agent at this URL (e.g. http://127.0.0.1:7000) instead of an in-process one.
    #[arg(long)]
    pub agent: Option<String>,
    /// Keep state in this directory so a restarted emulator knows its groups and caches.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Serve without the per-action quotas.
    #[arg(long)]
    pub no_throttle: bool,
    /// On an AutoMatchImageCache miss, build an automatic image cache (as current ECI does).
    #[arg(long)]
    pub auto_create_image_cache: bool,
    /// Manual image caches the account may hold (ListUsage `MaxImageCacheCount`). ECI's default
    /// is 50; an account can have it raised through Quota Center.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub image_cache_quota: u32,
    /// Simulated runtime: milliseconds to "pull" one image.
    #[arg(long, default_value_t = 500)]
    pub sim_pull_ms: u64,
    /// Simulated runtime: milliseconds to build a snapshot.
    #[arg(long, default_value_t = 200)]
    pub sim_snapshot_ms: u64,
    /// Simulated runtime: milliseconds from create to running containers.
    #[arg(long, default_value_t = 200)]
    pub sim_start_ms: u64,
    /// The in-process runc agent's flags.
    #[command(flatten)]
    pub agent_options: crate::agent::AgentOptions,
}

impl std::fmt::Debug for EmulatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorArgs")
            .field("listen", &self.listen)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("runtime", &self.runtime)
            .field("agent", &self.agent)
            .field("data_dir", &self.data_dir)
            .field("no_throttle", &self.no_throttle)
            .field("auto_create_image_cache", &self.auto_create_image_cache)
            .field("image_cache_quota", &self.image_cache_quota)
            .finish_non_exhaustive()
    }
}

fn run_emulator(args: EmulatorArgs) -> ExitCode {
    use crate::{agent::SimulatedConfig, emulator};

    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("eci-vk emulator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("eci-vk emulator: cannot listen on {}: {error}", args.listen);
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let agent = match (args.agent, args.runtime) {
            (Some(url), _) => emulator::AgentTarget::Remote(url),
            (None, Runtime::Runc) => match args
                .agent_options
                .config(args.data_dir.as_ref().map(|d| d.join("agent")))
            {
                Ok(config) => emulator::AgentTarget::Local(config),
                Err(error) => {
                    eprintln!("eci-vk emulator: {error}");
                    return ExitCode::from(EXIT_USAGE);
                }
            },
            (None, Runtime::Simulated) => emulator::AgentTarget::Simulated(SimulatedConfig {
                pull_delay_per_image: std::time::Duration::from_millis(args.sim_pull_ms),
                snapshot_delay: std::time::Duration::from_millis(args.sim_snapshot_ms),
                start_delay: std::time::Duration::from_millis(args.sim_start_ms),
                ..SimulatedConfig::default()
            }),
        };
        let mut builder = emulator::Emulator::builder(emulator::Credentials::new(
            args.access_key_id,
            args.access_key_secret,
        ))
        .agent(agent)
        .quotas(emulator::Quotas {
            disabled: args.no_throttle,
            ..emulator::Quotas::default()
        })
        .settings(emulator::Settings {
            auto_create_image_cache: args.auto_create_image_cache,
            max_image_caches: args.image_cache_quota as usize,
            ..emulator::Settings::default()
        });
        if let Some(dir) = args.data_dir {
            builder = builder.data_dir(dir);
        }
        let handle = match builder.serve(listener).await {
            Ok(handle) => handle,
            Err(error) => {
                eprintln!("eci-vk emulator: {}", crate::error_chain(&error));
                return ExitCode::from(EXIT_USAGE);
            }
        };
        println!("eci-vk emulator listening on {}", handle.endpoint());
        let _ = std::io::stdout().flush();
        wait_for_signal().await;
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn emulator_flags_parse_and_debug_hides_the_secret() {
        let cli = Cli::try_parse_from([
            "eci-vk",
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--access-key-id",
            "id",
            "--access-key-secret",
            "very-secret-value",
            "--runtime",
            "simulated",
            "--data-dir",
            "/tmp/x",
            "--image-cache-quota",
            "300",
        ])
        .expect("valid flags");
        let shown = format!("{cli:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        let Command::Emulator(args) = cli.command else {
            panic!("not the emulator command");
        };
        assert_eq!(args.runtime, Runtime::Simulated);
        assert_eq!(args.access_key_secret, "very-secret-value");
        assert_eq!(args.image_cache_quota, 300);
        let Command::Emulator(args) = Cli::try_parse_from([
            "eci-vk",
            "emulator",
            "--access-key-id",
            "a",
            "--access-key-secret",
            "b",
            "--registry-bandwidth",
            "8MiB/s",
        ])
        .expect("valid flags")
        .command
        else {
            panic!("not the emulator command");
        };
        assert_eq!(args.runtime, Runtime::Runc, "runc is the default");
        assert_eq!(args.image_cache_quota, 50, "ECI's default quota");
        assert_eq!(
            args.agent_options
                .registry_bandwidth
                .map(|b| b.bytes_per_second()),
            Some(8 << 20)
        );
        assert!(
            Cli::try_parse_from([
                "eci-vk",
                "emulator",
                "--runtime",
                "docker",
                "--access-key-id",
                "a",
                "--access-key-secret",
                "b"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "eci-vk",
                "emulator",
                "--image-cache-quota",
                "0",
                "--access-key-id",
                "a",
                "--access-key-secret",
                "b"
            ])
            .is_err(),
            "a quota of no caches is not an account"
        );
    }
}
