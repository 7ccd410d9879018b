//! Credentials: where they come from, how they are kept fresh, and how they are kept out of
//! sight.
//!
//! [`default_chain`] finds the source the way Alibaba Cloud's SDKs do (see [`chain`] for the
//! order): the environment, RRSA, the CLI's and the SDKs' credentials files, the ECS instance
//! RAM role, and `AssumeRole` on top of any of them; a mounted Secret directory
//! (`access-key-id`, `access-key-secret`, optionally `security-token`, surrounding whitespace
//! trimmed) comes first when one is named. A [`Provider`] holds the current credentials of that
//! source and refreshes temporary ones before they expire.
//!
//! The environment is read through the [`Env`] trait so tests pass a map and never mutate the
//! process environment. The secret and the token are [`SecretString`]s: `Debug` prints
//! `[REDACTED]`, and no error message carries them.

mod chain;
mod metadata;
mod profile;
mod provider;
mod sts;

pub use chain::{
    ChainSettings, DEFAULT_SESSION_NAME, ENV_CLI_PROFILE_DISABLED, ENV_CREDENTIALS_FILE,
    ENV_ECS_METADATA, ENV_ECS_METADATA_DISABLED, ENV_IMDSV1_DISABLED, ENV_OIDC_PROVIDER_ARN,
    ENV_OIDC_TOKEN_FILE, ENV_PROFILE, ENV_ROLE_ARN, ENV_ROLE_SESSION_NAME, ENV_STS_ENDPOINT,
    ENV_STS_REGION, ENV_VPC_ENDPOINT_ENABLED, default_chain,
};
pub use metadata::DEFAULT_METADATA_ENDPOINT;
pub use provider::{Provider, REREAD_FILES};
pub use sts::{DEFAULT_STS_ENDPOINT, STS_API_VERSION};

use std::{collections::HashMap, path::Path};

use secrecy::{ExposeSecret, SecretString};

use super::Error;

/// Environment variable of the AccessKey id.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// Environment variable of the AccessKey secret.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// Environment variable of the optional STS security token.
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// File name of the AccessKey id in a credentials directory.
pub const FILE_ACCESS_KEY_ID: &str = "access-key-id";
/// File name of the AccessKey secret in a credentials directory.
pub const FILE_ACCESS_KEY_SECRET: &str = "access-key-secret";
/// File name of the optional STS token in a credentials directory.
pub const FILE_SECURITY_TOKEN: &str = "security-token";

/// A read-only view of environment variables.
pub trait Env {
    /// The value of `name`, or `None` if it is unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// An AccessKey pair, optionally with an STS security token.
#[derive(Clone, Debug)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: SecretString,
    security_token: Option<SecretString>,
}

impl Credentials {
    /// Credentials from explicit values.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: SecretString::from(access_key_secret.into()),
            security_token: security_token.map(SecretString::from),
        }
    }

    /// Credentials from the environment (see the module docs).
    ///
    /// # Errors
    /// [`Error::MissingCredential`] naming the variable if the id or the secret is unset or empty.
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let required = |name: &str| {
            env.var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::MissingCredential { what: name.into() })
        };
        let id = required(ENV_ACCESS_KEY_ID)?;
        let secret = required(ENV_ACCESS_KEY_SECRET)?;
        let token = env
            .var(ENV_SECURITY_TOKEN)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        Ok(Self::new(id, secret, token))
    }

    /// Credentials from a mounted directory (see the module docs).
    ///
    /// # Errors
    /// [`Error::MissingCredential`] if `access-key-id` or `access-key-secret` is absent or empty,
    /// [`Error::CredentialsFile`] if a file exists but cannot be read.
    pub async fn from_dir(dir: &Path) -> Result<Self, Error> {
        let id = read_file(dir, FILE_ACCESS_KEY_ID).await?;
        let secret = read_file(dir, FILE_ACCESS_KEY_SECRET).await?;
        let token = read_file(dir, FILE_SECURITY_TOKEN).await?;
        let missing = |name: &str| Error::MissingCredential {
            what: dir.join(name).display().to_string(),
        };
        Ok(Self::new(
            id.ok_or_else(|| missing(FILE_ACCESS_KEY_ID))?,
            secret.ok_or_else(|| missing(FILE_ACCESS_KEY_SECRET))?,
            token,
        ))
    }

    /// Credentials from `dir` when one is given (a mounted Secret), else from the environment.
    ///
    /// # Errors
    /// As [`Credentials::from_dir`] or [`Credentials::from_env`]; no fallback between the two, so
    /// a half-mounted Secret is reported rather than silently replaced by other credentials.
    pub async fn resolve(env: &impl Env, dir: Option<&Path>) -> Result<Self, Error> {
        match dir {
            Some(dir) => Self::from_dir(dir).await,
            None => Self::from_env(env),
        }
    }

    /// The AccessKey id (not a secret: it appears in every signed request).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The AccessKey secret, for signing only.
    pub(crate) fn secret(&self) -> &str {
        self.access_key_secret.expose_secret()
    }

    /// The STS token, sent as `SecurityToken` (V1) or `x-acs-security-token` (V3).
    pub(crate) fn security_token(&self) -> Option<&str> {
        self.security_token
            .as_ref()
            .map(ExposeSecret::expose_secret)
    }
}

/// A secret request parameter (a registry password): sent as-is, shown as `[REDACTED]`.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself, for code that must hand it on (e.g. to a registry).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl serde::Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

/// The trimmed content of `dir/name`, `None` if the file is absent or blank.
async fn read_file(dir: &Path, name: &str) -> Result<Option<String>, Error> {
    let path = dir.join(name);
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::CredentialsFile { path, source }),
    }
}

/// An environment of `pairs`, for tests.
#[cfg(test)]
pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_reads_the_sdk_variables() {
        let c = Credentials::from_env(&env(&[
            (ENV_ACCESS_KEY_ID, "LTAIexample"),
            (ENV_ACCESS_KEY_SECRET, "s3cr3t-value"),
            (ENV_SECURITY_TOKEN, "tok-value"),
        ]))
        .expect("complete");
        assert_eq!(c.access_key_id(), "LTAIexample");
        assert_eq!(c.secret(), "s3cr3t-value");
        assert_eq!(c.security_token(), Some("tok-value"));

        let c = Credentials::from_env(&env(&[
            (ENV_ACCESS_KEY_ID, "id"),
            (ENV_ACCESS_KEY_SECRET, "s"),
            (ENV_SECURITY_TOKEN, ""),
        ]))
        .expect("complete");
        assert_eq!(c.security_token(), None);
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let err = Credentials::from_env(&env(&[(ENV_ACCESS_KEY_ID, "id")])).unwrap_err();
        assert!(matches!(&err, Error::MissingCredential { what } if what == ENV_ACCESS_KEY_SECRET));
        let err = Credentials::from_env(&env(&[
            (ENV_ACCESS_KEY_ID, " "),
            (ENV_ACCESS_KEY_SECRET, "s3cr3t-value"),
        ]))
        .unwrap_err();
        assert!(matches!(&err, Error::MissingCredential { what } if what == ENV_ACCESS_KEY_ID));
        assert!(!format!("{err} {err:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn debug_never_shows_the_secret_or_token() {
        let c = Credentials::new("LTAIexample", "s3cr3t-value", Some("tok-value".into()));
        let shown = format!("{c:?} {c:#?}");
        assert!(shown.contains("LTAIexample"), "{shown}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(!shown.contains("tok-value"), "{shown}");
    }

    #[tokio::test]
    async fn from_dir_reads_a_secret_mount() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_ACCESS_KEY_ID), "LTAIfile\n").expect("write");
        let err = Credentials::from_dir(dir.path()).await.unwrap_err();
        assert!(
            matches!(&err, Error::MissingCredential { what } if what.ends_with(FILE_ACCESS_KEY_SECRET))
        );
        std::fs::write(dir.path().join(FILE_ACCESS_KEY_SECRET), "filesecret\n").expect("write");
        let c = Credentials::from_dir(dir.path()).await.expect("complete");
        assert_eq!(c.access_key_id(), "LTAIfile");
        assert_eq!(c.secret(), "filesecret");
        assert_eq!(c.security_token(), None);
        std::fs::write(dir.path().join(FILE_SECURITY_TOKEN), "tok\n").expect("write");
        let c = Credentials::from_dir(dir.path()).await.expect("complete");
        assert_eq!(c.security_token(), Some("tok"));

        // A given directory wins over the environment; without one the environment is used.
        let vars = env(&[
            (ENV_ACCESS_KEY_ID, "LTAIenv"),
            (ENV_ACCESS_KEY_SECRET, "envsecret"),
        ]);
        let c = Credentials::resolve(&vars, Some(dir.path()))
            .await
            .expect("dir");
        assert_eq!(c.access_key_id(), "LTAIfile");
        let c = Credentials::resolve(&vars, None).await.expect("env");
        assert_eq!(c.access_key_id(), "LTAIenv");
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(
            Credentials::resolve(&vars, Some(empty.path()))
                .await
                .is_err()
        );
    }
}
