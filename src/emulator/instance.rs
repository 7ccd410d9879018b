//! The instance side of `CreateContainerGroup`: specs tried in order (`InstanceType`), spot,
//! EIP, IPv6, identity and system options, checked as ECI checks them and kept so
//! `DescribeContainerGroups` answers with what the group got.
//!
//! Sources: the CreateContainerGroup reference
//! (<https://www.alibabacloud.com/help/en/eci/developer-reference/api-eci-2018-08-08-createcontainergroup>)
//! for names and limits; "Create an instance by specifying multiple specifications" for the
//! order (the first spec in stock wins); "Configure a fault handling policy for a pod" for the
//! out-of-stock code `ContainerGroup.NoStock`.

use serde::{Deserialize, Serialize};

use super::{error::ApiError, params::Params};
use crate::eci::instance_spec::{ecs_type, parse_spec};

/// Most specs of `InstanceType`.
const MAX_SPECS: usize = 5;
/// Most vSwitches of `VSwitchId`.
const MAX_VSWITCHES: usize = 10;
/// Most security groups of `SecurityGroupId`.
const MAX_SECURITY_GROUPS: usize = 5;

/// What a group asked for beyond its containers, and what it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct InstanceOptions {
    /// `NoSpot`, `SpotWithPriceLimit` or `SpotAsPriceGo` (empty: none given).
    pub spot_strategy: String,
    /// `SpotPriceLimit`.
    pub spot_price_limit: f64,
    /// `SpotDuration`.
    pub spot_duration: Option<i64>,
    /// `StrictSpot`.
    pub strict_spot: bool,
    /// `AutoCreateEip`.
    pub auto_create_eip: bool,
    /// `EipInstanceId`.
    pub eip_instance_id: String,
    /// `EipBandwidth`, Mbit/s.
    pub eip_bandwidth: Option<i64>,
    /// `EipISP`.
    pub eip_isp: String,
    /// `EipCommonBandwidthPackage`.
    pub eip_bandwidth_package: String,
    /// The EIP address the group got.
    pub internet_ip: String,
    /// `FixedIp`.
    pub fixed_ip: bool,
    /// `FixedIpRetainHour`.
    pub fixed_ip_retain_hour: Option<i64>,
    /// The IPv6 address the group got (`Ipv6AddressCount` 1).
    pub ipv6_address: String,
    /// `IngressBandwidth`, bit/s.
    pub ingress_bandwidth: Option<i64>,
    /// `EgressBandwidth`, bit/s.
    pub egress_bandwidth: Option<i64>,
    /// `RamRoleName`.
    pub ram_role_name: String,
    /// `NtpServer.N`.
    pub ntp_servers: Vec<String>,
    /// `CorePattern`.
    pub core_pattern: String,
    /// `GpuDriverVersion`.
    pub gpu_driver_version: String,
    /// `ComputeCategory.N`; the first is the one the group gets.
    pub compute_categories: Vec<String>,
    /// `CpuOptionsCore`.
    pub cpu_options_core: Option<i64>,
    /// `CpuOptionsThreadsPerCore`.
    pub cpu_options_threads_per_core: Option<i64>,
    /// `DataCacheBucket`.
    pub data_cache_bucket: String,
    /// `AcrRegistryInfo.N.InstanceId`.
    pub acr_instances: Vec<String>,
    /// The specs of `InstanceType`, in the order asked.
    pub specs: Vec<String>,
}

/// Parses and checks the instance options of a create whose containers ask for at most `gpus`
/// GPUs each.
///
/// # Errors
/// `InvalidParameter.{Name}` or `Missing{Name}` as ECI answers them.
pub fn parse(p: &Params, gpus: i64) -> Result<InstanceOptions, ApiError> {
    let list = |key: &str| -> Vec<String> {
        p.get(key)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let specs = list("InstanceType");
    if specs.len() > MAX_SPECS {
        return Err(ApiError::invalid(
            "InstanceType",
            format!("at most {MAX_SPECS} specs"),
        ));
    }
    if let Some(bad) = specs
        .iter()
        .find(|s| parse_spec(s).is_none() && ecs_type(s).is_none())
    {
        return Err(ApiError::invalid(
            "InstanceType",
            format!("{bad} is not an instance specification ECI offers"),
        ));
    }
    if list("VSwitchId").len() > MAX_VSWITCHES {
        return Err(ApiError::invalid(
            "VSwitchId",
            format!("at most {MAX_VSWITCHES} vSwitches"),
        ));
    }
    if list("SecurityGroupId").len() > MAX_SECURITY_GROUPS {
        return Err(ApiError::invalid(
            "SecurityGroupId",
            format!("at most {MAX_SECURITY_GROUPS} security groups"),
        ));
    }
    p.one_of("ScheduleStrategy", &["VSwitchOrdered", "VSwitchRandom"])?;
    let spot_strategy = p
        .one_of(
            "SpotStrategy",
            &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"],
        )?
        .unwrap_or_default();
    let spot_price_limit = p.float("SpotPriceLimit")?;
    if spot_strategy == "SpotWithPriceLimit" && spot_price_limit.is_none() {
        return Err(ApiError::missing("SpotPriceLimit"));
    }
    if spot_price_limit.is_some_and(|price| price <= 0.0) {
        return Err(ApiError::invalid("SpotPriceLimit", "must be positive"));
    }
    let spot_duration = p.int("SpotDuration")?;
    if spot_duration.is_some_and(|d| !(0..=1).contains(&d)) {
        return Err(ApiError::invalid("SpotDuration", "must be 0 or 1"));
    }
    let auto_create_eip = p.bool("AutoCreateEip")?.unwrap_or(false);
    let eip_instance_id = p.get("EipInstanceId").unwrap_or_default().to_owned();
    if auto_create_eip && !eip_instance_id.is_empty() {
        return Err(ApiError::invalid(
            "EipInstanceId",
            "cannot be given with AutoCreateEip",
        ));
    }
    let eip_bandwidth = p.int("EipBandwidth")?;
    if eip_bandwidth.is_some_and(|b| !(1..=500).contains(&b)) {
        return Err(ApiError::invalid("EipBandwidth", "must be 1 to 500 Mbit/s"));
    }
    let eip_isp = p.one_of("EipISP", &["BGP", "BGP_PRO"])?.unwrap_or_default();
    let ipv6 = p.int("Ipv6AddressCount")?;
    if ipv6.is_some_and(|n| !(0..=1).contains(&n)) {
        return Err(ApiError::invalid("Ipv6AddressCount", "at most 1"));
    }
    let ntp_servers = p.strings("NtpServer")?;
    if let Some(bad) = ntp_servers
        .iter()
        .find(|s| s.parse::<std::net::IpAddr>().is_err())
    {
        return Err(ApiError::invalid(
            "NtpServer",
            format!("{bad} is not an IP address"),
        ));
    }
    let compute_categories = p.strings("ComputeCategory")?;
    if let Some(bad) = compute_categories
        .iter()
        .find(|c| !matches!(c.as_str(), "economy" | "general"))
    {
        return Err(ApiError::invalid(
            "ComputeCategory",
            format!("{bad} is not economy or general"),
        ));
    }
    let threads = p.int("CpuOptionsThreadsPerCore")?;
    if threads.is_some_and(|t| !(1..=2).contains(&t)) {
        return Err(ApiError::invalid(
            "CpuOptionsThreadsPerCore",
            "must be 1 or 2",
        ));
    }
    p.one_of("DataCachePL", &["PL0", "PL1", "PL2", "PL3"])?;
    let acr_instances = p
        .objects("AcrRegistryInfo")?
        .iter()
        .map(|a| a.required("InstanceId").map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    if gpus > 0
        && !specs
            .iter()
            .any(|s| ecs_type(s).is_some_and(|t| i64::from(t.gpus) >= gpus))
    {
        return Err(ApiError::invalid(
            "Container.Gpu",
            "GPUs need a GPU-accelerated ECS type in InstanceType with at least that many GPUs",
        ));
    }
    Ok(InstanceOptions {
        spot_strategy,
        spot_price_limit: spot_price_limit.unwrap_or(0.0),
        spot_duration,
        strict_spot: p.bool("StrictSpot")?.unwrap_or(false),
        auto_create_eip,
        eip_instance_id,
        eip_bandwidth,
        eip_isp,
        eip_bandwidth_package: p
            .get("EipCommonBandwidthPackage")
            .unwrap_or_default()
            .to_owned(),
        internet_ip: String::new(),
        fixed_ip: p.bool("FixedIp")?.unwrap_or(false),
        fixed_ip_retain_hour: p.int("FixedIpRetainHour")?,
        ipv6_address: if ipv6 == Some(1) {
            "pending".into()
        } else {
            String::new()
        },
        ingress_bandwidth: p.int("IngressBandwidth")?,
        egress_bandwidth: p.int("EgressBandwidth")?,
        ram_role_name: p.get("RamRoleName").unwrap_or_default().to_owned(),
        ntp_servers,
        core_pattern: p.get("CorePattern").unwrap_or_default().to_owned(),
        gpu_driver_version: p.get("GpuDriverVersion").unwrap_or_default().to_owned(),
        compute_categories,
        cpu_options_core: p.int("CpuOptionsCore")?,
        cpu_options_threads_per_core: threads,
        data_cache_bucket: p.get("DataCacheBucket").unwrap_or_default().to_owned(),
        acr_instances,
        specs,
    })
}

/// The spec a group of `options` gets: the first of its specs in stock whose GPUs hold the
/// containers', as `(name, vCPU, GiB)`; `None` when it named none.
///
/// # Errors
/// `ContainerGroup.NoStock` when every spec it named is sold out.
pub fn choose(
    options: &InstanceOptions,
    sold_out: &[String],
    gpus: i64,
) -> Result<Option<(String, f64, f64)>, ApiError> {
    if options.specs.is_empty() {
        return Ok(None);
    }
    options
        .specs
        .iter()
        .filter(|s| !sold_out.contains(s))
        .find_map(|s| match (parse_spec(s), ecs_type(s)) {
            (Some((cpu, memory)), _) if gpus == 0 => Some((s.clone(), cpu, memory)),
            (_, Some(t)) if i64::from(t.gpus) >= gpus => Some((s.clone(), t.cpu, t.memory)),
            _ => None,
        })
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "ContainerGroup.NoStock",
                format!(
                    "Create ECI failed because the specified instance is out of stock. ({})",
                    options.specs.join(",")
                ),
            )
        })
}

/// A number derived from a group's id, so its addresses are stable across restarts.
fn id_hash(group_id: &str) -> u32 {
    group_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// A public address for the group's EIP, from its id (the TEST-NET-3 range, never routed).
pub fn eip_address(group_id: &str) -> String {
    format!("203.0.113.{}", id_hash(group_id) % 254 + 1)
}

/// An IPv6 address for the group, from its id (the documentation prefix, never routed).
pub fn ipv6_address(group_id: &str) -> String {
    format!("2001:db8::{:x}", id_hash(group_id) & 0xffff)
}
