//! What keeps the cluster busy during a chaos run: two Deployments scaled and updated, Jobs,
//! single pods and ImageCaches created and deleted, every choice drawn from the run's seed. All
//! through kubectl, as users would, so an API server away for a restart is an error to note and
//! carry on from, not a crash of the run.

use std::collections::BTreeSet;

use anyhow::Result;
use rand::{Rng, rngs::StdRng, seq::IndexedRandom};
use serde_json::json;

use crate::support::Ground;

/// Values that must never leave the places they were given to.
pub struct Secrets {
    /// A Secret's data, read into pods' environment.
    pub data: String,
    /// A registry password, in a `kubernetes.io/dockerconfigjson` Secret pods and caches use.
    pub registry_password: String,
}

/// The workload's state: what it created and still expects.
pub struct Workload<'g> {
    ground: &'g Ground,
    pub namespace: String,
    pub node: String,
    next: u32,
    /// Single pods alive (created and not deleted by the run).
    pub pods: BTreeSet<String>,
    jobs: BTreeSet<String>,
    pub caches: BTreeSet<String>,
    tag: [&'static str; 2],
    /// Actions that failed (the API server away, mostly): counted, never fatal.
    pub failed_actions: u32,
    pub actions: u32,
    /// The kinds of action (`create pod`, `scale deployment`, …) that succeeded at least once.
    pub succeeded: BTreeSet<String>,
}

/// Every kind of action the workload draws: a run in which one never succeeds did not test
/// what it claims (a missing CRD made every ImageCache action fail once).
pub const KINDS: [&str; 8] = [
    "scale deployment",
    "set deployment",
    "create pod",
    "delete pod",
    "create job",
    "delete job",
    "create imagecache",
    "delete imagecache",
];

const DEPLOYMENTS: [&str; 2] = ["web", "api"];
const MAX_PODS: usize = 10;
const MAX_JOBS: usize = 3;
const MAX_CACHES: usize = 4;

impl<'g> Workload<'g> {
    pub fn new(ground: &'g Ground, namespace: &str, node: &str) -> Self {
        Self {
            ground,
            namespace: namespace.to_owned(),
            node: node.to_owned(),
            next: 0,
            pods: BTreeSet::new(),
            jobs: BTreeSet::new(),
            caches: BTreeSet::new(),
            tag: ["1.36", "1.37"],
            failed_actions: 0,
            succeeded: BTreeSet::new(),
            actions: 0,
        }
    }

    fn apply(&self, object: &serde_json::Value) -> Result<String> {
        self.ground
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(object.to_string())
            .ok()
    }

    fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.ground
            .kubectl()
            .args(["-n", &self.namespace])
            .args(args)
            .ok()
    }

    /// The namespace, the Secrets and the Deployments (at 2 replicas each).
    pub fn set_up(&mut self, secrets: &Secrets) -> Result<()> {
        self.apply(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": self.namespace}}))?;
        self.apply(&json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "chaos-data", "namespace": self.namespace},
            "stringData": {"token": secrets.data}}))?;
        let auth = base64_encode(&format!("chaos:{}", secrets.registry_password));
        let config = json!({"auths": {"registry.chaos.example": {
            "username": "chaos", "password": secrets.registry_password, "auth": auth}}});
        self.apply(&json!({"apiVersion": "v1", "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "chaos-regcred", "namespace": self.namespace},
            "stringData": {".dockerconfigjson": config.to_string()}}))?;
        for name in DEPLOYMENTS {
            self.apply(&self.deployment(name, 2, self.tag[0]))?;
        }
        Ok(())
    }

    /// A pod spec placed on the chaos node through the scheduler, with the Secret's value in
    /// its environment and the registry login as its pull secret.
    fn pod_spec(&self, tag: &str) -> serde_json::Value {
        json!({
            "nodeSelector": {"kubernetes.io/hostname": self.node},
            "tolerations": [{"operator": "Exists"}],
            "imagePullSecrets": [{"name": "chaos-regcred"}],
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "main",
                "image": format!("registry.chaos.example/busybox:{tag}"),
                "command": ["sleep", "3600"],
                "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef":
                    {"name": "chaos-data", "key": "token"}}}],
                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
            }],
        })
    }

    fn deployment(&self, name: &str, replicas: u32, tag: &str) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": self.pod_spec(tag)},
            },
        })
    }

    /// One action, drawn from `rng`; returns what it did, for the run's timeline.
    pub fn step(&mut self, rng: &mut StdRng) -> String {
        self.actions += 1;
        let choice = rng.random_range(0..100);
        let (what, result) = match choice {
            0..20 => {
                let name = *DEPLOYMENTS.choose(rng).unwrap_or(&"web");
                let replicas = rng.random_range(0..=4);
                (
                    format!("scale deployment/{name} to {replicas}"),
                    self.kubectl(&[
                        "scale",
                        &format!("deployment/{name}"),
                        &format!("--replicas={replicas}"),
                    ]),
                )
            }
            20..30 => {
                let name = *DEPLOYMENTS.choose(rng).unwrap_or(&"web");
                let tag = *self.tag.choose(rng).unwrap_or(&"1.36");
                (
                    format!("set deployment/{name} image tag {tag}"),
                    self.kubectl(&[
                        "set",
                        "image",
                        &format!("deployment/{name}"),
                        &format!("main=registry.chaos.example/busybox:{tag}"),
                    ]),
                )
            }
            30..55 if self.pods.len() < MAX_PODS => {
                self.next += 1;
                let name = format!("pod-{}", self.next);
                let pod = json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": self.namespace},
                    "spec": self.pod_spec(self.tag[0])});
                let result = self.apply(&pod);
                if result.is_ok() {
                    self.pods.insert(name.clone());
                }
                (format!("create pod/{name}"), result)
            }
            30..70 if !self.pods.is_empty() => {
                let pods: Vec<&String> = self.pods.iter().collect();
                let name = (*pods.choose(rng).unwrap_or(&pods[0])).clone();
                let result = self.kubectl(&["delete", "pod", &name, "--wait=false"]);
                if result.is_ok() {
                    self.pods.remove(&name);
                }
                (format!("delete pod/{name}"), result)
            }
            70..80 if self.jobs.len() < MAX_JOBS => {
                self.next += 1;
                let name = format!("job-{}", self.next);
                let mut spec = self.pod_spec(self.tag[1]);
                spec["restartPolicy"] = json!("Never");
                let job = json!({"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": name, "namespace": self.namespace},
                    "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 0,
                        "template": {"spec": spec}}});
                let result = self.apply(&job);
                if result.is_ok() {
                    self.jobs.insert(name.clone());
                }
                (format!("create job/{name}"), result)
            }
            70..85 if !self.jobs.is_empty() => {
                let name = self.jobs.iter().next().cloned().unwrap_or_default();
                let result = self.kubectl(&[
                    "delete",
                    "job",
                    &name,
                    "--cascade=background",
                    "--wait=false",
                ]);
                if result.is_ok() {
                    self.jobs.remove(&name);
                }
                (format!("delete job/{name}"), result)
            }
            85..95 if self.caches.len() < MAX_CACHES => {
                self.next += 1;
                let name = format!("{}-c{}", self.namespace, self.next);
                let images = if rng.random_bool(0.2) {
                    // One in five fails to build: a phase the cloud must agree with too.
                    vec!["registry.chaos.example/does-not-exist:1".to_owned()]
                } else {
                    vec![format!("registry.chaos.example/busybox:{}", self.tag[0])]
                };
                let cache = json!({"apiVersion": "eci.alibabacloud.com/v1", "kind": "ImageCache",
                    "metadata": {"name": name, "labels": {eci_vk::imagecache::LABEL_CLASS: self.node}},
                    "spec": {"images": images,
                        "imagePullSecrets": [format!("{}:chaos-regcred", self.namespace)]}});
                let result = self.apply(&cache);
                if result.is_ok() {
                    self.caches.insert(name.clone());
                }
                (format!("create imagecache/{name}"), result)
            }
            _ if !self.caches.is_empty() => {
                let name = self.caches.iter().next().cloned().unwrap_or_default();
                let result = self
                    .ground
                    .kubectl()
                    .args(["delete", "imagecache", &name, "--wait=false"])
                    .ok();
                if result.is_ok() {
                    self.caches.remove(&name);
                }
                (format!("delete imagecache/{name}"), result)
            }
            _ => ("nothing".to_owned(), Ok(String::new())),
        };
        match result {
            Ok(_) => {
                let kind: Vec<&str> = what
                    .split_whitespace()
                    .take(2)
                    .map(|word| word.split('/').next().unwrap_or(word))
                    .collect();
                self.succeeded.insert(kind.join(" "));
                what
            }
            Err(error) => {
                self.failed_actions += 1;
                format!("{what}: failed ({})", first_line(&format!("{error:#}")))
            }
        }
    }

    /// Deletes what the run made (the namespace and its caches), waiting for nothing.
    pub fn tear_down(&self) {
        let _ = self
            .ground
            .kubectl()
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .run();
        let _ = self
            .ground
            .kubectl()
            .args([
                "delete",
                "imagecaches",
                "-l",
                &format!("{}={}", eci_vk::imagecache::LABEL_CLASS, self.node),
                "--wait=false",
            ])
            .run();
    }
}

pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
