//! `eci-vk emulator`: the ECI OpenAPI on loopback, with its agent in-process (real or
//! simulated) or at an address (`unix:///PATH`, or `tcp://IP:PORT` with its token).

use std::{io::Write as _, path::Path, process::ExitCode, time::Duration};

use crate::{
    agent::{AuthToken, SimulatedConfig},
    config::{
        AgentAddress, EmulatorArgs, Runtime,
        env::{ENV_ACCESS_KEY_SECRET, ENV_EMULATOR_AGENT_TOKEN_FILE},
    },
    emulator,
};

use super::{
    Failure,
    agent::{local_agent_config, parse_options, read_token_file},
    exit, runtime, shutdown,
};

/// The agent at `address`, reached with `token` when given.
///
/// # Errors
/// [`Failure::Usage`] naming `--agent-token-file` for a TCP agent without a token: the agent
/// refuses every call over TCP without one, so the emulator could do nothing.
pub(super) fn remote_agent(
    address: &AgentAddress,
    token: Option<AuthToken>,
) -> Result<emulator::AgentTarget, Failure> {
    if matches!(address, AgentAddress::Tcp(_)) && token.is_none() {
        return Err(Failure::Usage(format!(
            "--agent {address} needs --agent-token-file (env {ENV_EMULATOR_AGENT_TOKEN_FILE}): an agent on TCP requires its bearer token"
        )));
    }
    Ok(emulator::AgentTarget::Remote {
        url: address.grpc_url(),
        token,
    })
}

pub(super) fn main(args: EmulatorArgs) -> ExitCode {
    exit("emulator", runtime::block_on(serve(args)))
}

/// The emulator's AccessKey secret: the first line of `file`, or else the environment's
/// `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (read through `env`, so tests pass a map). Never a flag.
pub(super) fn access_key_secret(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| {
                Failure::Usage(format!(
                    "cannot read --access-key-secret-file {}: {error}",
                    path.display()
                ))
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        None => env(ENV_ACCESS_KEY_SECRET).unwrap_or_default(),
    };
    if secret.is_empty() {
        return Err(Failure::Usage(format!(
            "no AccessKey secret: set {ENV_ACCESS_KEY_SECRET} or give --access-key-secret-file"
        )));
    }
    Ok(secret)
}

async fn serve(args: EmulatorArgs) -> Result<(), Failure> {
    parse_options(&args.agent_options)?;
    let secret = access_key_secret(args.access_key_secret_file.as_deref(), |name| {
        std::env::var(name).ok()
    })?;
    let token = args
        .agent_token_file
        .as_deref()
        .map(|path| read_token_file(path, "--agent-token-file", ENV_EMULATOR_AGENT_TOKEN_FILE))
        .transpose()?;
    let remote = args
        .agent
        .as_ref()
        .map(|address| remote_agent(address, token))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|error| Failure::Usage(format!("cannot listen on {}: {error}", args.listen)))?;
    let agent = match (remote, args.runtime) {
        (Some(remote), _) => remote,
        (None, Runtime::Runc) => emulator::AgentTarget::Local(local_agent_config(
            &args.agent_options,
            args.data_dir.as_ref().map(|d| d.join("agent")),
        )?),
        (None, Runtime::Simulated) => emulator::AgentTarget::Simulated(SimulatedConfig {
            pull_delay_per_image: Duration::from_millis(args.sim_pull_ms),
            snapshot_delay: Duration::from_millis(args.sim_snapshot_ms),
            start_delay: Duration::from_millis(args.sim_start_ms),
            ..SimulatedConfig::default()
        }),
    };
    let mut builder =
        emulator::Emulator::builder(emulator::Credentials::new(args.access_key_id, secret))
            .agent(agent)
            .quotas(emulator::Quotas {
                disabled: args.no_throttle,
                ..emulator::Quotas::default()
            })
            .settings(emulator::Settings {
                auto_create_image_cache: args.auto_create_image_cache,
                max_image_caches: args.image_cache_quota as usize,
                sold_out: args.sold_out,
                vswitch_zones: args.vswitch_zones.unwrap_or_default(),
                sts_credential_ttl: args.sts_credential_ttl,
                ecs_ram_role: args.ecs_ram_role,
                regular_snapshot_delay: Duration::from_millis(args.regular_snapshot_ms),
                ..emulator::Settings::default()
            })
            .faults(emulator::FaultConfig {
                rate: args.fault_rate,
                seed: args.fault_seed,
                // clap admits only the four names, so none is dropped here.
                kinds: args
                    .fault_kinds
                    .iter()
                    .filter_map(|k| k.parse::<emulator::FaultKind>().ok())
                    .collect(),
                slow: Duration::from_millis(args.fault_slow_ms),
                file: args.fault_file,
            });
    if let Some(dir) = args.data_dir {
        builder = builder.data_dir(dir);
    }
    let handle = builder
        .serve(listener)
        .await
        .map_err(|error| Failure::usage(&error))?;
    println!("eci-vk emulator listening on {}", handle.endpoint());
    let _ = std::io::stdout().flush();
    shutdown::signal().await;
    handle.shutdown().await;
    Ok(())
}
