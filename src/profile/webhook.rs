//! The mutating admission webhook that places the pods a profile selector matches on the
//! virtual nodes (ACK's "ECI Scheduler" and "ECI Effect", see [`super::parse`]).
//!
//! It serves `POST` [`PATH`] over HTTPS: an `admission.k8s.io/v1` `AdmissionReview` of a Pod
//! CREATE in, the review's answer out, **always allowed**. The answer's JSON patch is
//! [`mutate`]'s: for a pod whose namespace's labels and own labels a selector matches, the
//! toleration of the virtual nodes' taint, their node selector, and the selector's
//! annotations and labels. Anything that goes wrong inside (the namespace cannot be read in
//! time, a review without a pod) is logged and answered allowed with no patch: a pod is never
//! refused because of the webhook. The chart registers it with `failurePolicy: Ignore`, so an
//! unreachable webhook does not refuse pods either.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Pod, Toleration};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::{Instrument as _, debug, info, warn};

use super::{Profile, ProfileHandle};
use crate::config::TaintSpec;

/// The path the webhook serves (the chart's `MutatingWebhookConfiguration` names it).
pub const PATH: &str = "/mutate-pods";
/// The namespace whose pods are never touched (the chart's webhook configuration also leaves
/// it out).
pub const SYSTEM_NAMESPACE: &str = "kube-system";
/// Limit on reading a namespace's labels: the API server waits for the webhook at most its
/// `timeoutSeconds` (5 in the chart), and a late answer must still be allowed.
const NAMESPACE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the certificate files are read again.
const TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Largest review body read (a pod is far smaller; the API server's own request limit is 3 MiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Where the webhook sends the pods it places: the virtual nodes' taint and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The virtual nodes' taint, tolerated by placed pods (`None`: nodes without a taint).
    pub taint: Option<TaintSpec>,
    /// The node selector placed pods get (the virtual nodes' labels).
    pub node_selector: BTreeMap<String, String>,
}

impl Placement {
    /// The node selector ACK's virtual nodes carry and this node's Node has: `type:
    /// virtual-kubelet`, with the node's `taint`.
    pub fn virtual_nodes(taint: Option<TaintSpec>) -> Self {
        Self {
            taint,
            node_selector: BTreeMap::from([("type".to_owned(), "virtual-kubelet".to_owned())]),
        }
    }
}

/// Errors that stop the webhook server.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The serving certificate or key cannot be used.
    #[error("webhook TLS: {what}")]
    Tls {
        /// What is wrong.
        what: String,
    },
}

/// Reads the labels of a namespace.
type NamespaceLabels = Arc<
    dyn Fn(String) -> BoxFuture<'static, Result<BTreeMap<String, String>, String>> + Send + Sync,
>;

/// What the handler needs.
#[derive(Clone)]
struct Ctx {
    handle: ProfileHandle,
    placement: Placement,
    namespace_labels: NamespaceLabels,
}

/// What [`mutate`] decided for one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The selector that matched.
    pub selector: String,
    /// The JSON patch (empty when the pod already has everything).
    pub patch: Vec<Value>,
}

/// The JSON patch for `pod` (in `namespace`, whose labels are `namespace_labels`) under
/// `profile`, or `None` when no selector matches (or the namespace is `kube-system`).
///
/// The first matching selector (in the profile's order) is used. It adds:
/// - a toleration of `placement.taint`, unless a toleration of the pod already tolerates it;
/// - each key of `placement.node_selector` the pod's `nodeSelector` does not have (the pod's
///   own keys and values are kept);
/// - the selector's annotations and labels. **The pod's own values win**: a key the pod
///   already has is left as the pod wrote it.
///
/// A pod with `spec.nodeName` set is already placed: it gets only annotations and labels.
pub fn mutate(
    pod: &Pod,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    profile: &Profile,
    placement: &Placement,
) -> Option<Mutation> {
    if namespace == SYSTEM_NAMESPACE {
        return None;
    }
    let empty = BTreeMap::new();
    let pod_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let selector = profile.selector_for(namespace_labels, pod_labels)?;
    let mut patch = Vec::new();
    let spec = pod.spec.as_ref();
    let placed = spec
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !placed && spec.is_some() {
        if let Some(taint) = &placement.taint {
            let tolerations = spec
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            if !tolerations.iter().any(|t| tolerates(t, taint)) {
                let toleration = json!({
                    "key": taint.key,
                    "operator": "Equal",
                    "value": taint.value,
                    "effect": taint.effect,
                });
                if spec.and_then(|s| s.tolerations.as_ref()).is_some() {
                    patch.push(
                        json!({"op": "add", "path": "/spec/tolerations/-", "value": toleration}),
                    );
                } else {
                    patch.push(
                        json!({"op": "add", "path": "/spec/tolerations", "value": [toleration]}),
                    );
                }
            }
        }
        let own = spec.and_then(|s| s.node_selector.as_ref());
        add_entries(
            &mut patch,
            "/spec/nodeSelector",
            own,
            &placement.node_selector,
        );
    }
    add_entries(
        &mut patch,
        "/metadata/annotations",
        pod.metadata.annotations.as_ref(),
        &selector.effect.annotations,
    );
    add_entries(
        &mut patch,
        "/metadata/labels",
        pod.metadata.labels.as_ref(),
        &selector.effect.labels,
    );
    Some(Mutation {
        selector: selector.name.clone(),
        patch,
    })
}

/// Patch operations adding the entries of `wanted` that `own` lacks to the map at `path`
/// (the whole map when the pod has none).
fn add_entries(
    patch: &mut Vec<Value>,
    path: &str,
    own: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) {
    match own {
        None if !wanted.is_empty() => {
            patch.push(json!({"op": "add", "path": path, "value": wanted}));
        }
        None => {}
        Some(own) => {
            for (key, value) in wanted.iter().filter(|(k, _)| !own.contains_key(*k)) {
                patch.push(json!({
                    "op": "add",
                    "path": format!("{path}/{}", escape_pointer(key)),
                    "value": value,
                }));
            }
        }
    }
}

/// A key as one token of a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Whether `toleration` tolerates `taint`, as the scheduler decides it.
fn tolerates(toleration: &Toleration, taint: &TaintSpec) -> bool {
    let effect_ok = toleration
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = toleration.key.as_deref().unwrap_or_default();
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => effect_ok && (key.is_empty() || key == taint.key),
        "Equal" => {
            effect_ok
                && key == taint.key
                && toleration.value.as_deref().unwrap_or_default() == taint.value
        }
        _ => false,
    }
}

/// The webhook's router: `POST` [`PATH`].
fn app(ctx: Ctx) -> Router {
    Router::new()
        .route(PATH, post(review))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(ctx))
}

/// One review: always answered allowed; with a patch when a selector matches.
async fn review(State(ctx): State<Arc<Ctx>>, body: Bytes) -> Response {
    let review: AdmissionReview<Pod> = match serde_json::from_slice(&body) {
        Ok(review) => review,
        Err(error) => {
            debug!(error = %error, "not an AdmissionReview");
            return (
                StatusCode::BAD_REQUEST,
                format!("not an AdmissionReview of a Pod: {error}"),
            )
                .into_response();
        }
    };
    let request: AdmissionRequest<Pod> = match review.try_into() {
        Ok(request) => request,
        Err(error) => {
            debug!(error = %error, "an AdmissionReview without a request");
            return (
                StatusCode::BAD_REQUEST,
                "an AdmissionReview without a request",
            )
                .into_response();
        }
    };
    let response = answer(&ctx, &request).await;
    answer_json(response.into_review())
}

/// The response to `request`: allowed, with [`mutate`]'s patch when there is one.
async fn answer(ctx: &Ctx, request: &AdmissionRequest<Pod>) -> AdmissionResponse {
    let allowed = AdmissionResponse::from(request);
    let namespace = request.namespace.clone().unwrap_or_default();
    let (Operation::Create, Some(pod)) = (&request.operation, request.object.as_ref()) else {
        return allowed;
    };
    let profile = ctx.handle.current();
    if profile.selectors.is_empty() || namespace == SYSTEM_NAMESPACE || namespace.is_empty() {
        return allowed;
    }
    let pod_name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone())
        .unwrap_or_default();
    let labels = match tokio::time::timeout(
        NAMESPACE_TIMEOUT,
        (ctx.namespace_labels)(namespace.clone()),
    )
    .await
    {
        Ok(Ok(labels)) => labels,
        Ok(Err(why)) => {
            warn!(pod.namespace = %namespace, pod.name = %pod_name, error = %why, "cannot read the namespace's labels; the pod is allowed unchanged");
            return allowed;
        }
        Err(_) => {
            warn!(pod.namespace = %namespace, pod.name = %pod_name, timeout = ?NAMESPACE_TIMEOUT, "the namespace's labels did not come in time; the pod is allowed unchanged");
            return allowed;
        }
    };
    let Some(mutation) = mutate(pod, &namespace, &labels, &profile, &ctx.placement) else {
        return allowed;
    };
    info!(pod.namespace = %namespace, pod.name = %pod_name, selector = %mutation.selector, operations = mutation.patch.len(), "pod matched by an eci-profile selector");
    if mutation.patch.is_empty() {
        return allowed;
    }
    let patch = match serde_json::from_value::<json_patch::Patch>(Value::Array(mutation.patch)) {
        Ok(patch) => patch,
        Err(error) => {
            warn!(error = %error, "the patch does not serialise; the pod is allowed unchanged");
            return allowed;
        }
    };
    match allowed.clone().with_patch(patch) {
        Ok(patched) => patched,
        Err(error) => {
            warn!(error = %error, "the patch does not serialise; the pod is allowed unchanged");
            allowed
        }
    }
}

fn answer_json(review: AdmissionReview<DynamicObject>) -> Response {
    match serde_json::to_vec(&review) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => {
            warn!(error = %error, "cannot write the review's answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The namespace's labels, read with `kube` (a GET per review: a namespace labelled just before
/// its first pod is seen as it is now, which a cache could miss).
fn kube_namespace_labels(kube: kube::Client) -> NamespaceLabels {
    Arc::new(move |name: String| {
        let api: kube::Api<Namespace> = kube::Api::all(kube.clone());
        Box::pin(async move {
            api.get_metadata(&name)
                .await
                .map(|ns| ns.metadata.labels.unwrap_or_default())
                .map_err(|e| crate::error_chain(&e))
        })
    })
}

/// Serves the webhook on `listener` over HTTPS with the PEM certificate chain and key of
/// `tls`, until `stop`. The files are read again every 10 s; a change that loads is used for
/// the next connections, one that does not is logged and the certificate in force stays.
///
/// # Errors
/// [`WebhookError::Tls`] when the certificate or key cannot be read at start.
pub async fn serve(
    listener: TcpListener,
    tls: (PathBuf, PathBuf),
    kube: kube::Client,
    handle: ProfileHandle,
    placement: Placement,
    stop: impl Future<Output = ()>,
) -> Result<(), WebhookError> {
    let (cert, key) = tls;
    let mut contents = read_files(&cert, &key);
    let (acceptor_tx, acceptors) = tokio::sync::watch::channel(acceptor(&cert, &key)?);
    let reloading = tokio::spawn(
        async move {
            let mut tick = tokio::time::interval(TLS_RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = read_files(&cert, &key);
                if now == contents {
                    continue;
                }
                contents = now;
                match acceptor(&cert, &key) {
                    Ok(acceptor) => {
                        info!("webhook serving certificate reloaded");
                        acceptor_tx.send_replace(acceptor);
                    }
                    Err(error) => warn!(
                        error = &error as &dyn std::error::Error,
                        "the changed webhook certificate does not load; the one in force stays"
                    ),
                }
            }
        }
        .instrument(tracing::info_span!("webhook_tls")),
    );
    let _reloading = AbortOnDrop(reloading);
    let app = app(Ctx {
        handle,
        placement,
        namespace_labels: kube_namespace_labels(kube),
    });
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), path = PATH, "eci-profile webhook listening");
    crate::https::serve(
        listener,
        acceptors,
        move |_| app.clone(),
        |remote| tracing::debug_span!("webhook_conn", client.addr = %remote),
        stop,
    )
    .await;
    info!("eci-profile webhook stopped");
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The two files' bytes, to notice a change (empty when unreadable).
fn read_files(cert: &PathBuf, key: &PathBuf) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(cert).unwrap_or_default(),
        std::fs::read(key).unwrap_or_default(),
    )
}

/// A TLS acceptor of the PEM chain `cert` and key `key` (ring, HTTP/1.1).
fn acceptor(cert: &PathBuf, key: &PathBuf) -> Result<tokio_rustls::TlsAcceptor, WebhookError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| WebhookError::Tls {
            what: format!("cannot read the certificate {}: {error}", cert.display()),
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| WebhookError::Tls {
        what: format!("cannot read the private key {}: {error}", key.display()),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| WebhookError::Tls {
            what: error.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| WebhookError::Tls {
            what: format!("the certificate and key do not fit: {error}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use tower::ServiceExt as _;

    use super::*;
    use crate::profile::parse;

    fn taint() -> TaintSpec {
        TaintSpec {
            key: "virtual-kubelet.io/provider".into(),
            value: "alibabacloud".into(),
            effect: "NoSchedule".into(),
        }
    }

    fn placement() -> Placement {
        Placement::virtual_nodes(Some(taint()))
    }

    fn profile() -> Profile {
        let data = BTreeMap::from([(
            "selectors".to_owned(),
            r#"[{"name": "serverless",
                 "namespaceSelector": {"matchLabels": {"eci": "true"}},
                 "effect": {"annotations": {"k8s.aliyun.com/eci-use-specs": "2-4Gi"},
                            "labels": {"placed-by": "eci-profile", "app": "theirs"}}}]"#
                .to_owned(),
        )]);
        parse(&data).expect("good").0
    }

    fn eci_ns() -> BTreeMap<String, String> {
        BTreeMap::from([("eci".to_owned(), "true".to_owned())])
    }

    fn pod(json: Value) -> Pod {
        serde_json::from_value(json).expect("a pod")
    }

    #[test]
    fn a_bare_pod_gets_toleration_node_selector_annotations_and_labels() {
        let bare = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}));
        let mutation = mutate(&bare, "apps", &eci_ns(), &profile(), &placement()).expect("matched");
        assert_eq!(mutation.selector, "serverless");
        assert_eq!(
            mutation.patch,
            vec![
                json!({"op": "add", "path": "/spec/tolerations", "value": [{"key": "virtual-kubelet.io/provider", "operator": "Equal", "value": "alibabacloud", "effect": "NoSchedule"}]}),
                json!({"op": "add", "path": "/spec/nodeSelector", "value": {"type": "virtual-kubelet"}}),
                json!({"op": "add", "path": "/metadata/annotations", "value": {"k8s.aliyun.com/eci-use-specs": "2-4Gi"}}),
                json!({"op": "add", "path": "/metadata/labels", "value": {"app": "theirs", "placed-by": "eci-profile"}}),
            ]
        );
        // The patch applies to the pod as the API server would apply it.
        let mut doc = serde_json::to_value(&bare).expect("json");
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(mutation.patch)).expect("a patch");
        json_patch::patch(&mut doc, &patch).expect("applies");
        let patched: Pod = serde_json::from_value(doc).expect("still a pod");
        assert_eq!(
            patched.spec.expect("spec").node_selector.expect("selector")["type"],
            "virtual-kubelet"
        );
    }

    #[test]
    fn the_pods_own_values_win_and_nothing_is_added_twice() {
        let own = pod(json!({
            "metadata": {"name": "p", "labels": {"app": "mine"}, "annotations": {"k8s.aliyun.com/eci-use-specs": "4-8Gi"}},
            "spec": {"containers": [{"name": "c"}],
                     "nodeSelector": {"disk": "ssd"},
                     "tolerations": [{"key": "other", "operator": "Exists"}]}
        }));
        let mutation = mutate(&own, "apps", &eci_ns(), &profile(), &placement()).expect("matched");
        assert_eq!(
            mutation.patch,
            vec![
                json!({"op": "add", "path": "/spec/tolerations/-", "value": {"key": "virtual-kubelet.io/provider", "operator": "Equal", "value": "alibabacloud", "effect": "NoSchedule"}}),
                json!({"op": "add", "path": "/spec/nodeSelector/type", "value": "virtual-kubelet"}),
                json!({"op": "add", "path": "/metadata/labels/placed-by", "value": "eci-profile"}),
            ]
        );
        let tolerating = pod(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}],
                     "nodeSelector": {"type": "something-else"},
                     "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]}
        }));
        let mutation =
            mutate(&tolerating, "apps", &eci_ns(), &profile(), &placement()).expect("matched");
        assert!(
            mutation.patch.iter().all(|op| op["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/metadata/"))),
            "{:?}",
            mutation.patch
        );
    }

    #[test]
    fn a_placed_pod_gets_only_annotations_and_labels() {
        let placed = pod(
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}}),
        );
        let mutation =
            mutate(&placed, "apps", &eci_ns(), &profile(), &placement()).expect("matched");
        let paths: Vec<&str> = mutation
            .patch
            .iter()
            .filter_map(|op| op["path"].as_str())
            .collect();
        assert_eq!(paths, vec!["/metadata/annotations", "/metadata/labels"]);
    }

    #[test]
    fn unmatched_and_system_pods_are_left_alone() {
        let bare = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(
            mutate(&bare, "apps", &BTreeMap::new(), &profile(), &placement()),
            None
        );
        assert_eq!(
            mutate(&bare, "kube-system", &eci_ns(), &profile(), &placement()),
            None
        );
        assert_eq!(
            mutate(&bare, "apps", &eci_ns(), &Profile::default(), &placement()),
            None
        );
    }

    #[test]
    fn keys_with_slashes_are_escaped() {
        assert_eq!(escape_pointer("k8s.aliyun.com/a~b"), "k8s.aliyun.com~1a~0b");
        let annotated = pod(
            json!({"metadata": {"name": "p", "annotations": {"x": "y"}}, "spec": {"nodeName": "n", "containers": []}}),
        );
        let mutation =
            mutate(&annotated, "apps", &eci_ns(), &profile(), &placement()).expect("matched");
        assert_eq!(
            mutation.patch[0]["path"],
            "/metadata/annotations/k8s.aliyun.com~1eci-use-specs"
        );
    }

    #[test]
    fn tolerations_are_read_as_the_scheduler_reads_them() {
        let t = |json: Value| -> Toleration { serde_json::from_value(json).expect("toleration") };
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint()));
        assert!(tolerates(
            &t(json!({"key": "virtual-kubelet.io/provider", "value": "alibabacloud"})),
            &taint()
        ));
        assert!(!tolerates(
            &t(json!({"key": "virtual-kubelet.io/provider", "value": "other"})),
            &taint()
        ));
        assert!(!tolerates(
            &t(
                json!({"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoExecute"})
            ),
            &taint()
        ));
    }

    fn ctx(labels: Result<BTreeMap<String, String>, String>) -> Ctx {
        Ctx {
            handle: ProfileHandle::new(profile()),
            placement: placement(),
            namespace_labels: Arc::new(move |_| {
                let labels = labels.clone();
                Box::pin(async move { labels })
            }),
        }
    }

    /// An AdmissionReview as the API server sends it for a Pod CREATE.
    fn review_json(namespace: &str) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "name": "web",
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "admin", "groups": ["system:masters"]},
                "object": {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web", "namespace": namespace},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}
                },
                "oldObject": null,
                "dryRun": false,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
            }
        })
    }

    async fn post(ctx: Ctx, body: Vec<u8>) -> (StatusCode, Value) {
        let response = app(ctx)
            .oneshot(
                axum::http::Request::post(PATH)
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .expect("request"),
            )
            .await
            .expect("answered");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn the_handler_answers_a_review_with_the_patch() {
        let body = serde_json::to_vec(&review_json("apps")).expect("json");
        let (status, answer) = post(ctx(Ok(eci_ns())), body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let response = &answer["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        // kube writes the patch's bytes as a JSON array of numbers, which the API server's
        // decoder takes for a `[]byte` as it takes base64.
        let patch: Vec<u8> =
            serde_json::from_value(response["patch"].clone()).expect("the patch's bytes");
        let patch: Value = serde_json::from_slice(&patch).expect("json");
        let paths: Vec<&str> = patch
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|op| op["path"].as_str())
            .collect();
        assert_eq!(
            paths,
            vec![
                "/spec/tolerations",
                "/spec/nodeSelector",
                "/metadata/annotations",
                "/metadata/labels"
            ]
        );
    }

    #[tokio::test]
    async fn the_handler_allows_unchanged_when_nothing_matches_or_something_fails() {
        for (namespace, labels) in [
            ("apps", Ok(BTreeMap::new())),
            ("apps", Err("forbidden".to_owned())),
            ("kube-system", Ok(eci_ns())),
        ] {
            let body = serde_json::to_vec(&review_json(namespace)).expect("json");
            let (status, answer) = post(ctx(labels), body).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(answer["response"]["allowed"], true, "{namespace}: {answer}");
            assert!(answer["response"].get("patch").is_none(), "{answer}");
        }
        let (status, _) = post(ctx(Ok(eci_ns())), b"{not json".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
