//! Resource usage: cgroup counters of each running container through `runc events --stats`
//! (the same JSON on cgroup v1 and v2), summed for the group, and the group's network counters
//! from its veth.

use std::sync::Arc;

use super::{
    command::{self, Runc},
    group::{Container, Group},
    net::Network,
    pb,
};

/// The group's usage now; containers that do not run count zero.
pub(crate) async fn collect(runc: &Runc, group: &Arc<Group>) -> pb::StatsResponse {
    let mut containers = Vec::new();
    for container in &group.containers {
        let running = container.state.lock().running;
        let usage = if running {
            match runc.stats(&container.runc_id).await {
                Ok(sample) => usage_of(container, &sample),
                Err(_) => pb::ResourceUsage::default(), // it just exited
            }
        } else {
            pb::ResourceUsage::default()
        };
        containers.push(pb::ContainerStats {
            name: container.name.clone(),
            usage: Some(usage),
        });
    }
    let sum = |f: fn(&pb::ResourceUsage) -> u64| -> u64 {
        containers
            .iter()
            .filter_map(|c| c.usage.as_ref())
            .map(f)
            .sum()
    };
    let usage = pb::ResourceUsage {
        cpu_usage_core_nanoseconds: sum(|u| u.cpu_usage_core_nanoseconds),
        cpu_usage_nano_cores: sum(|u| u.cpu_usage_nano_cores),
        memory_usage_bytes: sum(|u| u.memory_usage_bytes),
        memory_working_set_bytes: sum(|u| u.memory_working_set_bytes),
        memory_rss_bytes: sum(|u| u.memory_rss_bytes),
        memory_cache_bytes: sum(|u| u.memory_cache_bytes),
        memory_available_bytes: sum(|u| u.memory_available_bytes),
    };
    let (rx, tx) = Network::counters(&group.network);
    pb::StatsResponse {
        timestamp_ms: jiff::Timestamp::now().as_millisecond(),
        usage: Some(usage),
        containers,
        network_rx_bytes: rx,
        network_tx_bytes: tx,
    }
}

/// One container's usage from a runc sample; the CPU rate from the previous sample.
fn usage_of(container: &Container, sample: &command::RuncStats) -> pb::ResourceUsage {
    let raw = |names: &[&str]| -> u64 {
        names
            .iter()
            .find_map(|n| sample.memory.raw.get(*n).copied())
            .unwrap_or(0)
    };
    let usage = sample.memory.usage.usage;
    let inactive = raw(&["total_inactive_file", "inactive_file"]);
    let working_set = usage.saturating_sub(inactive);
    let limit = sample.memory.usage.limit;
    let total_cpu = sample.cpu.usage.total;
    let now = tokio::time::Instant::now();
    let nano_cores = {
        let mut state = container.state.lock();
        let rate = state.last_cpu.and_then(|(at, before)| {
            let elapsed = now.duration_since(at).as_nanos();
            (elapsed > 0).then(|| {
                u64::try_from(
                    u128::from(total_cpu.saturating_sub(before)) * 1_000_000_000 / elapsed,
                )
                .unwrap_or(u64::MAX)
            })
        });
        state.last_cpu = Some((now, total_cpu));
        rate.unwrap_or(0)
    };
    pb::ResourceUsage {
        cpu_usage_core_nanoseconds: total_cpu,
        cpu_usage_nano_cores: nano_cores,
        memory_usage_bytes: usage,
        memory_working_set_bytes: working_set,
        memory_rss_bytes: raw(&["total_rss", "rss", "anon"]),
        memory_cache_bytes: if sample.memory.cache > 0 {
            sample.memory.cache
        } else {
            raw(&["total_cache", "cache", "file"])
        },
        // No limit shows as a huge number on v1 and 0 on v2.
        memory_available_bytes: if limit > 0 && limit < (1 << 62) {
            limit.saturating_sub(working_set)
        } else {
            0
        },
    }
}
