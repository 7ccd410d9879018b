//! Container groups (ECI instances, one per pod): the spec types shared by
//! `CreateContainerGroup` and `UpdateContainerGroup`, those two actions, and
//! `DescribeContainerGroups` with the status view it returns.
//!
//! Request field names follow the flattened API names (reference §2.1): a list field is named
//! after the singular parameter (`Container.N`, `EnvironmentVar.N`, `HostAliase.N`, …).
//! Response types carry the plural names the service answers with (`Containers`, `Commands`,
//! `EnvironmentVars`, …) and default every field.

use serde::{Deserialize, Serialize};

use super::{
    Action, Client, EmptyResponse, Error, SecretValue, Tag,
    params::{json_string, lenient},
};

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

/// `CreateContainerGroup`: start one instance. Answers [`CreateContainerGroupResponse`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateContainerGroup {
    /// 2–128 chars of lowercase letters, digits and `-` (required).
    pub container_group_name: String,
    /// Containers (required, ≤ 20).
    #[serde(rename = "Container")]
    pub containers: Vec<Container>,
    /// Init containers, run in order before the containers.
    #[serde(rename = "InitContainer")]
    pub init_containers: Vec<Container>,
    /// Volumes.
    #[serde(rename = "Volume")]
    pub volumes: Vec<Volume>,
    /// Instance vCPUs.
    pub cpu: Option<f64>,
    /// Instance memory in GiB.
    pub memory: Option<f64>,
    /// ECS instance types, comma-separated.
    pub instance_type: Option<String>,
    /// Zone; empty lets the service choose.
    pub zone_id: Option<String>,
    /// Security group.
    pub security_group_id: Option<String>,
    /// vSwitches, comma-separated (≤ 10).
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: Option<String>,
    /// `VSwitchOrdered` or `VSwitchRandom`.
    pub schedule_strategy: Option<String>,
    /// Container restart policy.
    pub restart_policy: Option<RestartPolicy>,
    /// Tags (≤ 20).
    #[serde(rename = "Tag")]
    pub tags: Vec<Tag>,
    /// Idempotency token (the node passes the pod UID); generated by the client if unset.
    pub client_token: Option<String>,
    /// Private registry logins.
    #[serde(rename = "ImageRegistryCredential")]
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    /// Explicit image cache (`imc-…`); it must be `Ready`.
    pub image_snapshot_id: Option<String>,
    /// Let the service pick the best image cache.
    pub auto_match_image_cache: Option<bool>,
    /// `None` (use `DnsConfig`) or `Default`.
    pub dns_policy: Option<String>,
    /// DNS settings.
    pub dns_config: Option<DnsConfig>,
    /// `/etc/hosts` entries (`HostAliase.N`, the API's spelling).
    #[serde(rename = "HostAliase")]
    pub host_aliases: Vec<HostAlias>,
    /// Host name.
    pub host_name: Option<String>,
    /// Sysctls.
    pub security_context: Option<PodSecurityContext>,
    /// Forced exit after this many seconds.
    pub active_deadline_seconds: Option<i64>,
    /// Grace period on deletion.
    pub termination_grace_period_seconds: Option<i64>,
    /// Instance RAM role.
    pub ram_role_name: Option<String>,
    /// Extra temporary storage in GiB.
    pub ephemeral_storage: Option<u32>,
    /// Registries pulled over plain HTTP, comma-separated.
    pub plain_http_registry: Option<String>,
    /// Registries whose certificate is not verified, comma-separated.
    pub insecure_registry: Option<String>,
    /// Share one PID namespace.
    pub share_process_namespace: Option<bool>,
    /// Resource group.
    pub resource_group_id: Option<String>,
    /// `NoSpot`, `SpotWithPriceLimit` or `SpotAsPriceGo`.
    pub spot_strategy: Option<String>,
    /// Price limit for `SpotWithPriceLimit`.
    pub spot_price_limit: Option<f64>,
    /// Bind an existing EIP.
    pub eip_instance_id: Option<String>,
    /// Create and bind an EIP.
    pub auto_create_eip: Option<bool>,
    /// Validate only; success is the error code `DryRunOperation`.
    pub dry_run: Option<bool>,
}

/// Answer of `CreateContainerGroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateContainerGroupResponse {
    /// Request id.
    pub request_id: String,
    /// The new instance, `eci-…`.
    pub container_group_id: String,
}

impl Action for CreateContainerGroup {
    const NAME: &'static str = "CreateContainerGroup";
    const TAKES_CLIENT_TOKEN: bool = true;
    type Response = CreateContainerGroupResponse;
}

/// How `UpdateContainerGroup` applies its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateType {
    /// Full replacement: every list and struct must be complete (the default).
    RenewUpdate,
    /// Only the given fields change.
    IncrementalUpdate,
}

/// `UpdateContainerGroup`: change a `Pending`/`Running` instance. Answers [`EmptyResponse`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateContainerGroup {
    /// The instance (required).
    pub container_group_id: String,
    /// Replacement or incremental.
    pub update_type: Option<UpdateType>,
    /// Restart policy.
    pub restart_policy: Option<RestartPolicy>,
    /// vCPUs.
    pub cpu: Option<f64>,
    /// Memory in GiB.
    pub memory: Option<f64>,
    /// Tags.
    #[serde(rename = "Tag")]
    pub tags: Vec<Tag>,
    /// Containers.
    #[serde(rename = "Container")]
    pub containers: Vec<Container>,
    /// Init containers.
    #[serde(rename = "InitContainer")]
    pub init_containers: Vec<Container>,
    /// Volumes.
    #[serde(rename = "Volume")]
    pub volumes: Vec<Volume>,
    /// DNS settings.
    pub dns_config: Option<DnsConfig>,
    /// Registry logins.
    #[serde(rename = "ImageRegistryCredential")]
    pub image_registry_credentials: Vec<ImageRegistryCredential>,
    /// Resource group.
    pub resource_group_id: Option<String>,
    /// Idempotency token; generated by the client if unset.
    pub client_token: Option<String>,
}

impl Action for UpdateContainerGroup {
    const NAME: &'static str = "UpdateContainerGroup";
    const TAKES_CLIENT_TOKEN: bool = true;
    type Response = EmptyResponse;
}

/// Status of a container group. Unknown values from a newer service map to `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ContainerGroupStatus {
    /// Being created, resources being allocated.
    Scheduling,
    /// At least one container starting, none running.
    Pending,
    /// All containers created, at least one running or restarting.
    Running,
    /// The instance is restarting.
    Restarting,
    /// The instance is being updated.
    Updating,
    /// Being deleted, running preStop hooks.
    Terminating,
    /// All containers exited 0.
    Succeeded,
    /// All containers exited, at least one failed.
    Failed,
    /// Spot instance reclaimed.
    Expired,
    /// Creation failed.
    ScheduleFailed,
    /// A status this client does not know (or none was given).
    #[default]
    #[serde(other)]
    Unknown,
}

/// `DescribeContainerGroups`: list instances by ids, name, status or tags, one page at a time.
/// Answers [`DescribeContainerGroupsResponse`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeContainerGroups {
    /// At most 20 ids, sent as one JSON array string.
    #[serde(serialize_with = "json_string")]
    pub container_group_ids: Vec<String>,
    /// Exact name.
    pub container_group_name: Option<String>,
    /// Only instances in this status.
    pub status: Option<ContainerGroupStatus>,
    /// Zone filter.
    pub zone_id: Option<String>,
    /// vSwitch filter.
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: Option<String>,
    /// Security group filter.
    pub security_group_id: Option<String>,
    /// Resource group filter.
    pub resource_group_id: Option<String>,
    /// Tag filter (all must match).
    #[serde(rename = "Tag")]
    pub tags: Vec<Tag>,
    /// Include events.
    pub with_event: Option<bool>,
    /// Page size (default and maximum 20).
    pub limit: Option<u32>,
    /// Token from the previous page.
    pub next_token: Option<String>,
}

impl Action for DescribeContainerGroups {
    const NAME: &'static str = "DescribeContainerGroups";
    type Response = DescribeContainerGroupsResponse;
}

/// One page of container groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeContainerGroupsResponse {
    /// Request id.
    pub request_id: String,
    /// Matches in all pages.
    #[serde(deserialize_with = "lenient::i64")]
    pub total_count: i64,
    /// Token of the next page; empty on the last one.
    pub next_token: String,
    /// This page.
    pub container_groups: Vec<ContainerGroup>,
}

/// A container group as described by the service. Times are RFC 3339 strings, empty when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerGroup {
    /// `eci-…`.
    pub container_group_id: String,
    /// Name.
    pub container_group_name: String,
    /// Region.
    pub region_id: String,
    /// Zone.
    pub zone_id: String,
    /// VPC.
    pub vpc_id: String,
    /// vSwitch.
    #[serde(rename = "VSwitchId")]
    pub vswitch_id: String,
    /// Security group.
    pub security_group_id: String,
    /// Resource group.
    pub resource_group_id: String,
    /// Status.
    pub status: ContainerGroupStatus,
    /// vCPUs.
    pub cpu: f64,
    /// Memory in GiB.
    pub memory: f64,
    /// ECS type, if one was used.
    pub instance_type: String,
    /// Restart policy.
    pub restart_policy: String,
    /// Private IP (the pod IP).
    pub intranet_ip: String,
    /// Public IP.
    pub internet_ip: String,
    /// IPv6 address.
    pub ipv6_address: String,
    /// Creation time.
    pub creation_time: String,
    /// When it succeeded.
    pub succeeded_time: String,
    /// When it failed.
    pub failed_time: String,
    /// When a spot instance was reclaimed.
    pub expired_time: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Events (≤ 50).
    pub events: Vec<Event>,
    /// Containers.
    pub containers: Vec<ContainerInfo>,
    /// Init containers.
    pub init_containers: Vec<ContainerInfo>,
    /// Volumes (flattened names).
    pub volumes: Vec<VolumeInfo>,
    /// DNS settings.
    pub dns_config: Option<DnsConfigInfo>,
    /// `/etc/hosts` entries.
    pub host_aliases: Vec<HostAliasInfo>,
    /// `economy` or `general`.
    pub compute_category: String,
    /// Extra temporary storage in GiB.
    #[serde(deserialize_with = "lenient::i64")]
    pub ephemeral_storage: i64,
}

/// DNS settings as described (plural names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DnsConfigInfo {
    /// Name servers.
    pub name_servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Options.
    pub options: Vec<DnsOption>,
}

/// An `/etc/hosts` entry as described.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostAliasInfo {
    /// Address.
    pub ip: String,
    /// Names.
    pub hostnames: Vec<String>,
}

/// An event of a container group or image cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Event {
    /// Occurrences.
    #[serde(deserialize_with = "lenient::i32")]
    pub count: i32,
    /// `Normal` or `Warning`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Event name.
    pub name: String,
    /// Reason, e.g. `Started`.
    pub reason: String,
    /// Message.
    pub message: String,
    /// First occurrence.
    pub first_timestamp: String,
    /// Last occurrence.
    pub last_timestamp: String,
}

/// A container as described by the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInfo {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Pull policy.
    pub image_pull_policy: String,
    /// vCPUs.
    pub cpu: f64,
    /// Memory in GiB.
    pub memory: f64,
    /// Entrypoint (init containers answer `Command`).
    #[serde(alias = "Command")]
    pub commands: Vec<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Environment (values may be hidden by `EnvironmentVarHide`).
    pub environment_vars: Vec<EnvironmentVarInfo>,
    /// Ports.
    pub ports: Vec<ContainerPort>,
    /// Mounts.
    pub volume_mounts: Vec<VolumeMount>,
    /// Passed its readiness probe.
    pub ready: bool,
    /// Restarts so far.
    #[serde(deserialize_with = "lenient::i32")]
    pub restart_count: i32,
    /// Current state.
    pub current_state: ContainerState,
    /// State before the last restart.
    pub previous_state: ContainerState,
}

/// An environment variable as described.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnvironmentVarInfo {
    /// Name.
    pub key: String,
    /// Literal value.
    pub value: String,
    /// Downward-API source.
    pub value_from: Option<EnvironmentVarSource>,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnvironmentVarSource {
    /// The downward-API field.
    pub field_ref: Option<FieldRef>,
}

/// A container state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// `Waiting`, `Running` or `Terminated` (empty if none).
    pub state: String,
    /// Finer status.
    pub detail_status: String,
    /// Exit code when terminated.
    #[serde(deserialize_with = "lenient::i32")]
    pub exit_code: i32,
    /// Signal when killed.
    #[serde(deserialize_with = "lenient::i32")]
    pub signal: i32,
    /// Reason, e.g. `Started`, `Completed`, `Error`.
    pub reason: String,
    /// Message.
    pub message: String,
    /// Start time.
    pub start_time: String,
    /// Finish time.
    pub finish_time: String,
}

/// A volume as described (the service flattens member fields into the name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeInfo {
    /// Name.
    pub name: String,
    /// Kind, e.g. `EmptyDirVolume`.
    #[serde(rename = "Type")]
    pub kind: String,
}

// === impl Client ===

impl Client {
    /// `CreateContainerGroup`.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn create_container_group(
        &self,
        request: &CreateContainerGroup,
    ) -> Result<CreateContainerGroupResponse, Error> {
        self.send(request).await
    }

    /// `UpdateContainerGroup`.
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn update_container_group(
        &self,
        request: &UpdateContainerGroup,
    ) -> Result<EmptyResponse, Error> {
        self.send(request).await
    }

    /// `DescribeContainerGroups` (one page).
    ///
    /// # Errors
    /// See [`Client::send`].
    pub async fn describe_container_groups(
        &self,
        request: &DescribeContainerGroups,
    ) -> Result<DescribeContainerGroupsResponse, Error> {
        self.send(request).await
    }

    /// `DescribeContainerGroups`, following `NextToken` until the last page.
    ///
    /// # Errors
    /// See [`Client::send`]; the first failing page ends the walk.
    pub async fn describe_all_container_groups(
        &self,
        request: &DescribeContainerGroups,
    ) -> Result<Vec<ContainerGroup>, Error> {
        let mut page = request.clone();
        let mut all = Vec::new();
        loop {
            let answer = self.send(&page).await?;
            all.extend(answer.container_groups);
            if answer.next_token.is_empty()
                || page.next_token.as_deref() == Some(&answer.next_token)
            {
                return Ok(all);
            }
            page.next_token = Some(answer.next_token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eci::params::{decode, to_params};

    fn container() -> Container {
        Container {
            name: "nginx".into(),
            image: "nginx:1.25".into(),
            cpu: Some(0.5),
            memory: Some(1.0),
            commands: vec!["/bin/sh".into()],
            args: vec!["-c".into(), "echo hi && sleep 1".into()],
            image_pull_policy: Some(ImagePullPolicy::IfNotPresent),
            environment_vars: vec![
                EnvironmentVar {
                    key: "PATH".into(),
                    value: Some("/usr/bin".into()),
                    field_ref: None,
                },
                EnvironmentVar {
                    key: "POD_IP".into(),
                    value: None,
                    field_ref: Some(FieldRef {
                        field_path: "status.podIP".into(),
                    }),
                },
            ],
            ports: vec![ContainerPort {
                port: 80,
                protocol: Some("TCP".into()),
            }],
            volume_mounts: vec![VolumeMount {
                name: "cfg".into(),
                mount_path: "/etc/app".into(),
                read_only: Some(true),
                ..VolumeMount::default()
            }],
            readiness_probe: Some(Probe {
                period_seconds: Some(5),
                http_get: Some(HttpGetAction {
                    path: Some("/healthz".into()),
                    port: 80,
                    scheme: Some("HTTP".into()),
                }),
                ..Probe::default()
            }),
            liveness_probe: Some(Probe {
                exec: Some(ExecAction {
                    commands: vec!["cat".into(), "/tmp/ok".into()],
                }),
                ..Probe::default()
            }),
            security_context: Some(SecurityContext {
                capability: Some(Capability {
                    add: vec!["NET_ADMIN".into()],
                }),
                run_as_user: Some(1000),
                ..SecurityContext::default()
            }),
            ..Container::default()
        }
    }

    #[test]
    fn create_request_flattens_to_the_documented_names() {
        let mut cfg = Volume::new("cfg", VolumeType::ConfigFileVolume);
        cfg.config_file_volume = Some(ConfigFileVolume {
            config_file_to_paths: vec![ConfigFileToPath {
                path: "app.conf".into(),
                content: "bGl1bWk=".into(),
                mode: None,
            }],
            default_mode: Some(420),
        });
        let mut nfs = Volume::new("nas", VolumeType::NfsVolume);
        nfs.nfs_volume = Some(NfsVolume {
            server: "nas.example".into(),
            path: "/share".into(),
            read_only: None,
        });
        let req = CreateContainerGroup {
            container_group_name: "default-web".into(),
            containers: vec![container()],
            init_containers: vec![Container {
                name: "init".into(),
                image: "busybox".into(),
                ..Container::default()
            }],
            volumes: vec![cfg, nfs],
            security_group_id: Some("sg-1".into()),
            vswitch_id: Some("vsw-1,vsw-2".into()),
            zone_id: Some("cn-hangzhou-h".into()),
            restart_policy: Some(RestartPolicy::OnFailure),
            tags: vec![Tag::new("k8s.namespace", "default")],
            client_token: Some("uid-1".into()),
            image_registry_credentials: vec![ImageRegistryCredential {
                server: "registry.example".into(),
                user_name: "u".into(),
                password: SecretValue::new("pw-secret"),
            }],
            image_snapshot_id: Some("imc-abc".into()),
            auto_match_image_cache: Some(false),
            dns_policy: Some("None".into()),
            dns_config: Some(DnsConfig {
                name_servers: vec!["10.0.0.10".into()],
                searches: vec!["svc.cluster.local".into()],
                options: vec![DnsOption {
                    name: "ndots".into(),
                    value: Some("2".into()),
                }],
            }),
            host_aliases: vec![HostAlias {
                ip: "1.1.1.1".into(),
                hostnames: vec!["a.example".into(), "b.example".into()],
            }],
            ..CreateContainerGroup::default()
        };
        let params = to_params(&req).expect("flattens");
        let expected = [
            ("ContainerGroupName", "default-web"),
            ("Container.1.Name", "nginx"),
            ("Container.1.Image", "nginx:1.25"),
            ("Container.1.Cpu", "0.5"),
            ("Container.1.Memory", "1"),
            ("Container.1.Command.1", "/bin/sh"),
            ("Container.1.Arg.1", "-c"),
            ("Container.1.Arg.2", "echo hi && sleep 1"),
            ("Container.1.ImagePullPolicy", "IfNotPresent"),
            ("Container.1.EnvironmentVar.1.Key", "PATH"),
            ("Container.1.EnvironmentVar.1.Value", "/usr/bin"),
            ("Container.1.EnvironmentVar.2.Key", "POD_IP"),
            (
                "Container.1.EnvironmentVar.2.FieldRef.FieldPath",
                "status.podIP",
            ),
            ("Container.1.Port.1.Port", "80"),
            ("Container.1.Port.1.Protocol", "TCP"),
            ("Container.1.VolumeMount.1.Name", "cfg"),
            ("Container.1.VolumeMount.1.MountPath", "/etc/app"),
            ("Container.1.VolumeMount.1.ReadOnly", "true"),
            ("Container.1.ReadinessProbe.PeriodSeconds", "5"),
            ("Container.1.ReadinessProbe.HttpGet.Path", "/healthz"),
            ("Container.1.ReadinessProbe.HttpGet.Port", "80"),
            ("Container.1.ReadinessProbe.HttpGet.Scheme", "HTTP"),
            ("Container.1.LivenessProbe.Exec.Command.1", "cat"),
            ("Container.1.LivenessProbe.Exec.Command.2", "/tmp/ok"),
            ("Container.1.SecurityContext.Capability.Add.1", "NET_ADMIN"),
            ("Container.1.SecurityContext.RunAsUser", "1000"),
            ("InitContainer.1.Name", "init"),
            ("InitContainer.1.Image", "busybox"),
            ("Volume.1.Name", "cfg"),
            ("Volume.1.Type", "ConfigFileVolume"),
            (
                "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path",
                "app.conf",
            ),
            (
                "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content",
                "bGl1bWk=",
            ),
            ("Volume.1.ConfigFileVolume.DefaultMode", "420"),
            ("Volume.2.Name", "nas"),
            ("Volume.2.Type", "NFSVolume"),
            ("Volume.2.NFSVolume.Server", "nas.example"),
            ("Volume.2.NFSVolume.Path", "/share"),
            ("SecurityGroupId", "sg-1"),
            ("VSwitchId", "vsw-1,vsw-2"),
            ("ZoneId", "cn-hangzhou-h"),
            ("RestartPolicy", "OnFailure"),
            ("Tag.1.Key", "k8s.namespace"),
            ("Tag.1.Value", "default"),
            ("ClientToken", "uid-1"),
            ("ImageRegistryCredential.1.Server", "registry.example"),
            ("ImageRegistryCredential.1.UserName", "u"),
            ("ImageRegistryCredential.1.Password", "pw-secret"),
            ("ImageSnapshotId", "imc-abc"),
            ("AutoMatchImageCache", "false"),
            ("DnsPolicy", "None"),
            ("DnsConfig.NameServer.1", "10.0.0.10"),
            ("DnsConfig.Search.1", "svc.cluster.local"),
            ("DnsConfig.Option.1.Name", "ndots"),
            ("DnsConfig.Option.1.Value", "2"),
            ("HostAliase.1.Ip", "1.1.1.1"),
            ("HostAliase.1.Hostname.1", "a.example"),
            ("HostAliase.1.Hostname.2", "b.example"),
        ];
        let got: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut want: Vec<(&str, &str)> = expected.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        // The registry password is sent, but never shown by Debug.
        assert!(!format!("{req:?}").contains("pw-secret"));
    }

    #[test]
    fn describe_request_sends_ids_as_json_and_filters() {
        let req = DescribeContainerGroups {
            container_group_ids: vec!["eci-a".into(), "eci-b".into()],
            status: Some(ContainerGroupStatus::Running),
            tags: vec![Tag::new("node", "vk-1")],
            limit: Some(20),
            next_token: Some("t2".into()),
            ..DescribeContainerGroups::default()
        };
        let params = to_params(&req).expect("flattens");
        assert_eq!(params["ContainerGroupIds"], r#"["eci-a","eci-b"]"#);
        assert_eq!(params["Status"], "Running");
        assert_eq!(params["Tag.1.Key"], "node");
        assert_eq!(params["Limit"], "20");
        assert_eq!(params["NextToken"], "t2");
        assert_eq!(params.len(), 6);
        // No ids: the parameter is left out rather than sent as "[]".
        assert!(
            to_params(&DescribeContainerGroups::default())
                .expect("flattens")
                .is_empty()
        );
    }

    /// Reference appendix A.4, plus a `null`, an unknown field and an unknown status.
    #[test]
    fn describe_response_decodes_the_reference_sample() {
        let body = br#"{"RequestId":"89945DD3-9072-47D0-A318-353284CFC7B3","TotalCount":2,"NextToken":"",
 "ContainerGroups":[{
   "ContainerGroupId":"eci-bp1jrgfqqy54kg5hc****","ContainerGroupName":"test",
   "RegionId":"cn-hangzhou","ZoneId":"cn-hangzhou-h","VpcId":"vpc-1","VSwitchId":"vsw-1",
   "SecurityGroupId":"sg-1","Status":"Running","Cpu":2.0,"Memory":4.0,"InstanceType":"",
   "RestartPolicy":"Always","IntranetIp":"172.16.0.5","InternetIp":"",
   "CreationTime":"2018-08-02T15:00:00Z","SucceededTime":"","FailedTime":"","ExpiredTime":"",
   "Tags":[{"Key":"name","Value":"test"}],
   "Events":[{"Count":1,"Type":"Normal","Name":"test-xxx","Reason":"Created","Message":"Started container",
              "FirstTimestamp":"2018-08-02T15:00:00Z","LastTimestamp":"2018-08-02T15:00:00Z"}],
   "Containers":[{"Name":"nginx","Image":"nginx","ImagePullPolicy":"IfNotPresent","Cpu":2.0,"Memory":4.0,
      "Commands":[],"Args":null,"Ports":[{"Port":80,"Protocol":"TCP"}],"VolumeMounts":[],
      "EnvironmentVars":[{"Key":"A","Value":"1"},{"Key":"IP","ValueFrom":{"FieldRef":{"FieldPath":"status.podIP"}}}],
      "Ready":true,"RestartCount":3,"SomethingNew":{"A":1},
      "CurrentState":{"State":"Running","DetailStatus":"","ExitCode":0,"Signal":0,"Reason":"Started",
                      "Message":"","StartTime":"2019-12-19T12:05:02Z","FinishTime":""},
      "PreviousState":{"State":"Terminated","ExitCode":137,"Reason":"Error"}}],
   "InitContainers":[{"Name":"init","Command":["sh"],"CurrentState":{"State":"Terminated","ExitCode":0}}],
   "Volumes":[],"DnsConfig":{"NameServers":["10.0.0.10"],"Options":[{"Name":"ndots","Value":"2"}]},
   "HostAliases":[{"Ip":"1.1.1.1","Hostnames":["a.example"]}]},
   {"ContainerGroupId":"eci-2","Status":"Hibernating"}]}"#;
        let r: DescribeContainerGroupsResponse = decode(body).expect("decodes");
        assert_eq!(r.total_count, 2);
        assert!(r.next_token.is_empty());
        let g = &r.container_groups[0];
        assert_eq!(g.status, ContainerGroupStatus::Running);
        assert_eq!(g.vswitch_id, "vsw-1");
        assert_eq!(g.intranet_ip, "172.16.0.5");
        assert!((g.cpu - 2.0).abs() < f64::EPSILON);
        assert_eq!(g.tags, vec![Tag::new("name", "test")]);
        assert_eq!(g.events[0].kind, "Normal");
        let c = &g.containers[0];
        assert!(c.ready);
        assert_eq!(c.restart_count, 3);
        assert_eq!(c.ports[0].port, 80);
        assert_eq!(c.current_state.state, "Running");
        assert_eq!(c.previous_state.exit_code, 137);
        assert!(c.args.is_empty());
        assert_eq!(c.environment_vars[0].value, "1");
        assert_eq!(
            c.environment_vars[1]
                .value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str()),
            Some("status.podIP")
        );
        let dns = g.dns_config.as_ref().expect("dns config");
        assert_eq!(dns.name_servers, vec!["10.0.0.10".to_owned()]);
        assert_eq!(dns.options[0].value.as_deref(), Some("2"));
        assert_eq!(g.host_aliases[0].hostnames, vec!["a.example".to_owned()]);
        assert_eq!(g.init_containers[0].commands, vec!["sh".to_owned()]);
        assert_eq!(
            r.container_groups[1].status,
            ContainerGroupStatus::Unknown,
            "unknown statuses must not fail decoding"
        );
    }
}
