//! The Kubernetes client of the subcommands that talk to a cluster (`run`, `explain-match`).

use std::path::Path;

use crate::eci::{Budget, BudgetConfig, Quota};

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
///
/// Writes that pass the gate are paced by `pace` (`--kube-api-qps`, `--kube-api-burst`): the
/// node's share of the API server, as a kubelet's client QPS is, so that a scale-up never
/// floods the API server's priority levels and everyone else's requests behind them.
pub(super) fn gated_client(
    config: kube::Config,
    holds: impl Fn() -> bool + Send + Sync + 'static,
    pace: Option<Quota>,
) -> Result<kube::Client, KubeClientError> {
    let builder = kube::client::ClientBuilder::try_from(config).map_err(KubeClientError::Build)?;
    let pace = pace.map(|quota| {
        Budget::new(BudgetConfig {
            enabled: true,
            write: quota,
            read: quota,
        })
    });
    // The gate is the inner layer: a write that waited for its turn is checked against the
    // term when it goes, not when it queued.
    Ok(builder
        .with_layer(&WriteGate(std::sync::Arc::new(holds)))
        .with_layer(&WritePace(pace))
        .build())
}

/// Whether `request` writes (anything but GET, HEAD and OPTIONS).
fn writes<B>(request: &hyper::Request<B>) -> bool {
    !matches!(
        *request.method(),
        hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
    )
}

/// The tower layer pacing the writes of [`gated_client`]: one token bucket for every write of
/// the process ([`Budget`], the token bucket the ECI client spends from).
#[derive(Clone)]
struct WritePace(Option<Budget>);

impl<S> tower::Layer<S> for WritePace {
    type Service = Paced<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Paced {
            inner: std::sync::Arc::new(tokio::sync::Mutex::new(inner)),
            pace: self.0.clone(),
        }
    }
}

/// The inner service is shared behind a lock rather than cloned (kube's stack below is not
/// `Clone`): a write first waits for its token, then takes the lock only to make the service
/// ready and start the call; the response is awaited outside it.
struct Paced<S> {
    inner: std::sync::Arc<tokio::sync::Mutex<S>>,
    pace: Option<Budget>,
}

impl<S, B> tower::Service<hyper::Request<B>> for Paced<S>
where
    S: tower::Service<hyper::Request<B>, Error = tower::BoxError> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, tower::BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's, checked in `call` under the lock.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let pace = self.pace.clone().filter(|_| writes(&request));
        let inner = self.inner.clone();
        Box::pin(async move {
            if let Some(pace) = pace {
                pace.acquire(KUBE_WRITE).await;
            }
            let sent = {
                let mut inner = inner.lock().await;
                futures::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                inner.call(request)
            };
            sent.await
        })
    }
}

/// The bucket's one key: every write shares it.
const KUBE_WRITE: &str = "KubeWrite";

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
        if writes(&request) && !(self.holds)() {
            return futures::future::Either::Right(futures::future::ready(Err(Box::new(
                NotLeader,
            ))));
        }
        futures::future::Either::Left(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use tower::{Layer, Service};

    use super::*;

    /// Answers at once and counts what it was sent.
    #[derive(Clone, Default)]
    struct Counting(Arc<AtomicUsize>);

    impl tower::Service<hyper::Request<()>> for Counting {
        type Response = ();
        type Error = tower::BoxError;
        type Future = futures::future::Ready<Result<(), tower::BoxError>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: hyper::Request<()>) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Ok(()))
        }
    }

    fn request(method: hyper::Method) -> hyper::Request<()> {
        hyper::Request::builder()
            .method(method)
            .uri("/api/v1/pods")
            .body(())
            .expect("a request")
    }

    #[tokio::test(start_paused = true)]
    async fn writes_go_at_the_pace_and_reads_are_never_held() {
        let sent = Counting::default();
        let quota = Quota {
            burst: 5,
            per_second: 10.0,
        };
        let mut paced = WritePace(Some(Budget::new(BudgetConfig {
            enabled: true,
            write: quota,
            read: quota,
        })))
        .layer(sent.clone());
        let start = tokio::time::Instant::now();
        let writes: Vec<_> = (0..25)
            .map(|_| tokio::spawn(paced.call(request(hyper::Method::PATCH))))
            .collect();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(sent.0.load(Ordering::SeqCst), 5, "the burst goes at once");
        // Reads pass while the writes queue.
        for _ in 0..50 {
            paced
                .call(request(hyper::Method::GET))
                .await
                .expect("a read");
        }
        assert_eq!(sent.0.load(Ordering::SeqCst), 55);
        for write in writes {
            write.await.expect("joined").expect("a write");
        }
        // The 20 writes after the burst at 10 a second.
        let took = start.elapsed();
        assert!(
            (Duration::from_millis(1990)..=Duration::from_millis(2010)).contains(&took),
            "{took:?}"
        );

        let mut unpaced = WritePace(None).layer(Counting::default());
        let start = tokio::time::Instant::now();
        for _ in 0..1000 {
            unpaced
                .call(request(hyper::Method::POST))
                .await
                .expect("a write");
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "no pace: never held");
    }
}
