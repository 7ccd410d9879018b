//! What the node reads from the cloud and from registries while caches are built (issue #21).
//!
//! - Caches built at once share their reads, counted by the node's own
//!   `eci_vk_api_calls_total`. Each cache used to cost 8.4 `DescribeImageCaches` when 200 were
//!   built at once: two lookups by tags, one after its create, one for each of its own status
//!   writes (which came back as watch events and triggered a reconcile) and one per poll.
//! - A registry that does not answer the node's digest checks does not hold a cache's `Ready`
//!   back: the check used to run inside the reconcile, before the status write, so a cache
//!   whose registry the node cannot reach became `Ready` only after the node gave up on it.

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
    vec![
        Test {
            name: "cloud_reads::caches_built_at_once_share_their_describes",
            phase: Phase::WithCrd,
            run: caches_built_at_once_share_their_describes,
        },
        Test {
            name: "cloud_reads::a_registry_that_does_not_answer_does_not_hold_ready_back",
            phase: Phase::WithCrd,
            run: a_registry_that_does_not_answer_does_not_hold_ready_back,
        },
    ]
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

/// A node of class `class` on the simulated runtime with its cache controller on and its
/// metrics at `127.0.0.1:port`.
fn cache_node<'g>(
    ground: &'g Ground,
    emulator: &EmulatorProcess,
    dir: &std::path::Path,
    class: &str,
    port: u16,
) -> Result<NodeChild<'g>> {
    let node = NodeChild::spawn(
        ground,
        class.to_owned(),
        &emulator.endpoint,
        dir,
        &[
            "--image-cache-controller".to_owned(),
            "true".to_owned(),
            "--image-cache-class".to_owned(),
            class.to_owned(),
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{port}"),
        ],
        "info",
    )?;
    node.wait_ready()?;
    Ok(node)
}

/// Creates one `ImageCache` of class `class` per entry of `images` (`{class}-{i}`); returns
/// their label selector.
fn create_caches(ground: &Ground, class: &str, images: &[Vec<String>]) -> Result<String> {
    let label = eci_vk::imagecache::LABEL_CLASS;
    let objects: String = images
        .iter()
        .enumerate()
        .map(|(i, images)| {
            format!(
                "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {class}-{i}\n  labels: {{{label}: {class}}}\nspec:\n  images: {images:?}\n---\n"
            )
        })
        .collect();
    ground
        .kubectl()
        .args(["create", "-f", "-"])
        .stdin(objects)
        .ok()?;
    Ok(format!("{label}={class}"))
}

/// How many of the caches `selector` picks are `Ready`.
fn ready(ground: &Ground, selector: &str) -> Result<usize> {
    let phases = ground
        .kubectl()
        .args(["get", "imagecaches", "-l", selector])
        .args(["-o", "jsonpath={.items[*].status.phase}"])
        .ok()?;
    Ok(phases.split_whitespace().filter(|p| *p == "Ready").count())
}

/// Deletes the caches `selector` picks (the node deletes the cloud caches while it runs).
fn delete_caches(ground: &Ground, selector: &str) {
    let _ = ground
        .kubectl()
        .args(["delete", "imagecaches", "-l", selector, "--wait=true"])
        .args(["--timeout=60s"])
        .ok();
}

fn caches_built_at_once_share_their_describes(ground: &Ground, _: &Namespace) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let emulator = EmulatorProcess::start(ground.eci_vk(), &[])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let class = format!("vk-reads-{}", std::process::id());
    let node = cache_node(ground, &emulator, tmp.path(), &class, port)?;
    let images: Vec<Vec<String>> = (0..CACHES)
        .map(|i| vec![format!("busybox:1.{i}"), format!("nginx:1.{i}")])
        .collect();
    let mut selector = None;
    let result = (|| {
        let picked = selector.insert(create_caches(ground, &class, &images)?);
        wait("every cache Ready", 180, || {
            Ok((ready(ground, picked)? == CACHES).then_some(()))
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
    if let Some(selector) = &selector {
        delete_caches(ground, selector);
    }
    result
}

/// A registry that takes connections and never answers: what the node meets when a cache's
/// registry is out of its reach (a firewall that drops, a proxy that hangs). Counts the
/// connections it took and those the other end has closed.
struct SilentRegistry {
    host: String,
    taken: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    closed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentRegistry {
    fn start() -> Result<Self> {
        use std::{io::Read, sync::atomic::Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let host = listener.local_addr()?.to_string();
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (counted, ended) = (taken.clone(), closed.clone());
        // The thread ends with the test process; it holds nothing but loopback sockets.
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let ended = ended.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Self {
            host,
            taken,
            closed,
        })
    }

    fn taken(&self) -> usize {
        self.taken.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Caches of images on a registry that never answers the node's digest checks (the emulator
/// builds them on its simulated runtime) are `Ready` while the node still waits for that
/// registry: no connection to it has been given up when every phase is written. Before the
/// checks ran beside the reconciles, a phase was written only after the node gave up.
fn a_registry_that_does_not_answer_does_not_hold_ready_back(
    ground: &Ground,
    _: &Namespace,
) -> Result<()> {
    const SILENT_CACHES: usize = 3;
    let tmp = tempfile::tempdir()?;
    let emulator = EmulatorProcess::start(ground.eci_vk(), &[])?;
    let registry = SilentRegistry::start()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let class = format!("vk-silent-{}", std::process::id());
    let node = cache_node(ground, &emulator, tmp.path(), &class, port)?;
    let images: Vec<Vec<String>> = (0..SILENT_CACHES)
        .map(|i| vec![format!("{}/app:1.{i}", registry.host)])
        .collect();
    let mut selector = None;
    let result = (|| {
        let picked = selector.insert(create_caches(ground, &class, &images)?);
        wait("every cache Ready", 120, || {
            Ok((ready(ground, picked)? == SILENT_CACHES).then_some(()))
        })
        .with_context(|| format!("node log:\n{}", node.logs()))?;
        let given_up = registry.closed();
        // The checks did go to the silent registry (else the test proves nothing).
        wait("the node's digest checks to reach the registry", 60, || {
            Ok((registry.taken() > 0).then_some(()))
        })
        .with_context(|| format!("node log:\n{}", node.logs()))?;
        ensure!(
            given_up == 0,
            "every cache became Ready only after the node gave up on {given_up} connection(s) to \
             a registry that never answered: its digest check held the status write back"
        );
        Ok(())
    })();
    if let Some(selector) = &selector {
        delete_caches(ground, selector);
    }
    result
}
