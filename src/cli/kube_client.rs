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

/// The configuration from a kubeconfig read with [`read_kubeconfig`], or the inferred one
/// (in-cluster, then `~/.kube/config`).
pub(super) async fn config(
    kubeconfig: Option<kube::config::Kubeconfig>,
) -> Result<kube::Config, KubeClientError> {
    match kubeconfig {
        Some(file) => {
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(KubeClientError::Use)
        }
        None => kube::Config::infer().await.map_err(KubeClientError::Infer),
    }
}

/// A client from a kubeconfig read with [`read_kubeconfig`], or the inferred configuration
/// (in-cluster, then `~/.kube/config`).
pub(super) async fn client(
    kubeconfig: Option<kube::config::Kubeconfig>,
) -> Result<kube::Client, KubeClientError> {
    kube::Client::try_from(config(kubeconfig).await?).map_err(KubeClientError::Build)
}

/// A client of `config` that sends a write (POST, PUT, PATCH, DELETE) only while `holds()`
/// says so, and fails it at once otherwise: the node's own writes, held back the moment its
/// leader term ends (`crate::election`), however late the task that sends them notices.
pub(super) fn gated_client(
    config: kube::Config,
    holds: impl Fn() -> bool + Send + Sync + 'static,
) -> Result<kube::Client, KubeClientError> {
    let builder = kube::client::ClientBuilder::try_from(config).map_err(KubeClientError::Build)?;
    Ok(builder
        .with_layer(&WriteGate(std::sync::Arc::new(holds)))
        .build())
}

/// The error of a write held back by [`gated_client`].
#[derive(Debug, thiserror::Error)]
#[error("not sent: this process no longer holds the node's leader Lease")]
pub(super) struct NotLeader;

type Holds = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// The tower layer of [`gated_client`].
#[derive(Clone)]
struct WriteGate(Holds);

impl<S> tower::Layer<S> for WriteGate {
    type Service = Gated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            holds: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Gated<S> {
    inner: S,
    holds: Holds,
}

impl<S, B> tower::Service<hyper::Request<B>> for Gated<S>
where
    S: tower::Service<hyper::Request<B>, Error = tower::BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = futures::future::Either<
        S::Future,
        futures::future::Ready<Result<S::Response, tower::BoxError>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let write = !matches!(
            *request.method(),
            hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
        );
        if write && !(self.holds)() {
            return futures::future::Either::Right(futures::future::ready(Err(Box::new(
                NotLeader,
            ))));
        }
        futures::future::Either::Left(self.inner.call(request))
    }
}
