//! The credential chain end to end: a node started with credentials from each source of the
//! chain (the environment, the SDKs' INI file, a CLI profile that assumes a RAM role, RRSA with
//! a real service-account token exchanged at the emulator's STS, and the ECS metadata
//! stand-in) runs a pod; and a node whose STS credentials live 20 s keeps creating pods across
//! several refreshes without one failed call.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, EmulatorProcess},
    ground::Namespace,
    harness::{Phase, Test},
    node_child::{CloudEnv, NodeChild, metrics_at, sample},
    wait::wait,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "credentials::every_source_of_the_chain_runs_a_pod",
            phase: Phase::WithCrd,
            run: every_source_of_the_chain_runs_a_pod,
        },
        Test {
            name: "credentials::pods_keep_starting_across_credential_refreshes",
            phase: Phase::WithCrd,
            run: pods_keep_starting_across_credential_refreshes,
        },
    ]
}

/// The emulator's account, in the ARNs its STS accepts (`src/emulator/sts.rs`).
const ACCOUNT: &str = "1234567890123456";
/// The life the emulator gives the temporary credentials it issues in these tests.
const TTL: &str = "20s";

fn role_arn(name: &str) -> String {
    format!("acs:ram::{ACCOUNT}:role/{name}")
}

/// An emulator on the simulated runtime whose temporary credentials live [`TTL`].
fn emulator(ground: &Ground, extra: &[&str]) -> Result<EmulatorProcess> {
    let mut flags = vec![
        "--sim-pull-ms",
        "20",
        "--sim-start-ms",
        "20",
        "--sts-credential-ttl",
        TTL,
    ];
    flags.extend_from_slice(extra);
    EmulatorProcess::start(ground.eci_vk(), &flags)
}

/// The variables RRSA sets in the node's pod, for `token`.
fn rrsa_env(token: &Path) -> Vec<(String, String)> {
    vec![
        ("ALIBABA_CLOUD_ROLE_ARN".into(), role_arn("NodeRole")),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN".into(),
            format!("acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-test"),
        ),
        (
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE".into(),
            token.display().to_string(),
        ),
    ]
}

/// A service-account token for STS, as RRSA projects it into the node's pod.
fn oidc_token(ground: &Ground, ns: &str, dir: &Path) -> Result<std::path::PathBuf> {
    ground
        .kubectl()
        .args(["-n", ns, "create", "serviceaccount", "eci-vk-rrsa"])
        .ok()?;
    let token = ground
        .kubectl()
        .args([
            "-n",
            ns,
            "create",
            "token",
            "eci-vk-rrsa",
            "--audience",
            "sts.aliyuncs.com",
            "--duration",
            "1h",
        ])
        .ok()?;
    let path = dir.join("oidc-token");
    std::fs::write(&path, token.trim())?;
    Ok(path)
}

fn pod_yaml(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n"
    )
}

fn phase_of(ground: &Ground, ns: &str, pod: &str) -> Result<String> {
    Ok(ground
        .kubectl()
        .args([
            "-n",
            ns,
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.phase}",
        ])
        .run()?
        .stdout
        .trim()
        .to_owned())
}

fn every_source_of_the_chain_runs_a_pod(ground: &Ground, ns: &Namespace) -> Result<()> {
    let ns = ns.name.as_str();
    let emulator = emulator(ground, &["--ecs-ram-role", "WorkerRole"])?;
    let endpoint = emulator.endpoint.clone();
    let sts = ["--sts-endpoint".to_owned(), endpoint.clone()];

    let ini_dir = tempfile::tempdir()?;
    let ini = ini_dir.path().join("credentials");
    std::fs::write(
        &ini,
        format!(
            "[default]\ntype = access_key\naccess_key_id = {ACCESS_KEY_ID}\naccess_key_secret = {ACCESS_KEY_SECRET}\n"
        ),
    )?;
    let token_dir = tempfile::tempdir()?;
    let token = oidc_token(ground, ns, token_dir.path())?;

    // (source, what the node logs as its source, CLI profile to write, env, flags)
    type Case = (&'static str, String, Option<String>, CloudEnv, Vec<String>);
    let cases: Vec<Case> = vec![
        (
            "environment",
            "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)".into(),
            None,
            CloudEnv::AccessKey,
            Vec::new(),
        ),
        (
            "ini",
            format!("profile 'default' of {}", ini.display()),
            None,
            CloudEnv::Chain(vec![(
                "ALIBABA_CLOUD_CREDENTIALS_FILE".into(),
                ini.display().to_string(),
            )]),
            Vec::new(),
        ),
        (
            "cli-role",
            format!("AssumeRole {}", role_arn("CliRole")),
            Some(format!(
                r#"{{"current": "vk", "profiles": [{{"name": "vk", "mode": "RamRoleArn", "access_key_id": "{ACCESS_KEY_ID}", "access_key_secret": "{ACCESS_KEY_SECRET}", "ram_role_arn": "{}", "ram_session_name": "vk-test"}}]}}"#,
                role_arn("CliRole")
            )),
            CloudEnv::Chain(Vec::new()),
            sts.to_vec(),
        ),
        (
            "rrsa",
            format!("RRSA (AssumeRoleWithOIDC, role {})", role_arn("NodeRole")),
            None,
            CloudEnv::Chain(rrsa_env(&token)),
            sts.to_vec(),
        ),
        (
            "ecs-role",
            "ECS instance RAM role (named by the metadata service)".into(),
            None,
            CloudEnv::Chain(Vec::new()),
            vec![
                "--cloud".into(),
                "aliyun".into(),
                "--ecs-metadata-endpoint".into(),
                endpoint.clone(),
            ],
        ),
    ];
    for (source, described, cli_profile, env, flags) in cases {
        let dir = tempfile::tempdir()?;
        if let Some(profile) = cli_profile {
            std::fs::create_dir_all(dir.path().join(".aliyun"))?;
            std::fs::write(dir.path().join(".aliyun/config.json"), profile)?;
        }
        let node = NodeChild::spawn_with(
            ground,
            format!("vk-cred-{source}-{}", std::process::id()),
            &endpoint,
            dir.path(),
            &flags,
            "info",
            env,
        )?;
        node.wait_ready()
            .with_context(|| format!("source {source}"))?;
        let pod = format!("on-{source}");
        ground
            .kubectl()
            .args(["-n", ns, "apply", "-f", "-"])
            .stdin(pod_yaml(&pod, &node.name))
            .ok()?;
        wait(&format!("pod {pod} Running"), 60, || {
            Ok((phase_of(ground, ns, &pod)? == "Running").then_some(()))
        })
        .with_context(|| format!("source {source}; node log:\n{}", node.logs()))?;
        let logs = node.logs();
        ensure!(
            logs.contains(&described),
            "the node did not log its credential source {described:?}:\n{logs}"
        );
        ensure!(
            !logs.contains(ACCESS_KEY_SECRET),
            "the node logged the AccessKey secret ({source})"
        );
        ground
            .kubectl()
            .args(["-n", ns, "delete", "pod", &pod, "--wait=false"])
            .ok()?;
    }

    // A broken source stops the node at start with the reason, naming no secret: an RRSA set
    // with its token file missing.
    let dir = tempfile::tempdir()?;
    let out = std::process::Command::new(ground.eci_vk())
        .args(["run", "--kubeconfig"])
        .arg(&ground.kubeconfig)
        .args(["--node-name", "vk-cred-broken", "--eci-endpoint", &endpoint])
        .args(&sts)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env("HOME", dir.path())
        .env("ALIBABA_CLOUD_ROLE_ARN", role_arn("NodeRole"))
        .env(
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            format!("acs:ram::{ACCOUNT}:oidc-provider/p"),
        )
        .env("ALIBABA_CLOUD_OIDC_TOKEN_FILE", dir.path().join("absent"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("OIDC token file"),
        "a missing token file did not stop the node with its reason: {stderr}"
    );
    Ok(())
}

fn pods_keep_starting_across_credential_refreshes(ground: &Ground, ns: &Namespace) -> Result<()> {
    let ns = ns.name.as_str();
    let emulator = emulator(ground, &[])?;
    let dir = tempfile::tempdir()?;
    let token = oidc_token(ground, ns, dir.path())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let node = NodeChild::spawn_with(
        ground,
        format!("vk-cred-refresh-{}", std::process::id()),
        &emulator.endpoint,
        dir.path(),
        &[
            "--sts-endpoint".to_owned(),
            emulator.endpoint.clone(),
            "--metrics-addr".to_owned(),
            format!("127.0.0.1:{port}"),
        ],
        "info",
        CloudEnv::Chain(rrsa_env(&token)),
    )?;
    node.wait_ready()?;

    // A pod every 3 s for 60 s: three credential lives, with the node describing its groups
    // twice a second throughout.
    let started = std::time::Instant::now();
    let mut pods = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        let pod = format!("p{}", pods.len());
        ground
            .kubectl()
            .args(["-n", ns, "apply", "-f", "-"])
            .stdin(pod_yaml(&pod, &node.name))
            .ok()?;
        pods.push(pod);
        std::thread::sleep(Duration::from_secs(3));
    }
    for pod in &pods {
        wait(&format!("pod {pod} Running"), 60, || {
            Ok((phase_of(ground, ns, pod)? == "Running").then_some(()))
        })
        .with_context(|| format!("node log:\n{}", node.logs()))?;
    }
    let text = metrics_at(port)?;
    let fetches = sample(&text, "eci_vk_credential_fetches_total");
    ensure!(
        fetches >= 4.0,
        "credentials living {TTL} were fetched only {fetches} times in 60 s:\n{text}"
    );
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("eci_vk_api_calls_total{") && !l.contains("result=\"ok\""))
        .collect();
    ensure!(
        failed.is_empty(),
        "ECI calls failed across credential refreshes: {failed:?}\nnode log:\n{}",
        node.logs()
    );
    Ok(())
}
