//! What becomes of each annotation of ECI's page: the table the README's is generated from,
//! and the annotations that have no parameter (each a Warning).

use crate::eci::annotation as key;

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
pub(super) const WARNED: &[(&str, &str)] = &[
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
