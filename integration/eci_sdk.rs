//! A client we did not write agrees with our server: the official ECI Python SDK
//! (`alibabacloud-eci20180808`, pinned in `integration/ground/install-python-sdk.sh`) drives
//! `eci-vk emulator` through an image cache and a container group started from it, once with
//! each signature version (`integration/sdk/eci_sdk_roundtrip.py`).

use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, EmulatorProcess, python_sdk},
    ground::Namespace,
    harness::{Phase, Test},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "eci_sdk::official_python_sdk_v3_signature",
            phase: Phase::WithCrd,
            run: sdk_v3,
        },
        Test {
            name: "eci_sdk::official_python_sdk_v1_signature",
            phase: Phase::WithCrd,
            run: sdk_v1,
        },
    ]
}

fn sdk_v3(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    round_trip(ground, "v3")
}

fn sdk_v1(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    round_trip(ground, "v1")
}

fn round_trip(ground: &Ground, signature: &str) -> Result<()> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = python_sdk()?;

    let emulator = EmulatorProcess::start(
        ground.eci_vk(),
        &[
            "--sim-pull-ms",
            "50",
            "--sim-snapshot-ms",
            "50",
            "--sim-start-ms",
            "50",
        ],
    )?;
    let image = ground.registry.reference("eci-test/busybox", "v1");
    let out = Command::new(&python)
        .arg(format!("{root}/integration/sdk/eci_sdk_roundtrip.py"))
        .arg(emulator.host_port())
        .arg(&image)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .env("ECI_SDK_SIGNATURE", signature)
        .output()
        .context("cannot run the SDK script")?;
    ensure!(
        out.status.success(),
        "the official SDK ({signature}) failed against the emulator:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        seen["cache_status"] == "Ready"
            && seen["group_status"] == "Running"
            && seen["deleted"] == true,
        "{seen}"
    );
    Ok(())
}
