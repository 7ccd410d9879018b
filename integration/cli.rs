//! The `eci-vk` command line as a user meets it.

use std::process::Command;

use anyhow::{Result, ensure};

use crate::support::{
    Ground,
    ground::Namespace,
    harness::{Phase, Test},
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "cli::help_lists_the_subcommands",
        phase: Phase::WithCrd,
        run: help_lists_the_subcommands,
    }]
}

fn help_lists_the_subcommands(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let help = Command::new(ground.eci_vk()).arg("--help").output()?;
    ensure!(help.status.success(), "eci-vk --help failed");
    let help = String::from_utf8(help.stdout)?;
    for command in ["run", "emulator", "agent", "crd"] {
        ensure!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(command)),
            "`eci-vk --help` does not list {command}: {help}"
        );
    }
    // A command this build does not have yet says so in one line and exits 2 (bad input).
    let unbuilt = Command::new(ground.eci_vk()).arg("agent").output()?;
    let stderr = String::from_utf8(unbuilt.stderr)?;
    ensure!(
        unbuilt.status.code() == Some(2),
        "eci-vk agent exited {:?}",
        unbuilt.status
    );
    ensure!(
        stderr.lines().count() == 1 && stderr.contains("not built yet"),
        "{stderr}"
    );
    Ok(())
}
