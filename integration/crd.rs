//! The ImageCache CRD on a real API server, as the user guide uses it: "Before you begin",
//! the sample object, the printer columns, the schema's limits, and the REST calls.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::support::{
    Ground,
    ground::Namespace,
    harness::{CRD_NAME, Phase, Test, install_crd},
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "crd::before_you_begin",
            phase: Phase::FreshCluster,
            run: before_you_begin,
        },
        Test {
            name: "crd::guide_sample_is_listed",
            phase: Phase::WithCrd,
            run: guide_sample_is_listed,
        },
        Test {
            name: "crd::bad_objects_are_rejected",
            phase: Phase::WithCrd,
            run: bad_objects_are_rejected,
        },
        Test {
            name: "crd::rest_calls_through_kubectl_proxy",
            phase: Phase::WithCrd,
            run: rest_calls_through_kubectl_proxy,
        },
        Test {
            name: "crd::helm_chart_ships_the_crd",
            phase: Phase::WithCrd,
            run: helm_chart_ships_the_crd,
        },
    ]
}

const SAMPLE: &str = include_str!("../examples/guide/imagecache-sample.yaml");
const SECRETS_TEST: &str = include_str!("../examples/guide/imagecache-secrets-test.yaml");

/// Whitespace-separated words of a table line, so column widths do not matter.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn before_you_begin(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let stderr = ground
        .kubectl()
        .args(["get", &format!("crd/{CRD_NAME}")])
        .fails()?;
    ensure!(
        stderr.contains(&format!(
            r#"Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "{CRD_NAME}" not found"#
        )),
        "unexpected error before the CRD exists: {stderr}"
    );
    install_crd(ground)?;
    let out = ground
        .kubectl()
        .args(["get", &format!("crd/{CRD_NAME}")])
        .ok()?;
    let mut lines = out.lines();
    // The guide shows `NAME CREATED AT`; current kubectl adds SCOPE and VERSIONS in between.
    let header = lines.next().unwrap_or_default();
    ensure!(
        header.starts_with("NAME") && header.trim_end().ends_with("CREATED AT"),
        "header: {out}"
    );
    ensure!(
        lines.next().map(|l| words(l)[0]) == Some(CRD_NAME),
        "the CRD is not listed: {out}"
    );
    // Leave the cluster fresh for the other fresh-cluster tests (the harness installs the
    // CRD again before the rest).
    ground
        .kubectl()
        .args(["delete", &format!("crd/{CRD_NAME}"), "--wait=true"])
        .ok()?;
    Ok(())
}

fn guide_sample_is_listed(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let k = || ground.kubectl();
    k().args([
        "delete",
        "imagecache",
        "imagecache-sample",
        "--ignore-not-found",
    ])
    .ok()?;
    let created = k().args(["create", "-f", "-"]).stdin(SAMPLE).ok()?;
    ensure!(
        created.trim() == "imagecache.eci.alibabacloud.com/imagecache-sample created",
        "{created}"
    );

    let table = k().args(["get", "imagecache", "imagecache-sample"]).ok()?;
    let lines: Vec<_> = table.lines().collect();
    ensure!(
        words(lines[0]) == ["NAME", "AGE", "CACHEID", "PHASE", "PROGRESS"],
        "header: {table}"
    );
    ensure!(words(lines[1])[0] == "imagecache-sample", "row: {table}");

    for args in [
        vec!["get", "ic"],
        vec!["get", "imc"],
        vec!["get", "imagecaches"],
    ] {
        let out = k().args(&args).ok()?;
        ensure!(
            out.lines()
                .any(|l| words(l).first() == Some(&"imagecache-sample")),
            "{args:?}: {out}"
        );
    }
    let all = k().args(["get", "all"]).ok()?;
    ensure!(
        all.contains("imagecache.eci.alibabacloud.com/imagecache-sample"),
        "`kubectl get all` does not list the ImageCache: {all}"
    );

    // What was stored is what the guide wrote.
    let object: Value = serde_json::from_str(
        &k().args(["get", "ic", "imagecache-sample", "-o", "json"])
            .ok()?,
    )?;
    let spec = &object["spec"];
    ensure!(
        spec["images"] == serde_json::json!(["centos:latest", "busybox:latest"]),
        "{spec}"
    );
    ensure!(
        spec["imagePullSecrets"]
            == serde_json::json!(["default:secret1", "default:secret2", "kube-system:secret3"]),
        "{spec}"
    );
    ensure!(
        spec["imageCacheSize"] == 25 && spec["retentionDays"] == 7,
        "{spec}"
    );

    // Defaults: size 20, retention unset (never expires).
    let minimal = "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata: {name: imagecache-defaults}\nspec: {images: [busybox]}\n";
    k().args(["delete", "ic", "imagecache-defaults", "--ignore-not-found"])
        .ok()?;
    k().args(["create", "-f", "-"]).stdin(minimal).ok()?;
    let object: Value = serde_json::from_str(
        &k().args(["get", "ic", "imagecache-defaults", "-o", "json"])
            .ok()?,
    )?;
    ensure!(
        object["spec"]["imageCacheSize"] == 20,
        "default size: {}",
        object["spec"]
    );
    ensure!(
        object["spec"].get("retentionDays").is_none(),
        "retention defaulted: {}",
        object["spec"]
    );

    k().args(["delete", "-f", "-"]).stdin(SAMPLE).ok()?;
    k().args(["delete", "ic", "imagecache-defaults"]).ok()?;
    Ok(())
}

fn bad_objects_are_rejected(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let twenty_one: Vec<String> = (1..=21)
        .map(|i| format!("registry.local/image-{i}:latest"))
        .collect();
    // (name, spec, text the API server's message must contain)
    let cases = [
        (
            "bad-no-images",
            "{imageCacheSize: 25}".to_string(),
            "spec.images: Required value",
        ),
        (
            "bad-empty-images",
            "{images: []}".into(),
            "spec.images: Invalid value: 0: spec.images in body should have at least 1 items",
        ),
        (
            "bad-empty-image",
            "{images: [\"\"]}".into(),
            "spec.images[0]",
        ),
        (
            "bad-21-images",
            format!("{{images: [{}]}}", twenty_one.join(", ")),
            "spec.images: Too many: 21: must have at most 20 items",
        ),
        (
            "bad-size-10",
            "{images: [busybox], imageCacheSize: 10}".into(),
            "spec.imageCacheSize: Invalid value: 10: spec.imageCacheSize in body should be greater than or equal to 20",
        ),
        (
            "bad-size-40000",
            "{images: [busybox], imageCacheSize: 40000}".into(),
            "spec.imageCacheSize: Invalid value: 40000: spec.imageCacheSize in body should be less than or equal to 32768",
        ),
        (
            "bad-retention-0",
            "{images: [busybox], retentionDays: 0}".into(),
            "spec.retentionDays: Invalid value: 0: spec.retentionDays in body should be greater than or equal to 1",
        ),
        (
            "bad-retention-big",
            "{images: [busybox], retentionDays: 65537}".into(),
            "spec.retentionDays: Invalid value: 65537",
        ),
        (
            "bad-secret",
            "{images: [busybox], imagePullSecrets: [\"secret1\"]}".into(),
            "spec.imagePullSecrets[0]: Invalid value: \"secret1\"",
        ),
        (
            "bad-secret-case",
            "{images: [busybox], imagePullSecrets: [\"Default:Secret1\"]}".into(),
            "spec.imagePullSecrets[0]",
        ),
        (
            "bad-typo",
            "{images: [busybox], imageCacheSzie: 30}".into(),
            "unknown field \"spec.imageCacheSzie\"",
        ),
    ];
    let mut failures = Vec::new();
    for (name, spec, expected) in &cases {
        let yaml = format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        );
        let stderr = ground
            .kubectl()
            .args(["create", "-f", "-"])
            .stdin(yaml)
            .fails()?;
        if !stderr.contains(expected) {
            failures.push(format!(
                "{name}: expected {expected:?} in: {}",
                stderr.trim()
            ));
        }
        // Nothing was stored.
        ground.kubectl().args(["get", "ic", name]).fails()?;
    }
    // A missing spec is refused too.
    let stderr = ground
        .kubectl()
        .args(["create", "-f", "-"])
        .stdin("apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata: {name: bad-no-spec}\n")
        .fails()?;
    if !stderr.contains("spec: Required value") {
        failures.push(format!("bad-no-spec: {}", stderr.trim()));
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// `kubectl proxy` on a free port, stopped on drop.
struct Proxy {
    child: Child,
    base: String,
}

impl Proxy {
    fn start(ground: &Ground) -> Result<Self> {
        let mut child = Command::new(ground.bin.join("kubectl"))
            .args(ground.kubectl_base_args())
            .args(["proxy", "--address=127.0.0.1", "--port=0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        crate::support::children::register(&child);
        let stdout = child.stdout.take().context("proxy stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        // "Starting to serve on 127.0.0.1:PORT"
        let Some(address) = line.trim().strip_prefix("Starting to serve on ") else {
            let _ = child.kill();
            let _ = child.wait();
            crate::support::children::forget(&child);
            bail!("kubectl proxy said: {line}");
        };
        Ok(Self {
            base: format!("http://{address}"),
            child,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        crate::support::children::forget(&self.child);
    }
}

/// The guide's curl calls, verbatim but for the proxy's port.
fn curl(args: &[&str]) -> Result<Value> {
    let out = Command::new("curl")
        .args(["-sS", "-m", "30"])
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "curl {args:?} answered: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn rest_calls_through_kubectl_proxy(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    ground
        .kubectl()
        .args([
            "delete",
            "ic",
            "imagecache-secrets-test",
            "--ignore-not-found",
        ])
        .ok()?;
    let proxy = Proxy::start(ground)?;
    let collection = format!("{}/apis/eci.alibabacloud.com/v1/imagecaches", proxy.base);
    let one = format!("{collection}/imagecache-secrets-test");

    let created = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/yaml",
        "--data",
        SECRETS_TEST,
        &collection,
    ])?;
    ensure!(
        created["kind"] == "ImageCache" && created["apiVersion"] == "eci.alibabacloud.com/v1",
        "{created}"
    );
    ensure!(
        created["metadata"]["name"] == "imagecache-secrets-test",
        "{created}"
    );
    ensure!(created["metadata"]["generation"] == 1, "{created}");
    ensure!(
        created["spec"]["images"]
            == serde_json::json!(["registry.cn-shanghai.aliyuncs.com/baz/nginx:1.0"]),
        "{created}"
    );
    ensure!(
        created["spec"]["imagePullSecrets"] == serde_json::json!(["default:acr-test"]),
        "{created}"
    );

    let list = curl(&["-X", "GET", &collection])?;
    ensure!(
        list["kind"] == "ImageCacheList" && list["apiVersion"] == "eci.alibabacloud.com/v1",
        "{list}"
    );
    let items = list["items"].as_array().context("items")?;
    ensure!(
        items
            .iter()
            .any(|i| i["metadata"]["name"] == "imagecache-secrets-test"),
        "{list}"
    );

    let got = curl(&["-X", "GET", &one])?;
    ensure!(
        got["kind"] == "ImageCache" && got["metadata"]["uid"] == created["metadata"]["uid"],
        "{got}"
    );

    let deleted = curl(&["-X", "DELETE", "-H", "Content-Type: application/yaml", &one])?;
    ensure!(
        deleted["kind"] == "Status" && deleted["status"] == "Success",
        "{deleted}"
    );
    let details = &deleted["details"];
    ensure!(
        details["name"] == "imagecache-secrets-test"
            && details["group"] == "eci.alibabacloud.com"
            && details["kind"] == "imagecaches"
            && details["uid"] == created["metadata"]["uid"],
        "{deleted}"
    );
    let gone = curl(&["-X", "GET", &one])?;
    ensure!(gone["kind"] == "Status" && gone["code"] == 404, "{gone}");
    Ok(())
}

fn helm_chart_ships_the_crd(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    use crate::chart::{documents, lint, of_kind, template};
    // The chart renders the generated CRD (templates/crds.yaml), kept on uninstall.
    let docs = documents(&template(ground, "vk", "eci-system", &[])?)?;
    let crds = of_kind(&docs, "CustomResourceDefinition");
    ensure!(crds.len() == 1, "{} CRDs in the chart", crds.len());
    let generated = Command::new(ground.eci_vk()).arg("crd").output()?;
    let generated: Value = serde_yaml_ng::from_slice(&generated.stdout)?;
    // Helm's toYaml writes `32768.0` as `32768`: the same number to the API server.
    fn numbers_as_floats(value: &Value) -> Value {
        match value {
            Value::Number(n) => n.as_f64().map_or(Value::Null, |f| serde_json::json!(f)),
            Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    ensure!(
        numbers_as_floats(&crds[0]["spec"]) == numbers_as_floats(&generated["spec"]),
        "the chart's CRD differs from `eci-vk crd`"
    );
    ensure!(
        crds[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep",
        "the chart's CRD is not kept on uninstall: {}",
        crds[0]["metadata"]
    );
    // crds.install=false leaves it to the operator.
    let without = documents(&template(
        ground,
        "vk",
        "eci-system",
        &["--set", "crds.install=false"],
    )?)?;
    ensure!(
        of_kind(&without, "CustomResourceDefinition").is_empty(),
        "crds.install=false still renders the CRD"
    );
    lint(ground, &[])
}
