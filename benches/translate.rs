//! The cost of turning one Pod into its `CreateContainerGroup` request (src/pods/translate.rs):
//! what the node does for every pod it is given, before the API call. The pod is a realistic
//! Deployment pod: two containers with resources, literal env, a ConfigMap key, a Secret key,
//! the downward API, `$(VAR)` expansion, probes and three volumes.
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::{collections::BTreeMap, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use eci_vk::{
    eci::{ImageRegistryCredential, SecretValue},
    imagecache::SnapshotDecision,
    pods::{
        Placement,
        env::{SourceKind, Sources},
        translate,
    },
};
use k8s_openapi::api::core::v1::Pod;

fn pod() -> Pod {
    let container = |name: &str, image: &str| {
        serde_json::json!({
            "name": name,
            "image": image,
            "command": ["/app"],
            "args": ["--listen", ":$(PORT)", "--name", "$(POD_NAME)"],
            "env": [
                {"name": "PORT", "value": "8080"},
                {"name": "MODE", "value": "production"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "level"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "token"}}}
            ],
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 10},
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/app"},
                {"name": "scratch", "mountPath": "/tmp"}
            ]
        })
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-7d9f8b6c5d-x2k4q",
            "namespace": "default",
            "uid": "3f2b6a1c-5d4e-4f7a-9b8c-1d2e3f4a5b6c",
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5d"},
            "annotations": {"k8s.aliyun.com/eci-image-cache": "true"}
        },
        "spec": {
            "nodeName": "virtual-kubelet",
            "containers": [
                container("web", "registry.example.com:5000/team/web:1.2.3"),
                container("sidecar", "registry.example.com:5000/team/proxy:2.0")
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "app-config"}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "secret", "secret": {"secretName": "app-secret"}}
            ]
        }
    }))
    .expect("a valid Pod")
}

fn sources() -> Sources {
    let mut sources = Sources::default();
    let data = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    sources.objects.insert(
        (SourceKind::ConfigMap, "app-config".into()),
        data(&[
            ("level", "info"),
            ("app.yaml", "listen: 8080\nworkers: 4\n"),
        ]),
    );
    sources.objects.insert(
        (SourceKind::Secret, "app-secret".into()),
        data(&[("token", "s3cr3t-t0k3n")]),
    );
    sources
}

fn bench(c: &mut Criterion) {
    let pod = pod();
    let sources = sources();
    let placement = Placement {
        cluster: "bench".into(),
        node: "virtual-kubelet".into(),
        host_ip: "10.0.0.10".into(),
        cluster_dns: Some("10.96.0.10".into()),
        cluster_domain: "cluster.local".into(),
        ..Placement::default()
    };
    // The bench pod starts from a cache and pulls with one login: the request is the whole one.
    let snapshot = SnapshotDecision::Use {
        id: "imc-0123456789abcdefghij".into(),
        name: "web-cache".into(),
        automatic: true,
    };
    let logins = vec![ImageRegistryCredential {
        server: "registry.example.com:5000".into(),
        user_name: "robot".into(),
        password: SecretValue::new("bench-password"),
    }];
    let translated = translate(&pod, &placement, &sources, &snapshot, logins.clone())
        .expect("the pod translates");
    assert!(
        !translated.blocked(),
        "the bench pod must not miss a reference"
    );
    c.bench_function("translate/pod_to_create_container_group", |b| {
        b.iter(|| {
            translate(
                black_box(&pod),
                &placement,
                &sources,
                &snapshot,
                logins.clone(),
            )
            .map(|t| t.request)
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
