//! Every `k8s.aliyun.com/…` pod annotation key (and the two `kubernetes.io/` bandwidth keys ECI
//! reads), spelt once. The pod controller reads the ones a user writes and writes the ones ECI's
//! managed virtual node adds after scheduling; the image-cache room reads its own.
//!
//! Source: ECI's "ECI Pod Annotation" page
//! (<https://help.aliyun.com/en/eci/user-guide/pod-annotations-1>, Chinese
//! <https://help.aliyun.com/zh/eci/user-guide/pod-annotations>), with the older revisions for
//! the keys the current page moved elsewhere (CPU options, resource group).

// --- Instances ---
/// Specs tried in order: `<vCPU>-<GiB>Gi` and ECS types, at most 5.
pub const USE_SPECS: &str = "k8s.aliyun.com/eci-use-specs";
/// ECS families allowed (`ecs.c6`) or excluded (`-ecs.c6`) for a vCPU/memory spec.
pub const INSTANCE_FAMILY: &str = "k8s.aliyun.com/eci-instance-family";
/// ECS generations allowed (`6`) or excluded (`-5`) for a vCPU/memory spec.
pub const INSTANCE_GENERATION: &str = "k8s.aliyun.com/eci-instance-generation";
/// `economy`/`general`, tried in order.
pub const COMPUTE_CATEGORY: &str = "k8s.aliyun.com/eci-compute-category";
/// GPU driver, e.g. `tesla=535`.
pub const GPU_DRIVER_VERSION: &str = "k8s.aliyun.com/eci-gpu-driver-version";
/// Temporary storage beyond the free 20 GiB, e.g. `50Gi`.
pub const EXTRA_EPHEMERAL_STORAGE: &str = "k8s.aliyun.com/eci-extra-ephemeral-storage";
/// Physical CPU cores.
pub const CPU_OPTION_CORE: &str = "k8s.aliyun.com/eci-cpu-option-core";
/// Threads per core (`1`: no hyper-threading).
pub const CPU_OPTION_HT: &str = "k8s.aliyun.com/eci-cpu-option-ht";

// --- Spot ---
/// `SpotAsPriceGo` or `SpotWithPriceLimit`.
pub const SPOT_STRATEGY: &str = "k8s.aliyun.com/eci-spot-strategy";
/// Hourly price limit, at most three decimals.
pub const SPOT_PRICE_LIMIT: &str = "k8s.aliyun.com/eci-spot-price-limit";
/// Protected hours: `1` (default) or `0`.
pub const SPOT_DURATION: &str = "k8s.aliyun.com/eci-spot-duration";
/// Fall back to pay-as-you-go when no spot instance is in stock.
pub const SPOT_FALLBACK: &str = "k8s.aliyun.com/eci-spot-fallback";

// --- Network ---
/// vSwitches, at most 10.
pub const VSWITCH: &str = "k8s.aliyun.com/eci-vswitch";
/// `VSwitchOrdered` or `VSwitchRandom`.
pub const SCHEDULE_STRATEGY: &str = "k8s.aliyun.com/eci-schedule-strategy";
/// Security groups, at most 5.
pub const SECURITY_GROUP: &str = "k8s.aliyun.com/eci-security-group";
/// Create an EIP and bind it.
pub const WITH_EIP: &str = "k8s.aliyun.com/eci-with-eip";
/// Bind an existing EIP.
pub const EIP_INSTANCE_ID: &str = "k8s.aliyun.com/eci-eip-instanceid";
/// Bandwidth of a created EIP, Mbit/s (no `eci-` prefix).
pub const EIP_BANDWIDTH: &str = "k8s.aliyun.com/eip-bandwidth";
/// Line of a created EIP, `BGP` or `BGP_PRO`.
pub const EIP_ISP: &str = "k8s.aliyun.com/eip-isp";
/// Shared bandwidth package of a created EIP.
pub const EIP_BANDWIDTH_PACKAGE: &str = "k8s.aliyun.com/eip-common-bandwidth-package-id";
/// Charge type of a created EIP (no CreateContainerGroup parameter).
pub const EIP_CHARGE_TYPE: &str = "k8s.aliyun.com/eip-internet-charge-type";
/// Address pool of a created EIP (no CreateContainerGroup parameter).
pub const EIP_ADDRESS_POOL: &str = "k8s.aliyun.com/eip-public-ip-address-pool-id";
/// Keep the pod's IP across re-creations.
pub const FIXED_IP: &str = "k8s.aliyun.com/eci-fixed-ip";
/// Hours a fixed IP is kept (default 48).
pub const FIXED_IP_RETAIN_HOUR: &str = "k8s.aliyun.com/eci-fixed-ip-retain-hour";
/// One IPv6 address.
pub const ENABLE_IPV6: &str = "k8s.aliyun.com/eci-enable-ipv6";
/// IPv6 Internet access.
pub const IPV6_BANDWIDTH_ENABLE: &str = "k8s.aliyun.com/eci-ipv6-bandwidth-enable";
/// IPv6 Internet bandwidth, e.g. `100M` (Mbit/s).
pub const IPV6_BANDWIDTH: &str = "k8s.aliyun.com/eci-ipv6-bandwidth";
/// A chosen private IPv4 address.
pub const PRIVATE_IP_ADDRESS: &str = "k8s.aliyun.com/eci-private-ip-address";
/// Inbound bandwidth, bytes per second (`40M`).
pub const INGRESS_BANDWIDTH: &str = "kubernetes.io/ingress-bandwidth";
/// Outbound bandwidth, bytes per second.
pub const EGRESS_BANDWIDTH: &str = "kubernetes.io/egress-bandwidth";

// --- Identity and placement ---
/// RAM role of the instance.
pub const RAM_ROLE_NAME: &str = "k8s.aliyun.com/eci-ram-role-name";
/// Resource group of the instance.
pub const RESOURCE_GROUP_ID: &str = "k8s.aliyun.com/eci-resource-group-id";
/// Up to 3 `key:value` tags, comma-separated.
pub const CUSTOM_TAGS: &str = "k8s.aliyun.com/eci-custom-tags";
/// `/etc/hosts` entries, `[{"host": …, "ip": …}]`.
pub const CUSTOM_HOSTS: &str = "k8s.aliyun.com/eci-custom-hosts";
/// DNS settings as JSON (no parameter beyond the pod's own `dnsConfig`).
pub const CUSTOM_DNS_CONFIG: &str = "k8s.aliyun.com/eci-custom-dnsconfig";
/// Elasticity-assurance match (no CreateContainerGroup parameter).
pub const PRIVATEPOOL_MATCH: &str = "k8s.aliyun.com/eci-privatepool-matchcriteria";
/// Elasticity-assurance id (no CreateContainerGroup parameter).
pub const PRIVATEPOOL_ID: &str = "k8s.aliyun.com/eci-privatepool-id";

// --- System ---
/// NTP servers.
pub const NTP_SERVER: &str = "k8s.aliyun.com/eci-ntp-server";
/// Core dump path.
pub const CORE_PATTERN: &str = "k8s.aliyun.com/eci-core-pattern";
/// `fail-back` (default), `fail-over` (the same) or `fail-fast`.
pub const FAIL_STRATEGY: &str = "k8s.aliyun.com/eci-fail-strategy";
/// Longest time a pod may stay Pending, 10–1440 minutes (default 240).
pub const MAX_PENDING_MINUTE: &str = "k8s.aliyun.com/eci-max-pending-minute";
/// OSS bucket of a data cache.
pub const DATA_CACHE_BUCKET: &str = "k8s.aliyun.com/eci-data-cache-bucket";
/// Disk performance level of a data cache.
pub const DATA_CACHE_PL: &str = "k8s.aliyun.com/eci-data-cache-pl";
/// Provisioned IOPS of a data cache's disk.
pub const DATA_CACHE_IOPS: &str = "k8s.aliyun.com/eci-data-cache-provisionedIops";
/// Bursting of a data cache's disk.
pub const DATA_CACHE_BURSTING: &str = "k8s.aliyun.com/eci-data-cache-burstingEnabled";
/// SLS log collection switch (no CreateContainerGroup parameter).
pub const SLS_ENABLE: &str = "k8s.aliyun.com/eci-sls-enable";
/// Options of the temporary storage (no CreateContainerGroup parameter).
pub const EPHEMERAL_STORAGE_OPTIONS: &str = "k8s.aliyun.com/eci-ephemeral-storage-options";
/// Eviction on full ephemeral storage (no CreateContainerGroup parameter).
pub const EVICTION_ENABLE: &str = "k8s.aliyun.com/eci-eviction-enable";

// --- Registries ---
/// Registries pulled over plain HTTP.
pub const PLAIN_HTTP_REGISTRY: &str = "k8s.aliyun.com/plain-http-registry";
/// Registries whose certificate is not verified.
pub const INSECURE_REGISTRY: &str = "k8s.aliyun.com/insecure-registry";
/// ACR Enterprise instances, `cri-…` or `<region>:cri-…`.
pub const ACR_INSTANCE_IDS: &str = "k8s.aliyun.com/acr-instance-ids";

/// The role ECI assumes for those instances.
pub const ACR_SERVICE_ARNS: &str = "k8s.aliyun.com/acr-service-arns";
/// The role in the ACR instances' account.
pub const ACR_USER_ARNS: &str = "k8s.aliyun.com/acr-user-arns";

// --- Image caches (read by the image-cache room) ---
/// An explicit image cache.
pub const IMC_ID: &str = "k8s.aliyun.com/eci-imc-id";
/// An explicit image cache, the older name.
pub const IMAGE_SNAPSHOT_ID: &str = "k8s.aliyun.com/eci-image-snapshot-id";
/// Automatic image-cache matching.
pub const AUTO_IMC: &str = "k8s.aliyun.com/eci-auto-imc";
/// Automatic image-cache matching, the older name.
pub const IMAGE_CACHE: &str = "k8s.aliyun.com/eci-image-cache";
/// Only a cache holding every image of the pod counts.
pub const IMC_PERFECT_MATCH: &str = "k8s.aliyun.com/imc-perfect-match";
/// How many of the pod's images a cache must hold.
pub const IMC_MATCH_COUNT_REQUEST: &str = "k8s.aliyun.com/imc-match-count-request";

// --- On ImageCache objects: how the cloud builds the cache (ECI's "ImageCache annotations",
// https://www.alibabacloud.com/help/en/eci/user-guide/annotations-that-can-be-added-to-create-an-image-cache);
// the registry and ACR keys above apply too ---
/// vSwitches of the build instance (up to 10).
pub const IMC_VSWITCH_IDS: &str = "k8s.aliyun.com/vswitch-ids";
/// Security group of the build instance.
pub const IMC_SECURITY_GROUP_ID: &str = "k8s.aliyun.com/security-group-id";
/// Resource group of the cache.
pub const IMC_RESOURCE_GROUP_ID: &str = "k8s.aliyun.com/resource-group-id";
/// CPU architecture of the cache's images (`amd64`, `arm64`).
pub const IMC_CPU_ARCH: &str = "k8s.aliyun.com/imc-cpu-arch";
/// Operating system of the cache's images (`linux`, `windows`).
pub const IMC_OS_TYPE: &str = "k8s.aliyun.com/imc-os-type";
/// Reuse layers of existing caches while building (`AutoMatchImageCache` of CreateImageCache).
pub const IMC_ENABLE_REUSE: &str = "k8s.aliyun.com/imc-enable-reuse";
/// [`IMC_ENABLE_REUSE`], the older name.
pub const IMC_AUTO_MATCH_LEGACY: &str = "k8s.aliyun.com/auto-match-imagecache";
/// An instant cache: a local snapshot usable at once (`Flash`).
pub const IMC_ENABLE_FLASH: &str = "k8s.aliyun.com/imc-enable-flash";
/// Copies of the local snapshot (`FlashCopyCount`; no annotation documented, named here).
pub const IMC_FLASH_COPY_COUNT: &str = "k8s.aliyun.com/imc-flash-copy-count";
/// Copies of the regular snapshot (`StandardCopyCount`; no annotation documented, named here).
pub const IMC_STANDARD_COPY_COUNT: &str = "k8s.aliyun.com/imc-standard-copy-count";
/// `LRU`: ECI may delete the cache, least used first, at the quota (`EliminationStrategy`; no
/// annotation documented, named here).
pub const IMC_ELIMINATION_STRATEGY: &str = "k8s.aliyun.com/imc-elimination-strategy";
/// The EIP giving the build instance Internet access (`EipInstanceId`; the pod annotation's
/// name, [`EIP_INSTANCE_ID`]).
pub const IMC_EIP_INSTANCE_ID: &str = EIP_INSTANCE_ID;

// --- Written by the node after scheduling ---
/// `RequestId` of the `CreateContainerGroup` that made the group.
pub const REQUEST_ID: &str = "k8s.aliyun.com/eci-request-id";
/// The group, `eci-…`.
pub const INSTANCE_ID: &str = "k8s.aliyun.com/eci-instance-id";
/// The spec the group runs on: an ECS type or `<vCPU>-<GiB>Gi`.
pub const INSTANCE_SPEC: &str = "k8s.aliyun.com/eci-instance-spec";
/// The compute category the group runs on.
pub const INSTANCE_COMPUTE_CATEGORY: &str = "k8s.aliyun.com/eci-instance-compute-category";
/// The EIP bound to the group.
pub const ALLOCATED_EIP_INSTANCE_ID: &str = "k8s.aliyun.com/allocated-eipInstanceId";
/// The public address of that EIP.
pub const ALLOCATED_EIP_ADDRESS: &str = "k8s.aliyun.com/allocated-eipAddress";
/// The group's IPv6 address.
pub const ALLOCATED_IPV6_ADDRESS: &str = "k8s.aliyun.com/allocated-ipv6Address";
/// The group's elastic network interface.
pub const ENI_INSTANCE_ID: &str = "k8s.aliyun.com/eni-instance-id";
/// The group's VPC.
pub const VPC: &str = "k8s.aliyun.com/eci-vpc";
/// The image cache the group started from.
pub const MATCHED_IMAGE_CACHE: &str = "k8s.aliyun.com/eci-matched-image-cache";

/// The prefix of ECI's own pod annotations.
pub const PREFIX: &str = "k8s.aliyun.com/";

/// The keys the node writes back: a user who copies a pod's manifest carries them along, so
/// they are never "unknown".
pub const WRITTEN_BACK: &[&str] = &[
    REQUEST_ID,
    INSTANCE_ID,
    INSTANCE_SPEC,
    INSTANCE_COMPUTE_CATEGORY,
    ALLOCATED_EIP_INSTANCE_ID,
    ALLOCATED_EIP_ADDRESS,
    ALLOCATED_IPV6_ADDRESS,
    ENI_INSTANCE_ID,
    VPC,
    MATCHED_IMAGE_CACHE,
];
