//! Network (vSwitches, security groups, EIP, fixed IP, IPv6, bandwidth), identity (RAM role,
//! resource group, tags, hosts), system (compute category, GPU driver, storage, CPU options,
//! NTP, core dumps, data cache) and registry annotations.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

use super::{
    Applied, Defaults, Invalid, MAX_CUSTOM_TAGS, MAX_SECURITY_GROUPS, MAX_VSWITCHES,
    UNSUPPORTED_REASON,
    values::{bandwidth_bits, boolean, get, ids, invalid, list, one_of, registries, small},
};
use crate::{
    eci::{CreateContainerGroup, Tag, annotation as key, container_spec::HostAlias},
    quantity,
};

/// EIP, fixed IP, IPv6, private IP and bandwidth annotations.
pub(super) fn network(
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
    if let Some(v) = get(pod, key::ENABLE_IPV6)
        && boolean(key::ENABLE_IPV6, v)?
    {
        request.ipv6_address_count = Some(1);
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
pub(super) fn identity(
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
pub(super) fn system(pod: &Pod, request: &mut CreateContainerGroup) -> Result<(), Invalid> {
    if let Some(v) = get(pod, key::COMPUTE_CATEGORY) {
        request.compute_categories = list(v)
            .iter()
            .map(|c| {
                one_of(key::COMPUTE_CATEGORY, c, &["economy", "general"])
                    .map_err(|e| invalid(key::COMPUTE_CATEGORY, v, e.why))
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
pub(super) fn registries_of(pod: &Pod, request: &mut CreateContainerGroup) -> Result<(), Invalid> {
    if let Some(v) = get(pod, key::PLAIN_HTTP_REGISTRY) {
        request.plain_http_registry = Some(registries(key::PLAIN_HTTP_REGISTRY, v)?);
    }
    if let Some(v) = get(pod, key::INSECURE_REGISTRY) {
        request.insecure_registry = Some(registries(key::INSECURE_REGISTRY, v)?);
    }
    request.acr_registry_info = crate::eci::annotation_value::acr_registries(
        get(pod, key::ACR_INSTANCE_IDS),
        get(pod, key::ACR_SERVICE_ARNS),
        get(pod, key::ACR_USER_ARNS),
    )?;
    Ok(())
}
