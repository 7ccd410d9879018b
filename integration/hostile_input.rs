//! Bad input never takes the node down (issue #20): every kind of malformed object the node
//! reads — pods with absurd quantities, an annotation as large as the API server lets through,
//! unknown volume types, unicode where ECI takes none, a pull secret of the wrong type, and
//! ImageCaches with hostile fields — gets its clear reason on the object, while the node stays
//! Ready, a pod that was running before keeps its group, and a pod created after them runs.
//!
//! The API server refuses most malformed objects itself (names that are not DNS labels,
//! annotations over 256 KiB in all, unknown fields of the ImageCache schema); what is sent here
//! is what passes it and reaches the node.

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Event, Pod};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    node_child::NodeChild,
    wait::wait,
    workload::{apply, busybox_pod},
};

pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "hostile_input::malformed_objects_get_their_reason_and_harm_nothing",
        phase: Phase::WithCrd,
        run: malformed_objects_get_their_reason_and_harm_nothing,
    }]
}

/// A pod on `node` whose spec is `spec` (YAML lines indented under `spec:`), with `annotations`
/// (YAML lines indented under `annotations:`).
fn pod(name: &str, node: &str, annotations: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  annotations:\n    eci-vk.io/test: hostile\n{annotations}spec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n{spec}"
    )
}

const BUSYBOX: &str = "  containers:\n  - name: main\n    image: busybox\n";

fn get<T: serde::de::DeserializeOwned>(ground: &Ground, args: &[&str]) -> Result<Option<T>> {
    let out = ground.kubectl().args(args).args(["-o", "json"]).run()?;
    if !out.success {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&out.stdout)?))
}

/// `kubectl get events -o json` (its kind is `List`).
#[derive(serde::Deserialize)]
struct EventList {
    items: Vec<Event>,
}

/// The Warning events of object `name` in `ns`: `reason: message` each.
fn warnings(ground: &Ground, ns: &str, name: &str) -> Result<Vec<String>> {
    let list: Option<EventList> = get(
        ground,
        &[
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name},type=Warning"),
        ],
    )?;
    Ok(list
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect())
}

/// Waits until pod `name` is Failed with a reason and a message naming `needle`, or has a
/// Warning event naming it; returns what it found.
fn reason_given(
    ground: &Ground,
    node: &NodeChild<'_>,
    ns: &str,
    name: &str,
    needle: &str,
) -> Result<String> {
    wait(
        &format!("pod {name}: a reason naming {needle:?}"),
        60,
        || {
            if let Some(pod) = get::<Pod>(ground, &["-n", ns, "get", "pod", name])? {
                let status = pod.status.unwrap_or_default();
                let said = format!(
                    "{}: {}",
                    status.reason.clone().unwrap_or_default(),
                    status.message.clone().unwrap_or_default()
                );
                if status.phase.as_deref() == Some("Failed") && names(&said, needle) {
                    return Ok(Some(said));
                }
            }
            Ok(warnings(ground, ns, name)?
                .into_iter()
                .find(|w| names(w, needle)))
        },
    )
    .with_context(|| format!("node log:\n{}", node.logs()))
}

/// Whether `text` names `needle`, in any case.
fn names(text: &str, needle: &str) -> bool {
    text.to_lowercase().contains(&needle.to_lowercase())
}

fn node_ready(ground: &Ground, node: &str) -> Result<bool> {
    let out = ground
        .kubectl()
        .args(["get", "node", node, "-o"])
        .args(["jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
        .run()?;
    Ok(out.stdout.trim() == "True")
}

fn group_of(ground: &Ground, ns: &str, name: &str) -> Result<Option<String>> {
    Ok(
        get::<Pod>(ground, &["-n", ns, "get", "pod", name])?.and_then(|p| {
            p.metadata
                .annotations?
                .get(eci_vk::eci::annotation::INSTANCE_ID)
                .cloned()
        }),
    )
}

fn running(ground: &Ground, ns: &str, name: &str) -> Result<bool> {
    Ok(get::<Pod>(ground, &["-n", ns, "get", "pod", name])?
        .and_then(|p| p.status?.phase)
        .is_some_and(|p| p == "Running"))
}

fn malformed_objects_get_their_reason_and_harm_nothing(
    ground: &Ground,
    ns: &Namespace,
) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let emulator = EmulatorProcess::start(ground.eci_vk(), &[])?;
    let name = format!("vk-hostile-{}", std::process::id());
    let node = NodeChild::spawn(
        ground,
        name.clone(),
        &emulator.endpoint,
        tmp.path(),
        &[
            "--image-cache-controller".to_owned(),
            "true".to_owned(),
            "--image-cache-class".to_owned(),
            name.clone(),
        ],
        "info",
    )?;
    node.wait_ready()?;
    let ns = ns.name.as_str();

    // A pod that runs before the sweep and must be untouched by it.
    apply(ground, ns, busybox_pod("steady", &name))?;
    wait("pod steady Running", 60, || {
        Ok(running(ground, ns, "steady")?.then_some(()))
    })?;
    let steady_group = group_of(ground, ns, "steady")?.context("steady has its group")?;

    // Pods that pass the API server's validation but not the node's or ECI's.
    let huge = "x".repeat(200 * 1024);
    let hostile = [
        (
            "absurd-cpu",
            String::new(),
            "  containers:\n  - name: main\n    image: busybox\n    resources:\n      limits: {cpu: \"100000\", memory: 1Ei}\n".to_owned(),
            "cpu",
        ),
        (
            "huge-annotation",
            format!("    k8s.aliyun.com/eci-use-specs: \"{huge}\"\n"),
            BUSYBOX.to_owned(),
            "k8s.aliyun.com/eci-use-specs",
        ),
        (
            "unknown-volume",
            String::new(),
            format!(
                "{BUSYBOX}    volumeMounts: [{{name: disk, mountPath: /d}}]\n  volumes:\n  - name: disk\n    iscsi: {{targetPortal: \"10.0.0.1:3260\", iqn: \"iqn.2001-04.com.example:storage\", lun: 0}}\n"
            ),
            "iscsi",
        ),
        (
            "unicode-vswitch",
            "    k8s.aliyun.com/eci-vswitch: \"vsw-\u{1F600}\u{202E}\"\n".to_owned(),
            BUSYBOX.to_owned(),
            "k8s.aliyun.com/eci-vswitch",
        ),
        (
            "wrong-secret-type",
            String::new(),
            format!("  imagePullSecrets: [{{name: opaque}}]\n{BUSYBOX}"),
            "opaque",
        ),
    ];
    ground
        .kubectl()
        .args(["-n", ns, "create", "secret", "generic", "opaque"])
        .args(["--from-literal=password=not-a-docker-config"])
        .ok()?;
    for (pod_name, annotations, spec, _) in &hostile {
        // `create`, not `apply`: apply's copy of the object in an annotation would double it.
        ground
            .kubectl()
            .args(["-n", ns, "create", "-f", "-"])
            .stdin(pod(pod_name, &name, annotations, spec))
            .ok()
            .with_context(|| format!("the API server took pod {pod_name}"))?;
    }
    // ImageCaches whose fields pass the schema but are nonsense.
    let class = eci_vk::imagecache::LABEL_CLASS;
    let caches = [
        (
            "bad-reference",
            "[\"UPPER::case@@bad\"]",
            "",
            "UPPER::case@@bad",
        ),
        (
            "missing-secret",
            "[\"busybox\"]",
            "  imagePullSecrets: [\"nowhere:nothing\"]\n",
            "nothing",
        ),
    ];
    for (cache, images, extra, _) in &caches {
        let yaml = format!(
            "apiVersion: eci.alibabacloud.com/v1\nkind: ImageCache\nmetadata:\n  name: {ns}-{cache}\n  labels: {{{class}: {name}}}\nspec:\n  images: {images}\n{extra}"
        );
        ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(yaml)
            .ok()
            .with_context(|| format!("the API server took ImageCache {cache}"))?;
    }
    let _cleanup = CacheCleanup {
        ground,
        name: &name,
    };

    for (pod_name, _, _, needle) in &hostile {
        let said = reason_given(ground, &node, ns, pod_name, needle)?;
        eprintln!(
            "pod {pod_name}: {}",
            said.chars().take(200).collect::<String>()
        );
        ensure!(
            said.len() < 2048,
            "pod {pod_name}'s reason repeats the 200 KiB value back ({} bytes)",
            said.len()
        );
    }
    for (cache, _, _, needle) in &caches {
        let object = format!("{ns}-{cache}");
        let said = wait(&format!("ImageCache {object}: its reason"), 60, || {
            let found = warnings(ground, "default", &object)?
                .into_iter()
                .chain(warnings(ground, ns, &object)?)
                .find(|w| names(w, needle));
            if found.is_some() {
                return Ok(found);
            }
            let cache: Option<eci_vk::imagecache::ImageCache> =
                get(ground, &["get", "imagecache", &object])?;
            let status = cache.and_then(|c| c.status).unwrap_or_default();
            let said = format!(
                "{:?}: {}",
                status.phase,
                serde_json::to_string(&status.conditions).unwrap_or_default()
            );
            Ok(names(&said, needle).then_some(said))
        })
        .with_context(|| format!("node log:\n{}", node.logs()))?;
        eprintln!(
            "imagecache {object}: {}",
            said.chars().take(200).collect::<String>()
        );
    }

    // Nothing else was harmed: the node is Ready, the steady pod runs in the same group, and a
    // new pod runs.
    ensure!(node_ready(ground, &name)?, "the node is not Ready");
    ensure!(running(ground, ns, "steady")?, "steady no longer runs");
    ensure!(
        group_of(ground, ns, "steady")?.as_deref() == Some(steady_group.as_str()),
        "steady's group changed"
    );
    apply(ground, ns, busybox_pod("after", &name))?;
    wait("pod after Running", 60, || {
        Ok(running(ground, ns, "after")?.then_some(()))
    })
    .with_context(|| format!("node log:\n{}", node.logs()))?;
    ensure!(
        node.logs().lines().all(|l| !l.contains("panicked")),
        "the node panicked:\n{}",
        node.logs()
    );
    Ok(())
}

/// Deletes the test's ImageCaches however it ends.
struct CacheCleanup<'g> {
    ground: &'g Ground,
    name: &'g str,
}

impl Drop for CacheCleanup<'_> {
    fn drop(&mut self) {
        self.ground.force_remove_image_caches(&format!(
            "{}={}",
            eci_vk::imagecache::LABEL_CLASS,
            self.name
        ));
    }
}
