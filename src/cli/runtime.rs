//! The async runtime of every subcommand, built once here.

use std::future::Future;

use super::Failure;

/// Runs `work` to completion on a new multi-threaded tokio runtime.
///
/// Also installs rustls' ring provider as the process default first: kube, reqwest and the
/// registry client all build rustls configurations, and one provider must be chosen before any
/// of them does (two linked providers make rustls' default builder panic).
pub(super) fn block_on<F>(work: F) -> Result<(), Failure>
where
    F: Future<Output = Result<(), Failure>>,
{
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| Failure::Runtime(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(work)
}
