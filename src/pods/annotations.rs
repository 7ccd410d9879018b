//! ECI's pod annotations → `CreateContainerGroup` parameters, checked before anything is asked
//! of the cloud.
//!
//! The list is ECI's "ECI Pod Annotation" page
//! (<https://help.aliyun.com/en/eci/user-guide/pod-annotations-1>, Chinese
//! <https://help.aliyun.com/zh/eci/user-guide/pod-annotations>); each key is spelt once in
//! [`crate::eci::annotation`], and [`TABLE`] says what becomes of each (the README's table is
//! generated from it and a test keeps the two equal). An annotation with a parameter sets it;
//! one whose effect is the node's own (`eci-fail-strategy`, `eci-max-pending-minute`,
//! `eci-instance-family`/`-generation`) is carried out here and by the pass; one ECI's API has
//! no parameter for is a Warning event naming it. A malformed value fails the pod with
//! [`INVALID_REASON`] and an event naming the annotation and its value.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use k8s_openapi::api::core::v1::Pod;

use crate::{
    eci::{
        self, ContainerGroup, CreateContainerGroup, Tag, annotation as key,
        container_group::AcrRegistryInfo, container_spec::HostAlias,
    },
    quantity,
};

/// Status and event reason of a pod whose annotation is malformed.
pub const INVALID_REASON: &str = "InvalidAnnotation";
/// Event reason of an annotation ECI's API has no parameter for, or that has no effect here.
pub const UNSUPPORTED_REASON: &str = "UnsupportedAnnotation";
/// ECI's event reason when `eci-instance-family`/`-generation` meet specs that are all ECS
/// types ("Specify ECS instance families", which ignores them then).
pub const IGNORED_FEATURES_REASON: &str = "IgnoreInstanceTypeFeatures";

/// Most specs `eci-use-specs` (and `InstanceType`) takes.
pub const MAX_SPECS: usize = 5;
/// Most vSwitches of one group.
pub const MAX_VSWITCHES: usize = 10;
/// Most security groups of one group.
pub const MAX_SECURITY_GROUPS: usize = 5;
/// Most tags `eci-custom-tags` adds.
pub const MAX_CUSTOM_TAGS: usize = 3;
/// `eci-max-pending-minute`: smallest, largest and default (4 hours).
pub const MAX_PENDING_MINUTES: std::ops::RangeInclusive<u64> = 10..=1440;
/// The time a group may stay Pending when the pod does not say.
pub const DEFAULT_MAX_PENDING: Duration = Duration::from_secs(240 * 60);

/// A malformed annotation: the pod fails with [`INVALID_REASON`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}={value:?}: {why}")]
pub struct Invalid {
    /// The annotation.
    pub key: &'static str,
    /// Its value as written (annotations are not secret).
    pub value: String,
    /// What is wrong with it.
    pub why: String,
}

/// How a pod's failed create is handled (`eci-fail-strategy`, ECI's "Configure a fault
/// handling policy for a pod",
/// <https://www.alibabacloud.com/help/en/eci/user-guide/configure-a-fault-handling-policy-for-a-pod>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailStrategy {
    /// `fail-back` (and `fail-over`): the node keeps retrying; the pod stays Pending with the
    /// reason in its `ContainerInstanceCreated` condition.
    #[default]
    FailBack,
    /// `fail-fast`: the first refusal is final; the pod stays Pending with reason
    /// `ContainerInstanceScheduleFailed` and is not retried, for its owner to decide.
    FailFast,
}

/// What the node itself does for a pod's annotations, beyond the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// `eci-fail-strategy`.
    pub fail_strategy: FailStrategy,
    /// `eci-max-pending-minute`.
    pub max_pending: Duration,
}

/// What [`apply`] did besides setting parameters: Warning events to publish once the group
/// exists, as `(reason, message)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The warnings.
    pub warnings: Vec<(&'static str, String)>,
}

/// Node-wide defaults a pod's annotation overrides (`--ram-role-name`, `--spot-fallback`; the
/// node's vSwitches and security group are already in the request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    /// RAM role of new groups.
    pub ram_role: Option<String>,
    /// Whether a spot pod falls back to pay-as-you-go when no spot instance is in stock.
    pub spot_fallback: bool,
}

/// What becomes of one annotation: one row of the README's table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The annotation.
    pub key: &'static str,
    /// The `CreateContainerGroup` parameter(s), or `—`.
    pub parameter: &'static str,
    /// What the user sees.
    pub effect: &'static str,
    /// The node-wide flag that sets a default, if any.
    pub flag: &'static str,
}

const fn row(
    key: &'static str,
    parameter: &'static str,
    effect: &'static str,
    flag: &'static str,
) -> Row {
    Row {
        key,
        parameter,
        effect,
        flag,
    }
}

/// Every annotation of ECI's page, and what the node does with it.
pub const TABLE: &[Row] = &[
    row(
        key::USE_SPECS,
        "`InstanceType`",
        "up to 5 specs (`2-4Gi`, `ecs.c6.large`) tried in order; the spec the group got is `eci-instance-spec`",
        "",
    ),
    row(
        key::INSTANCE_FAMILY,
        "`InstanceType`",
        "families (`ecs.c6`) or exclusions (`-ecs.c5`) turn a vCPU/memory spec into the smallest ECS types of those families; with only ECS types in `eci-use-specs`, an `IgnoreInstanceTypeFeatures` Warning",
        "",
    ),
    row(
        key::INSTANCE_GENERATION,
        "`InstanceType`",
        "generations (`6`) or exclusions (`-5`) of the c/g/r families, as above",
        "",
    ),
    row(
        key::COMPUTE_CATEGORY,
        "`ComputeCategory.N`",
        "`economy`/`general`, tried in order; the one used is `eci-instance-compute-category`",
        "",
    ),
    row(
        key::GPU_DRIVER_VERSION,
        "`GpuDriverVersion`",
        "the driver of a GPU type, e.g. `tesla=535`",
        "",
    ),
    row(
        key::EXTRA_EPHEMERAL_STORAGE,
        "`EphemeralStorage`",
        "temporary storage beyond the free 20 GiB, a quantity (`50Gi`), rounded up to GiB",
        "",
    ),
    row(
        key::CPU_OPTION_CORE,
        "`CpuOptionsCore`",
        "physical cores of an ECS type",
        "",
    ),
    row(
        key::CPU_OPTION_HT,
        "`CpuOptionsThreadsPerCore`",
        "threads per core (`1`: no hyper-threading)",
        "",
    ),
    row(
        key::SPOT_STRATEGY,
        "`SpotStrategy`",
        "`SpotAsPriceGo` or `SpotWithPriceLimit` (which needs `eci-spot-price-limit`)",
        "",
    ),
    row(
        key::SPOT_PRICE_LIMIT,
        "`SpotPriceLimit`",
        "hourly price limit, at most 3 decimals; a Warning when the strategy is not `SpotWithPriceLimit`",
        "",
    ),
    row(
        key::SPOT_DURATION,
        "`SpotDuration`",
        "protected hours, `1` (ECI's default) or `0`",
        "",
    ),
    row(
        key::SPOT_FALLBACK,
        "`StrictSpot` (the inverse)",
        "`true`: pay-as-you-go when no spot instance is in stock; `false`: the create fails",
        "`--spot-fallback`",
    ),
    row(
        key::VSWITCH,
        "`VSwitchId`",
        "up to 10 vSwitches, comma-separated, instead of the node's",
        "`--vswitch`",
    ),
    row(
        key::SCHEDULE_STRATEGY,
        "`ScheduleStrategy`",
        "`VSwitchOrdered` or `VSwitchRandom`",
        "",
    ),
    row(
        key::SECURITY_GROUP,
        "`SecurityGroupId`",
        "up to 5 security groups, comma-separated, instead of the node's",
        "`--security-group`",
    ),
    row(
        key::WITH_EIP,
        "`AutoCreateEip`",
        "an EIP is created and bound; its address is `allocated-eipAddress`",
        "",
    ),
    row(
        key::EIP_INSTANCE_ID,
        "`EipInstanceId`",
        "this EIP is bound; `allocated-eipInstanceId` and `allocated-eipAddress` show it",
        "",
    ),
    row(
        key::EIP_BANDWIDTH,
        "`EipBandwidth`",
        "Mbit/s of the created EIP",
        "",
    ),
    row(
        key::EIP_ISP,
        "`EipISP`",
        "`BGP` or `BGP_PRO`, for the created EIP",
        "",
    ),
    row(
        key::EIP_BANDWIDTH_PACKAGE,
        "`EipCommonBandwidthPackage`",
        "the created EIP joins this bandwidth package",
        "",
    ),
    row(
        key::EIP_CHARGE_TYPE,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::EIP_ADDRESS_POOL,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::FIXED_IP,
        "`FixedIp`",
        "the pod keeps its IP when re-created",
        "",
    ),
    row(
        key::FIXED_IP_RETAIN_HOUR,
        "`FixedIpRetainHour`",
        "hours an unused fixed IP is kept (ECI's default 48)",
        "",
    ),
    row(
        key::ENABLE_IPV6,
        "`Ipv6AddressCount`",
        "one IPv6 address, shown as `allocated-ipv6Address`",
        "",
    ),
    row(
        key::IPV6_BANDWIDTH_ENABLE,
        "`Ipv6GatewayBandwidthEnable`",
        "IPv6 Internet access",
        "",
    ),
    row(
        key::IPV6_BANDWIDTH,
        "`Ipv6GatewayBandwidth`",
        "IPv6 Internet bandwidth, Mbit/s (`100M`)",
        "",
    ),
    row(
        key::PRIVATE_IP_ADDRESS,
        "`PrivateIpAddress`",
        "this private IPv4 address",
        "",
    ),
    row(
        key::INGRESS_BANDWIDTH,
        "`IngressBandwidth`",
        "bytes per second (`40M`, units B/K/M/G/T, powers of 1000), sent in bit/s",
        "",
    ),
    row(
        key::EGRESS_BANDWIDTH,
        "`EgressBandwidth`",
        "as `ingress-bandwidth`",
        "",
    ),
    row(
        key::RAM_ROLE_NAME,
        "`RamRoleName`",
        "the instance's RAM role",
        "`--ram-role-name`",
    ),
    row(
        key::RESOURCE_GROUP_ID,
        "`ResourceGroupId`",
        "the group's resource group",
        "",
    ),
    row(
        key::CUSTOM_TAGS,
        "`Tag.N`",
        "up to 3 `key:value` tags on the group, beside the node's own",
        "",
    ),
    row(
        key::PRIVATEPOOL_MATCH,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::PRIVATEPOOL_ID,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::CUSTOM_HOSTS,
        "`HostAliase.N`",
        "`[{\"host\":…,\"ip\":…}]` entries of `/etc/hosts`, after the pod's `hostAliases`",
        "",
    ),
    row(
        key::CUSTOM_DNS_CONFIG,
        "—",
        "the pod's `dnsConfig` is the way here: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::NTP_SERVER,
        "`NtpServer.N`",
        "NTP servers (IP addresses)",
        "",
    ),
    row(
        key::CORE_PATTERN,
        "`CorePattern`",
        "directory of core dumps (absolute, not a pipe)",
        "",
    ),
    row(
        key::FAIL_STRATEGY,
        "— (the node)",
        "`fail-back`/`fail-over` (default): a refused create is retried, the pod Pending with the reason in condition `ContainerInstanceCreated`; `fail-fast`: not retried, the pod Pending with reason `ContainerInstanceScheduleFailed`",
        "",
    ),
    row(
        key::MAX_PENDING_MINUTE,
        "— (the node)",
        "10–1440 (default 240): a group Pending longer is deleted and the pod Failed with reason `PendingTimeout`",
        "",
    ),
    row(
        key::DATA_CACHE_BUCKET,
        "`DataCacheBucket`",
        "the data cache's bucket",
        "",
    ),
    row(key::DATA_CACHE_PL, "`DataCachePL`", "`PL0`–`PL3`", ""),
    row(
        key::DATA_CACHE_IOPS,
        "`DataCacheProvisionedIops`",
        "0–50000",
        "",
    ),
    row(
        key::DATA_CACHE_BURSTING,
        "`DataCacheBurstingEnabled`",
        "`true`/`false`",
        "",
    ),
    row(
        key::SLS_ENABLE,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::EVICTION_ENABLE,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::EPHEMERAL_STORAGE_OPTIONS,
        "—",
        "no parameter in the API: an `UnsupportedAnnotation` Warning",
        "",
    ),
    row(
        key::PLAIN_HTTP_REGISTRY,
        "`PlainHttpRegistry`",
        "registries (`host[:port]`) pulled over HTTP",
        "",
    ),
    row(
        key::INSECURE_REGISTRY,
        "`InsecureRegistry`",
        "registries whose certificate is not verified",
        "",
    ),
    row(
        key::ACR_INSTANCE_IDS,
        "`AcrRegistryInfo.N.InstanceId`/`.RegionId`",
        "ACR Enterprise instances (`cri-…`, or `<region>:cri-…`) pulled without a password",
        "",
    ),
    row(
        key::ACR_SERVICE_ARNS,
        "`AcrRegistryInfo.N.ArnService`",
        "the role ECI assumes for those instances",
        "",
    ),
    row(
        key::ACR_USER_ARNS,
        "`AcrRegistryInfo.N.ArnUser`",
        "the role in the instances' account",
        "",
    ),
    row(
        key::IMC_ID,
        "`ImageSnapshotId`",
        "the image cache (see the image-cache section)",
        "",
    ),
    row(
        key::IMAGE_SNAPSHOT_ID,
        "`ImageSnapshotId`",
        "the guide's name of `eci-imc-id`",
        "",
    ),
    row(
        key::AUTO_IMC,
        "`ImageSnapshotId`",
        "automatic matching, decided by the node",
        "",
    ),
    row(
        key::IMAGE_CACHE,
        "`ImageSnapshotId`",
        "the guide's name of `eci-auto-imc`",
        "",
    ),
    row(
        key::IMC_PERFECT_MATCH,
        "—",
        "a filter of automatic matching",
        "",
    ),
    row(
        key::IMC_MATCH_COUNT_REQUEST,
        "—",
        "a filter of automatic matching",
        "",
    ),
];

/// Keys ECI documents that have no `CreateContainerGroup` parameter and no node-side effect:
/// each is an [`UNSUPPORTED_REASON`] Warning.
const WARNED: &[(&str, &str)] = &[
    (
        key::EIP_CHARGE_TYPE,
        "the API has no charge-type parameter for a created EIP; it gets ECI's default",
    ),
    (
        key::EIP_ADDRESS_POOL,
        "the API has no address-pool parameter for a created EIP",
    ),
    (
        key::PRIVATEPOOL_MATCH,
        "the API has no private-pool parameter; the group is created without elasticity assurance",
    ),
    (
        key::PRIVATEPOOL_ID,
        "the API has no private-pool parameter; the group is created without elasticity assurance",
    ),
    (
        key::CUSTOM_DNS_CONFIG,
        "set the pod's spec.dnsConfig instead; this node maps that to DnsConfig",
    ),
    (
        key::SLS_ENABLE,
        "this node collects no logs into SLS; the switch has nothing to turn off",
    ),
    (
        key::EVICTION_ENABLE,
        "the API has no eviction parameter; a pod out of temporary storage is not evicted",
    ),
    (
        key::EPHEMERAL_STORAGE_OPTIONS,
        "the API has no parameter for temporary-storage options",
    ),
];

/// The README's table: one row per annotation.
pub fn readme_table() -> String {
    let mut out = String::from(
        "| annotation | ECI parameter | what you get | node-wide flag |\n|---|---|---|---|\n",
    );
    for row in TABLE {
        let flag = if row.flag.is_empty() { "" } else { row.flag };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            row.key, row.parameter, row.effect, flag
        ));
    }
    out
}

/// The pod's annotation `key`, trimmed; an empty value counts as absent.
fn get<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// A comma-separated list, items trimmed, empty ones dropped.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn invalid(key: &'static str, value: &str, why: impl Into<String>) -> Invalid {
    Invalid {
        key,
        value: value.chars().take(200).collect(),
        why: why.into(),
    }
}

fn boolean(key: &'static str, value: &str) -> Result<bool, Invalid> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "must be \"true\" or \"false\"")),
    }
}

fn integer(
    key: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, Invalid> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid(
                key,
                value,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn small(
    key: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u32, Invalid> {
    let n = integer(key, value, range)?;
    u32::try_from(n).map_err(|_| invalid(key, value, "too large"))
}

fn one_of(key: &'static str, value: &str, allowed: &[&str]) -> Result<String, Invalid> {
    allowed
        .iter()
        .find(|a| **a == value)
        .map(|a| (*a).to_owned())
        .ok_or_else(|| invalid(key, value, format!("must be one of {}", allowed.join(", "))))
}

/// Ids of one kind (`vsw-`, `sg-`): a list of at most `max`, each with `prefix`.
fn ids(key: &'static str, value: &str, prefix: &str, max: usize) -> Result<Vec<String>, Invalid> {
    let items = list(value);
    if items.len() > max {
        return Err(invalid(key, value, format!("at most {max} ids")));
    }
    if let Some(bad) = items
        .iter()
        .find(|i| !i.starts_with(prefix) || i.contains(' '))
    {
        return Err(invalid(
            key,
            value,
            format!("{bad:?} is not an id starting with {prefix:?}"),
        ));
    }
    Ok(items)
}

/// Registries as `host[:port]`, comma-separated.
fn registries(key: &'static str, value: &str) -> Result<String, Invalid> {
    let items = list(value);
    if let Some(bad) = items
        .iter()
        .find(|h| h.contains("://") || h.contains('/') || h.contains(' '))
    {
        return Err(invalid(key, value, format!("{bad:?} is not a host[:port]")));
    }
    Ok(items.join(","))
}

/// A bandwidth in bytes per second (`40M`: units B, K, KB, M, MB, G, GB, T, TB, powers of
/// 1000, none meaning bytes) as bit/s. ECI's "Limit the bandwidth of an instance" page gives
/// the annotation in bytes per second and the API parameter in bit/s.
fn bandwidth_bits(key: &'static str, value: &str) -> Result<u64, Invalid> {
    let digits = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let factor: f64 = match unit {
        "" | "B" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        _ => {
            return Err(invalid(
                key,
                value,
                "the unit must be B, K, KB, M, MB, G, GB, T or TB",
            ));
        }
    };
    let bytes: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0 && n.is_finite())
        .ok_or_else(|| {
            invalid(
                key,
                value,
                "must be a positive number with a unit, e.g. 40M",
            )
        })?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((bytes * factor * 8.0).round() as u64)
}

/// One entry of `eci-use-specs`.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    /// `<vCPU>-<GiB>Gi`.
    Size(f64, f64, String),
    /// An ECS type.
    Ecs(String),
}

fn specs(value: &str) -> Result<Vec<Spec>, Invalid> {
    let items = list(value);
    if items.len() > MAX_SPECS {
        return Err(invalid(
            key::USE_SPECS,
            value,
            format!("at most {MAX_SPECS} specs"),
        ));
    }
    items
        .into_iter()
        .map(|item| {
            if let Some(rest) = item.strip_prefix("ecs.") {
                let shape = rest.split('.').count() == 2
                    && rest.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
                    });
                return if shape {
                    Ok(Spec::Ecs(item))
                } else {
                    Err(invalid(
                        key::USE_SPECS,
                        value,
                        format!("{item:?} is not an ECS instance type"),
                    ))
                };
            }
            let size = item
                .strip_suffix("Gi")
                .and_then(|s| s.split_once('-'))
                .and_then(|(c, m)| Some((c.parse::<f64>().ok()?, m.parse::<f64>().ok()?)))
                .filter(|(c, m)| *c > 0.0 && *m > 0.0);
            match size {
                Some((cpu, memory)) => Ok(Spec::Size(cpu, memory, item)),
                None => Err(invalid(
                    key::USE_SPECS,
                    value,
                    format!(
                        "{item:?} is neither <vCPU>-<GiB>Gi (e.g. 2-4Gi) nor an ECS instance type"
                    ),
                )),
            }
        })
        .collect()
}

/// Wanted and excluded items of `eci-instance-family`/`-generation` (a leading `-` excludes).
fn wanted_and_excluded(value: &str) -> (Vec<String>, Vec<String>) {
    let (excluded, wanted): (Vec<String>, Vec<String>) =
        list(value).into_iter().partition(|i| i.starts_with('-'));
    let excluded = excluded
        .into_iter()
        .map(|i| i.trim_start_matches('-').trim().to_owned())
        .collect();
    (wanted, excluded)
}

/// The generations the node expands a vCPU/memory spec into when a pod names no family: ECI's
/// current ones, newest first.
const DEFAULT_GENERATIONS: &[&str] = &["7", "6", "5"];

/// The ECS families `eci-instance-family`/`-generation` allow, in the order tried.
fn families(pod: &Pod) -> Result<Option<Vec<String>>, Invalid> {
    let family = get(pod, key::INSTANCE_FAMILY);
    let generation = get(pod, key::INSTANCE_GENERATION);
    if family.is_none() && generation.is_none() {
        return Ok(None);
    }
    let (want_families, not_families) = family.map(wanted_and_excluded).unwrap_or_default();
    let (want_gens, not_gens) = generation.map(wanted_and_excluded).unwrap_or_default();
    if let (Some(value), Some(bad)) = (
        family,
        want_families
            .iter()
            .chain(&not_families)
            .find(|f| !eci::instance_spec::is_family(f)),
    ) {
        return Err(invalid(
            key::INSTANCE_FAMILY,
            value,
            format!("{bad:?} is not an ECS family this node can size (ecs.c6, ecs.g7, ecs.r6e, …)"),
        ));
    }
    if let (Some(value), Some(bad)) = (
        generation,
        want_gens
            .iter()
            .chain(&not_gens)
            .find(|g| !matches!(g.parse::<u32>(), Ok(5..=9))),
    ) {
        return Err(invalid(
            key::INSTANCE_GENERATION,
            value,
            format!("{bad:?} is not an ECS generation ECI runs (5 to 9)"),
        ));
    }
    let generation_of = |family: &str| -> String {
        family
            .trim_start_matches("ecs.")
            .chars()
            .skip(1)
            .take_while(char::is_ascii_digit)
            .collect()
    };
    let candidates: Vec<String> = if want_families.is_empty() {
        let gens: Vec<&str> = if want_gens.is_empty() {
            DEFAULT_GENERATIONS.to_vec()
        } else {
            want_gens.iter().map(String::as_str).collect()
        };
        gens.iter()
            .flat_map(|g| ["c", "g", "r"].map(|kind| format!("ecs.{kind}{g}")))
            .collect()
    } else {
        want_families
            .into_iter()
            .filter(|f| want_gens.is_empty() || want_gens.contains(&generation_of(f)))
            .collect()
    };
    Ok(Some(
        candidates
            .into_iter()
            .filter(|f| !not_families.contains(f) && !not_gens.contains(&generation_of(f)))
            .collect(),
    ))
}

/// `eci-use-specs`, `eci-instance-family`/`-generation` → `InstanceType` (the group's own
/// vCPU/memory give way to it, as ECI documents for multiple specs).
fn instance(
    pod: &Pod,
    request: &mut CreateContainerGroup,
    applied: &mut Applied,
) -> Result<(), Invalid> {
    let specs = get(pod, key::USE_SPECS)
        .map(specs)
        .transpose()?
        .unwrap_or_default();
    let families = families(pod)?;
    let Some(families) = families else {
        if !specs.is_empty() {
            request.instance_type = Some(
                specs
                    .iter()
                    .map(|s| match s {
                        Spec::Size(.., text) | Spec::Ecs(text) => text.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            );
            request.cpu = None;
            request.memory = None;
        }
        return Ok(());
    };
    if !specs.is_empty() && specs.iter().all(|s| matches!(s, Spec::Ecs(_))) {
        applied.warnings.push((
            IGNORED_FEATURES_REASON,
            format!(
                "{} and {} apply to vCPU/memory specs; every spec of {} is an ECS type, so they are ignored",
                key::INSTANCE_FAMILY,
                key::INSTANCE_GENERATION,
                key::USE_SPECS
            ),
        ));
        return instance_without_families(specs, request);
    }
    let sizes: Vec<Spec> = if specs.is_empty() {
        let (cpu, memory) = match (request.cpu, request.memory) {
            (Some(c), Some(m)) => (c, m),
            _ => eci::DEFAULT_SPEC,
        };
        vec![Spec::Size(cpu, memory, String::new())]
    } else {
        specs
    };
    let mut types: Vec<String> = Vec::new();
    for spec in sizes {
        match spec {
            Spec::Ecs(name) => types.push(name),
            Spec::Size(cpu, memory, _) => {
                let mut sized: Vec<(f64, String)> = families
                    .iter()
                    .filter_map(|f| {
                        let name = eci::instance_spec::smallest_of_family(f, cpu, memory)?;
                        let size = eci::instance_spec::ecs_type(&name)?;
                        Some((size.cpu * 1000.0 + size.memory, name))
                    })
                    .collect();
                // The closest fit first, as ECI's scheduler prefers the cheapest that holds it.
                sized.sort_by(|a, b| a.0.total_cmp(&b.0));
                types.extend(sized.into_iter().map(|(_, n)| n));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    types.retain(|t| seen.insert(t.clone()));
    if types.is_empty() {
        let value = get(pod, key::INSTANCE_FAMILY)
            .or_else(|| get(pod, key::INSTANCE_GENERATION))
            .unwrap_or_default();
        let which = if get(pod, key::INSTANCE_FAMILY).is_some() {
            key::INSTANCE_FAMILY
        } else {
            key::INSTANCE_GENERATION
        };
        return Err(invalid(which, value, "allows no ECS family"));
    }
    types.truncate(MAX_SPECS);
    request.instance_type = Some(types.join(","));
    request.cpu = None;
    request.memory = None;
    Ok(())
}

fn instance_without_families(
    specs: Vec<Spec>,
    request: &mut CreateContainerGroup,
) -> Result<(), Invalid> {
    let names: Vec<String> = specs
        .into_iter()
        .map(|s| match s {
            Spec::Size(.., text) | Spec::Ecs(text) => text,
        })
        .collect();
    request.instance_type = Some(names.join(","));
    request.cpu = None;
    request.memory = None;
    Ok(())
}

/// `eci-spot-*` → `SpotStrategy`, `SpotPriceLimit`, `SpotDuration`, `StrictSpot`.
fn spot(
    pod: &Pod,
    defaults: &Defaults,
    request: &mut CreateContainerGroup,
    applied: &mut Applied,
) -> Result<(), Invalid> {
    let strategy = get(pod, key::SPOT_STRATEGY)
        .map(|v| {
            one_of(
                key::SPOT_STRATEGY,
                v,
                &["SpotAsPriceGo", "SpotWithPriceLimit", "NoSpot"],
            )
        })
        .transpose()?;
    let price = get(pod, key::SPOT_PRICE_LIMIT)
        .map(|v| {
            let decimals = v.split_once('.').map_or(0, |(_, d)| d.len());
            v.parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && p.is_finite() && decimals <= 3 && !v.starts_with('+'))
                .ok_or_else(|| {
                    invalid(
                        key::SPOT_PRICE_LIMIT,
                        v,
                        "must be a positive price with at most 3 decimals, e.g. 0.5",
                    )
                })
        })
        .transpose()?;
    let spot = matches!(
        strategy.as_deref(),
        Some("SpotAsPriceGo" | "SpotWithPriceLimit")
    );
    match (strategy.as_deref(), price) {
        (Some("SpotWithPriceLimit"), None) => {
            return Err(invalid(
                key::SPOT_STRATEGY,
                "SpotWithPriceLimit",
                format!("needs {} (the hourly price limit)", key::SPOT_PRICE_LIMIT),
            ));
        }
        (Some("SpotWithPriceLimit"), Some(limit)) => request.spot_price_limit = Some(limit),
        (_, Some(_)) => applied.warnings.push((
            UNSUPPORTED_REASON,
            format!(
                "{} is used only with {}: SpotWithPriceLimit; it was ignored",
                key::SPOT_PRICE_LIMIT,
                key::SPOT_STRATEGY
            ),
        )),
        _ => {}
    }
    request.spot_strategy = strategy;
    let duration = get(pod, key::SPOT_DURATION)
        .map(|v| small(key::SPOT_DURATION, v, 0..=1))
        .transpose()?;
    let fallback = get(pod, key::SPOT_FALLBACK)
        .map(|v| boolean(key::SPOT_FALLBACK, v))
        .transpose()?;
    if spot {
        request.spot_duration = duration;
        // ECI documents no mapping of eci-spot-fallback; StrictSpot is the API's switch between
        // "spot or nothing" and "spot, else pay-as-you-go" (inferred).
        request.strict_spot = Some(!fallback.unwrap_or(defaults.spot_fallback));
    } else {
        for (k, given) in [
            (key::SPOT_DURATION, duration.is_some()),
            (key::SPOT_FALLBACK, fallback.is_some()),
        ] {
            if given {
                applied.warnings.push((
                    UNSUPPORTED_REASON,
                    format!(
                        "{k} is used only with a spot {}; it was ignored",
                        key::SPOT_STRATEGY
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// EIP, fixed IP, IPv6, private IP and bandwidth annotations.
fn network(
    pod: &Pod,
    request: &mut CreateContainerGroup,
    applied: &mut Applied,
) -> Result<(), Invalid> {
    if let Some(v) = get(pod, key::VSWITCH) {
        request.vswitch_id = Some(ids(key::VSWITCH, v, "vsw-", MAX_VSWITCHES)?.join(","));
    }
    if let Some(v) = get(pod, key::SCHEDULE_STRATEGY) {
        request.schedule_strategy = Some(one_of(
            key::SCHEDULE_STRATEGY,
            v,
            &["VSwitchOrdered", "VSwitchRandom"],
        )?);
    }
    if let Some(v) = get(pod, key::SECURITY_GROUP) {
        request.security_group_id =
            Some(ids(key::SECURITY_GROUP, v, "sg-", MAX_SECURITY_GROUPS)?.join(","));
    }
    let with_eip = get(pod, key::WITH_EIP)
        .map(|v| boolean(key::WITH_EIP, v))
        .transpose()?;
    if let Some(v) = get(pod, key::EIP_INSTANCE_ID) {
        let id = ids(key::EIP_INSTANCE_ID, v, "eip-", 1)?;
        if with_eip == Some(true) {
            return Err(invalid(
                key::EIP_INSTANCE_ID,
                v,
                format!(
                    "binds an existing EIP; it cannot be combined with {}: \"true\"",
                    key::WITH_EIP
                ),
            ));
        }
        request.eip_instance_id = id.into_iter().next();
    }
    if with_eip == Some(true) {
        request.auto_create_eip = Some(true);
    }
    let created = with_eip == Some(true);
    let for_created = |k: &'static str, applied: &mut Applied| {
        applied.warnings.push((
            UNSUPPORTED_REASON,
            format!(
                "{k} applies to an EIP created with {}: \"true\"; it was ignored",
                key::WITH_EIP
            ),
        ));
    };
    if let Some(v) = get(pod, key::EIP_BANDWIDTH) {
        let mbps = small(key::EIP_BANDWIDTH, v, 1..=10_000)?;
        if created {
            request.eip_bandwidth = Some(mbps)
        } else {
            for_created(key::EIP_BANDWIDTH, applied)
        }
    }
    if let Some(v) = get(pod, key::EIP_ISP) {
        let isp = one_of(key::EIP_ISP, v, &["BGP", "BGP_PRO"])?;
        if created {
            request.eip_isp = Some(isp)
        } else {
            for_created(key::EIP_ISP, applied)
        }
    }
    if let Some(v) = get(pod, key::EIP_BANDWIDTH_PACKAGE) {
        let package = ids(key::EIP_BANDWIDTH_PACKAGE, v, "cbwp-", 1)?;
        if created {
            request.eip_common_bandwidth_package = package.into_iter().next()
        } else {
            for_created(key::EIP_BANDWIDTH_PACKAGE, applied)
        }
    }
    let fixed = get(pod, key::FIXED_IP)
        .map(|v| boolean(key::FIXED_IP, v))
        .transpose()?;
    if fixed == Some(true) {
        request.fixed_ip = Some(true);
    }
    if let Some(v) = get(pod, key::FIXED_IP_RETAIN_HOUR) {
        let hours = small(key::FIXED_IP_RETAIN_HOUR, v, 1..=87_600)?;
        if fixed == Some(true) {
            request.fixed_ip_retain_hour = Some(hours);
        } else {
            applied.warnings.push((
                UNSUPPORTED_REASON,
                format!(
                    "{} applies with {}: \"true\"; it was ignored",
                    key::FIXED_IP_RETAIN_HOUR,
                    key::FIXED_IP
                ),
            ));
        }
    }
    if let Some(v) = get(pod, key::ENABLE_IPV6) {
        if boolean(key::ENABLE_IPV6, v)? {
            request.ipv6_address_count = Some(1);
        }
    }
    if let Some(v) = get(pod, key::IPV6_BANDWIDTH_ENABLE) {
        request.ipv6_gateway_bandwidth_enable = Some(boolean(key::IPV6_BANDWIDTH_ENABLE, v)?);
    }
    if let Some(v) = get(pod, key::IPV6_BANDWIDTH) {
        let mbps = v.strip_suffix('M').unwrap_or(v);
        small(key::IPV6_BANDWIDTH, mbps, 1..=2000)
            .map_err(|_| invalid(key::IPV6_BANDWIDTH, v, "must be 1M to 2000M (Mbit/s)"))?;
        request.ipv6_gateway_bandwidth = Some(format!("{mbps}M"));
    }
    if let Some(v) = get(pod, key::PRIVATE_IP_ADDRESS) {
        let ip: std::net::Ipv4Addr = v
            .parse()
            .map_err(|_| invalid(key::PRIVATE_IP_ADDRESS, v, "must be an IPv4 address"))?;
        request.private_ip_address = Some(ip.to_string());
    }
    if let Some(v) = get(pod, key::INGRESS_BANDWIDTH) {
        request.ingress_bandwidth = Some(bandwidth_bits(key::INGRESS_BANDWIDTH, v)?);
    }
    if let Some(v) = get(pod, key::EGRESS_BANDWIDTH) {
        request.egress_bandwidth = Some(bandwidth_bits(key::EGRESS_BANDWIDTH, v)?);
    }
    Ok(())
}

/// RAM role, resource group, custom tags and hosts.
fn identity(
    pod: &Pod,
    defaults: &Defaults,
    request: &mut CreateContainerGroup,
) -> Result<(), Invalid> {
    request.ram_role_name = get(pod, key::RAM_ROLE_NAME)
        .map(|v| {
            let ok = v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            ok.then(|| v.to_owned()).ok_or_else(|| {
                invalid(
                    key::RAM_ROLE_NAME,
                    v,
                    "a RAM role name is at most 64 letters, digits, '-', '_' and '.'",
                )
            })
        })
        .transpose()?
        .or_else(|| defaults.ram_role.clone());
    if let Some(v) = get(pod, key::RESOURCE_GROUP_ID) {
        request.resource_group_id = ids(key::RESOURCE_GROUP_ID, v, "rg-", 1)?.into_iter().next();
    }
    if let Some(v) = get(pod, key::CUSTOM_TAGS) {
        let pairs = list(v);
        if pairs.len() > MAX_CUSTOM_TAGS {
            return Err(invalid(
                key::CUSTOM_TAGS,
                v,
                format!("at most {MAX_CUSTOM_TAGS} tags"),
            ));
        }
        for pair in pairs {
            let Some((k, value)) = pair.split_once(':') else {
                return Err(invalid(
                    key::CUSTOM_TAGS,
                    v,
                    format!("{pair:?} is not key:value"),
                ));
            };
            let (k, value) = (k.trim(), value.trim());
            let reserved = k.starts_with("aliyun")
                || k.starts_with("acs:")
                || k.starts_with("eci-vk.io/")
                || k.contains("://");
            if k.is_empty() || k.chars().count() > 64 || value.chars().count() > 128 || reserved {
                return Err(invalid(
                    key::CUSTOM_TAGS,
                    v,
                    format!(
                        "tag {k:?}: a key is 1–64 characters not starting with aliyun, acs: or eci-vk.io/, a value at most 128"
                    ),
                ));
            }
            request.tags.push(Tag::new(k, value));
        }
    }
    if let Some(v) = get(pod, key::CUSTOM_HOSTS) {
        #[derive(serde::Deserialize)]
        struct Host {
            host: String,
            ip: IpAddr,
        }
        let hosts: Vec<Host> = serde_json::from_str(v).map_err(|e| {
            invalid(
                key::CUSTOM_HOSTS,
                v,
                format!("must be a JSON list of {{\"host\": …, \"ip\": …}}: {e}"),
            )
        })?;
        request
            .host_aliases
            .extend(hosts.into_iter().map(|h| HostAlias {
                ip: h.ip.to_string(),
                hostnames: vec![h.host],
            }));
    }
    Ok(())
}

/// Compute category, GPU driver, storage, CPU options, NTP, core pattern, data cache.
fn system(pod: &Pod, request: &mut CreateContainerGroup) -> Result<(), Invalid> {
    if let Some(v) = get(pod, key::COMPUTE_CATEGORY) {
        request.compute_categories = list(v)
            .iter()
            .map(|c| {
                one_of(key::COMPUTE_CATEGORY, c, &["economy", "general"]).map_err(|e| Invalid {
                    value: v.to_owned(),
                    ..e
                })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = get(pod, key::GPU_DRIVER_VERSION) {
        let ok = v.split_once('=').is_some_and(|(kind, version)| {
            !kind.is_empty()
                && kind.chars().all(|c| c.is_ascii_lowercase())
                && version.starts_with(|c: char| c.is_ascii_digit())
                && version.chars().all(|c| c.is_ascii_digit() || c == '.')
        });
        if !ok {
            return Err(invalid(
                key::GPU_DRIVER_VERSION,
                v,
                "must be <driver>=<version>, e.g. tesla=535",
            ));
        }
        request.gpu_driver_version = Some(v.to_owned());
    }
    if let Some(v) = get(pod, key::EXTRA_EPHEMERAL_STORAGE) {
        let bytes = quantity::parse(v)
            .map(|q| q.value())
            .ok()
            .filter(|b| *b > 0.0)
            .ok_or_else(|| {
                invalid(
                    key::EXTRA_EPHEMERAL_STORAGE,
                    v,
                    "must be a quantity such as 50Gi",
                )
            })?;
        let gib = (bytes / f64::from(1u32 << 30)).ceil();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let gib = u32::try_from(gib as u64)
            .map_err(|_| invalid(key::EXTRA_EPHEMERAL_STORAGE, v, "too large"))?;
        request.ephemeral_storage = Some(gib);
    }
    if let Some(v) = get(pod, key::CPU_OPTION_CORE) {
        request.cpu_options_core = Some(small(key::CPU_OPTION_CORE, v, 1..=256)?);
    }
    if let Some(v) = get(pod, key::CPU_OPTION_HT) {
        request.cpu_options_threads_per_core = Some(small(key::CPU_OPTION_HT, v, 1..=2)?);
    }
    if let Some(v) = get(pod, key::NTP_SERVER) {
        let servers = list(v);
        if let Some(bad) = servers.iter().find(|s| s.parse::<IpAddr>().is_err()) {
            return Err(invalid(
                key::NTP_SERVER,
                v,
                format!("{bad:?} is not an IP address"),
            ));
        }
        request.ntp_servers = servers;
    }
    if let Some(v) = get(pod, key::CORE_PATTERN) {
        if !v.starts_with('/') {
            return Err(invalid(
                key::CORE_PATTERN,
                v,
                "must be an absolute path (a pipe '|' is not allowed)",
            ));
        }
        request.core_pattern = Some(v.to_owned());
    }
    if let Some(v) = get(pod, key::DATA_CACHE_BUCKET) {
        request.data_cache_bucket = Some(v.to_owned());
    }
    if let Some(v) = get(pod, key::DATA_CACHE_PL) {
        request.data_cache_pl = Some(one_of(
            key::DATA_CACHE_PL,
            v,
            &["PL0", "PL1", "PL2", "PL3"],
        )?);
    }
    if let Some(v) = get(pod, key::DATA_CACHE_IOPS) {
        request.data_cache_provisioned_iops = Some(small(key::DATA_CACHE_IOPS, v, 0..=50_000)?);
    }
    if let Some(v) = get(pod, key::DATA_CACHE_BURSTING) {
        request.data_cache_bursting_enabled = Some(boolean(key::DATA_CACHE_BURSTING, v)?);
    }
    Ok(())
}

/// Plain-HTTP and insecure registries, ACR Enterprise instances.
fn registries_of(pod: &Pod, request: &mut CreateContainerGroup) -> Result<(), Invalid> {
    if let Some(v) = get(pod, key::PLAIN_HTTP_REGISTRY) {
        request.plain_http_registry = Some(registries(key::PLAIN_HTTP_REGISTRY, v)?);
    }
    if let Some(v) = get(pod, key::INSECURE_REGISTRY) {
        request.insecure_registry = Some(registries(key::INSECURE_REGISTRY, v)?);
    }
    let service = get(pod, key::ACR_SERVICE_ARNS).map(str::to_owned);
    let user = get(pod, key::ACR_USER_ARNS).map(str::to_owned);
    for (k, arn) in [
        (key::ACR_SERVICE_ARNS, &service),
        (key::ACR_USER_ARNS, &user),
    ] {
        if let Some(arn) = arn.as_deref().filter(|a| !a.starts_with("acs:ram::")) {
            return Err(invalid(
                k,
                arn,
                "must be a RAM role ARN, acs:ram::<account>:role/<name>",
            ));
        }
    }
    if let Some(v) = get(pod, key::ACR_INSTANCE_IDS) {
        for item in list(v) {
            let (region, id) = match item.split_once(':') {
                Some((region, id)) => (Some(region.to_owned()), id),
                None => (None, item.as_str()),
            };
            if !id.starts_with("cri-") || region.as_deref().is_some_and(str::is_empty) {
                return Err(invalid(
                    key::ACR_INSTANCE_IDS,
                    v,
                    format!("{item:?} is not cri-… or <region>:cri-…"),
                ));
            }
            request.acr_registry_info.push(AcrRegistryInfo {
                instance_id: id.to_owned(),
                region_id: region,
                arn_service: service.clone(),
                arn_user: user.clone(),
                ..AcrRegistryInfo::default()
            });
        }
    }
    Ok(())
}

/// What the node does for the pod itself: its fail strategy and longest Pending time. A value
/// [`apply`] would refuse counts as absent here (the pod has failed for it already).
pub fn behaviour(pod: &Pod) -> Behaviour {
    let fail_strategy = match get(pod, key::FAIL_STRATEGY) {
        Some("fail-fast") => FailStrategy::FailFast,
        _ => FailStrategy::FailBack,
    };
    let max_pending = get(pod, key::MAX_PENDING_MINUTE)
        .and_then(|v| integer(key::MAX_PENDING_MINUTE, v, MAX_PENDING_MINUTES).ok())
        .map_or(DEFAULT_MAX_PENDING, |m| Duration::from_secs(m * 60));
    Behaviour {
        fail_strategy,
        max_pending,
    }
}

/// Applies the pod's annotations to its request (after [`super::translate`] built it from the
/// spec and the node's placement): parameters set, node defaults overridden.
///
/// # Errors
/// [`Invalid`] for the first malformed annotation.
pub fn apply(
    pod: &Pod,
    defaults: &Defaults,
    request: &mut CreateContainerGroup,
) -> Result<Applied, Invalid> {
    let mut applied = Applied::default();
    instance(pod, request, &mut applied)?;
    spot(pod, defaults, request, &mut applied)?;
    network(pod, request, &mut applied)?;
    identity(pod, defaults, request)?;
    system(pod, request)?;
    registries_of(pod, request)?;
    if let Some(v) = get(pod, key::FAIL_STRATEGY) {
        one_of(
            key::FAIL_STRATEGY,
            v,
            &["fail-back", "fail-over", "fail-fast"],
        )?;
    }
    if let Some(v) = get(pod, key::MAX_PENDING_MINUTE) {
        integer(key::MAX_PENDING_MINUTE, v, MAX_PENDING_MINUTES)?;
    }
    for (k, why) in WARNED {
        if get(pod, k).is_some() {
            applied
                .warnings
                .push((UNSUPPORTED_REASON, format!("{k}: {why}")));
        }
    }
    let unknown: Vec<&String> = pod
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(key::PREFIX))
        .filter(|k| {
            !TABLE.iter().any(|r| r.key == k.as_str()) && !key::WRITTEN_BACK.contains(&k.as_str())
        })
        .collect();
    for k in unknown {
        applied.warnings.push((
            UNSUPPORTED_REASON,
            format!(
                "{k} is not an annotation of ECI's \"ECI Pod Annotation\" page; it has no effect"
            ),
        ));
    }
    Ok(applied)
}

/// The annotations ECI's virtual node writes on a pod once its group exists ("ECI Pod
/// Annotation", the ones added after scheduling), from the group as described. The group's
/// EIP id is not in `DescribeContainerGroups`: `allocated-eipInstanceId` is written only for
/// an EIP the pod named.
pub fn written_back(pod: &Pod, group: &ContainerGroup) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: &'static str, v: &str| {
        if !v.is_empty() {
            out.insert(k, v.to_owned());
        }
    };
    put(key::INSTANCE_ID, &group.container_group_id);
    let spec = if group.instance_type.is_empty() && group.cpu > 0.0 {
        format!("{:.1}-{:.1}Gi", group.cpu, group.memory)
    } else {
        group.instance_type.clone()
    };
    put(key::INSTANCE_SPEC, &spec);
    put(key::INSTANCE_COMPUTE_CATEGORY, &group.compute_category);
    put(key::ALLOCATED_EIP_ADDRESS, &group.internet_ip);
    if !group.internet_ip.is_empty() {
        put(
            key::ALLOCATED_EIP_INSTANCE_ID,
            get(pod, key::EIP_INSTANCE_ID).unwrap_or_default(),
        );
    }
    put(key::ALLOCATED_IPV6_ADDRESS, &group.ipv6_address);
    put(key::ENI_INSTANCE_ID, &group.eni_instance_id);
    put(key::VPC, &group.vpc_id);
    out
}

/// Of `wanted`, the annotations the pod does not have yet with that value.
pub fn missing(
    pod: &Pod,
    wanted: BTreeMap<&'static str, String>,
) -> BTreeMap<&'static str, String> {
    let have = pod.metadata.annotations.as_ref();
    wanted
        .into_iter()
        .filter(|(k, v)| have.and_then(|a| a.get(*k)) != Some(v))
        .collect()
}

#[cfg(test)]
#[path = "annotations/tests.rs"]
mod tests;
