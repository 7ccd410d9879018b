//! The eci-profile and its mutating webhook (`src/profile/`) against the real control plane:
//! the API server calls the node's webhook over TLS (a MutatingWebhookConfiguration made by
//! the test, trusting a CA the test makes), the real scheduler places the mutated pod on the
//! virtual node; with the node stopped pods are still created (`failurePolicy: Ignore`); a
//! malformed profile keeps the last good one in force and says why in an event.
//!
//! Each test has its own token: its namespaces (`profile-<token>-…`), its node (tainted with a
//! taint only its pods are given, so no other test's virtual node takes them), its profile
//! ConfigMap (`--profile-name`) and a webhook configuration that only its namespaces reach.

use std::{
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    node_child::NodeChild,
    wait::wait,
    workload,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "profile::the_webhook_places_a_matched_pod_on_the_virtual_node",
            phase: Phase::WithCrd,
            run: the_webhook_places_a_matched_pod_on_the_virtual_node,
        },
        Test {
            name: "profile::pods_are_created_while_the_node_is_stopped",
            phase: Phase::WithCrd,
            run: pods_are_created_while_the_node_is_stopped,
        },
        Test {
            name: "profile::a_malformed_profile_keeps_the_last_good_one",
            phase: Phase::WithCrd,
            run: a_malformed_profile_keeps_the_last_good_one,
        },
    ]
}

/// The annotation and label the test's selector adds.
const ANNOTATION: &str = "profile.test/placed";
const LABEL: &str = "placed-by";

/// What one test made, removed however it ends: the webhook configuration first (so no pod
/// of another test meets it), then the node, then the namespaces.
struct Setup<'g> {
    ground: &'g Ground,
    token: String,
    /// The namespace a selector matches, and one it does not.
    matched: String,
    other: String,
    /// Where the profile ConfigMap lives (the harness's namespace of the test).
    profile_namespace: String,
    profile_name: String,
    webhook: Option<String>,
    emulator: EmulatorProcess,
    node: Option<NodeChild<'g>>,
    node_name: String,
    port: u16,
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Drop for Setup<'_> {
    fn drop(&mut self) {
        if let Some(webhook) = self.webhook.take() {
            let _ = self
                .ground
                .kubectl()
                .args([
                    "delete",
                    "mutatingwebhookconfiguration",
                    &webhook,
                    "--ignore-not-found",
                ])
                .run();
        }
        self.stop_node();
        let _ = self
            .ground
            .kubectl()
            .args([
                "delete",
                "node",
                &self.node_name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .run();
        for namespace in [&self.matched, &self.other] {
            let _ = self
                .ground
                .kubectl()
                .args([
                    "delete",
                    "namespace",
                    namespace,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .run();
        }
    }
}

/// A profile whose one selector matches the namespaces labelled `serverless=<token>`.
fn selectors(token: &str, value: &str) -> String {
    format!(
        r#"[{{"name": "place-{token}", "namespaceSelector": {{"matchLabels": {{"serverless": "{token}"}}}}, "effect": {{"annotations": {{"{ANNOTATION}": "{value}"}}, "labels": {{"{LABEL}": "eci-profile"}}}}}}]"#
    )
}

/// A PEM block of `der` under `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A CA and a serving certificate for 127.0.0.1 signed by it, written to `dir`; the CA's PEM.
fn make_tls(dir: &Path) -> Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "profile-test-ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "eci-vk-webhook");
    let cert = params.signed_by(&key, &ca)?;
    std::fs::write(dir.join("tls.crt"), pem("CERTIFICATE", cert.der()))?;
    std::fs::write(
        dir.join("tls.key"),
        pem("PRIVATE KEY", &key.serialize_der()),
    )?;
    Ok(pem("CERTIFICATE", ca.der()))
}

/// A free loopback port (bound, then let go).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl<'g> Setup<'g> {
    /// Namespaces, a profile with one selector, TLS files; nothing runs yet.
    fn new(ground: &'g Ground, namespace: &Namespace) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let token = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir()?;
        let ca_pem = make_tls(dir.path())?;
        let setup = Self {
            ground,
            matched: format!("profile-{token}-on"),
            other: format!("profile-{token}-off"),
            profile_namespace: namespace.name.clone(),
            profile_name: format!("eci-profile-{token}"),
            webhook: None,
            emulator: EmulatorProcess::start(ground.eci_vk(), &[])?,
            node: None,
            node_name: format!("profile-{token}"),
            port: free_port()?,
            dir,
            ca_pem,
            token,
        };
        for (namespace, serverless) in
            [(&setup.matched, setup.token.as_str()), (&setup.other, "no")]
        {
            ground
                .kubectl()
                .args(["apply", "-f", "-"])
                .stdin(format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n  labels: {{profile-test: \"{}\", serverless: \"{serverless}\"}}\n",
                    setup.token
                ))
                .ok()?;
        }
        setup.write_profile(&selectors(&setup.token, "v1"))?;
        Ok(setup)
    }

    /// [`Setup::new`], the node started, and its webhook registered and called by the API
    /// server with the profile's first version.
    fn serving(ground: &'g Ground, namespace: &Namespace) -> Result<Self> {
        let mut setup = Self::new(ground, namespace)?;
        setup.start_node()?;
        setup.register_webhook()?;
        setup.wait_webhook("v1")?;
        Ok(setup)
    }

    fn write_profile(&self, selectors: &str) -> Result<()> {
        // `vpcId` is ACK's, not acted on by this node: each good version names it in an event.
        let map = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.profile_name, "namespace": self.profile_namespace},
            "data": {"selectors": selectors, "vpcId": "vpc-test"},
        });
        self.ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(map.to_string())
            .ok()?;
        Ok(())
    }

    /// Starts the node (against the test's emulator, simulated runtime) with the profile and
    /// the webhook, and waits until it is Ready and the profile's selector is in force.
    fn start_node(&mut self) -> Result<()> {
        let dir = self.dir.path();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let flags = [
            "--taint",
            &format!("profile-test={}:NoSchedule", self.token),
            "--profile-namespace",
            &self.profile_namespace,
            "--profile-name",
            &self.profile_name,
            "--webhook-listen",
            &format!("127.0.0.1:{}", self.port),
            "--webhook-tls-cert-file",
            &path("tls.crt"),
            "--webhook-tls-key-file",
            &path("tls.key"),
        ]
        .map(str::to_owned);
        let node = NodeChild::spawn(
            self.ground,
            self.node_name.clone(),
            &self.emulator.endpoint,
            dir,
            &flags,
            "info",
        )?;
        node.wait_ready()?;
        wait("the profile's selector in force", 30, || {
            Ok(node.logs().contains("eci-profile in force").then_some(()))
        })
        .with_context(|| format!("node log:\n{}", node.logs()))?;
        self.node = Some(node);
        Ok(())
    }

    fn logs(&self) -> String {
        self.node.as_ref().map(NodeChild::logs).unwrap_or_default()
    }

    fn stop_node(&mut self) {
        if let Some(node) = self.node.take() {
            let _ = node.crash();
        }
    }

    /// Registers the node's webhook for the test's namespaces, as the chart does for all but
    /// kube-system.
    fn register_webhook(&mut self) -> Result<()> {
        use base64::Engine as _;
        let name = format!("profile-test-{}", self.token);
        let config = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "eci-profile.eci-vk.test",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "timeoutSeconds": 5,
                "reinvocationPolicy": "Never",
                "clientConfig": {
                    "url": format!("https://127.0.0.1:{}/mutate-pods", self.port),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
                },
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"profile-test": self.token}},
            }],
        });
        self.webhook = Some(name);
        self.ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(config.to_string())
            .ok()?;
        Ok(())
    }

    /// A pod with no nodeName, toleration or node selector.
    fn bare_pod(name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: registry.invalid/app:1\n    resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}\n"
        )
    }

    /// The annotation the selector adds, as a server-side dry run of a pod in `namespace`
    /// comes back (empty when the webhook did not add it).
    fn dry_run_annotation(&self, namespace: &str) -> Result<String> {
        Ok(self
            .ground
            .kubectl()
            .args([
                "-n",
                namespace,
                "create",
                "--dry-run=server",
                "-f",
                "-",
                "-o",
                &format!(
                    "jsonpath={{.metadata.annotations.{}}}",
                    ANNOTATION.replace('.', "\\.")
                ),
            ])
            .stdin(Self::bare_pod("probe"))
            .ok()?
            .trim()
            .to_owned())
    }

    /// Waits until the API server calls the webhook (its configuration is read by an
    /// informer, so not at once) and the pod comes back with `value`.
    fn wait_webhook(&self, value: &str) -> Result<()> {
        wait("the API server to call the webhook", 30, || {
            Ok((self.dry_run_annotation(&self.matched)? == value).then_some(()))
        })
        .with_context(|| format!("node log:\n{}", self.logs()))
    }

    fn get(&self, namespace: &str, pod: &str, path: &str) -> Result<String> {
        Ok(workload::pod_field(self.ground, namespace, pod, path)?
            .trim()
            .to_owned())
    }

    /// The first Warning event `reason` on the profile ConfigMap: its type and message.
    fn wait_event(&self, reason: &str) -> Result<String> {
        wait(
            &format!("a Warning event {reason} on the ConfigMap"),
            30,
            || {
                let out = self
                    .ground
                    .kubectl()
                    .args([
                        "-n",
                        &self.profile_namespace,
                        "get",
                        "events",
                        "--field-selector",
                        &format!(
                            "involvedObject.kind=ConfigMap,involvedObject.name={},reason={reason}",
                            self.profile_name
                        ),
                        "-o",
                        "jsonpath={range .items[*]}{.type} {.message}{\"\\n\"}{end}",
                    ])
                    .ok()?;
                Ok(out.lines().next().map(str::to_owned))
            },
        )
        .with_context(|| format!("node log:\n{}", self.logs()))
    }

    fn create_pod(&self, namespace: &str, name: &str) -> Result<()> {
        self.ground
            .kubectl()
            .args(["-n", namespace, "create", "-f", "-"])
            .stdin(Self::bare_pod(name))
            .ok()?;
        Ok(())
    }
}

fn the_webhook_places_a_matched_pod_on_the_virtual_node(
    ground: &Ground,
    namespace: &Namespace,
) -> Result<()> {
    let setup = Setup::serving(ground, namespace)?;

    setup.create_pod(&setup.matched, "placed")?;
    wait("the placed pod Running on the virtual node", 90, || {
        let state = setup.get(&setup.matched, "placed", "{.spec.nodeName} {.status.phase}")?;
        Ok((state == format!("{} Running", setup.node_name)).then_some(()))
    })
    .with_context(|| format!("node log:\n{}", setup.logs()))?;
    let annotation = setup.get(
        &setup.matched,
        "placed",
        &format!(
            "{{.metadata.annotations.{}}}",
            ANNOTATION.replace('.', "\\.")
        ),
    )?;
    ensure!(
        annotation == "v1",
        "the selector's annotation: {annotation:?}"
    );
    let label = setup.get(
        &setup.matched,
        "placed",
        &format!("{{.metadata.labels.{LABEL}}}"),
    )?;
    ensure!(label == "eci-profile", "the selector's label: {label:?}");
    let own_label = setup.get(&setup.matched, "placed", "{.metadata.labels.app}")?;
    ensure!(
        own_label == "placed",
        "the pod's own label is kept: {own_label:?}"
    );
    let selector = setup.get(&setup.matched, "placed", "{.spec.nodeSelector.type}")?;
    ensure!(selector == "virtual-kubelet", "node selector: {selector:?}");
    let toleration = setup.get(
        &setup.matched,
        "placed",
        "{.spec.tolerations[?(@.key==\"profile-test\")].value}",
    )?;
    ensure!(toleration == setup.token, "toleration: {toleration:?}");

    setup.create_pod(&setup.other, "left-alone")?;
    let annotations = setup.get(&setup.other, "left-alone", "{.metadata.annotations}")?;
    ensure!(
        !annotations.contains(ANNOTATION),
        "a pod of another namespace was annotated: {annotations}"
    );
    let tolerations = setup.get(&setup.other, "left-alone", "{.spec.tolerations[*].key}")?;
    ensure!(
        !tolerations.contains("profile-test"),
        "a pod of another namespace got the toleration: {tolerations}"
    );
    let selector = setup.get(&setup.other, "left-alone", "{.spec.nodeSelector}")?;
    ensure!(
        selector.is_empty(),
        "a pod of another namespace got a node selector: {selector}"
    );
    Ok(())
}

fn pods_are_created_while_the_node_is_stopped(
    ground: &Ground,
    namespace: &Namespace,
) -> Result<()> {
    let mut setup = Setup::serving(ground, namespace)?;
    setup.stop_node();
    // Nothing listens on the webhook's port now: the API server's call fails and, with
    // failurePolicy Ignore, the pod is created as written.
    let created = ground
        .kubectl()
        .args(["-n", &setup.matched, "create", "-f", "-"])
        .stdin(Setup::bare_pod("while-down"))
        .run()?;
    ensure!(
        created.success,
        "the pod was refused with the node stopped: {}",
        created.stderr
    );
    let annotations = setup.get(&setup.matched, "while-down", "{.metadata.annotations}")?;
    ensure!(
        !annotations.contains(ANNOTATION),
        "the pod was mutated by a stopped node: {annotations}"
    );
    let phase = setup.get(&setup.matched, "while-down", "{.status.phase}")?;
    ensure!(
        phase == "Pending",
        "the pod is in the cluster, Pending: {phase:?}"
    );
    Ok(())
}

fn a_malformed_profile_keeps_the_last_good_one(
    ground: &Ground,
    namespace: &Namespace,
) -> Result<()> {
    let setup = Setup::serving(ground, namespace)?;

    // A good change is used by the next pod without a restart.
    setup.write_profile(&selectors(&setup.token, "v2"))?;
    setup.wait_webhook("v2")?;

    // A malformed one is not: the "v2" selector stays in force, and the ConfigMap gets an
    // event naming the key.
    setup.write_profile(r#"[{"name": "broken", "namespaceSelector": "#)?;
    let message = setup.wait_event("InvalidProfile")?;
    ensure!(
        message.starts_with("Warning ") && message.contains("selectors:"),
        "the event names the key: {message}"
    );
    ensure!(
        setup.logs().contains("eci-profile is invalid"),
        "the node logs the bad profile:\n{}",
        setup.logs()
    );
    // Still the last good selector, a while after the bad version was seen.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let annotation = setup.dry_run_annotation(&setup.matched)?;
    ensure!(
        annotation == "v2",
        "the last good profile stays in force: {annotation:?}"
    );
    // The key not acted on was named in its own event.
    let ignored = setup.wait_event("ProfileKeyIgnored")?;
    ensure!(
        ignored.contains("vpcId"),
        "the event names the key: {ignored}"
    );

    // A deleted ConfigMap puts the defaults back: no selector places pods.
    ground
        .kubectl()
        .args([
            "-n",
            &setup.profile_namespace,
            "delete",
            "configmap",
            &setup.profile_name,
        ])
        .ok()?;
    wait("the defaults back in force", 30, || {
        Ok(setup
            .dry_run_annotation(&setup.matched)?
            .is_empty()
            .then_some(()))
    })
    .with_context(|| format!("node log:\n{}", setup.logs()))?;
    Ok(())
}
