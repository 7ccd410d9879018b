//! The ground's registries and the test-image builder every later suite uses: images pushed
//! by tag with a linux/amd64 index, read back by an OCI client, the authenticated registry's
//! gate, and a built image actually running under runc.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use oci_client::{Reference, manifest::OciManifest};

use crate::support::{
    Ground,
    ground::Namespace,
    harness::{Phase, Test},
    image::{self, ImageSpec},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "registry::pushed_images_read_back",
            phase: Phase::WithCrd,
            run: pushed_images_read_back,
        },
        Test {
            name: "registry::auth_registry_requires_the_password",
            phase: Phase::WithCrd,
            run: auth_registry_requires_the_password,
        },
        Test {
            name: "registry::runnable_image_runs_under_runc",
            phase: Phase::WithCrd,
            run: runnable_image_runs_under_runc,
        },
    ]
}

const MIB: u64 = 1024 * 1024;

fn pushed_images_read_back(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let registry = &ground.registry;
    let specs = [
        ImageSpec::runnable("eci-test/busybox", "v1"),
        ImageSpec::runnable("eci-test/filler-100m", "v1").with_filler(100 * MIB),
    ];
    for spec in specs {
        let built = ground
            .runtime
            .block_on(image::build_and_push(&spec, registry))?;
        let reference: Reference = registry.reference(&spec.repository, &spec.tag).parse()?;
        let client = registry.client()?;
        // The tag names the index; an OCI client resolves it to the linux/amd64 manifest.
        let (manifest, digest) = ground
            .runtime
            .block_on(client.pull_image_manifest(&reference, &registry.auth()))?;
        ensure!(
            digest == built.manifest.digest,
            "{reference}: manifest digest {digest}"
        );
        let layers: Vec<_> = manifest
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size))
            .collect();
        let expected: Vec<_> = built
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.data.len() as i64))
            .collect();
        ensure!(layers == expected, "{reference}: layers {layers:?}");
        let (index, _) = ground
            .runtime
            .block_on(client.pull_manifest(&reference, &registry.auth()))?;
        let OciManifest::ImageIndex(index) = index else {
            anyhow::bail!("{reference} is not an image index");
        };
        let platform = index.manifests[0]
            .platform
            .as_ref()
            .context("no platform")?;
        ensure!(platform.os.to_string() == "linux" && platform.architecture.to_string() == "amd64");
        if !spec.filler_layers.is_empty() {
            ensure!(
                built.pull_size() > 100 * MIB,
                "filler image is {} bytes",
                built.pull_size()
            );
        }
        // Deterministic: building again gives the same digest, so a second push is free.
        ensure!(
            image::build(&spec)?.index.digest == built.index.digest,
            "images are not reproducible"
        );
    }
    Ok(())
}

fn auth_registry_requires_the_password(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let registry = &ground.auth_registry;
    let spec = ImageSpec::runnable("private/busybox", "v1");
    let built = ground
        .runtime
        .block_on(image::build_and_push(&spec, registry))?;
    let reference: Reference = registry.reference(&spec.repository, &spec.tag).parse()?;
    let pull = |who: &image::Registry| {
        let client = who.client()?;
        ground
            .runtime
            .block_on(client.pull_image_manifest(&reference, &who.auth()))
            .map_err(anyhow::Error::from)
    };
    let anonymous = pull(&registry.with_credentials(None));
    ensure!(anonymous.is_err(), "an anonymous pull was accepted");
    let wrong = pull(&registry.with_credentials(Some(("eci-test", "not-the-password"))));
    ensure!(wrong.is_err(), "a wrong password was accepted");
    let (_, digest) = pull(registry)?;
    ensure!(digest == built.manifest.digest, "pulled {digest}");
    Ok(())
}

fn runnable_image_runs_under_runc(_ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let built = image::build(&ImageSpec::runnable("eci-test/busybox", "v1"))?;
    let bundle = tempfile::tempdir()?;
    let rootfs = bundle.path().join("rootfs");
    let layer = flate2::read::GzDecoder::new(built.layers[0].data.as_slice());
    tar::Archive::new(layer).unpack(&rootfs)?;

    let spec = Command::new("runc")
        .arg("spec")
        .current_dir(bundle.path())
        .status()?;
    ensure!(spec.success(), "runc spec failed");
    let path = bundle.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sh", "-c", "echo hi from $(hostname)"]);
    config["hostname"] = "eci-test".into();
    config["root"]["readonly"] = false.into();
    std::fs::write(&path, serde_json::to_vec(&config)?)?;

    let state = bundle.path().join("state");
    let id = format!("eci-vk-test-{}", std::process::id());
    let run = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .output()?;
    // Whatever happened, leave no container behind.
    let _ = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .output();
    ensure!(
        run.status.success(),
        "runc run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(
        stdout.trim() == "hi from eci-test",
        "the container printed {stdout:?}"
    );
    Ok(())
}
