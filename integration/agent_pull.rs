//! The real agent's image side against the ground's registries: cache snapshots built from
//! pushed test images hold the unpacked files, the pull counters match what the registry
//! served, the content store makes a second snapshot free, credentials are checked, the size
//! limit holds and the shaped link is no faster than its rate.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result, bail, ensure};
use eci_vk::agent::{
    Bandwidth, BuildEvent, BuildRequest, ContentStore, Fetch, PullScope, PullStats, RegistryClient,
    RegistryConfig, RegistryCredential, Shaper, SnapshotError, SnapshotManifest, SnapshotStore,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

use crate::support::{
    Ground,
    ground::Namespace,
    harness::{Phase, Test},
    image::{self, BuiltImage, ImageSpec},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "agent_pull::snapshot_holds_the_images_and_a_second_pulls_nothing",
            phase: Phase::WithCrd,
            run: snapshot_holds_the_images_and_a_second_pulls_nothing,
        },
        Test {
            name: "agent_pull::docker_manifest_list_picks_the_platform",
            phase: Phase::WithCrd,
            run: docker_manifest_list_picks_the_platform,
        },
        Test {
            name: "agent_pull::private_registry_needs_the_right_password",
            phase: Phase::WithCrd,
            run: private_registry_needs_the_right_password,
        },
        Test {
            name: "agent_pull::size_limit_fails_the_snapshot",
            phase: Phase::WithCrd,
            run: size_limit_fails_the_snapshot,
        },
        Test {
            name: "agent_pull::images_download_together_and_unpack_as_they_arrive",
            phase: Phase::WithCrd,
            run: images_download_together_and_unpack_as_they_arrive,
        },
        Test {
            name: "agent_pull::a_corrupted_layer_fails_as_a_bad_download",
            phase: Phase::WithCrd,
            run: a_corrupted_layer_fails_as_a_bad_download,
        },
        Test {
            name: "agent_pull::shaped_link_is_no_faster_than_its_rate",
            phase: Phase::WithCrd,
            run: shaped_link_is_no_faster_than_its_rate,
        },
    ]
}

const MIB: u64 = 1024 * 1024;

/// An agent's image side on a data dir of its own.
struct Agent {
    data: tempfile::TempDir,
    snapshots: SnapshotStore,
    stats: PullStats,
}

impl Agent {
    fn new(ground: &Ground, bandwidth: Option<Bandwidth>) -> Result<Self> {
        Self::new_with(ground, bandwidth, |config| config)
    }

    fn new_with(
        ground: &Ground,
        bandwidth: Option<Bandwidth>,
        configure: impl FnOnce(RegistryConfig) -> RegistryConfig,
    ) -> Result<Self> {
        let ca = ground
            .auth_registry
            .ca
            .as_ref()
            .context("the auth registry has no CA")?;
        let config = RegistryConfig::default()
            .with_plain_http(ground.registry.host.clone())
            .with_root_certificate(std::fs::read(ca)?);
        let config = configure(config);
        let data = tempfile::tempdir()?;
        let stats = PullStats::default();
        let snapshots = ground.runtime.block_on(async {
            let content = Arc::new(ContentStore::open(data.path().join("content")).await?);
            anyhow::Ok(
                SnapshotStore::open(
                    data.path().join("snapshots"),
                    content,
                    RegistryClient::new(config),
                    bandwidth.map(|rate| Arc::new(Shaper::new(rate))),
                    stats.clone(),
                )
                .await?,
            )
        })?;
        Ok(Self {
            data,
            snapshots,
            stats,
        })
    }

    /// Builds a snapshot and returns it with the events it reported.
    fn build(
        &self,
        ground: &Ground,
        request: BuildRequest,
    ) -> (Result<SnapshotManifest, SnapshotError>, Vec<BuildEvent>) {
        let (tx, mut rx) = mpsc::channel(4096);
        let result = ground
            .runtime
            .block_on(self.snapshots.build(request, Some(tx)));
        let mut events = Vec::new();
        while let Ok(event) = rx.try_recv() {
            events.push(event);
        }
        (result, events)
    }

    fn snapshot_dir(&self, id: &str) -> std::path::PathBuf {
        self.data.path().join("snapshots").join(id)
    }

    /// Entries of the snapshot store's directory (none after a failed build).
    fn snapshot_entries(&self) -> Result<Vec<String>> {
        Ok(std::fs::read_dir(self.data.path().join("snapshots"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?)
    }
}

fn request(id: &str, scope: PullScope, images: &[&BuiltImage], ground: &Ground) -> BuildRequest {
    BuildRequest::new(
        id,
        scope,
        images
            .iter()
            .map(|i| ground.registry.reference(&i.spec.repository, &i.spec.tag))
            .collect(),
    )
}

fn push(ground: &Ground, spec: &ImageSpec) -> Result<BuiltImage> {
    ground
        .runtime
        .block_on(image::build_and_push(spec, &ground.registry))
}

fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::symlink_metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len())
}

fn snapshot_holds_the_images_and_a_second_pulls_nothing(
    ground: &Ground,
    _namespace: &Namespace,
) -> Result<()> {
    let busybox = push(ground, &ImageSpec::runnable("agent-pull/busybox", "v1"))?;
    let filler = push(
        ground,
        &ImageSpec::runnable("agent-pull/filler-50m", "v1").with_filler(50 * MIB),
    )?;
    let shared = &busybox.layers[0];
    ensure!(
        filler.layers[0].digest == shared.digest,
        "the test images should share their busybox layer"
    );
    let agent = Agent::new(ground, None)?;
    let scope = PullScope::Cache("imc-agent-pull-a".into());
    let (result, events) = agent.build(
        ground,
        request(
            "s-agent-pull-a",
            scope.clone(),
            &[&busybox, &filler],
            ground,
        ),
    );
    let manifest = result.context("building the first snapshot")?;

    // The files are there, unpacked, with their sizes.
    ensure!(manifest.images.len() == 2, "{manifest:?}");
    let dir = agent.snapshot_dir("s-agent-pull-a");
    let busybox_size = file_size(Path::new("/bin/busybox"))?;
    for image in &manifest.images {
        let rootfs = dir.join(&image.rootfs);
        let size = file_size(&rootfs.join("bin/busybox"))?;
        ensure!(
            size == busybox_size,
            "{}: bin/busybox is {size} bytes",
            image.image
        );
        let sh = std::fs::read_link(rootfs.join("bin/sh"))?;
        ensure!(
            sh == Path::new("/bin/busybox"),
            "bin/sh -> {}",
            sh.display()
        );
    }
    let filler_file = dir
        .join(&manifest.images[1].rootfs)
        .join("filler/layer-0.bin");
    let size = file_size(&filler_file)?;
    ensure!(size == 50 * MIB, "the filler file is {size} bytes");
    ensure!(
        manifest.images[0].pull_size == busybox.pull_size()
            && manifest.images[1].pull_size == filler.pull_size(),
        "pull sizes {:?}",
        manifest
            .images
            .iter()
            .map(|i| i.pull_size)
            .collect::<Vec<_>>()
    );
    ensure!(manifest.size_bytes >= 2 * busybox_size + 50 * MIB);

    // The counters are what the registry served: each distinct blob once.
    let counters = agent.stats.snapshot();
    let busybox_name = format!("{}/agent-pull/busybox:v1", ground.registry.host);
    let filler_name = format!("{}/agent-pull/filler-50m:v1", ground.registry.host);
    let shared_size = shared.data.len() as u64;
    ensure!(
        counters.images.get(&busybox_name) == Some(&busybox.pull_size()),
        "busybox counter {:?}, pull size {}",
        counters.images,
        busybox.pull_size()
    );
    ensure!(
        counters.images.get(&filler_name) == Some(&(filler.pull_size() - shared_size)),
        "filler counter {:?}",
        counters.images
    );
    let expected = busybox.pull_size() + filler.pull_size() - shared_size;
    ensure!(
        agent.stats.scope_bytes(&scope) == expected && counters.total == expected,
        "cache counter {} / total {}, expected {expected}",
        agent.stats.scope_bytes(&scope),
        counters.total
    );

    // Progress rises to the total; one "pulled" per image, in order.
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Progress {
                bytes_done,
                bytes_total,
            } => Some((*bytes_done, *bytes_total)),
            BuildEvent::ImagePulled { .. } | BuildEvent::Resolved { .. } => None,
        })
        .collect();
    ensure!(progress.len() >= 3, "progress {progress:?}");
    ensure!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    ensure!(progress.iter().all(|&(_, total)| total == expected));
    ensure!(
        progress.last().map(|p| p.0) == Some(expected),
        "{progress:?}"
    );
    let pulled: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::ImagePulled {
                image,
                bytes_pulled,
            } => Some((image.clone(), *bytes_pulled)),
            BuildEvent::Progress { .. } | BuildEvent::Resolved { .. } => None,
        })
        .collect();
    let requested = |i: &BuiltImage| ground.registry.reference(&i.spec.repository, &i.spec.tag);
    ensure!(
        pulled
            == [
                (requested(&busybox), busybox.pull_size()),
                (requested(&filler), filler.pull_size() - shared_size)
            ],
        "pulled events {pulled:?}"
    );

    // A second cache of the same images: the content store has every blob.
    let second = PullScope::Cache("imc-agent-pull-b".into());
    let (result, events) = agent.build(
        ground,
        request(
            "s-agent-pull-b",
            second.clone(),
            &[&busybox, &filler],
            ground,
        ),
    );
    let manifest_b = result.context("building the second snapshot")?;
    ensure!(
        agent.stats.scope_bytes(&second) == 0,
        "the second snapshot pulled {} bytes",
        agent.stats.scope_bytes(&second)
    );
    ensure!(agent.stats.snapshot().total == expected);
    ensure!(
        events.iter().any(|e| matches!(
            e,
            BuildEvent::ImagePulled {
                bytes_pulled: 0,
                ..
            }
        )),
        "{events:?}"
    );
    let dir_b = agent.snapshot_dir("s-agent-pull-b");
    ensure!(
        file_size(
            &dir_b
                .join(&manifest_b.images[1].rootfs)
                .join("filler/layer-0.bin")
        )? == 50 * MIB
    );

    // A group without a snapshot is a fresh machine: it pulls every blob (each once) again.
    let group = PullScope::Group("eci-agent-pull".into());
    let fresh = BuildRequest {
        fetch: Fetch::Always,
        ..request("g-agent-pull", group.clone(), &[&busybox, &filler], ground)
    };
    agent
        .build(ground, fresh)
        .0
        .context("pulling for a group")?;
    ensure!(
        agent.stats.scope_bytes(&group) == expected,
        "the group pulled {} bytes, expected {expected}",
        agent.stats.scope_bytes(&group)
    );

    // Building an existing snapshot again is a no-op; deleting one frees it, not the other.
    let (again, _) = agent.build(
        ground,
        request(
            "s-agent-pull-b",
            second.clone(),
            &[&busybox, &filler],
            ground,
        ),
    );
    ensure!(again? == manifest_b, "a rebuild changed the snapshot");
    ensure!(
        ground
            .runtime
            .block_on(agent.snapshots.delete("s-agent-pull-a"))?
    );
    ensure!(!dir.exists(), "the deleted snapshot is still on disk");
    ensure!(
        !ground
            .runtime
            .block_on(agent.snapshots.delete("s-agent-pull-a"))?
    );
    ensure!(
        ground
            .runtime
            .block_on(agent.snapshots.get("s-agent-pull-b"))?
            .is_some()
    );
    ensure!(
        file_size(&dir_b.join(&manifest_b.images[0].rootfs).join("bin/busybox"))? == busybox_size
    );
    Ok(())
}

fn private_registry_needs_the_right_password(
    ground: &Ground,
    _namespace: &Namespace,
) -> Result<()> {
    let registry = &ground.auth_registry;
    let spec = ImageSpec::runnable("private/agent-pull", "v1");
    let built = ground
        .runtime
        .block_on(image::build_and_push(&spec, registry))?;
    let (user, password) = registry.credentials.clone().context("no credentials")?;
    let agent = Agent::new(ground, None)?;
    let build = |id: &str, credentials: Vec<RegistryCredential>| {
        agent.build(
            ground,
            BuildRequest {
                credentials,
                ..BuildRequest::new(
                    id,
                    PullScope::Cache(format!("imc-{id}")),
                    vec![registry.reference(&spec.repository, &spec.tag)],
                )
            },
        )
    };
    let credential = |password: &str| RegistryCredential {
        server: registry.host.clone(),
        username: user.clone(),
        password: SecretString::from(password.to_owned()),
    };

    let wrong_password = "not-the-password-4711";
    for (id, credentials) in [
        ("s-wrong", vec![credential(wrong_password)]),
        ("s-anonymous", vec![]),
    ] {
        let (result, _) = build(id, credentials);
        let Err(error) = result else {
            bail!("{id}: the private registry served the image");
        };
        ensure!(error.is_authentication(), "{id}: {error:?}");
        let text = format!("{:#}", anyhow::Error::from(error));
        ensure!(
            text.contains("cannot authenticate to registry") && text.contains(&registry.host),
            "{id}: unclear error: {text}"
        );
        ensure!(
            !text.contains(wrong_password),
            "the password leaked: {text}"
        );
    }
    ensure!(
        agent.snapshot_entries()?.is_empty(),
        "a failed build left files"
    );

    // Without the ground's CA the registry's certificate is not trusted, unless the registry
    // is configured as insecure.
    let untrusting = Agent::new_with(ground, None, |mut config| {
        config.extra_root_certificates.clear();
        config
    })?;
    let request = |id: &str| BuildRequest {
        credentials: vec![credential(&password)],
        ..BuildRequest::new(
            id,
            PullScope::Cache(format!("imc-{id}")),
            vec![registry.reference(&spec.repository, &spec.tag)],
        )
    };
    match untrusting.build(ground, request("s-untrusted")).0 {
        Err(error @ SnapshotError::ResolveImage { .. }) if !error.is_authentication() => {}
        other => bail!("an untrusted certificate was accepted: {other:?}"),
    }
    let insecure = Agent::new_with(ground, None, |mut config| {
        config.extra_root_certificates.clear();
        config.with_insecure(registry.host.clone())
    })?;
    insecure
        .build(ground, request("s-insecure"))
        .0
        .context("pulling from a registry configured as insecure")?;

    let (result, _) = build("s-right", vec![credential(&password)]);
    let manifest = result.context("pulling with the right password")?;
    ensure!(manifest.images[0].pull_size == built.pull_size());
    let rootfs = agent
        .snapshot_dir("s-right")
        .join(&manifest.images[0].rootfs);
    ensure!(file_size(&rootfs.join("bin/busybox"))? == file_size(Path::new("/bin/busybox"))?);
    Ok(())
}

fn size_limit_fails_the_snapshot(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let filler = push(
        ground,
        &ImageSpec::runnable("agent-pull/filler-20m", "v1").with_filler(20 * MIB),
    )?;
    let agent = Agent::new(ground, None)?;
    let mut too_small = request(
        "s-too-small",
        PullScope::Cache("imc-too-small".into()),
        &[&filler],
        ground,
    );
    too_small.size_limit = Some(10 * MIB);
    ensure!(
        too_small.clone().with_size_limit_gib(1).size_limit == Some(1024 * MIB),
        "ImageCacheSize is in GiB"
    );
    let (result, _) = agent.build(ground, too_small.clone());
    match result {
        Err(SnapshotError::ExceedSizeLimit {
            limit_bytes, image, ..
        }) if limit_bytes == 10 * MIB && image == too_small.images[0] => {}
        other => bail!("expected the size limit to fail the snapshot, got {other:?}"),
    }
    ensure!(
        agent.snapshot_entries()?.is_empty(),
        "a failed build left files"
    );
    // An image the registry does not have fails the build as not found.
    let mut missing = too_small.clone();
    missing.snapshot_id = "s-missing".into();
    missing.images = vec![ground.registry.reference("agent-pull/never-pushed", "v1")];
    match agent.build(ground, missing).0 {
        Err(error) if error.is_image_not_found() => {}
        other => bail!("expected an unknown image to fail as not found, got {other:?}"),
    }
    // The same images fit a bigger limit (and need no new download).
    let mut big_enough = too_small;
    big_enough.snapshot_id = "s-big-enough".into();
    big_enough.size_limit = Some(64 * MIB);
    let before = agent.stats.snapshot().total;
    agent.build(ground, big_enough).0?;
    ensure!(agent.stats.snapshot().total == before);
    Ok(())
}

fn shaped_link_is_no_faster_than_its_rate(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let filler = push(
        ground,
        &ImageSpec::runnable("agent-pull/filler-24m", "v1").with_filler(24 * MIB),
    )?;
    let rate: Bandwidth = "16MiB/s".parse()?;
    let agent = Agent::new(ground, Some(rate))?;
    let start = std::time::Instant::now();
    let (result, _) = agent.build(
        ground,
        request(
            "s-shaped",
            PullScope::Group("eci-shaped".into()),
            &[&filler],
            ground,
        ),
    );
    result?;
    let elapsed = start.elapsed();
    let pulled = agent
        .stats
        .scope_bytes(&PullScope::Group("eci-shaped".into()));
    ensure!(pulled == filler.pull_size(), "pulled {pulled} bytes");
    #[allow(clippy::cast_precision_loss)]
    let floor = pulled as f64 / rate.bytes_per_second() as f64;
    ensure!(
        elapsed.as_secs_f64() >= floor,
        "{pulled} bytes at {rate} took {elapsed:?}, less than {floor:.2}s"
    );
    Ok(())
}

/// The images of one build cross the shaped link together and each is unpacked while its
/// layer downloads: while the bytes arrive, there is a moment when both images' files are
/// being written, neither of them half written yet. (Downloading one blob after another and unpacking an image after its
/// download, as the agent did before, never has both partly written: the second is empty until
/// the first is complete.) The link is not shared evenly between the two downloads, so the
/// moment is looked for at every progress report, not at one point such as half the bytes.
fn images_download_together_and_unpack_as_they_arrive(
    ground: &Ground,
    _namespace: &Namespace,
) -> Result<()> {
    let filler = |repository: &str| ImageSpec {
        busybox: false,
        ..ImageSpec::runnable(repository, "v1").with_filler(4 * MIB)
    };
    let a = push(ground, &filler("agent-pull/together-a"))?;
    let b = push(ground, &filler("agent-pull/together-b"))?;
    let agent = Agent::new(ground, Some("4MiB/s".parse()?))?;
    let snapshots = agent.data.path().join("snapshots");
    let request = request(
        "s-together",
        PullScope::Group("eci-together".into()),
        &[&a, &b],
        ground,
    );
    let (tx, mut rx) = mpsc::channel(4096);
    // Both begun and neither past half: one download after another cannot show this, since
    // the second file is empty until the first is whole (give or take the unpack's lag).
    let partly = |written: &[u64]| written.iter().all(|&bytes| bytes > 0 && bytes < 2 * MIB);
    let (together, samples) = ground.runtime.block_on(async {
        let build = agent.snapshots.build(request, Some(tx));
        tokio::pin!(build);
        // The first report with both files partly written, and the files at each report
        // (for the message when there is none).
        let (mut together, mut samples) = (None, Vec::new());
        loop {
            tokio::select! {
                result = &mut build => {
                    result?;
                    return anyhow::Ok((together, samples));
                }
                Some(event) = rx.recv() => {
                    if let BuildEvent::Progress { bytes_done, bytes_total } = event
                        && together.is_none()
                        && bytes_done < bytes_total
                    {
                        // No staging directory yet: nothing written.
                        let written = staged_fillers(&snapshots).unwrap_or_else(|_| vec![0, 0]);
                        if partly(&written) {
                            together = Some((bytes_done, bytes_total, written));
                        } else {
                            samples.push((bytes_done, written));
                        }
                    }
                }
            }
        }
    })?;
    let (done, total, written) = together.with_context(|| {
        format!("the images' files were never both begun and under half written; at each progress report (bytes downloaded, file sizes): {samples:?}")
    })?;
    eprintln!("with {done} of {total} bytes downloaded the images' files held {written:?} bytes");
    Ok(())
}

/// A registry that serves a layer's bytes wrong: the unpack, following the download, fails
/// first (the bytes are not gzip), but the build fails as the download does, on the blob's
/// digest, a fault of the transfer rather than of the image, and leaves nothing behind.
fn a_corrupted_layer_fails_as_a_bad_download(
    ground: &Ground,
    _namespace: &Namespace,
) -> Result<()> {
    let image = push(
        ground,
        &ImageSpec {
            busybox: false,
            ..ImageSpec::runnable("agent-pull/corrupted", "v1").with_filler(2 * MIB)
        },
    )?;
    let layer = image.layers.first().context("the image has no layer")?;
    let hex = layer.digest.trim_start_matches("sha256:");
    let stored = crate::support::ground::run_dir().join(format!(
        "registry/data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&stored).with_context(|| format!("{}", stored.display()))?;
    bytes[..2].copy_from_slice(&[0, 0]); // the gzip magic
    std::fs::write(&stored, &bytes)?;
    let agent = Agent::new(ground, Some("4MiB/s".parse()?))?;
    let (result, _) = agent.build(
        ground,
        request(
            "s-corrupted",
            PullScope::Group("eci-corrupted".into()),
            &[&image],
            ground,
        ),
    );
    let error = result.err().context("a corrupted layer was accepted")?;
    ensure!(
        matches!(error, SnapshotError::PullBlob { .. }),
        "the build failed as {error:?}, not as a bad download"
    );
    let chain = format!("{:#}", anyhow::Error::from(error));
    ensure!(
        chain.contains(hex),
        "the error does not name the layer: {chain}"
    );
    ensure!(
        agent.snapshot_entries()?.is_empty(),
        "left behind: {:?}",
        agent.snapshot_entries()?
    );
    Ok(())
}

/// Bytes in each image's filler file of the build being staged (0 for a file not begun).
fn staged_fillers(snapshots: &Path) -> Result<Vec<u64>> {
    let staging = std::fs::read_dir(snapshots)?
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".staging-s-together")
        })
        .context("no staging directory")?
        .path();
    Ok((0..2)
        .map(|image| {
            let file = staging.join(format!("images/{image}/rootfs/filler/layer-0.bin"));
            std::fs::metadata(file).map_or(0, |m| m.len())
        })
        .collect())
}

/// A Docker v2 schema 2 image behind a Docker manifest list that also lists another platform:
/// the default platform gets the Docker manifest, `linux/arm64` the other one.
fn docker_manifest_list_picks_the_platform(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    // The blobs (and an OCI manifest by digest) come from the usual builder.
    let oci = push(ground, &ImageSpec::runnable("agent-pull/docker", "oci"))?;
    let descriptor = |media_type: &str, digest: &str, size: usize| serde_json::json!({"mediaType": media_type, "digest": digest, "size": size});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": descriptor(
            "application/vnd.docker.container.image.v1+json",
            &oci.config.digest,
            oci.config.data.len(),
        ),
        "layers": oci.layers.iter().map(|l| descriptor(
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            &l.digest,
            l.data.len(),
        )).collect::<Vec<_>>(),
    }))?;
    let manifest_digest = image::sha256_digest(&manifest);
    let mut arm = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        &oci.manifest.digest,
        oci.manifest.data.len(),
    );
    arm["platform"] = serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let mut amd = descriptor(
        "application/vnd.docker.distribution.manifest.v2+json",
        &manifest_digest,
        manifest.len(),
    );
    amd["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [arm, amd],
    }))?;
    let registry = &ground.registry;
    let client = registry.client()?;
    let by_digest: oci_client::Reference =
        format!("{}/agent-pull/docker@{manifest_digest}", registry.host).parse()?;
    let by_tag: oci_client::Reference =
        registry.reference("agent-pull/docker", "schema2").parse()?;
    ground.runtime.block_on(async {
        client
            .push_manifest_raw(
                &by_digest,
                manifest,
                "application/vnd.docker.distribution.manifest.v2+json".parse()?,
            )
            .await?;
        client
            .push_manifest_raw(
                &by_tag,
                list,
                "application/vnd.docker.distribution.manifest.list.v2+json".parse()?,
            )
            .await?;
        anyhow::Ok(())
    })?;

    let image = registry.reference("agent-pull/docker", "schema2");
    let build = |agent: &Agent, id: &str| {
        agent
            .build(
                ground,
                BuildRequest::new(
                    id,
                    PullScope::Cache(format!("imc-{id}")),
                    vec![image.clone()],
                ),
            )
            .0
    };
    let agent = Agent::new(ground, None)?;
    let amd64 = build(&agent, "s-docker-amd64").context("pulling the Docker image")?;
    ensure!(
        amd64.images[0].manifest_digest == manifest_digest,
        "linux/amd64 resolved to {}",
        amd64.images[0].manifest_digest
    );
    ensure!(
        amd64.images[0].layers[0]
            .media_type
            .ends_with("diff.tar.gzip")
    );
    let rootfs = agent
        .snapshot_dir("s-docker-amd64")
        .join(&amd64.images[0].rootfs);
    ensure!(file_size(&rootfs.join("bin/busybox"))? == file_size(Path::new("/bin/busybox"))?);

    let arm = Agent::new_with(ground, None, |config| {
        config.with_platform("linux/arm64/v8".parse().expect("a valid platform"))
    })?;
    let arm64 = build(&arm, "s-docker-arm64").context("pulling for linux/arm64")?;
    ensure!(
        arm64.images[0].manifest_digest == oci.manifest.digest,
        "linux/arm64 resolved to {}",
        arm64.images[0].manifest_digest
    );
    let s390 = Agent::new_with(ground, None, |config| {
        config.with_platform("linux/s390x".parse().expect("a valid platform"))
    })?;
    match build(&s390, "s-docker-s390x") {
        Err(error) if error.is_image_not_found() => {}
        other => bail!("expected no manifest for linux/s390x, got {other:?}"),
    }
    Ok(())
}
