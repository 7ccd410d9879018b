//! An ImageCache's status as `kubectl get imagecache NAME -o yaml` shows it, read and checked
//! against what the user guide promises of every Ready cache.

use anyhow::{Context, Result, ensure};

/// The parts of a Ready cache's status that tests compare with their own expectations.
pub struct ReadyStatus {
    /// The whole `status` object.
    pub status: serde_yaml_ng::Value,
    /// `status.events[*].message`, in order.
    pub messages: Vec<String>,
}

/// Parses `yaml` and checks the guide's times: `lastUpdatedTime` not before `startTime`, and
/// `expireDateTime` exactly `startTime` + 7 days (the default retention).
pub fn ready_status(yaml: &str) -> Result<ReadyStatus> {
    let object: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml)?;
    let status = object["status"].clone();
    let time = |key: &str| -> Result<jiff::Timestamp> {
        status[key]
            .as_str()
            .with_context(|| format!("status.{key} missing:\n{yaml}"))?
            .parse()
            .with_context(|| format!("status.{key} is not a time"))
    };
    let start = time("startTime")?;
    ensure!(time("lastUpdatedTime")? >= start, "{yaml}");
    ensure!(
        time("expireDateTime")? == start + jiff::SignedDuration::from_hours(7 * 24),
        "expireDateTime is not startTime + 7 days:\n{yaml}"
    );
    let messages = status["events"]
        .as_sequence()
        .context("status.events")?
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    Ok(ReadyStatus { status, messages })
}
