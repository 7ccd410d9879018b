//! Image caches as current ECI runs them, beyond the user guide: automatic matching on by
//! default, caches made outside the cluster, ECI building a cache on a miss, and the instance's
//! storage. The guide's own behaviour (`--auto-match-image-cache=false
//! --auto-create-image-cache=false`) is tested in `guide.rs`; these nodes run with the
//! defaults.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::{
    guide::{
        pulled, push_image,
        rig::{self, POD, Rig, SLOW, wait},
        started_from, started_without_cache,
    },
    support::{
        Ground,
        emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, python_sdk},
        ground::Namespace,
        harness::{Phase, Test},
        image::{ImageSpec, build_and_push},
    },
};

pub fn tests() -> Vec<Test> {
    let test = |name, run| Test {
        name,
        phase: Phase::WithCrd,
        run,
    };
    vec![
        test(
            "current_eci::a_cache_made_outside_the_cluster_serves_pods_by_id_and_by_default",
            a_cache_made_outside_the_cluster_serves_pods_by_id_and_by_default,
        ),
        test(
            "current_eci::a_miss_has_eci_build_a_cache_the_next_pod_starts_from",
            a_miss_has_eci_build_a_cache_the_next_pod_starts_from,
        ),
        test(
            "current_eci::image_cache_annotations_reach_the_build",
            image_cache_annotations_reach_the_build,
        ),
        test(
            "current_eci::a_moved_tag_makes_the_cache_stale_until_it_is_refreshed",
            a_moved_tag_makes_the_cache_stale_until_it_is_refreshed,
        ),
        test(
            "current_eci::known_sizes_rank_caches_that_match_as_many_images",
            known_sizes_rank_caches_that_match_as_many_images,
        ),
        test(
            "current_eci::a_private_cache_serves_only_pods_that_could_pull_its_images",
            a_private_cache_serves_only_pods_that_could_pull_its_images,
        ),
        test(
            "current_eci::a_warmed_deployment_scales_from_a_cache_it_had_at_zero",
            a_warmed_deployment_scales_from_a_cache_it_had_at_zero,
        ),
    ]
}

/// The account's caches are listed this often, so a cache made elsewhere is a candidate soon.
const LIST_EVERY: &str = "1s";

/// The ImageCaches with the labels of `selector`.
fn labelled(rig: &Rig, selector: &str) -> Result<Vec<Value>> {
    let listed: Value = serde_json::from_str(&rig.kubectl(&[
        "get",
        "imagecaches",
        "-l",
        selector,
        "-o",
        "json",
    ])?)?;
    Ok(listed["items"].as_array().cloned().unwrap_or_default())
}

/// The first ImageCache with the labels of `selector`, once it is Ready.
fn first_ready(rig: &Rig, selector: &str) -> Result<Option<Value>> {
    Ok(labelled(rig, selector)?
        .into_iter()
        .next()
        .filter(|o| o["status"]["phase"] == "Ready"))
}

/// A pod on the rig's node running `image`, with `annotations`.
fn pod(rig: &Rig, name: &str, image: &str, annotations: &[(&str, &str)]) -> String {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{annotations}spec:\n  nodeName: {node}\n  containers:\n  - name: app\n    image: {image}\n    imagePullPolicy: IfNotPresent\n",
        node = rig.node_name
    )
}

/// Makes a cache with the official Python SDK straight against the rig's emulator (no
/// ImageCache object), waits for it to be Ready, and returns its id.
fn sdk_cache(rig: &Rig, name: &str, size_gib: u32, images: &[&str]) -> Result<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = python_sdk()?;
    let out = Command::new(&python)
        .arg(format!("{root}/integration/sdk/create_image_cache.py"))
        .arg(rig.emulator.host_port())
        .arg(name)
        .arg(size_gib.to_string())
        .args(images)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .output()
        .context("cannot run the SDK script")?;
    ensure!(
        out.status.success(),
        "the official SDK could not make cache {name}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout)?;
    made["image_cache_id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {made}"))
}

/// A cache made with the SDK (console, API, another cluster: no object here) serves a pod that
/// names its id, and a pod that says nothing (ECI matches by default); a pod's `"false"`
/// declines. A cache larger than the instance's 30 GiB is skipped until the pod adds storage.
fn a_cache_made_outside_the_cluster_serves_pods_by_id_and_by_default(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let rig = Rig::start_with(
        ground,
        ns,
        200,
        &["--image-cache-list-interval", LIST_EVERY],
    )?;
    let image = format!("example.com/current-eci/{}:1", ns.name);
    let id = sdk_cache(&rig, &format!("console-{}", ns.name), 20, &[&image])?;
    ensure!(
        labelled(&rig, &format!("{}={}", rig::LABEL, ns.name))?.is_empty(),
        "no ImageCache object stands for the SDK's cache"
    );

    rig.create(&pod(
        &rig,
        "by-id",
        &image,
        &[("k8s.aliyun.com/eci-imc-id", &id)],
    ))?;
    started_from(&rig, "by-id", &id)?;
    rig.create(&pod(&rig, "by-default", &image, &[]))?;
    started_from(&rig, "by-default", &id)?;
    rig.create(&pod(
        &rig,
        "declined",
        &image,
        &[("k8s.aliyun.com/eci-auto-imc", "false")],
    ))?;
    started_without_cache(&rig, "declined")?;

    let big_image = format!("example.com/current-eci/{}:big", ns.name);
    let big = sdk_cache(&rig, &format!("big-{}", ns.name), 40, &[&big_image])?;
    // The node lists the account's caches every second: wait for a list that has it.
    std::thread::sleep(std::time::Duration::from_secs(3));
    rig.create(&pod(&rig, "too-small", &big_image, &[]))?;
    started_without_cache(&rig, "too-small")?;
    rig.create(&pod(
        &rig,
        "more-storage",
        &big_image,
        &[("k8s.aliyun.com/eci-extra-ephemeral-storage", "10Gi")],
    ))?;
    started_from(&rig, "more-storage", &big)?;
    Ok(())
}

/// No cache holds the image of a Deployment's first pod: it pulls, and ECI builds a cache of
/// its images (counted as automatic), which appears as an ImageCache labelled auto-created. The
/// Deployment's next pod starts from it, pulling 0 bytes; once nothing has matched it for the
/// idle time, the object and the cloud cache are deleted.
fn a_miss_has_eci_build_a_cache_the_next_pod_starts_from(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let spec = ImageSpec::runnable("current-eci/auto", "v1").with_filler(2 << 20);
    let size = ground
        .runtime
        .block_on(build_and_push(&spec, &ground.registry))?
        .pull_size();
    let image = ground.registry.reference(&spec.repository, &spec.tag);
    let rig = Rig::start_runc_with(
        ground,
        ns,
        4,
        &[
            "--image-cache-list-interval",
            LIST_EVERY,
            "--auto-image-cache-idle",
            "20s",
        ],
    )?;
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: auto-app\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: auto-app\n  template:\n    metadata:\n      labels:\n        app: auto-app\n    spec:\n      nodeName: {node}\n      containers:\n      - name: app\n        image: {image}\n        imagePullPolicy: IfNotPresent\n",
        node = rig.node_name
    );
    rig.create(&deployment)?;
    let first = wait("the Deployment's first pod", POD, || {
        Ok(rig.pods_of("auto-app")?.into_iter().next())
    })?;
    started_without_cache(&rig, &first)?;
    pulled(&rig, &first, size)?;
    let built = rig.wait_pod_event(&first, "ImageCacheAutoCreated")?;
    ensure!(built.contains("imc-"), "{built}");

    let selector = format!(
        "eci.alibabacloud.com/auto-created=true,{}={}",
        rig::LABEL,
        ns.name
    );
    let object = wait("the automatic cache as a Ready ImageCache", SLOW, || {
        first_ready(&rig, &selector)
    })?;
    let id = object["status"]["imageCacheId"]
        .as_str()
        .context("the object names its cloud cache")?
        .to_owned();
    ensure!(
        object["spec"]["images"][0] == image.as_str(),
        "the object holds the pod's image: {object}"
    );
    let usage = rig
        .ground
        .runtime
        .block_on(rig.eci.list_usage())
        .context("ListUsage")?;
    ensure!(
        usage.number("UsedAutoImageCacheCount") == Some(1.0)
            && usage.number("UsedImageCacheCount") == Some(0.0),
        "counted against the automatic quota, not the manual one: {usage:?}"
    );

    rig.kubectl(&[
        "scale",
        "deployment",
        "auto-app",
        "--replicas=2",
        "-n",
        &ns.name,
    ])?;
    let second = wait("the Deployment's second pod", POD, || {
        Ok(rig.pods_of("auto-app")?.into_iter().find(|p| *p != first))
    })?;
    started_from(&rig, &second, &id)?;
    pulled(&rig, &second, 0)?;

    // Unmatched for the idle time (20 s here): the object goes, and its cloud cache with it.
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait("the idle automatic cache to be deleted", SLOW, || {
        let gone = rig
            .kubectl(&[
                "get",
                "imagecache",
                &name,
                "--ignore-not-found",
                "-o",
                "name",
            ])?
            .trim()
            .is_empty();
        let cloud = rig.describe_caches(eci_vk::eci::DescribeImageCaches {
            image_cache_id: Some(id.clone()),
            ..eci_vk::eci::DescribeImageCaches::default()
        })?;
        Ok((gone && cloud.is_empty()).then_some(()))
    })?;
    Ok(())
}

/// The ImageCache annotations of current ECI reach the cloud's build: an architecture the
/// image does not have fails the cache (the test images are linux/amd64 only); a malformed
/// annotation fails the object by name without a cloud call, and fixing it builds the cache;
/// a changed registry protocol, which UpdateImageCache cannot carry, builds the cache anew.
fn image_cache_annotations_reach_the_build(ground: &Ground, ns: &Namespace) -> Result<()> {
    let image = push_image(ground, "current-eci/annotated", 1 << 20)?;
    let rig = Rig::start_runc_with(ground, ns, 5, &[])?;
    let cache = |name: &str, annotations: &[(&str, &str)]| {
        let annotations: String = annotations
            .iter()
            .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
            .collect();
        format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {name}\n  labels:\n    {}: {}\n  annotations:\n{annotations}spec:\n  images:\n  - {image}\n",
            rig::LABEL,
            ns.name
        )
    };
    let phase = |o: &Value, want: &str| o["status"]["phase"] == want;
    let message = |o: &Value| o["status"]["conditions"][0]["message"].to_string();

    let arm = format!("arm-{}", ns.name);
    rig.create(&cache(&arm, &[("k8s.aliyun.com/imc-cpu-arch", "arm64")]))?;
    let failed = rig.wait_cache(&arm, "Failed", |o| phase(o, "Failed"))?;
    ensure!(
        message(&failed).contains("linux/arm64"),
        "the cache fails for want of an arm64 image: {failed}"
    );

    let flash = format!("flash-{}", ns.name);
    rig.create(&cache(
        &flash,
        &[("k8s.aliyun.com/imc-enable-flash", "sure")],
    ))?;
    let bad = rig.wait_cache(&flash, "Failed", |o| phase(o, "Failed"))?;
    ensure!(
        message(&bad).contains("k8s.aliyun.com/imc-enable-flash"),
        "the failure names the annotation: {bad}"
    );
    ensure!(
        rig.cloud_caches_for(&flash)?.is_empty(),
        "nothing was asked of the cloud"
    );
    rig.kubectl(&[
        "annotate",
        "imagecache",
        &flash,
        "--overwrite",
        "k8s.aliyun.com/imc-enable-flash=true",
    ])?;
    let ready = rig.wait_cache(&flash, "Ready", |o| phase(o, "Ready"))?;
    let first = ready["status"]["imageCacheId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    rig.kubectl(&[
        "annotate",
        "imagecache",
        &flash,
        "--overwrite",
        &format!(
            "k8s.aliyun.com/plain-http-registry={}",
            ground.registry.host
        ),
    ])?;
    let rebuilt = rig.wait_cache(&flash, "built anew", |o| {
        phase(o, "Ready") && o["status"]["imageCacheId"].as_str() != Some(first.as_str())
    })?;
    let cloud = rig.cloud_caches_for(&flash)?;
    ensure!(
        cloud.len() == 1
            && Some(cloud[0].image_cache_id.as_str()) == rebuilt["status"]["imageCacheId"].as_str(),
        "one cloud cache, the new one: {cloud:?}"
    );
    Ok(())
}

/// The node's flags to read the ground's registries (digests, sizes, moved tags) every second.
fn registry_flags(ground: &Ground) -> Result<Vec<String>> {
    let ca = ground
        .auth_registry
        .ca
        .as_ref()
        .context("the authenticated registry has a CA")?;
    Ok(vec![
        "--image-cache-tag-check-interval".into(),
        "1s".into(),
        "--plain-http-registry".into(),
        ground.registry.host.clone(),
        "--registry-ca-file".into(),
        ca.to_string_lossy().into_owned(),
    ])
}

/// What the pod's container printed, read through ECI's DescribeContainerLog.
fn printed(rig: &Rig, pod: &str) -> Result<String> {
    let uid = rig.pod(pod)?["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let group = rig
        .group_of(&uid)?
        .with_context(|| format!("no container group for {pod}"))?;
    let eci = rig.eci.clone();
    let request = eci_vk::eci::DescribeContainerLog {
        container_group_id: group.container_group_id,
        container_name: "app".into(),
        ..eci_vk::eci::DescribeContainerLog::default()
    };
    Ok(rig
        .ground
        .runtime
        .block_on(async move { eci.describe_container_log(&request).await })?
        .content)
}

/// A pod printing `/content` of `image`, with `policy`.
fn printer(rig: &Rig, name: &str, image: &str, policy: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  containers:\n  - name: app\n    image: {image}\n    imagePullPolicy: {policy}\n    command: [\"sh\", \"-c\", \"echo content=$(cat /content); sleep 3600\"]\n",
        node = rig.node_name
    )
}

/// A cache records what its images are (digest, size); a pod naming the image by digest
/// matches it. The tag is pushed again with other content: the cache is `Stale`; while it is
/// only marked (`--refresh-stale-image-caches=false`), a pod pulling `Always` does not start
/// from it and prints the new content, one pulling `IfNotPresent` does (ECI's semantics);
/// with refreshing on, the cache is updated and the next pod from it prints the new content.
fn a_moved_tag_makes_the_cache_stale_until_it_is_refreshed(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let repository = format!("current-eci/moving-{}", ns.name);
    let one = ImageSpec::runnable(&repository, "v1").with_file("content", "one")?;
    let pushed = ground
        .runtime
        .block_on(build_and_push(&one, &ground.registry))?;
    let image = ground.registry.reference(&repository, "v1");
    let mut flags = registry_flags(ground)?;
    flags.extend(["--refresh-stale-image-caches=false".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut rig = Rig::start_runc_with(ground, ns, 6, &flags)?;
    let cache = format!("moving-{}", ns.name);
    rig.create_cache(&cache, &[&image])?;
    let recorded = rig.wait_cache(&cache, "Ready with its images read", |o| {
        o["status"]["phase"] == "Ready" && o["status"]["images"][0]["digest"].is_string()
    })?;
    let id = recorded["status"]["imageCacheId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let first = &recorded["status"]["images"][0];
    ensure!(
        first["digest"] == pushed.index.digest.as_str()
            && first["platformDigest"] == pushed.manifest.digest.as_str()
            && first["sizeBytes"].as_u64() == Some(pushed.pull_size()),
        "status.images: {first}"
    );

    let by_digest = format!(
        "{}/{repository}@{}",
        ground.registry.host, pushed.index.digest
    );
    rig.create(&printer(&rig, "by-digest", &by_digest, "IfNotPresent"))?;
    started_from(&rig, "by-digest", &id)?;

    let two = ImageSpec::runnable(&repository, "v1").with_file("content", "two")?;
    ground
        .runtime
        .block_on(build_and_push(&two, &ground.registry))?;
    rig.wait_cache(&cache, "Stale", |o| {
        o["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Stale" && c["status"] == "True")
        })
    })?;
    rig.create(&printer(&rig, "always", &image, "Always"))?;
    started_without_cache(&rig, "always")?;
    wait("the Always pod to print", POD, || {
        Ok(printed(&rig, "always")?
            .contains("content=two")
            .then_some(()))
    })
    .with_context(|| format!("it printed {:?}", printed(&rig, "always")))?;
    rig.create(&printer(&rig, "if-not-present", &image, "IfNotPresent"))?;
    started_from(&rig, "if-not-present", &id)?;

    let refreshing: Vec<String> = registry_flags(ground)?;
    let refreshing: Vec<&str> = refreshing.iter().map(String::as_str).collect();
    rig.respawn_with(&refreshing)?;
    rig.wait_cache(&cache, "refreshed", |o| {
        o["status"]["phase"] == "Ready"
            && o["status"]["images"][0]["digest"].is_string()
            && o["status"]["images"][0]["digest"] != pushed.index.digest.as_str()
            && o["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Stale" && c["status"] == "False")
            })
    })?;
    rig.create(&printer(&rig, "after", &image, "IfNotPresent"))?;
    started_from(&rig, "after", &id)?;
    wait("the refreshed cache's pod to print", POD, || {
        Ok(printed(&rig, "after")?
            .contains("content=two")
            .then_some(()))
    })?;
    Ok(())
}

/// Two caches hold as many of a pod's images; the one whose matched images are larger wins,
/// though it is older, and `explain-match` says why. Sizes are read from the registry.
fn known_sizes_rank_caches_that_match_as_many_images(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let small = push_image(ground, "current-eci/small", 1 << 20)?;
    let large = push_image(ground, "current-eci/large", 6 << 20)?;
    let app = push_image(ground, "current-eci/app", 1 << 20)?;
    let mut flags = registry_flags(ground)?;
    flags.extend(rig::GUIDE_POLICY.iter().map(|f| (*f).to_owned()));
    flags.extend(["--auto-match-image-cache=true".to_owned()]);
    let flags: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .filter(|f| *f != "--auto-match-image-cache=false")
        .collect();
    let rig = Rig::start_with(ground, ns, 100, &flags)?;
    let bigger = format!("bigger-{}", ns.name);
    let smaller = format!("smaller-{}", ns.name);
    rig.create_cache(&bigger, &[&app, &large])?;
    let with_sizes = |o: &Value| {
        o["status"]["phase"] == "Ready"
            && o["status"]["images"].as_array().is_some_and(|i| {
                i.len() == 2 && i.iter().all(|i| i["sizeBytes"].as_u64() > Some(0))
            })
    };
    let big_id = rig.wait_cache(&bigger, "Ready with sizes", with_sizes)?["status"]["imageCacheId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    rig.create_cache(&smaller, &[&app, &small])?;
    rig.wait_cache(&smaller, "Ready with sizes", with_sizes)?;

    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: three\nspec:\n  nodeName: {node}\n  containers:\n  - name: app\n    image: {app}\n  - name: small\n    image: {small}\n  - name: large\n    image: {large}\n",
        node = rig.node_name
    );
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &yaml)?;
    let out = Command::new(ground.eci_vk())
        .arg("explain-match")
        .arg("-f")
        .arg(file.path())
        .arg("--kubeconfig")
        .arg(&ground.kubeconfig)
        .args(["-l", &format!("{}={}", rig::LABEL, ns.name)])
        .arg("--auto-create-image-cache=false")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        text.contains(&format!("chosen: {big_id}")) && text.contains("more matched bytes"),
        "{text}"
    );
    rig.create(&yaml)?;
    started_from(&rig, "three", &big_id)?;
    Ok(())
}

/// A cache built with a pull secret of namespace A holds a private image: a pod of namespace B
/// without a pull secret for that registry does not start from it (the event says why) and
/// pulls; with one, it starts from the cache.
fn a_private_cache_serves_only_pods_that_could_pull_its_images(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let (user, password) = ground
        .auth_registry
        .credentials
        .clone()
        .context("the auth registry has credentials")?;
    let spec = ImageSpec::runnable("current-eci/private", "v1").with_filler(64 << 10);
    ground
        .runtime
        .block_on(build_and_push(&spec, &ground.auth_registry))?;
    let image = ground.auth_registry.reference("current-eci/private", "v1");
    let rig = Rig::start_with(ground, ns, 100, &[])?;
    let other = format!("{}-a", ns.name);
    let secret = |namespace: &str| {
        rig.kubectl(&[
            "create",
            "secret",
            "docker-registry",
            "registry-login",
            "-n",
            namespace,
            &format!("--docker-server={}", ground.auth_registry.host),
            &format!("--docker-username={user}"),
            &format!("--docker-password={password}"),
        ])
    };
    rig.kubectl(&["create", "namespace", &other])?;
    let result = (|| -> Result<()> {
        secret(&other)?;
        let cache = format!("private-{}", ns.name);
        rig.create(&format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {cache}\n  labels:\n    {}: {}\nspec:\n  images:\n  - {image}\n  imagePullSecrets:\n  - {other}:registry-login\n",
            rig::LABEL,
            ns.name
        ))?;
        let ready = rig.wait_cache(&cache, "Ready", |o| o["status"]["phase"] == "Ready")?;
        let id = ready["status"]["imageCacheId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        ensure!(
            ready["status"]["privateRegistries"][0] == ground.auth_registry.host.as_str(),
            "the status names the registry it logged into: {ready}"
        );

        rig.create(&pod(&rig, "no-login", &image, &[]))?;
        started_without_cache(&rig, "no-login")?;
        let why = rig.wait_pod_event("no-login", "ImageCacheMissed")?;
        ensure!(why.contains("no pull secret"), "{why}");

        secret(&ns.name)?;
        let with_login = pod(&rig, "with-login", &image, &[]).replace(
            "  containers:",
            "  imagePullSecrets:\n  - name: registry-login\n  containers:",
        );
        rig.create(&with_login)?;
        started_from(&rig, "with-login", &id)
    })();
    let _ = rig.kubectl(&["delete", "namespace", &other, "--wait=false"]);
    result
}

/// A Deployment of 0 replicas annotated `eci.alibabacloud.com/warm-image-cache: "true"` gets a
/// Ready ImageCache of its template's images; scaled to 3, every pod starts from it, pulling
/// 0 bytes; deleted, its cache goes after the grace period.
fn a_warmed_deployment_scales_from_a_cache_it_had_at_zero(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let spec = ImageSpec::runnable("current-eci/warm", "v1").with_filler(2 << 20);
    ground
        .runtime
        .block_on(build_and_push(&spec, &ground.registry))?;
    let image = ground.registry.reference(&spec.repository, &spec.tag);
    let rig = Rig::start_runc_with(
        ground,
        ns,
        7,
        &[
            "--image-cache-list-interval",
            LIST_EVERY,
            "--warm-image-cache-grace",
            "2s",
        ],
    )?;
    rig.create(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: warm-app\n  annotations:\n    eci.alibabacloud.com/warm-image-cache: \"true\"\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: warm-app\n  template:\n    metadata:\n      labels:\n        app: warm-app\n    spec:\n      nodeName: {node}\n      containers:\n      - name: app\n        image: {image}\n        imagePullPolicy: IfNotPresent\n",
        node = rig.node_name
    ))?;
    let selector = format!("eci.alibabacloud.com/warm=true,{}={}", rig::LABEL, ns.name);
    let object = wait("the warm cache to be Ready", SLOW, || {
        first_ready(&rig, &selector)
    })?;
    let id = object["status"]["imageCacheId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        object["metadata"]["annotations"]["eci.alibabacloud.com/warm-workload"]
            == format!("Deployment/{}/warm-app", ns.name).as_str(),
        "{object}"
    );

    rig.kubectl(&[
        "scale",
        "deployment",
        "warm-app",
        "--replicas=3",
        "-n",
        &ns.name,
    ])?;
    let pods = wait("3 pods", POD, || {
        let pods = rig.pods_of("warm-app")?;
        Ok((pods.len() == 3).then_some(pods))
    })?;
    for pod in &pods {
        started_from(&rig, pod, &id)?;
        pulled(&rig, pod, 0)?;
    }

    rig.kubectl(&["delete", "deployment", "warm-app", "-n", &ns.name])?;
    wait("the warm cache to go with its workload", SLOW, || {
        Ok(labelled(&rig, &selector)?.is_empty().then_some(()))
    })?;
    Ok(())
}
