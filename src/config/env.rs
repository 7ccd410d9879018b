//! Every environment variable of every subcommand, in one table.
//!
//! One prefix, `VK_`, for everything of ours. Three names are not ours and keep the spelling
//! their ecosystems use: `KUBECONFIG` (kubectl's), and `ALIBABA_CLOUD_ACCESS_KEY_ID` /
//! `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (Alibaba Cloud's SDKs and CLI). A test in
//! [`super`] checks that every flag of every subcommand names one of these.

// === shared by several subcommands ===

/// `--log-format` (every subcommand).
pub const ENV_LOG_FORMAT: &str = "VK_LOG_FORMAT";
/// `--kubeconfig` (`run`, `explain-match`): kubectl's own variable.
pub const ENV_KUBECONFIG: &str = "KUBECONFIG";
/// `--runtime` (`run`'s in-process emulator, `emulator`).
pub const ENV_RUNTIME: &str = "VK_RUNTIME";
/// `--data-dir` (`run`, `emulator`).
pub const ENV_DATA_DIR: &str = "VK_DATA_DIR";
/// `--metrics-addr` (`run`, `agent`).
pub const ENV_METRICS_ADDR: &str = "VK_METRICS_ADDR";
/// `--access-key-id` of the emulator: the AccessKey the SDKs read.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// The emulator's AccessKey secret when `--access-key-secret-file` is not given (the
/// environment or a file only: a flag would show it in `ps` and shell history).
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";

// === run ===

/// `--node-name`.
pub const ENV_NODE_NAME: &str = "VK_NODE_NAME";
/// `--region`.
pub const ENV_REGION: &str = "VK_REGION";
/// `--zone`.
pub const ENV_ZONE: &str = "VK_ZONE_ID";
/// `--vswitch`.
pub const ENV_VSWITCH: &str = "VK_VSWITCH_ID";
/// The emulator's `--vswitch-zones`.
pub const ENV_EMULATOR_VSWITCH_ZONES: &str = "VK_EMULATOR_VSWITCH_ZONES";
/// `--zone-vswitches`.
pub const ENV_ZONE_VSWITCHES: &str = "VK_ZONE_VSWITCHES";
/// `--zone-node-prefix`.
pub const ENV_ZONE_NODE_PREFIX: &str = "VK_ZONE_NODE_PREFIX";
/// `--security-group`.
pub const ENV_SECURITY_GROUP: &str = "VK_SECURITY_GROUP_ID";
/// `--ram-role-name`.
pub const ENV_RAM_ROLE_NAME: &str = "VK_RAM_ROLE_NAME";
/// `--spot-fallback`.
pub const ENV_SPOT_FALLBACK: &str = "VK_SPOT_FALLBACK";
/// `--cpu`.
pub const ENV_CPU: &str = "VK_CAPACITY_CPU";
/// `--memory`.
pub const ENV_MEMORY: &str = "VK_CAPACITY_MEMORY";
/// `--pods`.
pub const ENV_PODS: &str = "VK_CAPACITY_PODS";
/// `--gpu`.
pub const ENV_GPU: &str = "VK_CAPACITY_GPU";
/// `--ephemeral-storage`.
pub const ENV_EPHEMERAL_STORAGE: &str = "VK_CAPACITY_EPHEMERAL_STORAGE";
/// `--taint`.
pub const ENV_TAINT: &str = "VK_TAINT";
/// `--cluster-name`.
pub const ENV_CLUSTER_NAME: &str = "VK_CLUSTER_NAME";
/// `--eci-endpoint`.
pub const ENV_ECI_ENDPOINT: &str = "VK_ECI_ENDPOINT";
/// `--internal-ip`.
pub const ENV_INTERNAL_IP: &str = "VK_INTERNAL_IP";
/// `--cloud`.
pub const ENV_CLOUD: &str = "VK_CLOUD";
/// `--credentials-dir`.
pub const ENV_CREDENTIALS_DIR: &str = "VK_CREDENTIALS_DIR";
/// `--assume-role-arn`.
pub const ENV_ASSUME_ROLE_ARN: &str = "VK_ASSUME_ROLE_ARN";
/// `--role-session-name`.
pub const ENV_ROLE_SESSION_NAME: &str = "VK_ROLE_SESSION_NAME";
/// `--sts-endpoint`.
pub const ENV_STS_ENDPOINT: &str = "VK_STS_ENDPOINT";
/// `--ecs-metadata-endpoint`.
pub const ENV_ECS_METADATA_ENDPOINT: &str = "VK_ECS_METADATA_ENDPOINT";
/// `eci-vk emulator --sts-credential-ttl`.
pub const ENV_EMULATOR_STS_CREDENTIAL_TTL: &str = "VK_EMULATOR_STS_CREDENTIAL_TTL";
/// `eci-vk emulator --ecs-ram-role`.
pub const ENV_EMULATOR_ECS_RAM_ROLE: &str = "VK_EMULATOR_ECS_RAM_ROLE";
/// `--pod-sync-interval`.
pub const ENV_POD_SYNC_INTERVAL: &str = "VK_POD_SYNC_INTERVAL";
/// `--eci-client-budget`.
pub const ENV_ECI_CLIENT_BUDGET: &str = "VK_ECI_CLIENT_BUDGET";
/// `--kube-api-qps`.
pub const ENV_KUBE_API_QPS: &str = "VK_KUBE_API_QPS";
/// `--kube-api-burst`.
pub const ENV_KUBE_API_BURST: &str = "VK_KUBE_API_BURST";
/// `--cluster-dns`.
pub const ENV_CLUSTER_DNS: &str = "VK_CLUSTER_DNS";
/// `--pod-api-server`.
pub const ENV_POD_API_SERVER: &str = "VK_POD_API_SERVER";
/// `--cluster-domain`.
pub const ENV_CLUSTER_DOMAIN: &str = "VK_CLUSTER_DOMAIN";
/// `--kubelet-listen`.
pub const ENV_KUBELET_LISTEN: &str = "VK_KUBELET_LISTEN";
/// `--kubelet-tls-cert`.
pub const ENV_KUBELET_TLS_CERT: &str = "VK_KUBELET_TLS_CERT";
/// `--kubelet-tls-key`.
pub const ENV_KUBELET_TLS_KEY: &str = "VK_KUBELET_TLS_KEY";
/// `--kubelet-client-ca`.
pub const ENV_KUBELET_CLIENT_CA: &str = "VK_KUBELET_CLIENT_CA";
/// `--kubelet-auth`.
pub const ENV_KUBELET_AUTH: &str = "VK_KUBELET_AUTH";
/// `--image-cache-controller`.
pub const ENV_IMAGE_CACHE_CONTROLLER: &str = "VK_IMAGE_CACHE_CONTROLLER";
/// `--image-cache-class`.
pub const ENV_IMAGE_CACHE_CLASS: &str = "VK_IMAGE_CACHE_CLASS";
/// `--auto-match-image-cache` (also `explain-match`).
pub const ENV_AUTO_MATCH_IMAGE_CACHE: &str = "VK_AUTO_MATCH_IMAGE_CACHE";
/// `--auto-create-image-cache` (also `explain-match`).
pub const ENV_AUTO_CREATE_IMAGE_CACHE: &str = "VK_AUTO_CREATE_IMAGE_CACHE";
/// `--image-cache-pull-secret-guard` (also `explain-match`).
pub const ENV_IMAGE_CACHE_PULL_SECRET_GUARD: &str = "VK_IMAGE_CACHE_PULL_SECRET_GUARD";
/// `--image-cache-list-interval`.
pub const ENV_IMAGE_CACHE_LIST_INTERVAL: &str = "VK_IMAGE_CACHE_LIST_INTERVAL";
/// `--image-cache-tag-check-interval`.
pub const ENV_IMAGE_CACHE_TAG_CHECK_INTERVAL: &str = "VK_IMAGE_CACHE_TAG_CHECK_INTERVAL";
/// `--refresh-stale-image-caches`.
pub const ENV_REFRESH_STALE_IMAGE_CACHES: &str = "VK_REFRESH_STALE_IMAGE_CACHES";
/// `--warm-image-cache-grace`.
pub const ENV_WARM_IMAGE_CACHE_GRACE: &str = "VK_WARM_IMAGE_CACHE_GRACE";
/// `--auto-image-cache-idle`.
pub const ENV_AUTO_IMAGE_CACHE_IDLE: &str = "VK_AUTO_IMAGE_CACHE_IDLE";
/// `--profile`.
pub const ENV_PROFILE: &str = "VK_PROFILE";
/// `--profile-namespace`.
pub const ENV_PROFILE_NAMESPACE: &str = "VK_PROFILE_NAMESPACE";
/// `--profile-name`.
pub const ENV_PROFILE_NAME: &str = "VK_PROFILE_NAME";
/// `--webhook-listen`.
pub const ENV_WEBHOOK_LISTEN: &str = "VK_WEBHOOK_LISTEN";
/// `--webhook-tls-cert-file`.
pub const ENV_WEBHOOK_TLS_CERT_FILE: &str = "VK_WEBHOOK_TLS_CERT_FILE";
/// `--webhook-tls-key-file`.
pub const ENV_WEBHOOK_TLS_KEY_FILE: &str = "VK_WEBHOOK_TLS_KEY_FILE";

/// `--leader-elect`.
pub const ENV_LEADER_ELECT: &str = "VK_LEADER_ELECT";
/// `--leader-elect-namespace`.
pub const ENV_LEADER_ELECT_NAMESPACE: &str = "VK_LEADER_ELECT_NAMESPACE";
/// `--leader-elect-identity`.
pub const ENV_LEADER_ELECT_IDENTITY: &str = "VK_LEADER_ELECT_IDENTITY";
/// `--leader-elect-lease-duration`.
pub const ENV_LEADER_ELECT_LEASE_DURATION: &str = "VK_LEADER_ELECT_LEASE_DURATION";
/// `--leader-elect-renew-deadline`.
pub const ENV_LEADER_ELECT_RENEW_DEADLINE: &str = "VK_LEADER_ELECT_RENEW_DEADLINE";
/// `--leader-elect-retry-period`.
pub const ENV_LEADER_ELECT_RETRY_PERIOD: &str = "VK_LEADER_ELECT_RETRY_PERIOD";

// === emulator ===

/// `emulator --listen`.
pub const ENV_EMULATOR_LISTEN: &str = "VK_EMULATOR_LISTEN";
/// `emulator --agent`.
pub const ENV_EMULATOR_AGENT: &str = "VK_EMULATOR_AGENT";
/// `emulator --agent-token-file`.
pub const ENV_EMULATOR_AGENT_TOKEN_FILE: &str = "VK_EMULATOR_AGENT_TOKEN_FILE";
/// `emulator --no-throttle`.
pub const ENV_EMULATOR_NO_THROTTLE: &str = "VK_EMULATOR_NO_THROTTLE";
/// `emulator --auto-create-image-cache`.
pub const ENV_EMULATOR_AUTO_CREATE_IMAGE_CACHE: &str = "VK_EMULATOR_AUTO_CREATE_IMAGE_CACHE";
/// `emulator --image-cache-quota`.
pub const ENV_EMULATOR_IMAGE_CACHE_QUOTA: &str = "VK_EMULATOR_IMAGE_CACHE_QUOTA";
/// `eci-vk emulator --sold-out`.
pub const ENV_EMULATOR_SOLD_OUT: &str = "VK_EMULATOR_SOLD_OUT";
/// `emulator --access-key-secret-file`.
pub const ENV_EMULATOR_ACCESS_KEY_SECRET_FILE: &str = "VK_EMULATOR_ACCESS_KEY_SECRET_FILE";
/// `emulator --fault-rate`.
pub const ENV_EMULATOR_FAULT_RATE: &str = "VK_EMULATOR_FAULT_RATE";
/// `emulator --fault-seed`.
pub const ENV_EMULATOR_FAULT_SEED: &str = "VK_EMULATOR_FAULT_SEED";
/// `emulator --fault-kinds`.
pub const ENV_EMULATOR_FAULT_KINDS: &str = "VK_EMULATOR_FAULT_KINDS";
/// `emulator --fault-slow-ms`.
pub const ENV_EMULATOR_FAULT_SLOW_MS: &str = "VK_EMULATOR_FAULT_SLOW_MS";
/// `emulator --fault-file`.
pub const ENV_EMULATOR_FAULT_FILE: &str = "VK_EMULATOR_FAULT_FILE";
/// `emulator --sim-pull-ms`.
pub const ENV_SIM_PULL_MS: &str = "VK_SIM_PULL_MS";
/// `emulator --sim-snapshot-ms`.
pub const ENV_SIM_SNAPSHOT_MS: &str = "VK_SIM_SNAPSHOT_MS";
/// `emulator --regular-snapshot-ms`.
pub const ENV_EMULATOR_REGULAR_SNAPSHOT_MS: &str = "VK_EMULATOR_REGULAR_SNAPSHOT_MS";
/// `emulator --sim-start-ms`.
pub const ENV_SIM_START_MS: &str = "VK_SIM_START_MS";

// === agent (standalone, and the one inside `run` and `emulator`) ===

/// `agent --listen`.
pub const ENV_AGENT_LISTEN: &str = "VK_AGENT_LISTEN";
/// `agent --auth-token-file`.
pub const ENV_AGENT_AUTH_TOKEN_FILE: &str = "VK_AGENT_AUTH_TOKEN_FILE";
/// `agent --data-dir`.
pub const ENV_AGENT_DATA_DIR: &str = "VK_AGENT_DATA_DIR";
/// `--registry-bandwidth`.
pub const ENV_REGISTRY_BANDWIDTH: &str = "VK_REGISTRY_BANDWIDTH";
/// `--plain-http-registry` (comma-separated).
pub const ENV_PLAIN_HTTP_REGISTRIES: &str = "VK_PLAIN_HTTP_REGISTRIES";
/// `--insecure-registry` (comma-separated).
pub const ENV_INSECURE_REGISTRIES: &str = "VK_INSECURE_REGISTRIES";
/// `--registry-ca-file`.
pub const ENV_REGISTRY_CA_FILE: &str = "VK_REGISTRY_CA_FILE";
/// `--platform`.
pub const ENV_PLATFORM: &str = "VK_PLATFORM";
/// `--bridge`.
pub const ENV_BRIDGE: &str = "VK_BRIDGE";
/// `--pod-cidr`.
pub const ENV_POD_CIDR: &str = "VK_POD_CIDR";
/// `--runc`.
pub const ENV_RUNC: &str = "VK_RUNC";

// === explain-match ===

/// `explain-match --filename`.
pub const ENV_EXPLAIN_FILENAME: &str = "VK_EXPLAIN_FILENAME";
/// `explain-match --selector`.
pub const ENV_EXPLAIN_SELECTOR: &str = "VK_EXPLAIN_SELECTOR";
