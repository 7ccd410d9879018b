//! The real agent's container runtime (`eci_vk::agent::RuncRuntime`) driven directly, with a busybox
//! rootfs built in a temp dir: groups run under runc in their own network namespace, logs,
//! exec (pipes and tty), shared localhost, init containers, restarts, volumes, stats — and
//! nothing is left behind after a delete or a shutdown.
//!
//! Each test has its own runtime root, bridge and pod CIDR (tests run in parallel) and a guard
//! that shuts the runtime down and removes the bridge even when the test fails.

use std::{
    collections::HashMap,
    future::Future,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use eci_vk::agent::{
    ImageRunConfig, PreparedImage, RuncRuntime, RuntimeConfig,
    pb::{self, exec_input, exec_output},
};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::support::{
    Ground,
    ground::Namespace,
    harness::{Phase, Test},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "runc::group_runs_logs_execs_and_is_removed",
            phase: Phase::WithCrd,
            run: group_runs_logs_execs_and_is_removed,
        },
        Test {
            name: "runc::tty_exec_reads_and_resizes",
            phase: Phase::WithCrd,
            run: tty_exec_reads_and_resizes,
        },
        Test {
            name: "runc::containers_share_localhost_and_volumes",
            phase: Phase::WithCrd,
            run: containers_share_localhost_and_volumes,
        },
        Test {
            name: "runc::failed_init_container_fails_the_group",
            phase: Phase::WithCrd,
            run: failed_init_container_fails_the_group,
        },
        Test {
            name: "runc::a_sub_path_swapped_for_a_symlink_never_mounts_the_host",
            phase: Phase::WithCrd,
            run: a_sub_path_swapped_for_a_symlink_never_mounts_the_host,
        },
        Test {
            name: "runc::crashing_container_restarts_with_previous_logs",
            phase: Phase::WithCrd,
            run: crashing_container_restarts_with_previous_logs,
        },
        Test {
            name: "runc::open_removes_what_a_crashed_agent_left",
            phase: Phase::WithCrd,
            run: open_removes_what_a_crashed_agent_left,
        },
        Test {
            name: "runc::delete_runs_pre_stop_then_sigterm",
            phase: Phase::WithCrd,
            run: delete_runs_pre_stop_then_sigterm,
        },
        Test {
            name: "runc::a_slow_delete_does_not_hold_up_other_groups",
            phase: Phase::WithCrd,
            run: a_slow_delete_does_not_hold_up_other_groups,
        },
        Test {
            name: "runc::shutdown_removes_everything",
            phase: Phase::WithCrd,
            run: shutdown_removes_everything,
        },
    ]
}

const IMAGE: &str = "busybox:test";

/// A runtime on a root of its own with a busybox rootfs.
struct Fixture {
    root: PathBuf,
    rootfs: PathBuf,
    bridge: String,
    runtime: Arc<RuncRuntime>,
}

impl Fixture {
    fn images(&self) -> HashMap<String, PreparedImage> {
        HashMap::from([(
            IMAGE.to_owned(),
            PreparedImage {
                rootfs: self.rootfs.clone(),
                config: ImageRunConfig {
                    cmd: vec!["sh".into()],
                    env: vec!["PATH=/bin".into(), "FROM_IMAGE=yes".into()],
                    ..ImageRunConfig::default()
                },
            },
        )])
    }
}

/// Shuts the runtime down and removes the bridge when the test ends, however it ends.
struct Guard {
    runtime: Arc<RuncRuntime>,
    bridge: String,
    /// Removed only after the shutdown: the runtime's files live there.
    dir: Option<tempfile::TempDir>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(self.runtime.shutdown());
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
        drop(self.dir.take());
    }
}

/// A busybox rootfs: `bin/busybox` and a link per applet, `/etc/passwd` with a user `app`.
fn busybox_rootfs(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(rootfs.join("etc"))?;
    std::fs::create_dir_all(rootfs.join("tmp"))?;
    std::fs::copy("/usr/bin/busybox", bin.join("busybox")).context("copy /usr/bin/busybox")?;
    let list = std::process::Command::new("/usr/bin/busybox")
        .arg("--list")
        .output()
        .context("busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1234:4321:app:/tmp:/bin/sh\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\napp:x:4321:\n")?;
    Ok(rootfs)
}

/// Runs `body` against a fresh runtime (bridge `ecivkt<n>`, CIDR `10.231.<n>.0/24`).
fn with_runtime<F, Fut>(n: u8, body: F) -> Result<()>
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let dir = tempfile::Builder::new().prefix("runc-rt-").tempdir()?;
    let rootfs = busybox_rootfs(dir.path())?;
    let root = dir.path().join("state");
    let bridge = format!("ecivkt{n}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let runtime = rt.block_on(RuncRuntime::open(RuntimeConfig {
        root: root.clone(),
        runc: PathBuf::from("/usr/sbin/runc"),
        bridge: bridge.clone(),
        pod_cidr: format!("10.231.{n}.0/24"),
    }))?;
    let _guard = Guard {
        runtime: Arc::clone(&runtime),
        bridge: bridge.clone(),
        dir: Some(dir),
    };
    let fixture = Arc::new(Fixture {
        root,
        rootfs,
        bridge,
        runtime,
    });
    rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(240), body(fixture))
            .await
            .context("the test timed out")?
    })
}

fn container(name: &str, command: &[&str]) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: name.to_owned(),
        image: IMAGE.to_owned(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        ..pb::ContainerSpec::default()
    }
}

fn group(id: &str, containers: Vec<pb::ContainerSpec>) -> pb::CreateGroupRequest {
    pb::CreateGroupRequest {
        group_id: id.to_owned(),
        containers,
        restart_policy: "Always".into(),
        generation: 1,
        hostname: format!("{id}-host"),
        memory_gib: 0.25,
        cpu: 0.5,
        ..pb::CreateGroupRequest::default()
    }
}

/// Polls a group until `done` holds.
async fn wait_for(
    fx: &Fixture,
    id: &str,
    what: &str,
    done: impl Fn(&pb::GroupStatus) -> bool,
) -> Result<pb::GroupStatus> {
    let mut last = None;
    for _ in 0..300 {
        let status = fx.runtime.inspect_group(id).await?;
        if done(&status) {
            return Ok(status);
        }
        last = Some(status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("group {id} never got {what}; last status: {last:?}")
}

fn running(status: &pb::GroupStatus) -> bool {
    status.phase == pb::GroupPhase::Running as i32 && status.containers.iter().all(|c| c.ready)
}

/// Creates group `id` of one container that sleeps for an hour, and waits until it runs.
async fn start_sleeper(fx: &Fixture, id: &str) -> Result<()> {
    fx.runtime
        .create_group(
            group(id, vec![container("main", &["sleep", "3600"])]),
            fx.images(),
        )
        .await?;
    wait_for(fx, id, "Running", running).await?;
    Ok(())
}

async fn logs(fx: &Fixture, request: pb::LogsRequest) -> Result<String> {
    let mut stream = fx.runtime.logs(request).await?;
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend(chunk?.data);
    }
    Ok(String::from_utf8(all)?)
}

/// What an exec printed and its exit code.
#[derive(Debug, Default)]
struct Ran {
    stdout: String,
    stderr: String,
    exit: Option<i32>,
}

async fn collect(mut output: ReceiverStream<Result<pb::ExecOutput, tonic::Status>>) -> Result<Ran> {
    let mut ran = Ran::default();
    while let Some(message) = output.next().await {
        match message?.output {
            Some(exec_output::Output::Stdout(data)) => {
                ran.stdout.push_str(&String::from_utf8_lossy(&data))
            }
            Some(exec_output::Output::Stderr(data)) => {
                ran.stderr.push_str(&String::from_utf8_lossy(&data))
            }
            Some(exec_output::Output::Exit(exit)) => {
                ensure!(ran.exit.is_none(), "two exit messages");
                ran.exit = Some(exit.exit_code);
            }
            None => {}
        }
    }
    Ok(ran)
}

async fn exec(fx: &Fixture, id: &str, container: &str, command: &[&str]) -> Result<Ran> {
    let start = pb::ExecStart {
        group_id: id.to_owned(),
        container: container.to_owned(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        tty: false,
        stdin: false,
    };
    let output = fx
        .runtime
        .exec(start, futures::stream::empty().boxed())
        .await?;
    collect(output).await
}

/// Checks that nothing of group `id` is left: no process, mount, netns, veth, cgroup or dir.
async fn assert_group_gone(fx: &Fixture, id: &str) -> Result<()> {
    assert_gone_from(&fx.root, &fx.bridge, id)
}

fn assert_gone_from(root: &Path, bridge: &str, id: &str) -> Result<()> {
    // Only what this runtime made counts: another run's leftovers on the machine are not ours.
    let root = root.canonicalize()?;
    let tag = eci_vk::agent::runtime_tag_of(&root);
    let root_text = root.to_string_lossy().into_owned();
    let runc_prefix = format!("{id}_");
    let cgroup_part = format!("/{tag}/{id}/");
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cgroup = std::fs::read_to_string(path.join("cgroup")).unwrap_or_default();
        let runc_of_group = cmdline.contains(&runc_prefix) && cmdline.contains(&root_text);
        ensure!(
            !runc_of_group && !cgroup.contains(&cgroup_part),
            "process {} of group {id} is left: {cmdline}",
            entry.file_name().to_string_lossy()
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let left: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(&root_text))
        .collect();
    ensure!(left.is_empty(), "mounts left under the root: {left:?}");
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()?;
    let netns = String::from_utf8_lossy(&netns.stdout);
    let name = format!("{tag}-{id}");
    ensure!(
        !netns
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name.as_str())),
        "network namespace {name} left: {netns}"
    );
    let ports = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    ensure!(ports.is_empty(), "veths left on {bridge}: {ports:?}");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")?.flatten() {
        for level in [
            hierarchy.path(),
            hierarchy
                .path()
                .parent()
                .unwrap_or(Path::new("/"))
                .to_owned(),
        ] {
            let group = level.join(&tag).join(id);
            ensure!(!group.exists(), "cgroup {} left", group.display());
        }
    }
    let dir = root.join("groups").join(id);
    ensure!(!dir.exists(), "group dir {} left", dir.display());
    Ok(())
}

// === the tests ===

fn group_runs_logs_execs_and_is_removed(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(1, |fx| async move {
        let id = "eci-logs";
        let request = group(
            id,
            vec![container(
                "main",
                &[
                    "sh",
                    "-c",
                    "echo hello; sleep 0.3; echo second >&2; exec sleep 3600",
                ],
            )],
        );
        let created = fx
            .runtime
            .create_group(request.clone(), fx.images())
            .await?;
        ensure!(!created.ip.is_empty(), "no ip in {created:?}");
        // Same generation: the same group, unchanged.
        let again = fx
            .runtime
            .create_group(request.clone(), fx.images())
            .await?;
        ensure!(
            again.ip == created.ip,
            "idempotent create changed the group"
        );
        let stale = fx
            .runtime
            .create_group(
                pb::CreateGroupRequest {
                    generation: 0,
                    ..request
                },
                fx.images(),
            )
            .await;
        ensure!(
            stale.is_err_and(|e| tonic::Status::from(e).code() == tonic::Code::FailedPrecondition),
            "a lower generation is not refused"
        );
        let status = wait_for(&fx, id, "Running", running).await?;
        ensure!(status.containers[0].restart_count == 0);

        // Logs, with and without timestamps, and the last line only.
        let request = |f: fn(&mut pb::LogsRequest)| {
            let mut r = pb::LogsRequest {
                group_id: id.into(),
                container: "main".into(),
                ..Default::default()
            };
            f(&mut r);
            r
        };
        let mut plain = String::new();
        for _ in 0..50 {
            plain = logs(&fx, request(|_| {})).await?;
            if plain.contains("second") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure!(
            plain.contains("hello\n") && plain.contains("second\n"),
            "logs: {plain:?}"
        );
        let stamped = logs(&fx, request(|r| r.timestamps = true)).await?;
        let first = stamped.lines().next().unwrap_or_default();
        let (stamp, text) = first.split_once(' ').context("no timestamp")?;
        ensure!(
            stamp.parse::<jiff::Timestamp>().is_ok() && text == "hello",
            "stamped: {stamped:?}"
        );
        ensure!(logs(&fx, request(|r| r.tail_lines = 1)).await? == "second\n");
        ensure!(logs(&fx, request(|r| r.limit_bytes = 3)).await? == "hel");

        // Exec: the hostname file, an exit code, the image env and the cgroup limit.
        let hostname = exec(&fx, id, "main", &["cat", "/etc/hostname"]).await?;
        ensure!(
            hostname.stdout == format!("{id}-host\n") && hostname.exit == Some(0),
            "{hostname:?}"
        );
        let failed = exec(&fx, id, "main", &["sh", "-c", "echo oops >&2; exit 3"]).await?;
        ensure!(
            failed.exit == Some(3) && failed.stderr == "oops\n",
            "{failed:?}"
        );
        let env = exec(
            &fx,
            id,
            "main",
            &["sh", "-c", "echo $FROM_IMAGE $(hostname)"],
        )
        .await?;
        ensure!(env.stdout == format!("yes {id}-host\n"), "{env:?}");
        let hosts = exec(&fx, id, "main", &["cat", "/etc/hosts"]).await?;
        ensure!(
            hosts.stdout.contains(&format!("{}\t{id}-host", created.ip)),
            "{hosts:?}"
        );
        // The group's limits (0.25 GiB, 0.5 CPU) are the container's cgroup limits (v1 or v2).
        let limits = exec(
            &fx,
            id,
            "main",
            &[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null \
                 || { cat /sys/fs/cgroup/memory.max; cut -d' ' -f1 /sys/fs/cgroup/cpu.max; }",
            ],
        )
        .await?;
        ensure!(limits.stdout == "268435456\n50000\n", "{limits:?}");
        let missing = fx
            .runtime
            .exec(
                pb::ExecStart {
                    group_id: id.into(),
                    container: "nope".into(),
                    command: vec!["true".into()],
                    ..Default::default()
                },
                futures::stream::empty().boxed(),
            )
            .await;
        ensure!(missing.is_err_and(|e| tonic::Status::from(e).code() == tonic::Code::NotFound));

        // The host answers on the bridge's address (the first of the pod CIDR), from the
        // group's network namespace through its veth; and the group is reachable from the
        // host, which connects to it (nothing listens there: refused, not unreachable).
        let ping = exec(
            &fx,
            id,
            "main",
            &["ping", "-c", "1", "-W", "3", "10.231.1.1"],
        )
        .await?;
        ensure!(ping.exit == Some(0), "the bridge does not answer: {ping:?}");
        let connect = tokio::net::TcpStream::connect((created.ip.as_str(), 9)).await;
        ensure!(
            connect
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "the group is not reachable from the host: {connect:?}"
        );

        // Stats: memory of the running container.
        let stats = fx.runtime.stats(id).await?;
        let usage = stats.usage.context("no usage")?;
        ensure!(
            usage.memory_usage_bytes > 0 && usage.memory_working_set_bytes > 0,
            "{stats:?}"
        );
        ensure!(stats.containers.len() == 1);
        ensure!(
            stats.network_rx_bytes > 0 && stats.network_tx_bytes > 0,
            "no network counters: {stats:?}"
        );

        // A follow ends when the group is deleted.
        let mut follow = fx.runtime.logs(request(|r| r.follow = true)).await?;
        let first = follow.next().await.context("follow sent nothing")??;
        ensure!(String::from_utf8_lossy(&first.data).contains("hello"));

        fx.runtime
            .delete_group(id, Duration::from_secs(1), false)
            .await?;
        let rest = tokio::time::timeout(Duration::from_secs(5), async {
            while follow.next().await.is_some() {}
        })
        .await;
        ensure!(rest.is_ok(), "the follow did not end with the group");
        let gone = fx.runtime.inspect_group(id).await;
        ensure!(gone.is_err_and(|e| tonic::Status::from(e).code() == tonic::Code::NotFound));
        assert_group_gone(&fx, id).await?;
        // Deleting an unknown group is fine.
        fx.runtime.delete_group(id, Duration::ZERO, true).await?;
        Ok(())
    })
}

fn tty_exec_reads_and_resizes(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(2, |fx| async move {
        let id = "eci-tty";
        // The container itself runs on a terminal too; its output is its log.
        let mut main = container("main", &["sh", "-c", "tty; echo on-a-tty; exec sleep 3600"]);
        main.tty = true;
        fx.runtime
            .create_group(group(id, vec![main]), fx.images())
            .await?;
        wait_for(&fx, id, "Running", running).await?;
        let mut log = String::new();
        for _ in 0..50 {
            log = logs(
                &fx,
                pb::LogsRequest {
                    group_id: id.into(),
                    container: "main".into(),
                    ..Default::default()
                },
            )
            .await?;
            if log.contains("on-a-tty") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure!(
            log.starts_with("/dev/pts/") && log.contains("\non-a-tty\n"),
            "the container's terminal output: {log:?}"
        );
        let (tx, rx) = mpsc::channel::<pb::ExecInput>(8);
        let input = ReceiverStream::new(rx).map(Ok).boxed();
        let start = pb::ExecStart {
            group_id: id.into(),
            container: "main".into(),
            command: vec!["sh".into()],
            tty: true,
            stdin: true,
        };
        let mut output = fx.runtime.exec(start, input).await?;
        let send = |text: &str| pb::ExecInput {
            input: Some(exec_input::Input::Stdin(text.as_bytes().to_vec())),
        };
        let mut seen = String::new();
        let mut exit = None;
        // Read until `want` shows up in the output.
        async fn read_until(
            output: &mut ReceiverStream<Result<pb::ExecOutput, tonic::Status>>,
            seen: &mut String,
            exit: &mut Option<i32>,
            want: &str,
        ) -> Result<()> {
            while !seen.contains(want) {
                let message = tokio::time::timeout(Duration::from_secs(20), output.next())
                    .await
                    .with_context(|| format!("no {want:?} in {seen:?}"))?;
                match message.context("output ended")??.output {
                    Some(exec_output::Output::Stdout(data)) => {
                        seen.push_str(&String::from_utf8_lossy(&data))
                    }
                    Some(exec_output::Output::Stderr(data)) => {
                        seen.push_str(&String::from_utf8_lossy(&data));
                    }
                    Some(exec_output::Output::Exit(e)) => {
                        *exit = Some(e.exit_code);
                        seen.push_str(&format!("[exit {}]", e.exit_code));
                        return Ok(());
                    }
                    None => {}
                }
            }
            Ok(())
        }
        tx.send(send("echo $((6*7))\n")).await?;
        // The line ends "\r\n" on a terminal; on a loaded machine, where the line is typed
        // before the shell has set up its terminal, ash's output has been seen to end
        // "\r\r\n". Either is a terminal's answer (a pipe would give a bare "\n").
        read_until(&mut output, &mut seen, &mut exit, "42\r").await?;
        ensure!(seen.contains("42\r"), "no 42 in {seen:?}");
        tx.send(pb::ExecInput {
            input: Some(exec_input::Input::Resize(pb::TerminalSize {
                width: 100,
                height: 30,
            })),
        })
        .await?;
        tx.send(send("stty size\n")).await?;
        read_until(&mut output, &mut seen, &mut exit, "30 100").await?;
        ensure!(
            seen.contains("30 100"),
            "stty did not see the new size: {seen:?}"
        );
        tx.send(send("tty; exit 5\n")).await?;
        while let Some(message) = output.next().await {
            match message?.output {
                Some(exec_output::Output::Exit(e)) => {
                    ensure!(exit.is_none(), "two exit messages");
                    exit = Some(e.exit_code);
                }
                Some(exec_output::Output::Stdout(data)) => {
                    seen.push_str(&String::from_utf8_lossy(&data))
                }
                _ => {}
            }
        }
        ensure!(exit == Some(5), "exit {exit:?}, output {seen:?}");
        ensure!(seen.contains("/dev/pts/"), "not a terminal: {seen:?}");
        fx.runtime.delete_group(id, Duration::ZERO, true).await?;
        assert_group_gone(&fx, id).await
    })
}

fn containers_share_localhost_and_volumes(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(3, |fx| async move {
        let id = "eci-shared";
        let mut server = container("server", &["httpd", "-f", "-p", "8080", "-h", "/www"]);
        server.volume_mounts = vec![
            pb::VolumeMount {
                name: "site".into(),
                mount_path: "/www".into(),
                read_only: true,
                ..Default::default()
            },
            pb::VolumeMount {
                name: "scratch".into(),
                mount_path: "/scratch".into(),
                ..Default::default()
            },
        ];
        let mut client = container(
            "client",
            &[
                "sh",
                "-c",
                "echo from-client > /shared/note; exec sleep 3600",
            ],
        );
        client.run_as_user = Some(1234);
        client.volume_mounts = vec![
            pb::VolumeMount {
                name: "scratch".into(),
                mount_path: "/shared".into(),
                ..Default::default()
            },
            pb::VolumeMount {
                name: "site".into(),
                mount_path: "/conf".into(),
                sub_path: "nested".into(),
                read_only: true,
            },
            pb::VolumeMount {
                name: "mem".into(),
                mount_path: "/mem".into(),
                ..Default::default()
            },
        ];
        let mut request = group(id, vec![server, client]);
        request.volumes = vec![
            pb::Volume {
                name: "site".into(),
                source: Some(pb::volume::Source::ConfigFile(pb::ConfigFileVolume {
                    files: vec![
                        pb::ConfigFile {
                            path: "index.html".into(),
                            content: b"pong\n".to_vec(),
                            mode: 0o644,
                        },
                        pb::ConfigFile {
                            path: "nested/secret.txt".into(),
                            content: b"s3cret".to_vec(),
                            mode: 0o600,
                        },
                    ],
                    default_mode: 0,
                })),
            },
            pb::Volume {
                name: "scratch".into(),
                source: Some(pb::volume::Source::EmptyDir(pb::EmptyDirVolume::default())),
            },
            pb::Volume {
                name: "mem".into(),
                source: Some(pb::volume::Source::EmptyDir(pb::EmptyDirVolume {
                    medium: "Memory".into(),
                    size_limit_bytes: 8 * 1024 * 1024,
                })),
            },
        ];
        // A config file that escapes its volume is refused before anything runs.
        let mut bad = request.clone();
        bad.group_id = "eci-bad".into();
        if let Some(pb::volume::Source::ConfigFile(files)) = &mut bad.volumes[0].source {
            files.files.push(pb::ConfigFile {
                path: "../escape".into(),
                content: vec![],
                mode: 0,
            });
        }
        let refused = fx.runtime.create_group(bad, fx.images()).await;
        ensure!(
            refused.is_err_and(|e| tonic::Status::from(e).code() == tonic::Code::InvalidArgument)
        );
        ensure!(
            !fx.root.join("groups/escape").exists() && !fx.root.join("groups/eci-bad").exists()
        );

        fx.runtime.create_group(request, fx.images()).await?;
        wait_for(&fx, id, "Running", running).await?;
        // The client reaches the server on the shared loopback.
        let mut fetched = Ran::default();
        for _ in 0..50 {
            fetched = exec(
                &fx,
                id,
                "client",
                &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"],
            )
            .await?;
            if fetched.exit == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ensure!(fetched.stdout == "pong\n", "{fetched:?}");
        // The emptyDir is shared; the config file keeps its mode; the sub_path mount shows
        // only its part; the Memory emptyDir is a tmpfs; the user is the one asked for.
        let note = exec(&fx, id, "server", &["cat", "/scratch/note"]).await?;
        ensure!(note.stdout == "from-client\n", "{note:?}");
        let mode = exec(
            &fx,
            id,
            "client",
            &["stat", "-c", "%a %s", "/conf/secret.txt"],
        )
        .await?;
        ensure!(mode.stdout == "600 6\n", "{mode:?}");
        let read_only = exec(&fx, id, "server", &["sh", "-c", "touch /www/x"]).await?;
        ensure!(read_only.exit != Some(0), "a read-only volume was writable");
        let tmpfs = exec(
            &fx,
            id,
            "client",
            &["sh", "-c", "grep ' /mem ' /proc/mounts"],
        )
        .await?;
        ensure!(tmpfs.stdout.starts_with("tmpfs "), "{tmpfs:?}");
        let user = exec(&fx, id, "client", &["id", "-u"]).await?;
        ensure!(user.stdout == "1234\n", "{user:?}");
        fx.runtime.delete_group(id, Duration::ZERO, true).await?;
        assert_group_gone(&fx, id).await
    })
}

fn failed_init_container_fails_the_group(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(4, |fx| async move {
        let id = "eci-init";
        let mut request = group(
            id,
            vec![container(
                "main",
                &["sh", "-c", "echo main-ran; sleep 3600"],
            )],
        );
        request.restart_policy = "Never".into();
        request.init_containers = vec![
            container("setup", &["sh", "-c", "echo setup-ok"]),
            container("broken", &["sh", "-c", "echo failing; exit 1"]),
        ];
        let created = fx.runtime.create_group(request, fx.images()).await?;
        ensure!(
            created.phase == pb::GroupPhase::Pending as i32,
            "{created:?}"
        );
        let status = wait_for(&fx, id, "Failed", |s| {
            s.phase == pb::GroupPhase::Failed as i32
        })
        .await?;
        let terminated = |c: &pb::ContainerStatus| c.current.clone().unwrap_or_default();
        let setup = terminated(&status.init_containers[0]);
        let broken = terminated(&status.init_containers[1]);
        ensure!(
            setup.kind == pb::ContainerStateKind::Terminated as i32 && setup.exit_code == 0,
            "{status:?}"
        );
        ensure!(
            broken.kind == pb::ContainerStateKind::Terminated as i32 && broken.exit_code == 1,
            "{status:?}"
        );
        ensure!(broken.finished_at_ms >= broken.started_at_ms && broken.started_at_ms > 0);
        let main = &status.containers[0];
        ensure!(
            main.current
                .as_ref()
                .is_some_and(|s| s.kind == pb::ContainerStateKind::Waiting as i32)
                && main.restart_count == 0,
            "the main container started: {main:?}"
        );
        let main_log = logs(
            &fx,
            pb::LogsRequest {
                group_id: id.into(),
                container: "main".into(),
                ..Default::default()
            },
        )
        .await?;
        ensure!(main_log.is_empty(), "{main_log:?}");
        let init_log = logs(
            &fx,
            pb::LogsRequest {
                group_id: id.into(),
                container: "broken".into(),
                ..Default::default()
            },
        )
        .await?;
        ensure!(init_log == "failing\n", "{init_log:?}");
        let not_running = fx
            .runtime
            .exec(
                pb::ExecStart {
                    group_id: id.into(),
                    container: "main".into(),
                    command: vec!["true".into()],
                    ..Default::default()
                },
                futures::stream::empty().boxed(),
            )
            .await;
        ensure!(
            not_running
                .is_err_and(|e| tonic::Status::from(e).code() == tonic::Code::FailedPrecondition)
        );
        fx.runtime
            .delete_group(id, Duration::from_secs(5), false)
            .await?;
        assert_group_gone(&fx, id).await?;

        // With OnFailure a failed init container is retried (after a back-off) until it
        // succeeds; then the containers start.
        let id = "eci-init-retry";
        let mut request = group(id, vec![container("main", &["sleep", "3600"])]);
        request.restart_policy = "OnFailure".into();
        let mut flaky = container(
            "flaky",
            &[
                "sh",
                "-c",
                "if [ -f /work/tried ]; then echo second-try; else touch /work/tried; exit 1; fi",
            ],
        );
        flaky.volume_mounts = vec![pb::VolumeMount {
            name: "work".into(),
            mount_path: "/work".into(),
            ..Default::default()
        }];
        request.init_containers = vec![flaky];
        request.volumes = vec![pb::Volume {
            name: "work".into(),
            source: Some(pb::volume::Source::EmptyDir(pb::EmptyDirVolume::default())),
        }];
        fx.runtime.create_group(request, fx.images()).await?;
        let status = wait_for(&fx, id, "Running", running).await?;
        let flaky = &status.init_containers[0];
        let current = flaky.current.clone().unwrap_or_default();
        let previous = flaky.previous.clone().unwrap_or_default();
        ensure!(
            flaky.restart_count == 1 && current.exit_code == 0 && previous.exit_code == 1,
            "{flaky:?}"
        );
        fx.runtime.delete_group(id, Duration::ZERO, true).await?;
        assert_group_gone(&fx, id).await
    })
}

/// CVE-2017-1002101: an init container sharing an emptyDir replaces the directory a later
/// container's `sub_path` names by a symlink to `/`. The later container must not start with
/// the host's root mounted: its start fails, naming the sub path.
fn a_sub_path_swapped_for_a_symlink_never_mounts_the_host(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(11, |fx| async move {
        let id = "eci-subpath";
        let marker = fx.root.join("host-marker");
        std::fs::write(&marker, "host\n")?;
        let seen = format!("/h{}", marker.display());
        let mut main = container(
            "main",
            &[
                "sh",
                "-c",
                &format!("cat {seen} && echo SAW-THE-HOST; sleep 3600"),
            ],
        );
        main.volume_mounts = vec![pb::VolumeMount {
            name: "v".into(),
            mount_path: "/h".into(),
            sub_path: "x".into(),
            ..Default::default()
        }];
        let mut plant = container("plant", &["sh", "-c", "rm -rf /v/x; ln -s / /v/x"]);
        plant.volume_mounts = vec![pb::VolumeMount {
            name: "v".into(),
            mount_path: "/v".into(),
            ..Default::default()
        }];
        let mut request = group(id, vec![main]);
        request.restart_policy = "Never".into();
        request.init_containers = vec![plant];
        request.volumes = vec![pb::Volume {
            name: "v".into(),
            source: Some(pb::volume::Source::EmptyDir(pb::EmptyDirVolume::default())),
        }];
        fx.runtime.create_group(request, fx.images()).await?;
        let status = wait_for(&fx, id, "Failed", |s| {
            s.phase == pb::GroupPhase::Failed as i32
        })
        .await?;
        let plant = status.init_containers[0]
            .current
            .clone()
            .unwrap_or_default();
        ensure!(
            plant.exit_code == 0,
            "the init container failed: {status:?}"
        );
        let main = status.containers[0].current.clone().unwrap_or_default();
        ensure!(
            main.reason == "StartError" && main.message.contains("sub_path \"x\""),
            "the container started or failed for another reason: {status:?}"
        );
        let main_log = logs(
            &fx,
            pb::LogsRequest {
                group_id: id.into(),
                container: "main".into(),
                ..Default::default()
            },
        )
        .await?;
        ensure!(!main_log.contains("SAW-THE-HOST"), "{main_log:?}");
        fx.runtime.delete_group(id, Duration::ZERO, true).await?;
        assert_group_gone(&fx, id).await
    })
}

fn crashing_container_restarts_with_previous_logs(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(5, |fx| async move {
        let id = "eci-crash";
        let request = group(
            id,
            vec![container(
                "crash",
                &[
                    "sh",
                    "-c",
                    "[ -e /marker ] && echo stale-rootfs; touch /marker; echo run-$(cat /proc/uptime); exit 2",
                ],
            )],
        );
        fx.runtime.create_group(request, fx.images()).await?;
        let status = wait_for(&fx, id, "two restarts", |s| {
            s.containers[0].restart_count >= 2
        })
        .await?;
        ensure!(status.phase == pb::GroupPhase::Running as i32, "{status:?}");
        let crash = &status.containers[0];
        let previous = crash.previous.clone().context("no previous state")?;
        ensure!(
            previous.kind == pb::ContainerStateKind::Terminated as i32 && previous.exit_code == 2,
            "{crash:?}"
        );
        let request = |previous| pb::LogsRequest {
            group_id: id.into(),
            container: "crash".into(),
            previous,
            ..Default::default()
        };
        let before = logs(&fx, request(true)).await?;
        ensure!(
            before.starts_with("run-") && before.lines().count() == 1,
            "previous log: {before:?}"
        );
        // Restart counts go on across RestartGroup.
        let restarted = fx.runtime.restart_group(id).await?;
        let count = restarted.containers[0].restart_count;
        wait_for(&fx, id, "one more restart", |s| {
            s.containers[0].restart_count > count
        })
        .await?;
        fx.runtime.delete_group(id, Duration::ZERO, true).await?;
        assert_group_gone(&fx, id).await
    })
}

fn open_removes_what_a_crashed_agent_left(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(8, |fx| async move {
        let config = RuntimeConfig {
            root: fx.root.with_file_name("crashed"),
            runc: PathBuf::from("/usr/sbin/runc"),
            bridge: "ecivkt8c".into(),
            pod_cidr: "10.231.9.0/24".into(),
        };
        let id = "eci-orphan";
        let mut request = group(id, vec![container("main", &["sleep", "3600"])]);
        request.volumes = vec![pb::Volume {
            name: "mem".into(),
            source: Some(pb::volume::Source::EmptyDir(pb::EmptyDirVolume {
                medium: "Memory".into(),
                size_limit_bytes: 0,
            })),
        }];
        request.containers[0].volume_mounts = vec![pb::VolumeMount {
            name: "mem".into(),
            mount_path: "/mem".into(),
            ..Default::default()
        }];
        // An agent that dies without a shutdown: its tokio runtime goes away; its containers,
        // mounts, namespace and cgroups stay.
        let crashed = {
            let (config, images) = (config.clone(), fx.images());
            std::thread::spawn(move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let runtime = RuncRuntime::open(config).await?;
                    runtime.create_group(request, images).await?;
                    for _ in 0..100 {
                        if running(&runtime.inspect_group(id).await?) {
                            return Ok(());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    bail!("the orphan never ran")
                })
            })
        };
        crashed
            .join()
            .map_err(|_| anyhow::anyhow!("the crashed agent panicked"))??;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
        ensure!(
            mounts.contains("crashed/groups/eci-orphan"),
            "nothing was left to clean"
        );
        // A new agent on the same root removes all of it.
        let reopened = RuncRuntime::open(config.clone()).await?;
        let root = tokio::fs::canonicalize(&config.root).await?;
        let check = assert_gone_from(&root, &config.bridge, id);
        reopened.shutdown().await;
        check?;
        ensure!(
            !Path::new("/sys/class/net/ecivkt8c").exists(),
            "the bridge is left"
        );
        Ok(())
    })
}

fn delete_runs_pre_stop_then_sigterm(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(9, |fx| async move {
        let id = "eci-graceful";
        let mut main = container(
            "main",
            &[
                "sh",
                "-c",
                "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
            ],
        );
        // The hook writes into the container's own stdout, so it shows in its log.
        main.pre_stop_exec = vec![
            "sh".into(),
            "-c".into(),
            "echo pre-stop > /proc/1/fd/1".into(),
        ];
        fx.runtime
            .create_group(group(id, vec![main]), fx.images())
            .await?;
        wait_for(&fx, id, "Running", running).await?;
        let mut follow = fx
            .runtime
            .logs(pb::LogsRequest {
                group_id: id.into(),
                container: "main".into(),
                follow: true,
                ..Default::default()
            })
            .await?;
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(Ok(chunk)) = follow.next().await {
                all.extend(chunk.data);
            }
            String::from_utf8_lossy(&all).into_owned()
        });
        let mut seen = String::new();
        for _ in 0..50 {
            seen = logs(
                &fx,
                pb::LogsRequest {
                    group_id: id.into(),
                    container: "main".into(),
                    ..Default::default()
                },
            )
            .await?;
            if seen.contains("ready") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure!(seen.contains("ready"), "{seen:?}");
        fx.runtime
            .delete_group(id, Duration::from_secs(30), false)
            .await?;
        let followed = tokio::time::timeout(Duration::from_secs(10), reader).await??;
        ensure!(
            followed == "ready\npre-stop\ngot-term\n",
            "the hook, then SIGTERM: {followed:?}"
        );
        assert_group_gone(&fx, id).await
    })
}

/// Groups are separate machines: while one group's delete waits out its grace period, another
/// group is created and runs.
fn a_slow_delete_does_not_hold_up_other_groups(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(10, |fx| async move {
        // `sleep` as PID 1 ignores SIGTERM, so a graceful delete lasts its whole grace period.
        let stubborn = "eci-stubborn";
        start_sleeper(&fx, stubborn).await?;
        let runtime = Arc::clone(&fx.runtime);
        let deleting = tokio::spawn(async move {
            runtime
                .delete_group(stubborn, Duration::from_secs(8), false)
                .await
        });
        // The delete has begun once the group is no longer listed.
        for _ in 0..100 {
            if fx.runtime.inspect_group(stubborn).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ensure!(
            fx.runtime.inspect_group(stubborn).await.is_err(),
            "the delete never began"
        );

        let other = "eci-meanwhile";
        start_sleeper(&fx, other).await?;
        ensure!(
            !deleting.is_finished(),
            "another group started only after the stubborn group's grace period ended"
        );
        deleting.await??;
        fx.runtime.delete_group(other, Duration::ZERO, true).await?;
        // (Each check looks at the whole root, so both groups go first.)
        assert_group_gone(&fx, stubborn).await?;
        assert_group_gone(&fx, other).await
    })
}

fn shutdown_removes_everything(_: &Ground, _: &Namespace) -> Result<()> {
    with_runtime(6, |fx| async move {
        for id in ["eci-one", "eci-two"] {
            let mut request = group(
                id,
                vec![
                    container("main", &["sleep", "3600"]),
                    container("side", &["sleep", "3600"]),
                ],
            );
            request.volumes = vec![pb::Volume {
                name: "mem".into(),
                source: Some(pb::volume::Source::EmptyDir(pb::EmptyDirVolume {
                    medium: "Memory".into(),
                    size_limit_bytes: 0,
                })),
            }];
            request.containers[0].volume_mounts = vec![pb::VolumeMount {
                name: "mem".into(),
                mount_path: "/mem".into(),
                ..Default::default()
            }];
            fx.runtime.create_group(request, fx.images()).await?;
        }
        let one = wait_for(&fx, "eci-one", "Running", running).await?;
        let two = wait_for(&fx, "eci-two", "Running", running).await?;
        ensure!(one.ip != two.ip, "two groups got one address: {}", one.ip);
        fx.runtime.shutdown().await;
        for id in ["eci-one", "eci-two"] {
            assert_group_gone(&fx, id).await?;
        }
        ensure!(
            !Path::new("/sys/class/net").join(&fx.bridge).exists(),
            "the bridge is left"
        );
        let left: Vec<_> = std::fs::read_dir(fx.root.join("groups"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        ensure!(left.is_empty(), "group dirs left: {left:?}");
        // A second runtime on the same root starts clean, and shutting down twice is fine.
        fx.runtime.shutdown().await;
        Ok(())
    })
}
