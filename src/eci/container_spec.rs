//! The specification of a container group's parts, shared by `CreateContainerGroup` and
//! `UpdateContainerGroup`: containers and init containers (command, args, env, ports, mounts,
//! probes, security context), volumes, registry credentials, DNS and host aliases.
//!
//! Field names follow the flattened API names (reference §2.1.2–§2.1.4): a list field is named
//! after the singular parameter (`EnvironmentVar.N`, `Port.N`, `HostAliase.N`, …).

use serde::{Deserialize, Serialize};

use super::SecretValue;

/// When images are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImagePullPolicy {
    /// Always pull.
    Always,
    /// Pull when the image is not on the instance (the useful one with image caches).
    IfNotPresent,
    /// Never pull.
    Never,
}

/// Restart policy of the containers of a group (never of the instance itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Restart on any exit (the default).
    Always,
    /// Restart on non-zero exit.
    OnFailure,
    /// Never restart.
    Never,
}

/// One container (or init container; those take no probes and no lifecycle hooks).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    /// Container name (required).
    pub name: String,
    /// Image reference (required).
    pub image: String,
    /// vCPUs, e.g. `0.25`.
    pub cpu: Option<f64>,
    /// Memory in GiB, e.g. `0.5`.
    pub memory: Option<f64>,
    /// GPUs.
    pub gpu: Option<u32>,
    /// Entrypoint (`Command.N`).
    #[serde(rename = "Command")]
    pub commands: Vec<String>,
    /// Arguments (`Arg.N`).
    #[serde(rename = "Arg")]
    pub args: Vec<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Pull policy.
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// Environment (`EnvironmentVar.N.*`).
    #[serde(rename = "EnvironmentVar")]
    pub environment_vars: Vec<EnvironmentVar>,
    /// Ports (`Port.N.*`).
    #[serde(rename = "Port")]
    pub ports: Vec<ContainerPort>,
    /// Volume mounts (`VolumeMount.N.*`).
    #[serde(rename = "VolumeMount")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Readiness probe.
    pub readiness_probe: Option<Probe>,
    /// Liveness probe.
    pub liveness_probe: Option<Probe>,
    /// Capabilities, read-only root, user.
    pub security_context: Option<SecurityContext>,
    /// Privileged container.
    pub security_context_privileged: Option<bool>,
    /// Group id the container runs as.
    pub security_context_run_as_group: Option<i64>,
    /// Refuse to run as root.
    pub security_context_run_as_non_root: Option<bool>,
    /// postStart hook command (`LifecyclePostStartHandlerExec.N`).
    #[serde(rename = "LifecyclePostStartHandlerExec")]
    pub post_start_exec: Vec<String>,
    /// preStop hook command (`LifecyclePreStopHandlerExec.N`).
    #[serde(rename = "LifecyclePreStopHandlerExec")]
    pub pre_stop_exec: Vec<String>,
    /// postStart HTTP GET hook (`LifecyclePostStartHandlerHttpGet*`).
    #[serde(flatten, serialize_with = "post_start_http")]
    pub post_start_http_get: Option<HookHttpGet>,
    /// postStart TCP hook (`LifecyclePostStartHandlerTcpSocket*`).
    #[serde(flatten, serialize_with = "post_start_tcp")]
    pub post_start_tcp_socket: Option<HookTcpSocket>,
    /// preStop HTTP GET hook (`LifecyclePreStopHandlerHttpGet*`).
    #[serde(flatten, serialize_with = "pre_stop_http")]
    pub pre_stop_http_get: Option<HookHttpGet>,
    /// preStop TCP hook (`LifecyclePreStopHandlerTcpSocket*`).
    #[serde(flatten, serialize_with = "pre_stop_tcp")]
    pub pre_stop_tcp_socket: Option<HookTcpSocket>,
    /// Keep stdin open.
    pub stdin: Option<bool>,
    /// Close stdin after the first attach.
    pub stdin_once: Option<bool>,
    /// Allocate a TTY.
    pub tty: Option<bool>,
    /// Where the termination message is written.
    pub termination_message_path: Option<String>,
    /// `File` or `FallbackToLogsOnError`.
    pub termination_message_policy: Option<String>,
}

/// One environment variable: a value or a downward-API field reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentVar {
    /// Name.
    pub key: String,
    /// Literal value.
    pub value: Option<String>,
    /// Downward API reference (`FieldRef.FieldPath`, e.g. `status.podIP`).
    pub field_ref: Option<FieldRef>,
}

/// A downward-API field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FieldRef {
    /// The field path.
    pub field_path: String,
}

/// A container port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerPort {
    /// 1–65535.
    pub port: u16,
    /// `TCP` or `UDP`.
    pub protocol: Option<String>,
}

/// A volume mounted into a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeMount {
    /// Name of a `Volume.N`.
    pub name: String,
    /// Path in the container.
    pub mount_path: String,
    /// Mount read-only.
    pub read_only: Option<bool>,
    /// Sub-path of the volume.
    pub sub_path: Option<String>,
    /// `None`, `HostToContainer` or `Bidirectional`.
    pub mount_propagation: Option<String>,
}

/// A readiness or liveness probe: timings plus exactly one handler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    /// Seconds before the first probe.
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes.
    pub period_seconds: Option<i32>,
    /// Successes to be considered passing (must be 1).
    pub success_threshold: Option<i32>,
    /// Failures to be considered failing.
    pub failure_threshold: Option<i32>,
    /// Probe timeout in seconds.
    pub timeout_seconds: Option<i32>,
    /// HTTP GET handler.
    pub http_get: Option<HttpGetAction>,
    /// Command handler.
    pub exec: Option<ExecAction>,
    /// TCP handler.
    pub tcp_socket: Option<TcpSocketAction>,
}

/// An HTTP GET probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HttpGetAction {
    /// Path.
    pub path: Option<String>,
    /// Port.
    pub port: u16,
    /// `HTTP` or `HTTPS`.
    pub scheme: Option<String>,
}

/// A command probe (`Exec.Command.N`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecAction {
    /// The command.
    #[serde(rename = "Command")]
    pub commands: Vec<String>,
}

/// A TCP probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TcpSocketAction {
    /// Port.
    pub port: u16,
}

/// An HTTP GET lifecycle hook. ECI spells its members flat, after the hook:
/// `LifecyclePostStartHandlerHttpGetPath`, `…Port`, `…Scheme`, `…Host`, `…HttpHeader.N.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookHttpGet {
    /// Path.
    pub path: Option<String>,
    /// Port.
    pub port: u16,
    /// `HTTP` or `HTTPS`.
    pub scheme: Option<String>,
    /// Host to connect to (default: the group's address).
    pub host: Option<String>,
    /// Request headers.
    pub http_headers: Vec<HttpHeader>,
}

/// One header of an HTTP GET hook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A TCP lifecycle hook (`…TcpSocketPort`, `…TcpSocketHost`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookTcpSocket {
    /// Port.
    pub port: u16,
    /// Host to connect to (default: the group's address).
    pub host: Option<String>,
}

fn hook_http<S: serde::Serializer>(
    prefix: &str,
    hook: Option<&HookHttpGet>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(None)?;
    if let Some(h) = hook {
        if let Some(path) = &h.path {
            map.serialize_entry(&format!("{prefix}Path"), path)?;
        }
        map.serialize_entry(&format!("{prefix}Port"), &h.port)?;
        if let Some(scheme) = &h.scheme {
            map.serialize_entry(&format!("{prefix}Scheme"), scheme)?;
        }
        if let Some(host) = &h.host {
            map.serialize_entry(&format!("{prefix}Host"), host)?;
        }
        if !h.http_headers.is_empty() {
            map.serialize_entry(&format!("{prefix}HttpHeader"), &h.http_headers)?;
        }
    }
    map.end()
}

fn hook_tcp<S: serde::Serializer>(
    prefix: &str,
    hook: Option<&HookTcpSocket>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(None)?;
    if let Some(h) = hook {
        map.serialize_entry(&format!("{prefix}Port"), &h.port)?;
        if let Some(host) = &h.host {
            map.serialize_entry(&format!("{prefix}Host"), host)?;
        }
    }
    map.end()
}

fn post_start_http<S: serde::Serializer>(
    hook: &Option<HookHttpGet>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    hook_http(
        "LifecyclePostStartHandlerHttpGet",
        hook.as_ref(),
        serializer,
    )
}

fn pre_stop_http<S: serde::Serializer>(
    hook: &Option<HookHttpGet>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    hook_http("LifecyclePreStopHandlerHttpGet", hook.as_ref(), serializer)
}

fn post_start_tcp<S: serde::Serializer>(
    hook: &Option<HookTcpSocket>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    hook_tcp(
        "LifecyclePostStartHandlerTcpSocket",
        hook.as_ref(),
        serializer,
    )
}

fn pre_stop_tcp<S: serde::Serializer>(
    hook: &Option<HookTcpSocket>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    hook_tcp(
        "LifecyclePreStopHandlerTcpSocket",
        hook.as_ref(),
        serializer,
    )
}

/// Container security context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityContext {
    /// Added capabilities (`Capability.Add.N`).
    pub capability: Option<Capability>,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: Option<bool>,
    /// User id.
    pub run_as_user: Option<i64>,
}

/// Capabilities to add.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Capability {
    /// e.g. `NET_ADMIN`.
    #[serde(rename = "Add")]
    pub add: Vec<String>,
}

/// The kind of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeType {
    /// Scratch space.
    EmptyDirVolume,
    /// NAS over NFS.
    #[serde(rename = "NFSVolume")]
    NfsVolume,
    /// Files given inline (ConfigMaps, Secrets, downward API).
    ConfigFileVolume,
    /// Disk/NAS/OSS through a flexvolume driver.
    FlexVolume,
    /// Host path (allow-list only).
    HostPathVolume,
    /// An existing cloud disk (`DiskVolume.*`).
    DiskVolume,
}

/// A volume of the group; set the member matching `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// Name referenced by `VolumeMount.N.Name`.
    pub name: String,
    /// Which of the members below applies.
    #[serde(rename = "Type")]
    pub kind: VolumeType,
    /// For `EmptyDirVolume`.
    pub empty_dir_volume: Option<EmptyDirVolume>,
    /// For `NFSVolume`.
    #[serde(rename = "NFSVolume")]
    pub nfs_volume: Option<NfsVolume>,
    /// For `ConfigFileVolume`.
    pub config_file_volume: Option<ConfigFileVolume>,
    /// For `FlexVolume`.
    pub flex_volume: Option<FlexVolume>,
    /// For `HostPathVolume`.
    pub host_path_volume: Option<HostPathVolume>,
    /// For `DiskVolume`.
    pub disk_volume: Option<DiskVolume>,
}

impl Volume {
    /// A volume of `kind` with no members set yet.
    pub fn new(name: impl Into<String>, kind: VolumeType) -> Self {
        Self {
            name: name.into(),
            kind,
            empty_dir_volume: None,
            nfs_volume: None,
            config_file_volume: None,
            flex_volume: None,
            host_path_volume: None,
            disk_volume: None,
        }
    }
}

/// Scratch space.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmptyDirVolume {
    /// Empty for the node's disk, `Memory` for tmpfs.
    pub medium: Option<String>,
    /// e.g. `256Mi`.
    pub size_limit: Option<String>,
}

/// An NFS share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NfsVolume {
    /// Server address.
    pub server: String,
    /// Exported path.
    pub path: String,
    /// Mount read-only.
    pub read_only: Option<bool>,
}

/// Inline files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFileVolume {
    /// The files (`ConfigFileToPath.N.*`).
    #[serde(rename = "ConfigFileToPath")]
    pub config_file_to_paths: Vec<ConfigFileToPath>,
    /// Default file mode.
    pub default_mode: Option<u32>,
}

/// One inline file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFileToPath {
    /// Path relative to the mount point.
    pub path: String,
    /// Base64 of the content (≤ 32 KB each, ≤ 60 KB in all).
    pub content: String,
    /// File mode.
    pub mode: Option<u32>,
}

/// A flexvolume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlexVolume {
    /// Driver, e.g. `alicloud/disk`.
    pub driver: String,
    /// Filesystem type.
    pub fs_type: Option<String>,
    /// Driver options as a JSON string.
    pub options: Option<String>,
}

/// An existing cloud disk, attached to one group at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskVolume {
    /// The disk's id, `d-…`.
    pub disk_id: String,
    /// Filesystem type, e.g. `ext4`.
    pub fs_type: Option<String>,
    /// Size in GiB.
    pub disk_size: Option<i64>,
}

/// A host path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostPathVolume {
    /// Path on the host.
    pub path: String,
    /// `Directory` or `File`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
}

/// Login for a private registry. The password is hidden from `Debug`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageRegistryCredential {
    /// Registry host, without scheme.
    pub server: String,
    /// User name.
    pub user_name: String,
    /// Password.
    pub password: SecretValue,
}

/// DNS settings of the group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsConfig {
    /// Name servers (`NameServer.N`).
    #[serde(rename = "NameServer")]
    pub name_servers: Vec<String>,
    /// Search domains (`Search.N`).
    #[serde(rename = "Search")]
    pub searches: Vec<String>,
    /// resolv.conf options (`Option.N.*`).
    #[serde(rename = "Option")]
    pub options: Vec<DnsOption>,
}

/// One resolv.conf option.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DnsOption {
    /// e.g. `ndots`.
    pub name: String,
    /// e.g. `2`.
    pub value: Option<String>,
}

/// One `/etc/hosts` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostAlias {
    /// Address.
    pub ip: String,
    /// Names (`Hostname.N`).
    #[serde(rename = "Hostname")]
    pub hostnames: Vec<String>,
}

/// Pod-level security context: sysctls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodSecurityContext {
    /// Safe sysctls (`Sysctl.N.*`).
    #[serde(rename = "Sysctl")]
    pub sysctls: Vec<Sysctl>,
}

/// One sysctl.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Sysctl {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}
