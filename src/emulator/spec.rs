//! What a caller asked for: container-group and image-cache specs parsed from flattened
//! parameters, with the documented limits checked.
//!
//! Parsing never touches state; a request that fails here changes nothing.

use serde::{Deserialize, Serialize};

use super::{error::ApiError, params::Params};
use crate::eci::{DEFAULT_SPEC, round_up_spec};

/// Most images one image cache holds (ALIYUN::ECI::ImageCache, reference §3.1).
pub const MAX_CACHE_IMAGES: usize = 20;
/// Smallest and largest `ImageCacheSize`, GiB (reference §3.2).
pub const CACHE_SIZE_GIB: std::ops::RangeInclusive<i64> = 20..=32768;
/// Default `ImageCacheSize`, GiB.
pub const DEFAULT_CACHE_SIZE_GIB: i64 = 20;
/// `RetentionDays` range (CRD docs, reference §3.2).
pub const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 1..=65536;
/// Most containers per group, and most tags per resource.
pub const MAX_CONTAINERS: usize = 20;
/// Most tags per resource.
pub const MAX_TAGS: usize = 20;

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
}

/// A registry login (`ImageRegistryCredential.N`). Never echoed in responses.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCredential {
    /// Registry host without scheme.
    pub server: String,
    /// User.
    pub user_name: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server)
            .field("user_name", &self.user_name)
            .finish_non_exhaustive()
    }
}

/// An environment variable of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// Downward API field (`status.podIP`), if any.
    pub field_path: Option<String>,
}

/// A container port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// 1–65535.
    pub port: i64,
    /// `TCP` or `UDP`.
    pub protocol: String,
}

/// A volume mount of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// Volume name.
    pub name: String,
    /// Path in the container.
    pub mount_path: String,
    /// Read-only mount.
    pub read_only: bool,
    /// Sub-path of the volume.
    pub sub_path: String,
    /// Propagation mode.
    pub mount_propagation: String,
}

/// A readiness or liveness probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Probe {
    /// `Exec.Command.N`.
    pub exec: Vec<String>,
    /// `HttpGet.{Path,Port,Scheme}`.
    pub http_get: Option<(String, i64, String)>,
    /// `TcpSocket.Port`.
    pub tcp_socket_port: Option<i64>,
    /// Seconds before the first probe.
    pub initial_delay_seconds: i64,
    /// Seconds between probes.
    pub period_seconds: i64,
    /// Successes to pass.
    pub success_threshold: i64,
    /// Failures to fail.
    pub failure_threshold: i64,
    /// Seconds per probe.
    pub timeout_seconds: i64,
}

/// One container (or init container) as requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContainerSpec {
    /// Name, unique in the group.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: String,
    /// vCPUs.
    pub cpu: f64,
    /// GiB.
    pub memory: f64,
    /// GPUs.
    pub gpu: i64,
    /// Entrypoint.
    pub commands: Vec<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Environment.
    pub env: Vec<EnvVar>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Mounts.
    pub volume_mounts: Vec<VolumeMount>,
    /// Readiness probe.
    pub readiness_probe: Option<Probe>,
    /// Liveness probe.
    pub liveness_probe: Option<Probe>,
    /// Added capabilities.
    pub capability_add: Vec<String>,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: Option<bool>,
    /// User id.
    pub run_as_user: Option<i64>,
    /// `SecurityContextRunAsGroup`: group id.
    #[serde(default)]
    pub run_as_group: Option<i64>,
    /// `SecurityContextRunAsNonRoot`: must not run as uid 0.
    #[serde(default)]
    pub run_as_non_root: bool,
    /// `SecurityContextPrivileged`.
    #[serde(default)]
    pub privileged: bool,
    /// postStart hook, kept as given: `(kind, parameters)` for `Exec`, `HttpGet`, `TcpSocket`.
    #[serde(default)]
    pub post_start: Vec<(String, String)>,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach.
    pub stdin_once: bool,
    /// Allocate a TTY.
    pub tty: bool,
    /// `LifecyclePreStopHandlerExec.N`.
    pub pre_stop_exec: Vec<String>,
    /// Any preStop handler was given (exec, HTTP or TCP).
    pub has_pre_stop: bool,
}

/// A volume of a group, kept with its flattened response fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Volume {
    /// Name.
    pub name: String,
    /// `EmptyDirVolume`, `NFSVolume`, `ConfigFileVolume`, `FlexVolume`, `HostPathVolume`, `DiskVolume`.
    pub kind: String,
    /// Type-specific fields as `(response field name, value)`.
    pub fields: Vec<(String, serde_json::Value)>,
}

/// A container group as requested by CreateContainerGroup (and changed by UpdateContainerGroup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GroupSpec {
    /// `ContainerGroupName`.
    pub name: String,
    /// Instance vCPUs after rounding to a spec.
    pub cpu: f64,
    /// Instance GiB after rounding to a spec.
    pub memory: f64,
    /// Requested ECS types.
    pub instance_type: String,
    /// Zone.
    pub zone_id: String,
    /// vSwitch(es).
    pub vswitch_id: String,
    /// Security group.
    pub security_group_id: String,
    /// Resource group.
    pub resource_group_id: String,
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Containers.
    pub containers: Vec<ContainerSpec>,
    /// Init containers.
    pub init_containers: Vec<ContainerSpec>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Registry logins.
    pub credentials: Vec<RegistryCredential>,
    /// Explicit image cache (`imc-…`).
    pub image_snapshot_id: Option<String>,
    /// Let the service pick a cache.
    pub auto_match_image_cache: bool,
    /// `HostName` of the instance; empty for the group's name.
    #[serde(default)]
    pub host_name: String,
    /// `DnsPolicy`.
    pub dns_policy: String,
    /// `DnsConfig.NameServer.N`.
    pub dns_name_servers: Vec<String>,
    /// `DnsConfig.Search.N`.
    pub dns_searches: Vec<String>,
    /// `DnsConfig.Option.N.{Name,Value}`.
    pub dns_options: Vec<(String, String)>,
    /// `HostAliase.N.{Ip,Hostname.N}`.
    pub host_aliases: Vec<(String, Vec<String>)>,
    /// Grace period for deletion, seconds.
    pub termination_grace_period_seconds: Option<i64>,
    /// `ActiveDeadlineSeconds`: the instance is stopped this long after creation.
    #[serde(default)]
    pub active_deadline_seconds: Option<i64>,
    /// `PlainHttpRegistry`, comma-separated.
    pub plain_http_registry: String,
    /// `InsecureRegistry`, comma-separated.
    pub insecure_registry: String,
    /// `EphemeralStorage`, GiB.
    pub ephemeral_storage: i64,
    /// Specs, spot, EIP, identity and system options, and what the group got.
    #[serde(default)]
    pub options: super::instance::InstanceOptions,
}

impl GroupSpec {
    /// Every image of the group, init containers first, without repeats.
    pub fn images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.init_containers.iter().chain(&self.containers) {
            if !out.contains(&c.image) {
                out.push(c.image.clone());
            }
        }
        out
    }
}

/// An image cache as requested by CreateImageCache (and changed by UpdateImageCache).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CacheSpec {
    /// `ImageCacheName`.
    pub name: String,
    /// `Image.N`.
    pub images: Vec<String>,
    /// GiB.
    pub size_gib: i64,
    /// Days until expiry, if set.
    pub retention_days: Option<i64>,
    /// Registry logins.
    pub credentials: Vec<RegistryCredential>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// `LRU` or empty.
    pub elimination_strategy: String,
    /// Resource group.
    pub resource_group_id: String,
    /// Security group of the build instance.
    pub security_group_id: String,
    /// vSwitch of the build instance.
    pub vswitch_id: String,
    /// `Flash`.
    pub flash: bool,
    /// `PlainHttpRegistry`.
    pub plain_http_registry: String,
    /// `InsecureRegistry`.
    pub insecure_registry: String,
    /// `FlashCopyCount`, `StandardCopyCount` (1 when unset).
    #[serde(default)]
    pub copies: (i64, i64),
    /// `AcrRegistryInfo.N.InstanceId`.
    #[serde(default)]
    pub acr_instances: Vec<String>,
    /// `AutoMatchImageCache`: reuse layers of existing caches while building.
    #[serde(default)]
    pub layer_reuse: bool,
    /// `EipInstanceId` of the build instance.
    #[serde(default)]
    pub eip_instance_id: String,
    /// `OsType`: `Linux` or `Windows`.
    #[serde(default)]
    pub os_type: String,
    /// The CPU architecture from `Annotations` (`k8s.aliyun.com/imc-cpu-arch`): the platform
    /// the images are pulled for; empty for the agent's own.
    #[serde(default)]
    pub cpu_arch: String,
}

/// The build options CreateImageCache and UpdateImageCache share, set on `spec` when given.
fn cache_build_options(p: &Params, spec: &mut CacheSpec) -> Result<(), ApiError> {
    let count = |name: &str| -> Result<Option<i64>, ApiError> {
        let n = p.int(name)?;
        if n.is_some_and(|n| !(1..=100).contains(&n)) {
            return Err(ApiError::invalid(name, "must be from 1 to 100"));
        }
        Ok(n)
    };
    if let Some(n) = count("FlashCopyCount")? {
        spec.copies.0 = n;
    }
    if let Some(n) = count("StandardCopyCount")? {
        spec.copies.1 = n;
    }
    if p.has("AcrRegistryInfo") {
        spec.acr_instances = p
            .objects("AcrRegistryInfo")?
            .iter()
            .map(|a| a.required("InstanceId").map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
    }
    if let Some(reuse) = p.bool("AutoMatchImageCache")? {
        spec.layer_reuse = reuse;
    }
    if let Some(eip) = p.get("EipInstanceId") {
        if !eip.starts_with("eip-") {
            return Err(ApiError::invalid("EipInstanceId", "is not an EIP id"));
        }
        eip.clone_into(&mut spec.eip_instance_id);
    }
    if let Some(sg) = p.get("SecurityGroupId") {
        sg.clone_into(&mut spec.security_group_id);
    }
    if let Some(vsw) = p.get("VSwitchId") {
        vsw.clone_into(&mut spec.vswitch_id);
    }
    if let Some(rg) = p.get("ResourceGroupId") {
        rg.clone_into(&mut spec.resource_group_id);
    }
    Ok(())
}

/// The architecture named in CreateImageCache's `Annotations` (a JSON object), if any.
fn cache_cpu_arch(p: &Params) -> Result<String, ApiError> {
    let Some(text) = p.get("Annotations") else {
        return Ok(String::new());
    };
    let annotations: std::collections::BTreeMap<String, String> = serde_json::from_str(text)
        .map_err(|_| ApiError::invalid("Annotations", "must be a JSON object of strings"))?;
    match annotations
        .get("k8s.aliyun.com/imc-cpu-arch")
        .map(String::as_str)
    {
        None => Ok(String::new()),
        Some(arch @ ("amd64" | "arm64")) => Ok(arch.to_owned()),
        Some(_) => Err(ApiError::invalid(
            "Annotations",
            "k8s.aliyun.com/imc-cpu-arch must be amd64 or arm64",
        )),
    }
}

// === parsing ===

/// `Tag.N.Key/Value`, at most 20, keys unique, not empty, not `acs:`/`aliyun`.
pub fn parse_tags(p: &Params) -> Result<Vec<Tag>, ApiError> {
    let mut tags: Vec<Tag> = Vec::new();
    for t in p.objects("Tag")? {
        let key = t.required("Key")?.to_owned();
        let value = t.get("Value").unwrap_or_default().to_owned();
        if key.len() > 64
            || key.starts_with("acs:")
            || key.starts_with("aliyun")
            || key.contains("://")
        {
            return Err(ApiError::invalid(
                "Tag.Key",
                format!("{key:?} is not an allowed tag key"),
            ));
        }
        if value.len() > 128 || value.starts_with("acs:") || value.contains("://") {
            return Err(ApiError::invalid(
                "Tag.Value",
                format!("{value:?} is not an allowed tag value"),
            ));
        }
        if tags.iter().any(|t| t.key == key) {
            return Err(ApiError::invalid(
                "Tag.Key",
                format!("{key:?} is given twice"),
            ));
        }
        tags.push(Tag { key, value });
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "Tag",
            format!("at most {MAX_TAGS} tags are allowed"),
        ));
    }
    Ok(tags)
}

/// Whether a resource's `tags` satisfy every filter `Tag.N`: the key must be present and, when
/// the filter gives a value, equal to it.
pub fn tags_match(tags: &[Tag], filters: &[Tag]) -> bool {
    filters.iter().all(|f| {
        tags.iter()
            .any(|t| t.key == f.key && (f.value.is_empty() || t.value == f.value))
    })
}

fn parse_credentials(p: &Params) -> Result<Vec<RegistryCredential>, ApiError> {
    p.objects("ImageRegistryCredential")?
        .iter()
        .map(|c| {
            Ok(RegistryCredential {
                server: c.required("Server")?.to_owned(),
                user_name: c.get("UserName").unwrap_or_default().to_owned(),
                password: c.get("Password").unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

fn parse_probe(p: &Params) -> Result<Option<Probe>, ApiError> {
    if p.map().is_empty() {
        return Ok(None);
    }
    let http = p.sub("HttpGet");
    let http_get = if http.map().is_empty() {
        None
    } else {
        Some((
            http.get("Path").unwrap_or("/").to_owned(),
            http.int("Port")?.unwrap_or(80),
            http.get("Scheme").unwrap_or("HTTP").to_owned(),
        ))
    };
    Ok(Some(Probe {
        exec: p.sub("Exec").strings("Command")?,
        http_get,
        tcp_socket_port: p.sub("TcpSocket").int("Port")?,
        initial_delay_seconds: p.int("InitialDelaySeconds")?.unwrap_or(0),
        period_seconds: p.int("PeriodSeconds")?.unwrap_or(10),
        success_threshold: p.int("SuccessThreshold")?.unwrap_or(1),
        failure_threshold: p.int("FailureThreshold")?.unwrap_or(3),
        timeout_seconds: p.int("TimeoutSeconds")?.unwrap_or(1),
    }))
}

/// `EnvironmentVar.N.{Key,Value,FieldRef.FieldPath}` of a container.
pub fn parse_env(c: &Params) -> Result<Vec<EnvVar>, ApiError> {
    c.objects("EnvironmentVar")?
        .iter()
        .map(|e| {
            Ok(EnvVar {
                key: e.required("Key")?.to_owned(),
                value: e.get("Value").unwrap_or_default().to_owned(),
                field_path: e.sub("FieldRef").get("FieldPath").map(str::to_owned),
            })
        })
        .collect()
}

/// One `Container.N` / `InitContainer.N`.
pub fn parse_container(c: &Params) -> Result<ContainerSpec, ApiError> {
    let env = parse_env(c)?;
    let ports = c
        .objects("Port")?
        .iter()
        .map(|p| {
            let port = p.int("Port")?.unwrap_or(0);
            if !(1..=65535).contains(&port) {
                return Err(ApiError::invalid(
                    "Container.Port.Port",
                    "ports run from 1 to 65535",
                ));
            }
            Ok(Port {
                port,
                protocol: p
                    .one_of("Protocol", &["TCP", "UDP"])?
                    .unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let volume_mounts = c
        .objects("VolumeMount")?
        .iter()
        .map(|m| {
            Ok(VolumeMount {
                name: m.required("Name")?.to_owned(),
                mount_path: m.required("MountPath")?.to_owned(),
                read_only: m.bool("ReadOnly")?.unwrap_or(false),
                sub_path: m.get("SubPath").unwrap_or_default().to_owned(),
                mount_propagation: m.get("MountPropagation").unwrap_or_default().to_owned(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let security = c.sub("SecurityContext");
    let pre_stop_exec = c.strings("LifecyclePreStopHandlerExec")?;
    let has_pre_stop = !pre_stop_exec.is_empty()
        || c.map()
            .keys()
            .any(|k| k.starts_with("LifecyclePreStopHandler"));
    Ok(ContainerSpec {
        name: c.required("Name")?.to_owned(),
        image: c.required("Image")?.to_owned(),
        image_pull_policy: c
            .one_of("ImagePullPolicy", &["Always", "IfNotPresent", "Never"])?
            .unwrap_or_else(|| "IfNotPresent".into()),
        cpu: c.float("Cpu")?.unwrap_or(0.0),
        memory: c.float("Memory")?.unwrap_or(0.0),
        gpu: c.int("Gpu")?.unwrap_or(0),
        commands: c.strings("Command")?,
        args: c.strings("Arg")?,
        working_dir: c.get("WorkingDir").unwrap_or_default().to_owned(),
        env,
        ports,
        volume_mounts,
        readiness_probe: parse_probe(&c.sub("ReadinessProbe"))?,
        liveness_probe: parse_probe(&c.sub("LivenessProbe"))?,
        capability_add: security.sub("Capability").strings("Add")?,
        read_only_root_filesystem: security.bool("ReadOnlyRootFilesystem")?,
        run_as_user: security.int("RunAsUser")?,
        run_as_group: c.int("SecurityContextRunAsGroup")?,
        run_as_non_root: c.bool("SecurityContextRunAsNonRoot")?.unwrap_or(false),
        privileged: c.bool("SecurityContextPrivileged")?.unwrap_or(false),
        post_start: hook_params(c, "LifecyclePostStartHandler")?,
        stdin: c.bool("Stdin")?.unwrap_or(false),
        stdin_once: c.bool("StdinOnce")?.unwrap_or(false),
        tty: c.bool("Tty")?.unwrap_or(false),
        pre_stop_exec,
        has_pre_stop,
    })
}

/// The parameters of one lifecycle hook (`prefix` is `LifecyclePostStartHandler` or
/// `LifecyclePreStopHandler`) as `(parameter, value)`, in order; ports are checked.
fn hook_params(c: &Params, prefix: &str) -> Result<Vec<(String, String)>, ApiError> {
    for port in ["HttpGetPort", "TcpSocketPort"] {
        let key = format!("{prefix}{port}");
        if let Some(port) = c.int(&key)?
            && !(1..=65535).contains(&port)
        {
            return Err(ApiError::invalid(
                &format!("Container.{key}"),
                "ports run from 1 to 65535",
            ));
        }
    }
    Ok(c.map()
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

fn parse_volume(v: &Params) -> Result<Volume, ApiError> {
    let kind = v.required("Type")?.to_owned();
    let mut fields: Vec<(String, serde_json::Value)> = Vec::new();
    let mut text = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            fields.push((name.to_owned(), serde_json::Value::from(value)));
        }
    };
    match kind.as_str() {
        "EmptyDirVolume" => {
            let e = v.sub("EmptyDirVolume");
            text("EmptyDirVolumeMedium", e.get("Medium"));
            text("EmptyDirVolumeSizeLimit", e.get("SizeLimit"));
        }
        "NFSVolume" => {
            let n = v.sub("NFSVolume");
            text("NFSVolumeServer", Some(n.required("Server")?));
            text("NFSVolumePath", n.get("Path"));
            fields.push((
                "NFSVolumeReadOnly".into(),
                n.bool("ReadOnly")?.unwrap_or(false).into(),
            ));
        }
        "ConfigFileVolume" => {
            let c = v.sub("ConfigFileVolume");
            let files = c
                .objects("ConfigFileToPath")?
                .iter()
                .map(|f| {
                    let mut file = serde_json::json!({
                        "Path": f.required("Path")?,
                        "Content": f.get("Content").unwrap_or_default(),
                    });
                    if let Some(mode) = f.get("Mode") {
                        file["Mode"] = mode.into();
                    }
                    Ok(file)
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            text("ConfigFileVolumeDefaultMode", c.get("DefaultMode"));
            fields.push(("ConfigFileVolumeConfigFileToPaths".into(), files.into()));
        }
        "FlexVolume" => {
            let f = v.sub("FlexVolume");
            text("FlexVolumeDriver", f.get("Driver"));
            text("FlexVolumeFsType", f.get("FsType"));
            text("FlexVolumeOptions", f.get("Options"));
        }
        "HostPathVolume" => {
            let h = v.sub("HostPathVolume");
            text("HostPathVolumePath", h.get("Path"));
            text("HostPathVolumeType", h.get("Type"));
        }
        "DiskVolume" => {
            let d = v.sub("DiskVolume");
            text("DiskVolumeDiskId", d.get("DiskId"));
            text("DiskVolumeFsType", d.get("FsType"));
            text("DiskVolumeDiskSize", d.get("DiskSize"));
        }
        other => {
            return Err(ApiError::invalid(
                "Volume.Type",
                format!("{other:?} is not a volume type"),
            ));
        }
    }
    Ok(Volume {
        name: v.required("Name")?.to_owned(),
        kind,
        fields,
    })
}

/// ContainerGroupName: 2–128 characters of `[a-z0-9-]`, not starting or ending with `-`.
fn valid_group_name(name: &str) -> bool {
    (2..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The parameters of CreateContainerGroup.
pub fn parse_group(p: &Params) -> Result<GroupSpec, ApiError> {
    let name = p.required("ContainerGroupName")?.to_owned();
    if !valid_group_name(&name) {
        return Err(ApiError::invalid(
            "ContainerGroupName",
            "2–128 characters of lowercase letters, digits and '-', not starting or ending with '-'",
        ));
    }
    let containers = p
        .objects("Container")?
        .iter()
        .map(parse_container)
        .collect::<Result<Vec<_>, _>>()?;
    if containers.is_empty() {
        return Err(ApiError::missing("Container.1.Name"));
    }
    let init_containers = p
        .objects("InitContainer")?
        .iter()
        .map(parse_container)
        .collect::<Result<Vec<_>, _>>()?;
    check_containers(&containers, &init_containers)?;
    let volumes = p
        .objects("Volume")?
        .iter()
        .map(parse_volume)
        .collect::<Result<Vec<_>, _>>()?;
    let dns = p.sub("DnsConfig");
    let gpus = containers
        .iter()
        .chain(&init_containers)
        .map(|c| c.gpu)
        .max()
        .unwrap_or(0);
    let options = super::instance::parse(p, gpus)?;
    let (cpu, memory) = resolve_spec(
        p.float("Cpu")?,
        p.float("Memory")?,
        &containers,
        &init_containers,
    );
    Ok(GroupSpec {
        name,
        cpu,
        memory,
        instance_type: p.get("InstanceType").unwrap_or_default().to_owned(),
        zone_id: p.get("ZoneId").unwrap_or_default().to_owned(),
        vswitch_id: p.get("VSwitchId").unwrap_or_default().to_owned(),
        security_group_id: p.get("SecurityGroupId").unwrap_or_default().to_owned(),
        resource_group_id: p.get("ResourceGroupId").unwrap_or_default().to_owned(),
        restart_policy: p
            .one_of("RestartPolicy", &["Always", "OnFailure", "Never"])?
            .unwrap_or_else(|| "Always".into()),
        tags: parse_tags(p)?,
        containers,
        init_containers,
        volumes,
        credentials: parse_credentials(p)?,
        image_snapshot_id: p.get("ImageSnapshotId").map(str::to_owned),
        auto_match_image_cache: p.bool("AutoMatchImageCache")?.unwrap_or(false),
        host_name: p.get("HostName").unwrap_or_default().to_owned(),
        dns_policy: p.get("DnsPolicy").unwrap_or_default().to_owned(),
        dns_name_servers: dns.strings("NameServer")?,
        dns_searches: dns.strings("Search")?,
        dns_options: dns
            .objects("Option")?
            .iter()
            .map(|o| {
                (
                    o.get("Name").unwrap_or_default().to_owned(),
                    o.get("Value").unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        host_aliases: p
            .objects("HostAliase")?
            .iter()
            .map(|h| Ok((h.required("Ip")?.to_owned(), h.strings("Hostname")?)))
            .collect::<Result<Vec<_>, ApiError>>()?,
        termination_grace_period_seconds: p.int("TerminationGracePeriodSeconds")?,
        active_deadline_seconds: p.int("ActiveDeadlineSeconds")?,
        plain_http_registry: p.get("PlainHttpRegistry").unwrap_or_default().to_owned(),
        insecure_registry: p.get("InsecureRegistry").unwrap_or_default().to_owned(),
        ephemeral_storage: p.int("EphemeralStorage")?.unwrap_or(0),
        options,
    })
}

/// Container names unique, at most 20 containers, volume mounts name declared volumes.
pub fn check_containers(
    containers: &[ContainerSpec],
    init: &[ContainerSpec],
) -> Result<(), ApiError> {
    if containers.len() > MAX_CONTAINERS {
        return Err(ApiError::invalid(
            "Container",
            format!("at most {MAX_CONTAINERS} containers are allowed"),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for c in init.iter().chain(containers) {
        if names.contains(&c.name.as_str()) {
            return Err(ApiError::invalid(
                "Container.Name",
                format!("{:?} is used twice", c.name),
            ));
        }
        names.push(&c.name);
    }
    Ok(())
}

/// Instance vCPU/GiB: the instance-level values, else the sum of the containers', rounded up to
/// a spec; 2 vCPU / 4 GiB when nothing is given (reference §2.1.1). A request larger than every
/// spec keeps its values; the group then fails to schedule.
pub fn resolve_spec(
    cpu: Option<f64>,
    memory: Option<f64>,
    containers: &[ContainerSpec],
    init: &[ContainerSpec],
) -> (f64, f64) {
    let sum_cpu: f64 = containers.iter().map(|c| c.cpu).sum();
    let sum_mem: f64 = containers.iter().map(|c| c.memory).sum();
    // Init containers run before the others: the instance needs the larger of the two.
    let init_cpu = init.iter().map(|c| c.cpu).fold(0.0, f64::max);
    let init_mem = init.iter().map(|c| c.memory).fold(0.0, f64::max);
    let want_cpu = cpu.unwrap_or(sum_cpu.max(init_cpu));
    let want_mem = memory.unwrap_or(sum_mem.max(init_mem));
    if want_cpu <= 0.0 && want_mem <= 0.0 {
        return DEFAULT_SPEC;
    }
    round_up_spec(want_cpu, want_mem).unwrap_or((want_cpu, want_mem))
}

/// Checks `Image.N` count and `ImageCacheSize`/`RetentionDays` ranges, shared by create and update.
fn check_cache_limits(
    images: &[String],
    size: i64,
    retention: Option<i64>,
) -> Result<(), ApiError> {
    if images.is_empty() {
        return Err(ApiError::missing("Image.1"));
    }
    if images.len() > MAX_CACHE_IMAGES {
        return Err(ApiError::invalid(
            "Image",
            format!(
                "an image cache holds at most {MAX_CACHE_IMAGES} images, {} were given",
                images.len()
            ),
        ));
    }
    if !CACHE_SIZE_GIB.contains(&size) {
        return Err(ApiError::invalid(
            "ImageCacheSize",
            format!(
                "{size} GiB is outside {}–{} GiB",
                CACHE_SIZE_GIB.start(),
                CACHE_SIZE_GIB.end()
            ),
        ));
    }
    if let Some(days) = retention
        && !RETENTION_DAYS.contains(&days)
    {
        return Err(ApiError::invalid(
            "RetentionDays",
            format!(
                "{days} is outside {}–{}",
                RETENTION_DAYS.start(),
                RETENTION_DAYS.end()
            ),
        ));
    }
    Ok(())
}

/// The parameters of CreateImageCache.
pub fn parse_cache(p: &Params) -> Result<CacheSpec, ApiError> {
    let name = p.required("ImageCacheName")?.to_owned();
    let images = p.strings("Image")?;
    let size_gib = p.int("ImageCacheSize")?.unwrap_or(DEFAULT_CACHE_SIZE_GIB);
    let retention_days = p.int("RetentionDays")?;
    check_cache_limits(&images, size_gib, retention_days)?;
    let mut spec = CacheSpec {
        name,
        images,
        size_gib,
        retention_days,
        credentials: parse_credentials(p)?,
        tags: parse_tags(p)?,
        elimination_strategy: p
            .one_of("EliminationStrategy", &["LRU"])?
            .unwrap_or_default(),
        resource_group_id: p.get("ResourceGroupId").unwrap_or_default().to_owned(),
        security_group_id: p.get("SecurityGroupId").unwrap_or_default().to_owned(),
        vswitch_id: p.get("VSwitchId").unwrap_or_default().to_owned(),
        flash: p.bool("Flash")?.unwrap_or(false),
        plain_http_registry: p.get("PlainHttpRegistry").unwrap_or_default().to_owned(),
        insecure_registry: p.get("InsecureRegistry").unwrap_or_default().to_owned(),
        copies: (1, 1),
        os_type: p
            .one_of("OsType", &["Linux", "Windows"])?
            .unwrap_or_else(|| "Linux".to_owned()),
        cpu_arch: cache_cpu_arch(p)?,
        ..CacheSpec::default()
    };
    cache_build_options(p, &mut spec)?;
    Ok(spec)
}

/// UpdateImageCache: the given fields replace those of `current`; the result obeys the limits.
pub fn apply_cache_update(current: &CacheSpec, p: &Params) -> Result<CacheSpec, ApiError> {
    let mut next = current.clone();
    if let Some(name) = p.get("ImageCacheName") {
        name.clone_into(&mut next.name);
    }
    let images = p.strings("Image")?;
    if !images.is_empty() {
        next.images = images;
    }
    if let Some(size) = p.int("ImageCacheSize")? {
        next.size_gib = size;
    }
    if let Some(days) = p.int("RetentionDays")? {
        next.retention_days = Some(days);
    }
    if p.has("ImageRegistryCredential") {
        next.credentials = parse_credentials(p)?;
    }
    if p.has("Tag") {
        next.tags = parse_tags(p)?;
    }
    if let Some(strategy) = p.one_of("EliminationStrategy", &["LRU"])? {
        next.elimination_strategy = strategy;
    }
    if let Some(flash) = p.bool("Flash")? {
        next.flash = flash;
    }
    cache_build_options(p, &mut next)?;
    check_cache_limits(&next.images, next.size_gib, next.retention_days)?;
    Ok(next)
}

#[cfg(test)]
mod tests;
