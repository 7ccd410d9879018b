//! The fate of every Pod and Container field the node knows: mapped to an ECI parameter, kept
//! (honoured without one, by the node or Kubernetes), warned (dropped, with a Warning event
//! `UnsupportedField` naming it) or refused (the pod fails with the reason). One table, so
//! nothing a pod asks for is dropped without a word; README.md's table is checked against it.
//!
//! [`review`] walks a pod's spec as JSON: a field present in the pod whose fate is Warned or
//! Refused is reported with its path (`spec.containers[0].startupProbe`). A field this table
//! does not list, under an object whose fields it lists, is warned as unknown (an unknown
//! volume type is refused). The value-dependent security decisions come from
//! [`super::security`].
//!
//! ECI's parameters: the official SDK's `CreateContainerGroupRequest` model; behaviour:
//! <https://www.alibabacloud.com/help/en/eci/api-createcontainergroup>,
//! <https://www.alibabacloud.com/help/doc-detail/462800.html> (security context).

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    sync::LazyLock,
};

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

/// The reason of the Warning event about a dropped field, and of a refused pod's status.
pub const WARNING_REASON: &str = "UnsupportedField";

/// What happens to a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent as this ECI parameter.
    Mapped(&'static str),
    /// Honoured without an ECI parameter (by the node, the scheduler or admission).
    Kept(&'static str),
    /// Not available on ECI: dropped, with a Warning event saying why.
    Warned(&'static str),
    /// Not available on ECI and unsafe or pointless without: the pod fails with this reason.
    Refused(&'static str),
}

/// Which values of a field count as asking for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Present, not `false`, not empty.
    Set,
    /// Present with any value (`false` asks for something too).
    Any,
    /// Only `false` (the default is `true`).
    False,
}

/// One field: its path (`[]` for each element of a list), fate and trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// e.g. `spec.containers[].startupProbe`.
    pub path: Cow<'static, str>,
    /// What happens to it.
    pub fate: Fate,
    /// When it counts as present.
    pub trigger: Trigger,
}

/// A field of a container, with its fate in `containers` and in `initContainers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerField {
    /// The path below the container, e.g. `startupProbe`.
    pub path: &'static str,
    /// Fate in `spec.containers[]`.
    pub container: Fate,
    /// Fate in `spec.initContainers[]`.
    pub init: Fate,
    /// When it counts as present.
    pub trigger: Trigger,
}

use Fate::{Kept, Mapped, Refused, Warned};
use Trigger::{Any, False, Set};

const fn f(path: &'static str, fate: Fate) -> Field {
    Field {
        path: Cow::Borrowed(path),
        fate,
        trigger: Set,
    }
}

const fn c(path: &'static str, fate: Fate) -> ContainerField {
    ContainerField {
        path,
        container: fate,
        init: fate,
        trigger: Set,
    }
}

const fn ci(path: &'static str, container: Fate, init: Fate) -> ContainerField {
    ContainerField {
        path,
        container,
        init,
        trigger: Set,
    }
}

const SCHEDULER: Fate = Kept("honoured by the Kubernetes scheduler");
const NO_INIT_PROBE: Fate = Warned("ECI init containers take no probes");
const NO_INIT_HOOK: Fate = Warned("ECI init containers take no lifecycle hooks");
const NO_INIT_STDIN: Fate = Warned("ECI init containers have no Stdin/StdinOnce/Tty");
const NOT_AVAILABLE: Fate =
    Refused("this volume type is not available on ECI (reason `UnsupportedVolume`)");

/// Pod-level fields (outside the containers).
pub const POD_FIELDS: &[Field] = &[
    f(
        "spec.activeDeadlineSeconds",
        Mapped("ActiveDeadlineSeconds"),
    ),
    f("spec.affinity", SCHEDULER),
    f(
        "spec.automountServiceAccountToken",
        Kept("admission adds the token volume (projected → ConfigFileVolume)"),
    ),
    f("spec.containers", Mapped("Container.N")),
    f("spec.dnsConfig", Mapped("DnsConfig")),
    f(
        "spec.dnsPolicy",
        Mapped("DnsPolicy (ClusterFirst → None with the cluster DNS)"),
    ),
    f(
        "spec.enableServiceLinks",
        Kept("the node writes the Services' link variables into EnvironmentVar.N"),
    ),
    f(
        "spec.ephemeralContainers",
        Warned("ECI has no ephemeral containers"),
    ),
    f("spec.evictionResponders", Warned("not available on ECI")),
    f("spec.hostAliases", Mapped("HostAliase.N")),
    f("spec.hostIPC", Refused("hostIPC is not available on ECI")),
    f(
        "spec.hostNetwork",
        Refused("hostNetwork is not available on ECI"),
    ),
    f("spec.hostPID", Refused("hostPID is not available on ECI")),
    Field {
        path: Cow::Borrowed("spec.hostUsers"),
        fate: Warned("ECI has no user namespaces; each instance is its own sandbox"),
        trigger: False,
    },
    f("spec.hostname", Mapped("HostName")),
    f(
        "spec.hostnameOverride",
        Warned("ECI takes only HostName (spec.hostname)"),
    ),
    f("spec.imagePullSecrets", Mapped("ImageRegistryCredential.N")),
    f("spec.initContainers", Mapped("InitContainer.N")),
    f("spec.nodeName", SCHEDULER),
    f("spec.nodeSelector", SCHEDULER),
    f("spec.os", SCHEDULER),
    f("spec.overhead", SCHEDULER),
    f("spec.preemptionPolicy", SCHEDULER),
    f("spec.priority", SCHEDULER),
    f("spec.priorityClassName", SCHEDULER),
    f(
        "spec.readinessGates",
        Warned("the node does not evaluate readiness gates"),
    ),
    f(
        "spec.resourceClaims",
        Refused("dynamic resource claims are not available on ECI"),
    ),
    f(
        "spec.resources",
        Warned("pod-level resources: the group is sized from its containers"),
    ),
    f("spec.restartPolicy", Mapped("RestartPolicy")),
    f(
        "spec.runtimeClassName",
        Warned("ECI chooses its own runtime"),
    ),
    f("spec.schedulerName", SCHEDULER),
    f("spec.schedulingGates", SCHEDULER),
    f("spec.schedulingGroup", SCHEDULER),
    f(
        "spec.securityContext",
        Mapped("SecurityContext (sysctls) and each container's security parameters"),
    ),
    f(
        "spec.securityContext.appArmorProfile",
        Warned("ECI takes no AppArmor profile"),
    ),
    f(
        "spec.securityContext.fsGroup",
        Warned("ECI has no fsGroup: volumes keep their owners"),
    ),
    f(
        "spec.securityContext.fsGroupChangePolicy",
        Warned("ECI has no fsGroup"),
    ),
    f(
        "spec.securityContext.runAsGroup",
        Mapped("SecurityContextRunAsGroup of each container"),
    ),
    f(
        "spec.securityContext.runAsNonRoot",
        Mapped("SecurityContextRunAsNonRoot of each container"),
    ),
    f(
        "spec.securityContext.runAsUser",
        Mapped("SecurityContext.RunAsUser of each container"),
    ),
    f(
        "spec.securityContext.seLinuxChangePolicy",
        Warned("ECI takes no SELinux options"),
    ),
    f(
        "spec.securityContext.seLinuxOptions",
        Warned("ECI takes no SELinux options"),
    ),
    f(
        "spec.securityContext.seccompProfile",
        Warned("ECI takes no seccomp profile; its default applies"),
    ),
    f(
        "spec.securityContext.supplementalGroups",
        Warned("ECI has no supplemental groups"),
    ),
    f(
        "spec.securityContext.supplementalGroupsPolicy",
        Warned("ECI has no supplemental groups"),
    ),
    f(
        "spec.securityContext.sysctls",
        Mapped("SecurityContext.Sysctl.N"),
    ),
    f(
        "spec.securityContext.windowsOptions",
        Warned("ECI runs Linux containers"),
    ),
    f(
        "spec.serviceAccount",
        Kept("admission adds the token volume"),
    ),
    f(
        "spec.serviceAccountName",
        Kept("tokens of projected volumes are requested for it"),
    ),
    f("spec.setHostnameAsFQDN", Warned("ECI takes only HostName")),
    f(
        "spec.shareProcessNamespace",
        Mapped("ShareProcessNamespace"),
    ),
    f(
        "spec.subdomain",
        Warned("ECI takes only HostName; the FQDN is not set in the instance"),
    ),
    f(
        "spec.terminationGracePeriodSeconds",
        Mapped("TerminationGracePeriodSeconds"),
    ),
    f("spec.tolerations", SCHEDULER),
    f("spec.topologySpreadConstraints", SCHEDULER),
    f("spec.volumes", Mapped("Volume.N")),
    f("spec.volumes[].name", Mapped("Volume.N.Name")),
    f("spec.volumes[].configMap", Mapped("ConfigFileVolume")),
    f("spec.volumes[].downwardAPI", Mapped("ConfigFileVolume")),
    f("spec.volumes[].emptyDir", Mapped("EmptyDirVolume")),
    f(
        "spec.volumes[].ephemeral",
        Mapped("DiskVolume / NFSVolume / FlexVolume (OSS), through its claim"),
    ),
    f("spec.volumes[].nfs", Mapped("NFSVolume")),
    f(
        "spec.volumes[].persistentVolumeClaim",
        Mapped("DiskVolume / NFSVolume / FlexVolume (OSS), from the bound PersistentVolume"),
    ),
    f("spec.volumes[].projected", Mapped("ConfigFileVolume")),
    f("spec.volumes[].secret", Mapped("ConfigFileVolume")),
    f(
        "spec.volumes[].hostPath",
        Refused("hostPath volumes are not available on ECI"),
    ),
    f("spec.volumes[].awsElasticBlockStore", NOT_AVAILABLE),
    f("spec.volumes[].azureDisk", NOT_AVAILABLE),
    f("spec.volumes[].azureFile", NOT_AVAILABLE),
    f("spec.volumes[].cephfs", NOT_AVAILABLE),
    f("spec.volumes[].cinder", NOT_AVAILABLE),
    f(
        "spec.volumes[].csi",
        Mapped(
            "DiskVolume / NFSVolume / FlexVolume for Alibaba Cloud's disk, NAS and OSS drivers; another driver is refused with UnsupportedVolume",
        ),
    ),
    f("spec.volumes[].fc", NOT_AVAILABLE),
    f("spec.volumes[].flexVolume", NOT_AVAILABLE),
    f("spec.volumes[].flocker", NOT_AVAILABLE),
    f("spec.volumes[].gcePersistentDisk", NOT_AVAILABLE),
    f("spec.volumes[].gitRepo", NOT_AVAILABLE),
    f("spec.volumes[].glusterfs", NOT_AVAILABLE),
    f("spec.volumes[].image", NOT_AVAILABLE),
    f("spec.volumes[].iscsi", NOT_AVAILABLE),
    f("spec.volumes[].photonPersistentDisk", NOT_AVAILABLE),
    f("spec.volumes[].portworxVolume", NOT_AVAILABLE),
    f("spec.volumes[].quobyte", NOT_AVAILABLE),
    f("spec.volumes[].rbd", NOT_AVAILABLE),
    f("spec.volumes[].scaleIO", NOT_AVAILABLE),
    f("spec.volumes[].storageos", NOT_AVAILABLE),
    f("spec.volumes[].vsphereVolume", NOT_AVAILABLE),
];

/// Container fields, below `spec.containers[]` and `spec.initContainers[]`.
pub const CONTAINER_FIELDS: &[ContainerField] = &[
    c("args", Mapped("Arg.N")),
    c("command", Mapped("Command.N")),
    c("env", Mapped("EnvironmentVar.N")),
    c("envFrom", Mapped("EnvironmentVar.N")),
    c("image", Mapped("Image")),
    c("imagePullPolicy", Mapped("ImagePullPolicy")),
    ci("lifecycle", Mapped("Lifecycle*Handler*"), NO_INIT_HOOK),
    c("lifecycle.postStart", Mapped("LifecyclePostStartHandler*")),
    c(
        "lifecycle.postStart.exec",
        Mapped("LifecyclePostStartHandlerExec.N"),
    ),
    c(
        "lifecycle.postStart.httpGet",
        Mapped("LifecyclePostStartHandlerHttpGet{Path,Port,Scheme,Host,HttpHeader.N}"),
    ),
    c("lifecycle.postStart.sleep", Warned("ECI has no sleep hook")),
    c(
        "lifecycle.postStart.tcpSocket",
        Mapped("LifecyclePostStartHandlerTcpSocket{Port,Host}"),
    ),
    c("lifecycle.preStop", Mapped("LifecyclePreStopHandler*")),
    c(
        "lifecycle.preStop.exec",
        Mapped("LifecyclePreStopHandlerExec.N"),
    ),
    c(
        "lifecycle.preStop.httpGet",
        Mapped("LifecyclePreStopHandlerHttpGet{Path,Port,Scheme,Host,HttpHeader.N}"),
    ),
    c("lifecycle.preStop.sleep", Warned("ECI has no sleep hook")),
    c(
        "lifecycle.preStop.tcpSocket",
        Mapped("LifecyclePreStopHandlerTcpSocket{Port,Host}"),
    ),
    c(
        "lifecycle.stopSignal",
        Warned("ECI stops containers with SIGTERM"),
    ),
    ci("livenessProbe", Mapped("LivenessProbe"), NO_INIT_PROBE),
    c("livenessProbe.exec", Mapped("LivenessProbe.Exec.Command.N")),
    c(
        "livenessProbe.failureThreshold",
        Mapped("LivenessProbe.FailureThreshold"),
    ),
    c(
        "livenessProbe.grpc",
        Warned("ECI has no gRPC probe; the container runs without this probe"),
    ),
    c(
        "livenessProbe.httpGet",
        Mapped("LivenessProbe.HttpGet.{Path,Port,Scheme}"),
    ),
    c(
        "livenessProbe.httpGet.host",
        Warned("ECI probes the instance's own address"),
    ),
    c(
        "livenessProbe.httpGet.httpHeaders",
        Warned("ECI probes send no custom headers"),
    ),
    c(
        "livenessProbe.httpGet.path",
        Mapped("LivenessProbe.HttpGet.Path"),
    ),
    c(
        "livenessProbe.httpGet.port",
        Mapped("LivenessProbe.HttpGet.Port"),
    ),
    c(
        "livenessProbe.httpGet.scheme",
        Mapped("LivenessProbe.HttpGet.Scheme"),
    ),
    c(
        "livenessProbe.initialDelaySeconds",
        Mapped("LivenessProbe.InitialDelaySeconds"),
    ),
    c(
        "livenessProbe.periodSeconds",
        Mapped("LivenessProbe.PeriodSeconds"),
    ),
    c(
        "livenessProbe.successThreshold",
        Mapped("LivenessProbe.SuccessThreshold"),
    ),
    c(
        "livenessProbe.tcpSocket",
        Mapped("LivenessProbe.TcpSocket.Port"),
    ),
    c(
        "livenessProbe.tcpSocket.host",
        Warned("ECI probes the instance's own address"),
    ),
    c(
        "livenessProbe.tcpSocket.port",
        Mapped("LivenessProbe.TcpSocket.Port"),
    ),
    c(
        "livenessProbe.terminationGracePeriodSeconds",
        Warned("ECI has no per-probe grace period"),
    ),
    c(
        "livenessProbe.timeoutSeconds",
        Mapped("LivenessProbe.TimeoutSeconds"),
    ),
    c("name", Mapped("Name")),
    c("ports", Mapped("Port.N")),
    c("ports[].containerPort", Mapped("Port.N.Port")),
    c("ports[].hostIP", Warned("ECI has no host ports")),
    c(
        "ports[].hostPort",
        Warned("ECI has no host ports; the container port is the instance's"),
    ),
    c(
        "ports[].name",
        Kept("named ports are resolved by the node for probes and hooks"),
    ),
    c("ports[].protocol", Mapped("Port.N.Protocol")),
    ci("readinessProbe", Mapped("ReadinessProbe"), NO_INIT_PROBE),
    c(
        "readinessProbe.exec",
        Mapped("ReadinessProbe.Exec.Command.N"),
    ),
    c(
        "readinessProbe.failureThreshold",
        Mapped("ReadinessProbe.FailureThreshold"),
    ),
    c(
        "readinessProbe.grpc",
        Warned("ECI has no gRPC probe; the container runs without this probe"),
    ),
    c(
        "readinessProbe.httpGet",
        Mapped("ReadinessProbe.HttpGet.{Path,Port,Scheme}"),
    ),
    c(
        "readinessProbe.httpGet.host",
        Warned("ECI probes the instance's own address"),
    ),
    c(
        "readinessProbe.httpGet.httpHeaders",
        Warned("ECI probes send no custom headers"),
    ),
    c(
        "readinessProbe.httpGet.path",
        Mapped("ReadinessProbe.HttpGet.Path"),
    ),
    c(
        "readinessProbe.httpGet.port",
        Mapped("ReadinessProbe.HttpGet.Port"),
    ),
    c(
        "readinessProbe.httpGet.scheme",
        Mapped("ReadinessProbe.HttpGet.Scheme"),
    ),
    c(
        "readinessProbe.initialDelaySeconds",
        Mapped("ReadinessProbe.InitialDelaySeconds"),
    ),
    c(
        "readinessProbe.periodSeconds",
        Mapped("ReadinessProbe.PeriodSeconds"),
    ),
    c(
        "readinessProbe.successThreshold",
        Mapped("ReadinessProbe.SuccessThreshold"),
    ),
    c(
        "readinessProbe.tcpSocket",
        Mapped("ReadinessProbe.TcpSocket.Port"),
    ),
    c(
        "readinessProbe.tcpSocket.host",
        Warned("ECI probes the instance's own address"),
    ),
    c(
        "readinessProbe.tcpSocket.port",
        Mapped("ReadinessProbe.TcpSocket.Port"),
    ),
    c(
        "readinessProbe.terminationGracePeriodSeconds",
        Warned("ECI has no per-probe grace period"),
    ),
    c(
        "readinessProbe.timeoutSeconds",
        Mapped("ReadinessProbe.TimeoutSeconds"),
    ),
    c(
        "resizePolicy",
        Warned("ECI resizes through UpdateContainerGroup, not in place per resource"),
    ),
    c("resources", Mapped("Cpu / Memory")),
    c(
        "resources.claims",
        Refused("dynamic resource claims are not available on ECI"),
    ),
    c(
        "resources.limits",
        Mapped("Cpu / Memory (the larger of request and limit); nvidia.com/gpu as Gpu"),
    ),
    c(
        "resources.requests",
        Mapped("Cpu / Memory (the larger of request and limit); nvidia.com/gpu as Gpu"),
    ),
    ci(
        "restartPolicy",
        Warned("ECI has no per-container restart policy"),
        Warned("ECI has no sidecar init containers: it runs as an ordinary init container"),
    ),
    c(
        "restartPolicyRules",
        Warned("ECI has no per-container restart policy"),
    ),
    c("securityContext", Mapped("SecurityContext")),
    ContainerField {
        path: "securityContext.allowPrivilegeEscalation",
        container: Warned("ECI takes no allowPrivilegeEscalation"),
        init: Warned("ECI takes no allowPrivilegeEscalation"),
        trigger: Any,
    },
    c(
        "securityContext.appArmorProfile",
        Warned("ECI takes no AppArmor profile"),
    ),
    c(
        "securityContext.capabilities",
        Mapped("SecurityContext.Capability"),
    ),
    c(
        "securityContext.capabilities.add",
        Mapped("SecurityContext.Capability.Add.N"),
    ),
    c(
        "securityContext.capabilities.drop",
        Warned("ECI cannot drop capabilities: its default set applies"),
    ),
    ci(
        "securityContext.privileged",
        Mapped("SecurityContextPrivileged"),
        Warned("ECI init containers cannot be privileged"),
    ),
    c(
        "securityContext.procMount",
        Warned("ECI takes no procMount"),
    ),
    c(
        "securityContext.readOnlyRootFilesystem",
        Mapped("SecurityContext.ReadOnlyRootFilesystem"),
    ),
    ci(
        "securityContext.runAsGroup",
        Mapped("SecurityContextRunAsGroup"),
        Warned("ECI init containers have no RunAsGroup: the user's group applies"),
    ),
    ci(
        "securityContext.runAsNonRoot",
        Mapped("SecurityContextRunAsNonRoot"),
        Kept("checked by the node: refused unless runAsUser is non-zero"),
    ),
    c(
        "securityContext.runAsUser",
        Mapped("SecurityContext.RunAsUser"),
    ),
    c(
        "securityContext.seLinuxOptions",
        Warned("ECI takes no SELinux options"),
    ),
    c(
        "securityContext.seccompProfile",
        Warned("ECI takes no seccomp profile; its default applies"),
    ),
    c(
        "securityContext.windowsOptions",
        Warned("ECI runs Linux containers"),
    ),
    ci(
        "startupProbe",
        Warned("ECI has no startup probe; the container starts without it"),
        NO_INIT_PROBE,
    ),
    ci("stdin", Mapped("Stdin"), NO_INIT_STDIN),
    ci("stdinOnce", Mapped("StdinOnce"), NO_INIT_STDIN),
    c("terminationMessagePath", Mapped("TerminationMessagePath")),
    c(
        "terminationMessagePolicy",
        Mapped("TerminationMessagePolicy"),
    ),
    ci("tty", Mapped("Tty"), NO_INIT_STDIN),
    c(
        "volumeDevices",
        Refused("raw block devices are not available on ECI"),
    ),
    c("volumeMounts", Mapped("VolumeMount.N")),
    c(
        "volumeMounts[].mountPath",
        Mapped("VolumeMount.N.MountPath"),
    ),
    c(
        "volumeMounts[].mountPropagation",
        Mapped("VolumeMount.N.MountPropagation"),
    ),
    c("volumeMounts[].name", Mapped("VolumeMount.N.Name")),
    c("volumeMounts[].readOnly", Mapped("VolumeMount.N.ReadOnly")),
    c(
        "volumeMounts[].recursiveReadOnly",
        Warned("ECI has no recursive read-only mounts"),
    ),
    c("volumeMounts[].subPath", Mapped("VolumeMount.N.SubPath")),
    c(
        "volumeMounts[].subPathExpr",
        Mapped("VolumeMount.N.SubPath, expanded from the container's environment"),
    ),
    c("workingDir", Mapped("WorkingDir")),
];

/// The fate of a container field in an init container: a field below a warned or refused one
/// shares its fate (`lifecycle.preStop.exec` goes with `lifecycle`).
fn init_fate(field: &ContainerField) -> Fate {
    CONTAINER_FIELDS
        .iter()
        .filter(|parent| {
            field.path.len() > parent.path.len()
                && field.path.starts_with(parent.path)
                && field.path[parent.path.len()..].starts_with(['.', '['])
        })
        .map(|parent| parent.init)
        .find(|fate| matches!(fate, Warned(_) | Refused(_)))
        .unwrap_or(field.init)
}

/// Every field, container fields expanded under both lists.
pub fn table() -> Vec<Field> {
    let mut out = POD_FIELDS.to_vec();
    for (list, init) in [
        ("spec.containers[]", false),
        ("spec.initContainers[]", true),
    ] {
        for field in CONTAINER_FIELDS {
            out.push(Field {
                path: Cow::Owned(format!("{list}.{}", field.path)),
                fate: if init {
                    init_fate(field)
                } else {
                    field.container
                },
                trigger: field.trigger,
            });
        }
    }
    out
}

struct Index {
    by_path: HashMap<String, Field>,
    parents: HashSet<String>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let fields = table();
    let mut parents = HashSet::new();
    for field in &fields {
        let mut path: &str = &field.path;
        while let Some((parent, _)) = path.rsplit_once('.') {
            parents.insert(parent.to_owned());
            path = parent;
        }
    }
    Index {
        by_path: fields
            .into_iter()
            .map(|f| (f.path.to_string(), f))
            .collect(),
        parents,
    }
});

/// One field of a pod that is warned or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where, e.g. `spec.containers[0].startupProbe`.
    pub path: String,
    /// Why.
    pub note: String,
}

impl Finding {
    /// The text of its event: path and reason, never a value.
    pub fn message(&self) -> String {
        format!("{}: {}", self.path, self.note)
    }
}

/// The note of the one Warning event about a pod's dropped fields: every path with its reason.
pub fn warning_note(warnings: &[Finding]) -> String {
    let parts: Vec<String> = warnings.iter().map(Finding::message).collect();
    format!("ECI cannot honour: {}", parts.join("; "))
}

/// What a pod asks for that is warned about or refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// Dropped fields (a Warning event each).
    pub warnings: Vec<Finding>,
    /// Fields that stop the pod (the first is the pod's reason).
    pub refusals: Vec<Finding>,
}

/// The warnings and refusals of `pod`.
pub fn review(pod: &Pod) -> Review {
    let mut out = Review::default();
    if let Some(spec) = &pod.spec
        && let Ok(value) = serde_json::to_value(spec)
    {
        review_value(&value, &mut out);
    }
    let (warnings, refusals) = super::security::review(pod);
    out.warnings.extend(warnings);
    out.refusals.extend(refusals);
    out
}

/// Reviews a pod spec given as JSON.
fn review_value(spec: &Value, out: &mut Review) {
    walk(spec, "spec", "spec", out);
}

fn asks(value: &Value, trigger: Trigger) -> bool {
    match (trigger, value) {
        (_, Value::Null) => false,
        (Trigger::False, v) => *v == Value::Bool(false),
        (Trigger::Any, _) => true,
        (Trigger::Set, Value::Bool(b)) => *b,
        (Trigger::Set, Value::Array(a)) => !a.is_empty(),
        (Trigger::Set, Value::Object(o)) => !o.is_empty(),
        (Trigger::Set, Value::String(s)) => !s.is_empty(),
        (Trigger::Set, Value::Number(_)) => true,
    }
}

fn walk(value: &Value, norm: &str, at: &str, out: &mut Review) {
    let index = &*INDEX;
    if let Some(field) = index.by_path.get(norm) {
        match field.fate {
            Warned(note) | Refused(note) => {
                if asks(value, field.trigger) {
                    let finding = Finding {
                        path: at.to_owned(),
                        note: note.to_owned(),
                    };
                    if matches!(field.fate, Refused(_)) {
                        out.refusals.push(finding);
                    } else {
                        out.warnings.push(finding);
                    }
                }
                return;
            }
            Mapped(_) | Kept(_) => {}
        }
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{norm}[]"), &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(fields) if index.parents.contains(norm) => {
            for (key, child) in fields {
                let child_norm = format!("{norm}.{key}");
                let child_at = format!("{at}.{key}");
                if index.by_path.contains_key(&child_norm) {
                    walk(child, &child_norm, &child_at, out);
                } else if asks(child, Trigger::Set) {
                    let finding = Finding {
                        path: child_at,
                        note: "not known to this node; ignored".into(),
                    };
                    if norm == "spec.volumes[]" {
                        out.refusals.push(Finding {
                            note: "this volume type is not available on ECI (reason `UnsupportedVolume`)".into(),
                            ..finding
                        });
                    } else {
                        out.warnings.push(finding);
                    }
                }
            }
        }
        _ => {}
    }
}

/// What the README says about a fate.
fn describe(fate: Fate) -> String {
    match fate {
        Mapped(param) => format!("mapped: `{param}`"),
        Kept(how) => format!("kept: {how}"),
        Warned(why) => format!("**warned**: {why}"),
        Refused(why) => format!("**refused**: {why}"),
    }
}

/// The README's tables: pod fields, then container fields.
pub fn markdown() -> String {
    let mut out = String::from("| pod field | what happens |\n|---|---|\n");
    for field in POD_FIELDS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            field.path,
            describe(field.fate)
        ));
    }
    out.push_str(
        "\n| container field | in `containers[]` | in `initContainers[]` |\n|---|---|---|\n",
    );
    for field in CONTAINER_FIELDS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            field.path,
            describe(field.container),
            describe(init_fate(field))
        ));
    }
    out
}

#[cfg(test)]
mod tests;
