//! The test ground as the tests see it: started by `integration/ground/up.sh` (or reused when
//! it already runs), described by the `ground.env` file that script writes, and stopped again
//! by `integration/ground/down.sh` when this process started it.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result, bail};

use super::image::Registry;

/// A running test ground and what the tests need to reach it.
pub struct Ground {
    /// Directory of kubectl, helm and the control-plane binaries.
    pub bin: PathBuf,
    /// Admin kubeconfig of the ground's cluster.
    pub kubeconfig: PathBuf,
    /// kubectl's discovery cache for this ground (`KUBECACHEDIR`; absent in the `ground.env`
    /// of a ground started before it was written there).
    kube_cache: Option<PathBuf>,
    /// The plain-HTTP registry, anonymous.
    pub registry: Registry,
    /// The HTTPS registry with htpasswd basic auth.
    pub auth_registry: Registry,
    /// The address virtual nodes advertise as InternalIP and serve the kubelet API on: not
    /// loopback, so the API server proxies to it (`GROUND_NODE_IP`; 127.0.0.1 on a ground
    /// started before it was written).
    pub node_ip: String,
    /// A runtime for the async parts of tests (registry pushes, kube clients).
    pub runtime: tokio::runtime::Runtime,
    /// Whether this process started the ground (and so must stop it).
    started_here: bool,
    /// Set once the ground was stopped; the lock makes a second `stop` (say, from a signal
    /// arriving while the suite stops normally) wait for the first instead of racing it.
    stopped: std::sync::Mutex<bool>,
    namespaces: AtomicU32,
}

/// The ground's real worker node ([`Ground::worker`]).
pub struct Worker {
    /// Its Node's name.
    pub name: String,
    /// The host's address on the worker's link: what the worker's pods reach this host at.
    pub host_ip: String,
}

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ground_script(name: &str) -> PathBuf {
    project_root().join("integration/ground").join(name)
}

/// The directory the ground's processes keep their state in (`GROUND_RUN_DIR`).
pub fn run_dir() -> PathBuf {
    std::env::var_os("GROUND_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/ground/run"))
}

fn env_file() -> PathBuf {
    run_dir().join("ground.env")
}

fn run_script(name: &str, args: &[&str]) -> Result<()> {
    let status = Command::new("bash")
        .arg(ground_script(name))
        .args(args)
        .status()
        .with_context(|| format!("cannot run integration/ground/{name}"))?;
    if !status.success() {
        bail!(
            "integration/ground/{name} {} failed: {status}",
            args.join(" ")
        );
    }
    Ok(())
}

impl Ground {
    /// Reuses a ground that already answers, or starts a fresh one.
    pub fn start_or_reuse() -> Result<Self> {
        if let Ok(ground) = Self::from_env_file(false)
            && ground
                .kubectl()
                .args(["get", "--raw", "/readyz"])
                .ok()
                .is_ok()
        {
            eprintln!("[harness] reusing the running test ground");
            return Ok(ground);
        }
        eprintln!("[harness] starting a fresh test ground (integration/ground/up.sh --fresh)");
        run_script("up.sh", &["--fresh"])?;
        Self::from_env_file(true)
    }

    fn from_env_file(started_here: bool) -> Result<Self> {
        let path = env_file();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let env: HashMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        let get = |key: &str| {
            env.get(key)
                .map(|v| v.to_string())
                .with_context(|| format!("{} has no {key}", path.display()))
        };
        let ca = PathBuf::from(get("GROUND_CA")?);
        Ok(Self {
            bin: get("GROUND_BIN")?.into(),
            kubeconfig: get("KUBECONFIG")?.into(),
            kube_cache: env.get("KUBECACHEDIR").map(PathBuf::from),
            node_ip: env
                .get("GROUND_NODE_IP")
                .map_or_else(|| "127.0.0.1".to_owned(), |ip| (*ip).to_owned()),
            registry: Registry::plain(get("GROUND_REGISTRY")?),
            auth_registry: Registry::tls_basic(
                get("GROUND_AUTH_REGISTRY")?,
                ca.clone(),
                get("GROUND_REGISTRY_USER")?,
                get("GROUND_REGISTRY_PASSWORD")?,
            ),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot build the tokio runtime")?,
            started_here,
            stopped: std::sync::Mutex::new(false),
            namespaces: AtomicU32::new(0),
        })
    }

    /// The ground's worker node (`integration/ground/worker-up.sh`: a real kubelet and
    /// containerd), started on first use; `down.sh` stops it with the ground.
    pub fn worker(&self) -> Result<Worker> {
        static STARTED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        let mut started = STARTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*started {
            run_script("worker-up.sh", &[])?;
            *started = true;
        }
        let path = env_file();
        let text = std::fs::read_to_string(&path)?;
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
                .with_context(|| format!("{} has no {key}", path.display()))
        };
        Ok(Worker {
            name: get("GROUND_WORKER_NAME")?,
            host_ip: get("GROUND_WORKER_HOST_IP")?,
        })
    }

    /// Stops the ground if this process started it; a reused ground is left running.
    pub fn stop(&self) {
        let mut stopped = self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.started_here && !*stopped {
            *stopped = true;
            eprintln!("[harness] stopping the test ground (integration/ground/down.sh --purge)");
            if let Err(error) = run_script("down.sh", &["--purge"]) {
                eprintln!("[harness] {error:#}");
            }
        }
    }

    /// Waits up to `seconds` for Node `name`'s `Ready` condition to be `True`.
    pub fn wait_node_ready(&self, name: &str, seconds: u64) -> anyhow::Result<()> {
        super::wait::wait(&format!("node {name} Ready"), seconds, || {
            let out = self
                .kubectl()
                .args([
                    "get",
                    "node",
                    name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .run()?;
            Ok((out.success && out.stdout.trim() == "True").then_some(()))
        })
    }

    /// Lets the API server through the virtual nodes' kubelet API (`kubectl logs/exec`): it
    /// reaches kubelets as `kube-apiserver-kubelet-client` (its `--kubelet-client-certificate`),
    /// and, as in a kubeadm cluster, that user holds `system:kubelet-api-admin`, which the
    /// kubelet API's SubjectAccessReview asks for. Idempotent: tests share the cluster.
    pub fn let_apiserver_reach_kubelets(&self) -> anyhow::Result<()> {
        self.kubectl()
            .args(["apply", "-f", "-"])
            .stdin(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: kube-apiserver-kubelet-api-admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}\nsubjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}\n",
            )
            .ok()?;
        Ok(())
    }

    /// A kubectl command against the ground's cluster.
    pub fn kubectl(&self) -> super::kubectl::Kubectl {
        super::kubectl::Kubectl::new(&self.bin.join("kubectl"), self.kubectl_base_args())
    }

    /// Deletes the ImageCaches that `selector` picks and waits (up to 30 s) for a node to
    /// release them: the way a test ends while its node still runs.
    pub fn delete_image_caches(&self, selector: &str) {
        let _ = self
            .kubectl()
            .args([
                "delete",
                "imagecache",
                "-l",
                selector,
                "--wait=true",
                "--timeout=30s",
            ])
            .run();
    }

    /// Removes the ImageCaches that `selector` picks (all when empty) even without a node to release them
    /// (finalizers dropped): what a test's node could not release must not stay stuck in the
    /// cluster for the tests after it.
    pub fn force_remove_image_caches(&self, selector: &str) {
        let mut get = vec!["get", "imagecache", "-o", "name"];
        if !selector.is_empty() {
            get.extend(["-l", selector]);
        }
        let Ok(names) = self.kubectl().args(get).ok() else {
            return;
        };
        for name in names.split_whitespace() {
            let _ = self
                .kubectl()
                .args([
                    "patch",
                    name,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ])
                .run();
            let _ = self
                .kubectl()
                .args(["delete", name, "--wait=false", "--ignore-not-found"])
                .run();
        }
    }

    /// What every kubectl of the tests starts with: the ground's kubeconfig, and the ground's
    /// own discovery cache (see `up.sh` on `KUBECACHEDIR`).
    pub fn kubectl_base_args(&self) -> Vec<String> {
        let mut args = vec![format!("--kubeconfig={}", self.kubeconfig.display())];
        if let Some(cache) = &self.kube_cache {
            args.push(format!("--cache-dir={}", cache.display()));
        }
        args
    }

    /// Path of the `eci-vk` binary under test.
    pub fn eci_vk(&self) -> &'static Path {
        Path::new(env!("CARGO_BIN_EXE_eci-vk"))
    }

    /// A namespace of the test's own, deleted when the guard drops. Its name is a DNS label
    /// made from `test_name`, unique within this run.
    pub fn namespace(&self, test_name: &str) -> Result<Namespace<'_>> {
        let n = self.namespaces.fetch_add(1, Ordering::Relaxed);
        let mut stem: String = test_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        stem.truncate(40);
        let name = format!("t-{}-{}-{n}", stem.trim_matches('-'), std::process::id());
        self.kubectl().args(["create", "namespace", &name]).ok()?;
        Ok(Namespace { ground: self, name })
    }
}

/// A namespace owned by one test.
pub struct Namespace<'g> {
    ground: &'g Ground,
    /// The namespace's name.
    pub name: String,
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .ground
            .kubectl()
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .ok();
    }
}
