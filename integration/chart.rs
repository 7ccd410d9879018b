//! The Helm chart (`charts/eci-virtual-kubelet`) as a cluster admin meets it: `helm lint` and
//! `helm template` with the default values and with several zones and an existing Secret; the
//! values schema refusing bad values by name; the real API server accepting what the chart
//! renders; and the node running with exactly the chart's RBAC — a token of the chart's
//! ServiceAccount, the rendered ClusterRole and Roles applied for real — while a pod and an
//! ImageCache go through their whole life, and `kubectl auth can-i` showing what it may not do.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::support::{
    Ground,
    emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, EmulatorProcess},
    ground::Namespace,
    harness::{Phase, Test},
    image::{self, ImageSpec},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "chart::lint_and_template_default_and_multi_zone",
            phase: Phase::WithCrd,
            run: lint_and_template_default_and_multi_zone,
        },
        Test {
            name: "chart::schema_rejects_missing_region_and_bad_taint_effect",
            phase: Phase::WithCrd,
            run: schema_rejects_missing_region_and_bad_taint_effect,
        },
        Test {
            name: "chart::api_server_accepts_the_rendered_manifests",
            phase: Phase::WithCrd,
            run: api_server_accepts_the_rendered_manifests,
        },
        Test {
            name: "chart::node_runs_pods_and_caches_with_only_the_chart_rbac",
            phase: Phase::WithCrd,
            run: node_runs_pods_and_caches_with_only_the_chart_rbac,
        },
        Test {
            name: "chart::profile_and_webhook_objects",
            phase: Phase::WithCrd,
            run: profile_and_webhook_objects,
        },
        Test {
            name: "chart::rbac_namespaces_narrow_what_pods_sources_may_read",
            phase: Phase::WithCrd,
            run: rbac_namespaces_narrow_what_pods_sources_may_read,
        },
    ]
}

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/eci-virtual-kubelet")
}

/// What a finished helm printed.
struct HelmOutcome {
    success: bool,
    stdout: String,
    stderr: String,
}

/// The ground's Kubernetes version, as its API server reports it, which `helm template` and
/// `lint` check the chart's `kubeVersion` against (offline, helm would assume v1.20).
fn kube_version(ground: &Ground) -> Result<String> {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(version) = VERSION.get() {
        return Ok(version.clone());
    }
    let text = ground.kubectl().args(["version", "-o", "json"]).ok()?;
    let parsed: Value = serde_json::from_str(&text)?;
    let version = parsed["serverVersion"]["gitVersion"]
        .as_str()
        .context("no serverVersion in kubectl version")?
        .to_owned();
    Ok(VERSION.get_or_init(|| version).clone())
}

/// Runs the ground's helm (no cluster access: lint and template only, as the ground's
/// Kubernetes version).
fn helm(ground: &Ground, args: &[&str]) -> Result<HelmOutcome> {
    let offline = matches!(args.first(), Some(&("template" | "lint")));
    let version = kube_version(ground)?;
    let out = Command::new(ground.bin.join("helm"))
        .args(args)
        .args(if offline {
            vec!["--kube-version", version.as_str()]
        } else {
            Vec::new()
        })
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("eci-vk-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("eci-vk-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("eci-vk-helm-data"),
        )
        .stdin(Stdio::null())
        .output()
        .context("cannot run helm")?;
    Ok(HelmOutcome {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The placement ECI needs (the schema refuses a release without it); tests' own `--set`s
/// come after and win, and a values file (`-f`) replaces it.
const PLACEMENT: [&str; 4] = [
    "--set",
    "securityGroup=sg-ground",
    "--set",
    "vSwitches={vsw-ground}",
];

/// `helm template <release> <chart> -n <namespace> <extra>` (after [`PLACEMENT`]); the
/// manifests, or an error with helm's message.
pub(crate) fn template(
    ground: &Ground,
    release: &str,
    namespace: &str,
    extra: &[&str],
) -> Result<String> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let mut args = vec!["template", release, &chart, "--namespace", namespace];
    // `--set` beats `-f`: a values file brings its own placement.
    if !extra.contains(&"-f") {
        args.extend_from_slice(&PLACEMENT);
    }
    args.extend_from_slice(extra);
    let out = helm(ground, &args)?;
    ensure!(
        out.success,
        "helm {} failed: {}",
        args.join(" "),
        out.stderr.trim()
    );
    Ok(out.stdout)
}

pub(crate) fn lint(ground: &Ground, extra: &[&str]) -> Result<()> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let mut args = vec!["lint", "--strict", &chart];
    // `--set` beats `-f`: a values file brings its own placement.
    if !extra.contains(&"-f") {
        args.extend_from_slice(&PLACEMENT);
    }
    args.extend_from_slice(extra);
    let out = helm(ground, &args)?;
    ensure!(
        out.success,
        "helm {} failed: {}{}",
        args.join(" "),
        out.stdout.trim(),
        out.stderr.trim()
    );
    Ok(())
}

/// The rendered documents, as JSON values.
pub(crate) fn documents(manifests: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(manifests) {
        let value = <Value as serde::Deserialize>::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

pub(crate) fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The env of a Deployment's only container: name → the whole entry.
fn env_of(deployment: &Value) -> BTreeMap<String, Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e.clone())))
        .collect()
}

/// Every ALIBABA_CLOUD_* variable comes from the Secret `secret`, none is a plain value.
fn credentials_only_from_secret(deployment: &Value, secret: &str) -> Result<()> {
    let env = env_of(deployment);
    for name in [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ] {
        let entry = env
            .get(name)
            .with_context(|| format!("no {name} in {env:?}"))?;
        ensure!(entry.get("value").is_none(), "{name} is a plain value");
        ensure!(
            entry["valueFrom"]["secretKeyRef"]["name"] == secret,
            "{name} does not come from the Secret {secret}: {entry}"
        );
    }
    Ok(())
}

fn lint_and_template_default_and_multi_zone(ground: &Ground, _ns: &Namespace) -> Result<()> {
    // The defaults: one node, the AccessKey from the Secret eci-credentials.
    lint(ground, &[])?;
    let docs = documents(&template(ground, "vk", "eci-system", &[])?)?;
    let deployments = of_kind(&docs, "Deployment");
    ensure!(deployments.len() == 1, "{} Deployments", deployments.len());
    let env = env_of(deployments[0]);
    ensure!(
        env["VK_NODE_NAME"]["value"] == "virtual-kubelet",
        "{:?}",
        env["VK_NODE_NAME"]
    );
    credentials_only_from_secret(deployments[0], "eci-credentials")?;
    ensure!(
        of_kind(&docs, "Secret").is_empty(),
        "the chart made a Secret while one exists"
    );
    for kind in ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"] {
        ensure!(of_kind(&docs, kind).len() == 1, "no single {kind}");
    }
    ensure!(
        env["VK_CLOUD"]["value"] == "aliyun",
        "{:?}",
        env["VK_CLOUD"]
    );
    // Two processes per node that take turns: a RollingUpdate that adds before it removes,
    // and a PodDisruptionBudget.
    let strategy = &deployments[0]["spec"]["strategy"];
    ensure!(
        deployments[0]["spec"]["replicas"] == 2
            && strategy["type"] == "RollingUpdate"
            && strategy["rollingUpdate"]["maxSurge"] == 1
            && strategy["rollingUpdate"]["maxUnavailable"] == 0,
        "not two replicas rolling one at a time: {}",
        deployments[0]["spec"]
    );
    ensure!(
        of_kind(&docs, "PodDisruptionBudget").len() == 1,
        "no PodDisruptionBudget"
    );
    // Without the Lease: one process, stopped before its successor starts; more is refused.
    let alone = documents(&template(
        ground,
        "vk",
        "eci-system",
        &[
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "replicas=1",
        ],
    )?)?;
    ensure!(
        of_kind(&alone, "Deployment")[0]["spec"]["strategy"]["type"] == "Recreate"
            && of_kind(&alone, "PodDisruptionBudget").is_empty(),
        "a single process without election is not replaced with Recreate"
    );
    let refused = template(
        ground,
        "vk",
        "eci-system",
        &["--set", "leaderElection.enabled=false"],
    );
    ensure!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("needs replicas: 1")),
        "two replicas without election were not refused: {refused:?}"
    );

    // RRSA: no AccessKey, the role and provider in the environment, the token projected for
    // STS's audience, the role named on the ServiceAccount.
    let rrsa = [
        "--set",
        "credentials.rrsa.enabled=true",
        "--set",
        "credentials.rrsa.roleArn=acs:ram::1234567890123456:role/eci-vk",
        "--set",
        "credentials.rrsa.oidcProviderArn=acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1",
    ];
    lint(ground, &rrsa)?;
    let docs = documents(&template(ground, "vk", "eci-system", &rrsa)?)?;
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = env_of(deployment);
    ensure!(
        !env.contains_key("ALIBABA_CLOUD_ACCESS_KEY_ID") && of_kind(&docs, "Secret").is_empty(),
        "RRSA still uses an AccessKey: {env:?}"
    );
    ensure!(
        env["ALIBABA_CLOUD_ROLE_ARN"]["value"] == "acs:ram::1234567890123456:role/eci-vk"
            && env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]["value"]
                == "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token",
        "{env:?}"
    );
    let projected = &deployment["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
        [0]["serviceAccountToken"];
    ensure!(
        projected["audience"] == "sts.aliyuncs.com" && projected["path"] == "token",
        "no projected STS token: {projected}"
    );
    ensure!(
        of_kind(&docs, "ServiceAccount")[0]["metadata"]["annotations"]
            ["pod-identity.alibabacloud.com/role-name"]
            .is_null(),
        "the ServiceAccount asks ACK's webhook to inject what the chart injects itself"
    );
    // With ACK's pod-identity webhook: the role on the ServiceAccount, nothing injected here.
    let webhook: Vec<&str> = rrsa
        .iter()
        .copied()
        .chain(["--set", "credentials.rrsa.useWebhook=true"])
        .collect();
    let docs = documents(&template(ground, "vk", "eci-system", &webhook)?)?;
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = env_of(deployment);
    ensure!(
        !env.contains_key("ALIBABA_CLOUD_ROLE_ARN")
            && !env.contains_key("ALIBABA_CLOUD_ACCESS_KEY_ID")
            && deployment["spec"]["template"]["spec"]["volumes"].is_null(),
        "the chart injects RRSA beside the webhook: {env:?}"
    );
    ensure!(
        of_kind(&docs, "ServiceAccount")[0]["metadata"]["annotations"]["pod-identity.alibabacloud.com/role-name"]
            == "eci-vk",
        "the ServiceAccount does not name the role for the webhook"
    );
    // The old millisecond value is refused by name.
    let chart = chart_dir();
    let out = helm(
        ground,
        &[
            "template",
            "vk",
            &chart.to_string_lossy(),
            "--set",
            "podSyncIntervalMs=500",
        ],
    )?;
    ensure!(
        !out.success && out.stderr.contains("podSyncInterval"),
        "podSyncIntervalMs was not refused: {}",
        out.stderr
    );

    // Several zones, an existing Secret, the metrics Service and ServiceMonitor.
    let values = tempfile::NamedTempFile::new()?;
    std::fs::write(
        values.path(),
        "region: cn-hangzhou\nsecurityGroup: sg-abc\nvSwitches: [vsw-default]\n\
         ramRoleName: AppRole\nspotFallback: true\n\
         zones:\n- name: cn-hangzhou-h\n  vSwitches: [vsw-hhh, vsw-hh2]\n- name: cn-hangzhou-i\n  vSwitches: [vsw-iii]\n\
         credentials: {existingSecret: my-eci-key}\n\
         taint: {enabled: true, key: eci, value: \"\", effect: NoExecute}\n\
         metrics: {port: 10255, service: {enabled: true}, serviceMonitor: {enabled: true}}\n",
    )?;
    let values = values.path().to_string_lossy().into_owned();
    lint(ground, &["-f", &values])?;
    let docs = documents(&template(ground, "vk", "eci-system", &["-f", &values])?)?;
    // One process serves a node per zone, each zone with its own vSwitches.
    let deployments = of_kind(&docs, "Deployment");
    ensure!(deployments.len() == 1, "{} Deployments", deployments.len());
    let deployment = deployments[0];
    let env = env_of(deployment);
    credentials_only_from_secret(deployment, "my-eci-key")?;
    ensure!(env["VK_TAINT"]["value"] == "eci:NoExecute", "{env:?}");
    ensure!(env["VK_SECURITY_GROUP_ID"]["value"] == "sg-abc", "{env:?}");
    // Node-wide defaults of the pod annotations.
    ensure!(env["VK_RAM_ROLE_NAME"]["value"] == "AppRole", "{env:?}");
    ensure!(env["VK_SPOT_FALLBACK"]["value"] == "true", "{env:?}");
    ensure!(
        env["VK_ZONE_VSWITCHES"]["value"] == "cn-hangzhou-h=vsw-hhh,vsw-hh2;cn-hangzhou-i=vsw-iii"
            && env["VK_ZONE_NODE_PREFIX"]["value"] == "virtual-kubelet"
            && !env.contains_key("VK_NODE_NAME")
            && !env.contains_key("VK_VSWITCH_ID"),
        "zones: {env:?}"
    );
    // Each node's kubelet API has a port of its own.
    let ports: Vec<(String, i64)> =
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_owned(),
                    p["containerPort"].as_i64().unwrap_or_default(),
                )
            })
            .filter(|(name, _)| name.starts_with("kubelet"))
            .collect();
    ensure!(
        ports
            == [
                ("kubelet".to_owned(), 10250),
                ("kubelet-1".to_owned(), 10251)
            ],
        "kubelet ports: {ports:?}"
    );
    ensure!(of_kind(&docs, "Secret").is_empty(), "a Secret was rendered");
    ensure!(of_kind(&docs, "Service").len() == 1, "no metrics Service");
    ensure!(
        of_kind(&docs, "ServiceMonitor").len() == 1,
        "no ServiceMonitor"
    );
    // The ClusterRole names both nodes and nothing else may be created or patched.
    let role = of_kind(&docs, "ClusterRole")[0];
    let node_rule = role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["resources"][0] == "nodes")
        .context("no rule for nodes")?;
    ensure!(
        node_rule["resourceNames"]
            == serde_json::json!([
                "virtual-kubelet-cn-hangzhou-h",
                "virtual-kubelet-cn-hangzhou-i"
            ]),
        "{node_rule}"
    );

    // No wildcard anywhere, and Secrets may only be read one by one.
    for role in of_kind(&docs, "ClusterRole")
        .into_iter()
        .chain(of_kind(&docs, "Role"))
    {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let text = rule.to_string();
            ensure!(!text.contains("\"*\""), "a wildcard in {text}");
            if rule["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == "secrets"))
            {
                ensure!(rule["verbs"] == serde_json::json!(["get"]), "{text}");
            }
        }
    }

    // The AccessKey given in values: the chart makes the Secret and only refers to it.
    let docs = documents(&template(
        ground,
        "vk",
        "eci-system",
        &[
            "--set",
            "credentials.existingSecret=",
            "--set",
            "credentials.accessKeyId=LTAI-from-values",
            "--set",
            "credentials.accessKeySecret=secret-from-values",
        ],
    )?)?;
    let secrets = of_kind(&docs, "Secret");
    ensure!(secrets.len() == 1, "no Secret made from values");
    let name = secrets[0]["metadata"]["name"].as_str().unwrap_or("");
    let deployment = of_kind(&docs, "Deployment")[0];
    credentials_only_from_secret(deployment, name)?;
    let text = serde_json::to_string(deployment)?;
    ensure!(
        !text.contains("secret-from-values") && !text.contains("LTAI-from-values"),
        "the AccessKey is in the Deployment"
    );
    Ok(())
}

fn schema_rejects_missing_region_and_bad_taint_effect(
    ground: &Ground,
    _ns: &Namespace,
) -> Result<()> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let cases: [(&[&str], &[&str]); 10] = [
        (&["--set", "securityGroup="], &["/securityGroup"]),
        (
            &["--set", "vSwitches=null"],
            &["anyOf", "vSwitches", "/zones"],
        ),
        (
            &["--set", "replicaCount=2"],
            &["additional properties 'replicaCount' not allowed"],
        ),
        (
            &["--set", "leaderElection.renewDeadline=soon"],
            &["/leaderElection/renewDeadline"],
        ),
        (&["--set", "region=null"], &["missing property 'region'"]),
        (&["--set", "region="], &["/region"]),
        (
            &["--set", "taint.effect=Sometimes"],
            &[
                "/taint/effect",
                "NoSchedule",
                "PreferNoSchedule",
                "NoExecute",
            ],
        ),
        (
            &[
                "--set",
                "credentials.existingSecret=",
                "--set",
                "credentials.accessKeyId=only-half",
            ],
            &["/credentials/accessKeySecret"],
        ),
        (
            &["--set", "credentials.existingSecret="],
            &["/credentials/accessKeyId", "/credentials/accessKeySecret"],
        ),
        // One process, one security group (ACK's eci-profile has one securityGroupId).
        (
            &[
                "--set",
                "zones[0].name=cn-hangzhou-h",
                "--set",
                "zones[0].securityGroup=sg-other",
            ],
            &["additional properties 'securityGroup' not allowed"],
        ),
    ];
    // A vSwitch is in one zone: with several zones, each lists its own (a template's `fail`,
    // which `helm lint` reports only as information).
    let out = helm(
        ground,
        &[
            "template",
            "vk",
            &chart,
            PLACEMENT[0],
            PLACEMENT[1],
            PLACEMENT[2],
            PLACEMENT[3],
            "--set",
            "zones[0].name=cn-hangzhou-h",
            "--set",
            "zones[0].vSwitches={vsw-hhh}",
            "--set",
            "zones[1].name=cn-hangzhou-i",
        ],
    )?;
    ensure!(
        !out.success
            && out
                .stderr
                .contains("zones[1] (cn-hangzhou-i) has no vSwitches"),
        "a zone without vSwitches was not refused: {}",
        out.stderr
    );
    for (set, wanted) in cases {
        for command in ["template", "lint"] {
            let mut args = vec![command];
            if command == "template" {
                args.push("vk");
            }
            args.push(&chart);
            args.extend_from_slice(&PLACEMENT);
            args.extend_from_slice(set);
            let out = helm(ground, &args)?;
            let said = format!("{}{}", out.stdout, out.stderr);
            ensure!(!out.success, "helm {} succeeded", args.join(" "));
            for needle in wanted {
                ensure!(
                    said.contains(needle),
                    "helm {} does not say {needle:?}: {said}",
                    args.join(" ")
                );
            }
        }
    }
    Ok(())
}

fn api_server_accepts_the_rendered_manifests(ground: &Ground, ns: &Namespace) -> Result<()> {
    let variants: [&[&str]; 2] = [
        &[],
        &[
            "--set",
            "zones[0].name=cn-hangzhou-h",
            "--set",
            "zones[0].vSwitches={vsw-hhh}",
            "--set",
            "zones[1].name=cn-hangzhou-i",
            "--set",
            "zones[1].vSwitches={vsw-iii}",
            "--set",
            "credentials.existingSecret=my-eci-key",
            "--set",
            "metrics.service.enabled=true",
        ],
    ];
    for extra in variants {
        let manifests = template(ground, "vk-dry", &ns.name, extra)?;
        let applied = ground
            .kubectl()
            .args(["apply", "--dry-run=server", "-f", "-"])
            .stdin(manifests)
            .ok()?;
        for kind in [
            "serviceaccount/",
            "clusterrole.rbac.authorization.k8s.io/",
            "clusterrolebinding.rbac.authorization.k8s.io/",
            "role.rbac.authorization.k8s.io/",
            "rolebinding.rbac.authorization.k8s.io/",
            "deployment.apps/",
        ] {
            ensure!(applied.contains(kind), "no {kind} in {applied}");
        }
    }
    Ok(())
}

/// The eci-profile ConfigMap with ACK's defaults, the Role that lets the node watch only it,
/// and with `webhook.enabled` the webhook's Secret, Service, MutatingWebhookConfiguration
/// (failurePolicy Ignore, sideEffects None, v1 reviews, 5 s, pods CREATE, kube-system left out)
/// and the Deployment's flags, port and mounted certificate; the API server accepts them.
fn profile_and_webhook_objects(ground: &Ground, ns: &Namespace) -> Result<()> {
    let on: &[&str] = &["--set", "webhook.enabled=true"];
    lint(ground, on)?;
    let docs = documents(&template(ground, "vk", "eci-system", on)?)?;

    let maps = of_kind(&docs, "ConfigMap");
    ensure!(maps.len() == 1, "{} ConfigMaps", maps.len());
    let map = maps[0];
    ensure!(
        map["metadata"]["name"] == "eci-profile" && map["metadata"]["namespace"] == "kube-system",
        "{}",
        map["metadata"]
    );
    ensure!(
        map["data"]["enableClusterIp"] == "true"
            && map["data"]["featureGates"] == "WaitForFirstConsumer=false"
            && map["data"]["selectors"] == "",
        "ACK's defaults: {}",
        map["data"]
    );
    let role = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "vk-eci-virtual-kubelet-profile")
        .context("no Role for the profile")?;
    ensure!(
        role["metadata"]["namespace"] == "kube-system"
            && role["rules"]
                == serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"], "resourceNames": ["eci-profile"]}]),
        "{role}"
    );
    let cluster_role = of_kind(&docs, "ClusterRole")[0];
    ensure!(
        cluster_role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["resources"] == serde_json::json!(["namespaces"])
                && r["verbs"] == serde_json::json!(["get"])),
        "no namespaces get in {cluster_role}"
    );

    let secrets = of_kind(&docs, "Secret");
    ensure!(secrets.len() == 1, "{} Secrets", secrets.len());
    let secret = secrets[0];
    ensure!(
        secret["type"] == "kubernetes.io/tls"
            && secret["metadata"]["name"] == "vk-eci-virtual-kubelet-webhook-tls",
        "{}",
        secret["metadata"]
    );
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        ensure!(
            secret["data"][key].as_str().is_some_and(|v| !v.is_empty()),
            "no {key} in the webhook Secret"
        );
    }
    let services = of_kind(&docs, "Service");
    let service = services
        .iter()
        .find(|s| s["metadata"]["name"] == "vk-eci-virtual-kubelet-webhook")
        .context("no webhook Service")?;
    ensure!(
        service["spec"]["ports"][0]["port"] == 443
            && service["spec"]["ports"][0]["targetPort"] == "webhook",
        "{}",
        service["spec"]
    );
    let configs = of_kind(&docs, "MutatingWebhookConfiguration");
    ensure!(
        configs.len() == 1,
        "{} webhook configurations",
        configs.len()
    );
    let hook = &configs[0]["webhooks"][0];
    ensure!(
        hook["failurePolicy"] == "Ignore"
            && hook["sideEffects"] == "None"
            && hook["admissionReviewVersions"] == serde_json::json!(["v1"])
            && hook["timeoutSeconds"] == 5,
        "{hook}"
    );
    ensure!(
        hook["rules"]
            == serde_json::json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}]),
        "{}",
        hook["rules"]
    );
    ensure!(
        hook["namespaceSelector"]
            == serde_json::json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]}),
        "{}",
        hook["namespaceSelector"]
    );
    ensure!(
        hook["clientConfig"]["service"]
            == serde_json::json!({"name": "vk-eci-virtual-kubelet-webhook", "namespace": "eci-system", "path": "/mutate-pods", "port": 443}),
        "{}",
        hook["clientConfig"]
    );
    ensure!(
        hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"],
        "the caBundle is not the Secret's CA"
    );
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = env_of(deployment);
    for (name, value) in [
        ("VK_WEBHOOK_LISTEN", "0.0.0.0:9443"),
        (
            "VK_WEBHOOK_TLS_CERT_FILE",
            "/etc/eci-vk/webhook-tls/tls.crt",
        ),
        ("VK_WEBHOOK_TLS_KEY_FILE", "/etc/eci-vk/webhook-tls/tls.key"),
        ("VK_PROFILE_NAMESPACE", "kube-system"),
        ("VK_PROFILE_NAME", "eci-profile"),
    ] {
        ensure!(env[name]["value"] == value, "{name}: {:?}", env.get(name));
    }
    let pod = &deployment["spec"]["template"]["spec"];
    ensure!(
        pod["containers"][0]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "webhook" && p["containerPort"] == 9443),
        "no webhook port"
    );
    ensure!(
        pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["secret"]["secretName"] == "vk-eci-virtual-kubelet-webhook-tls"),
        "the webhook Secret is not mounted"
    );

    // Off by default: no webhook objects, and no flag.
    let docs = documents(&template(ground, "vk", "eci-system", &[])?)?;
    ensure!(
        of_kind(&docs, "MutatingWebhookConfiguration").is_empty()
            && of_kind(&docs, "Secret").is_empty(),
        "webhook objects without webhook.enabled"
    );
    ensure!(
        !env_of(of_kind(&docs, "Deployment")[0]).contains_key("VK_WEBHOOK_LISTEN"),
        "VK_WEBHOOK_LISTEN without webhook.enabled"
    );

    // An existing ConfigMap elsewhere, and a certificate of the admin's.
    let docs = documents(&template(
        ground,
        "vk",
        "eci-system",
        &[
            "--set",
            "webhook.enabled=true",
            "--set",
            "profile.create=false",
            "--set",
            "profile.namespace=eci-system",
            "--set",
            "profile.name=my-profile",
            "--set",
            "webhook.existingSecret=my-webhook-tls",
            "--set",
            "webhook.caBundle=Q0E=",
        ],
    )?)?;
    ensure!(
        of_kind(&docs, "ConfigMap").is_empty(),
        "a ConfigMap with profile.create=false"
    );
    ensure!(
        of_kind(&docs, "Secret").is_empty(),
        "a Secret with webhook.existingSecret"
    );
    ensure!(
        of_kind(&docs, "MutatingWebhookConfiguration")[0]["webhooks"][0]["clientConfig"]["caBundle"]
            == "Q0E=",
        "not the given caBundle"
    );
    let role = of_kind(&docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "vk-eci-virtual-kubelet-profile")
        .context("no Role for the profile")?;
    ensure!(
        role["metadata"]["namespace"] == "eci-system"
            && role["rules"][0]["resourceNames"] == serde_json::json!(["my-profile"]),
        "{role}"
    );
    let missing_ca = template(
        ground,
        "vk",
        "eci-system",
        &[
            "--set",
            "webhook.enabled=true",
            "--set",
            "webhook.existingSecret=x",
        ],
    );
    ensure!(
        missing_ca.is_err_and(|e| e.to_string().contains("webhook.caBundle")),
        "an existing Secret without its CA was accepted"
    );

    // The API server accepts what the chart renders with the webhook.
    let manifests = template(ground, "vk-dry", &ns.name, on)?;
    let applied = ground
        .kubectl()
        .args(["apply", "--dry-run=server", "-f", "-"])
        .stdin(manifests)
        .ok()?;
    for kind in [
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/",
        "configmap/eci-profile",
        "secret/vk-dry-eci-virtual-kubelet-webhook-tls",
        "service/vk-dry-eci-virtual-kubelet-webhook",
    ] {
        ensure!(applied.contains(kind), "no {kind} in {applied}");
    }
    Ok(())
}

/// The chart's ServiceAccount and RBAC objects among `docs`, as one YAML stream, and the
/// ServiceAccount's name.
fn rbac_of(docs: &[Value]) -> Result<(String, String)> {
    let yaml = docs
        .iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .map(serde_yaml_ng::to_string)
        .collect::<Result<Vec<_>, _>>()?
        .join("---\n");
    let account = of_kind(docs, "ServiceAccount")[0]["metadata"]["name"]
        .as_str()
        .context("ServiceAccount name")?
        .to_owned();
    Ok((yaml, account))
}

/// `rbac.namespaces`: Secrets, ConfigMaps, claims and service-account tokens only in the
/// namespaces named; the rest of what the node needs everywhere. Asked of the API server's
/// own authorizer (`kubectl auth can-i --as` the chart's ServiceAccount).
fn rbac_namespaces_narrow_what_pods_sources_may_read(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let release = format!("vkr{}", std::process::id());
    let manifests = template(
        ground,
        &release,
        &ns.name,
        &["--set", &format!("rbac.namespaces={{{}}}", ns.name)],
    )?;
    let docs = documents(&manifests)?;
    let (yaml, account) = rbac_of(&docs)?;
    ground
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(yaml.clone())
        .ok()?;
    let user = format!("system:serviceaccount:{}:{account}", ns.name);
    let can = |args: &[&str]| -> Result<bool> {
        let out = ground
            .kubectl()
            .args(["auth", "can-i"])
            .args(args)
            .args(["--as", &user])
            .run()?;
        Ok(out.stdout.trim() == "yes")
    };
    let checks: [(&[&str], bool); 7] = [
        (&["get", "secrets", "-n", &ns.name], true),
        (
            &[
                "create",
                "serviceaccounts",
                "--subresource=token",
                "-n",
                &ns.name,
            ],
            true,
        ),
        (&["get", "secrets", "-n", "default"], false),
        (&["get", "configmaps", "-n", "default"], false),
        (
            &[
                "create",
                "serviceaccounts",
                "--subresource=token",
                "-n",
                "kube-system",
            ],
            false,
        ),
        (
            &[
                "get",
                "configmaps/extension-apiserver-authentication",
                "-n",
                "kube-system",
            ],
            true,
        ),
        (&["list", "pods", "--all-namespaces"], true),
    ];
    let mut wrong = Vec::new();
    for (args, expected) in checks {
        if can(args)? != expected {
            wrong.push(format!("can-i {} should be {expected}", args.join(" ")));
        }
    }
    let _ = ground
        .kubectl()
        .args(["delete", "--ignore-not-found", "--wait=false", "-f", "-"])
        .stdin(yaml)
        .ok();
    ensure!(wrong.is_empty(), "{}", wrong.join("; "));
    Ok(())
}

/// The chart's objects applied for real for one test, and the node running under them. On
/// drop — also when the test fails — the test's ImageCaches go first (while the node still
/// runs to release them), then the node, its Node object, the leader Lease and every
/// cluster-wide or kube-system object the test created.
struct ChartNode<'g> {
    ground: &'g Ground,
    node: String,
    cache_label: String,
    leader_lease: String,
    rbac_yaml: String,
    child: Option<Child>,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl ChartNode<'_> {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.ground.kubectl().args(args).ok()
    }

    /// The address the node logged for its metrics (and health) server.
    fn metrics_addr(&self) -> Option<String> {
        self.logs()
            .lines()
            .find(|l| l.contains("metrics listening"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    }
}

impl Drop for ChartNode<'_> {
    fn drop(&mut self) {
        let selector = format!("{CACHE_LABEL}={}", self.cache_label);
        self.ground.delete_image_caches(&selector);
        self.ground.force_remove_image_caches(&selector);
        if let Some(mut child) = self.child.take() {
            crate::support::children::stop(&mut child);
        }
        let _ = self.kubectl(&[
            "delete",
            "node",
            &self.node,
            "--ignore-not-found",
            "--wait=false",
        ]);
        let _ = self.kubectl(&[
            "-n",
            "kube-system",
            "delete",
            "lease",
            &self.leader_lease,
            "--ignore-not-found",
        ]);
        let _ = self
            .ground
            .kubectl()
            .args(["delete", "--ignore-not-found", "--wait=false", "-f", "-"])
            .stdin(self.rbac_yaml.clone())
            .run();
    }
}

/// The test's ImageCaches carry its class, so only its node (`imageCache.class`) serves them.
const CACHE_LABEL: &str = eci_vk::imagecache::LABEL_CLASS;

/// A kubeconfig that authenticates with `token` to the admin kubeconfig's API server.
fn token_kubeconfig(ground: &Ground, token: &str) -> Result<String> {
    let admin: Value = serde_json::from_str(
        &ground
            .kubectl()
            .args([
                "config",
                "view",
                "--raw",
                "--minify",
                "--flatten",
                "-o",
                "json",
            ])
            .ok()?,
    )?;
    let cluster = &admin["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .context("no server in the admin kubeconfig")?;
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .context("no CA in the admin kubeconfig")?;
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ground", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "chart-sa", "user": {"token": token}}],
        "contexts": [{"name": "chart", "context": {"cluster": "ground", "user": "chart-sa"}}],
        "current-context": "chart",
    })
    .to_string())
}

use crate::support::wait::wait;

fn node_runs_pods_and_caches_with_only_the_chart_rbac(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let pid = std::process::id();
    let release = format!("vkc{pid}");
    let node_name = format!("vk-chart-{pid}");
    let cluster = format!("chart-{pid}");
    let manifests = template(
        ground,
        &release,
        &ns.name,
        &[
            "--set",
            &format!("nodeName={node_name}"),
            "--set",
            &format!("clusterName={cluster}"),
            "--set",
            &format!("imageCache.class={}", ns.name),
            "--set",
            "logFormat=text",
            "--set",
            "podSyncInterval=500ms",
        ],
    )?;
    let docs = documents(&manifests)?;
    let (rbac_yaml, account) = rbac_of(&docs)?;
    let deployment = of_kind(&docs, "Deployment")[0].clone();
    let tmp = tempfile::tempdir()?;
    let mut node = ChartNode {
        ground,
        node: node_name.clone(),
        cache_label: ns.name.clone(),
        leader_lease: eci_vk::imagecache::lease_name(&cluster, Some(&ns.name)),
        rbac_yaml: rbac_yaml.clone(),
        child: None,
        log: tmp.path().join("node.log"),
        _tmp: tmp,
    };
    ground
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(rbac_yaml)
        .ok()?;

    // The identity a pod of the Deployment would have: a token of the chart's ServiceAccount
    // from the TokenRequest API.
    let token = ground
        .kubectl()
        .args(["create", "token", &account, "-n", &ns.name, "--duration=2h"])
        .ok()?;
    let kubeconfig = node._tmp.path().join("sa.kubeconfig");
    std::fs::write(&kubeconfig, token_kubeconfig(ground, token.trim())?)?;

    let emulator = EmulatorProcess::start(
        ground.eci_vk(),
        &[
            "--no-throttle",
            "--sim-pull-ms",
            "50",
            "--sim-snapshot-ms",
            "50",
            "--sim-start-ms",
            "50",
        ],
    )?;
    let busybox = ground.runtime.block_on(image::build_and_push(
        &ImageSpec::runnable("chart/busybox", "latest"),
        &ground.registry,
    ))?;
    let busybox = ground
        .registry
        .reference(&busybox.spec.repository, &busybox.spec.tag);

    // Start the node with the Deployment's own environment: every plain value the chart
    // sets, the AccessKey as its Secret would give it, and only the endpoint, the kubeconfig
    // and a free metrics port changed for a process outside the cluster.
    let log = std::fs::File::create(&node.log)?;
    let mut command = Command::new(ground.eci_vk());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (name, entry) in env_of(&deployment) {
        if let Some(value) = entry["value"].as_str() {
            command.env(name, value);
        }
    }
    command
        .env("VK_METRICS_ADDR", "127.0.0.1:0")
        .env("VK_KUBELET_LISTEN", "127.0.0.1:0")
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .env("NO_COLOR", "1")
        .args(
            deployment["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        )
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--eci-endpoint", &emulator.endpoint])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let child = command.spawn().context("cannot start eci-vk run")?;
    crate::support::children::register(&child);
    node.child = Some(child);

    let eci = emulator.client()?;
    let identity = Identity {
        account: &account,
        token: token.trim(),
    };
    let result = exercise(ground, ns, &node, &eci, &busybox, &identity);
    result.with_context(|| format!("node log:\n{}", tail(&node.logs(), 60)))
}

/// The chart's ServiceAccount and a token of it.
struct Identity<'a> {
    account: &'a str,
    token: &'a str,
}

/// What the node does under the chart's RBAC, and what it may not do.
fn exercise(
    ground: &Ground,
    ns: &Namespace,
    node: &ChartNode,
    eci: &eci_vk::eci::Client,
    busybox: &str,
    identity: &Identity,
) -> Result<()> {
    let name = node.node.as_str();
    let n = ns.name.as_str();
    ground.wait_node_ready(name, 60)?;

    // The probes, as the chart's Deployment calls them: alive, and ready as the leader.
    let addr = wait("the metrics address in the log", 30, || {
        Ok(node.metrics_addr())
    })?;
    // Ready once its first pass over the pods is done, which may come just after the Node.
    for (path, body) in [("/livez", "ok"), ("/readyz", "leader")] {
        wait(&format!("{path} answering {body}"), 30, || {
            let answer = http_get(&addr, path)?;
            Ok(
                (answer.starts_with("HTTP/1.1 200") && answer.trim_end().ends_with(body))
                    .then_some(()),
            )
        })?;
    }

    // An ImageCache whose pull secret lives in the test's namespace (secrets get), reconciled
    // to Ready (imagecaches list/watch/patch, status patch, the leader Lease in kube-system).
    ground
        .kubectl()
        .args([
            "-n",
            n,
            "create",
            "secret",
            "docker-registry",
            "pull",
            &format!("--docker-server={}", ground.registry.host),
            "--docker-username=anyone",
            "--docker-password=anything",
        ])
        .ok()?;
    let cache = format!("chart-{n}");
    ground
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {cache}\n  labels: {{\"{CACHE_LABEL}\": {n}}}\nspec:\n  images: [\"{busybox}\"]\n  imagePullSecrets: [\"{n}:pull\"]\n"
        ))
        .ok()?;
    // Other tests' nodes that reconcile every ImageCache (no selector) may write their own
    // cloud's id into the status too; the id that counts is a Ready cache of this node's cloud.
    let ready_in_our_cloud = |id: &str| -> Result<bool> {
        let caches = ground.runtime.block_on(eci.describe_all_image_caches(
            &eci_vk::eci::DescribeImageCaches {
                image_cache_id: Some(id.to_owned()),
                ..Default::default()
            },
        ))?;
        Ok(caches
            .iter()
            .any(|c| c.status == eci_vk::eci::ImageCacheStatus::Ready))
    };
    wait(&format!("ImageCache {cache} Ready"), 90, || {
        let out = node.kubectl(&[
            "get",
            "imagecache",
            &cache,
            "-o",
            "jsonpath={.status.phase} {.status.imageCacheId}",
        ])?;
        Ok(match out.split_once(' ') {
            Some(("Ready", id)) if !id.is_empty() && ready_in_our_cloud(id)? => Some(()),
            _ => None,
        })
    })?;

    // A pod using a ConfigMap, a Secret and a projected service-account token, starting from
    // the cache (with a pull secret for its registry, as the cache was built with one):
    // configmaps/secrets get, serviceaccounts/token create, pods watch, patch
    // (annotation) and pods/status patch, events create.
    ground
        .kubectl()
        .args([
            "-n",
            n,
            "create",
            "configmap",
            "cfg",
            "--from-literal=greeting=hello",
        ])
        .ok()?;
    ground
        .kubectl()
        .args([
            "-n",
            n,
            "create",
            "secret",
            "generic",
            "sec",
            "--from-literal=password=s3cr3t",
        ])
        .ok()?;
    ground
        .kubectl()
        .args(["-n", n, "apply", "-f", "-"])
        .stdin(format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bb\n  annotations: {{k8s.aliyun.com/eci-image-cache: \"true\"}}\nspec:\n  nodeName: {name}\n  imagePullSecrets: [{{name: pull}}]\n  terminationGracePeriodSeconds: 5\n  containers:\n  - name: main\n    image: {busybox}\n    command: [sleep, \"3600\"]\n    env:\n    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: greeting}}}}}}\n    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: sec, key: password}}}}}}\n    volumeMounts: [{{name: token, mountPath: /var/run/secrets/tokens}}]\n  volumes:\n  - name: token\n    projected:\n      sources:\n      - serviceAccountToken: {{path: token, audience: chart-test, expirationSeconds: 3600}}\n"
        ))
        .ok()?;
    wait("pod bb Running", 90, || {
        let phase = node.kubectl(&[
            "-n",
            n,
            "get",
            "pod",
            "bb",
            "-o",
            "jsonpath={.status.phase}",
        ])?;
        Ok((phase == "Running").then_some(()))
    })?;
    let matched = node.kubectl(&[
        "-n",
        n,
        "get",
        "pod",
        "bb",
        "-o",
        "jsonpath={.metadata.annotations.k8s\\.aliyun\\.com/eci-matched-image-cache}",
    ])?;
    ensure!(
        !matched.is_empty() && ready_in_our_cloud(&matched)?,
        "pod bb matched {matched:?}, not a Ready cache of the node's cloud"
    );
    wait("event SuccessfulHitImageCache on pod bb", 30, || {
        let reasons = node.kubectl(&[
            "-n",
            n,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=bb",
            "-o",
            "jsonpath={.items[*].reason}",
        ])?;
        Ok(reasons.contains("SuccessfulHitImageCache").then_some(()))
    })?;

    // `kubectl logs` through the API server: the node's kubelet API checks the API server's
    // client certificate against the cluster CA (configmaps get in kube-system) and asks a
    // SubjectAccessReview. The API server's user needs its usual kubeadm binding for that
    // (shared with the kubelet_api tests, so created idempotently and left in place).
    ground.let_apiserver_reach_kubelets()?;
    wait("kubectl logs bb", 30, || {
        let out = ground.kubectl().args(["-n", n, "logs", "bb"]).run()?;
        Ok((out.success && out.stdout.contains("started")).then_some(()))
    })?;

    // Deleting the pod: the node deletes the group and then the pod (pods delete).
    ground
        .kubectl()
        .args([
            "-n",
            n,
            "delete",
            "pod",
            "bb",
            "--wait=true",
            "--timeout=90s",
        ])
        .ok()?;

    // Both Leases were written with the ServiceAccount's rights.
    let holder = node.kubectl(&[
        "-n",
        "kube-node-lease",
        "get",
        "lease",
        name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    ensure!(holder == name, "node Lease held by {holder:?}");
    let leader = node.kubectl(&[
        "-n",
        "kube-system",
        "get",
        "lease",
        &node.leader_lease,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    let elected = node.kubectl(&[
        "-n",
        &ns.name,
        "get",
        "lease",
        &format!("eci-vk-node-{name}"),
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    ensure!(
        !elected.is_empty() && leader == elected,
        "the ImageCache Lease is held by {leader:?}, the node's leader Lease by {elected:?}"
    );

    // No call of the node was refused.
    let logs = node.logs();
    ensure!(
        !logs.to_lowercase().contains("forbidden"),
        "the node was refused an API call:\n{}",
        logs.lines()
            .filter(|l| l.to_lowercase().contains("forbidden"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A bearer token on the kubelet port: a TokenReview names the caller and a
    // SubjectAccessReview refuses it, as this ServiceAccount has no nodes/proxy.
    let port = node.kubectl(&[
        "get",
        "node",
        name,
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ])?;
    let out = Command::new("curl")
        .args(["-sk", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {}", identity.token))
        .arg(format!("https://127.0.0.1:{port}/pods"))
        .output()
        .context("cannot run curl")?;
    let answer = String::from_utf8_lossy(&out.stdout);
    ensure!(
        answer.trim_end().ends_with("403") && answer.contains(identity.account),
        "the kubelet port answered the chart's own token with {answer}"
    );

    // And what it may not do.
    let account = identity.account;
    let user = format!("system:serviceaccount:{n}:{account}");
    for (args, allowed) in [
        (vec!["list", "secrets", "--all-namespaces"], false),
        (vec!["watch", "secrets", "--all-namespaces"], false),
        (vec!["delete", "nodes"], false),
        (vec!["patch", "nodes/some-other-node"], false),
        (vec!["create", "pods", "-n", n], false),
        (vec!["get", "secrets", "-n", n], true),
        (vec!["patch", &format!("nodes/{name}")], true),
    ] {
        let out = ground
            .kubectl()
            .args(["auth", "can-i", "--as", &user])
            .args(&args)
            .run()?;
        let answer = out.stdout.trim();
        ensure!(
            answer == if allowed { "yes" } else { "no" },
            "kubectl auth can-i {} --as {user}: {answer:?} {}",
            args.join(" "),
            out.stderr.trim()
        );
    }
    Ok(())
}

/// `GET path` over plain HTTP/1.1; the whole answer.
fn http_get(addr: &str, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
