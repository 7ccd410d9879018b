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
    // Bad input is one line and exit 2: here, an agent address that is taken (TCP, with the
    // token it requires).
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let data = tempfile::tempdir()?;
    let token = data.path().join("token");
    std::fs::write(&token, "integration-token\n")?;
    let busy = Command::new(ground.eci_vk())
        .args(["agent", "--listen", &format!("tcp://{addr}"), "--data-dir"])
        .arg(data.path())
        .arg("--auth-token-file")
        .arg(&token)
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
    // TCP without a token is refused before anything is bound, naming the flag.
    let open = Command::new(ground.eci_vk())
        .args(["agent", "--listen", &format!("tcp://{addr}"), "--data-dir"])
        .arg(data.path())
        .output()?;
    let stderr = String::from_utf8(open.stderr)?;
    ensure!(
        open.status.code() == Some(2)
            && stderr.trim().lines().count() == 1
            && stderr.contains("--auth-token-file"),
        "eci-vk agent on TCP without a token exited {:?}: {stderr}",
        open.status
    );
    Ok(())
}
