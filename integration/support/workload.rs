//! The workloads tests put on a virtual node: busybox pods pinned to it, and the wait for
//! them to run.

use anyhow::Result;

use super::{Ground, wait::wait};

/// A Deployment `name` of `replicas` busybox pods on `node` (nodeName, grace 1 s), labelled
/// `app=<name>`.
pub fn busybox_deployment(name: &str, replicas: usize, node: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      nodeName: {node}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: busybox\n"
    )
}

/// A pod `name` of busybox on `node` (nodeName, grace 1 s).
pub fn busybox_pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n"
    )
}

/// `jsonpath` of pod `pod` in `ns`, as kubectl prints it.
pub fn pod_field(ground: &Ground, ns: &str, pod: &str, jsonpath: &str) -> Result<String> {
    ground
        .kubectl()
        .args([
            "-n",
            ns,
            "get",
            "pod",
            pod,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ])
        .ok()
}

/// Applies `yaml` in namespace `ns`.
pub fn apply(ground: &Ground, ns: &str, yaml: String) -> Result<()> {
    ground
        .kubectl()
        .args(["-n", ns, "apply", "-f", "-"])
        .stdin(yaml)
        .ok()
        .map(|_| ())
}

/// Waits up to `seconds` until `n` pods of `ns` labelled `selector` are Running.
pub fn wait_running(
    ground: &Ground,
    ns: &str,
    selector: &str,
    n: usize,
    seconds: u64,
) -> Result<()> {
    wait(&format!("{n} pods {selector} Running"), seconds, || {
        let out = ground
            .kubectl()
            .args([
                "-n",
                ns,
                "get",
                "pods",
                "-l",
                selector,
                "-o",
                "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
            ])
            .ok()?;
        Ok((out.lines().filter(|l| *l == "Running").count() == n).then_some(()))
    })
}
