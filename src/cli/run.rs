//! `eci-vk run`: wires config, the ECI client (or the in-process emulator), the node, the
//! ImageCache controller and the pod controller (sharing one cache index), and drains them on
//! SIGTERM/SIGINT.
//!
//! The emulator is built here when no cloud credentials are given (DESIGN.md): the node and
//! pod rooms only ever see an [`eci::Client`].

use std::{process::ExitCode, time::Duration};

use anyhow::Context as _;
use futures::FutureExt as _;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use super::{
    Failure,
    agent::{self, local_agent_config},
    exit, kube_client, runtime, shutdown,
};
use crate::{
    config::{CloudMode, RunArgs, RunConfig, Runtime},
    eci, election, imagecache, node, pods, profile,
};

/// How long running tasks get to finish after a signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `eci-vk run` and returns its exit code.
pub(super) fn main(args: RunArgs) -> ExitCode {
    exit("run", start(args))
}

/// Bad input ends here, with exit code 2, before anything starts.
fn start(args: RunArgs) -> Result<(), Failure> {
    let config = args.resolve().map_err(|errors| Failure::usage(&errors))?;
    let credentials =
        cloud_credentials(&config).map_err(|error| Failure::Usage(format!("{error:#}")))?;
    let kubeconfig = match &config.kubeconfig {
        Some(path) => Some(kube_client::read_kubeconfig(path).map_err(|e| Failure::usage(&e))?),
        None => None,
    };
    // The agent's flags are checked whatever runs; the embedded runc agent's whole
    // configuration when it will run.
    agent::parse_options(&config.agent)?;
    let agent = match (&credentials, config.runtime) {
        (None, Runtime::Runc) => Some(local_agent_config(
            &config.agent,
            config.data_dir.as_ref().map(|d| d.join("agent")),
        )?),
        _ => None,
    };
    runtime::block_on(async move {
        serve(config, credentials, kubeconfig, agent)
            .await
            .map_err(|error| Failure::Runtime(format!("{error:#}")))
    })
}

/// Where the ECI OpenAPI is: the cloud (or an override), or an emulator this process runs.
enum Cloud {
    Remote,
    Embedded(crate::emulator::Handle),
}

/// The source the credential chain finds for `config` (`eci::default_chain`); `None` means
/// the emulator runs in-process (`--cloud emulator`, or `auto` with nothing found).
fn cloud_credentials(config: &RunConfig) -> anyhow::Result<Option<eci::Provider>> {
    if config.cloud == CloudMode::Emulator {
        return Ok(None);
    }
    let given = &config.credentials;
    let settings = eci::ChainSettings {
        credentials_dir: given.credentials_dir.clone(),
        assume_role_arn: given.assume_role_arn.clone(),
        role_session_name: given.role_session_name.clone(),
        sts_endpoint: given.sts_endpoint.clone(),
        ecs_metadata_endpoint: given.ecs_metadata_endpoint.clone(),
        discover_ecs_role: config.cloud == CloudMode::Aliyun,
        extra_root_certificates: Vec::new(),
    };
    let found = eci::default_chain(&eci::ProcessEnv, &settings)?;
    if found.is_none() && given.assume_role_arn.is_some() {
        anyhow::bail!(
            "--assume-role-arn needs credentials to assume the role with, and the credential chain found none"
        );
    }
    Ok(found)
}

async fn serve(
    config: RunConfig,
    credentials: Option<eci::Provider>,
    kubeconfig: Option<kube::config::Kubeconfig>,
    agent: Option<crate::agent::LocalAgentConfig>,
) -> anyhow::Result<()> {
    let (credentials, endpoint, cloud) = if let Some(credentials) = credentials {
        let endpoint = match &config.eci_endpoint {
            Some(url) => eci::Endpoint::Url(url.clone()),
            None => eci::Endpoint::Public,
        };
        info!(region = %config.region, endpoint = ?endpoint, node.name = %config.node_name, credentials = credentials.describe(), "using ECI");
        // Temporary credentials are fetched now: a wrong role or token file stops the node
        // here with the reason, rather than failing every call later.
        credentials.current().await.with_context(|| {
            format!(
                "cannot obtain ECI credentials from {}",
                credentials.describe()
            )
        })?;
        (credentials, endpoint, Cloud::Remote)
    } else {
        info!(node.name = %config.node_name, data_dir = ?config.data_dir, runtime = ?config.runtime, "no ECI credentials found (or --cloud emulator): starting the ECI emulator and its agent in-process on loopback");
        let (credentials, handle) = start_emulator(&config, agent).await?;
        let endpoint = eci::Endpoint::Url(handle.endpoint());
        info!(endpoint = %handle.endpoint(), "in-process ECI emulator listening");
        (
            eci::Provider::from(credentials),
            endpoint,
            Cloud::Embedded(handle),
        )
    };
    let metrics = crate::metrics::Metrics::default();
    metrics.watch_credentials(credentials.clone());
    let image_cache_observer = metrics.image_cache_observer();
    let mut eci_config = eci::ClientConfig::new(config.region.clone(), credentials);
    eci_config.endpoint = endpoint;
    eci_config.observer = Some(metrics.eci_observer());
    if !config.eci_client_budget {
        eci_config.budget = eci::BudgetConfig::disabled();
    }
    let kube_config = kube_client::config(kubeconfig).await?;
    // Reads, the election's own Lease and the kubelet API's reviews: never held back.
    let kube =
        kube::Client::try_from(kube_config.clone()).map_err(kube_client::KubeClientError::Build)?;
    // Only the holder of the node's Lease does the node's work (DESIGN.md, "Leadership").
    let (leadership, campaign) = match &config.leader_election {
        Some(settings) => {
            let election = election::ElectionConfig {
                lease_duration: settings.lease_duration,
                renew_deadline: settings.renew_deadline,
                retry_period: settings.retry_period,
                ..election::ElectionConfig::new(
                    &settings.namespace,
                    node_lease_name(&config.node_name),
                    &settings.identity,
                )
            };
            info!(lease.namespace = %election.namespace, lease.name = %election.name, identity = %election.identity, "campaigning to serve the node");
            let (campaign, leadership) =
                election::Campaign::new(election::Elector::new(kube.clone(), election));
            metrics
                .probes()
                .follow_election(leadership.clone(), settings.lease_duration);
            (leadership, Some(campaign))
        }
        None => (election::Leadership::always(), None),
    };
    // The node's writes, to the API server and to ECI, are sent only inside a term: a process
    // frozen past its renew deadline sends nothing when it wakes (crate::election).
    let holds = {
        let leadership = leadership.clone();
        move || leadership.holds_now()
    };
    let pace = config.kube_writes.map(|pace| eci::Quota {
        burst: pace.burst,
        per_second: pace.per_second,
    });
    let kube_writes = kube_client::gated_client(kube_config, holds.clone(), pace)?;
    // The kubelet API's calls are a user's logs and exec, sent to whichever process the API
    // server reaches: not held back.
    let eci_streams = eci::Client::new(eci_config).context("cannot build the ECI client")?;
    let eci = eci_streams.gated(std::sync::Arc::new(holds));
    // Each node's kubelet API is bound before the Node is registered: the Node advertises the
    // port actually bound.
    let kubelet_listeners = bind_kubelet_apis(&config).await;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| {
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
        .boxed()
        .shared()
    };
    let image_caches = imagecache::CacheIndexHandle::new();
    metrics.watch_image_caches(image_caches.clone());
    // The eci-profile starts empty (no overrides, no selectors) until its ConfigMap is read.
    let profile_handle = profile::ProfileHandle::default();
    let pods_config = pods::PodsConfig {
        node_name: config.node_name.clone(),
        placement: pods::Placement {
            cluster: config.cluster_name.clone(),
            node: config.node_name.clone(),
            zone: None,
            vswitch: None,
            security_group: config.security_group.clone(),
            defaults: pods::annotations::Defaults {
                ram_role: config.ram_role_name.clone(),
                spot_fallback: config.spot_fallback,
            },
            host_ip: config.internal_ip.to_string(),
            cluster_dns: match config.cluster_dns {
                Some(ip) => Some(ip.to_string()),
                None => cluster_dns(&kube).await,
            },
            cluster_domain: config.cluster_domain.clone(),
            api_server: match &config.pod_api_server {
                Some(given) => Some(given.clone()),
                None => pod_api_server(&kube).await,
            },
        },
        host_ip: config.internal_ip.to_string(),
        sync_interval: config.pod_sync_interval,
        metrics: metrics.clone(),
        image_caches: image_caches.clone(),
        image_cache_policy: imagecache::Policy {
            auto_default: config.auto_match_image_cache,
            auto_create: config.auto_create_image_cache,
            private_guard: config.image_cache_pull_secret_guard,
        },
        profile: profile_handle.clone(),
    };
    let probes = metrics.probes().clone();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        info!(addr = %listener.local_addr().unwrap_or(addr), "metrics listening");
        let stop = stopped(shutdown_rx.clone());
        let (metrics, probes) = (metrics.clone(), probes.clone());
        tasks.spawn(
            async move {
                if let Err(error) = crate::metrics::serve(listener, metrics, probes, stop).await {
                    warn!(
                        error = &error as &dyn std::error::Error,
                        "metrics server stopped"
                    );
                }
                Ok::<(), anyhow::Error>(())
            }
            .instrument(info_span!("metrics")),
        );
    }
    // Each node, with its zone's vSwitches, its kubelet API and its pods.
    let mut nodes = Vec::with_capacity(config.nodes.len());
    for (zone_node, listener) in config.nodes.iter().zip(kubelet_listeners) {
        let kubelet_port = listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or(config.kubelet_listen.port(), |a| a.port());
        // The kubelet API serves whichever process the Node's address names: the leader
        // writes its own address into the Node when it takes over.
        if let Some(listener) = listener {
            let serve = crate::kubelet::serve(
                listener,
                kubelet_config(&config, &zone_node.name).await?,
                kube.clone(),
                eci_streams.clone(),
                stopped(shutdown_rx.clone()),
            );
            tasks.spawn(
                async move {
                    if let Err(error) = serve.await {
                        tracing::error!(
                            error = &error as &dyn std::error::Error,
                            "kubelet API stopped"
                        );
                    }
                    Ok::<(), anyhow::Error>(())
                }
                .instrument(info_span!("kubelet_api", node.name = %zone_node.name)),
            );
        }
        nodes.push(ServedNode {
            node: node::NodeConfig {
                name: zone_node.name.clone(),
                region: Some(config.region.clone()),
                zone: zone_node.zone.clone(),
                taint: config.taint.clone(),
                capacity: config.capacity.clone(),
                internal_ip: config.internal_ip,
                kubelet_port,
            },
            pods: zone_pods(&pods_config, zone_node),
        });
    }
    // Every replica follows the eci-profile and serves its webhook, leader or not: the API
    // server calls whichever replica the Service picks. Its events go through the gated client,
    // so only the leader writes them.
    if let Some(source) = &config.profile {
        tasks.spawn(
            profile::follow(
                kube_writes.clone(),
                source.namespace.clone(),
                source.name.clone(),
                profile_handle.clone(),
                stopped(shutdown_rx.clone()),
            )
            .map(|()| Ok::<(), anyhow::Error>(()))
            .instrument(info_span!("profile")),
        );
    }
    if let Some(webhook) = &config.webhook {
        let listener = tokio::net::TcpListener::bind(webhook.listen)
            .await
            .with_context(|| format!("cannot listen on {} for the webhook", webhook.listen))?;
        let serve = profile::webhook::serve(
            listener,
            (webhook.cert.clone(), webhook.key.clone()),
            kube.clone(),
            profile_handle.clone(),
            profile::Placement::virtual_nodes(config.taint.clone()),
            stopped(shutdown_rx.clone()),
        );
        tasks.spawn(
            async move {
                serve
                    .await
                    .context("the eci-profile webhook cannot serve (see --webhook-tls-cert-file)")
            }
            .instrument(info_span!("webhook")),
        );
    }
    let freshness = config
        .image_cache_tag_check_interval
        .map(|interval| {
            Ok::<_, anyhow::Error>(imagecache::Freshness {
                interval,
                refresh: config.refresh_stale_image_caches,
                roots: registry_roots(&config)?,
                plain_http: config.agent.plain_http_registries.clone(),
                insecure: config.agent.insecure_registries.clone(),
            })
        })
        .transpose()?;
    let term = std::sync::Arc::new(Term {
        kube: kube_writes,
        eci,
        nodes,
        probes: probes.clone(),
        leadership: leadership.clone(),
        image_caches,
        image_cache_controller: config.image_cache_controller,
        image_cache_settings: imagecache::Settings {
            observer: Some(image_cache_observer),
            freshness,
            warm: Some(imagecache::Warm {
                interval: config.image_cache_list_interval,
                grace: config.warm_image_cache_grace,
                node_names: config.nodes.iter().map(|n| n.name.clone()).collect(),
                class: config.image_cache_class.clone(),
            }),
            auto_created: config
                .auto_create_image_cache
                .then(|| imagecache::AutoCreated {
                    idle: config.auto_image_cache_idle,
                    interval: config.image_cache_list_interval,
                    class: config.image_cache_class.clone(),
                }),
            ..image_cache_settings(&config)
        },
        cloud_settings: imagecache::CloudSettings {
            cluster_name: config.cluster_name.clone(),
            list_interval: config.image_cache_list_interval,
            ..imagecache::CloudSettings::default()
        },
    });
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let campaigning = campaign.map(|campaign| {
        tokio::spawn(
            campaign
                .run(async move {
                    let _ = release_rx.await;
                })
                .instrument(info_span!("election", node.name = %config.node_name)),
        )
    });
    let stop = stopped(shutdown_rx.clone());
    tasks.spawn(
        election::while_leading(leadership, stop, move |stop| lead(term.clone(), stop))
            .instrument(info_span!("node", node.name = %config.node_name)),
    );

    let outcome = tokio::select! {
        () = shutdown::signal() => {
            info!("signal received; stopping (container groups keep running)");
            Ok(())
        }
        Some(joined) = tasks.join_next() => match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error),
            Err(error) => Err(anyhow::Error::new(error).context("a node task panicked")),
        },
    };
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(deadline = ?DRAIN_DEADLINE, "tasks did not stop within the deadline");
        tasks.abort_all();
    }
    // The node's work has stopped: hand the Lease to a standby now rather than let it lapse.
    let _ = release_tx.send(());
    if let Some(campaigning) = campaigning {
        let _ = tokio::time::timeout(Duration::from_secs(5), campaigning).await;
    }
    if let Cloud::Embedded(handle) = cloud {
        handle.shutdown().await;
    }
    outcome
}

/// What a term of leadership needs to do the node's work.
struct Term {
    kube: kube::Client,
    eci: eci::Client,
    /// The nodes this process serves: one, or one per zone.
    nodes: Vec<ServedNode>,
    probes: crate::metrics::Probes,
    leadership: election::Leadership,
    image_caches: imagecache::CacheIndexHandle,
    image_cache_controller: bool,
    image_cache_settings: imagecache::Settings,
    cloud_settings: imagecache::CloudSettings,
}

/// One virtual node: its Node object and its pods' settings.
struct ServedNode {
    node: node::NodeConfig,
    pods: pods::PodsConfig,
}

/// The pod settings of `zone_node`: its name, zone and vSwitches.
fn zone_pods(base: &pods::PodsConfig, zone_node: &crate::config::ZoneNode) -> pods::PodsConfig {
    let mut config = base.clone();
    config.node_name.clone_from(&zone_node.name);
    config.placement.node.clone_from(&zone_node.name);
    config.placement.zone.clone_from(&zone_node.zone);
    config.placement.vswitch =
        (!zone_node.vswitches.is_empty()).then(|| zone_node.vswitches.join(","));
    config
}

/// For a node in a zone with vSwitches of its own: keeps the Node cordoned while its zone is
/// drained (the eci-profile's `vSwitchIds` lists none of them), following the profile until
/// `stop`. `None` for a node the profile cannot drain.
fn zone_drain(
    kube: kube::Client,
    pods: &pods::PodsConfig,
    name: String,
    stop: impl Future<Output = ()>,
) -> Option<impl Future<Output = ()>> {
    if pods.placement.zone.is_none() || pods.placement.vswitches().is_empty() {
        return None;
    }
    let placement = pods.placement.clone();
    let why = move |profile: &profile::Profile| pods::placement::zone_drained(&placement, profile);
    let mut profiles = pods.profile.subscribe();
    let (tx, drained) = watch::channel(why(&profiles.borrow_and_update()));
    let follow = async move {
        while profiles.changed().await.is_ok() {
            let reason = why(&profiles.borrow_and_update());
            tx.send_if_modified(|current| {
                let changed = *current != reason;
                *current = reason;
                changed
            });
        }
        // The handle outlives the node's work; if it ever went away, the last state holds.
        std::future::pending::<()>().await;
    };
    Some(async move {
        tokio::select! {
            () = node::keep_drained(kube, name, drained, stop) => {}
            () = follow => {}
        }
    })
}

/// Binds each node's kubelet API: the first on `--kubelet-listen`, the next ones on the ports
/// after it (or each on a port of its own when that port is 0). A port in use does not stop
/// the node (pods keep being hosted); that node runs without `logs`/`exec`.
async fn bind_kubelet_apis(config: &RunConfig) -> Vec<Option<tokio::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(config.nodes.len());
    for (index, zone_node) in config.nodes.iter().enumerate() {
        let mut addr = config.kubelet_listen;
        if addr.port() != 0 {
            let port = u16::try_from(index)
                .ok()
                .and_then(|i| addr.port().checked_add(i));
            addr.set_port(port.unwrap_or(0));
        }
        listeners.push(match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::error!(node.name = %zone_node.name, %addr, error = &error as &dyn std::error::Error, "cannot listen for the kubelet API; kubectl logs/exec will not reach this node (see --kubelet-listen)");
                None
            }
        });
    }
    listeners
}

/// How long the node heartbeat may go without an attempt before liveness fails (an attempt
/// every 10 s, each within 15 s).
const NODE_HEARTBEAT_STUCK_AFTER: Duration = Duration::from_secs(90);

/// The leader Lease of the processes serving `node`.
fn node_lease_name(node: &str) -> String {
    format!("eci-vk-node-{node}")
}

/// One term of the node's work: register (or adopt) the Node, then keep its heartbeat, the
/// pods and the image caches until `stop` (a graceful end) or until dropped (leadership lost).
async fn lead(term: std::sync::Arc<Term>, stop: election::StopSignal) -> anyhow::Result<()> {
    /// Tells the probes the term ended, however it ends.
    struct Ended(crate::metrics::Probes);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.end_term();
        }
    }
    let _ended = Ended(term.probes.clone());
    let stop = stop.shared();
    let mut served = Vec::with_capacity(term.nodes.len());
    for served_node in &term.nodes {
        let node_uid = match node::register(&term.kube, &served_node.node, true).await {
            Ok(uid) => uid,
            // The term ended while registering (the write was held back): not a failure of
            // the node, the next term registers again.
            Err(_) if !term.leadership.holds_now() => {
                warn!("the leader term ended before the Node was registered");
                return Ok(());
            }
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!(
                    "cannot register the Node {} (does the kubeconfig allow creating nodes?)",
                    served_node.node.name
                )));
            }
        };
        info!(node.name = %served_node.node.name, node.uid = %node_uid, zone = ?served_node.node.zone, "node registered");
        served.push((served_node, node_uid));
    }
    let mut heartbeats = Vec::with_capacity(served.len());
    let mut pods = Vec::with_capacity(served.len());
    let mut drains = Vec::new();
    for (served_node, node_uid) in served {
        if let Some(drain) = zone_drain(
            term.kube.clone(),
            &served_node.pods,
            served_node.node.name.clone(),
            stop.clone(),
        ) {
            drains.push(
                drain.instrument(info_span!("zone_drain", node.name = %served_node.node.name)),
            );
        }
        let (health_tx, health_rx) = watch::channel(true);
        let probes = term.probes.clone();
        heartbeats.push(
            node::run(
                term.kube.clone(),
                served_node.node.clone(),
                node_uid,
                health_rx,
                move || probes.beat("node heartbeat", NODE_HEARTBEAT_STUCK_AFTER),
                stop.clone(),
            )
            .instrument(info_span!("heartbeat", node.name = %served_node.node.name)),
        );
        pods.push(
            pods::run(
                term.kube.clone(),
                term.eci.clone(),
                served_node.pods.clone(),
                health_tx,
                stop.clone(),
            )
            .instrument(info_span!("pods", node.name = %served_node.node.name)),
        );
    }
    let cloud = imagecache::follow_cloud(
        term.eci.clone(),
        term.image_caches.clone(),
        term.cloud_settings.clone(),
        stop.clone(),
    )
    .instrument(info_span!("imagecache_cloud"));
    let hosting = imagecache::host(
        term.kube.clone(),
        term.eci.clone(),
        term.image_cache_settings.clone(),
        term.image_cache_controller,
        term.image_caches.clone(),
        stop,
    )
    .instrument(info_span!("imagecache"));
    let others = async {
        tokio::join!(
            futures::future::join_all(heartbeats),
            futures::future::join_all(drains),
            cloud,
            hosting
        );
        Ok(())
    };
    // A pod controller that cannot start ends the process, as before leadership existed.
    futures::future::try_join(futures::future::try_join_all(pods), others).await?;
    Ok(())
}

/// The CA certificates the node trusts for registries besides the system's
/// (`--registry-ca-file`), read once at start.
///
/// # Errors
/// The file named cannot be read.
fn registry_roots(config: &RunConfig) -> anyhow::Result<std::sync::Arc<Vec<Vec<u8>>>> {
    let roots = match &config.agent.registry_ca_file {
        Some(path) => vec![
            std::fs::read(path)
                .with_context(|| format!("cannot read --registry-ca-file {}", path.display()))?,
        ],
        None => Vec::new(),
    };
    Ok(std::sync::Arc::new(roots))
}

/// Settings of the ImageCache controller this node hosts: the ImageCaches of its class, and
/// one Lease per cluster name and class, held by the process (its leader-election identity,
/// or the node name without election), so several nodes take turns.
fn image_cache_settings(config: &RunConfig) -> imagecache::Settings {
    imagecache::Settings {
        cluster_name: config.cluster_name.clone(),
        label_selector: Some(imagecache::class_selector(
            config.image_cache_class.as_deref(),
        )),
        security_group_id: config.security_group.clone(),
        vswitch_id: config.vswitch.clone(),
        // The process's own identity: a successor of this node waits for the Lease like any
        // other candidate instead of taking it as its own.
        leader_lease: Some(crate::election::ElectionConfig::new(
            "kube-system",
            imagecache::lease_name(&config.cluster_name, config.image_cache_class.as_deref()),
            config
                .leader_election
                .as_ref()
                .map_or(config.node_name.as_str(), |e| e.identity.as_str()),
        )),
        ..imagecache::Settings::default()
    }
}

/// The in-process emulator, with `agent` (the runc agent's configuration), or a simulated
/// agent without one.
async fn start_emulator(
    config: &RunConfig,
    agent: Option<crate::agent::LocalAgentConfig>,
) -> anyhow::Result<(eci::Credentials, crate::emulator::Handle)> {
    use crate::{agent::SimulatedConfig, emulator};
    // A fresh key pair per process: only this process knows it, and it is never logged.
    let id = format!("LTAI-local-{}", uuid::Uuid::new_v4().simple());
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on loopback for the emulator")?;
    let agent = match agent {
        Some(agent) => emulator::AgentTarget::Local(agent),
        None => emulator::AgentTarget::Simulated(SimulatedConfig::default()),
    };
    // The cloud this process stands in for has the vSwitches the node was given, in their
    // zones.
    let vswitch_zones = config
        .nodes
        .iter()
        .filter_map(|n| n.zone.as_ref().map(|zone| (zone, &n.vswitches)))
        .flat_map(|(zone, vswitches)| vswitches.iter().map(|v| (v.clone(), zone.clone())))
        .collect();
    let mut builder =
        emulator::Emulator::builder(emulator::Credentials::new(id.clone(), secret.clone()))
            .agent(agent)
            .settings(emulator::Settings {
                vswitch_zones,
                ..emulator::Settings::default()
            });
    if let Some(dir) = &config.data_dir {
        builder = builder.data_dir(dir.join("emulator"));
    }
    let handle = builder
        .serve(listener)
        .await
        .context("cannot start the in-process ECI emulator")?;
    Ok((eci::Credentials::new(id, secret, None), handle))
}

/// The kubelet API's settings from the node's.
async fn kubelet_config(
    config: &RunConfig,
    node_name: &str,
) -> anyhow::Result<crate::kubelet::KubeletConfig> {
    let serving_cert = match &config.kubelet_tls {
        Some((cert, key)) => crate::kubelet::ServingCert::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        None => crate::kubelet::ServingCert::SelfSigned {
            ips: vec![config.internal_ip],
            names: vec![node_name.to_owned()],
        },
    };
    // Read once here so a missing file stops the node at start with its name; the kubelet
    // API reads it again as it changes.
    if let Some(path) = &config.kubelet_client_ca {
        tokio::fs::read(path)
            .await
            .with_context(|| format!("cannot read --kubelet-client-ca {}", path.display()))?;
    }
    let client_ca = config.kubelet_client_ca.clone();
    Ok(crate::kubelet::KubeletConfig {
        node_name: node_name.to_owned(),
        cluster_name: config.cluster_name.clone(),
        serving_cert,
        client_ca,
        auth: config.kubelet_auth,
        stream_creation_timeout: crate::kubelet::STREAM_CREATION_TIMEOUT,
        stream_idle_timeout: crate::kubelet::STREAM_IDLE_TIMEOUT,
    })
}

/// The ClusterIP and port of default/kubernetes: the API server as pods see it, if the
/// cluster has the Service (else pods get no `KUBERNETES_SERVICE_HOST`, and the log says so).
async fn pod_api_server(kube: &kube::Client) -> Option<(String, u16)> {
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(kube.clone(), "default");
    let found = tokio::time::timeout(Duration::from_secs(10), api.get_opt("kubernetes")).await;
    let address = match found {
        Ok(Ok(Some(service))) => service.spec.and_then(|s| {
            let ip = s.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None")?;
            let ports = s.ports.unwrap_or_default();
            let port = ports
                .iter()
                .find(|p| p.name.as_deref() == Some("https"))
                .or(ports.first())?;
            Some((ip, u16::try_from(port.port).ok()?))
        }),
        _ => None,
    };
    match &address {
        Some((host, port)) => {
            info!(api_server.host = %host, api_server.port = port, "pods reach the API server at default/kubernetes")
        }
        None => info!(
            "no default/kubernetes Service and no --pod-api-server: pods get no KUBERNETES_SERVICE_HOST"
        ),
    }
    address
}

/// The ClusterIP of kube-system/kube-dns, if the cluster has one (else pods use the cloud's
/// resolver, and the log says so).
async fn cluster_dns(kube: &kube::Client) -> Option<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(kube.clone(), "kube-system");
    let found = tokio::time::timeout(Duration::from_secs(10), api.get_opt("kube-dns")).await;
    let ip = match found {
        Ok(Ok(Some(service))) => service
            .spec
            .and_then(|s| s.cluster_ip)
            .filter(|ip| !ip.is_empty() && ip != "None"),
        _ => None,
    };
    match &ip {
        Some(ip) => info!(cluster_dns = %ip, "ClusterFirst pods use the cluster DNS"),
        None => info!(
            "no kube-system/kube-dns Service and no --cluster-dns: ClusterFirst pods use the cloud's resolver"
        ),
    }
    ip
}
