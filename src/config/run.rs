//! Every setting of `eci-vk run`: flag, environment variable and default in one table
//! ([`RunArgs`]), checked once at start into typed values ([`RunConfig`]).
//!
//! Two stages, as STYLE.md §5 asks: clap parses syntax, [`RunArgs::resolve`] checks meaning
//! (quantities, taint, node name) and reports every bad setting in one pass, naming the flag and
//! its environment variable. The ECI AccessKey is not a flag: it comes from the standard
//! `ALIBABA_CLOUD_*` variables (read by the CLI through the ECI client's credentials); without
//! them the node starts the emulator in-process.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{
    CloudMode, Runtime,
    agent::AgentOptions,
    checks::{valid_label_value, valid_node_name, valid_quantity},
    env::*,
    zones::{ZoneNode, parse_zone_vswitches, zone_nodes},
};

/// The node's name when none is given, as ACK's and the user guide's manifests name it.
pub const DEFAULT_NODE_NAME: &str = "virtual-kubelet";

/// The default taint: keeps ordinary pods off the virtual node unless they tolerate it.
pub const DEFAULT_TAINT: &str = "virtual-kubelet.io/provider=alibabacloud:NoSchedule";

/// Flags of `eci-vk run` (syntax only; see [`RunArgs::resolve`]).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file; without it, the in-cluster config or the default kubeconfig is used.
    #[arg(long, env = ENV_KUBECONFIG)]
    pub kubeconfig: Option<PathBuf>,
    /// Name of the Node object this process registers (default `virtual-kubelet`). Given with
    /// `--zone-vswitches` of several zones, it makes one node with every zone's vSwitches
    /// instead of a node per zone.
    #[arg(long, env = ENV_NODE_NAME)]
    pub node_name: Option<String>,
    /// Alibaba Cloud region of the container groups.
    #[arg(long, env = ENV_REGION, default_value = "cn-hangzhou")]
    pub region: String,
    /// Zone for new container groups (the cloud picks one when unset).
    #[arg(long, env = ENV_ZONE)]
    pub zone: Option<String>,
    /// vSwitch for new container groups (several: `vsw-1,vsw-2`).
    #[arg(long, env = ENV_VSWITCH)]
    pub vswitch: Option<String>,
    /// vSwitches by zone, `ZONE=vsw-1,vsw-2;ZONE2=vsw-3`: one virtual node per zone, named
    /// `<zone-node-prefix>-<zone>`, whose pods get that zone's vSwitches only (ACK's node per
    /// zone). Instead of `--zone` and `--vswitch`.
    #[arg(long, env = ENV_ZONE_VSWITCHES)]
    pub zone_vswitches: Option<String>,
    /// What the nodes of `--zone-vswitches` are named after: `<prefix>-<zone>`, or `<prefix>`
    /// alone for a single node without `--node-name`; their leader Lease is
    /// `eci-vk-node-<prefix>`.
    #[arg(long, env = ENV_ZONE_NODE_PREFIX, default_value = DEFAULT_NODE_NAME)]
    pub zone_node_prefix: String,
    /// Security group for new container groups.
    #[arg(long, env = ENV_SECURITY_GROUP)]
    pub security_group: Option<String>,
    /// RAM role of new container groups; a pod's `k8s.aliyun.com/eci-ram-role-name` overrides
    /// it.
    #[arg(long, env = ENV_RAM_ROLE_NAME)]
    pub ram_role_name: Option<String>,
    /// Let spot pods fall back to pay-as-you-go when no spot instance is in stock; a pod's
    /// `k8s.aliyun.com/eci-spot-fallback` overrides it.
    #[arg(long, env = ENV_SPOT_FALLBACK, default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub spot_fallback: bool,
    /// CPU capacity the node advertises (a Kubernetes quantity).
    #[arg(long, env = ENV_CPU, default_value = "1000")]
    pub cpu: String,
    /// Memory capacity the node advertises (a Kubernetes quantity).
    #[arg(long, env = ENV_MEMORY, default_value = "4Ti")]
    pub memory: String,
    /// Pod capacity the node advertises.
    #[arg(long, env = ENV_PODS, default_value = "1000")]
    pub pods: String,
    /// Ephemeral-storage capacity the node advertises (a Kubernetes quantity).
    #[arg(long, env = ENV_EPHEMERAL_STORAGE, default_value = "10Ti")]
    pub ephemeral_storage: String,
    /// NVIDIA GPUs the node advertises (`nvidia.com/gpu`), so GPU pods can be scheduled onto
    /// it; each gets a GPU instance type from its `k8s.aliyun.com/eci-use-specs`.
    #[arg(long, env = ENV_GPU, default_value = "100")]
    pub gpu: String,
    /// Taint of the node, `key[=value]:Effect`, or `none` for no taint.
    #[arg(long, env = ENV_TAINT, default_value = DEFAULT_TAINT)]
    pub taint: String,
    /// Directory for the in-process emulator's state and its agent's images, snapshots and
    /// containers (a temporary directory, removed at exit, when unset).
    #[arg(long, env = ENV_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// The in-process emulator's agent runtime: real containers under runc, or simulated.
    #[arg(long, env = ENV_RUNTIME, value_enum, default_value_t = Runtime::Runc)]
    pub runtime: Runtime,
    /// The in-process agent's flags (registry bandwidth, bridge, pod CIDR, …).
    #[command(flatten)]
    pub agent: AgentOptions,
    /// Cluster name, tagged on every container group so two clusters never share one.
    #[arg(long, env = ENV_CLUSTER_NAME, default_value = "kubernetes")]
    pub cluster_name: String,
    /// ECI OpenAPI endpoint URL (e.g. an emulator), instead of the region's public endpoint.
    #[arg(long, env = ENV_ECI_ENDPOINT)]
    pub eci_endpoint: Option<String>,
    /// Which ECI to use: `auto` (Alibaba Cloud when credentials are found, else the emulator
    /// in-process), `aliyun` (also asks the ECS metadata service for the instance's RAM role),
    /// or `emulator`.
    #[arg(long, env = ENV_CLOUD, value_enum, default_value_t = CloudMode::Auto)]
    pub cloud: CloudMode,
    /// Directory with `access-key-id`, `access-key-secret` and optionally `security-token`
    /// (a mounted Secret), read again every minute; first in the credential chain.
    #[arg(long, env = ENV_CREDENTIALS_DIR)]
    pub credentials_dir: Option<PathBuf>,
    /// Assume this RAM role (STS AssumeRole) with the credentials the chain found.
    #[arg(long, env = ENV_ASSUME_ROLE_ARN)]
    pub assume_role_arn: Option<String>,
    /// Session name of assumed roles (default: ALIBABA_CLOUD_ROLE_SESSION_NAME, else
    /// eci-virtual-kubelet).
    #[arg(long, env = ENV_ROLE_SESSION_NAME)]
    pub role_session_name: Option<String>,
    /// STS endpoint URL (default: https://sts.aliyuncs.com/, or the region's from
    /// ALIBABA_CLOUD_STS_REGION).
    #[arg(long, env = ENV_STS_ENDPOINT)]
    pub sts_endpoint: Option<String>,
    /// ECS metadata service URL for the instance RAM role (default: http://100.100.100.200/).
    #[arg(long, env = ENV_ECS_METADATA_ENDPOINT)]
    pub ecs_metadata_endpoint: Option<String>,
    /// The node's InternalIP (defaults to 127.0.0.1).
    #[arg(long, env = ENV_INTERNAL_IP)]
    pub internal_ip: Option<IpAddr>,
    /// Time between two batched status polls of the node's container groups (`2s`, `500ms`).
    #[arg(long, env = ENV_POD_SYNC_INTERVAL, default_value = "2s", value_parser = super::parse_duration)]
    pub pod_sync_interval: Duration,
    /// Writes a second the node sends to the API server (status, events, Node, deletes),
    /// sustained; 0 sends them unpaced. The default leaves room for pods created at ECI's
    /// create quota (20 a second, about 11 writes each: 7 Events, 2.3 annotation patches, 1.5
    /// status writes in the scale bench) with their status in step, and a third to spare.
    #[arg(long, env = ENV_KUBE_API_QPS, default_value_t = 300.0)]
    pub kube_api_qps: f64,
    /// Writes the node may send at once after a quiet spell, above `--kube-api-qps`.
    #[arg(long, env = ENV_KUBE_API_BURST, default_value_t = 600)]
    pub kube_api_burst: u32,
    /// Spend ECI calls from the client's own copy of ECI's API quotas (writes: a burst of
    /// 100, then 20 a second; reads: 1,900 a minute), so the service never has to throttle.
    /// `false` only against an endpoint without quotas (an emulator run with `--no-throttle`).
    #[arg(long, env = ENV_ECI_CLIENT_BUDGET, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub eci_client_budget: bool,
    /// DNS server of `ClusterFirst` pods (default: the ClusterIP of kube-system/kube-dns).
    #[arg(long, env = ENV_CLUSTER_DNS)]
    pub cluster_dns: Option<IpAddr>,
    /// The API server's address pods can reach, `host:port`: their `KUBERNETES_SERVICE_HOST`
    /// and `_PORT` (default: the ClusterIP and port of default/kubernetes).
    #[arg(long, env = ENV_POD_API_SERVER, value_parser = parse_host_port)]
    pub pod_api_server: Option<(String, u16)>,
    /// Cluster domain of the DNS search path.
    #[arg(long, env = ENV_CLUSTER_DOMAIN, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Serve Prometheus metrics at http://ADDR/metrics (off when unset; port 0 picks one and
    /// logs it).
    #[arg(long, env = ENV_METRICS_ADDR)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Address of the kubelet API (HTTPS: logs, exec, stats). The port advertised in the Node
    /// is the one bound, so port 0 picks a free one.
    #[arg(long, env = ENV_KUBELET_LISTEN, default_value = "0.0.0.0:10250")]
    pub kubelet_listen: std::net::SocketAddr,
    /// PEM serving certificate of the kubelet API (with --kubelet-tls-key); a self-signed one
    /// for the node's InternalIP and name when unset.
    #[arg(long, env = ENV_KUBELET_TLS_CERT)]
    pub kubelet_tls_cert: Option<PathBuf>,
    /// PEM private key of --kubelet-tls-cert.
    #[arg(long, env = ENV_KUBELET_TLS_KEY)]
    pub kubelet_tls_key: Option<PathBuf>,
    /// PEM CA of client certificates (default: the cluster's, from
    /// kube-system/extension-apiserver-authentication).
    #[arg(long, env = ENV_KUBELET_CLIENT_CA)]
    pub kubelet_client_ca: Option<PathBuf>,
    /// Authenticate (TokenReview, client certificates) and authorize (SubjectAccessReview)
    /// kubelet API requests. `false` is for local development only.
    #[arg(long, env = ENV_KUBELET_AUTH, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub kubelet_auth: bool,
    /// Reconcile ImageCache objects into cloud image caches (`false`: only read them to match
    /// pods, e.g. a second node of a cluster whose caches another process builds). Several
    /// nodes with it on take turns through the Lease `kube-system/eci-vk-imagecache-<cluster>`.
    #[arg(long, env = ENV_IMAGE_CACHE_CONTROLLER, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub image_cache_controller: bool,
    /// Reconcile and match only ImageCaches labelled
    /// `eci.alibabacloud.com/image-cache-class=<CLASS>` (nodes without a class take only
    /// ImageCaches without that label), like an IngressClass: several groups of nodes, each
    /// with its own cloud account or region, share one cluster without touching each other's
    /// caches.
    #[arg(long, env = ENV_IMAGE_CACHE_CLASS)]
    pub image_cache_class: Option<String>,
    #[command(flatten)]
    pub image_cache_policy: ImageCachePolicyArgs,
    /// How often the account's image caches are listed (`DescribeImageCaches`), so caches no
    /// ImageCache object names (console, API, other clusters, ECI's automatic ones) are
    /// matched too.
    #[arg(long, env = ENV_IMAGE_CACHE_LIST_INTERVAL, default_value = "60s", value_parser = super::parse_duration)]
    pub image_cache_list_interval: Duration,
    /// How long a cache ECI created on an automatic-match miss may go unused (since it was
    /// last matched, or made) before its ImageCache object, and with it the cloud cache, is
    /// deleted. ECI documents no such time; 7 days is what accounts using automatic caches
    /// report ECI itself keeps them.
    #[arg(long, env = ENV_AUTO_IMAGE_CACHE_IDLE, default_value = "168h", value_parser = super::parse_duration)]
    pub auto_image_cache_idle: Duration,
    /// How often the tags of a Ready cache's images are checked at their registries (a HEAD
    /// each; `--plain-http-registry`, `--insecure-registry` and `--registry-ca-file` apply), so
    /// a tag pushed again is noticed; `0s` never asks a registry (no digests, sizes or staleness).
    #[arg(long, env = ENV_IMAGE_CACHE_TAG_CHECK_INTERVAL, default_value = "60s", value_parser = super::parse_duration)]
    pub image_cache_tag_check_interval: Duration,
    /// Update a cache in the cloud when a tag of its images moved (`false`: only mark it
    /// `Stale`; pods pulling `Always` then skip it).
    #[arg(long, env = ENV_REFRESH_STALE_IMAGE_CACHES, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub refresh_stale_image_caches: bool,
    /// How long the cache of a workload annotated `eci.alibabacloud.com/warm-image-cache:
    /// "true"` is kept after the workload is deleted or stops asking (checked every
    /// `--image-cache-list-interval`).
    #[arg(long, env = ENV_WARM_IMAGE_CACHE_GRACE, default_value = "1h", value_parser = super::parse_duration)]
    pub warm_image_cache_grace: Duration,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    #[command(flatten)]
    pub profile: ProfileArgs,
}

/// The eci-profile (ACK's ConfigMap of cluster-wide virtual-node settings) and the mutating
/// admission webhook that places the pods its selectors match.
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// Follow the eci-profile ConfigMap (`false`: the defaults, no overrides and no selectors).
    #[arg(long = "profile", env = ENV_PROFILE, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub profile_enabled: bool,
    /// Namespace of the eci-profile ConfigMap.
    #[arg(long, env = ENV_PROFILE_NAMESPACE, default_value = "kube-system")]
    pub profile_namespace: String,
    /// Name of the eci-profile ConfigMap.
    #[arg(long, env = ENV_PROFILE_NAME, default_value = "eci-profile")]
    pub profile_name: String,
    /// Serve the eci-profile's mutating admission webhook (HTTPS, `POST /mutate-pods`) on
    /// this address (off when unset).
    #[arg(long, env = ENV_WEBHOOK_LISTEN)]
    pub webhook_listen: Option<std::net::SocketAddr>,
    /// PEM serving certificate (chain) of the webhook; required with --webhook-listen, read
    /// again when it changes.
    #[arg(long, env = ENV_WEBHOOK_TLS_CERT_FILE)]
    pub webhook_tls_cert_file: Option<PathBuf>,
    /// PEM private key of --webhook-tls-cert-file.
    #[arg(long, env = ENV_WEBHOOK_TLS_KEY_FILE)]
    pub webhook_tls_key_file: Option<PathBuf>,
}

/// Where the eci-profile is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSource {
    /// The ConfigMap's namespace.
    pub namespace: String,
    /// The ConfigMap's name.
    pub name: String,
}

/// The webhook's address and serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Address to listen on.
    pub listen: std::net::SocketAddr,
    /// PEM certificate chain file.
    pub cert: PathBuf,
    /// PEM private key file.
    pub key: PathBuf,
}

/// Leader election among the processes that serve one Node (the chart's replicas): only the
/// holder of the Lease `<namespace>/eci-vk-node-<node name>` writes the Node, its heartbeat,
/// pod statuses and calls ECI; the others stand by. The flags and defaults are
/// kube-controller-manager's.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaderElectionArgs {
    /// Take turns through a Lease with the other processes serving this Node (`false`: act
    /// at once, for a single process that is sure to be alone).
    #[arg(long, env = ENV_LEADER_ELECT, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (the chart: its release namespace).
    #[arg(long, env = ENV_LEADER_ELECT_NAMESPACE, default_value = "kube-system")]
    pub leader_elect_namespace: String,
    /// This process's name in the Lease: unique among the processes of one Node (the chart:
    /// the pod name). Default: the host name and a random suffix.
    #[arg(long, env = ENV_LEADER_ELECT_IDENTITY)]
    pub leader_elect_identity: Option<String>,
    /// How long a standby waits after it last saw the Lease renewed before it takes over.
    #[arg(long, env = ENV_LEADER_ELECT_LEASE_DURATION, default_value = "15s", value_parser = super::parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal (below the lease
    /// duration: the difference is the margin that keeps two leaders from overlapping).
    #[arg(long, env = ENV_LEADER_ELECT_RENEW_DEADLINE, default_value = "10s", value_parser = super::parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// Time between two attempts to take or renew the Lease.
    #[arg(long, env = ENV_LEADER_ELECT_RETRY_PERIOD, default_value = "2s", value_parser = super::parse_duration)]
    pub leader_elect_retry_period: Duration,
}

/// Checked leader election settings (`None` in [`RunConfig`] when `--leader-elect=false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// This process's identity.
    pub identity: String,
    /// Lease duration.
    pub lease_duration: Duration,
    /// Renew deadline.
    pub renew_deadline: Duration,
    /// Retry period.
    pub retry_period: Duration,
}

/// How pods that do not say are matched with image caches (`run` and `explain-match`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ImageCachePolicyArgs {
    /// Match pods without `k8s.aliyun.com/eci-auto-imc` with image caches, as current ECI does
    /// (its default is "true"; a pod's "false" turns it off). `false`: only pods that ask.
    #[arg(long, env = ENV_AUTO_MATCH_IMAGE_CACHE, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub auto_match_image_cache: bool,
    /// When no cache holds every image of a matched pod, ask ECI to match (`AutoMatchImageCache`)
    /// so it builds one, as current ECI does on a miss; the cache appears as an ImageCache
    /// labelled `eci.alibabacloud.com/auto-created`.
    #[arg(long, env = ENV_AUTO_CREATE_IMAGE_CACHE, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub auto_create_image_cache: bool,
    /// Start a pod from a cache built with registry logins (its pull secrets) only when the
    /// pod has pull secrets for the same registries, so a cache never hands a private image to
    /// a namespace that could not pull it. `false`: any pod may use any cache, as in ECI.
    #[arg(long, env = ENV_IMAGE_CACHE_PULL_SECRET_GUARD, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub image_cache_pull_secret_guard: bool,
}

/// A taint of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaintSpec {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// What the node advertises as capacity (and allocatable).
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    /// CPU.
    pub cpu: Quantity,
    /// Memory.
    pub memory: Quantity,
    /// Pods.
    pub pods: Quantity,
    /// Ephemeral storage.
    pub ephemeral_storage: Quantity,
    /// NVIDIA GPUs.
    pub gpu: Quantity,
}

/// The checked settings of `eci-vk run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Kubeconfig path, if given.
    pub kubeconfig: Option<PathBuf>,
    /// The node's name, or with a node per zone the prefix of their names: what the leader
    /// Lease (`eci-vk-node-<name>`) and the ImageCache controller's identity are named after.
    pub node_name: String,
    /// The virtual nodes this process registers: one, or one per zone.
    pub nodes: Vec<ZoneNode>,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: Option<String>,
    /// vSwitch.
    pub vswitch: Option<String>,
    /// Security group.
    pub security_group: Option<String>,
    /// RAM role of new groups.
    pub ram_role_name: Option<String>,
    /// Spot fallback default.
    pub spot_fallback: bool,
    /// Capacity.
    pub capacity: Capacity,
    /// Taint, or none.
    pub taint: Option<TaintSpec>,
    /// Emulator state directory.
    pub data_dir: Option<PathBuf>,
    /// The in-process emulator's agent runtime.
    pub runtime: Runtime,
    /// The in-process agent's flags.
    pub agent: AgentOptions,
    /// Cluster name.
    pub cluster_name: String,
    /// Endpoint override.
    pub eci_endpoint: Option<String>,
    /// Which ECI to use.
    pub cloud: CloudMode,
    /// Where credentials come from besides the environment and files.
    pub credentials: CredentialSettings,
    /// InternalIP.
    pub internal_ip: IpAddr,
    /// Pod status poll interval.
    pub pod_sync_interval: Duration,
    /// The pace of the node's writes to the API server; `None`: unpaced.
    pub kube_writes: Option<WritePace>,
    /// Whether the ECI client spends from its copy of ECI's quotas.
    pub eci_client_budget: bool,
    /// Cluster DNS server, if given.
    pub cluster_dns: Option<IpAddr>,
    /// The API server's address for pods, if given.
    pub pod_api_server: Option<(String, u16)>,
    /// Cluster domain.
    pub cluster_domain: String,
    /// Metrics address.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Kubelet API address.
    pub kubelet_listen: std::net::SocketAddr,
    /// Kubelet API serving certificate and key files, if given.
    pub kubelet_tls: Option<(PathBuf, PathBuf)>,
    /// Client CA file of the kubelet API, if given.
    pub kubelet_client_ca: Option<PathBuf>,
    /// Kubelet API authentication and authorization.
    pub kubelet_auth: bool,
    /// Whether this process reconciles ImageCaches.
    pub image_cache_controller: bool,
    /// The class of ImageCaches this node reconciles and matches (`None`: unlabelled ones).
    pub image_cache_class: Option<String>,
    /// Automatic matching for pods that do not say.
    pub auto_match_image_cache: bool,
    /// Having ECI build a cache when none holds every image of a matched pod.
    pub auto_create_image_cache: bool,
    /// Private caches serve only pods with pull secrets for their registries.
    pub image_cache_pull_secret_guard: bool,
    /// Time between two lists of the account's image caches.
    pub image_cache_list_interval: Duration,
    /// Idle time after which an automatically created cache is deleted.
    pub auto_image_cache_idle: Duration,
    /// Time between two checks of a cache's tags; `None`: never.
    pub image_cache_tag_check_interval: Option<Duration>,
    /// Update stale caches in the cloud.
    pub refresh_stale_image_caches: bool,
    /// How long a warmed workload's cache outlives it.
    pub warm_image_cache_grace: Duration,
    /// Leader election among this Node's processes; `None`: this process acts alone.
    pub leader_election: Option<LeaderElection>,
    /// The eci-profile followed; `None` with `--profile=false`.
    pub profile: Option<ProfileSource>,
    /// The eci-profile webhook; `None` when `--webhook-listen` is not given.
    pub webhook: Option<WebhookSettings>,
}

/// The credential chain's settings (the chain itself is the ECI client's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialSettings {
    /// --credentials-dir.
    pub credentials_dir: Option<PathBuf>,
    /// --assume-role-arn.
    pub assume_role_arn: Option<String>,
    /// --role-session-name.
    pub role_session_name: Option<String>,
    /// --sts-endpoint.
    pub sts_endpoint: Option<String>,
    /// --ecs-metadata-endpoint.
    pub ecs_metadata_endpoint: Option<String>,
}

/// A setting that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A capacity is not a non-negative Kubernetes quantity.
    #[error("--{flag} (env {env}) {value:?} is not a quantity like 100, 500m, 4Gi or 1Ti")]
    InvalidQuantity {
        /// The flag.
        flag: &'static str,
        /// Its environment variable.
        env: &'static str,
        /// The value given.
        value: String,
    },
    /// The taint does not parse.
    #[error("--taint (env {ENV_TAINT}) {value:?}: {reason}")]
    InvalidTaint {
        /// The value given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The node name is not a DNS subdomain.
    #[error(
        "--node-name (env {ENV_NODE_NAME}) {value:?} is not a DNS subdomain (lowercase letters, digits, '-', '.', at most 63 characters here)"
    )]
    InvalidNodeName {
        /// The value given.
        value: String,
    },
    /// `--zone-vswitches` does not parse, or its nodes cannot be named.
    #[error("--zone-vswitches (env {ENV_ZONE_VSWITCHES}): {reason}")]
    InvalidZones {
        /// What is wrong.
        reason: String,
    },
    /// `--zone-vswitches` given with `--zone` or `--vswitch`.
    #[error(
        "--zone-vswitches (env {ENV_ZONE_VSWITCHES}) replaces --zone and --vswitch: give one or the other"
    )]
    ZonesAndVswitch,
    /// The cluster name cannot be a tag value.
    #[error("--cluster-name (env {ENV_CLUSTER_NAME}) {value:?} must be 1–128 characters")]
    InvalidClusterName {
        /// The value given.
        value: String,
    },
    /// The endpoint is not an http(s) URL.
    #[error("--eci-endpoint (env {ENV_ECI_ENDPOINT}) {value:?} is not an http:// or https:// URL")]
    InvalidEndpoint {
        /// The value given.
        value: String,
    },
    /// The ImageCache class is not a label value.
    #[error(
        "--image-cache-class (env {ENV_IMAGE_CACHE_CLASS}) {value:?} is not a label value (at most 63 letters, digits, '-', '_', '.', starting and ending alphanumeric)"
    )]
    InvalidImageCacheClass {
        /// The value given.
        value: String,
    },
    /// Only one of the kubelet API's certificate and key is given.
    #[error(
        "--kubelet-tls-cert (env {ENV_KUBELET_TLS_CERT}) and --kubelet-tls-key (env {ENV_KUBELET_TLS_KEY}) go together: give both or neither"
    )]
    KubeletTlsPair,
    /// The leader election timing cannot keep two leaders apart.
    #[error(
        "--leader-elect-retry-period ({retry_period:?}, env {ENV_LEADER_ELECT_RETRY_PERIOD}) < --leader-elect-renew-deadline ({renew_deadline:?}, env {ENV_LEADER_ELECT_RENEW_DEADLINE}) < --leader-elect-lease-duration ({lease_duration:?}, env {ENV_LEADER_ELECT_LEASE_DURATION}) must hold, or two leaders can overlap"
    )]
    LeaderElectionTiming {
        /// The lease duration given.
        lease_duration: Duration,
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The retry period given.
        retry_period: Duration,
    },
    /// The Lease's namespace is not a namespace name.
    #[error(
        "--leader-elect-namespace (env {ENV_LEADER_ELECT_NAMESPACE}) {value:?} is not a namespace name"
    )]
    InvalidLeaderElectionNamespace {
        /// The value given.
        value: String,
    },
    /// The profile's namespace or name is not a Kubernetes name.
    #[error(
        "--profile-namespace (env {ENV_PROFILE_NAMESPACE}) {namespace:?} and --profile-name (env {ENV_PROFILE_NAME}) {name:?} must be a namespace name and a ConfigMap name"
    )]
    InvalidProfileSource {
        /// The namespace given.
        namespace: String,
        /// The name given.
        name: String,
    },
    /// The webhook listens without its certificate and key.
    #[error(
        "--webhook-listen (env {ENV_WEBHOOK_LISTEN}) needs --webhook-tls-cert-file (env {ENV_WEBHOOK_TLS_CERT_FILE}) and --webhook-tls-key-file (env {ENV_WEBHOOK_TLS_KEY_FILE}): the API server calls webhooks over HTTPS only"
    )]
    WebhookTls,
    /// The poll interval is outside 100 ms – 10 min.
    #[error("--pod-sync-interval (env {ENV_POD_SYNC_INTERVAL}) {value:?} is outside 100ms–10m")]
    InvalidInterval {
        /// The value given.
        value: Duration,
    },
    /// The write pace is negative or not a number.
    #[error(
        "--kube-api-qps (env {ENV_KUBE_API_QPS}) {value} is not a number of writes a second (0 turns pacing off)"
    )]
    InvalidKubeApiQps {
        /// The value given.
        value: String,
    },
}

/// A pace of writes: `burst` at once, `per_second` sustained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WritePace {
    /// Writes at once after a quiet spell.
    pub burst: u32,
    /// Writes a second, sustained.
    pub per_second: f64,
}

/// Every bad setting found in one pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl RunArgs {
    /// Checks every setting and returns the typed configuration.
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every bad setting.
    pub fn resolve(self) -> Result<RunConfig, ConfigErrors> {
        let mut errors = Vec::new();
        let mut quantity = |flag, env, value: &str| {
            if valid_quantity(value) {
                Quantity(value.to_owned())
            } else {
                errors.push(ConfigError::InvalidQuantity {
                    flag,
                    env,
                    value: value.to_owned(),
                });
                Quantity(String::new())
            }
        };
        let capacity = Capacity {
            cpu: quantity("cpu", ENV_CPU, &self.cpu),
            memory: quantity("memory", ENV_MEMORY, &self.memory),
            pods: quantity("pods", ENV_PODS, &self.pods),
            ephemeral_storage: quantity(
                "ephemeral-storage",
                ENV_EPHEMERAL_STORAGE,
                &self.ephemeral_storage,
            ),
            gpu: quantity("gpu", ENV_GPU, &self.gpu),
        };
        let taint = match parse_taint(&self.taint) {
            Ok(taint) => taint,
            Err(error) => {
                errors.push(error);
                None
            }
        };
        let name_given = self.node_name.is_some();
        // Without a name, the single node is named as zone nodes are prefixed
        // (`virtual-kubelet` unless told).
        let node_name = self
            .node_name
            .clone()
            .unwrap_or_else(|| self.zone_node_prefix.clone());
        if !valid_node_name(&node_name) {
            errors.push(ConfigError::InvalidNodeName {
                value: node_name.clone(),
            });
        }
        let zone = self.zone.clone().filter(|z| !z.is_empty());
        let vswitch = self.vswitch.clone().filter(|v| !v.is_empty());
        let zones = match parse_zone_vswitches(self.zone_vswitches.as_deref().unwrap_or("")) {
            Ok(zones) => zones,
            Err(reason) => {
                errors.push(ConfigError::InvalidZones { reason });
                Vec::new()
            }
        };
        if !zones.is_empty() && (zone.is_some() || vswitch.is_some()) {
            errors.push(ConfigError::ZonesAndVswitch);
        }
        // A bad --node-name is reported above, once.
        let nodes = match zone_nodes(
            &node_name,
            name_given,
            &self.zone_node_prefix,
            zone.as_deref(),
            vswitch.as_deref(),
            &zones,
        ) {
            Ok(nodes) => nodes,
            Err(_) if !valid_node_name(&node_name) => Vec::new(),
            Err(reason) => {
                errors.push(ConfigError::InvalidZones { reason });
                Vec::new()
            }
        };
        // The Lease and identity of a node per zone are the prefix's.
        let node_name = if nodes.len() > 1 {
            self.zone_node_prefix.clone()
        } else {
            node_name
        };
        if !valid_node_name(&self.zone_node_prefix) {
            errors.push(ConfigError::InvalidZones {
                reason: format!(
                    "--zone-node-prefix {:?} is not a DNS label",
                    self.zone_node_prefix
                ),
            });
        }
        if self.cluster_name.is_empty() || self.cluster_name.len() > 128 {
            errors.push(ConfigError::InvalidClusterName {
                value: self.cluster_name.clone(),
            });
        }
        if let Some(endpoint) = &self.eci_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            errors.push(ConfigError::InvalidEndpoint {
                value: endpoint.clone(),
            });
        }
        if !(self.kube_api_qps.is_finite() && self.kube_api_qps >= 0.0) {
            errors.push(ConfigError::InvalidKubeApiQps {
                value: self.kube_api_qps.to_string(),
            });
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(600))
            .contains(&self.pod_sync_interval)
        {
            errors.push(ConfigError::InvalidInterval {
                value: self.pod_sync_interval,
            });
        }
        let image_cache_class = self
            .image_cache_class
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if let Some(class) = &image_cache_class
            && !valid_label_value(class)
        {
            errors.push(ConfigError::InvalidImageCacheClass {
                value: class.clone(),
            });
        }
        let kubelet_tls = match (self.kubelet_tls_cert, self.kubelet_tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                errors.push(ConfigError::KubeletTlsPair);
                None
            }
        };
        let election = self.leader_election;
        let leader_election = election.leader_elect.then(|| LeaderElection {
            namespace: election.leader_elect_namespace.clone(),
            identity: election
                .leader_elect_identity
                .clone()
                .filter(|i| !i.trim().is_empty())
                .unwrap_or_else(default_identity),
            lease_duration: election.leader_elect_lease_duration,
            renew_deadline: election.leader_elect_renew_deadline,
            retry_period: election.leader_elect_retry_period,
        });
        if let Some(e) = &leader_election
            && !(e.retry_period > Duration::ZERO
                && e.retry_period < e.renew_deadline
                && e.renew_deadline < e.lease_duration)
        {
            errors.push(ConfigError::LeaderElectionTiming {
                lease_duration: e.lease_duration,
                renew_deadline: e.renew_deadline,
                retry_period: e.retry_period,
            });
        }
        if let Some(e) = &leader_election
            && !valid_node_name(&e.namespace)
        {
            errors.push(ConfigError::InvalidLeaderElectionNamespace {
                value: e.namespace.clone(),
            });
        }
        let profile_args = self.profile;
        if profile_args.profile_enabled
            && !(valid_node_name(&profile_args.profile_namespace)
                && valid_object_name(&profile_args.profile_name))
        {
            errors.push(ConfigError::InvalidProfileSource {
                namespace: profile_args.profile_namespace.clone(),
                name: profile_args.profile_name.clone(),
            });
        }
        let profile = profile_args.profile_enabled.then(|| ProfileSource {
            namespace: profile_args.profile_namespace.clone(),
            name: profile_args.profile_name.clone(),
        });
        let webhook = match (
            profile_args.webhook_listen,
            profile_args.webhook_tls_cert_file,
            profile_args.webhook_tls_key_file,
        ) {
            (None, _, _) => None,
            (Some(listen), Some(cert), Some(key)) => Some(WebhookSettings { listen, cert, key }),
            (Some(_), _, _) => {
                errors.push(ConfigError::WebhookTls);
                None
            }
        };
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(RunConfig {
            profile,
            webhook,
            leader_election,
            kubeconfig: self.kubeconfig,
            // What the ImageCache builder is given: the first node's first vSwitch.
            vswitch: nodes
                .first()
                .and_then(|n| n.vswitches.first().cloned())
                .or(vswitch),
            zone,
            node_name,
            nodes,
            region: self.region,
            security_group: self.security_group.filter(|s| !s.is_empty()),
            ram_role_name: self.ram_role_name.filter(|r| !r.is_empty()),
            spot_fallback: self.spot_fallback,
            capacity,
            taint,
            data_dir: self.data_dir,
            runtime: self.runtime,
            agent: self.agent,
            cluster_name: self.cluster_name,
            eci_endpoint: self.eci_endpoint,
            cloud: self.cloud,
            credentials: CredentialSettings {
                credentials_dir: self.credentials_dir,
                assume_role_arn: self.assume_role_arn.filter(|a| !a.trim().is_empty()),
                role_session_name: self.role_session_name.filter(|r| !r.trim().is_empty()),
                sts_endpoint: self.sts_endpoint.filter(|e| !e.trim().is_empty()),
                ecs_metadata_endpoint: self.ecs_metadata_endpoint.filter(|e| !e.trim().is_empty()),
            },
            internal_ip: self
                .internal_ip
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            pod_sync_interval: self.pod_sync_interval,
            eci_client_budget: self.eci_client_budget,
            kube_writes: (self.kube_api_qps > 0.0).then_some(WritePace {
                burst: self.kube_api_burst.max(1),
                per_second: self.kube_api_qps,
            }),
            cluster_dns: self.cluster_dns,
            pod_api_server: self.pod_api_server,
            cluster_domain: self.cluster_domain,
            metrics_addr: self.metrics_addr,
            kubelet_listen: self.kubelet_listen,
            kubelet_tls,
            kubelet_client_ca: self.kubelet_client_ca,
            kubelet_auth: self.kubelet_auth,
            image_cache_controller: self.image_cache_controller,
            image_cache_class,
            auto_match_image_cache: self.image_cache_policy.auto_match_image_cache,
            auto_create_image_cache: self.image_cache_policy.auto_create_image_cache,
            image_cache_pull_secret_guard: self.image_cache_policy.image_cache_pull_secret_guard,
            image_cache_list_interval: self.image_cache_list_interval,
            auto_image_cache_idle: self.auto_image_cache_idle,
            image_cache_tag_check_interval: Some(self.image_cache_tag_check_interval)
                .filter(|d| !d.is_zero()),
            refresh_stale_image_caches: self.refresh_stale_image_caches,
            warm_image_cache_grace: self.warm_image_cache_grace,
        })
    }
}

/// A ConfigMap name: a DNS subdomain (lowercase letters, digits, `-`, `.`, at most 253).
fn valid_object_name(name: &str) -> bool {
    (1..=253).contains(&name.len()) && name.split('.').all(valid_node_name)
}

/// The host name (a pod's name in a cluster) and a random suffix, as client-go's
/// components name themselves: two processes on one host never share an identity.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "eci-vk".to_owned());
    format!("{host}_{}", uuid::Uuid::new_v4().simple())
}

/// `key[=value]:Effect`, or `none`/empty for no taint.
fn parse_taint(value: &str) -> Result<Option<TaintSpec>, ConfigError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let bad = |reason| ConfigError::InvalidTaint {
        value: value.to_owned(),
        reason,
    };
    let (kv, effect) = trimmed
        .rsplit_once(':')
        .ok_or_else(|| bad("expected key[=value]:Effect or none"))?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad(
            "the effect must be NoSchedule, PreferNoSchedule or NoExecute",
        ));
    }
    let (key, val) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() || key.len() > 253 || key.contains(char::is_whitespace) {
        return Err(bad("the key must be a label key"));
    }
    if val.len() > 63 || val.contains(char::is_whitespace) {
        return Err(bad("the value must be a label value"));
    }
    Ok(Some(TaintSpec {
        key: key.to_owned(),
        value: val.to_owned(),
        effect: effect.to_owned(),
    }))
}

/// `host:port` (`[v6]:port` for an IPv6 address), e.g. `10.0.0.1:6443`.
///
/// # Errors
/// Why the text is not a host and a port.
pub fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{text:?} has no host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{text:?} has no port from 1 to 65535"))?;
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        args: RunArgs,
    }

    fn parse(extra: &[&str]) -> Result<RunConfig, ConfigErrors> {
        let mut argv = vec!["run"];
        argv.extend_from_slice(extra);
        Harness::try_parse_from(argv)
            .expect("flags parse")
            .args
            .resolve()
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]).expect("defaults resolve");
        assert_eq!(config.node_name, "virtual-kubelet");
        assert_eq!(config.region, "cn-hangzhou");
        assert_eq!(
            config.taint,
            Some(TaintSpec {
                key: "virtual-kubelet.io/provider".into(),
                value: "alibabacloud".into(),
                effect: "NoSchedule".into(),
            })
        );
        assert_eq!(config.capacity.memory, Quantity("4Ti".into()));
    }

    #[test]
    fn taint_can_be_turned_off_or_changed() {
        assert_eq!(parse(&["--taint", "none"]).expect("none").taint, None);
        let taint = parse(&["--taint", "a/b:NoExecute"])
            .expect("no value")
            .taint
            .expect("a taint");
        assert_eq!((taint.key.as_str(), taint.value.as_str()), ("a/b", ""));
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let errors = parse(&[
            "--cpu",
            "lots",
            "--taint",
            "k=v:Sometimes",
            "--node-name",
            "Bad_Name",
            "--eci-endpoint",
            "ftp://x",
        ])
        .expect_err("bad input");
        assert_eq!(errors.0.len(), 4, "{errors}");
        let line = errors.to_string();
        assert!(
            line.contains("--cpu (env VK_CAPACITY_CPU) \"lots\""),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn zones_make_a_node_each_and_share_the_prefix_lease() {
        let zones = "cn-hangzhou-j=vsw-j;cn-hangzhou-k=vsw-k";
        let config = parse(&["--zone-vswitches", zones]).expect("zones");
        let names: Vec<_> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "virtual-kubelet-cn-hangzhou-j",
                "virtual-kubelet-cn-hangzhou-k"
            ]
        );
        assert_eq!(config.node_name, "virtual-kubelet");
        // One zone, or a name given: one node, named as before.
        let one = parse(&["--zone-vswitches", "cn-hangzhou-j=vsw-j"]).expect("one zone");
        assert_eq!(one.nodes.len(), 1);
        assert_eq!(one.nodes[0].name, "virtual-kubelet");
        let named = parse(&["--zone-vswitches", zones, "--node-name", "edge"]).expect("named");
        assert_eq!(named.nodes.len(), 1);
        assert_eq!(named.nodes[0].vswitches, ["vsw-j", "vsw-k"]);
        // Zones replace --zone and --vswitch.
        let both = parse(&["--zone-vswitches", zones, "--vswitch", "vsw-x"]).expect_err("both");
        assert!(
            both.to_string().contains("replaces --zone and --vswitch"),
            "{both}"
        );
        let prefixed = parse(&[
            "--zone-vswitches",
            "cn-hangzhou-j=vsw-j",
            "--zone-node-prefix",
            "edge",
        ])
        .expect("prefix");
        assert_eq!(
            prefixed.nodes[0].name, "edge",
            "one zone: the prefix is the name"
        );
        let bad = parse(&["--zone-vswitches", "cn-hangzhou-j"]).expect_err("bad");
        assert!(
            bad.to_string()
                .contains("--zone-vswitches (env VK_ZONE_VSWITCHES)"),
            "{bad}"
        );
    }

    #[test]
    fn image_cache_policy_defaults_to_current_eci() {
        let config = parse(&[]).expect("defaults");
        assert!(config.auto_match_image_cache);
        assert!(config.auto_create_image_cache);
        assert_eq!(config.image_cache_list_interval, Duration::from_secs(60));
        assert_eq!(
            config.auto_image_cache_idle,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert!(config.image_cache_pull_secret_guard);
        assert_eq!(
            config.image_cache_tag_check_interval,
            Some(Duration::from_secs(60))
        );
        assert!(config.refresh_stale_image_caches);
        assert_eq!(config.warm_image_cache_grace, Duration::from_secs(3600));
        let quiet = parse(&[
            "--image-cache-tag-check-interval",
            "0s",
            "--refresh-stale-image-caches=false",
            "--image-cache-pull-secret-guard=false",
            "--warm-image-cache-grace",
            "10m",
        ])
        .expect("valid");
        assert_eq!(quiet.image_cache_tag_check_interval, None, "0s never asks");
        assert!(!quiet.refresh_stale_image_caches);
        assert!(!quiet.image_cache_pull_secret_guard);
        assert_eq!(quiet.warm_image_cache_grace, Duration::from_secs(600));
        let guide = parse(&[
            "--auto-match-image-cache=false",
            "--auto-create-image-cache",
            "false",
            "--image-cache-list-interval",
            "5s",
            "--auto-image-cache-idle",
            "30m",
        ])
        .expect("valid");
        assert!(!guide.auto_match_image_cache);
        assert!(!guide.auto_create_image_cache);
        assert_eq!(guide.image_cache_list_interval, Duration::from_secs(5));
        assert_eq!(guide.auto_image_cache_idle, Duration::from_secs(1800));
    }

    #[test]
    fn profile_and_webhook_settings() {
        let config = parse(&[]).expect("defaults");
        assert_eq!(
            config.profile,
            Some(ProfileSource {
                namespace: "kube-system".into(),
                name: "eci-profile".into()
            })
        );
        assert_eq!(config.webhook, None);
        assert_eq!(parse(&["--profile=false"]).expect("off").profile, None);
        let config = parse(&[
            "--webhook-listen",
            "0.0.0.0:9443",
            "--webhook-tls-cert-file",
            "/tls/tls.crt",
            "--webhook-tls-key-file",
            "/tls/tls.key",
            "--profile-name",
            "my-profile",
        ])
        .expect("valid");
        let webhook = config.webhook.expect("a webhook");
        assert_eq!(webhook.listen.port(), 9443);
        assert_eq!(webhook.key, PathBuf::from("/tls/tls.key"));
        assert_eq!(config.profile.expect("profile").name, "my-profile");
        let errors = parse(&[
            "--webhook-listen",
            "0.0.0.0:9443",
            "--webhook-tls-cert-file",
            "/tls/tls.crt",
            "--profile-name",
            "Bad_Name",
        ])
        .expect_err("no key, bad name");
        assert_eq!(errors.0.len(), 2, "{errors}");
        let line = errors.to_string();
        assert!(line.contains("VK_WEBHOOK_TLS_KEY_FILE"), "{line}");
        assert!(line.contains("VK_PROFILE_NAME"), "{line}");
    }

    #[test]
    fn image_cache_settings() {
        let config = parse(&[]).expect("defaults");
        assert!(config.image_cache_controller);
        assert_eq!(config.image_cache_class, None);
        let config = parse(&[
            "--image-cache-controller=false",
            "--image-cache-class",
            "eu-1",
        ])
        .expect("valid");
        assert!(!config.image_cache_controller);
        assert_eq!(config.image_cache_class.as_deref(), Some("eu-1"));
        let errors = parse(&["--image-cache-class", "eu 1"]).expect_err("bad class");
        assert!(
            errors.to_string().contains("VK_IMAGE_CACHE_CLASS"),
            "{errors}"
        );
    }
}
