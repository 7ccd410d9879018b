//! The user guide ("Use an image cache CRD to accelerate pod creation") end to end, with its
//! own YAML: a real control plane, `eci-vk emulator` as the cloud, and `eci-vk run` as the
//! node hosting the ImageCache controller and the pods. Each test has its own namespace,
//! emulator, node and caches (see [`rig`]).

pub mod rig;

use std::{collections::BTreeSet, time::Duration};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use self::rig::{LABEL, POD, Rig, SLOW, wait};
use crate::support::{
    Ground,
    cache_status::ready_status,
    ground::Namespace,
    harness::{Phase, Test},
    image::{ImageSpec, build_and_push},
};

pub fn tests() -> Vec<Test> {
    let test = |name, run| Test {
        name,
        phase: Phase::WithCrd,
        run,
    };
    vec![
        test(
            "guide::sample_with_three_pull_secrets_is_ready",
            sample_with_three_pull_secrets_is_ready,
        ),
        test(
            "guide::explicit_id_pod_and_deployment_start_from_the_cache",
            explicit_id_pod_and_deployment_start_from_the_cache,
        ),
        test(
            "guide::automatic_matching_follows_the_documented_priority",
            automatic_matching_follows_the_documented_priority,
        ),
        test(
            "guide::unready_or_unknown_cache_fails_only_that_pod",
            unready_or_unknown_cache_fails_only_that_pod,
        ),
        test(
            "guide::deleting_a_cache_keeps_its_pods_running",
            deleting_a_cache_keeps_its_pods_running,
        ),
        test(
            "guide::wrong_password_fails_the_cache_naming_the_image",
            wrong_password_fails_the_cache_naming_the_image,
        ),
        test(
            "guide::a_node_without_the_controller_still_matches",
            a_node_without_the_controller_still_matches,
        ),
        test(
            "guide::killed_node_while_creating_leaves_one_cache",
            killed_node_while_creating_leaves_one_cache,
        ),
        Test {
            name: "guide::node_runs_pods_without_the_crd",
            phase: Phase::FreshCluster,
            run: node_runs_pods_without_the_crd,
        },
    ]
}

/// The guide's "Specify an image cache in the YAML file of a pod".
const POD_WITH_ID: &str = r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    k8s.aliyun.com/eci-image-snapshot-id: imc-2ze5tm5gehgtiigaz5jh
  name: nginx-imagecache-id
spec:
  containers:
  - image: nginx:1.7.9
    imagePullPolicy: IfNotPresent
    name: nginx
    resources:
      limits:
        cpu: 300m
        memory: 200Mi
      requests:
        cpu: 200m
        memory: 100Mi
  nodeName: virtual-kubelet
"#;

/// The guide's "Specify an image cache in the YAML file of a deployment".
const DEPLOYMENT_WITH_ID: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
      annotations:
        k8s.aliyun.com/eci-image-snapshot-id: imc-2ze5tm5gehgtiigaz5jh
    spec:
      nodeName: virtual-kubelet
      containers:
      - name: nginx
        image: nginx:1.7.9
        imagePullPolicy: IfNotPresent
"#;

/// The guide's "Enable automatic image cache match in the YAML file of a pod".
const POD_AUTO: &str = r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    k8s.aliyun.com/eci-image-cache: "true"
  name: nginx-auto-match
spec:
  containers:
  - image: nginx:1.7.9
    imagePullPolicy: IfNotPresent
    name: nginx
    resources:
      limits:
        cpu: 300m
        memory: 200Mi
      requests:
        cpu: 200m
        memory: 100Mi
  nodeName: virtual-kubelet
"#;

/// The guide's "Enable automatic image cache match in the YAML file of a deployment".
const DEPLOYMENT_AUTO: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 2
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
      annotations:
        k8s.aliyun.com/eci-image-cache: "true"
    spec:
      nodeName: virtual-kubelet
      containers:
      - name: nginx
        image: nginx:1.7.9
        imagePullPolicy: IfNotPresent
"#;

const GUIDE_ID: &str = "imc-2ze5tm5gehgtiigaz5jh";
const MATCHED: &str = "k8s.aliyun.com/eci-matched-image-cache";

/// The guide's YAML made the test's: its node, image and cache id.
pub(crate) fn adapt(yaml: &str, rig: &Rig, image: &str, id: &str) -> String {
    yaml.replace(
        "nodeName: virtual-kubelet",
        &format!("nodeName: {}", rig.node_name),
    )
    .replace("image: nginx:1.7.9", &format!("image: {image}"))
    .replace(GUIDE_ID, id)
}

/// Pushes a small runnable test image to the plain registry; returns its reference.
pub(crate) fn push_image(ground: &Ground, repository: &str, filler: u64) -> Result<String> {
    let spec = ImageSpec::runnable(repository, "v1").with_filler(filler);
    ground
        .runtime
        .block_on(build_and_push(&spec, &ground.registry))?;
    Ok(ground.registry.reference(repository, "v1"))
}

fn matched(pod: &Value) -> Option<&str> {
    pod["metadata"]["annotations"][MATCHED].as_str()
}

/// Checks that the pod started from `id`: annotation, event, and the cloud's own record.
pub(crate) fn started_from(rig: &Rig, name: &str, id: &str) -> Result<()> {
    let pod = rig.wait_running(name)?;
    let pod = if matched(&pod).is_some() {
        pod
    } else {
        rig.wait_pod(name, "annotated", |p| matched(p).is_some())?
    };
    ensure!(
        matched(&pod) == Some(id),
        "pod {name}: {MATCHED} = {:?}, not {id}",
        matched(&pod)
    );
    let message = rig.wait_pod_event(name, "SuccessfulHitImageCache")?;
    ensure!(message.contains(id), "{message}");
    let cloud = rig.group_cache(&pod)?;
    ensure!(
        cloud.as_deref() == Some(id),
        "the cloud says pod {name}'s group started from {cloud:?}, not {id}"
    );
    Ok(())
}

/// Checks that the agent pulled exactly `bytes` for the pod's container group.
pub(crate) fn pulled(rig: &Rig, name: &str, bytes: u64) -> Result<()> {
    let pod = rig.pod(name)?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let group = rig
        .group_of(uid)?
        .with_context(|| format!("no container group for pod {name}"))?;
    let actual = rig
        .ground
        .runtime
        .block_on(rig.emulator.group_pulled(&group.container_group_id))?;
    ensure!(
        actual == bytes,
        "pod {name}'s group pulled {actual} bytes, expected {bytes}"
    );
    Ok(())
}

/// Checks that the pod pulled its images: no annotation, no hit, no cache in the cloud.
pub(crate) fn started_without_cache(rig: &Rig, name: &str) -> Result<()> {
    let pod = rig.wait_running(name)?;
    ensure!(
        matched(&pod).is_none(),
        "pod {name} was matched: {:?}",
        matched(&pod)
    );
    ensure!(
        rig.group_cache(&pod)?.is_none(),
        "pod {name}'s group hit a cache"
    );
    ensure!(
        !rig.pod_events(name)?
            .iter()
            .any(|(r, _)| r == "SuccessfulHitImageCache"),
        "pod {name} got a hit event"
    );
    Ok(())
}

/// "Create an image cache" with the guide's sample: three pull secrets (two in the test's
/// namespace standing in for `default`, one in `kube-system`), the images private on the
/// authenticated registry.
fn sample_with_three_pull_secrets_is_ready(ground: &Ground, ns: &Namespace) -> Result<()> {
    let (user, password) = ground
        .auth_registry
        .credentials
        .clone()
        .context("the auth registry has credentials")?;
    let centos = ground.auth_registry.reference("guide/centos", "latest");
    let busybox = ground.auth_registry.reference("guide/busybox", "latest");
    for (repository, filler) in [("guide/centos", 64 << 10), ("guide/busybox", 32 << 10)] {
        let spec = ImageSpec::runnable(repository, "latest").with_filler(filler);
        ground
            .runtime
            .block_on(build_and_push(&spec, &ground.auth_registry))?;
    }
    let rig = Rig::start_runc(ground, ns, 2)?;
    let secret3 = format!("{}-secret3", ns.name);
    let docker_config = |user: &str, password: &str| {
        serde_json::json!({"auths": {ground.auth_registry.host.clone(): {"username": user, "password": password}}})
            .to_string()
    };
    rig.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "secret1",
        "-n",
        &ns.name,
        &format!("--docker-server={}", ground.auth_registry.host),
        &format!("--docker-username={user}"),
        &format!("--docker-password={password}"),
    ])?;
    for (namespace, name) in [
        (ns.name.as_str(), "secret2"),
        ("kube-system", secret3.as_str()),
    ] {
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": docker_config(&user, &password)},
        });
        ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(secret.to_string())
            .ok()?;
    }
    let result = (|| {
        let sample = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/guide/imagecache-sample.yaml"),
        )?;
        let name = format!("imagecache-sample-{}", ns.name);
        let yaml = sample
            .replace(
                "  name: imagecache-sample\n",
                &format!("  name: {name}\n  labels:\n    {LABEL}: {}\n", ns.name),
            )
            .replace("- centos:latest", &format!("- {centos}"))
            .replace("- busybox:latest", &format!("- {busybox}"))
            .replace("default:secret1", &format!("{}:secret1", ns.name))
            .replace("default:secret2", &format!("{}:secret2", ns.name))
            .replace("kube-system:secret3", &format!("kube-system:{secret3}"));
        ensure!(yaml.contains(&name) && yaml.contains(&centos), "{yaml}");
        rig.create(&yaml)?;
        let id = rig.wait_ready(&name)?;

        // kubectl get imagecache: the guide's table.
        let table = rig.kubectl(&["get", "imagecache", &name])?;
        let row: Vec<&str> = table
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure!(
            table
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                == ["NAME", "AGE", "CACHEID", "PHASE", "PROGRESS"],
            "{table}"
        );
        ensure!(row.len() == 5 && row[0] == name, "{table}");
        ensure!(
            row[2] == id && id.starts_with("imc-") && id.len() == 24,
            "{table}"
        );
        ensure!(row[3] == "Ready" && row[4] == "100%", "{table}");

        // kubectl get -o yaml: the guide's status.
        let yaml = rig.kubectl(&["get", "imagecache", &name, "-o", "yaml"])?;
        let messages = ready_status(&yaml)?.messages;
        ensure!(
            messages
                == [
                    format!("Success pull image {centos}"),
                    format!("Success pull image {busybox}")
                ],
            "one Success pull event per image expected:\n{yaml}"
        );
        ensure!(
            !yaml.contains(&password),
            "a registry password reached the object"
        );
        ensure!(
            !rig.logs().contains(&password),
            "a registry password reached the node log"
        );
        let cloud = rig.cloud_caches_for(&name)?;
        ensure!(
            cloud.len() == 1 && cloud[0].image_cache_id == id && cloud[0].image_cache_size == 25,
            "{cloud:?}"
        );
        Ok(())
    })();
    let _ = ground
        .kubectl()
        .args([
            "delete",
            "secret",
            "-n",
            "kube-system",
            &secret3,
            "--ignore-not-found",
        ])
        .run();
    result
}

/// "Specify an image cache": the guide's pod and Deployment with
/// `k8s.aliyun.com/eci-image-snapshot-id` start from the cache; the same pod without the
/// annotation, and a Deployment with the annotation only on itself, do not.
fn explicit_id_pod_and_deployment_start_from_the_cache(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    // The real agent: what a pod's group pulls is read from its counters.
    let spec = ImageSpec::runnable("guide/nginx-runc", "v1").with_filler(4 << 20);
    let size = ground
        .runtime
        .block_on(build_and_push(&spec, &ground.registry))?
        .pull_size();
    let image = ground.registry.reference(&spec.repository, &spec.tag);
    let rig = Rig::start_runc(ground, ns, 3)?;
    let cache = format!("nginx-{}", ns.name);
    rig.create_cache(&cache, &[&image])?;
    let id = rig.wait_ready(&cache)?;

    rig.create(&adapt(POD_WITH_ID, &rig, &image, &id))?;
    started_from(&rig, "nginx-imagecache-id", &id)?;
    pulled(&rig, "nginx-imagecache-id", 0)?;

    rig.create(&adapt(DEPLOYMENT_WITH_ID, &rig, &image, &id))?;
    let pods = wait("2 Deployment pods", POD, || {
        let pods = rig.pods_of("nginx")?;
        Ok((pods.len() == 2).then_some(pods))
    })?;
    for pod in &pods {
        started_from(&rig, pod, &id)?;
        pulled(&rig, pod, 0)?;
    }

    // The current name of the annotation, k8s.aliyun.com/eci-imc-id, does the same.
    let current = POD_WITH_ID
        .replace(
            "k8s.aliyun.com/eci-image-snapshot-id",
            "k8s.aliyun.com/eci-imc-id",
        )
        .replace("name: nginx-imagecache-id", "name: nginx-imc-id");
    rig.create(&adapt(&current, &rig, &image, &id))?;
    started_from(&rig, "nginx-imc-id", &id)?;

    // The same pod without the annotation pulls its images.
    let plain = POD_WITH_ID
        .replace(
            &format!("    k8s.aliyun.com/eci-image-snapshot-id: {GUIDE_ID}\n"),
            "",
        )
        .replace("name: nginx-imagecache-id", "name: nginx-no-cache");
    rig.create(&adapt(&plain, &rig, &image, &id))?;
    started_without_cache(&rig, "nginx-no-cache")?;
    pulled(&rig, "nginx-no-cache", size)?;

    // "If you add the annotation for the deployment, the annotation does not take effect."
    let on_deployment = DEPLOYMENT_WITH_ID
        .replace(
            "  labels:\n    app: nginx\nspec:",
            &format!("  labels:\n    app: ignored\n  annotations:\n    k8s.aliyun.com/eci-image-snapshot-id: {GUIDE_ID}\nspec:"),
        )
        .replace(&format!("      annotations:\n        k8s.aliyun.com/eci-image-snapshot-id: {GUIDE_ID}\n"), "")
        .replace("app: nginx", "app: ignored")
        .replace("name: nginx-deployment", "name: ignored-deployment")
        .replace("replicas: 2", "replicas: 1");
    rig.create(&adapt(&on_deployment, &rig, &image, &id))?;
    let pods = wait("the ignored Deployment's pod", POD, || {
        let pods = rig.pods_of("ignored")?;
        Ok((pods.len() == 1).then_some(pods))
    })?;
    started_without_cache(&rig, &pods[0])?;
    Ok(())
}

/// "Enable automatic image cache match": three Ready caches, built so each documented rule
/// decides once — `early` and `late` hold both of the pod's images, `single` (the newest) only
/// one. The pod and the Deployment get `late`: more matched images beat a newer cache
/// (`single`), and among equal matches the newer wins (`late` over `early`). With both
/// annotations the explicit id (`early`) wins; `imc-perfect-match` narrows the field; an image
/// no cache holds is a miss. `eci-vk explain-match` names the same winner.
fn automatic_matching_follows_the_documented_priority(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let nginx = push_image(ground, "guide/nginx", 16 << 10)?;
    let sidecar = push_image(ground, "guide/sidecar", 8 << 10)?;
    let rig = Rig::start(ground, ns, 100)?;
    let mut ids = Vec::new();
    for (name, images) in [
        ("early", vec![nginx.as_str(), sidecar.as_str()]),
        ("late", vec![nginx.as_str(), sidecar.as_str()]),
        ("single", vec![nginx.as_str()]),
    ] {
        let cache = format!("{name}-{}", ns.name);
        rig.create_cache(&cache, &images)?;
        ids.push(rig.wait_ready(&cache)?);
        // Creation times one second apart at least, so "newest" is unambiguous.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let (early, late) = (ids[0].clone(), ids[1].clone());
    let with_sidecar = |yaml: &str| {
        yaml.replace(
            "  - image: nginx:1.7.9\n",
            &format!("  - image: {sidecar}\n    name: sidecar\n  - image: nginx:1.7.9\n"),
        )
        .replace(
            "      - name: nginx\n",
            &format!("      - name: sidecar\n        image: {sidecar}\n      - name: nginx\n"),
        )
    };

    let pod = adapt(&with_sidecar(POD_AUTO), &rig, &nginx, "");
    rig.create(&pod)?;
    started_from(&rig, "nginx-auto-match", &late)?;

    rig.create(&adapt(&with_sidecar(DEPLOYMENT_AUTO), &rig, &nginx, ""))?;
    let pods = wait("2 Deployment pods", POD, || {
        let pods = rig.pods_of("nginx")?;
        Ok((pods.len() == 2).then_some(pods))
    })?;
    for name in &pods {
        started_from(&rig, name, &late)?;
    }

    // The current name, k8s.aliyun.com/eci-auto-imc, does the same.
    let current = with_sidecar(POD_AUTO)
        .replace(
            "k8s.aliyun.com/eci-image-cache",
            "k8s.aliyun.com/eci-auto-imc",
        )
        .replace("name: nginx-auto-match", "name: nginx-auto-imc");
    rig.create(&adapt(&current, &rig, &nginx, ""))?;
    started_from(&rig, "nginx-auto-imc", &late)?;

    // imc-perfect-match with nginx alone: every cache holds all of it, the newest wins.
    let perfect = POD_AUTO
        .replace(
            "    k8s.aliyun.com/eci-image-cache: \"true\"\n",
            "    k8s.aliyun.com/eci-image-cache: \"true\"\n    k8s.aliyun.com/imc-perfect-match: \"true\"\n",
        )
        .replace("name: nginx-auto-match", "name: nginx-perfect");
    rig.create(&adapt(&perfect, &rig, &nginx, ""))?;
    started_from(&rig, "nginx-perfect", &ids[2])?;

    // An image no cache holds: ImageCacheMissed, and the pod pulls it.
    let other = push_image(ground, "guide/uncached", 8 << 10)?;
    let missed = POD_AUTO.replace("name: nginx-auto-match", "name: uncached");
    rig.create(&adapt(&missed, &rig, &other, ""))?;
    started_without_cache(&rig, "uncached")?;
    rig.wait_pod_event("uncached", "ImageCacheMissed")?;

    // Both annotations: "the former takes precedence over the latter".
    let both = with_sidecar(POD_AUTO)
        .replace(
            "    k8s.aliyun.com/eci-image-cache: \"true\"\n",
            &format!("    k8s.aliyun.com/eci-image-cache: \"true\"\n    k8s.aliyun.com/eci-image-snapshot-id: {early}\n"),
        )
        .replace("name: nginx-auto-match", "name: nginx-both");
    rig.create(&adapt(&both, &rig, &nginx, ""))?;
    started_from(&rig, "nginx-both", &early)?;

    // explain-match tells the user the same before they create the pod.
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), &pod)?;
    let out = std::process::Command::new(ground.eci_vk())
        .arg("explain-match")
        .arg("-f")
        .arg(file.path())
        .arg("--kubeconfig")
        .arg(&ground.kubeconfig)
        .args(["-l", &format!("{LABEL}={}", ns.name)])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "explain-match failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(text.contains(&format!("chosen: {late}")), "{text}");
    ensure!(
        text.contains(&format!("over {early}")) && text.contains("newer"),
        "{text}"
    );
    ensure!(
        text.contains(&ids[2]) && text.contains("matched=1/2"),
        "{text}"
    );
    Ok(())
}

/// "You must specify an image cache in the Ready state … Otherwise, the pod fails to be
/// created": a cache still building → `ImageCacheNotComplete`; an unknown id →
/// `ImageCacheNotFound`. A pod without a cache on the same node still runs.
fn unready_or_unknown_cache_fails_only_that_pod(ground: &Ground, ns: &Namespace) -> Result<()> {
    let image = push_image(ground, "guide/nginx", 16 << 10)?;
    // Each image takes 20 s to "pull": the cache of two stays in the making for the whole
    // test, while a pod of one image (pulling it itself) still starts within the pod timeout.
    let sidecar = push_image(ground, "guide/sidecar", 8 << 10)?;
    let rig = Rig::start(ground, ns, 20_000)?;
    let cache = format!("building-{}", ns.name);
    rig.create_cache(&cache, &[&image, &sidecar])?;
    let object = rig.wait_cache(&cache, "named by the cloud", |o| {
        o["status"]["imageCacheId"]
            .as_str()
            .is_some_and(|id| id.starts_with("imc-"))
    })?;
    let id = object["status"]["imageCacheId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    ensure!(object["status"]["phase"] != "Ready", "{}", object["status"]);

    for (name, id, reason) in [
        ("not-complete", id.as_str(), "ImageCacheNotComplete"),
        (
            "not-found",
            "imc-0000000000unknown000",
            "ImageCacheNotFound",
        ),
    ] {
        let yaml = POD_WITH_ID.replace("name: nginx-imagecache-id", &format!("name: {name}"));
        rig.create(&adapt(&yaml, &rig, &image, id))?;
        let pod = rig.wait_pod(name, "Failed", |p| p["status"]["phase"] == "Failed")?;
        ensure!(pod["status"]["reason"] == reason, "{}", pod["status"]);
        let message = pod["status"]["message"].as_str().unwrap_or_default();
        ensure!(message.contains(id), "{message}");
        let event = rig.wait_pod_event(name, reason)?;
        ensure!(event.contains(id), "{event}");
        ensure!(
            rig.group_of(pod["metadata"]["uid"].as_str().unwrap_or_default())?
                .is_none()
        );
    }
    let plain = POD_WITH_ID
        .replace(
            &format!("    k8s.aliyun.com/eci-image-snapshot-id: {GUIDE_ID}\n"),
            "",
        )
        .replace("name: nginx-imagecache-id", "name: still-served");
    rig.create(&adapt(&plain, &rig, &image, ""))?;
    rig.wait_running("still-served")?;
    Ok(())
}

/// "If you delete an image cache, the pods created based on the image cache are not
/// affected": `kubectl delete imagecache` removes the cloud cache, the pod keeps running —
/// also across a restart of the node, which adopts it without resolving its cache again.
fn deleting_a_cache_keeps_its_pods_running(ground: &Ground, ns: &Namespace) -> Result<()> {
    let image = push_image(ground, "guide/nginx", 16 << 10)?;
    let mut rig = Rig::start(ground, ns, 100)?;
    let cache = format!("imagecache-secrets-test-{}", ns.name);
    rig.create_cache(&cache, &[&image])?;
    let id = rig.wait_ready(&cache)?;
    rig.create(&adapt(POD_WITH_ID, &rig, &image, &id))?;
    started_from(&rig, "nginx-imagecache-id", &id)?;

    rig.kubectl(&["delete", &format!("imagecache/{cache}"), "--timeout=60s"])?;
    let gone = rig
        .ground
        .kubectl()
        .args(["get", &format!("imagecache/{cache}")])
        .fails()?;
    ensure!(gone.contains("NotFound"), "{gone}");
    let left = rig.describe_caches(eci_vk::eci::DescribeImageCaches {
        image_cache_id: Some(id.clone()),
        ..Default::default()
    })?;
    ensure!(
        left.iter().all(|c| c.image_cache_id != id),
        "the cloud cache {id} is still there: {left:?}"
    );
    // Still running a few sync passes later, its group untouched.
    std::thread::sleep(Duration::from_secs(3));
    let pod = rig.pod("nginx-imagecache-id")?;
    ensure!(pod["status"]["phase"] == "Running", "{}", pod["status"]);
    let group = rig
        .group_of(pod["metadata"]["uid"].as_str().unwrap_or_default())?
        .context("the pod's group is gone")?;
    ensure!(
        group.status == eci_vk::eci::ContainerGroupStatus::Running,
        "{group:?}"
    );

    // A restarted node adopts the pod as it is: its cache is not looked up again (it would
    // now be "not found"), the pod is neither failed nor recreated.
    rig.kill_node();
    rig.spawn_node()?;
    rig.wait_node_ready()?;
    wait("the restarted node's first passes", POD, || {
        Ok((rig.logs().matches("pod cache synced").count() >= 2).then_some(()))
    })?;
    std::thread::sleep(Duration::from_secs(3));
    let after = rig.pod("nginx-imagecache-id")?;
    ensure!(after["status"]["phase"] == "Running", "{}", after["status"]);
    ensure!(
        after["metadata"]["uid"] == pod["metadata"]["uid"],
        "the pod was recreated"
    );
    ensure!(
        matched(&after) == Some(id.as_str()),
        "{:?}",
        matched(&after)
    );
    let events = rig.pod_events("nginx-imagecache-id")?;
    ensure!(
        !events.iter().any(|(r, _)| r == "ImageCacheNotFound"),
        "the adopted pod was resolved again: {events:?}"
    );
    Ok(())
}

/// A pull secret with a wrong password: the real agent is refused by the authenticated
/// registry, so the cache is `Failed` with a Warning event naming the image, and (the guide's
/// `expireDateTime`) expires 24 h after the failure — not at its 7 retention days. The
/// password shows nowhere.
fn wrong_password_fails_the_cache_naming_the_image(ground: &Ground, ns: &Namespace) -> Result<()> {
    let (user, password) = ground
        .auth_registry
        .credentials
        .clone()
        .context("the auth registry has credentials")?;
    let image = ground.auth_registry.reference("guide/private-app", "v1");
    let spec = ImageSpec::runnable("guide/private-app", "v1").with_filler(32 << 10);
    ground
        .runtime
        .block_on(build_and_push(&spec, &ground.auth_registry))?;
    let wrong = format!("{password}-but-wrong");
    rig_secret(
        ground,
        &ns.name,
        "wrong-password",
        &ground.auth_registry.host,
        &user,
        &wrong,
    )?;
    let rig = Rig::start_runc(ground, ns, 1)?;
    let cache = format!("wrong-password-{}", ns.name);
    rig.create(&format!(
        "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {cache}\n  labels:\n    {LABEL}: {}\nspec:\n  images:\n  - {image}\n  imagePullSecrets:\n  - {}:wrong-password\n  retentionDays: 7\n",
        ns.name, ns.name
    ))?;
    let object = rig.wait_cache(&cache, "Failed", |o| o["status"]["phase"] == "Failed")?;
    let status = &object["status"];
    let failure = status["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e["type"] == "Warning" && e["message"].as_str().is_some_and(|m| m.contains(&image))
        })
        .with_context(|| format!("no Warning event naming {image}: {status:#}"))?;
    let failed_at: jiff::Timestamp = failure["lastTimestamp"]
        .as_str()
        .context("the failure event has a lastTimestamp")?
        .parse()?;
    let expire: jiff::Timestamp = status["expireDateTime"]
        .as_str()
        .context("expireDateTime")?
        .parse()?;
    // Both times are written from one cloud answer, to the second.
    ensure!(
        (expire.duration_since(failed_at) - jiff::SignedDuration::from_hours(24)).abs()
            <= jiff::SignedDuration::from_secs(2),
        "expireDateTime {expire} is not 24 h after the failure at {failed_at}"
    );
    let shown = format!("{object}\n{}", rig.logs());
    ensure!(
        !shown.contains(&wrong),
        "the password reached the object or the log"
    );
    Ok(())
}

/// A `kubernetes.io/dockerconfigjson` Secret for `server`.
fn rig_secret(
    ground: &Ground,
    namespace: &str,
    name: &str,
    server: &str,
    user: &str,
    password: &str,
) -> Result<()> {
    let config = serde_json::json!({"auths": {server: {"username": user, "password": password}}});
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config.to_string()},
    });
    ground
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(secret.to_string())
        .ok()?;
    Ok(())
}

/// Two nodes of one cluster: the second runs with `--image-cache-controller=false`. The
/// first (holding the cluster's Lease) builds the cache; the second never reconciles, yet its
/// index knows the cache, so a pod bound to it starts from the cache.
fn a_node_without_the_controller_still_matches(ground: &Ground, ns: &Namespace) -> Result<()> {
    let image = push_image(ground, "guide/nginx", 16 << 10)?;
    let rig = Rig::start(ground, ns, 100)?;
    let reader = rig.extra_node("reader", &["--image-cache-controller=false"])?;
    let cache = format!("shared-{}", ns.name);
    rig.create_cache(&cache, &[&image])?;
    let id = rig.wait_ready(&cache)?;
    let holder = rig.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        &eci_vk::imagecache::lease_name(&ns.name, Some(&ns.name)),
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    // The Lease names the process (its leader-election identity; the rig's is the node
    // name with `-test`), not the node.
    ensure!(
        holder.trim() == format!("{}-test", rig.node_name),
        "lease holder {holder:?}"
    );
    let pod = POD_WITH_ID.replace(
        "nodeName: virtual-kubelet",
        &format!("nodeName: {}", reader.name),
    );
    rig.create(&adapt(&pod, &rig, &image, &id))?;
    started_from(&rig, "nginx-imagecache-id", &id)
        .with_context(|| format!("reader log:\n{}", rig::tail(&reader.logs(), 30)))?;
    let logs = reader.logs();
    ensure!(
        !logs.contains("leading the image cache controller")
            && !logs.contains("created cloud image cache"),
        "the reader reconciled:\n{logs}"
    );
    ensure!(rig.cloud_caches_for(&cache)?.len() == 1);
    Ok(())
}

/// The node process is killed while the cloud builds a cache; the restarted node carries on
/// with the same cloud cache (exactly one) until the object is Ready.
fn killed_node_while_creating_leaves_one_cache(ground: &Ground, ns: &Namespace) -> Result<()> {
    let image = push_image(ground, "guide/nginx", 16 << 10)?;
    let sidecar = push_image(ground, "guide/sidecar", 8 << 10)?;
    let mut rig = Rig::start(ground, ns, 4_000)?;
    let cache = format!("restart-{}", ns.name);
    rig.create_cache(&cache, &[&image, &sidecar])?;
    let object = rig.wait_cache(&cache, "building in the cloud", |o| {
        o["status"]["imageCacheId"].as_str().is_some()
            && matches!(
                o["status"]["phase"].as_str(),
                Some("Preparing" | "Creating")
            )
    })?;
    let id = object["status"]["imageCacheId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    rig.kill_node();
    rig.spawn_node()?;
    rig.wait_node_ready()?;
    let ready = rig.wait_ready(&cache)?;
    ensure!(
        ready == id,
        "the restarted node moved to another cache: {id} → {ready}"
    );
    let cloud: BTreeSet<String> = rig
        .cloud_caches_for(&cache)?
        .into_iter()
        .map(|c| c.image_cache_id)
        .collect();
    ensure!(
        cloud.len() == 1 && cloud.contains(&id),
        "cloud caches for {cache}: {cloud:?}"
    );
    let all = rig.describe_caches(Default::default())?;
    ensure!(
        all.len() == 1,
        "the emulator holds {} caches: {all:?}",
        all.len()
    );
    Ok(())
}

/// "Before you begin": a cluster without the CRD. The node still runs pods; a pod naming a
/// cache fails with `ImageCacheNotFound` instead of waiting forever; the log says why.
fn node_runs_pods_without_the_crd(ground: &Ground, ns: &Namespace) -> Result<()> {
    let image = push_image(ground, "guide/nginx", 16 << 10)?;
    let rig = Rig::start(ground, ns, 100)?;
    let plain = POD_WITH_ID
        .replace(
            &format!("    k8s.aliyun.com/eci-image-snapshot-id: {GUIDE_ID}\n"),
            "",
        )
        .replace("name: nginx-imagecache-id", "name: plain");
    rig.create(&adapt(&plain, &rig, &image, ""))?;
    rig.wait_running("plain")?;
    rig.create(&adapt(POD_WITH_ID, &rig, &image, GUIDE_ID))?;
    let pod = rig.wait_pod("nginx-imagecache-id", "Failed", |p| {
        p["status"]["phase"] == "Failed"
    })?;
    ensure!(
        pod["status"]["reason"] == "ImageCacheNotFound",
        "{}",
        pod["status"]
    );
    wait("the missing-CRD warning", SLOW, || {
        Ok(rig
            .logs()
            .contains("the ImageCache CRD is not installed")
            .then_some(()))
    })?;
    Ok(())
}
