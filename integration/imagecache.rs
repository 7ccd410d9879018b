//! The ImageCache controller end to end: a real API server, `eci-vk emulator` as the cloud (a
//! separate process, simulated runtime), and the reconciler running in this process as
//! `eci-vk run` will host it. The tests act as the user guide's user, with kubectl.
//!
//! Each test runs its own emulator and controller, restricted by a label to the test's own
//! objects (ImageCache is cluster-scoped, and tests run in parallel).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use eci_vk::{
    eci,
    imagecache::{self, Settings},
};
use serde_json::Value;

use crate::support::{
    Ground,
    cache_status::{ReadyStatus, ready_status},
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "imagecache::guide_sample_with_three_pull_secrets_is_ready",
            phase: Phase::WithCrd,
            run: guide_sample_with_three_pull_secrets_is_ready,
        },
        Test {
            name: "imagecache::missing_pull_secret_fails_with_an_event_then_recovers",
            phase: Phase::WithCrd,
            run: missing_pull_secret_fails_with_an_event_then_recovers,
        },
        Test {
            name: "imagecache::malformed_pull_secret_fails_naming_it",
            phase: Phase::WithCrd,
            run: malformed_pull_secret_fails_naming_it,
        },
        Test {
            name: "imagecache::changed_images_update_the_cloud_cache",
            phase: Phase::WithCrd,
            run: changed_images_update_the_cloud_cache,
        },
        Test {
            name: "imagecache::unpullable_image_fails_and_expires_in_a_day",
            phase: Phase::WithCrd,
            run: unpullable_image_fails_and_expires_in_a_day,
        },
        Test {
            name: "imagecache::killed_controller_restarts_onto_one_cloud_cache",
            phase: Phase::WithCrd,
            run: killed_controller_restarts_onto_one_cloud_cache,
        },
        Test {
            name: "imagecache::existing_cloud_cache_is_adopted",
            phase: Phase::WithCrd,
            run: existing_cloud_cache_is_adopted,
        },
        Test {
            name: "imagecache::a_cache_tagged_by_the_previous_release_is_adopted_and_deleted",
            phase: Phase::WithCrd,
            run: a_cache_tagged_by_the_previous_release_is_adopted_and_deleted,
        },
        Test {
            name: "imagecache::two_replicas_take_turns_through_a_lease",
            phase: Phase::WithCrd,
            run: two_replicas_take_turns_through_a_lease,
        },
        Test {
            name: "imagecache::a_long_name_still_gets_one_cache",
            phase: Phase::WithCrd,
            run: a_long_name_still_gets_one_cache,
        },
        Test {
            name: "imagecache::kubectl_delete_removes_the_cloud_cache",
            phase: Phase::WithCrd,
            run: kubectl_delete_removes_the_cloud_cache,
        },
        Test {
            name: "imagecache::a_cache_over_the_quota_waits_out_its_backoff",
            phase: Phase::WithCrd,
            run: a_cache_over_the_quota_waits_out_its_backoff,
        },
    ]
}

/// The test's objects carry the class label with the namespace as class: nodes of other
/// suites (no class) never take them.
const LABEL: &str = imagecache::LABEL_CLASS;
const TIMEOUT: Duration = Duration::from_secs(60);
const LEASE: &str = "imagecache-controller";

/// An emulator, and the reconciler running against it and the ground's cluster. Dropping it
/// deletes the test's ImageCaches (while the controller still runs to release them), then
/// stops the controller and the emulator.
struct Rig<'g> {
    ground: &'g Ground,
    namespace: String,
    eci: eci::Client,
    kube: kube::Client,
    emulator: EmulatorProcess,
    replicas: Vec<Replica>,
    /// `CreateImageCache` attempts the controller's client made.
    creates: Arc<AtomicU64>,
}

/// One running reconciler, as one `eci-vk run` process would host it.
struct Replica {
    identity: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), imagecache::RunError>>,
}

impl<'g> Rig<'g> {
    fn start(ground: &'g Ground, namespace: &Namespace) -> Result<Self> {
        Self::start_with_pull_ms(ground, namespace, 100)
    }

    /// Starts the emulator (pulling each image in `pull_ms`) and the controller.
    fn start_with_pull_ms(ground: &'g Ground, namespace: &Namespace, pull_ms: u64) -> Result<Self> {
        Self::start_with(ground, namespace, pull_ms, &[])
    }

    /// As [`Rig::start_with_pull_ms`], with more flags for the emulator.
    fn start_with(
        ground: &'g Ground,
        namespace: &Namespace,
        pull_ms: u64,
        emulator_flags: &[&str],
    ) -> Result<Self> {
        let pull_ms = pull_ms.to_string();
        let mut flags = vec![
            "--no-throttle",
            "--sim-pull-ms",
            &pull_ms,
            "--sim-snapshot-ms",
            "50",
            "--sim-start-ms",
            "50",
        ];
        flags.extend_from_slice(emulator_flags);
        let emulator = EmulatorProcess::start(ground.eci_vk(), &flags)?;
        let creates = Arc::new(AtomicU64::new(0));
        let mut config = emulator.client_config();
        let counted = creates.clone();
        config.observer = Some(Arc::new(move |attempt: &eci::AttemptRecord<'_>| {
            if attempt.action == "CreateImageCache" {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let eci = eci::Client::new(config).context("ECI client")?;
        let kubeconfig = ground.kubeconfig.clone();
        let kube = ground.runtime.block_on(async move {
            let raw = kube::config::Kubeconfig::read_from(&kubeconfig)?;
            let config = kube::Config::from_custom_kubeconfig(
                raw,
                &kube::config::KubeConfigOptions::default(),
            )
            .await?;
            anyhow::Ok(kube::Client::try_from(config)?)
        })?;
        let mut rig = Self {
            ground,
            namespace: namespace.name.clone(),
            eci,
            kube,
            emulator,
            replicas: Vec::new(),
            creates,
        };
        rig.start_controller();
        Ok(rig)
    }

    /// Starts the reconciler, as `eci-vk run` would.
    fn start_controller(&mut self) {
        self.start_replica("only", false);
    }

    /// Starts a reconciler named `identity`; with `leased`, it reconciles only while it holds
    /// the test's Lease (3 s long, renew deadline 2 s, attempts every 500 ms).
    fn start_replica(&mut self, identity: &str, leased: bool) {
        let settings = Settings {
            cluster_name: "integration".into(),
            label_selector: Some(format!("{LABEL}={}", self.namespace)),
            poll_interval: Duration::from_millis(250),
            resync_interval: Duration::from_secs(5),
            error_backoff: (Duration::from_millis(500), Duration::from_secs(4)),
            leader_lease: leased.then(|| eci_vk::election::ElectionConfig {
                lease_duration: Duration::from_secs(3),
                renew_deadline: Duration::from_secs(2),
                retry_period: Duration::from_millis(500),
                ..eci_vk::election::ElectionConfig::new(&self.namespace, LEASE, identity)
            }),
            ..Settings::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = self.ground.runtime.spawn(imagecache::run(
            self.kube.clone(),
            self.eci.clone(),
            settings,
            async move {
                let _ = stopped.await;
            },
        ));
        self.replicas.push(Replica {
            identity: identity.to_owned(),
            stop,
            task,
        });
    }

    /// Stops every reconciler the hard way, as a killed process would: its task is aborted
    /// wherever it is.
    fn kill_controller(&mut self) {
        for replica in std::mem::take(&mut self.replicas) {
            self.kill(replica);
        }
    }

    /// Kills the reconciler named `identity`.
    fn kill_replica(&mut self, identity: &str) {
        if let Some(i) = self.replicas.iter().position(|r| r.identity == identity) {
            let replica = self.replicas.remove(i);
            self.kill(replica);
        }
    }

    fn kill(&self, replica: Replica) {
        replica.task.abort();
        let _ = self.ground.runtime.block_on(replica.task);
    }

    /// The Lease's holder.
    fn lease_holder(&self) -> Result<String> {
        Ok(self
            .ground
            .kubectl()
            .args([
                "get",
                "lease",
                LEASE,
                "-n",
                &self.namespace,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .ok()?
            .trim()
            .to_owned())
    }

    /// Creates an ImageCache named `name` from a YAML body of its `spec` (indented 2 spaces).
    fn create(&self, name: &str, spec: &str) -> Result<()> {
        let yaml = format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {name}\n  labels:\n    {LABEL}: {}\nspec:\n{spec}",
            self.namespace
        );
        self.ground
            .kubectl()
            .args(["create", "-f", "-"])
            .stdin(yaml)
            .ok()?;
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Value> {
        let out = self
            .ground
            .kubectl()
            .args(["get", "imagecache", name, "-o", "json"])
            .ok()?;
        Ok(serde_json::from_str(&out)?)
    }

    /// Waits until `test` holds for the object, returning it.
    fn wait_for(&self, name: &str, what: &str, test: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let object = self.get(name)?;
            if test(&object) {
                return Ok(object);
            }
            if Instant::now() > deadline {
                bail!(
                    "imagecache {name} never became {what}: {:#}",
                    object["status"]
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_phase(&self, name: &str, phase: &str) -> Result<Value> {
        self.wait_for(name, phase, |o| o["status"]["phase"] == phase)
    }

    fn describe(&self, request: eci::DescribeImageCaches) -> Result<Vec<eci::ImageCache>> {
        let eci = self.eci.clone();
        self.ground
            .runtime
            .block_on(async move { eci.describe_all_image_caches(&request).await })
            .context("DescribeImageCaches")
    }

    fn cloud_cache(&self, id: &str) -> Result<Option<eci::ImageCache>> {
        Ok(self
            .describe(eci::DescribeImageCaches {
                image_cache_id: Some(id.to_owned()),
                ..eci::DescribeImageCaches::default()
            })?
            .into_iter()
            .find(|c| c.image_cache_id == id))
    }

    /// A cloud cache of busybox named `name` with `tags`, made straight through the OpenAPI (as
    /// another process or an earlier release would have made it); its id.
    fn busybox_cloud_cache(&self, name: &str, tags: Vec<eci::Tag>) -> Result<String> {
        let eci = self.eci.clone();
        let request = eci::CreateImageCache {
            image_cache_name: name.to_owned(),
            images: vec!["busybox:latest".into()],
            image_cache_size: Some(20),
            tags,
            ..eci::CreateImageCache::default()
        };
        Ok(self
            .ground
            .runtime
            .block_on(async move { eci.create_image_cache(&request).await })?
            .image_cache_id)
    }

    fn caches_tagged_for(&self, name: &str) -> Result<Vec<eci::ImageCache>> {
        self.describe(eci::DescribeImageCaches {
            tags: vec![eci::Tag::new(
                imagecache::TAG_OBJECT,
                imagecache::object_tag_value(name),
            )],
            ..eci::DescribeImageCaches::default()
        })
    }

    /// Kubernetes Events about the ImageCache `name` (cluster-scoped objects get theirs in
    /// `default`), as `(reason, message)`.
    fn events(&self, name: &str) -> Result<Vec<(String, String)>> {
        let out = self
            .ground
            .kubectl()
            .args([
                "get",
                "events",
                "-n",
                "default",
                "--field-selector",
                &format!("involvedObject.kind=ImageCache,involvedObject.name={name}"),
                "-o",
                "json",
            ])
            .ok()?;
        let list: Value = serde_json::from_str(&out)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_owned(),
                    e["message"]
                        .as_str()
                        .or(e["note"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect())
    }
}

impl Drop for Rig<'_> {
    fn drop(&mut self) {
        let selector = format!("{LABEL}={}", self.namespace);
        self.ground.delete_image_caches(&selector);
        for replica in std::mem::take(&mut self.replicas) {
            let _ = replica.stop.send(());
            let _ = self.ground.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(20), replica.task).await
            });
        }
        self.ground.force_remove_image_caches(&selector);
        let _ = &self.emulator;
    }
}

fn docker_config_json(server: &str, user: &str, password: &str) -> String {
    serde_json::json!({"auths": {server: {"username": user, "password": password}}}).to_string()
}

/// The guide's "Create an image cache", with its three pull secrets created first: two
/// `kubernetes.io/dockerconfigjson` Secrets in the test's namespace (the guide's `default`)
/// and a legacy `kubernetes.io/dockercfg` one in `kube-system`.
fn guide_sample_with_three_pull_secrets_is_ready(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let (user, password) = ground
        .auth_registry
        .credentials
        .clone()
        .context("the auth registry has credentials")?;
    let private = ground.auth_registry.reference("private/app", "v1");
    let secret3 = format!("{}-secret3", ns.name);
    ground
        .kubectl()
        .args([
            "create",
            "secret",
            "docker-registry",
            "secret1",
            "-n",
            &ns.name,
            &format!("--docker-server={}", ground.auth_registry.host),
            &format!("--docker-username={user}"),
            &format!("--docker-password={password}"),
        ])
        .ok()?;
    let secret2 = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "secret2", "namespace": ns.name},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": docker_config_json("https://index.docker.io/v1/", "hub-user", "hub-password")},
    });
    let legacy = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret3, "namespace": "kube-system"},
        "type": "kubernetes.io/dockercfg",
        "stringData": {".dockercfg": serde_json::json!({"registry.example.com": {"username": "u", "password": "p", "email": "u@example.com"}}).to_string()},
    });
    for secret in [secret2, legacy] {
        ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(secret.to_string())
            .ok()?;
    }
    let name = format!("imagecache-sample-{}", ns.name);
    let result = (|| {
        rig.create(
            &name,
            &format!(
                "  images:\n  - centos:latest\n  - busybox:latest\n  - {private}\n  imagePullSecrets:\n  - {ns}:secret1\n  - {ns}:secret2\n  - kube-system:{secret3}\n  imageCacheSize: 25\n  retentionDays: 7\n",
                ns = ns.name
            ),
        )?;
        rig.wait_phase(&name, "Ready")?;

        // kubectl get imagecache: NAME AGE CACHEID PHASE PROGRESS.
        let table = ground.kubectl().args(["get", "imagecache", &name]).ok()?;
        let mut lines = table.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure!(
            header == ["NAME", "AGE", "CACHEID", "PHASE", "PROGRESS"],
            "{table}"
        );
        let row: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        ensure!(row.len() == 5, "{table}");
        ensure!(
            row[0] == name && row[2].starts_with("imc-") && row[2].len() == 24,
            "{table}"
        );
        ensure!(row[3] == "Ready" && row[4] == "100%", "{table}");
        let id = row[2].to_owned();

        // kubectl get -o yaml: the guide's status fields.
        let yaml = ground
            .kubectl()
            .args(["get", "imagecache", &name, "-o", "yaml"])
            .ok()?;
        let ReadyStatus { status, messages } = ready_status(&yaml)?;
        ensure!(
            status["imageCacheId"].as_str() == Some(id.as_str()),
            "{yaml}"
        );
        ensure!(status["observedGeneration"].as_i64() == Some(1), "{yaml}");
        ensure!(
            messages
                == [
                    "Success pull image centos:latest".to_owned(),
                    "Success pull image busybox:latest".to_owned(),
                    format!("Success pull image {private}"),
                ],
            "one event per image expected:\n{yaml}"
        );
        ensure!(!yaml.contains(&password), "a secret reached the object");
        ground
            .kubectl()
            .args([
                "wait",
                "--for=condition=Ready",
                &format!("imagecache/{name}"),
                "--timeout=10s",
            ])
            .ok()?;

        // The cloud has exactly this one cache, tagged for the object, sized as asked.
        let tagged = rig.caches_tagged_for(&name)?;
        ensure!(tagged.len() == 1, "{tagged:?}");
        let cache = &tagged[0];
        ensure!(
            cache.image_cache_id == id && cache.image_cache_size == 25,
            "{cache:?}"
        );
        ensure!(
            cache
                .tags
                .iter()
                .any(|t| t.key == imagecache::TAG_CLUSTER && t.value == "integration"),
            "{cache:?}"
        );
        Ok(())
    })();
    let _ = ground
        .kubectl()
        .args([
            "delete",
            "secret",
            &secret3,
            "-n",
            "kube-system",
            "--ignore-not-found",
        ])
        .run();
    result
}

fn missing_pull_secret_fails_with_an_event_then_recovers(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("missing-secret-{}", ns.name);
    rig.create(
        &name,
        &format!(
            "  images:\n  - {}\n  imagePullSecrets:\n  - {}:absent\n",
            ground.auth_registry.reference("private/app", "v1"),
            ns.name
        ),
    )?;
    let object = rig.wait_phase(&name, "Failed")?;
    let secret = format!("{}/absent", ns.name);
    let condition = &object["status"]["conditions"][0];
    ensure!(
        condition["status"] == "False"
            && condition["message"]
                .as_str()
                .is_some_and(|m| m.contains(&secret)),
        "{:#}",
        object["status"]
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let events = rig.events(&name)?;
        if events
            .iter()
            .any(|(reason, message)| reason == "PullSecretFailed" && message.contains(&secret))
        {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "no PullSecretFailed event naming {secret}: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ensure!(
        rig.caches_tagged_for(&name)?.is_empty(),
        "nothing is created in the cloud without the secret"
    );

    // The controller keeps retrying (with backoff): once the Secret exists, the cache builds.
    let (user, password) = ground
        .auth_registry
        .credentials
        .clone()
        .context("the auth registry has credentials")?;
    ground
        .kubectl()
        .args([
            "create",
            "secret",
            "docker-registry",
            "absent",
            "-n",
            &ns.name,
            &format!("--docker-server={}", ground.auth_registry.host),
            &format!("--docker-username={user}"),
            &format!("--docker-password={password}"),
        ])
        .ok()?;
    let object = rig.wait_phase(&name, "Ready")?;
    ensure!(
        object["status"]["imageCacheId"]
            .as_str()
            .is_some_and(|id| id.starts_with("imc-")),
        "{:#}",
        object["status"]
    );
    ensure!(rig.caches_tagged_for(&name)?.len() == 1);
    Ok(())
}

fn changed_images_update_the_cloud_cache(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("update-{}", ns.name);
    rig.create(&name, "  images:\n  - busybox:latest\n")?;
    let object = rig.wait_phase(&name, "Ready")?;
    let id = object["status"]["imageCacheId"]
        .as_str()
        .context("imageCacheId")?
        .to_owned();
    ground
        .kubectl()
        .args([
            "patch",
            "imagecache",
            &name,
            "--type=merge",
            "-p",
            r#"{"spec":{"images":["busybox:latest","nginx:1.25"]}}"#,
        ])
        .ok()?;
    let object = rig.wait_for(&name, "Ready at generation 2", |o| {
        o["status"]["phase"] == "Ready" && o["status"]["observedGeneration"] == 2
    })?;
    ensure!(
        object["status"]["imageCacheId"] == id.as_str(),
        "the same cache is updated"
    );
    ensure!(
        object["status"]["events"].as_array().map(Vec::len) == Some(2),
        "{:#}",
        object["status"]
    );
    let cache = rig.cloud_cache(&id)?.context("the cloud cache")?;
    ensure!(
        cache.images == ["busybox:latest", "nginx:1.25"],
        "{cache:?}"
    );
    ensure!(rig.caches_tagged_for(&name)?.len() == 1);
    Ok(())
}

fn kubectl_delete_removes_the_cloud_cache(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("imagecache-secrets-test-{}", ns.name);
    rig.create(&name, "  images:\n  - busybox:latest\n  - nginx\n")?;
    let object = rig.wait_phase(&name, "Ready")?;
    ensure!(
        object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == imagecache::FINALIZER)),
        "{:#}",
        object["metadata"]
    );
    let id = object["status"]["imageCacheId"]
        .as_str()
        .context("imageCacheId")?
        .to_owned();
    ensure!(rig.cloud_cache(&id)?.is_some());
    let out = ground
        .kubectl()
        .args(["delete", &format!("imagecache/{name}"), "--timeout=30s"])
        .ok()?;
    ensure!(out.contains("deleted"), "{out}");
    let stderr = ground
        .kubectl()
        .args(["get", &format!("imagecache/{name}")])
        .fails()?;
    ensure!(stderr.contains("NotFound"), "{stderr}");
    ensure!(
        rig.cloud_cache(&id)?.is_none(),
        "DeleteImageCache was not called for {id}"
    );
    Ok(())
}

/// The cloud cannot pull an image (the simulated registry does not have it): the object is
/// Failed, its status event names the image, and it expires 24 h after the failure.
fn unpullable_image_fails_and_expires_in_a_day(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("unpullable-{}", ns.name);
    let image = ground.registry.reference("eci-test/does-not-exist", "v1");
    rig.create(
        &name,
        &format!("  images:\n  - busybox:latest\n  - {image}\n  retentionDays: 7\n"),
    )?;
    let object = rig.wait_phase(&name, "Failed")?;
    let status = &object["status"];
    let time = |key: &str| -> Result<jiff::Timestamp> {
        status[key]
            .as_str()
            .with_context(|| format!("status.{key} missing: {status:#}"))?
            .parse()
            .with_context(|| format!("status.{key} is not a time"))
    };
    let events = status["events"].as_array().context("status.events")?;
    let failure = events
        .iter()
        .find(|e| {
            e["type"] == "Warning" && e["message"].as_str().is_some_and(|m| m.contains(&image))
        })
        .with_context(|| format!("no Warning event naming {image}: {status:#}"))?;
    let failed_at: jiff::Timestamp = failure["lastTimestamp"]
        .as_str()
        .context("lastTimestamp")?
        .parse()?;
    let expire = time("expireDateTime")?;
    let day = jiff::SignedDuration::from_hours(24);
    ensure!(
        (expire.duration_since(failed_at) - day).abs() <= jiff::SignedDuration::from_secs(2),
        "expireDateTime {expire} is not 24 h after the failure at {failed_at}"
    );
    ensure!(status["conditions"][0]["status"] == "False", "{status:#}");
    let deadline = Instant::now() + TIMEOUT;
    while !rig
        .events(&name)?
        .iter()
        .any(|(reason, message)| reason == "Failed" && message.contains(&image))
    {
        ensure!(
            Instant::now() < deadline,
            "no Failed event naming {image}: {:?}",
            rig.events(&name)?
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A failed build is not retried in a loop: still one cloud cache.
    std::thread::sleep(Duration::from_secs(2));
    ensure!(rig.caches_tagged_for(&name)?.len() == 1);
    Ok(())
}

/// The node process dies while the cloud builds the cache; the next one carries on with the
/// same cloud cache instead of making a second.
fn killed_controller_restarts_onto_one_cloud_cache(ground: &Ground, ns: &Namespace) -> Result<()> {
    let mut rig = Rig::start_with_pull_ms(ground, ns, 2_000)?;
    let name = format!("restart-{}", ns.name);
    rig.create(&name, "  images:\n  - busybox:latest\n  - nginx:1.25\n")?;
    let building = rig.wait_for(&name, "building", |o| {
        matches!(
            o["status"]["phase"].as_str(),
            Some("Preparing" | "Creating")
        )
    })?;
    rig.kill_controller();
    let id = building["status"]["imageCacheId"]
        .as_str()
        .context("imageCacheId")?
        .to_owned();
    ensure!(rig.caches_tagged_for(&name)?.len() == 1);
    rig.start_controller();
    let ready = rig.wait_phase(&name, "Ready")?;
    ensure!(
        ready["status"]["imageCacheId"] == id.as_str(),
        "{:#}",
        ready["status"]
    );
    let tagged = rig.caches_tagged_for(&name)?;
    ensure!(tagged.len() == 1, "{tagged:?}");
    Ok(())
}

/// A cloud cache already tagged for the object (e.g. made before a crash lost the status, or
/// before a backup restore) is adopted, not duplicated.
fn existing_cloud_cache_is_adopted(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("adopt-{}", ns.name);
    let existing = rig.busybox_cloud_cache(
        &name,
        vec![
            eci::Tag::new(imagecache::TAG_CLUSTER, "integration"),
            eci::Tag::new(imagecache::TAG_OBJECT, &name),
        ],
    )?;
    rig.create(&name, "  images:\n  - busybox\n")?;
    let ready = rig.wait_phase(&name, "Ready")?;
    ensure!(
        ready["status"]["imageCacheId"] == existing.as_str(),
        "{:#}",
        ready["status"]
    );
    let tagged = rig.caches_tagged_for(&name)?;
    ensure!(tagged.len() == 1, "{tagged:?}");
    Ok(())
}

/// An upgrade from the release that spelt cache tags `eci-vk.cluster`/`eci-vk.imagecache`/
/// `eci-vk.uid`: its cloud cache is found by those tags and adopted (no second cache under the
/// new spelling), and `kubectl delete` still removes it.
fn a_cache_tagged_by_the_previous_release_is_adopted_and_deleted(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("legacy-{}", ns.name);
    let existing = rig.busybox_cloud_cache(
        &name,
        vec![
            eci::Tag::new(eci::tag::LEGACY_CACHE_CLUSTER, "integration"),
            eci::Tag::new(
                eci::tag::LEGACY_CACHE_OBJECT,
                imagecache::object_tag_value(&name),
            ),
        ],
    )?;
    rig.create(&name, "  images:\n  - busybox\n")?;
    let ready = rig.wait_phase(&name, "Ready")?;
    ensure!(
        ready["status"]["imageCacheId"] == existing.as_str(),
        "the old release's cache {existing} was not adopted: {:#}",
        ready["status"]
    );
    let new_spelling = rig.caches_tagged_for(&name)?;
    ensure!(
        new_spelling.is_empty(),
        "a second cache was made: {new_spelling:?}"
    );
    let out = ground
        .kubectl()
        .args(["delete", &format!("imagecache/{name}"), "--timeout=30s"])
        .ok()?;
    ensure!(out.contains("deleted"), "{out}");
    ensure!(
        rig.cloud_cache(&existing)?.is_none(),
        "DeleteImageCache was not called for the adopted {existing}"
    );
    Ok(())
}

/// Two node processes in one cluster: only the Lease holder reconciles, each object gets one
/// cloud cache, and when the holder dies the other takes over.
fn two_replicas_take_turns_through_a_lease(ground: &Ground, ns: &Namespace) -> Result<()> {
    let mut rig = Rig::start(ground, ns)?;
    rig.kill_controller();
    rig.start_replica("replica-a", true);
    rig.start_replica("replica-b", true);
    let first = format!("leased-1-{}", ns.name);
    rig.create(&first, "  images:\n  - busybox:latest\n")?;
    rig.wait_phase(&first, "Ready")?;
    ensure!(rig.caches_tagged_for(&first)?.len() == 1);
    let holder = rig.lease_holder()?;
    let other = match holder.as_str() {
        "replica-a" => "replica-b",
        "replica-b" => "replica-a",
        _ => bail!("unexpected lease holder {holder:?}"),
    };
    rig.kill_replica(&holder);
    let second = format!("leased-2-{}", ns.name);
    rig.create(&second, "  images:\n  - nginx:1.25\n")?;
    rig.wait_phase(&second, "Ready")?;
    ensure!(rig.lease_holder()? == other, "the survivor holds the lease");
    ensure!(rig.caches_tagged_for(&second)?.len() == 1);
    ensure!(rig.caches_tagged_for(&first)?.len() == 1);
    Ok(())
}

/// Object names may be 253 characters; ECI tag values only 128. The object still gets exactly
/// one cache, found again by its (shortened) tag, and deleting it removes the cache.
fn a_long_name_still_gets_one_cache(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    let name = format!("{}.{}.{}", "a".repeat(60), "b".repeat(60), ns.name);
    ensure!(name.len() > 128 && name.len() <= 253, "{}", name.len());
    rig.create(&name, "  images:\n  - busybox:latest\n")?;
    let ready = rig.wait_phase(&name, "Ready")?;
    let id = ready["status"]["imageCacheId"]
        .as_str()
        .context("imageCacheId")?
        .to_owned();
    let tagged = rig.caches_tagged_for(&name)?;
    ensure!(
        tagged.len() == 1 && tagged[0].image_cache_id == id,
        "{tagged:?}"
    );
    ground
        .kubectl()
        .args(["delete", "imagecache", &name, "--timeout=30s"])
        .ok()?;
    ensure!(rig.cloud_cache(&id)?.is_none());
    Ok(())
}

/// A pull secret of the wrong type, and one whose config is not JSON: Failed, with the Secret
/// named and none of its content shown.
fn malformed_pull_secret_fails_naming_it(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, ns)?;
    for (secret, kind, key, content) in [
        ("opaque", "Opaque", "password", "hunter2-opaque"),
        (
            "garbled",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            r#"{"auths":{"docker.io":{"auth":"hunter2-garbled!!"}}}"#,
        ),
    ] {
        let manifest = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret, "namespace": ns.name},
            "type": kind,
            "stringData": {key: content},
        });
        ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(manifest.to_string())
            .ok()?;
        let name = format!("{secret}-{}", ns.name);
        rig.create(
            &name,
            &format!(
                "  images:\n  - busybox:latest\n  imagePullSecrets:\n  - {}:{secret}\n",
                ns.name
            ),
        )?;
        let object = rig.wait_phase(&name, "Failed")?;
        let status = object["status"].to_string();
        ensure!(
            status.contains(&format!("{}/{secret}", ns.name)),
            "{status}"
        );
        ensure!(status.contains("malformed"), "{status}");
        ensure!(
            !status.contains("hunter2"),
            "secret data in the status: {status}"
        );
        let events = rig.events(&name)?;
        ensure!(
            events
                .iter()
                .all(|(_, message)| !message.contains("hunter2")),
            "secret data in an event: {events:?}"
        );
        ensure!(rig.caches_tagged_for(&name)?.is_empty());
    }
    Ok(())
}

/// The account's image-cache quota is used up: the cloud refuses the second cache, the object
/// shows it, and the controller retries on its backoff, not in a loop. (It once retried at
/// once each time its own status write came back as a watch event: 1,500 refused creates a
/// minute, which also starved the polls of the caches the cloud was building.) Once a place is
/// free, the refused cache is made.
fn a_cache_over_the_quota_waits_out_its_backoff(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start_with(ground, ns, 100, &["--image-cache-quota", "1"])?;
    let (first, second) = (format!("first-{}", ns.name), format!("second-{}", ns.name));
    let spec = "  images:\n  - busybox:latest\n";
    rig.create(&first, spec)?;
    rig.wait_phase(&first, "Ready")?;
    rig.create(&second, spec)?;
    let refused = rig.wait_phase(&second, "Failed")?;
    ensure!(
        refused["status"]
            .to_string()
            .contains("QuotaExceed.ImageCache"),
        "the status does not name the cloud's answer: {:#}",
        refused["status"]
    );
    // The rig's backoff starts at 0.5 s and doubles: 0.5 + 1 + 2 s of waits hold at most three
    // retries in the next three seconds.
    let before = rig.creates.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    let retries = rig.creates.load(Ordering::Relaxed) - before;
    ensure!(
        retries <= 4,
        "{retries} CreateImageCache retries in 3 s: the refused cache is retried in a loop"
    );
    rig.ground
        .kubectl()
        .args([
            "delete",
            "imagecache",
            &first,
            "--wait=true",
            "--timeout=30s",
        ])
        .ok()?;
    rig.wait_phase(&second, "Ready")?;
    Ok(())
}
