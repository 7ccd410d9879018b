//! `spec.imagePullSecrets` (`namespace:secretName`) turned into the registry logins ECI takes
//! (`ImageRegistryCredential.N`): each Secret is a `kubernetes.io/dockerconfigjson` (or legacy
//! `kubernetes.io/dockercfg`) Secret; only logins for registries the cache's images live on
//! are passed on.
//!
//! Secret data never reaches an error, a log line, an event or the status: errors name the
//! Secret and what is wrong with it, nothing of its content (a JSON error's text can quote the
//! input, so only its line and column are kept).

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde::Deserialize;

use crate::{
    eci::{ImageRegistryCredential, SecretValue},
    reference::{ImageRef, registry_host},
};

/// Type of a Secret holding `~/.docker/config.json`.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Type of a Secret holding the legacy `~/.dockercfg`.
pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";
/// Most registry logins CreateImageCache accepts.
pub const MAX_CREDENTIALS: usize = 10;

/// A pull secret that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PullSecretError {
    /// The entry is not `namespace:secretName`.
    #[error("image pull secret {entry:?} is not namespace:secretName")]
    BadReference {
        /// The entry as written in the spec.
        entry: String,
    },
    /// The Secret does not exist.
    #[error("image pull secret {namespace}/{name} not found")]
    NotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Reading the Secret failed for another reason (permissions, connection).
    #[error("cannot read image pull secret {namespace}/{name}")]
    Read {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The Secret exists but is not a usable docker config.
    #[error("image pull secret {namespace}/{name} is malformed: {problem}")]
    Malformed {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong, without any of the Secret's data.
        problem: String,
    },
    /// The secrets hold logins for more registries than ECI accepts.
    #[error(
        "image pull secrets give {count} registry logins, more than the {MAX_CREDENTIALS} ECI accepts"
    )]
    TooMany {
        /// How many logins were found.
        count: usize,
    },
}

impl PullSecretError {
    /// `namespace/name` of the Secret at fault, if one is.
    pub fn secret(&self) -> Option<String> {
        match self {
            Self::NotFound { namespace, name }
            | Self::Read {
                namespace, name, ..
            }
            | Self::Malformed {
                namespace, name, ..
            } => Some(format!("{namespace}/{name}")),
            Self::BadReference { .. } | Self::TooMany { .. } => None,
        }
    }
}

/// Splits `namespace:secretName`.
///
/// # Errors
/// [`PullSecretError::BadReference`] when either part is missing.
pub fn parse_secret_ref(entry: &str) -> Result<(&str, &str), PullSecretError> {
    match entry.trim().split_once(':') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains(':') => {
            Ok((ns, name))
        }
        _ => Err(PullSecretError::BadReference {
            entry: entry.to_owned(),
        }),
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    username: Option<String>,
    password: Option<String>,
    auth: Option<String>,
}

/// The logins in one Secret's data, by registry host.
///
/// # Errors
/// [`PullSecretError::Malformed`] naming the Secret when it has the wrong type, lacks its key,
/// or its content does not parse.
pub fn logins_from_secret(
    namespace: &str,
    name: &str,
    secret: &Secret,
) -> Result<BTreeMap<String, (String, SecretValue)>, PullSecretError> {
    let malformed = |problem: String| PullSecretError::Malformed {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        problem,
    };
    let kind = secret.type_.as_deref().unwrap_or("Opaque");
    let key = match kind {
        DOCKER_CONFIG_JSON => ".dockerconfigjson",
        DOCKER_CFG => ".dockercfg",
        other => {
            return Err(malformed(format!(
                "type is {other}, not {DOCKER_CONFIG_JSON} or {DOCKER_CFG}"
            )));
        }
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .ok_or_else(|| malformed(format!("it has no {key} key")))?;
    let at = |e: &serde_json::Error| {
        format!(
            "{key} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    };
    let auths = if kind == DOCKER_CONFIG_JSON {
        serde_json::from_slice::<DockerConfig>(bytes)
            .map_err(|e| malformed(at(&e)))?
            .auths
    } else {
        serde_json::from_slice::<BTreeMap<String, AuthEntry>>(bytes)
            .map_err(|e| malformed(at(&e)))?
    };
    let mut logins = BTreeMap::new();
    for (server, entry) in auths {
        let registry = registry_host(&server);
        let (user, password) = match (entry.username, entry.password, entry.auth) {
            (Some(user), Some(password), _) if !user.is_empty() => (user, password),
            (_, _, Some(auth)) if !auth.is_empty() => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| {
                        malformed(format!(
                            "the auth of {registry} is not base64 of user:password"
                        ))
                    })?;
                let (user, password) = decoded.split_once(':').ok_or_else(|| {
                    malformed(format!(
                        "the auth of {registry} is not base64 of user:password"
                    ))
                })?;
                (user.to_owned(), password.to_owned())
            }
            _ => {
                return Err(malformed(format!(
                    "the entry for {registry} has neither username and password nor auth"
                )));
            }
        };
        logins.insert(registry, (user, SecretValue::new(password)));
    }
    Ok(logins)
}

/// The registries `images` live on (unparsable references are skipped: the cloud reports them).
pub fn registries_of(images: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for image in images {
        if let Ok(r) = ImageRef::parse(image)
            && !out.iter().any(|x| x == r.registry())
        {
            out.push(r.registry().to_owned());
        }
    }
    out
}

/// Reads every Secret of `entries` and returns the logins for the registries of `images`.
/// A later Secret does not override an earlier one's login for the same registry.
///
/// # Errors
/// The first [`PullSecretError`]: a bad entry, a missing, unreadable or malformed Secret, or
/// more than [`MAX_CREDENTIALS`] logins.
pub async fn resolve(
    client: &kube::Client,
    entries: &[String],
    images: &[String],
) -> Result<Vec<ImageRegistryCredential>, PullSecretError> {
    let registries = registries_of(images);
    let mut found: BTreeMap<String, (String, SecretValue)> = BTreeMap::new();
    for entry in entries {
        let (namespace, name) = parse_secret_ref(entry)?;
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let secret = match api.get_opt(name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                return Err(PullSecretError::NotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                });
            }
            Err(source) => {
                return Err(PullSecretError::Read {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source: Box::new(source),
                });
            }
        };
        for (registry, login) in logins_from_secret(namespace, name, &secret)? {
            if registries.contains(&registry) {
                found.entry(registry).or_insert(login);
            }
        }
    }
    if found.len() > MAX_CREDENTIALS {
        return Err(PullSecretError::TooMany { count: found.len() });
    }
    Ok(found
        .into_iter()
        .map(|(server, (user_name, password))| ImageRegistryCredential {
            server,
            user_name,
            password,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::*;

    fn secret(kind: &str, key: &str, content: &str) -> Secret {
        Secret {
            type_: Some(kind.into()),
            data: Some(
                [(key.to_owned(), ByteString(content.as_bytes().to_vec()))]
                    .into_iter()
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn secret_refs_need_both_parts() {
        assert_eq!(
            parse_secret_ref("default:secret1").ok(),
            Some(("default", "secret1"))
        );
        for bad in ["secret1", ":x", "ns:", "a:b:c", ""] {
            assert!(matches!(
                parse_secret_ref(bad),
                Err(PullSecretError::BadReference { .. })
            ));
        }
    }

    #[test]
    fn a_docker_hub_login_under_any_alias_serves_docker_hub_images() {
        // `registry.hub.docker.com` used to be found by the agent but not by the node.
        for server in [
            "registry.hub.docker.com",
            "https://registry-1.docker.io/v2/",
        ] {
            let s = secret(
                DOCKER_CONFIG_JSON,
                ".dockerconfigjson",
                &format!(r#"{{"auths":{{"{server}":{{"username":"u","password":"p"}}}}}}"#),
            );
            let logins = logins_from_secret("default", "s", &s).expect("parses");
            let wanted = registries_of(&["registry-1.docker.io/library/nginx".to_owned()]);
            assert_eq!(wanted, ["docker.io"]);
            assert!(logins.contains_key(&wanted[0]), "{server}: {logins:?}");
        }
        let s = secret(
            DOCKER_CONFIG_JSON,
            ".dockerconfigjson",
            r#"{"auths":{"http://Reg.Example:5000/x":{"username":"u","password":"p"}}}"#,
        );
        let logins = logins_from_secret("default", "s", &s).expect("parses");
        assert!(logins.contains_key("reg.example:5000"));
    }

    #[test]
    fn dockerconfigjson_with_user_password_or_auth() {
        let s = secret(
            DOCKER_CONFIG_JSON,
            ".dockerconfigjson",
            r#"{"auths":{"reg.example:5000":{"username":"bob","password":"hunter2"},
                "https://index.docker.io/v1/":{"auth":"YWxpY2U6czNjcmV0"}}}"#,
        );
        let logins = logins_from_secret("default", "s", &s).expect("parses");
        assert_eq!(logins["reg.example:5000"].0, "bob");
        assert_eq!(logins["reg.example:5000"].1.expose(), "hunter2");
        assert_eq!(logins["docker.io"].0, "alice");
        assert_eq!(logins["docker.io"].1.expose(), "s3cret");
    }

    #[test]
    fn legacy_dockercfg() {
        let s = secret(
            DOCKER_CFG,
            ".dockercfg",
            r#"{"reg.example":{"username":"u","password":"p","email":"x@y"}}"#,
        );
        let logins = logins_from_secret("kube-system", "s3", &s).expect("parses");
        assert_eq!(logins["reg.example"].0, "u");
    }

    #[test]
    fn malformed_secrets_name_the_secret_not_its_data() {
        let cases = [
            secret("Opaque", ".dockerconfigjson", "{}"),
            secret(DOCKER_CONFIG_JSON, "other", "{}"),
            secret(
                DOCKER_CONFIG_JSON,
                ".dockerconfigjson",
                r#"{"auths": "hunter2"}"#,
            ),
            secret(
                DOCKER_CONFIG_JSON,
                ".dockerconfigjson",
                r#"{"auths":{"r":{"auth":"hunter2!!"}}}"#,
            ),
            secret(
                DOCKER_CONFIG_JSON,
                ".dockerconfigjson",
                r#"{"auths":{"r":{"password":"hunter2"}}}"#,
            ),
        ];
        for s in cases {
            let err = logins_from_secret("default", "secret9", &s).expect_err("malformed");
            let text = err.to_string();
            assert!(text.contains("default/secret9"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert_eq!(err.secret().as_deref(), Some("default/secret9"));
        }
    }

    #[test]
    fn registries_of_images() {
        let images = vec![
            "centos:latest".to_owned(),
            "busybox".to_owned(),
            "127.0.0.1:5443/private/app:v1".to_owned(),
        ];
        assert_eq!(registries_of(&images), ["docker.io", "127.0.0.1:5443"]);
    }
}
