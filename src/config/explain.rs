//! Flags of `eci-vk explain-match`.

use std::path::PathBuf;

use super::env::{ENV_EXPLAIN_FILENAME, ENV_EXPLAIN_SELECTOR, ENV_KUBECONFIG};

/// Flags of `eci-vk explain-match`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainMatchArgs {
    /// The pod (or an object with a pod template, such as a Deployment) as YAML or JSON; `-`
    /// reads standard input.
    #[arg(short = 'f', long = "filename", env = ENV_EXPLAIN_FILENAME)]
    pub filename: PathBuf,
    /// Kubeconfig file; without it, the in-cluster config or the default kubeconfig is used.
    #[arg(long, env = ENV_KUBECONFIG)]
    pub kubeconfig: Option<PathBuf>,
    /// Only consider ImageCaches with these labels (a label selector).
    #[arg(long, short = 'l', env = ENV_EXPLAIN_SELECTOR)]
    pub selector: Option<String>,
    /// The node's image-cache policy to explain under (the same flags as `run`).
    #[command(flatten)]
    pub policy: super::run::ImageCachePolicyArgs,
}
