//! The registry client: OCI distribution pulls through `oci-client`.
//!
//! A pull resolves an image reference (normalised: `busybox` is
//! `docker.io/library/busybox:latest`) to one platform's manifest — through an image index or a
//! Docker manifest list when the tag names one — and then streams its config and layer blobs.
//! Both OCI and Docker v2 schema 2 manifests are understood. Manifests are checked against
//! their digests by `oci-client`; blobs are checked by the content store while they stream
//! (`super::store`).
//!
//! Credentials are per registry host, as ECI's `ImageRegistryCredential` passes them (server,
//! user, password); the password stays in a [`SecretString`] and is exposed only to build the
//! request. Without a matching credential the pull is anonymous; `oci-client` negotiates basic
//! or bearer-token auth from the registry's challenge. Registries listed as plain-HTTP are
//! reached without TLS, insecure ones with TLS but without certificate checks.
//!
//! # Metadata size
//! Manifests, indexes and configs are read into memory whole, so their size is bounded by
//! [`MAX_METADATA_BYTES`] (oras-go's limit for manifests): a config or platform manifest whose
//! descriptor declares more is refused before it is fetched. The manifest (or index) a tag
//! names has no descriptor in front of it and `oci-client` reads its body whole; that one
//! body is bounded only by the registry's read timeout.
//!
//! Each image pull gets its own `oci-client` session, because that client remembers the first
//! credentials it saw per registry; a later pull with other credentials must not reuse them.

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use parking_lot::Mutex;

use bytes::Bytes;
use futures::stream::BoxStream;
use oci_client::{
    Client, Reference, RegistryOperation,
    client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol},
    errors::{OciDistributionError, OciErrorCode},
    manifest::{ImageIndexEntry, OciDescriptor, OciImageManifest},
    secrets::RegistryAuth,
};
use secrecy::{ExposeSecret as _, SecretString};
use tracing::{Instrument as _, debug, debug_span};

use super::store::{Digest, MAX_METADATA_BYTES, StoreError};
use crate::reference::{self, ReferenceError, registry_host};

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The image reference is not a valid OCI reference.
    #[error("cannot parse image reference {image:?}")]
    ParseReference {
        /// The reference as given.
        image: String,
        /// The cause.
        #[source]
        source: ReferenceError,
    },
    /// The HTTP client for a registry could not be built (bad CA certificate).
    #[error("cannot build a client for registry {registry}")]
    BuildClient {
        /// The registry host.
        registry: String,
        /// The cause.
        #[source]
        source: OciDistributionError,
    },
    /// The registry refused the credentials (or their absence).
    #[error("cannot authenticate to registry {registry} for image {image}")]
    Authenticate {
        /// The registry host.
        registry: String,
        /// The normalised image.
        image: String,
        /// The cause.
        #[source]
        source: OciDistributionError,
    },
    /// The manifest (or index) could not be fetched: unknown tag or repository, network.
    #[error("cannot resolve the manifest of image {image}")]
    ResolveManifest {
        /// The normalised image.
        image: String,
        /// The cause.
        #[source]
        source: OciDistributionError,
    },
    /// A platform is not `os/arch[/variant]`.
    #[error("cannot parse platform {text:?}: expected os/arch[/variant], e.g. linux/amd64")]
    ParsePlatform {
        /// The text as given.
        text: String,
    },
    /// The image index has no manifest for the configured platform.
    #[error("image {image} has no manifest for platform {platform}")]
    SelectPlatform {
        /// The normalised image.
        image: String,
        /// The platform asked for.
        platform: Platform,
    },
    /// A descriptor in the manifest is unusable (malformed digest, negative size).
    #[error("image {image} has an invalid descriptor {digest:?}")]
    ReadDescriptor {
        /// The normalised image.
        image: String,
        /// The descriptor's digest as the manifest has it.
        digest: String,
        /// The cause.
        #[source]
        source: Option<StoreError>,
    },
    /// A manifest or config descriptor declares more than [`MAX_METADATA_BYTES`]; it was
    /// not fetched (metadata is read into memory whole).
    #[error(
        "{kind} {digest} of image {image} declares {size} bytes, more than the {limit} allowed"
    )]
    MetadataTooLarge {
        /// The normalised image.
        image: String,
        /// `platform manifest` or `config`.
        kind: &'static str,
        /// The descriptor's digest.
        digest: String,
        /// The size it declares.
        size: i64,
        /// The limit.
        limit: u64,
    },
    /// A blob download could not start.
    #[error("cannot pull blob {digest} of image {image}")]
    PullBlob {
        /// The normalised image.
        image: String,
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: OciDistributionError,
    },
}

impl RegistryError {
    /// Whether the registry refused the credentials.
    pub fn is_authentication(&self) -> bool {
        matches!(self, Self::Authenticate { .. })
    }

    /// Whether the registry does not know the image (repository or tag), or has no manifest
    /// for the platform.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::SelectPlatform { .. } => true,
            Self::ResolveManifest { source, .. } => match source {
                OciDistributionError::ServerError { code, .. } => *code == 404,
                OciDistributionError::RegistryError { envelope, .. } => {
                    envelope.errors.iter().any(|e| {
                        matches!(
                            e.code,
                            OciErrorCode::ManifestUnknown
                                | OciErrorCode::NameUnknown
                                | OciErrorCode::NotFound
                        )
                    })
                }
                _ => false,
            },
            _ => false,
        }
    }
}

// === impl Platform ===

/// An OS/architecture(/variant) to pick from image indexes; `linux/amd64` by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ….
    pub architecture: String,
    /// `v8`, …; `None` matches any variant.
    pub variant: Option<String>,
}

impl Default for Platform {
    fn default() -> Self {
        Self {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => {
                Ok(Self {
                    os: os.into(),
                    architecture: arch.into(),
                    variant: variant.filter(|v| !v.is_empty()).map(Into::into),
                })
            }
            _ => Err(RegistryError::ParsePlatform { text: text.into() }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// The digest of the first index entry for this platform.
    pub(super) fn select(&self, entries: &[ImageIndexEntry]) -> Option<String> {
        entries
            .iter()
            .find(|entry| {
                entry.platform.as_ref().is_some_and(|p| {
                    p.os.to_string() == self.os
                        && p.architecture.to_string() == self.architecture
                        && (self.variant.is_none() || p.variant == self.variant)
                })
            })
            .map(|entry| entry.digest.clone())
    }
}

// === impl ImageRef ===

/// A normalised image reference: registry, repository and tag and/or digest always explicit.
/// Parsed by [`crate::reference`], the same normalisation the node matches caches with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef(reference::ImageRef);

impl ImageRef {
    /// The registry host (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The reference as `oci-client` wants it.
    pub fn reference(&self) -> &Reference {
        self.0.reference()
    }
}

impl FromStr for ImageRef {
    type Err = RegistryError;

    fn from_str(image: &str) -> Result<Self, Self::Err> {
        reference::ImageRef::parse(image)
            .map(Self)
            .map_err(|source| RegistryError::ParseReference {
                image: image.to_owned(),
                source,
            })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

// === impl RegistryCredential ===

/// Credentials for one registry (ECI `ImageRegistryCredential`).
#[derive(Clone)]
pub struct RegistryCredential {
    /// The registry host, e.g. `registry.example.com:5000` (a scheme or path is ignored).
    pub server: String,
    /// The user.
    pub username: String,
    /// The password; redacted in Debug, never logged.
    pub password: SecretString,
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

// === impl RegistryClient ===

/// How the agent reaches registries.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// The platform picked from image indexes.
    pub platform: Platform,
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub plain_http: Vec<String>,
    /// Registries reached over TLS without verifying their certificate.
    pub insecure: Vec<String>,
    /// Extra CA certificates (PEM) trusted for every registry.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Timeout to connect to a registry.
    pub connect_timeout: Duration,
    /// Timeout for one read of a response (a stalled download fails after it).
    pub read_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            platform: Platform::default(),
            plain_http: Vec::new(),
            insecure: Vec::new(),
            extra_root_certificates: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl RegistryConfig {
    /// Adds a registry reached over plain HTTP.
    #[must_use]
    pub fn with_plain_http(mut self, host: impl Into<String>) -> Self {
        self.plain_http.push(host.into());
        self
    }

    /// Adds an insecure (unverified TLS) registry.
    #[must_use]
    pub fn with_insecure(mut self, host: impl Into<String>) -> Self {
        self.insecure.push(host.into());
        self
    }

    /// Trusts one more CA certificate (PEM).
    #[must_use]
    pub fn with_root_certificate(mut self, pem: Vec<u8>) -> Self {
        self.extra_root_certificates.push(pem);
        self
    }

    /// Picks `platform` from image indexes.
    #[must_use]
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    fn lists(list: &[String], host: &str) -> bool {
        list.iter().any(|entry| registry_host(entry) == host)
    }
}

/// Resolves images and opens their blobs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    config: Arc<RegistryConfig>,
}

/// A blob of an image: its config or one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// The content digest.
    pub digest: Digest,
    /// Bytes on the wire (compressed for layers).
    pub size: u64,
    /// The descriptor's media type.
    pub media_type: String,
}

/// An image resolved to one platform's manifest, with the session to pull its blobs.
pub struct ResolvedImage {
    /// The normalised reference.
    pub image: ImageRef,
    /// The platform manifest's digest.
    pub manifest_digest: String,
    /// The image config blob.
    pub config: BlobRef,
    /// The layers, bottom first.
    pub layers: Vec<BlobRef>,
    client: Client,
}

impl fmt::Debug for ResolvedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedImage")
            .field("image", &self.image)
            .field("manifest_digest", &self.manifest_digest)
            .field("config", &self.config)
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl ResolvedImage {
    /// The config and the layers: every blob a pull transfers.
    pub fn blobs(&self) -> impl Iterator<Item = &BlobRef> {
        std::iter::once(&self.config).chain(&self.layers)
    }

    /// Bytes a pull transfers when no blob is present yet.
    pub fn pull_size(&self) -> u64 {
        self.blobs().map(|b| b.size).sum()
    }

    /// Starts the download of one of this image's blobs.
    pub async fn open_blob(
        &self,
        blob: &BlobRef,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, RegistryError> {
        let descriptor = OciDescriptor {
            media_type: blob.media_type.clone(),
            digest: blob.digest.to_string(),
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        let stream = self
            .client
            .pull_blob_stream(self.image.reference(), &descriptor)
            .await
            .map_err(|source| RegistryError::PullBlob {
                image: self.image.to_string(),
                digest: blob.digest.clone(),
                source,
            })?;
        Ok(stream.stream)
    }
}

impl RegistryClient {
    /// A client with `config`.
    ///
    /// Installs rustls' ring provider as the process default when none is installed yet:
    /// `oci-client`'s reqwest is built without a provider of its own (see Cargo.toml).
    pub fn new(config: RegistryConfig) -> Self {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race to another installer is fine: one provider is what we need.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        Self {
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// A session with `host`. `oversized` receives the platform manifest the index pointed
    /// to when its descriptor is over [`MAX_METADATA_BYTES`] (then none is selected).
    fn session(
        &self,
        host: &str,
        oversized: Arc<Mutex<Option<(String, i64)>>>,
    ) -> Result<Client, RegistryError> {
        let config = ClientConfig {
            protocol: if RegistryConfig::lists(&self.config.plain_http, host) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: RegistryConfig::lists(&self.config.insecure, host),
            extra_root_certificates: self
                .config
                .extra_root_certificates
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            platform_resolver: {
                let platform = self.config.platform.clone();
                Some(Box::new(move |entries: &[ImageIndexEntry]| {
                    let digest = platform.select(entries)?;
                    let size = entries
                        .iter()
                        .find(|e| e.digest == digest)
                        .map_or(0, |e| e.size);
                    if !fits_metadata(size) {
                        *oversized.lock() = Some((digest, size));
                        return None;
                    }
                    Some(digest)
                }))
            },
            connect_timeout: Some(self.config.connect_timeout),
            read_timeout: Some(self.config.read_timeout),
            ..ClientConfig::default()
        };
        Client::try_from(config).map_err(|source| RegistryError::BuildClient {
            registry: host.to_owned(),
            source,
        })
    }

    /// Resolves `image` to the configured platform's manifest, authenticating with the
    /// credential for its registry in `credentials` (anonymous when none matches).
    pub async fn resolve(
        &self,
        image: &ImageRef,
        credentials: &[RegistryCredential],
    ) -> Result<ResolvedImage, RegistryError> {
        let span = debug_span!("resolve_image", image = %image);
        async move {
            let host = registry_host(image.registry());
            let auth = credentials
                .iter()
                .find(|c| registry_host(&c.server) == host)
                .map_or(RegistryAuth::Anonymous, |c| {
                    RegistryAuth::Basic(c.username.clone(), c.password.expose_secret().to_owned())
                });
            debug!(
                registry = %host,
                authenticated = !matches!(auth, RegistryAuth::Anonymous),
                "resolving"
            );
            let oversized = Arc::new(Mutex::new(None));
            let client = self.session(&host, oversized.clone())?;
            let reference = image.reference();
            let classify = |source: OciDistributionError| {
                if is_auth_error(&source) {
                    RegistryError::Authenticate {
                        registry: host.clone(),
                        image: image.to_string(),
                        source,
                    }
                } else {
                    RegistryError::ResolveManifest {
                        image: image.to_string(),
                        source,
                    }
                }
            };
            client
                .auth(reference, &auth, RegistryOperation::Pull)
                .await
                .map_err(classify)?;
            let (manifest, manifest_digest) = client
                .pull_image_manifest(reference, &auth)
                .await
                .map_err(|source| match source {
                    OciDistributionError::ImageManifestNotFoundError(_) => {
                        match oversized.lock().take() {
                            Some((digest, size)) => RegistryError::MetadataTooLarge {
                                image: image.to_string(),
                                kind: "platform manifest",
                                digest,
                                size,
                                limit: MAX_METADATA_BYTES,
                            },
                            None => RegistryError::SelectPlatform {
                                image: image.to_string(),
                                platform: self.config.platform.clone(),
                            },
                        }
                    }
                    other => classify(other),
                })?;
            let (config, layers) = blobs_of(&image.to_string(), &manifest)?;
            debug!(manifest.digest = %manifest_digest, layers = layers.len(), "resolved");
            Ok(ResolvedImage {
                image: image.clone(),
                manifest_digest,
                config,
                layers,
                client,
            })
        }
        .instrument(span)
        .await
    }
}

/// The config and layers a platform manifest of `image` names, each descriptor checked: a
/// digest that parses, a size that is not negative, and a config within the metadata limit.
/// Also the `oci_manifest` fuzz target's path (`super::fuzz`).
pub(super) fn blobs_of(
    image: &str,
    manifest: &OciImageManifest,
) -> Result<(BlobRef, Vec<BlobRef>), RegistryError> {
    let blob = |descriptor: &OciDescriptor| -> Result<BlobRef, RegistryError> {
        let invalid = |source| RegistryError::ReadDescriptor {
            image: image.to_owned(),
            digest: descriptor.digest.clone(),
            source,
        };
        Ok(BlobRef {
            digest: descriptor.digest.parse().map_err(|e| invalid(Some(e)))?,
            size: u64::try_from(descriptor.size).map_err(|_| invalid(None))?,
            media_type: descriptor.media_type.clone(),
        })
    };
    if !fits_metadata(manifest.config.size) {
        return Err(RegistryError::MetadataTooLarge {
            image: image.to_owned(),
            kind: "config",
            digest: manifest.config.digest.clone(),
            size: manifest.config.size,
            limit: MAX_METADATA_BYTES,
        });
    }
    let config = blob(&manifest.config)?;
    let layers = manifest
        .layers
        .iter()
        .map(blob)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((config, layers))
}

/// Whether a metadata descriptor's declared size may be fetched into memory (a negative size
/// is refused later as an invalid descriptor).
fn fits_metadata(size: i64) -> bool {
    match u64::try_from(size) {
        Ok(size) => size <= MAX_METADATA_BYTES,
        Err(_) => true,
    }
}

/// Whether the registry said no to the credentials (by error type and code, never by text).
fn is_auth_error(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::ServerError { code, .. } => matches!(code, 401 | 403),
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_image_references() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1"),
        ];
        for (given, normalised) in cases {
            assert_eq!(given.parse::<ImageRef>().unwrap().to_string(), normalised);
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned: ImageRef = format!("quay.io/x/y@{digest}").parse().unwrap();
        assert_eq!(pinned.reference().digest(), Some(digest.as_str()));
        for bad in ["", "library/BusyBox", "a b", "x:y:z"] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn matches_credentials_by_host() {
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("registry-1.docker.io"), "docker.io");
        assert_eq!(
            registry_host("Registry.Example.com:5000/"),
            "registry.example.com:5000"
        );
        assert_eq!(registry_host("http://127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn docker_hub_aliases_pull_the_image_the_node_matched() {
        // The node matched `registry-1.docker.io/library/nginx` to an `nginx` cache while the
        // emulator did not; the agent now parses through the same module as both.
        let pulled: ImageRef = "registry-1.docker.io/library/nginx".parse().unwrap();
        assert_eq!(pulled.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(
            crate::reference::image_key("registry-1.docker.io/library/nginx"),
            crate::reference::image_key(&pulled.to_string())
        );
        let hub: ImageRef = "registry.hub.docker.com/user/app".parse().unwrap();
        assert_eq!(hub.registry(), "docker.io");
        assert_eq!(hub.reference().resolve_registry(), "index.docker.io");
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let credential = RegistryCredential {
            server: "registry.example.com".into(),
            username: "me".into(),
            password: SecretString::from("hunter2"),
        };
        let debug = format!("{credential:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("registry.example.com"));
    }

    /// A registry on 127.0.0.1 serving `app:index` (an index whose linux/amd64 manifest
    /// declares 5 MiB) and `app:big-config` (a manifest whose config declares 5 MiB).
    async fn oversized_registry() -> String {
        let big = 5 * 1024 * 1024;
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest('a'), "size": big,
                "platform": {"os": "linux", "architecture": "amd64"}
            }]
        });
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest('b'), "size": big},
            "layers": []
        });
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (index, manifest) = (index.clone(), manifest.clone());
            async move {
                let (media_type, body) = match uri.path() {
                    "/v2/" => ("application/json", serde_json::json!({})),
                    "/v2/app/manifests/index" => ("application/vnd.oci.image.index.v1+json", index),
                    "/v2/app/manifests/big-config" => {
                        ("application/vnd.oci.image.manifest.v1+json", manifest)
                    }
                    _ => return axum::http::StatusCode::NOT_FOUND.into_response(),
                };
                ([("content-type", media_type)], body.to_string()).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr.to_string()
    }

    use axum::response::IntoResponse as _;

    #[tokio::test]
    async fn refuses_oversized_metadata_before_fetching_it() {
        let registry = oversized_registry().await;
        let client = RegistryClient::new(RegistryConfig::default().with_plain_http(&registry));
        for (tag, kind) in [("index", "platform manifest"), ("big-config", "config")] {
            let image: ImageRef = format!("{registry}/app:{tag}").parse().unwrap();
            let error = client.resolve(&image, &[]).await.unwrap_err();
            assert!(
                matches!(&error, RegistryError::MetadataTooLarge { kind: k, size, .. }
                    if *k == kind && *size == 5 * 1024 * 1024),
                "{tag}: {error:?}"
            );
        }
    }

    #[test]
    fn parses_and_selects_platforms() {
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm.variant.as_deref(), Some("v8"));
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
        let entries: Vec<ImageIndexEntry> = serde_json::from_value(serde_json::json!([
            {"mediaType": "m", "digest": "sha256:arm", "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "m", "digest": "sha256:amd", "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]))
        .unwrap();
        assert_eq!(
            Platform::default().select(&entries).as_deref(),
            Some("sha256:amd")
        );
        assert_eq!(arm.select(&entries).as_deref(), Some("sha256:arm"));
        let s390: Platform = "linux/s390x".parse().unwrap();
        assert_eq!(s390.select(&entries), None);
    }
}
