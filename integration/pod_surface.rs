//! What a pod asks for, as its containers see it (real control plane, emulator, runc agent):
//! the service environment a kubelet writes, the security context, and the Warning event of a
//! field ECI cannot honour.

use anyhow::{Context, Result, ensure};

use crate::{
    kubelet_api::Rig,
    support::{
        Ground,
        ground::Namespace,
        harness::{Phase, Test},
        wait::wait,
    },
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "pods::service_env_security_context_and_unsupported_fields",
        phase: Phase::WithCrd,
        run: service_env_security_context_and_unsupported_fields,
    }]
}

/// The API server address the node is told pods reach.
const API_HOST: &str = "10.242.7.1";
const API_PORT: &str = "7443";

fn apply(rig: &Rig<'_>, ns: &str, yaml: &str) -> Result<()> {
    let path = std::env::temp_dir().join(format!("pod-surface-{}-{ns}.yaml", std::process::id()));
    std::fs::write(&path, yaml)?;
    let out = rig
        .kubectl(ns)
        .args(["apply", "-f", &path.display().to_string()])
        .run();
    let _ = std::fs::remove_file(&path);
    let out = out?;
    ensure!(out.success, "kubectl apply: {}", out.stderr);
    Ok(())
}

fn logs_containing(rig: &Rig<'_>, ns: &str, pod: &str, needle: &str) -> Result<String> {
    wait(&format!("{pod} logs showing {needle:?}"), 60, || {
        let out = rig.kubectl(ns).args(["logs", pod]).run()?;
        Ok(out.stdout.contains(needle).then_some(out.stdout))
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))
}

fn service_env_security_context_and_unsupported_fields(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let rig = Rig::start_with(
        ground,
        "pod-surface",
        &["--pod-api-server", &format!("{API_HOST}:{API_PORT}")],
    )?;
    let ns = ns.name.as_str();
    let node = rig.node.name.clone();
    let image = rig.image.clone();

    // (a) The service environment: a Service created beforehand shows as link variables.
    apply(
        &rig,
        ns,
        "apiVersion: v1\nkind: Service\nmetadata: {name: my-db}\nspec:\n  ports: [{name: sql, port: 5432, protocol: TCP}]\n",
    )?;
    apply(
        &rig,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: env}}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n    command: [sh, -c, 'env; echo done-env; sleep 3600']\n"
        ),
    )?;
    let env = logs_containing(&rig, ns, "env", "done-env")?;
    ensure!(
        env.lines()
            .any(|l| l == format!("KUBERNETES_SERVICE_HOST={API_HOST}")),
        "no KUBERNETES_SERVICE_HOST={API_HOST}:\n{env}"
    );
    ensure!(
        env.lines()
            .any(|l| l == format!("KUBERNETES_SERVICE_PORT={API_PORT}")),
        "no KUBERNETES_SERVICE_PORT={API_PORT}:\n{env}"
    );
    ensure!(
        env.lines().any(|l| l.starts_with("MY_DB_SERVICE_HOST=10."))
            && env.lines().any(|l| l == "MY_DB_SERVICE_PORT_SQL=5432")
            && env
                .lines()
                .any(|l| l.starts_with("MY_DB_PORT_5432_TCP=tcp://")),
        "no link variables of my-db:\n{env}"
    );

    // (b) runAsUser and a read-only root.
    apply(
        &rig,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: secure}}\nspec:\n  nodeName: {node}\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n    command: [sh, -c, 'echo uid=$(id -u); touch /probe-file 2>&1 || echo write-refused; echo done-secure; sleep 3600']\n    securityContext: {{runAsUser: 1000, readOnlyRootFilesystem: true}}\n"
        ),
    )?;
    let secure = logs_containing(&rig, ns, "secure", "done-secure")?;
    ensure!(secure.contains("uid=1000"), "not uid 1000:\n{secure}");
    ensure!(
        secure.contains("write-refused") && secure.contains("Read-only file system"),
        "the root was writable:\n{secure}"
    );

    // (c) A startup probe and a gRPC probe: the pod runs, with a Warning naming each.
    apply(
        &rig,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: probes}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n    command: [sh, -c, 'echo done-probes; sleep 3600']\n    startupProbe: {{exec: {{command: [\"true\"]}}}}\n    livenessProbe: {{grpc: {{port: 9000}}}}\n"
        ),
    )?;
    logs_containing(&rig, ns, "probes", "done-probes")?;
    let mut seen = String::new();
    let events = wait("UnsupportedField events of probes", 30, || {
        let out = rig
            .kubectl(ns)
            .args([
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=probes",
                "-o",
                "jsonpath={range .items[*]}{.type} {.reason} {.message}{\"\\n\"}{end}",
            ])
            .run()?;
        seen = format!("{}{}", out.stdout, out.stderr);
        let text: String = out
            .stdout
            .lines()
            .filter(|l| l.contains(" UnsupportedField "))
            .map(|l| format!("{l}\n"))
            .collect();
        Ok((text.contains("startupProbe") && text.contains("livenessProbe.grpc")).then_some(text))
    })
    .with_context(|| format!("events of probes:\n{seen}\nnode log:\n{}", rig.logs()))?;
    ensure!(
        events.lines().all(|l| l.starts_with("Warning ")),
        "not warnings:\n{events}"
    );
    Ok(())
}
