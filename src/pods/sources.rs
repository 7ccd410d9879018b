//! Reading what a pod's request is built from, before its group is created: the ConfigMaps
//! and Secrets its env and volumes refer to ([`super::env::references`]), and a token, bound
//! to the pod, for each projected `serviceAccountToken` source, and the PersistentVolumeClaims
//! of its `persistentVolumeClaim`/`ephemeral` volumes with the volumes they are bound to
//! ([`super::storage::claim_refs`]). Tokens and Secret values go only into the create request,
//! never a log or event.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use k8s_openapi::api::{
    authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
    core::v1::{
        ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
        ServiceAccountTokenProjection,
    },
};
use kube::{Api, ResourceExt};
use tokio::time::Instant;
use tracing::warn;

use super::{
    context::{Context, KUBE_TIMEOUT},
    env::{self, ServiceLink, SourceKind, Sources},
    storage::{self, Claim},
};

/// The ConfigMap of the cluster's root CA that every namespace has and every pod's
/// service-account volume projects (published by kube-controller-manager).
const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// How long one read of a namespace's Services and of its `kube-root-ca.crt` serves the pods
/// created after it. In a scale-up each pod read both again, two of its sixteen API-server
/// requests (BENCHMARKS.md, "Peer"), for answers that do not change between pods created a
/// few milliseconds apart. A kubelet reads Services from an informer and can read ConfigMaps
/// through a TTL cache (its `configMapAndSecretChangeDetectionStrategy: Cache`); a pod here
/// sees them at most this much older than a read of its own would.
const SHARED_READ_FOR: Duration = Duration::from_secs(1);
/// Lifetime of a token whose projection names none: what a kubelet asks for.
const DEFAULT_TOKEN_SECONDS: i64 = 3607;
/// Reads what the pod's request is built from. `None` if something could not be read (other
/// than not existing): the create is retried later.
///
/// The reads do not depend on each other, so they are sent together and a build waits for the
/// slowest, not for their sum: at the start of a scale-up each waits behind the ReplicaSet's
/// pods at the API server, and one after another they made a build take up to 0.7 s
/// (issue #21).
pub(super) async fn fetch_sources(ctx: &Context, pod: &Pod) -> Option<Sources> {
    let namespace = pod.namespace()?;
    let (objects, tokens, claims, services) = tokio::join!(
        read_objects(ctx, pod, &namespace),
        request_tokens(ctx, pod, &namespace),
        read_claims(ctx, pod, &namespace),
        service_links(ctx, pod, &namespace),
    );
    Some(Sources {
        objects: objects?,
        tokens: tokens?,
        claims: claims?,
        services: services?,
    })
}

/// The ConfigMaps and Secrets the pod's env and volumes refer to, read together; `None` if one
/// could not be read.
async fn read_objects(ctx: &Context, pod: &Pod, namespace: &str) -> Option<Objects> {
    let reads = env::references(pod)
        .into_iter()
        .map(|(kind, name)| async move {
            let data = read_object(ctx, namespace, kind, &name).await?;
            Some(((kind, name), data))
        });
    futures::future::join_all(reads).await.into_iter().collect()
}

/// The ConfigMaps and Secrets read, by kind and name (`None`: it does not exist).
type Objects = HashMap<(SourceKind, String), Option<BTreeMap<String, String>>>;

/// One ConfigMap's or Secret's data (`Some(None)`: it does not exist); `None` if it could not
/// be read.
async fn read_object(
    ctx: &Context,
    namespace: &str,
    kind: SourceKind,
    name: &str,
) -> Option<Option<BTreeMap<String, String>>> {
    Some(match kind {
        SourceKind::ConfigMap if name == ROOT_CA_CONFIG_MAP => root_ca(ctx, namespace).await?,
        SourceKind::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(ctx.kube.clone(), namespace);
            get_opt(&api, name)
                .await?
                .map(|cm| cm.data.unwrap_or_default())
        }
        SourceKind::Secret => {
            let api: Api<Secret> = Api::namespaced(ctx.kube.clone(), namespace);
            get_opt(&api, name).await?.map(|secret| {
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect()
            })
        }
    })
}

/// The namespace's `kube-root-ca.crt` data, shared for [`SHARED_READ_FOR`]; `None`
/// if it could not be read.
async fn root_ca(ctx: &Context, namespace: &str) -> Option<Option<BTreeMap<String, String>>> {
    let now = Instant::now();
    if let Some(data) = ctx.root_ca.get(namespace, now) {
        return Some(data);
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.kube.clone(), namespace);
    let data = get_opt(&api, ROOT_CA_CONFIG_MAP)
        .await?
        .map(|cm| cm.data.unwrap_or_default());
    ctx.root_ca.insert(
        namespace.to_owned(),
        data.clone(),
        now,
        now + SHARED_READ_FOR,
    );
    Some(data)
}

/// Reads each claim the pod's volumes name and, when it is bound, its PersistentVolume, by
/// volume name. A claim that is missing, not bound, or bound to a volume that does not exist
/// is recorded as [`Claim::NotBound`] with why; `None` if one could not be read.
async fn read_claims(ctx: &Context, pod: &Pod, namespace: &str) -> Option<HashMap<String, Claim>> {
    let mut read = HashMap::new();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.kube.clone(), namespace);
    let volumes: Api<PersistentVolume> = Api::all(ctx.kube.clone());
    for reference in storage::claim_refs(pod) {
        let name = &reference.claim;
        let volume = &reference.volume;
        let state = match get_opt(&claims, name).await? {
            None => Claim::NotBound(format!(
                "volume {volume:?}: persistentVolumeClaim {name:?} does not exist"
            )),
            Some(claim) if !storage::claim_belongs(&claim, &reference) => Claim::NotBound(format!(
                "volume {volume:?}: persistentVolumeClaim {name:?} was not made for this pod (an ephemeral volume's claim must be owned by its pod)"
            )),
            Some(claim) => {
                let phase = claim.status.as_ref().and_then(|s| s.phase.clone());
                let bound_to = claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.clone())
                    .filter(|v| !v.is_empty());
                match (phase.as_deref(), bound_to) {
                    (Some("Bound"), Some(pv_name)) => match get_opt(&volumes, &pv_name).await? {
                        Some(pv) => Claim::Bound(Box::new(pv)),
                        None => Claim::NotBound(format!(
                            "volume {volume:?}: persistentVolumeClaim {name:?} is bound to PersistentVolume {pv_name:?}, which does not exist"
                        )),
                    },
                    (phase, _) => Claim::NotBound(format!(
                        "volume {volume:?}: persistentVolumeClaim {name:?} is not bound yet (phase {})",
                        phase.unwrap_or("unknown")
                    )),
                }
            }
        };
        read.insert(volume.clone(), state);
    }
    Some(read)
}

/// The `kubernetes` Service at the API server's address pods reach (when known), then, with
/// `enableServiceLinks` (the default), every Service of the pod's namespace that has a
/// ClusterIP (headless and ExternalName Services are skipped, as a kubelet skips them).
/// `None` if the Services could not be listed.
async fn service_links(ctx: &Context, pod: &Pod, namespace: &str) -> Option<Vec<ServiceLink>> {
    let mut links = Vec::new();
    if let Some((host, port)) = &ctx.config.placement.api_server {
        links.push(ServiceLink {
            name: "kubernetes".into(),
            host: host.clone(),
            ports: vec![("https".into(), *port, "TCP".into())],
        });
    }
    let enabled = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    if !enabled {
        return Some(links);
    }
    let now = Instant::now();
    if let Some(own) = ctx.service_links.get(namespace, now) {
        links.extend(own);
        return Some(links);
    }
    let api: Api<Service> = Api::namespaced(ctx.kube.clone(), namespace);
    let listed = tokio::time::timeout(KUBE_TIMEOUT, api.list(&Default::default())).await;
    let services = match listed {
        Ok(Ok(list)) => list.items,
        // Not allowed (a ClusterRole from before the chart granted `list` on services): a
        // lasting refusal, so the pod is created without the namespace's link variables and
        // says so, rather than waiting for ever.
        Ok(Err(kube::Error::Api(status))) if status.code == 403 => {
            warn!(pod.namespace = %namespace, "not allowed to list services; creating the pod without their link variables");
            super::writes::publish(
                ctx,
                pod,
                kube::runtime::events::EventType::Warning,
                "ServiceLinksUnavailable",
                &format!(
                    "cannot list the Services of namespace {namespace} (forbidden: the node's ClusterRole needs list on services); the containers get only the kubernetes Service's variables"
                ),
            )
            .await;
            return Some(links);
        }
        Ok(Err(error)) => {
            warn!(
                error = &error as &dyn std::error::Error,
                "services not listed; retrying"
            );
            return None;
        }
        Err(_) => {
            warn!("service list timed out; retrying");
            return None;
        }
    };
    let mut own: Vec<ServiceLink> = services.iter().filter_map(link_of).collect();
    // The kubernetes Service keeps the address pods can reach.
    own.retain(|l| !(namespace == "default" && l.name == "kubernetes" && !links.is_empty()));
    own.sort_by(|a, b| a.name.cmp(&b.name));
    ctx.service_links.insert(
        namespace.to_owned(),
        own.clone(),
        now,
        now + SHARED_READ_FOR,
    );
    links.extend(own);
    Some(links)
}

/// A Service's link, if it has a ClusterIP and ports.
fn link_of(service: &Service) -> Option<ServiceLink> {
    let spec = service.spec.as_ref()?;
    let ip = spec
        .cluster_ip
        .clone()
        .filter(|ip| !ip.is_empty() && ip != "None")?;
    let ports: Vec<(String, u16, String)> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.name.clone().unwrap_or_default(),
                u16::try_from(p.port).ok()?,
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            ))
        })
        .collect();
    (!ports.is_empty()).then(|| ServiceLink {
        name: service.metadata.name.clone().unwrap_or_default(),
        host: ip,
        ports,
    })
}

/// The service account the pod's tokens are issued for.
fn service_account(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned())
}

/// Every projected `serviceAccountToken` source of the pod, with its volume's name, in order.
fn token_projections(pod: &Pod) -> Vec<(&str, &ServiceAccountTokenProjection)> {
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    volumes
        .flat_map(|volume| {
            volume
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .filter_map(|source| source.service_account_token.as_ref())
                .map(move |token| (volume.name.as_str(), token))
        })
        .collect()
}

/// The TokenRequest for one projection: its audience and lifetime, bound to the pod.
fn token_request(pod: &Pod, token: &ServiceAccountTokenProjection) -> TokenRequest {
    TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: token.audience.clone().map(|a| vec![a]),
            expiration_seconds: token.expiration_seconds.or(Some(DEFAULT_TOKEN_SECONDS)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    }
}

/// Requests a token, bound to the pod, for every projected `serviceAccountToken` source, by
/// volume name and file path. Tokens go only into the create request, never a log or event.
async fn request_tokens(
    ctx: &Context,
    pod: &Pod,
    namespace: &str,
) -> Option<HashMap<(String, String), String>> {
    let mut tokens = HashMap::new();
    pod.spec.as_ref()?;
    let account = service_account(pod);
    let api: Api<ServiceAccount> = Api::namespaced(ctx.kube.clone(), namespace);
    for (volume, token) in token_projections(pod) {
        let request = token_request(pod, token);
        let answer = tokio::time::timeout(
            KUBE_TIMEOUT,
            api.create_token_request(&account, &Default::default(), &request),
        )
        .await;
        match answer {
            Ok(Ok(issued)) => {
                let value = issued.status.and_then(|s| s.token).unwrap_or_default();
                tokens.insert((volume.to_owned(), token.path.clone()), value);
            }
            Ok(Err(error)) => {
                warn!(service_account = %account, error = &error as &dyn std::error::Error, "service-account token not issued; retrying");
                return None;
            }
            Err(_) => {
                warn!(service_account = %account, "service-account token request timed out; retrying");
                return None;
            }
        }
    }
    Some(tokens)
}

/// GET with a timeout: `Some(None)` if it does not exist, `None` if it could not be read.
async fn get_opt<K>(api: &Api<K>, name: &str) -> Option<Option<K>>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match tokio::time::timeout(KUBE_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(found)) => Some(found),
        Ok(Err(error)) => {
            warn!(object.name = %name, error = &error as &dyn std::error::Error, "referenced object not read; retrying");
            None
        }
        Err(_) => {
            warn!(object.name = %name, timeout = ?KUBE_TIMEOUT, "referenced object read timed out; retrying");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("fixture pod")
    }

    const PROJECTED: &str = r#"
metadata: {name: web, namespace: default, uid: u-1}
spec:
  serviceAccountName: builder
  containers: [{name: main, image: busybox}]
  volumes:
  - name: kube-api-access
    projected:
      sources:
      - serviceAccountToken: {path: token}
      - configMap: {name: kube-root-ca.crt}
  - name: vault
    projected:
      sources:
      - serviceAccountToken: {path: vault-token, audience: vault, expirationSeconds: 600}
  - name: scratch
    emptyDir: {}
"#;

    #[test]
    fn every_projected_token_is_asked_for_with_its_volume() {
        let pod = pod(PROJECTED);
        let asked: Vec<_> = token_projections(&pod)
            .into_iter()
            .map(|(volume, token)| (volume, token.path.as_str()))
            .collect();
        assert_eq!(
            asked,
            [("kube-api-access", "token"), ("vault", "vault-token")]
        );
        assert_eq!(service_account(&pod), "builder");
    }

    #[test]
    fn tokens_are_bound_to_the_pod_with_the_projections_audience_and_lifetime() {
        let pod = pod(PROJECTED);
        let projections = token_projections(&pod);
        let spec = |i: usize| token_request(&pod, projections[i].1).spec.expect("a spec");
        let default = spec(0);
        assert_eq!(default.audiences, None);
        assert_eq!(default.expiration_seconds, Some(3607));
        let bound = default.bound_object_ref.expect("bound to the pod");
        assert_eq!(
            (
                bound.kind.as_deref(),
                bound.name.as_deref(),
                bound.uid.as_deref()
            ),
            (Some("Pod"), Some("web"), Some("u-1"))
        );
        let vault = spec(1);
        assert_eq!(vault.audiences, Some(vec!["vault".to_owned()]));
        assert_eq!(vault.expiration_seconds, Some(600));
    }

    #[test]
    fn a_pod_without_an_account_uses_default_and_needs_no_token() {
        let pod = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i}]}",
        );
        assert_eq!(service_account(&pod), "default");
        assert!(token_projections(&pod).is_empty());
    }
}
