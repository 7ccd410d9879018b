//! What a cache's images are: each reference resolved at its registry to a digest and a size,
//! with the cache's own logins (its pull secrets), registry protocols and platform. The node
//! asks the registry itself, since ECI reports neither (DescribeImageCaches lists references
//! only): a HEAD of the tag to see whether it moved, the platform's manifest for the size.
//!
//! Image references are parsed by [`crate::reference`], the one module that normalises them.

use std::sync::Arc;

use oci_client::{
    Client, Reference, RegistryOperation,
    client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol},
    manifest::ImageIndexEntry,
    secrets::RegistryAuth,
};

use crate::{
    eci::ImageRegistryCredential,
    reference::{ImageRef, registry_host},
};

/// How registries are reached for one cache.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Hosts reached over plain HTTP.
    pub plain_http: Vec<String>,
    /// Hosts whose certificate is not verified.
    pub insecure: Vec<String>,
    /// Extra CA certificates (PEM) trusted for every registry (the node's
    /// `--registry-ca-file`).
    pub roots: Arc<Vec<Vec<u8>>>,
    /// `os/arch` picked from image indexes.
    pub platform: (String, String),
}

/// An image as its registry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What the reference points to (an index's digest, when it names one).
    pub digest: String,
    /// The platform's manifest digest.
    pub platform_digest: String,
    /// Bytes of the platform's config and layers.
    pub size: u64,
}

/// Why an image could not be resolved. Never carries a password.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The reference does not parse.
    #[error("image {image:?} is not a valid reference")]
    Reference {
        /// The reference.
        image: String,
    },
    /// The registry could not be asked, or refused.
    #[error("cannot resolve {image} at {registry}")]
    Registry {
        /// The reference.
        image: String,
        /// Its registry.
        registry: String,
        /// The client's error.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
}

impl Access {
    fn client(&self, host: &str) -> Result<Client, oci_client::errors::OciDistributionError> {
        let listed = |hosts: &[String]| hosts.iter().any(|h| registry_host(h) == host);
        let (os, arch) = self.platform.clone();
        let config = ClientConfig {
            protocol: if listed(&self.plain_http) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: listed(&self.insecure),
            extra_root_certificates: self
                .roots
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            platform_resolver: Some(Box::new(move |entries: &[ImageIndexEntry]| {
                entries
                    .iter()
                    .find(|e| {
                        e.platform.as_ref().is_some_and(|p| {
                            p.os.to_string() == os && p.architecture.to_string() == arch
                        })
                    })
                    .map(|e| e.digest.clone())
            })),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(30)),
            ..ClientConfig::default()
        };
        Client::try_from(config)
    }

    /// A session for `image`, authenticated for pulls with its registry's login (anonymous
    /// when `logins` has none).
    async fn session(
        &self,
        image: &str,
        logins: &[ImageRegistryCredential],
    ) -> Result<Session, DigestError> {
        let parsed = ImageRef::parse(image).map_err(|_| DigestError::Reference {
            image: image.to_owned(),
        })?;
        let host = registry_host(parsed.registry());
        let auth = logins
            .iter()
            .find(|l| registry_host(&l.server) == host)
            .map_or(RegistryAuth::Anonymous, |l| {
                RegistryAuth::Basic(l.user_name.clone(), l.password.expose().to_owned())
            });
        let session = Session {
            client: self.client(&host).map_err(|source| DigestError::Registry {
                image: image.to_owned(),
                registry: host.clone(),
                source,
            })?,
            reference: parsed.reference().clone(),
            auth,
            image: image.to_owned(),
            host,
        };
        session
            .client
            .auth(&session.reference, &session.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| session.failed(e))?;
        Ok(session)
    }

    /// The digest `image`'s tag points to now (a HEAD request: registries do not count it
    /// against pull limits).
    ///
    /// # Errors
    /// [`DigestError`] when the reference is invalid or the registry does not answer.
    pub async fn head(
        &self,
        image: &str,
        logins: &[ImageRegistryCredential],
    ) -> Result<String, DigestError> {
        self.session(image, logins).await?.digest().await
    }

    /// `image`'s digest, its platform manifest's digest and its size.
    ///
    /// # Errors
    /// [`DigestError`] when the reference is invalid, the registry does not answer, or it has
    /// no manifest for the platform.
    pub async fn resolve(
        &self,
        image: &str,
        logins: &[ImageRegistryCredential],
    ) -> Result<Resolved, DigestError> {
        let session = self.session(image, logins).await?;
        let digest = session.digest().await?;
        let (manifest, platform_digest) = session
            .client
            .pull_image_manifest(&session.reference, &session.auth)
            .await
            .map_err(|e| session.failed(e))?;
        let size = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .map(|d| u64::try_from(d.size).unwrap_or(0))
            .sum();
        Ok(Resolved {
            digest,
            platform_digest,
            size,
        })
    }
}

/// One image's authenticated client.
struct Session {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    image: String,
    host: String,
}

impl Session {
    fn failed(&self, source: oci_client::errors::OciDistributionError) -> DigestError {
        DigestError::Registry {
            image: self.image.clone(),
            registry: self.host.clone(),
            source,
        }
    }

    async fn digest(&self) -> Result<String, DigestError> {
        self.client
            .fetch_manifest_digest(&self.reference, &self.auth)
            .await
            .map_err(|e| self.failed(e))
    }
}
