//! The Kubernetes client of the subcommands that talk to a cluster (`run`, `explain-match`).

use std::path::Path;

/// Why no Kubernetes client could be built.
#[derive(Debug, thiserror::Error)]
pub(super) enum KubeClientError {
    /// The kubeconfig file named by `--kubeconfig` (or `KUBECONFIG`) cannot be read.
    #[error("cannot read kubeconfig {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig was read but cannot be used (no current context, bad credentials…).
    #[error("cannot use the kubeconfig")]
    Use(#[source] kube::config::KubeconfigError),
    /// No kubeconfig was given, and neither the in-cluster config nor `~/.kube/config` works.
    #[error("no kubeconfig given and neither in-cluster config nor ~/.kube/config works")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built from a usable configuration.
    #[error("cannot build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// Reads `kubeconfig` now, so a bad file is bad input found before anything starts. A
/// colon-separated list (as `KUBECONFIG` may hold) is merged the way kubectl merges it.
pub(super) fn read_kubeconfig(
    kubeconfig: &Path,
) -> Result<kube::config::Kubeconfig, KubeClientError> {
    let text = kubeconfig.to_string_lossy();
    let mut merged: Option<kube::config::Kubeconfig> = None;
    for path in text.split(':').filter(|p| !p.is_empty()) {
        let file =
            kube::config::Kubeconfig::read_from(path).map_err(|source| KubeClientError::Read {
                path: path.to_owned(),
                source,
            })?;
        merged = Some(match merged {
            None => file,
            Some(first) => first.merge(file).map_err(KubeClientError::Use)?,
        });
    }
    merged.ok_or_else(|| KubeClientError::Read {
        path: text.into_owned(),
        source: kube::config::KubeconfigError::ReadConfig(
            std::io::Error::from(std::io::ErrorKind::NotFound),
            kubeconfig.to_path_buf(),
        ),
    })
}

/// A client from a kubeconfig read with [`read_kubeconfig`], or the inferred configuration
/// (in-cluster, then `~/.kube/config`).
pub(super) async fn client(
    kubeconfig: Option<kube::config::Kubeconfig>,
) -> Result<kube::Client, KubeClientError> {
    let config = match kubeconfig {
        Some(file) => {
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(KubeClientError::Use)?
        }
        None => kube::Config::infer()
            .await
            .map_err(KubeClientError::Infer)?,
    };
    kube::Client::try_from(config).map_err(KubeClientError::Build)
}
