//! `eci-vk`: parses the command line and hands it to the library; nothing else lives here.

use std::process::ExitCode;

use clap::Parser;
use eci_vk::cli::{self, Cli};

fn main() -> ExitCode {
    cli::run(Cli::parse())
}
