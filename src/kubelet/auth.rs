//! Who is calling, and may they: the kubelet's delegated authentication and authorization.
//!
//! Expected flow, as a kubelet does it: a client certificate verified against the cluster's
//! client CA names the user (CN) and groups (O); otherwise a bearer token is checked with a
//! `TokenReview`; neither → 401. Then a `SubjectAccessReview` asks whether the user may
//! `<verb>` `nodes/<subresource>` named after this node, the subresource following the path
//! (`/stats` → `stats`, `/metrics` → `metrics`, `/logs` → `log`, anything else → `proxy`) and
//! the verb the HTTP method → 403 if not. Answers are cached like a kubelet's webhooks
//! (tokens 2 min, allowed 5 min, denied 30 s); tokens are cached by their SHA-256, never kept.

use std::time::Duration;

use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use kube::{Api, api::PostParams};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use crate::expiring::Expiring;

/// Limit on one review call.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN_TTL: Duration = Duration::from_secs(120);
const ALLOW_TTL: Duration = Duration::from_secs(300);
const DENY_TTL: Duration = Duration::from_secs(30);
/// Entries kept per cache before old ones are dropped.
const CACHE_LIMIT: usize = 4096;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No or bad credentials (401).
    Unauthenticated,
    /// Authenticated but not allowed (403), with the attributes checked.
    Forbidden {
        /// The user.
        user: String,
        /// The verb.
        verb: &'static str,
        /// The subresource of `nodes`.
        subresource: &'static str,
    },
    /// The API server could not answer a review (500).
    ReviewFailed(String),
}

/// The user and groups of a verified client certificate (DER).
pub fn identity_from_cert(der: &[u8]) -> Option<Identity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some(Identity { user, groups })
}

/// The `nodes` subresource a path needs, as the kubelet maps it.
pub fn subresource(path: &str) -> &'static str {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else {
        "proxy"
    }
}

/// The verb of an HTTP method, as the kubelet maps it.
pub fn verb(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::POST => "create",
        axum::http::Method::PUT => "update",
        axum::http::Method::PATCH => "patch",
        axum::http::Method::DELETE => "delete",
        _ => "get",
    }
}

/// A review's answer: allowed, and who (token reviews).
type Answer = (bool, Option<Identity>);

/// Authentication and authorization through the API server, with caches.
pub struct Authority {
    kube: kube::Client,
    node: String,
    tokens: Expiring<[u8; 32], Answer>,
    decisions: Expiring<(Identity, &'static str, &'static str), Answer>,
}

fn remember<K: std::hash::Hash + Eq>(
    cache: &Expiring<K, Answer>,
    key: K,
    value: Answer,
    ttl: Duration,
) {
    let now = Instant::now();
    cache.insert(key, value, now, now + ttl);
}

fn recall<K: std::hash::Hash + Eq>(cache: &Expiring<K, Answer>, key: &K) -> Option<Answer> {
    cache.get(key, Instant::now())
}

impl Authority {
    /// Reviews against the cluster `kube` reaches, for the Node `node`.
    pub fn new(kube: kube::Client, node: String) -> Self {
        Self {
            kube,
            node,
            tokens: Expiring::new(CACHE_LIMIT),
            decisions: Expiring::new(CACHE_LIMIT),
        }
    }

    /// The caller of a request: its verified certificate's names, else its bearer token's user.
    ///
    /// # Errors
    /// [`Refusal::Unauthenticated`] without usable credentials; [`Refusal::ReviewFailed`] when
    /// the API server does not answer.
    pub async fn authenticate(
        &self,
        cert: Option<&Identity>,
        authorization: Option<&str>,
    ) -> Result<Identity, Refusal> {
        if let Some(identity) = cert {
            return Ok(identity.clone());
        }
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Unauthenticated)?;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((ok, identity)) = recall(&self.tokens, &key) {
            return match (ok, identity) {
                (true, Some(identity)) => Ok(identity),
                _ => Err(Refusal::Unauthenticated),
            };
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.kube.clone());
        let answer =
            tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| Refusal::ReviewFailed("TokenReview timed out".into()))?
                .map_err(|error| Refusal::ReviewFailed(format!("TokenReview failed: {error}")))?;
        let status = answer.status.unwrap_or_default();
        let identity = status
            .authenticated
            .unwrap_or(false)
            .then_some(status.user)
            .flatten()
            .and_then(|u| {
                Some(Identity {
                    user: u.username?,
                    groups: u.groups.unwrap_or_default(),
                })
            });
        match identity {
            Some(identity) => {
                remember(&self.tokens, key, (true, Some(identity.clone())), TOKEN_TTL);
                Ok(identity)
            }
            None => {
                remember(&self.tokens, key, (false, None), DENY_TTL);
                Err(Refusal::Unauthenticated)
            }
        }
    }

    /// Whether `identity` may `verb` `nodes/<subresource>` of this node.
    ///
    /// # Errors
    /// [`Refusal::Forbidden`] when denied, [`Refusal::ReviewFailed`] when the API server does
    /// not answer.
    pub async fn authorize(
        &self,
        identity: &Identity,
        verb: &'static str,
        subresource: &'static str,
    ) -> Result<(), Refusal> {
        let key = (identity.clone(), verb, subresource);
        let allowed = if let Some((allowed, _)) = recall(&self.decisions, &key) {
            allowed
        } else {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(identity.user.clone()),
                    groups: Some(identity.groups.clone()),
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(verb.to_owned()),
                        resource: Some("nodes".into()),
                        subresource: Some(subresource.to_owned()),
                        name: Some(self.node.clone()),
                        version: Some("v1".into()),
                        ..ResourceAttributes::default()
                    }),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let api: Api<SubjectAccessReview> = Api::all(self.kube.clone());
            let answer =
                tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
                    .await
                    .map_err(|_| Refusal::ReviewFailed("SubjectAccessReview timed out".into()))?
                    .map_err(|error| {
                        Refusal::ReviewFailed(format!("SubjectAccessReview failed: {error}"))
                    })?;
            let allowed = answer.status.is_some_and(|s| s.allowed);
            let ttl = if allowed { ALLOW_TTL } else { DENY_TTL };
            remember(&self.decisions, key, (allowed, None), ttl);
            allowed
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::Forbidden {
                user: identity.user.clone(),
                verb,
                subresource,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_subresources_like_the_kubelet() {
        assert_eq!(subresource("/stats/summary"), "stats");
        assert_eq!(subresource("/metrics/resource"), "metrics");
        assert_eq!(subresource("/logs/"), "log");
        assert_eq!(subresource("/containerLogs/ns/p/c"), "proxy");
        assert_eq!(subresource("/exec/ns/p/c"), "proxy");
        assert_eq!(subresource("/statsx"), "proxy");
        assert_eq!(verb(&axum::http::Method::POST), "create");
        assert_eq!(verb(&axum::http::Method::GET), "get");
    }

    #[test]
    fn certificate_names_become_user_and_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver-kubelet-client");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "kubeadm:cluster-admins");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let identity = identity_from_cert(cert.der()).expect("identity");
        assert_eq!(identity.user, "kube-apiserver-kubelet-client");
        assert_eq!(identity.groups, vec!["kubeadm:cluster-admins".to_owned()]);
    }
}
