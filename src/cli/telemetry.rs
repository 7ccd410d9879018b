//! Logging set-up, once per process: `tracing` to stderr, filtered by `RUST_LOG` (default
//! `info`), as text or JSON.

use crate::config::LogFormat;

/// Installs the global subscriber. A second call (tests) keeps the first.
pub(super) fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // One flat object per event: `message` and the event's fields at the top level, where log
        // pipelines look for them, plus the span (pod, cache or group ids) it happened in.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
