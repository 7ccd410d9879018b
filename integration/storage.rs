//! Storage for pods, end to end: a StatefulSet's claim bound to an NFS PersistentVolume keeps
//! its data when its pod is deleted and recreated; a disk PV is one pod's at a time (the second
//! pod waits, with ECI's code in an event, and starts once the first is gone); a CSI volume of
//! an unknown driver fails its pod with
//! `UnsupportedVolume` and no container group is made.
//!
//! Each test runs `eci-vk emulator` with the real (runc) agent (its own bridge, pod range and
//! data directory) and an `eci-vk run` against it; both stop, and the node is deleted, however
//! the test ends.

use anyhow::{Context, Result, ensure};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    image::{ImageSpec, build_and_push},
    node_child::NodeChild,
    wait::wait,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "storage::statefulset_nfs_claim_keeps_data_across_pods",
            phase: Phase::WithCrd,
            run: statefulset_nfs_claim_keeps_data_across_pods,
        },
        Test {
            name: "storage::a_disk_is_one_pods_at_a_time",
            phase: Phase::WithCrd,
            run: a_disk_is_one_pods_at_a_time,
        },
        Test {
            name: "storage::unknown_csi_driver_fails_the_pod",
            phase: Phase::WithCrd,
            run: unknown_csi_driver_fails_the_pod,
        },
    ]
}

/// An emulator with the runc agent and a node on it.
struct Rig<'g> {
    ground: &'g Ground,
    node: NodeChild<'g>,
    image: String,
    emulator: EmulatorProcess,
    _tmp: tempfile::TempDir,
}

impl<'g> Rig<'g> {
    fn start(ground: &'g Ground, test: &str) -> Result<Self> {
        let emulator = EmulatorProcess::start_runc(ground, &[])?;
        let spec = ImageSpec::runnable("storage", "v1");
        ground
            .runtime
            .block_on(build_and_push(&spec, &ground.registry))?;
        let image = ground.registry.reference("storage", "v1");
        let tmp = tempfile::tempdir()?;
        let node = NodeChild::spawn(
            ground,
            format!("vk-storage-{test}-{}", std::process::id()),
            &emulator.endpoint,
            tmp.path(),
            &[],
            "info",
        )?;
        let rig = Rig {
            ground,
            node,
            image,
            emulator,
            _tmp: tmp,
        };
        rig.node.wait_ready()?;
        Ok(rig)
    }

    fn logs(&self) -> String {
        self.node.logs()
    }

    fn apply(&self, namespace: &str, yaml: &str) -> Result<()> {
        self.ground
            .kubectl()
            .args(["-n", namespace, "apply", "-f", "-"])
            .stdin(yaml)
            .ok()?;
        Ok(())
    }

    fn get(&self, namespace: &str, what: &[&str], jsonpath: &str) -> Result<String> {
        let path = format!("jsonpath={jsonpath}");
        let mut args = vec!["-n", namespace, "get"];
        args.extend_from_slice(what);
        args.extend(["-o", path.as_str()]);
        Ok(self
            .ground
            .kubectl()
            .args(args)
            .run()?
            .stdout
            .trim()
            .to_owned())
    }

    /// Scheduling onto this node: its name as selector, the provider taint tolerated.
    fn placement(&self) -> String {
        format!(
            "nodeSelector: {{kubernetes.io/hostname: {}}}\n      tolerations: [{{key: virtual-kubelet.io/provider, operator: Exists}}]",
            self.node.name
        )
    }

    fn wait_running(&self, namespace: &str, pod: &str, uid_not: &str) -> Result<String> {
        wait(&format!("pod {pod} Running"), 120, || {
            let out = self.get(namespace, &["pod", pod], "{.status.phase} {.metadata.uid}")?;
            Ok(match out.split_once(' ') {
                Some(("Running", uid)) if uid != uid_not => Some(uid.to_owned()),
                _ => None,
            })
        })
        .with_context(|| format!("node log:\n{}", self.logs()))
    }
}

/// A PV and its pre-bound claim (storageClassName "", claimRef), as an admin creates them.
fn pv_and_claim(namespace: &str, pv: &str, claim: &str, source: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {pv}}}\nspec:\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: \"\"\n  claimRef: {{namespace: {namespace}, name: {claim}}}\n  {source}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {claim}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  volumeName: {pv}\n  resources: {{requests: {{storage: 1Gi}}}}\n"
    )
}

fn delete_pv(ground: &Ground, pv: &str) {
    let _ = ground
        .kubectl()
        .args(["delete", "pv", pv, "--wait=false", "--ignore-not-found"])
        .run();
}

fn statefulset_nfs_claim_keeps_data_across_pods(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, "nfs")?;
    let n = &ns.name;
    let pv = format!("{n}-nfs");
    struct Pv<'a>(&'a Ground, String);
    impl Drop for Pv<'_> {
        fn drop(&mut self) {
            delete_pv(self.0, &self.1);
        }
    }
    let _pv = Pv(ground, pv.clone());
    // The StatefulSet's claim of pod web-0 is `data-web-0`: the PV is bound to it in advance.
    rig.apply(
        n,
        &pv_and_claim(
            n,
            &pv,
            "data-web-0",
            &format!("nfs: {{server: nas.example, path: /exports/{n}}}"),
        ),
    )?;
    // The first pod writes its uid to `first`; a later pod copies what it reads there to
    // `seen-<its uid>`: the data a user's pod reads back, checked on the agent's share.
    let sts = format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: web}}\nspec:\n  serviceName: web\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      {placement}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: {image}\n        env: [{{name: POD_UID, valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}}}]\n        command: [sh, -c, 'if [ -f /data/first ]; then cat /data/first > /data/seen-$POD_UID; else echo $POD_UID > /data/first; fi; sleep 3600']\n        volumeMounts: [{{name: data, mountPath: /data}}]\n  volumeClaimTemplates:\n  - metadata: {{name: data}}\n    spec:\n      accessModes: [ReadWriteOnce]\n      storageClassName: \"\"\n      resources: {{requests: {{storage: 1Gi}}}}\n",
        placement = rig.placement(),
        image = rig.image,
    );
    rig.apply(n, &sts)?;
    let first = rig.wait_running(n, "web-0", "")?;
    // The file is on the agent's NFS directory, where the next pod's group finds it.
    let share = rig
        .emulator
        .agent_dir()
        .context("runc agent dir")?
        .join(format!("runtime/nfs/nas.example/exports/{n}/first"));
    let written = wait("the first pod's file", 60, || {
        Ok(std::fs::read_to_string(&share).ok())
    })?;
    ensure!(
        written.trim() == first,
        "the share holds {written:?}, not {first:?}"
    );
    ground
        .kubectl()
        .args([
            "-n",
            n,
            "delete",
            "pod",
            "web-0",
            "--wait=true",
            "--timeout=90s",
        ])
        .ok()?;
    let second = rig.wait_running(n, "web-0", &first)?;
    let seen = share.with_file_name(format!("seen-{second}"));
    let read = wait("the second pod reads the file back", 60, || {
        Ok(std::fs::read_to_string(&seen).ok())
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))?;
    ensure!(
        read.trim() == first,
        "the second pod {second} read {read:?}, not {first:?}"
    );
    Ok(())
}

fn a_disk_is_one_pods_at_a_time(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, "disk")?;
    let n = &ns.name;
    let disk = format!("d-{}", n.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    let source = format!(
        "csi: {{driver: diskplugin.csi.alibabacloud.com, volumeHandle: {disk}, fsType: ext4}}"
    );
    let (pv1, pv2) = (format!("{n}-disk-a"), format!("{n}-disk-b"));
    struct Pvs<'a>(&'a Ground, [String; 2]);
    impl Drop for Pvs<'_> {
        fn drop(&mut self) {
            for pv in &self.1 {
                delete_pv(self.0, pv);
            }
        }
    }
    let _pvs = Pvs(ground, [pv1.clone(), pv2.clone()]);
    rig.apply(n, &pv_and_claim(n, &pv1, "one", &source))?;
    rig.apply(n, &pv_and_claim(n, &pv2, "two", &source))?;
    let pod = |name: &str, claim: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n      {placement}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: main\n        image: {image}\n        command: [sh, -c, 'echo hi > /data/hello; sleep 3600']\n        volumeMounts: [{{name: data, mountPath: /data}}]\n      volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]\n",
            placement = rig.placement(),
            image = rig.image,
        )
    };
    rig.apply(n, &pod("first", "one"))?;
    rig.wait_running(n, "first", "")?;
    let kept = rig
        .emulator
        .agent_dir()
        .context("runc agent dir")?
        .join(format!("runtime/disks/{disk}/hello"));
    wait("the disk's file", 60, || Ok(kept.exists().then_some(())))?;
    rig.apply(n, &pod("second", "two"))?;
    // The emulator refuses the second group with ECI's code; the pod says why in an event and
    // waits for the disk, as a kubelet waits for a volume held elsewhere to detach.
    let why = wait("the second pod's IncorrectDiskStatus event", 60, || {
        let out = ground
            .kubectl()
            .args([
                "-n",
                n,
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=second,reason=ProviderFailed",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .run()?
            .stdout;
        Ok(out.contains("IncorrectDiskStatus").then_some(out))
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))?;
    ensure!(
        why.contains(&disk),
        "the event does not name the disk: {why}"
    );
    let second = rig.get(n, &["pod", "second"], "{.status.phase}")?;
    ensure!(
        second == "Pending",
        "the second pod is {second}, not waiting"
    );
    let first = rig.get(n, &["pod", "first"], "{.status.phase}")?;
    ensure!(first == "Running", "the first pod is {first}");
    // Once the first pod (and its group) is gone, the disk is free and the second one starts on it.
    ground
        .kubectl()
        .args([
            "-n",
            n,
            "delete",
            "pod",
            "first",
            "--wait=true",
            "--timeout=60s",
        ])
        .ok()?;
    rig.wait_running(n, "second", "")?;
    Ok(())
}

fn unknown_csi_driver_fails_the_pod(ground: &Ground, ns: &Namespace) -> Result<()> {
    let rig = Rig::start(ground, "csi")?;
    let n = &ns.name;
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: odd}}\nspec:\n  nodeName: {node}\n  containers:\n  - name: main\n    image: {image}\n    command: [sleep, '3600']\n    volumeMounts: [{{name: odd, mountPath: /odd}}]\n  volumes: [{{name: odd, csi: {{driver: odd.example.com}}}}]\n",
        node = rig.node.name,
        image = rig.image,
    );
    rig.apply(n, &pod)?;
    let status = wait("pod odd Failed", 60, || {
        let out = rig.get(
            n,
            &["pod", "odd"],
            "{.status.phase}|{.status.reason}|{.status.message}",
        )?;
        Ok(out.starts_with("Failed|").then_some(out))
    })
    .with_context(|| format!("node log:\n{}", rig.logs()))?;
    ensure!(
        status.starts_with("Failed|UnsupportedVolume|") && status.contains("odd.example.com"),
        "status: {status}"
    );
    let event = wait("the UnsupportedVolume event", 30, || {
        let out = ground
            .kubectl()
            .args([
                "-n",
                n,
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=odd,reason=UnsupportedVolume",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .run()?
            .stdout;
        Ok((!out.trim().is_empty()).then_some(out))
    })?;
    ensure!(
        event.contains("\"odd\""),
        "the event names no volume: {event}"
    );
    // No container group was made for it.
    let client = rig.emulator.client()?;
    let groups = ground
        .runtime
        .block_on(async { client.describe_container_groups(&Default::default()).await });
    let groups = groups.context("describe groups")?;
    ensure!(
        groups.container_groups.is_empty(),
        "a group was created: {:?}",
        groups
            .container_groups
            .iter()
            .map(|g| &g.container_group_name)
            .collect::<Vec<_>>()
    );
    Ok(())
}
