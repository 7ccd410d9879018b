//! The listener: TLS, the client's certificate identity per connection, HTTP/1.1 with
//! upgrades, the router and its authentication/authorization layer.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    extract::{Path, Query, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec};
use kube::Api;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::{
    ApiError, Ctx, KubeletConfig, KubeletError,
    auth::{self, Authority, Identity, Refusal},
    logs, remotecommand, stats, tls,
};
use crate::{
    eci::{self, ContainerGroupStatus},
    pods::{self, translate::tags},
};

/// The verified client certificate's identity of a connection, if any.
#[derive(Debug, Clone)]
struct Peer(Option<Identity>);

/// The cluster's client CA, as the API server publishes it for delegated authentication;
/// `Ok(None)` when it publishes none, `Err(())` when it could not be read (logged).
async fn cluster_client_ca(kube: &kube::Client) -> Result<Option<Vec<u8>>, ()> {
    let api: Api<ConfigMap> = Api::namespaced(kube.clone(), "kube-system");
    let found = tokio::time::timeout(
        Duration::from_secs(10),
        api.get_opt("extension-apiserver-authentication"),
    )
    .await;
    match found {
        Ok(Ok(Some(map))) => Ok(map
            .data
            .and_then(|d| d.get("client-ca-file").cloned())
            .map(String::into_bytes)),
        Ok(Ok(None)) => Ok(None),
        Err(_) => {
            warn!("kube-system/extension-apiserver-authentication did not come within 10 s");
            Err(())
        }
        Ok(Err(error)) => {
            warn!(
                error = &error as &dyn std::error::Error,
                "cannot read kube-system/extension-apiserver-authentication; the client CA stays as it was (none at start: client certificates are not accepted)"
            );
            Err(())
        }
    }
}

/// Serves the kubelet API on `listener` until `shutdown` resolves.
///
/// # Errors
/// [`KubeletError::Tls`] when the TLS settings are unusable.
pub async fn serve(
    listener: TcpListener,
    config: KubeletConfig,
    kube: kube::Client,
    eci: eci::Client,
    shutdown: impl Future<Output = ()>,
) -> Result<(), KubeletError> {
    let tls = Tls::new(&config, &kube).await?;
    let client_ca = tls.client_ca.clone();
    // Reloads run beside the accept loop, which takes the acceptor in force for each
    // connection: a slow read of the cluster's CA never holds a connection back.
    let (acceptor_tx, acceptor) = tokio::sync::watch::channel(tls.acceptor.clone());
    let reloading = tokio::spawn(tls.keep_reloading(config.clone(), kube.clone(), acceptor_tx));
    let _reloading = AbortOnDrop(reloading);
    let ctx = Arc::new(Ctx {
        authority: config
            .auth
            .then(|| Authority::new(kube.clone(), config.node_name.clone())),
        kube: kube.clone(),
        eci,
        node: config.node_name.clone(),
        cluster: config.cluster_name.clone(),
        started: jiff::Timestamp::now(),
        stream_creation_timeout: config.stream_creation_timeout,
        stream_idle_timeout: config.stream_idle_timeout,
        node_cpu: super::stats::NodeCpu::default(),
    });
    if !config.auth {
        warn!("kubelet API authentication is off: anyone who reaches the port can exec into pods");
    }
    info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        client_certificates = client_ca.is_some(),
        auth = config.auth,
        "kubelet API listening"
    );
    let app = app(ctx);
    crate::https::serve(
        listener,
        acceptor,
        move |cert| {
            let peer = cert.and_then(|cert| auth::identity_from_cert(cert));
            app.clone().layer(Extension(Peer(peer)))
        },
        |remote| tracing::debug_span!("kubelet_conn", client.addr = %remote),
        shutdown,
    )
    .await;
    info!("kubelet API stopped");
    Ok(())
}

/// The TLS settings in force and what they were made of, to notice a change.
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The generated certificate (kept: regenerating would change it for no reason), or the
    /// contents of the files last loaded.
    generated: Option<tls::Keyed>,
    files: Option<(Vec<u8>, Vec<u8>)>,
    client_ca: Option<Vec<u8>>,
}

impl Tls {
    async fn new(config: &KubeletConfig, kube: &kube::Client) -> Result<Self, KubeletError> {
        let keyed = tls::load(&config.serving_cert)?;
        let files = tls::file_contents(&config.serving_cert);
        let generated = files
            .is_none()
            .then(|| (keyed.0.clone(), keyed.1.clone_key()));
        let client_ca = client_ca(config, kube).await.unwrap_or(None);
        let acceptor =
            tokio_rustls::TlsAcceptor::from(tls::server_config_of(keyed, client_ca.as_deref())?);
        Ok(Self {
            acceptor,
            generated,
            files,
            client_ca,
        })
    }

    /// Every [`super::TLS_RELOAD_INTERVAL`], reads the certificate's files (and a client CA
    /// file) again, and the cluster's client CA every [`CLUSTER_CA_EVERY`] of those; a change
    /// that loads is sent to the accept loop and used for the next connections (those open keep
    /// theirs). A change that does not load is logged and the settings in force stay; so does
    /// the CA in force when it cannot be read.
    async fn keep_reloading(
        mut self,
        config: KubeletConfig,
        kube: kube::Client,
        acceptors: tokio::sync::watch::Sender<tokio_rustls::TlsAcceptor>,
    ) {
        let mut tick = tokio::time::interval(super::TLS_RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        for round in 1u64.. {
            tick.tick().await;
            let files = tls::file_contents(&config.serving_cert);
            let read_ca = config.client_ca.is_some() || round % CLUSTER_CA_EVERY == 0;
            let client_ca = if read_ca {
                client_ca(&config, &kube)
                    .await
                    .unwrap_or_else(|()| self.client_ca.clone())
            } else {
                self.client_ca.clone()
            };
            if files == self.files && client_ca == self.client_ca {
                continue;
            }
            let keyed = match &self.generated {
                Some((chain, key)) => Ok((chain.clone(), key.clone_key())),
                None => tls::load(&config.serving_cert),
            };
            match keyed.and_then(|keyed| tls::server_config_of(keyed, client_ca.as_deref())) {
                Ok(server) => {
                    info!(
                        serving_certificate = files != self.files,
                        client_ca = client_ca != self.client_ca,
                        "kubelet API TLS reloaded"
                    );
                    acceptors.send_replace(tokio_rustls::TlsAcceptor::from(server));
                    self.files = files;
                    self.client_ca = client_ca;
                }
                Err(error) => warn!(
                    error = &error as &dyn std::error::Error,
                    "kubelet API TLS changed but cannot be loaded; keeping the previous settings"
                ),
            }
        }
    }
}

/// How many reloads of the files go by between two reads of the cluster's client CA (a GET
/// of `kube-system/extension-apiserver-authentication`, once a minute).
const CLUSTER_CA_EVERY: u64 = 6;

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The client CA now: the file given, or the cluster's; none without authentication.
/// `Err(())`: it could not be read (logged), which is no reason to drop the one in force.
async fn client_ca(config: &KubeletConfig, kube: &kube::Client) -> Result<Option<Vec<u8>>, ()> {
    if !config.auth {
        return Ok(None);
    }
    match &config.client_ca {
        Some(path) => match tokio::fs::read(path).await {
            Ok(pem) => Ok(Some(pem)),
            Err(error) => {
                warn!(path = %path.display(), error = &error as &dyn std::error::Error, "cannot read the kubelet API's client CA");
                Err(())
            }
        },
        None => cluster_client_ca(kube).await,
    }
}

/// The routes, behind authentication and authorization.
fn app(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route("/pods/", get(pods))
        .route("/runningpods", get(running_pods))
        .route("/runningpods/", get(running_pods))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/exec/{namespace}/{pod}/{container}", get(exec).post(exec))
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(attach).post(attach),
        )
        .route("/stats/summary", get(summary))
        .route("/stats/summary/", get(summary))
        .route("/metrics/resource", get(resource_metrics))
        .route("/metrics/resource/", get(resource_metrics))
        .layer(middleware::from_fn_with_state(ctx.clone(), guard))
        .with_state(ctx)
}

/// Authentication, then authorization for `nodes/<subresource>`.
async fn guard(
    State(ctx): State<Arc<Ctx>>,
    peer: Option<Extension<Peer>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(authority) = &ctx.authority else {
        return next.run(request).await;
    };
    let cert = peer.and_then(|Extension(Peer(identity))| identity);
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verb = auth::verb(request.method());
    let subresource = auth::subresource(request.uri().path());
    let outcome = match authority.authenticate(cert.as_ref(), bearer).await {
        Ok(identity) => authority.authorize(&identity, verb, subresource).await,
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(()) => next.run(request).await,
        Err(Refusal::Unauthenticated) => (StatusCode::UNAUTHORIZED, "Unauthorized").into_response(),
        Err(Refusal::Forbidden {
            user,
            verb,
            subresource,
        }) => (
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={user}, verb={verb}, resource=nodes, subresource={subresource})"
            ),
        )
            .into_response(),
        Err(Refusal::ReviewFailed(message)) => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message,
        }
        .into_response(),
    }
}

fn list_json(items: Vec<Pod>) -> Response {
    axum::Json(json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": items,
    }))
    .into_response()
}

/// `/pods`: the pods the API server has bound to this node.
async fn pods(State(ctx): State<Arc<Ctx>>) -> Result<Response, ApiError> {
    Ok(list_json(stats::node_pods(&ctx).await?))
}

/// `/runningpods/`: the pods the cloud runs for this node, from the groups' tags.
async fn running_pods(State(ctx): State<Arc<Ctx>>) -> Result<Response, ApiError> {
    let groups = tokio::time::timeout(
        Duration::from_secs(60),
        pods::describe_node_groups(&ctx.eci, &ctx.cluster, &ctx.node),
    )
    .await
    .map_err(|_| ApiError::unavailable("DescribeContainerGroups timed out"))?
    .map_err(|error| ApiError::from_eci(&error))?;
    let items = groups
        .into_iter()
        .filter(|g| {
            !matches!(
                g.status,
                ContainerGroupStatus::Succeeded
                    | ContainerGroupStatus::Failed
                    | ContainerGroupStatus::Expired
                    | ContainerGroupStatus::ScheduleFailed
            )
        })
        .map(|group| {
            let tag = |key: &str| group.tag(key).map(str::to_owned);
            Pod {
                metadata: kube::api::ObjectMeta {
                    name: tag(tags::NAME),
                    namespace: tag(tags::NAMESPACE),
                    uid: tag(tags::UID),
                    ..Default::default()
                },
                spec: Some(PodSpec {
                    containers: group
                        .containers
                        .iter()
                        .map(|c| Container {
                            name: c.name.clone(),
                            image: Some(c.image.clone()),
                            ..Container::default()
                        })
                        .collect(),
                    ..PodSpec::default()
                }),
                status: None,
            }
        })
        .collect();
    Ok(list_json(items))
}

async fn container_logs(
    State(ctx): State<Arc<Ctx>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<logs::LogQuery>,
) -> Result<Response, ApiError> {
    logs::serve(ctx, namespace, pod, container, query).await
}

async fn exec(
    State(ctx): State<Arc<Ctx>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    remotecommand::serve_exec(ctx, namespace, pod, container, request).await
}

/// `/attach`: ECI's OpenAPI can run a command in a container but not attach to its main
/// process, so this says so instead of pretending.
async fn attach(
    State(ctx): State<Arc<Ctx>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    super::lookup::find(&ctx.kube, &ctx.node, &namespace, &pod, Some(&container)).await?;
    Err(ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        message: "attach is not available on an ECI virtual node: the ECI OpenAPI runs commands in a container (kubectl exec) but cannot attach to its main process".into(),
    })
}

async fn summary(State(ctx): State<Arc<Ctx>>) -> Result<Response, ApiError> {
    let samples = stats::samples(&ctx).await?;
    Ok(axum::Json(stats::summary(
        &ctx.node,
        &ctx.started.to_string(),
        &samples,
    ))
    .into_response())
}

async fn resource_metrics(State(ctx): State<Arc<Ctx>>) -> Result<Response, ApiError> {
    let samples = stats::samples(&ctx).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        stats::resource_metrics(&samples, ctx.node_cpu.total(&samples)),
    )
        .into_response())
}
