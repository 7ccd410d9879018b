//! Pod → `CreateContainerGroup`: a pure function, so every rule here is unit-tested.
//!
//! Rules: command and args stay separate (ECI has `Command` and `Arg`); env is resolved by
//! [`super::env`] (ConfigMap/Secret values, downward API, `$(VAR)`); resources
//! use the larger of request and limit per container and the group is rounded up to the
//! smallest valid ECI spec, so "limit > request" never fails a pod; `ClientToken` is the pod
//! UID, so a retried create never makes a second group; tags say which cluster, node and pod
//! a group belongs to.

use k8s_openapi::{
    api::core::v1::{Container as PodContainer, Pod},
    apimachinery::pkg::api::resource::Quantity,
};

use super::env::{self, Missing, Sources};
use crate::{
    eci::{
        self, Container, CreateContainerGroup, ImageRegistryCredential, Tag,
        container_spec::{
            ContainerPort, DnsConfig, DnsOption, ExecAction, HookHttpGet, HookTcpSocket, HostAlias,
            HttpGetAction, HttpHeader, ImagePullPolicy, PodSecurityContext, Probe, RestartPolicy,
            Sysctl, TcpSocketAction, VolumeMount,
        },
    },
    imagecache::SnapshotDecision,
    quantity,
};

/// Tag keys of a container group the node owns: ECI's tag module, where every key is spelt.
pub use crate::eci::tag as tags;

/// Where new groups go.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Cluster name (tag).
    pub cluster: String,
    /// Node name (tag).
    pub node: String,
    /// Zone.
    pub zone: Option<String>,
    /// vSwitch.
    pub vswitch: Option<String>,
    /// Security group.
    pub security_group: Option<String>,
    /// Node-wide defaults of what pods' annotations set (RAM role, spot fallback).
    pub defaults: super::annotations::Defaults,
    /// The node's InternalIP (the downward API's `status.hostIP`).
    pub host_ip: String,
    /// The cluster DNS server for `ClusterFirst` pods (none: left to the cloud's resolver).
    pub cluster_dns: Option<String>,
    /// The cluster domain, e.g. `cluster.local`.
    pub cluster_domain: String,
    /// The API server's address pods can reach (`KUBERNETES_SERVICE_HOST`/`_PORT`).
    pub api_server: Option<(String, u16)>,
}

impl Placement {
    /// The vSwitches of `vswitch`, one by one.
    pub fn vswitches(&self) -> Vec<String> {
        self.vswitch
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A create request, and the ConfigMap/Secret references and claims it could not satisfy.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The request (complete only if no reference in `missing` is mandatory and nothing waits).
    pub request: CreateContainerGroup,
    /// Missing references; optional ones were skipped.
    pub missing: Vec<Missing>,
    /// PersistentVolumeClaims not bound yet, one line each.
    pub waiting: Vec<String>,
    /// Warning events the pod's annotations bring, `(reason, message)`, published once the
    /// group exists.
    pub warnings: Vec<(&'static str, String)>,
}

/// The event reason of a pod waiting for its claims.
pub const CLAIM_NOT_BOUND: &str = "PersistentVolumeClaimNotBound";

impl Translated {
    /// Whether a mandatory reference is missing or a claim is not bound (the group must not be
    /// created yet).
    pub fn blocked(&self) -> bool {
        self.missing.iter().any(|m| !m.optional) || !self.waiting.is_empty()
    }
}

/// Why a pod cannot run on this node (shown as the pod's status reason and an event).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unsupported {
    /// The node's zone has no vSwitch left: the eci-profile's `vSwitchIds` no longer lists
    /// any of its own.
    #[error(
        "zone {zone}: the eci-profile's vSwitchIds list none of this node's vSwitches ({own}), so no group can be created here; the node is cordoned and new pods go to the other zones"
    )]
    ZoneWithoutVSwitch {
        /// The node's zone.
        zone: String,
        /// Its own vSwitches, comma-separated.
        own: String,
    },
    /// The pod belongs to a DaemonSet: per-node agents have no node to run on here.
    #[error(
        "DaemonSet pods cannot run on a virtual node; keep the DaemonSet off it (nodeAffinity or no toleration for its taint)"
    )]
    DaemonSet,
    /// The pod uses the host's network.
    #[error("hostNetwork is not available on ECI")]
    HostNetwork,
    /// The pod mounts a hostPath volume.
    #[error("hostPath volume {volume:?} is not available on ECI")]
    HostPath {
        /// The volume.
        volume: String,
    },
    /// A volume is of a type this node cannot give a pod (an unknown CSI driver, iscsi, rbd, …).
    #[error("volume {volume:?} ({kind}) cannot be mounted on ECI")]
    Volume {
        /// The volume.
        volume: String,
        /// Its type, e.g. `csi driver "ebs.csi.aws.com"`.
        kind: String,
    },
    /// A mount's `subPath`/`subPathExpr` is absolute or leaves its volume (`..`).
    #[error(
        "container {container:?}: sub-path {path:?} of volume {volume:?} must be relative and stay inside the volume"
    )]
    SubPath {
        /// The container.
        container: String,
        /// The volume.
        volume: String,
        /// The sub-path as the pod wrote it (`subPath`, or the unexpanded `subPathExpr`).
        path: String,
    },
    /// The pod has no UID, name or namespace (never expected of an apiserver object).
    #[error("the pod has no {field}")]
    MissingMetadata {
        /// The field.
        field: &'static str,
    },
    /// A container's resources are not quantities this node understands.
    #[error("container {container:?}: {resource} {value:?} is not a quantity")]
    BadQuantity {
        /// The container.
        container: String,
        /// `cpu`, `memory` or `nvidia.com/gpu`.
        resource: &'static str,
        /// The value.
        value: String,
    },
    /// The pod asks for a field ECI cannot honour and the pod must not run without
    /// (see [`super::fields`]).
    #[error("{field}: {why}")]
    Field {
        /// The field's path, e.g. `spec.volumes[0].csi`.
        field: String,
        /// Why it cannot be honoured.
        why: String,
    },
    /// A `k8s.aliyun.com/…` annotation of the pod is malformed.
    #[error(transparent)]
    Annotation(#[from] super::annotations::Invalid),
    /// The pod asks for more than the largest ECI spec.
    #[error("{cpu} vCPU / {memory} GiB is larger than every ECI instance spec")]
    TooLarge {
        /// vCPUs wanted.
        cpu: f64,
        /// GiB wanted.
        memory: f64,
    },
}

impl Unsupported {
    /// The status reason and event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Unsupported::ZoneWithoutVSwitch { .. } => "ZoneWithoutVSwitch",
            Unsupported::DaemonSet => "DaemonSetPodUnsupported",
            Unsupported::HostNetwork => "HostNetworkUnsupported",
            Unsupported::HostPath { .. } => "HostPathUnsupported",
            Unsupported::Volume { .. } => "UnsupportedVolume",
            Unsupported::SubPath { .. } => "InvalidSubPath",
            Unsupported::MissingMetadata { .. } => "InvalidPod",
            Unsupported::BadQuantity { .. } => "InvalidResources",
            Unsupported::TooLarge { .. } => "ResourcesTooLarge",
            Unsupported::Field { .. } => "UnsupportedField",
            Unsupported::Annotation(_) => super::annotations::INVALID_REASON,
        }
    }
}

/// Checks the pod is one this node can host.
///
/// # Errors
/// The first [`Unsupported`] feature found.
pub fn check_supported(pod: &Pod) -> Result<(), Unsupported> {
    let owned_by_daemonset = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    if owned_by_daemonset {
        return Err(Unsupported::DaemonSet);
    }
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    if spec.host_network == Some(true) {
        return Err(Unsupported::HostNetwork);
    }
    if let Some(volume) = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.host_path.is_some())
    {
        return Err(Unsupported::HostPath {
            volume: volume.name.clone(),
        });
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(kind) = super::volumes::unknown_source(volume) {
            return Err(Unsupported::Volume {
                volume: volume.name.clone(),
                kind,
            });
        }
    }
    if let Some(refusal) = super::fields::review(pod).refusals.into_iter().next() {
        return Err(Unsupported::Field {
            field: refusal.path,
            why: refusal.note,
        });
    }
    Ok(())
}

/// Builds the finished create request of `pod`'s container group: env values from `sources`,
/// `ImageSnapshotId` from `snapshot` (only a [`SnapshotDecision::Use`] sets it) and the
/// registry logins of its pull secrets as `ImageRegistryCredential.N`.
///
/// # Errors
/// [`Unsupported`] when the pod cannot run here.
pub fn translate(
    pod: &Pod,
    placement: &Placement,
    sources: &Sources,
    snapshot: &SnapshotDecision,
    credentials: Vec<ImageRegistryCredential>,
) -> Result<Translated, Unsupported> {
    check_supported(pod)?;
    let meta = &pod.metadata;
    let missing = |field| Unsupported::MissingMetadata { field };
    let uid = meta.uid.as_deref().ok_or_else(|| missing("uid"))?;
    let name = meta.name.as_deref().ok_or_else(|| missing("name"))?;
    let namespace = meta
        .namespace
        .as_deref()
        .ok_or_else(|| missing("namespace"))?;
    let spec = pod.spec.as_ref().ok_or_else(|| missing("spec"))?;

    let volumes = super::volumes::map(pod, sources, &placement.host_ip);
    if let Some(refused) = volumes.refused.first() {
        return Err(Unsupported::Volume {
            volume: refused.volume.clone(),
            kind: refused.kind.clone(),
        });
    }
    let mut missing = volumes.missing;
    let mounts = Mounts {
        names: &volumes.names,
        read_only: &volumes.read_only,
    };
    let mut build = |c: &PodContainer, init: bool| {
        let (resolved, gaps) = env::resolve(pod, c, sources, &placement.host_ip);
        missing.extend(gaps);
        let values = env_values(pod, &resolved, &placement.host_ip);
        let mut out = container(c, resolved, &mounts, &values)?;
        super::security::apply(pod, c, init, &mut out);
        if init {
            strip_init(&mut out);
        }
        Ok::<_, Unsupported>(out)
    };
    let containers = spec
        .containers
        .iter()
        .map(|c| build(c, false))
        .collect::<Result<Vec<_>, _>>()?;
    let init_containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| build(c, true))
        .collect::<Result<Vec<_>, _>>()?;

    // Init containers run one at a time before the others: the group needs the larger of the
    // biggest init container and the sum of the regular ones.
    let sum = |cs: &[Container], f: fn(&Container) -> Option<f64>| -> f64 {
        cs.iter().filter_map(f).sum()
    };
    let max = |cs: &[Container], f: fn(&Container) -> Option<f64>| -> f64 {
        cs.iter().filter_map(f).fold(0.0, f64::max)
    };
    let want_cpu = sum(&containers, |c| c.cpu).max(max(&init_containers, |c| c.cpu));
    let want_mem = sum(&containers, |c| c.memory).max(max(&init_containers, |c| c.memory));
    let (cpu, memory) = if want_cpu <= 0.0 && want_mem <= 0.0 {
        (None, None)
    } else {
        let (c, m) = eci::round_up_spec(want_cpu, want_mem).ok_or(Unsupported::TooLarge {
            cpu: want_cpu,
            memory: want_mem,
        })?;
        (Some(c), Some(m))
    };

    let restart_policy = match spec.restart_policy.as_deref() {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    };

    let dns = dns(spec, namespace, placement);
    let mut request = CreateContainerGroup {
        container_group_name: group_name(namespace, name),
        containers,
        init_containers,
        volumes: volumes.volumes,
        cpu,
        memory,
        zone_id: placement.zone.clone(),
        vswitch_id: placement.vswitch.clone(),
        security_group_id: placement.security_group.clone(),
        restart_policy: Some(restart_policy),
        tags: vec![
            Tag::new(tags::CLUSTER, &placement.cluster),
            Tag::new(tags::NODE, &placement.node),
            // Tag values hold at most 128 characters; the UID tag is the identity.
            Tag::new(tags::NAMESPACE, truncate(namespace, 128)),
            Tag::new(tags::NAME, truncate(name, 128)),
            Tag::new(tags::UID, uid),
        ],
        client_token: Some(uid.to_owned()),
        active_deadline_seconds: spec.active_deadline_seconds,
        termination_grace_period_seconds: spec.termination_grace_period_seconds,
        // What a kubelet gives the pod: spec.hostname, else the pod's name cut to the 63
        // characters a hostname may have.
        host_name: Some(pod_hostname(spec.hostname.as_deref(), name)),
        dns_policy: dns.as_ref().map(|(policy, _)| policy.clone()),
        dns_config: dns.and_then(|(_, config)| config),
        host_aliases: spec
            .host_aliases
            .iter()
            .flatten()
            .map(|h| HostAlias {
                ip: h.ip.clone(),
                hostnames: h.hostnames.clone().unwrap_or_default(),
            })
            .collect(),
        security_context: spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.sysctls.as_ref())
            .filter(|s| !s.is_empty())
            .map(|sysctls| PodSecurityContext {
                sysctls: sysctls
                    .iter()
                    .map(|s| Sysctl {
                        name: s.name.clone(),
                        value: s.value.clone(),
                    })
                    .collect(),
            }),
        share_process_namespace: spec.share_process_namespace,
        image_snapshot_id: match snapshot {
            SnapshotDecision::Use { id, .. } => Some(id.clone()),
            SnapshotDecision::NotRequested
            | SnapshotDecision::AutoCreate { .. }
            | SnapshotDecision::Missed { .. } => None,
        },
        auto_match_image_cache: matches!(snapshot, SnapshotDecision::AutoCreate { .. })
            .then_some(true),
        image_registry_credentials: credentials,
        ..CreateContainerGroup::default()
    };
    let applied = super::annotations::apply(pod, &placement.defaults, &mut request)?;
    Ok(Translated {
        request,
        missing,
        waiting: volumes.waiting,
        warnings: applied.warnings,
    })
}

/// The extended resource of NVIDIA GPUs, as the device plugin and ECI's GPU page name it.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// The container's `nvidia.com/gpu` (a limit, or a request: Kubernetes requires the two equal
/// for extended resources) → `Container.N.Gpu` ("Create a GPU-accelerated instance",
/// <https://www.alibabacloud.com/help/en/eci/user-guide/create-gpu-accelerated-elastic-container-instances>).
fn gpus(c: &PodContainer) -> Result<Option<u32>, Unsupported> {
    let resources = c.resources.as_ref();
    let Some(q) = resources
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(GPU_RESOURCE))
        .or_else(|| {
            resources
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(GPU_RESOURCE))
        })
    else {
        return Ok(None);
    };
    let bad = || Unsupported::BadQuantity {
        container: c.name.clone(),
        resource: GPU_RESOURCE,
        value: q.0.clone(),
    };
    let count = q.0.trim().parse::<u32>().map_err(|_| bad())?;
    Ok((count > 0).then_some(count))
}

/// What the container mounts may name.
struct Mounts<'a> {
    /// Volumes in the request.
    names: &'a std::collections::HashSet<String>,
    /// Volumes every mount of which is read-only.
    read_only: &'a std::collections::HashSet<String>,
}

/// The container's environment as `subPathExpr` sees it: each variable's value, downward-API
/// fields resolved.
fn env_values(
    pod: &Pod,
    resolved: &env::Resolved,
    host_ip: &str,
) -> std::collections::HashMap<String, String> {
    resolved
        .vars
        .iter()
        .filter_map(|v| {
            let value = match (&v.value, &v.field_ref) {
                (Some(value), _) => value.clone(),
                (None, Some(field)) => env::field_text(pod, &field.field_path, host_ip)?,
                (None, None) => String::new(),
            };
            Some((v.key.clone(), value))
        })
        .collect()
}

/// A mount's sub-path: `subPath`, else `subPathExpr` expanded from the container's environment
/// as the kubelet does; refused when absolute or leaving the volume.
fn sub_path(
    c: &PodContainer,
    m: &k8s_openapi::api::core::v1::VolumeMount,
    values: &std::collections::HashMap<String, String>,
) -> Result<Option<String>, Unsupported> {
    // What the refusal shows is what the pod wrote: an expanded `subPathExpr` may hold the
    // value of a Secret-backed variable, which must not reach an event or the pod's status.
    let (path, written) = match (&m.sub_path, &m.sub_path_expr) {
        (Some(path), _) if !path.is_empty() => (path.clone(), path.clone()),
        (_, Some(expr)) if !expr.is_empty() => (env::expand(expr, values), expr.clone()),
        _ => return Ok(None),
    };
    let escapes = path.starts_with('/') || path.split('/').any(|part| part == "..");
    if escapes {
        return Err(Unsupported::SubPath {
            container: c.name.clone(),
            volume: m.name.clone(),
            path: written,
        });
    }
    Ok(Some(path))
}

/// The hostname a kubelet gives a pod: `spec.hostname`, else its name, at most 63
/// characters and not ending in `-` or `.`.
fn pod_hostname(hostname: Option<&str>, name: &str) -> String {
    let host = hostname.filter(|h| !h.is_empty()).unwrap_or(name);
    truncate(host, 63).trim_end_matches(['-', '.']).to_owned()
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// `namespace-name`, lowercased, `[a-z0-9-]` only, at most 128 characters, trimmed of `-`.
pub fn group_name(namespace: &str, name: &str) -> String {
    let raw: String = format!("{namespace}-{name}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    let trimmed = raw.trim_matches('-');
    if trimmed.len() < 2 {
        format!("pod-{trimmed}").trim_end_matches('-').to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn container(
    c: &PodContainer,
    resolved: env::Resolved,
    mounts: &Mounts<'_>,
    values: &std::collections::HashMap<String, String>,
) -> Result<Container, Unsupported> {
    let resource = |resource: &'static str| -> Result<Option<f64>, Unsupported> {
        let pick = |map: Option<&std::collections::BTreeMap<String, Quantity>>| {
            map.and_then(|m| m.get(resource)).cloned()
        };
        let resources = c.resources.as_ref();
        let values = [
            pick(resources.and_then(|r| r.requests.as_ref())),
            pick(resources.and_then(|r| r.limits.as_ref())),
        ];
        let mut best: Option<f64> = None;
        for q in values.into_iter().flatten() {
            let parsed = if resource == "cpu" {
                quantity::cpu_cores(&q.0)
            } else {
                quantity::parse(&q.0).map(|b| b.value() / f64::from(1u32 << 30))
            }
            .map_err(|_| Unsupported::BadQuantity {
                container: c.name.clone(),
                resource,
                value: q.0.clone(),
            })?;
            best = Some(best.map_or(parsed, |b: f64| b.max(parsed)));
        }
        Ok(best)
    };
    let post_start = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref());
    let pre_stop = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
    check_probe_and_hook_ports(c)?;
    Ok(Container {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        cpu: resource("cpu")?,
        memory: resource("memory")?,
        gpu: gpus(c)?,
        commands: resolved.command,
        args: resolved.args,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        image_pull_policy: match c.image_pull_policy.as_deref() {
            Some("Always") => Some(ImagePullPolicy::Always),
            Some("Never") => Some(ImagePullPolicy::Never),
            Some("IfNotPresent") => Some(ImagePullPolicy::IfNotPresent),
            _ => None,
        },
        environment_vars: resolved.vars,
        volume_mounts: c
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| mounts.names.contains(&m.name))
            .map(|m| {
                Ok(VolumeMount {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: if mounts.read_only.contains(&m.name) {
                        Some(true)
                    } else {
                        m.read_only
                    },
                    sub_path: sub_path(c, m, values)?,
                    mount_propagation: m.mount_propagation.clone(),
                })
            })
            .collect::<Result<_, Unsupported>>()?,
        ports: c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(ContainerPort {
                    port: u16::try_from(p.container_port).ok()?,
                    protocol: p.protocol.clone(),
                })
            })
            .collect(),
        readiness_probe: c.readiness_probe.as_ref().and_then(|p| probe(c, p)),
        liveness_probe: c.liveness_probe.as_ref().and_then(|p| probe(c, p)),
        post_start_exec: post_start
            .and_then(|h| h.exec.as_ref())
            .and_then(|e| e.command.clone())
            .unwrap_or_default(),
        pre_stop_exec: pre_stop
            .and_then(|h| h.exec.as_ref())
            .and_then(|e| e.command.clone())
            .unwrap_or_default(),
        post_start_http_get: post_start.and_then(|h| hook_http(c, h)),
        post_start_tcp_socket: post_start.and_then(|h| hook_tcp(c, h)),
        pre_stop_http_get: pre_stop.and_then(|h| hook_http(c, h)),
        pre_stop_tcp_socket: pre_stop.and_then(|h| hook_tcp(c, h)),
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        termination_message_path: c.termination_message_path.clone(),
        termination_message_policy: c.termination_message_policy.clone(),
        ..Container::default()
    })
}

/// ECI's `DnsPolicy` and `DnsConfig` for the pod. ECI knows `Default` and `None`:
/// `ClusterFirst` (the Kubernetes default) becomes `None` with the cluster DNS server and the
/// kubelet's search path and `ndots:5`, when the cluster DNS address is known; else it is left
/// to the cloud.
fn dns(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    namespace: &str,
    placement: &Placement,
) -> Option<(String, Option<DnsConfig>)> {
    let own = spec.dns_config.as_ref();
    let mut config = DnsConfig {
        name_servers: own.and_then(|d| d.nameservers.clone()).unwrap_or_default(),
        searches: own.and_then(|d| d.searches.clone()).unwrap_or_default(),
        options: own
            .and_then(|d| d.options.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|o| {
                Some(DnsOption {
                    name: o.name.clone()?,
                    value: o.value.clone(),
                })
            })
            .collect(),
    };
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    match policy {
        "Default" | "None" => {
            let given = own.is_some();
            Some((policy.to_owned(), given.then_some(config)))
        }
        "ClusterFirst" | "ClusterFirstWithHostNet" => {
            let server = placement.cluster_dns.clone()?;
            let domain = &placement.cluster_domain;
            config.name_servers.insert(0, server);
            let mut searches = vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
            searches.append(&mut config.searches);
            config.searches = searches;
            if !config.options.iter().any(|o| o.name == "ndots") {
                config.options.push(DnsOption {
                    name: "ndots".into(),
                    value: Some("5".into()),
                });
            }
            Some(("None".to_owned(), Some(config)))
        }
        _ => None,
    }
}

/// Drops what `InitContainer.N` has no parameter for (the field table warns about each).
fn strip_init(c: &mut Container) {
    c.readiness_probe = None;
    c.liveness_probe = None;
    c.post_start_exec.clear();
    c.pre_stop_exec.clear();
    c.post_start_http_get = None;
    c.post_start_tcp_socket = None;
    c.pre_stop_http_get = None;
    c.pre_stop_tcp_socket = None;
    c.stdin = None;
    c.stdin_once = None;
    c.tty = None;
}

/// A port by number or by the name of one of the container's ports.
fn port_of(
    c: &PodContainer,
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) -> Option<u16> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// Every port a probe or hook of `c` names resolves: a name that is none of the container's
/// ports (the API server checks only its spelling) would otherwise drop the probe or hook
/// without a word, where a kubelet would fail it.
fn check_probe_and_hook_ports(c: &PodContainer) -> Result<(), Unsupported> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
    ];
    let hooks = [
        (
            "lifecycle.postStart",
            c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()),
        ),
        (
            "lifecycle.preStop",
            c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()),
        ),
    ];
    let mut named: Vec<(String, &IntOrString)> = Vec::new();
    for (field, probe) in probes {
        if let Some(p) = probe {
            if let Some(http) = &p.http_get {
                named.push((format!("{field}.httpGet.port"), &http.port));
            }
            if let Some(tcp) = &p.tcp_socket {
                named.push((format!("{field}.tcpSocket.port"), &tcp.port));
            }
        }
    }
    for (field, hook) in hooks {
        if let Some(h) = hook {
            if let Some(http) = &h.http_get {
                named.push((format!("{field}.httpGet.port"), &http.port));
            }
            if let Some(tcp) = &h.tcp_socket {
                named.push((format!("{field}.tcpSocket.port"), &tcp.port));
            }
        }
    }
    for (field, port) in named {
        if port_of(c, port).is_none() {
            let shown = match port {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(name) => format!("{name:?}"),
            };
            return Err(Unsupported::Field {
                field: format!("container {:?} {field}", c.name),
                why: format!("port {shown} is not a port number or a named port of the container"),
            });
        }
    }
    Ok(())
}

/// An HTTP GET hook as ECI's `Lifecycle*HandlerHttpGet*` parameters.
fn hook_http(
    c: &PodContainer,
    h: &k8s_openapi::api::core::v1::LifecycleHandler,
) -> Option<HookHttpGet> {
    let http = h.http_get.as_ref()?;
    Some(HookHttpGet {
        path: http.path.clone(),
        port: port_of(c, &http.port)?,
        scheme: http.scheme.clone(),
        host: http.host.clone().filter(|h| !h.is_empty()),
        http_headers: http
            .http_headers
            .iter()
            .flatten()
            .map(|h| HttpHeader {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
    })
}

/// A TCP hook as ECI's `Lifecycle*HandlerTcpSocket*` parameters.
fn hook_tcp(
    c: &PodContainer,
    h: &k8s_openapi::api::core::v1::LifecycleHandler,
) -> Option<HookTcpSocket> {
    let tcp = h.tcp_socket.as_ref()?;
    Some(HookTcpSocket {
        port: port_of(c, &tcp.port)?,
        host: tcp.host.clone().filter(|h| !h.is_empty()),
    })
}

/// A probe ECI can run (exec, httpGet, tcpSocket; a named port is looked up in the
/// container's ports). `None` for a probe with no handler ECI knows (gRPC: the field table
/// warns about it) or an unknown port.
fn probe(c: &PodContainer, p: &k8s_openapi::api::core::v1::Probe) -> Option<Probe> {
    let port = |port| port_of(c, port);
    let mut out = Probe {
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: p.period_seconds,
        success_threshold: p.success_threshold,
        failure_threshold: p.failure_threshold,
        timeout_seconds: p.timeout_seconds,
        ..Probe::default()
    };
    if let Some(exec) = &p.exec {
        out.exec = Some(ExecAction {
            commands: exec.command.clone().unwrap_or_default(),
        });
    } else if let Some(http) = &p.http_get {
        out.http_get = Some(HttpGetAction {
            path: http.path.clone(),
            port: port(&http.port)?,
            scheme: http.scheme.clone(),
        });
    } else if let Some(tcp) = &p.tcp_socket {
        out.tcp_socket = Some(TcpSocketAction {
            port: port(&tcp.port)?,
        });
    } else {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::storage;

    /// A pod without an image cache or pull secrets.
    fn translate_plain(
        pod: &Pod,
        placement: &Placement,
        sources: &Sources,
    ) -> Result<Translated, Unsupported> {
        translate(
            pod,
            placement,
            sources,
            &SnapshotDecision::NotRequested,
            Vec::new(),
        )
    }

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("fixture pod")
    }

    #[test]
    fn a_chosen_image_cache_is_the_requests_snapshot() {
        let chosen = SnapshotDecision::Use {
            id: "imc-0123456789abcdefghij".into(),
            name: "web-cache".into(),
            automatic: true,
        };
        let request = translate(
            &pod(BUSYBOX),
            &placement(),
            &Sources::default(),
            &chosen,
            Vec::new(),
        )
        .expect("translates")
        .request;
        assert_eq!(
            request.image_snapshot_id.as_deref(),
            Some("imc-0123456789abcdefghij")
        );
        assert_eq!(request.auto_match_image_cache, None);
        let auto = translate(
            &pod(BUSYBOX),
            &placement(),
            &Sources::default(),
            &SnapshotDecision::AutoCreate { partial: None },
            Vec::new(),
        )
        .expect("translates")
        .request;
        assert_eq!(auto.image_snapshot_id, None);
        assert_eq!(
            auto.auto_match_image_cache,
            Some(true),
            "ECI matches and builds"
        );
        for pulls in [
            SnapshotDecision::NotRequested,
            SnapshotDecision::Missed {
                miss: crate::imagecache::Miss::NoCacheHoldsAnImage,
                asked: true,
            },
        ] {
            let request = translate(
                &pod(BUSYBOX),
                &placement(),
                &Sources::default(),
                &pulls,
                Vec::new(),
            )
            .expect("translates")
            .request;
            assert_eq!(
                request.image_snapshot_id, None,
                "{pulls:?} pulls its images"
            );
            assert_eq!(request.auto_match_image_cache, None, "{pulls:?}");
        }
    }

    #[test]
    fn pull_secret_logins_go_into_the_request() {
        let login = ImageRegistryCredential {
            server: "registry.example.com:5000".into(),
            user_name: "robot".into(),
            password: crate::eci::SecretValue::new("s3cret"),
        };
        let request = translate(
            &pod(BUSYBOX),
            &placement(),
            &Sources::default(),
            &SnapshotDecision::NotRequested,
            vec![login],
        )
        .expect("translates")
        .request;
        let servers: Vec<_> = request
            .image_registry_credentials
            .iter()
            .map(|c| (c.server.as_str(), c.user_name.as_str()))
            .collect();
        assert_eq!(servers, [("registry.example.com:5000", "robot")]);
        let plain = translate_plain(&pod(BUSYBOX), &placement(), &Sources::default())
            .expect("translates")
            .request;
        assert!(plain.image_registry_credentials.is_empty());
    }

    fn placement() -> Placement {
        Placement {
            cluster: "c1".into(),
            node: "vk".into(),
            cluster_dns: Some("10.96.0.10".into()),
            cluster_domain: "cluster.local".into(),
            ..Placement::default()
        }
    }

    const BUSYBOX: &str = r#"
metadata: {name: web.1, namespace: default, uid: 1111-2222}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [sh, -c]
    args: ["echo $A"]
    workingDir: /tmp
    env: [{name: A, value: "1"}, {name: B}]
    ports: [{containerPort: 80, protocol: TCP}]
    resources: {requests: {cpu: 300m, memory: 256Mi}, limits: {cpu: "1", memory: 512Mi}}
  - name: side
    image: nginx
    resources: {requests: {cpu: 500m, memory: 1Gi}}
  initContainers:
  - name: init
    image: busybox
    resources: {requests: {cpu: "2"}}
"#;

    #[test]
    fn command_and_args_stay_separate() {
        let request = translate_plain(&pod(BUSYBOX), &placement(), &Sources::default())
            .expect("translates")
            .request;
        let main = &request.containers[0];
        assert_eq!(main.commands, ["sh", "-c"]);
        assert_eq!(main.args, ["echo $A"]);
        assert_eq!(main.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(main.environment_vars.len(), 2);
        assert_eq!(main.environment_vars[1].value.as_deref(), Some(""));
        assert_eq!(main.ports[0].port, 80);
        assert_eq!(request.init_containers[0].name, "init");
        assert_eq!(request.restart_policy, Some(RestartPolicy::Never));
    }

    #[test]
    fn identity_tags_and_token() {
        let request = translate_plain(&pod(BUSYBOX), &placement(), &Sources::default())
            .expect("translates")
            .request;
        assert_eq!(request.client_token.as_deref(), Some("1111-2222"));
        assert_eq!(request.container_group_name, "default-web-1");
        let tag = |k: &str| {
            request
                .tags
                .iter()
                .find(|t| t.key == k)
                .map(|t| t.value.as_str())
        };
        assert_eq!(tag(tags::NODE), Some("vk"));
        assert_eq!(tag(tags::CLUSTER), Some("c1"));
        assert_eq!(tag(tags::UID), Some("1111-2222"));
        assert_eq!(tag(tags::NAME), Some("web.1"));
    }

    #[test]
    fn resources_round_up_to_a_spec() {
        let request = translate_plain(&pod(BUSYBOX), &placement(), &Sources::default())
            .expect("translates")
            .request;
        // Containers: max(request, limit) = 1 + 0.5 vCPU, 0.5 + 1 GiB; init needs 2 vCPU.
        assert_eq!(request.containers[0].cpu, Some(1.0));
        assert_eq!(request.containers[0].memory, Some(0.5));
        assert_eq!((request.cpu, request.memory), (Some(2.0), Some(2.0)));
    }

    #[test]
    fn gpus_are_the_containers_gpu_and_annotations_reach_the_request() {
        let gpu = |count: &str| {
            translate_plain(
                &pod(&format!(
                    "metadata: {{name: a, namespace: b, uid: u, annotations: {{k8s.aliyun.com/eci-use-specs: ecs.gn6i-c4g1.xlarge}}}}\nspec: {{containers: [{{name: c, image: i, resources: {{limits: {{nvidia.com/gpu: '{count}'}}}}}}]}}"
                )),
                &placement(),
                &Sources::default(),
            )
        };
        let request = gpu("1").expect("translates").request;
        assert_eq!(request.containers[0].gpu, Some(1));
        assert_eq!(
            request.instance_type.as_deref(),
            Some("ecs.gn6i-c4g1.xlarge")
        );
        assert!(matches!(gpu("half"), Err(Unsupported::BadQuantity { .. })));
        let bad = translate_plain(
            &pod("metadata: {name: a, namespace: b, uid: u, annotations: {k8s.aliyun.com/eci-spot-strategy: Cheap}}\nspec: {containers: [{name: c, image: i}]}"),
            &placement(),
            &Sources::default(),
        )
        .expect_err("refused");
        assert_eq!(bad.reason(), "InvalidAnnotation");
        assert!(
            bad.to_string()
                .contains("k8s.aliyun.com/eci-spot-strategy=\"Cheap\""),
            "{bad}"
        );
    }

    /// The spellings that the settings, the emulator and this file used to read differently
    /// (`1e3`, `1.5Gi`, `100m`, `0.5`, `Ki`) all go through `crate::quantity`.
    #[test]
    fn every_quantity_spelling_is_read_by_the_one_parser() {
        let request = translate_plain(
            &pod(r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  containers:
  - name: a
    image: i
    resources:
      requests: {cpu: 100m, memory: 1e3}
      limits: {cpu: "0.5", memory: 1.5Gi}
  - name: b
    image: i
    resources:
      limits: {cpu: "1", memory: 1Ki}
"#),
            &placement(),
            &Sources::default(),
        )
        .expect("translates")
        .request;
        assert_eq!(request.containers[0].cpu, Some(0.5));
        assert_eq!(request.containers[0].memory, Some(1.5));
        assert_eq!(request.containers[1].cpu, Some(1.0));
        let kib_in_gib = 1024.0 / f64::from(1u32 << 30);
        assert!(
            (request.containers[1].memory.unwrap_or_default() - kib_in_gib).abs() < 1e-12,
            "{:?}",
            request.containers[1].memory
        );
        let bad = translate_plain(
            &pod(
                "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i, resources: {limits: {memory: 4 Gi}}}]}",
            ),
            &placement(),
            &Sources::default(),
        );
        assert!(
            matches!(bad, Err(Unsupported::BadQuantity { .. })),
            "{bad:?}"
        );
    }

    #[test]
    fn a_probe_on_an_unknown_named_port_refuses_the_pod() {
        let probing = |port: &str| {
            translate_plain(
                &pod(&format!(
                    r#"
metadata: {{name: a, namespace: b, uid: u}}
spec:
  containers:
  - name: web
    image: i
    ports: [{{name: http, containerPort: 8080}}]
    livenessProbe: {{httpGet: {{path: /, port: {port}}}}}
"#
                )),
                &placement(),
                &Sources::default(),
            )
        };
        let bad = probing("htp");
        let Err(Unsupported::Field { field, why }) = bad else {
            panic!("not refused: {bad:?}");
        };
        assert!(field.contains("livenessProbe.httpGet.port"), "{field}");
        assert!(why.contains("\"htp\""), "{why}");
        let good = probing("http").expect("a named port of the container");
        assert_eq!(
            good.request.containers[0]
                .liveness_probe
                .as_ref()
                .and_then(|p| p.http_get.as_ref())
                .map(|h| h.port),
            Some(8080)
        );
    }

    #[test]
    fn no_resources_leaves_the_spec_to_the_cloud() {
        let request = translate_plain(
            &pod("metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i}]}"),
            &placement(),
            &Sources::default(),
        )
        .expect("translates")
        .request;
        assert_eq!((request.cpu, request.memory), (None, None));
        assert_eq!(request.restart_policy, Some(RestartPolicy::Always));
        assert!(request.containers[0].commands.is_empty());
    }

    #[test]
    fn unsupported_pods_are_named() {
        let ds = pod(
            "metadata: {name: a, namespace: b, uid: u, ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: d, uid: x}]}\nspec: {containers: [{name: c, image: i}]}",
        );
        assert_eq!(
            translate_plain(&ds, &placement(), &Sources::default()).unwrap_err(),
            Unsupported::DaemonSet
        );
        let host = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {hostNetwork: true, containers: [{name: c, image: i}]}",
        );
        assert_eq!(
            check_supported(&host).unwrap_err().reason(),
            "HostNetworkUnsupported"
        );
        let path = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {volumes: [{name: h, hostPath: {path: /}}], containers: [{name: c, image: i}]}",
        );
        assert_eq!(
            check_supported(&path).unwrap_err(),
            Unsupported::HostPath { volume: "h".into() }
        );
        let huge = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i, resources: {requests: {cpu: \"500\"}}}]}",
        );
        assert!(matches!(
            translate_plain(&huge, &placement(), &Sources::default()),
            Err(Unsupported::TooLarge { .. })
        ));
    }

    #[test]
    fn probes_dns_and_aliases_pass_through() {
        let request = translate_plain(
            &pod(r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  dnsPolicy: None
  dnsConfig: {nameservers: [1.1.1.1], searches: [svc.local], options: [{name: ndots, value: "2"}]}
  hostAliases: [{ip: 10.0.0.9, hostnames: [db]}]
  containers:
  - name: c
    image: i
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 3}
    livenessProbe: {exec: {command: [cat, /ok]}}
    lifecycle: {preStop: {exec: {command: [sleep, "1"]}}}
"#),
            &placement(),
            &Sources::default(),
        )
        .expect("translates")
        .request;
        let c = &request.containers[0];
        let ready = c.readiness_probe.as_ref().expect("readiness");
        assert_eq!(ready.http_get.as_ref().map(|h| h.port), Some(8080));
        assert_eq!(ready.period_seconds, Some(3));
        assert_eq!(
            c.liveness_probe
                .as_ref()
                .and_then(|p| p.exec.as_ref())
                .map(|e| e.commands.clone()),
            Some(vec!["cat".to_owned(), "/ok".to_owned()])
        );
        assert_eq!(c.pre_stop_exec, ["sleep", "1"]);
        assert_eq!(request.dns_policy.as_deref(), Some("None"));
        assert_eq!(
            request.dns_config.as_ref().map(|d| d.name_servers.clone()),
            Some(vec!["1.1.1.1".to_owned()])
        );
        assert_eq!(request.host_aliases[0].hostnames, ["db"]);
    }

    #[test]
    fn cluster_first_gets_the_cluster_dns() {
        let request = translate_plain(&pod(BUSYBOX), &placement(), &Sources::default())
            .expect("translates")
            .request;
        assert_eq!(request.dns_policy.as_deref(), Some("None"));
        let dns = request.dns_config.expect("dns config");
        assert_eq!(dns.name_servers, ["10.96.0.10"]);
        assert_eq!(
            dns.searches,
            [
                "default.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(dns.options[0].value.as_deref(), Some("5"));
        let unknown = Placement {
            cluster_dns: None,
            ..placement()
        };
        let request = translate_plain(&pod(BUSYBOX), &unknown, &Sources::default())
            .expect("translates")
            .request;
        assert_eq!((request.dns_policy, request.dns_config), (None, None));
    }

    const STATEFUL: &str = r#"
metadata: {name: web-0, namespace: default, uid: u-0}
spec:
  containers:
  - name: main
    image: busybox
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: SHARD, value: "7"}
    volumeMounts:
    - {name: data, mountPath: /data, subPathExpr: "$(POD_NAME)/s$(SHARD)"}
    - {name: logs, mountPath: /logs, subPath: app}
    - {name: ro, mountPath: /ro}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data-web-0}}
  - {name: logs, persistentVolumeClaim: {claimName: logs}}
  - {name: ro, persistentVolumeClaim: {claimName: shared, readOnly: true}}
"#;

    fn bound(yaml: &str) -> storage::Claim {
        storage::Claim::Bound(Box::new(serde_yaml_ng::from_str(yaml).expect("fixture pv")))
    }

    fn claims(entries: &[(&str, storage::Claim)]) -> Sources {
        let mut sources = Sources::default();
        for (volume, claim) in entries {
            sources.claims.insert((*volume).to_owned(), claim.clone());
        }
        sources
    }

    const NFS_PV: &str = "metadata: {name: a}\nspec: {nfs: {server: nas, path: /x}}";
    const DISK_PV: &str = "metadata: {name: d}\nspec: {csi: {driver: diskplugin.csi.alibabacloud.com, volumeHandle: d-1}}";

    #[test]
    fn bound_claims_are_mounted_with_sub_paths_and_read_only() {
        let sources = claims(&[
            ("data", bound(DISK_PV)),
            ("logs", bound(NFS_PV)),
            ("ro", bound(NFS_PV)),
        ]);
        let translated =
            translate_plain(&pod(STATEFUL), &placement(), &sources).expect("translates");
        assert!(!translated.blocked());
        let request = translated.request;
        let kinds: Vec<_> = request
            .volumes
            .iter()
            .map(|v| (v.name.as_str(), v.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("data", eci::container_spec::VolumeType::DiskVolume),
                ("logs", eci::container_spec::VolumeType::NfsVolume),
                ("ro", eci::container_spec::VolumeType::NfsVolume)
            ]
        );
        let mounts: Vec<_> = request.containers[0]
            .volume_mounts
            .iter()
            .map(|m| (m.name.as_str(), m.sub_path.as_deref(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            [
                ("data", Some("web-0/s7"), None),
                ("logs", Some("app"), None),
                ("ro", None, Some(true))
            ]
        );
    }

    #[test]
    fn an_unbound_claim_holds_the_pod_back() {
        let sources = claims(&[
            (
                "data",
                storage::Claim::NotBound("volume \"data\": not bound yet".into()),
            ),
            ("logs", bound(NFS_PV)),
            ("ro", bound(NFS_PV)),
        ]);
        let translated =
            translate_plain(&pod(STATEFUL), &placement(), &sources).expect("translates");
        assert!(translated.blocked());
        assert_eq!(translated.waiting, ["volume \"data\": not bound yet"]);
    }

    #[test]
    fn a_sub_path_leaving_its_volume_is_refused() {
        let escaping = STATEFUL.replace("app", "../etc");
        let sources = claims(&[
            ("data", bound(DISK_PV)),
            ("logs", bound(NFS_PV)),
            ("ro", bound(NFS_PV)),
        ]);
        let err = translate_plain(&pod(&escaping), &placement(), &sources).unwrap_err();
        assert_eq!(err.reason(), "InvalidSubPath");
    }

    #[test]
    fn a_refused_sub_path_expression_is_shown_unexpanded() {
        // The variable could come from a Secret: its value must not reach the event.
        let err = translate_plain(
            &pod(r#"
metadata: {name: a, namespace: b, uid: u}
spec:
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: c
    image: i
    env: [{name: TOKEN, value: "../s3cret-value"}]
    volumeMounts: [{name: scratch, mountPath: /s, subPathExpr: "$(TOKEN)"}]
"#),
            &placement(),
            &Sources::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "InvalidSubPath");
        let shown = err.to_string();
        assert!(shown.contains("$(TOKEN)"), "{shown}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
    }

    #[test]
    fn volumes_the_node_cannot_give_fail_the_pod_by_name() {
        let unknown = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {volumes: [{name: blk, iscsi: {targetPortal: p, iqn: q, lun: 0}}], containers: [{name: c, image: i}]}",
        );
        let err = check_supported(&unknown).unwrap_err();
        assert_eq!(err.reason(), "UnsupportedVolume");
        assert_eq!(
            err,
            Unsupported::Volume {
                volume: "blk".into(),
                kind: "iscsi".into()
            }
        );
        let inline = pod(
            "metadata: {name: a, namespace: b, uid: u}\nspec: {volumes: [{name: x, csi: {driver: example.com/x}}], containers: [{name: c, image: i}]}",
        );
        let err = translate_plain(&inline, &placement(), &Sources::default()).unwrap_err();
        assert!(err.to_string().contains("example.com/x"), "{err}");
        let pv = "metadata: {name: a}\nspec: {csi: {driver: ebs.csi.aws.com, volumeHandle: v}}";
        let sources = claims(&[
            ("data", bound(pv)),
            ("logs", bound(NFS_PV)),
            ("ro", bound(NFS_PV)),
        ]);
        let err = translate_plain(&pod(STATEFUL), &placement(), &sources).unwrap_err();
        assert_eq!(
            err,
            Unsupported::Volume {
                volume: "data".into(),
                kind: "csi driver \"ebs.csi.aws.com\"".into()
            }
        );
    }

    #[test]
    fn group_names_are_dns_labels() {
        assert_eq!(group_name("A", "."), "pod-a");
    }
}
