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
    Run,
    /// Serve the ECI OpenAPI on loopback (the local stand-in for Alibaba Cloud).
    Emulator,
    /// Run the emulator's data plane (image pulls, snapshots, runc containers) standalone.
    Agent,
    /// Print the ImageCache CustomResourceDefinition as YAML.
    Crd,
}

/// Runs the parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crd => print_crd(),
        Command::Run => not_built("run", "[4] The virtual node"),
        Command::Emulator => not_built("emulator", "[2] The ECI OpenAPI"),
        Command::Agent => not_built("agent", "[3] The agent"),
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

fn not_built(command: &str, issue: &str) -> ExitCode {
    eprintln!("eci-vk {command}: not built yet (arrives with issue {issue})");
    ExitCode::from(EXIT_USAGE)
}
