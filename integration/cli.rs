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
    for command in ["run", "emulator", "agent", "crd", "explain-match"] {
        ensure!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(command)),
            "`eci-vk --help` does not list {command}: {help}"
        );
    }
    // Bad input is one line and exit 2: here, an agent address that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let data = tempfile::tempdir()?;
    let busy = Command::new(ground.eci_vk())
        .args(["agent", "--listen", &addr, "--data-dir"])
        .arg(data.path())
        .output()?;
    let stderr = String::from_utf8(busy.stderr)?;
    ensure!(
        busy.status.code() == Some(2),
        "eci-vk agent on a taken port exited {:?}: {stderr}",
        busy.status
    );
    ensure!(
        stderr.trim().lines().count() == 1 && stderr.contains(&addr),
        "{stderr}"
    );
    Ok(())
}
