//! What the node reads from the cloud (issue #21): caches built at once share their reads.
//!
//! Counted by the node's own `eci_vk_api_calls_total`. Each cache used to cost 8.4
//! `DescribeImageCaches` when 200 were built at once: two lookups by tags, one after its
//! create, one for each of its own status writes (which came back as watch events and
//! triggered a reconcile) and one per poll.

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    node_child::{NodeChild, metrics_at},
    wait::wait,
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "cloud_reads::caches_built_at_once_share_their_describes",
        phase: Phase::WithCrd,
        run: caches_built_at_once_share_their_describes,
    }]
}

/// Caches built at once.
const CACHES: usize = 24;

/// The node's calls of `action` (every result).
fn calls(port: u16, action: &str) -> Result<f64> {
    let text = metrics_at(port)?;
    let prefix = format!("eci_vk_api_calls_total{{action=\"{action}\",");
    Ok(text
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum())
}

fn caches_built_at_once_share_their_describes(ground: &Ground, _: &Namespace) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let emulator = EmulatorProcess::start(ground.eci_vk(), &[])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let class = format!("vk-reads-{}", std::process::id());
    let node = NodeChild::spawn(
        ground,
        class.clone(),
        &emulator.endpoint,
        tmp.path(),
        &[
            "--image-cache-controller".to_owned(),
            "true".to_owned(),
            "--image-cache-class".to_owned(),
            class.clone(),
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{port}"),
        ],
        "info",
    )?;
    node.wait_ready()?;
    let label = eci_vk::imagecache::LABEL_CLASS;
    let objects: String = (0..CACHES)
        .map(|i| {
            format!(
                "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {class}-{i}\n  labels: {{{label}: {class}}}\nspec:\n  images: [\"busybox:1.{i}\", \"nginx:1.{i}\"]\n---\n"
            )
        })
        .collect();
    let selector = format!("{label}={class}");
    let result = (|| {
        ground
            .kubectl()
            .args(["create", "-f", "-"])
            .stdin(objects.clone())
            .ok()?;
        wait("every cache Ready", 180, || {
            let phases = ground
                .kubectl()
                .args(["get", "imagecaches", "-l", &selector])
                .args(["-o", "jsonpath={.items[*].status.phase}"])
                .ok()?;
            let ready = phases.split_whitespace().filter(|p| *p == "Ready").count();
            Ok((ready == CACHES).then_some(()))
        })
        .with_context(|| format!("node log:\n{}", node.logs()))?;
        let (creates, describes) = (
            calls(port, "CreateImageCache")?,
            calls(port, "DescribeImageCaches")?,
        );
        ensure!(
            creates == CACHES as f64,
            "{creates} CreateImageCache for {CACHES} caches"
        );
        ensure!(
            describes <= 2.0 * CACHES as f64,
            "{describes} DescribeImageCaches for {CACHES} caches built at once (at most two each)\nnode log:\n{}",
            node.logs()
        );
        eprintln!("{CACHES} caches Ready with {describes} DescribeImageCaches");
        Ok(())
    })();
    // The node deletes the cloud caches while it runs.
    let _ = ground
        .kubectl()
        .args(["delete", "imagecaches", "-l", &selector, "--wait=true"])
        .args(["--timeout=60s"])
        .ok();
    result
}
