//! Test images, built by the tests themselves: a runnable busybox layer (the static busybox of
//! Debian's `busybox-static`, with its applet links) plus filler layers of chosen sizes made of
//! incompressible bytes, pushed with an image index for linux/amd64 to a registry of the ground.
//!
//! Images are deterministic: the same [`ImageSpec`] always gives the same digests, so pushing
//! it again uploads nothing new and every suite can ask for the images it needs.

use std::{io::Write, path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};
use flate2::{Compression, write::GzEncoder};
use oci_client::{
    Client, Reference, RegistryOperation,
    client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
};
use rand::{RngCore, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256};

const BUSYBOX: &str = "/bin/busybox";
const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A registry of the ground and how to reach it.
#[derive(Clone, Debug)]
pub struct Registry {
    /// `host:port` on loopback.
    pub host: String,
    /// CA to trust when the registry speaks TLS.
    pub ca: Option<PathBuf>,
    /// Basic-auth user and password, if the registry requires them.
    pub credentials: Option<(String, String)>,
}

impl Registry {
    pub fn plain(host: String) -> Self {
        Self {
            host,
            ca: None,
            credentials: None,
        }
    }

    pub fn tls_basic(host: String, ca: PathBuf, user: String, password: String) -> Self {
        Self {
            host,
            ca: Some(ca),
            credentials: Some((user, password)),
        }
    }

    /// The same registry reached with other credentials (or none).
    pub fn with_credentials(&self, credentials: Option<(&str, &str)>) -> Self {
        Self {
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            ..self.clone()
        }
    }

    /// `host:port/repository:tag` on this registry.
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.host)
    }

    /// An OCI distribution client configured for this registry.
    pub fn client(&self) -> Result<Client> {
        let mut config = ClientConfig {
            protocol: if self.ca.is_some() {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            ..ClientConfig::default()
        };
        if let Some(ca) = &self.ca {
            let data =
                std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        Ok(Client::new(config))
    }

    /// The credentials as the OCI client wants them.
    pub fn auth(&self) -> RegistryAuth {
        match &self.credentials {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

/// What image to build.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub repository: String,
    pub tag: String,
    /// Whether the first layer is busybox (a runnable image) or the image is filler only.
    pub busybox: bool,
    /// Sizes in bytes of the incompressible filler layers after the busybox layer.
    pub filler_layers: Vec<u64>,
    /// Layers given as uncompressed tar streams, after the fillers (for hostile layers).
    pub raw_layers: Vec<Vec<u8>>,
}

impl ImageSpec {
    /// A runnable busybox image, nothing else.
    pub fn runnable(repository: &str, tag: &str) -> Self {
        Self {
            repository: repository.into(),
            tag: tag.into(),
            busybox: true,
            filler_layers: vec![],
            raw_layers: vec![],
        }
    }

    /// Adds a layer from an uncompressed tar stream, as written.
    pub fn with_raw_layer(mut self, tar: Vec<u8>) -> Self {
        self.raw_layers.push(tar);
        self
    }

    /// Adds a layer holding one file, `path` (relative to `/`), with `text`.
    pub fn with_file(self, path: &str, text: &str) -> Result<Self> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, text.as_bytes())?;
        Ok(self.with_raw_layer(tar.into_inner()?))
    }

    /// Adds a filler layer of `bytes` incompressible bytes.
    pub fn with_filler(mut self, bytes: u64) -> Self {
        self.filler_layers.push(bytes);
        self
    }
}

/// A content-addressed blob.
pub struct Blob {
    pub media_type: &'static str,
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, data: Vec<u8>) -> Self {
        Self {
            media_type,
            digest: sha256_digest(&data),
            data,
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.data.len()})
    }
}

/// A built image: layers, config, manifest and the linux/amd64 index that points at it.
pub struct BuiltImage {
    pub spec: ImageSpec,
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
    pub index: Blob,
}

impl BuiltImage {
    /// Bytes a pull transfers: config plus compressed layers.
    pub fn pull_size(&self) -> u64 {
        (self.config.data.len() + self.layers.iter().map(|l| l.data.len()).sum::<usize>()) as u64
    }
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Builds the image in memory.
pub fn build(spec: &ImageSpec) -> Result<BuiltImage> {
    let mut tars = Vec::new();
    if spec.busybox {
        tars.push((busybox_tar()?, Compression::default()));
    }
    for (i, &bytes) in spec.filler_layers.iter().enumerate() {
        // Random bytes do not compress: store them (still a valid gzip stream) to save CPU.
        tars.push((filler_tar(spec, i, bytes)?, Compression::none()));
    }
    for tar in &spec.raw_layers {
        tars.push((tar.clone(), Compression::default()));
    }
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, level) in tars {
        diff_ids.push(sha256_digest(&tar));
        let mut gz = GzEncoder::new(Vec::new(), level);
        gz.write_all(&tar)?;
        layers.push(Blob::new(MEDIA_LAYER_GZIP, gz.finish()?));
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = Blob::new(MEDIA_CONFIG, serde_json::to_vec(&config)?);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    let manifest = Blob::new(MEDIA_MANIFEST, serde_json::to_vec(&manifest)?);
    let mut platform_manifest = manifest.descriptor();
    platform_manifest["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [platform_manifest],
    });
    let index = Blob::new(MEDIA_INDEX, serde_json::to_vec(&index)?);
    Ok(BuiltImage {
        spec: spec.clone(),
        layers,
        config,
        manifest,
        index,
    })
}

/// Pushes a built image (blobs, manifest by digest, index by tag) and returns its reference.
pub async fn push(image: &BuiltImage, registry: &Registry) -> Result<String> {
    let client = registry.client()?;
    let reference_text = registry.reference(&image.spec.repository, &image.spec.tag);
    let reference: Reference = reference_text.parse()?;
    client
        .auth(&reference, &registry.auth(), RegistryOperation::Push)
        .await
        .with_context(|| format!("cannot authenticate to push {reference_text}"))?;
    for blob in image.layers.iter().chain([&image.config]) {
        if !client
            .blob_exists(&reference, &blob.digest)
            .await
            .unwrap_or(false)
        {
            client
                .push_blob(&reference, blob.data.clone(), &blob.digest)
                .await
                .with_context(|| format!("cannot push blob {} of {reference_text}", blob.digest))?;
        }
    }
    let by_digest: Reference = format!(
        "{}/{}@{}",
        registry.host, image.spec.repository, image.manifest.digest
    )
    .parse()?;
    for (target, blob) in [(&by_digest, &image.manifest), (&reference, &image.index)] {
        client
            .push_manifest_raw(target, blob.data.clone(), blob.media_type.parse()?)
            .await
            .with_context(|| format!("cannot push manifest {} of {reference_text}", blob.digest))?;
    }
    Ok(reference_text)
}

/// Builds and pushes in one go.
pub async fn build_and_push(spec: &ImageSpec, registry: &Registry) -> Result<BuiltImage> {
    let image = build(spec)?;
    push(&image, registry).await?;
    Ok(image)
}

/// A tar with /bin/busybox, a link for every applet, and the few files a shell expects.
fn busybox_tar() -> Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX)
        .with_context(|| format!("cannot read {BUSYBOX}: install Debian's busybox-static"))?;
    let list = Command::new(BUSYBOX).arg("--list-full").output()?;
    if !list.status.success() {
        bail!("{BUSYBOX} --list-full failed");
    }
    let mut tar = tar::Builder::new(Vec::new());
    for dir in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var", "proc", "sys", "dev",
    ] {
        append_dir(&mut tar, dir, 0o755)?;
    }
    append_dir(&mut tar, "tmp", 0o1777)?;
    append_file(&mut tar, "bin/busybox", &busybox, 0o755)?;
    append_file(
        &mut tar,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        0o644,
    )?;
    append_file(
        &mut tar,
        "etc/group",
        b"root:x:0:\nnogroup:x:65534:\n",
        0o644,
    )?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let path = applet.trim();
        if path.is_empty() || path == "bin/busybox" {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        header.set_mtime(0);
        tar.append_link(&mut header, path, "/bin/busybox")?;
    }
    Ok(tar.into_inner()?)
}

/// A tar with one file of `bytes` random bytes, seeded by the image and layer so it is stable.
fn filler_tar(spec: &ImageSpec, layer: usize, bytes: u64) -> Result<Vec<u8>> {
    let seed = Sha256::digest(format!("{}:{}:{layer}:{bytes}", spec.repository, spec.tag));
    let mut rng = StdRng::from_seed(seed.into());
    let mut data = vec![0u8; usize::try_from(bytes)?];
    rng.fill_bytes(&mut data);
    let mut tar = tar::Builder::new(Vec::new());
    append_dir(&mut tar, "filler", 0o755)?;
    append_file(&mut tar, &format!("filler/layer-{layer}.bin"), &data, 0o644)?;
    Ok(tar.into_inner()?)
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(mode);
    header.set_mtime(0);
    tar.append_data(&mut header, path, std::io::empty())?;
    Ok(())
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    tar.append_data(&mut header, path, data)?;
    Ok(())
}
