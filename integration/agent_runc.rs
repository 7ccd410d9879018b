//! The real agent through the emulator's OpenAPI: image caches pulled from the ground's
//! registries into snapshots on disk, container groups run by runc, and what a group started
//! from a cache pulls (nothing) against what it pulls without one (every byte), read from the
//! agent's counters.
//!
//! Each test runs its own `eci-vk emulator --runtime runc` with its own data directory, bridge
//! and pod range, so tests run side by side; dropping the emulator stops it, and its agent
//! removes every container, mount and namespace it made.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use eci_vk::eci::{
    Client, Container, ContainerGroup, ContainerGroupStatus, CreateContainerGroup,
    CreateImageCache, DeleteContainerGroup, DeleteImageCache, DescribeContainerGroupMetric,
    DescribeContainerGroups, DescribeContainerLog, DescribeImageCaches, ExecContainerCommand,
    ImageCache, ImageCacheStatus, ImageRegistryCredential,
};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    image::{self, BuiltImage, ImageSpec},
    wait::eventually,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "agent_runc::cache_builds_a_snapshot_with_rising_progress",
            phase: Phase::WithCrd,
            run: cache_builds_a_snapshot_with_rising_progress,
        },
        Test {
            name: "agent_runc::private_registry_cache_needs_the_right_password",
            phase: Phase::WithCrd,
            run: private_registry_cache_needs_the_right_password,
        },
        Test {
            name: "agent_runc::group_runs_logs_execs_reports_and_leaves_nothing",
            phase: Phase::WithCrd,
            run: group_runs_logs_execs_reports_and_leaves_nothing,
        },
        Test {
            name: "agent_runc::group_from_a_cache_pulls_nothing",
            phase: Phase::WithCrd,
            run: group_from_a_cache_pulls_nothing,
        },
        Test {
            name: "agent_runc::containers_share_localhost_and_a_failed_init_fails_the_group",
            phase: Phase::WithCrd,
            run: containers_share_localhost_and_a_failed_init_fails_the_group,
        },
        Test {
            name: "agent_runc::standalone_agent_serves_an_emulator",
            phase: Phase::WithCrd,
            run: standalone_agent_serves_an_emulator,
        },
        Test {
            name: "agent_runc::pull_policy_never_needs_the_image_present",
            phase: Phase::WithCrd,
            run: pull_policy_never_needs_the_image_present,
        },
        Test {
            name: "agent_runc::escaping_layers_are_refused",
            phase: Phase::WithCrd,
            run: escaping_layers_are_refused,
        },
    ]
}

const MIB: u64 = 1024 * 1024;

/// An emulator with the runc agent and our client for it.
struct RuncEmulator {
    process: EmulatorProcess,
    eci: Client,
}

impl RuncEmulator {
    fn start(ground: &Ground, extra: &[&str]) -> Result<Self> {
        let process = EmulatorProcess::start_runc(ground, extra)?;
        let eci = process.client()?;
        Ok(Self { process, eci })
    }

    fn agent_dir(&self) -> PathBuf {
        self.process.agent_dir().unwrap_or_default()
    }

    async fn counter(&self, series: &str) -> Result<u64> {
        self.process.agent_counter(series).await
    }

    async fn group_pulled(&self, group_id: &str) -> Result<u64> {
        self.process.group_pulled(group_id).await
    }

    async fn cache(&self, id: &str) -> Result<Option<ImageCache>> {
        let caches = self
            .eci
            .describe_image_caches(&DescribeImageCaches {
                image_cache_id: Some(id.to_owned()),
                ..Default::default()
            })
            .await?
            .image_caches;
        Ok(caches.into_iter().next())
    }

    async fn wait_cache(&self, id: &str, status: ImageCacheStatus) -> Result<ImageCache> {
        eventually(&format!("cache {id} to be {status:?}"), 120, || async {
            Ok(self.cache(id).await?.filter(|c| c.status == status))
        })
        .await
    }

    async fn group(&self, id: &str) -> Result<Option<ContainerGroup>> {
        let groups = self
            .eci
            .describe_container_groups(&DescribeContainerGroups {
                container_group_ids: vec![id.to_owned()],
                ..Default::default()
            })
            .await?
            .container_groups;
        Ok(groups.into_iter().next())
    }

    async fn wait_group(&self, id: &str, status: ContainerGroupStatus) -> Result<ContainerGroup> {
        eventually(&format!("group {id} to be {status:?}"), 120, || async {
            let group = self.group(id).await?;
            if let Some(g) = &group
                && g.status != status
                && matches!(
                    g.status,
                    ContainerGroupStatus::Failed | ContainerGroupStatus::Succeeded
                )
            {
                bail!("group {id} ended {:?}: {:?}", g.status, g.events);
            }
            Ok(group.filter(|g| g.status == status))
        })
        .await
    }

    async fn create_cache(&self, name: &str, images: &[String]) -> Result<String> {
        self.create_cache_with(name, images, vec![]).await
    }

    async fn create_cache_with(
        &self,
        name: &str,
        images: &[String],
        credentials: Vec<ImageRegistryCredential>,
    ) -> Result<String> {
        Ok(self
            .eci
            .create_image_cache(&CreateImageCache {
                image_cache_name: name.into(),
                images: images.to_vec(),
                image_cache_size: Some(20),
                image_registry_credentials: credentials,
                ..Default::default()
            })
            .await
            .context("CreateImageCache")?
            .image_cache_id)
    }

    async fn run_group(&self, request: CreateContainerGroup) -> Result<String> {
        Ok(self
            .eci
            .create_container_group(&request)
            .await
            .context("CreateContainerGroup")?
            .container_group_id)
    }
}

fn busybox(name: &str, image: &str, script: &str) -> Container {
    Container {
        name: name.into(),
        image: image.into(),
        commands: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

fn group(name: &str, containers: Vec<Container>) -> CreateContainerGroup {
    CreateContainerGroup {
        container_group_name: name.into(),
        containers,
        cpu: Some(1.0),
        memory: Some(2.0),
        ..Default::default()
    }
}

async fn push(ground: &Ground, spec: ImageSpec) -> Result<(String, BuiltImage)> {
    let built = image::build_and_push(&spec, &ground.registry).await?;
    Ok((
        ground.registry.reference(&spec.repository, &spec.tag),
        built,
    ))
}

fn cache_builds_a_snapshot_with_rising_progress(ground: &Ground, _: &Namespace) -> Result<()> {
    // A shaped link makes the 200 MiB build last a few seconds, so progress is observable.
    let emulator = RuncEmulator::start(ground, &["--registry-bandwidth", "64MiB/s"])?;
    ground.runtime.block_on(async {
        let (busybox, _) = push(ground, ImageSpec::runnable("agent-runc/busybox", "v1")).await?;
        let (filler, built) = push(
            ground,
            ImageSpec::runnable("agent-runc/filler-200m", "v1").with_filler(200 * MIB),
        )
        .await?;
        let id = emulator
            .create_cache("rising", &[busybox.clone(), filler.clone()])
            .await?;
        let seen = std::cell::RefCell::new(Vec::new());
        let ready = eventually("the cache to be Ready", 120, || async {
            let cache = emulator.cache(&id).await?.context("the cache vanished")?;
            ensure!(
                cache.status != ImageCacheStatus::Failed,
                "cache failed: {:?}",
                cache.events
            );
            seen.borrow_mut()
                .push((cache.status, cache.progress.clone()));
            Ok((cache.status == ImageCacheStatus::Ready).then_some(cache))
        })
        .await?;
        let seen = seen.into_inner();
        let midway = seen.iter().any(|(status, progress)| {
            *status == ImageCacheStatus::Creating && !matches!(progress.as_str(), "0%" | "100%")
        });
        ensure!(midway, "no progress between 0% and 100% was seen: {seen:?}");
        ensure!(ready.progress == "100%", "progress {}", ready.progress);
        for image in [&busybox, &filler] {
            let message = format!("Success pull image {image}");
            ensure!(
                ready.events.iter().any(|e| e.message == message),
                "no event {message:?}: {:?}",
                ready.events
            );
        }

        // The snapshot on disk holds both images unpacked.
        let snapshot = emulator
            .agent_dir()
            .join("snapshots")
            .join(&ready.snapshot_id);
        ensure!(
            !ready.snapshot_id.is_empty() && snapshot.is_dir(),
            "no snapshot directory {}",
            snapshot.display()
        );
        let busybox_bin = snapshot.join("images/0/rootfs/bin/busybox");
        ensure!(busybox_bin.is_file(), "{} missing", busybox_bin.display());
        let filler_file = snapshot.join("images/1/rootfs/filler/layer-0.bin");
        let size = std::fs::metadata(&filler_file)
            .with_context(|| format!("{} missing", filler_file.display()))?
            .len();
        ensure!(size == 200 * MIB, "filler is {size} bytes");
        let pulled = emulator
            .counter(&format!(
                "eci_agent_image_cache_pulled_bytes_total{{image_cache=\"{id}\"}}"
            ))
            .await?;
        ensure!(
            pulled >= built.pull_size(),
            "the cache pulled {pulled} bytes, the filler image alone is {}",
            built.pull_size()
        );

        // Deleting the cache frees its disk.
        emulator
            .eci
            .delete_image_cache(&DeleteImageCache {
                image_cache_id: id.clone(),
                ..Default::default()
            })
            .await?;
        eventually("the snapshot directory to go", 60, || async {
            Ok((!snapshot.exists()).then_some(()))
        })
        .await
    })
}

fn private_registry_cache_needs_the_right_password(ground: &Ground, _: &Namespace) -> Result<()> {
    let emulator = RuncEmulator::start(ground, &[])?;
    ground.runtime.block_on(async {
        let spec = ImageSpec::runnable("agent-runc/private", "v1");
        image::build_and_push(&spec, &ground.auth_registry).await?;
        let private = ground.auth_registry.reference(&spec.repository, &spec.tag);
        let (user, password) = ground
            .auth_registry
            .credentials
            .clone()
            .context("the authenticated registry has credentials")?;
        let credential = |password: &str| ImageRegistryCredential {
            server: ground.auth_registry.host.clone(),
            user_name: user.clone(),
            password: eci_vk::eci::SecretValue::new(password),
        };
        let good = emulator
            .create_cache_with(
                "private-good",
                std::slice::from_ref(&private),
                vec![credential(&password)],
            )
            .await?;
        emulator.wait_cache(&good, ImageCacheStatus::Ready).await?;

        let wrong = "not-the-password";
        let bad = emulator
            .create_cache_with(
                "private-bad",
                std::slice::from_ref(&private),
                vec![credential(wrong)],
            )
            .await?;
        let failed = emulator.wait_cache(&bad, ImageCacheStatus::Failed).await?;
        let messages: Vec<&str> = failed.events.iter().map(|e| e.message.as_str()).collect();
        ensure!(
            messages.iter().any(|m| m.contains(&private)),
            "no event names the image: {messages:?}"
        );
        ensure!(
            messages
                .iter()
                .any(|m| m.to_lowercase().contains("auth") || m.contains("denied")),
            "no event says the credentials were refused: {messages:?}"
        );
        let leaked = format!("{failed:?}");
        ensure!(
            !leaked.contains(wrong) && !leaked.contains(&password),
            "a password appears in the cache"
        );
        Ok(())
    })
}

fn group_runs_logs_execs_reports_and_leaves_nothing(ground: &Ground, _: &Namespace) -> Result<()> {
    let emulator = RuncEmulator::start(ground, &[])?;
    ground.runtime.block_on(async {
        let (busybox_image, _) =
            push(ground, ImageSpec::runnable("agent-runc/busybox", "v1")).await?;
        let id = emulator
            .run_group(group(
                "hello-runc",
                vec![busybox("main", &busybox_image, "echo hello; sleep 3600")],
            ))
            .await?;
        let running = emulator
            .wait_group(&id, ContainerGroupStatus::Running)
            .await?;
        let range = emulator.process.pod_cidr.clone().unwrap_or_default();
        let prefix = range.trim_end_matches("0/24");
        ensure!(
            running.intranet_ip.starts_with(prefix),
            "the group's IP {} is not from its pod range {range}",
            running.intranet_ip
        );
        let log = eventually("hello in the log", 30, || async {
            let log = emulator
                .eci
                .describe_container_log(&DescribeContainerLog {
                    container_group_id: id.clone(),
                    container_name: "main".into(),
                    ..Default::default()
                })
                .await?
                .content;
            Ok(log.contains("hello").then_some(log))
        })
        .await?;
        ensure!(log.trim_end().ends_with("hello"), "log {log:?}");

        let hostname = emulator
            .eci
            .exec_container_command(&ExecContainerCommand {
                container_group_id: id.clone(),
                container_name: "main".into(),
                command: vec!["cat".into(), "/etc/hostname".into()],
                sync: Some(true),
                ..Default::default()
            })
            .await?
            .sync_response;
        ensure!(hostname.trim() == "hello-runc", "hostname {hostname:?}");

        let memory = eventually("memory use in the metrics", 30, || async {
            let metric = emulator
                .eci
                .describe_container_group_metric(&DescribeContainerGroupMetric {
                    container_group_id: id.clone(),
                    ..Default::default()
                })
                .await?;
            Ok(metric
                .records
                .last()
                .map(|r| r.memory.usage_bytes)
                .filter(|&bytes| bytes > 0))
        })
        .await?;
        ensure!(memory < 2 << 30, "memory use {memory} above the limit");

        emulator
            .eci
            .delete_container_group(&DeleteContainerGroup {
                container_group_id: id.clone(),
                ..Default::default()
            })
            .await?;
        eventually("the group to go", 60, || async {
            Ok(emulator.group(&id).await?.is_none().then_some(()))
        })
        .await?;
        eventually(
            "no process, mount or namespace of the group",
            30,
            || async {
                Ok(leftovers(&emulator.agent_dir(), &id)?
                    .is_empty()
                    .then_some(()))
            },
        )
        .await
        .with_context(|| format!("left behind: {:?}", leftovers(&emulator.agent_dir(), &id)))
    })
}

/// What of group `id` is still on this host: processes whose command line or cgroup names it,
/// mounts under the agent's directory, network namespaces named for it.
fn leftovers(agent_dir: &Path, id: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cgroup.contains(id) || String::from_utf8_lossy(&cmdline).contains(id) {
            found.push(format!(
                "process {name}: {}",
                String::from_utf8_lossy(&cmdline)
            ));
        }
    }
    let root = agent_dir.to_string_lossy();
    for line in std::fs::read_to_string("/proc/self/mountinfo")?.lines() {
        if line.contains(root.as_ref()) && line.contains(id) {
            found.push(format!("mount {line}"));
        }
    }
    if let Ok(output) = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if line.contains(id) {
                found.push(format!("netns {line}"));
            }
        }
    }
    Ok(found)
}

fn group_from_a_cache_pulls_nothing(ground: &Ground, _: &Namespace) -> Result<()> {
    let emulator = RuncEmulator::start(ground, &[])?;
    ground.runtime.block_on(async {
        let (image, built) = push(
            ground,
            ImageSpec::runnable("agent-runc/app-20m", "v1").with_filler(20 * MIB),
        )
        .await?;
        let cache = emulator
            .create_cache("app", std::slice::from_ref(&image))
            .await?;
        emulator.wait_cache(&cache, ImageCacheStatus::Ready).await?;

        let mut from_cache = group("from-cache", vec![busybox("main", &image, "sleep 3600")]);
        from_cache.image_snapshot_id = Some(cache.clone());
        let cached = emulator.run_group(from_cache).await?;
        let without = emulator
            .run_group(group(
                "no-cache",
                vec![busybox("main", &image, "sleep 3600")],
            ))
            .await?;
        emulator
            .wait_group(&cached, ContainerGroupStatus::Running)
            .await?;
        emulator
            .wait_group(&without, ContainerGroupStatus::Running)
            .await?;
        let (cached_bytes, fresh_bytes) = (
            emulator.group_pulled(&cached).await?,
            emulator.group_pulled(&without).await?,
        );
        ensure!(
            cached_bytes == 0,
            "the group from the cache pulled {cached_bytes} bytes"
        );
        ensure!(
            fresh_bytes == built.pull_size(),
            "the group without a cache pulled {fresh_bytes} bytes, the image is {}",
            built.pull_size()
        );

        // A group keeps running from a cache deleted under it.
        emulator
            .eci
            .delete_image_cache(&DeleteImageCache {
                image_cache_id: cache.clone(),
                ..Default::default()
            })
            .await?;
        eventually("the cache to go", 60, || async {
            Ok(emulator.cache(&cache).await?.is_none().then_some(()))
        })
        .await?;
        let still = emulator
            .eci
            .exec_container_command(&ExecContainerCommand {
                container_group_id: cached.clone(),
                container_name: "main".into(),
                command: vec!["ls".into(), "/filler".into()],
                sync: Some(true),
                ..Default::default()
            })
            .await?
            .sync_response;
        ensure!(
            still.contains("layer-0.bin"),
            "the rootfs lost its files: {still:?}"
        );
        Ok(())
    })
}

fn containers_share_localhost_and_a_failed_init_fails_the_group(
    ground: &Ground,
    _: &Namespace,
) -> Result<()> {
    let emulator = RuncEmulator::start(ground, &[])?;
    ground.runtime.block_on(async {
        let (image, _) = push(ground, ImageSpec::runnable("agent-runc/busybox", "v1")).await?;
        let pair = emulator
            .run_group(group(
                "pair",
                vec![
                    busybox(
                        "server",
                        &image,
                        "mkdir -p /www && echo shared-localhost > /www/index.html && \
                         exec httpd -f -p 127.0.0.1:8080 -h /www",
                    ),
                    busybox(
                        "client",
                        &image,
                        "until wget -qO- http://127.0.0.1:8080/; do sleep 0.2; done; sleep 3600",
                    ),
                ],
            ))
            .await?;
        emulator
            .wait_group(&pair, ContainerGroupStatus::Running)
            .await?;
        eventually(
            "the client to reach the server on localhost",
            30,
            || async {
                let log = emulator
                    .eci
                    .describe_container_log(&DescribeContainerLog {
                        container_group_id: pair.clone(),
                        container_name: "client".into(),
                        ..Default::default()
                    })
                    .await?
                    .content;
                Ok(log.contains("shared-localhost").then_some(()))
            },
        )
        .await?;

        let mut failing = group("init-fails", vec![busybox("main", &image, "sleep 3600")]);
        failing.init_containers = vec![busybox("setup", &image, "echo setting up; exit 1")];
        failing.restart_policy = Some(eci_vk::eci::container_spec::RestartPolicy::Never);
        let id = emulator.run_group(failing).await?;
        let failed = eventually("the group to fail", 60, || async {
            Ok(emulator
                .group(&id)
                .await?
                .filter(|g| g.status == ContainerGroupStatus::Failed))
        })
        .await?;
        let init = failed
            .init_containers
            .first()
            .context("no init container in the status")?;
        let code = init.current_state.exit_code;
        ensure!(code == 1, "init container exit code {code}");
        let main_started = failed
            .containers
            .iter()
            .any(|c| c.current_state.state == "Running" || c.restart_count > 0);
        ensure!(!main_started, "the main container ran after a failed init");
        Ok(())
    })
}

/// Each escape of the audit (issue #20) on the real agent, through the registry: a layer
/// naming `..`, an absolute name or a hard link out of the root is refused; one writing through
/// a symlink to an absolute path, or through a relative one that climbs past the root, builds
/// with its file inside the snapshot (targets resolve as if the rootfs were `/`, as containerd
/// does); a Debian-style image whose later layer writes under `var/run -> /run` builds; a
/// layer the registry serves with other bytes than its digest is refused; and no other user
/// of the machine reaches the snapshots (their root is 0700).
fn escaping_layers_are_refused(ground: &Ground, _: &Namespace) -> Result<()> {
    let emulator = RuncEmulator::start(ground, &[])?;
    ground.runtime.block_on(async {
        for (name, tar) in [
            (
                "absolute",
                hostile_tar(&[Entry::File("/escaped-absolute", b"x")])?,
            ),
            (
                "hardlink",
                hostile_tar(&[Entry::Hardlink("passwd", "../../../../../../etc/passwd")])?,
            ),
        ] {
            let spec =
                ImageSpec::runnable(&format!("agent-runc/escape-{name}"), "v1").with_raw_layer(tar);
            let (image, _) = push(ground, spec).await?;
            let id = emulator
                .create_cache(name, std::slice::from_ref(&image))
                .await?;
            let failed = emulator.wait_cache(&id, ImageCacheStatus::Failed).await?;
            ensure!(
                failed.events.iter().any(|e| e.message.contains(&image)),
                "{name}: no event names the image: {:?}",
                failed.events
            );
        }
        let snapshots = emulator.agent_dir().join("snapshots");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&snapshots)?.permissions());
        ensure!(mode & 0o077 == 0, "the snapshot root is {mode:o}");

        let climbing =
            ImageSpec::runnable("agent-runc/escape-climb", "v1").with_raw_layer(hostile_tar(&[
                Entry::Symlink("up", "../../../../../../.."),
                Entry::File("up/clamped", b"x"),
            ])?);
        let debian = ImageSpec::runnable("agent-runc/debian-var-run", "v1")
            .with_raw_layer(hostile_tar(&[Entry::Symlink("var/run", "/run")])?)
            .with_raw_layer(hostile_tar(&[Entry::File("var/run/debian-x", b"x")])?);
        for (name, spec, inside) in [
            ("climb", climbing, "clamped"),
            ("debian", debian, "run/debian-x"),
        ] {
            let (image, _) = push(ground, spec).await?;
            let id = emulator
                .create_cache(name, std::slice::from_ref(&image))
                .await?;
            let ready = emulator.wait_cache(&id, ImageCacheStatus::Ready).await?;
            let file = snapshots
                .join(&ready.snapshot_id)
                .join("images/0/rootfs")
                .join(inside);
            ensure!(file.is_file(), "{name}: {} missing", file.display());
        }

        // The registry serves what is on its disk without checking it: bytes changed there
        // reach the agent under the old digest.
        let unique = format!("{:032x}", rand::random::<u128>());
        let tampered =
            ImageSpec::runnable("agent-runc/tampered", "v1").with_file("unique", &unique)?;
        let (image, built) = push(ground, tampered).await?;
        // The image's own layer: the busybox layer is shared with the other tests' images.
        let layer = built.layers.last().context("a layer")?;
        let hex = layer.digest.trim_start_matches("sha256:");
        let data = crate::support::ground::run_dir()
            .join("registry/data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        let mut bytes = std::fs::read(&data).with_context(|| data.display().to_string())?;
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&data, bytes)?;
        let id = emulator
            .create_cache("tampered", std::slice::from_ref(&image))
            .await?;
        let failed = emulator.wait_cache(&id, ImageCacheStatus::Failed).await?;
        ensure!(
            failed
                .events
                .iter()
                .any(|e| e.message.contains(&image) && e.message.contains("digest")),
            "tampered: no event names the image and its digest: {:?}",
            failed.events
        );
        Ok::<_, anyhow::Error>(())
    })?;
    let outside = std::env::temp_dir().join(format!("eci-vk-escape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    ground.runtime.block_on(async {
        let dotdot =
            ImageSpec::runnable("agent-runc/escape-dotdot", "v1").with_raw_layer(hostile_tar(&[
                Entry::File("../../../../../../escaped", b"x"),
            ])?);
        let (image, _) = push(ground, dotdot).await?;
        let id = emulator
            .create_cache("dotdot", std::slice::from_ref(&image))
            .await?;
        let failed = emulator.wait_cache(&id, ImageCacheStatus::Failed).await?;
        ensure!(
            failed.events.iter().any(|e| e.message.contains(&image)),
            "dotdot: no event names the image: {:?}",
            failed.events
        );
        let stray = walk_names(&emulator.agent_dir().join("snapshots"))?;
        ensure!(
            !stray.iter().any(|n| n == "escaped"),
            "a refused layer left files: {stray:?}"
        );

        let target = outside.to_string_lossy().into_owned();
        let symlink =
            ImageSpec::runnable("agent-runc/escape-symlink", "v1").with_raw_layer(hostile_tar(&[
                Entry::Symlink("link", &target),
                Entry::File("link/escaped", b"x"),
            ])?);
        let (image, _) = push(ground, symlink).await?;
        let id = emulator
            .create_cache("symlink", std::slice::from_ref(&image))
            .await?;
        let ready = emulator.wait_cache(&id, ImageCacheStatus::Ready).await?;
        let relative = outside.strip_prefix("/").unwrap_or(&outside);
        let inside = emulator
            .agent_dir()
            .join("snapshots")
            .join(&ready.snapshot_id)
            .join("images/0/rootfs")
            .join(relative)
            .join("escaped");
        ensure!(
            !ready.snapshot_id.is_empty() && inside.is_file(),
            "{} missing",
            inside.display()
        );
        ensure!(
            !outside.exists(),
            "a layer wrote outside the snapshot: {}",
            outside.display()
        );
        Ok(())
    })
}

/// `eci-vk agent --listen tcp://…` on its own, with the bearer token TCP requires, and an
/// emulator that reaches it with `--agent tcp://…` and the same token.
fn standalone_agent_serves_an_emulator(ground: &Ground, _: &Namespace) -> Result<()> {
    let data = tempfile::Builder::new()
        .prefix("eci-vk-agent-test-")
        .tempdir()?;
    let secrets = tempfile::Builder::new()
        .prefix("eci-vk-agent-token-")
        .tempdir()?;
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, format!("{:032x}\n", rand::random::<u128>()))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut agent = std::process::Command::new(ground.eci_vk())
        .args(["agent", "--listen", &format!("tcp://127.0.0.1:{port}")])
        .arg("--auth-token-file")
        .arg(&token_file)
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--bridge", "ecivkt7", "--pod-cidr", "10.231.7.0/24"])
        .args(["--plain-http-registry", &ground.registry.host])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("cannot start eci-vk agent")?;
    crate::support::children::register(&agent);
    let result = (|| {
        let address = format!("tcp://127.0.0.1:{port}");
        let token_file = token_file.to_str().context("the token path is not UTF-8")?;
        let emulator = EmulatorProcess::start(
            ground.eci_vk(),
            &["--agent", &address, "--agent-token-file", token_file],
        )?;
        let eci = emulator.client()?;
        ground.runtime.block_on(async {
            let (image, built) =
                push(ground, ImageSpec::runnable("agent-runc/busybox", "v1")).await?;
            let id = eci
                .create_container_group(&group(
                    "remote",
                    vec![busybox("main", &image, "echo from-afar; sleep 3600")],
                ))
                .await?
                .container_group_id;
            eventually("the group to run on the remote agent", 120, || async {
                let log = eci
                    .describe_container_log(&DescribeContainerLog {
                        container_group_id: id.clone(),
                        container_name: "main".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.content)
                    .unwrap_or_default();
                Ok(log.contains("from-afar").then_some(()))
            })
            .await?;
            let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
                .await?
                .text()
                .await?;
            let series = format!(
                "eci_agent_container_group_pulled_bytes_total{{container_group=\"{id}\"}} "
            );
            let pulled: u64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix(&series)?.parse().ok())
                .context("no pull counter for the group")?;
            ensure!(pulled == built.pull_size(), "pulled {pulled}");
            Ok(id)
        })
    })();
    crate::support::children::stop(&mut agent);
    let id = result?;
    let mut left = leftovers(data.path(), &id)?;
    left.extend(leftovers(data.path(), &data.path().to_string_lossy())?);
    ensure!(left.is_empty(), "the stopped agent left {left:?}");
    Ok(())
}

/// `ImagePullPolicy: Never` without the image in a snapshot fails the group, with a reason.
fn pull_policy_never_needs_the_image_present(ground: &Ground, _: &Namespace) -> Result<()> {
    let emulator = RuncEmulator::start(ground, &[])?;
    ground.runtime.block_on(async {
        let (image, _) = push(ground, ImageSpec::runnable("agent-runc/busybox", "v1")).await?;
        let mut container = busybox("main", &image, "sleep 3600");
        container.image_pull_policy = Some(eci_vk::eci::container_spec::ImagePullPolicy::Never);
        let id = emulator.run_group(group("never", vec![container])).await?;
        let events = eventually("a pull failure event", 60, || async {
            let group = emulator.group(&id).await?.context("the group vanished")?;
            ensure!(
                group.status != ContainerGroupStatus::Running,
                "the group runs an image it was not allowed to pull"
            );
            Ok(group
                .events
                .iter()
                .any(|e| e.message.contains("Never"))
                .then_some(group.events))
        })
        .await?;
        ensure!(
            events.iter().any(|e| e.message.contains(&image)),
            "no event names the image: {events:?}"
        );
        Ok(())
    })
}

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A tar stream whose entry names are written byte for byte (the tar crate refuses `..`).
fn hostile_tar(entries: &[Entry<'_>]) -> Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        let (name, data, link): (&str, &[u8], Option<(tar::EntryType, &str)>) = match entry {
            Entry::File(name, data) => (name, data, None),
            Entry::Symlink(name, target) => (name, b"", Some((tar::EntryType::Symlink, target))),
            Entry::Hardlink(name, target) => (name, b"", Some((tar::EntryType::Link, target))),
        };
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some((kind, target)) = link {
            header.set_entry_type(kind);
            header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        } else {
            header.set_entry_type(tar::EntryType::Regular);
        }
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        out.append(&header, data)?;
    }
    Ok(out.into_inner()?)
}

fn walk_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            names.push(entry.file_name().to_string_lossy().into_owned());
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(names)
}
