//! The agent's counters in the Prometheus text format.

use std::fmt::Write as _;

use crate::agent::image::PullCounters;

/// Bytes pulled from registries: in all, per image, per image cache and per container group.
pub fn render_metrics(counters: &PullCounters) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP eci_agent_pulled_bytes_total Bytes downloaded from registries (configs and layers).\n\
         # TYPE eci_agent_pulled_bytes_total counter\n\
         eci_agent_pulled_bytes_total {}",
        counters.total
    );
    let families = [
        (
            "eci_agent_image_pulled_bytes_total",
            "Bytes downloaded per image.",
            "image",
            &counters.images,
        ),
        (
            "eci_agent_image_cache_pulled_bytes_total",
            "Bytes downloaded to build each image cache.",
            "image_cache",
            &counters.caches,
        ),
        (
            "eci_agent_container_group_pulled_bytes_total",
            "Bytes downloaded by each container group for images its snapshot did not hold.",
            "container_group",
            &counters.groups,
        ),
    ];
    for (name, help, label, values) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (key, bytes) in values {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {bytes}", escape(key));
        }
    }
    out
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let mut c = PullCounters {
            total: 30,
            ..PullCounters::default()
        };
        c.images
            .insert("docker.io/library/busybox:latest".into(), 30);
        c.groups.insert("eci-1".into(), 30);
        let text = render_metrics(&c);
        assert!(text.contains("eci_agent_pulled_bytes_total 30\n"));
        assert!(text.contains(
            "eci_agent_image_pulled_bytes_total{image=\"docker.io/library/busybox:latest\"} 30\n"
        ));
        assert!(text.contains(
            "eci_agent_container_group_pulled_bytes_total{container_group=\"eci-1\"} 30\n"
        ));
        assert!(text.contains("# TYPE eci_agent_image_cache_pulled_bytes_total counter\n"));
    }
}
