//! The ECI OpenAPI emulator: the same operations as Alibaba Cloud's ECI (`2018-08-08`) on
//! loopback, faithful in ids, statuses, limits, signatures, quotas and error envelopes.
//!
//! The emulator owns the OpenAPI and the bookkeeping (groups, caches, tokens, matching); it does
//! its data-plane work through an agent over the agent protocol (`crate::agent`), in-process
//! (the `simulated` runtime on a private unix socket) or remote (`--agent unix:///PATH`, or
//! `--agent tcp://ADDR` with its token).
//!
//! # Choices where the reference is silent
//!
//! - Unknown resource id (Delete/Update/Restart/Log/Exec/Metric, Update/DeleteImageCache): 404
//!   `InvalidParameter.NotFound`. DescribeContainerGroups/DescribeImageCaches with unknown ids
//!   answer an empty list.
//! - `ImageSnapshotId` unknown: 400 `InvalidImageSnapshotId.NotFound`; not `Ready`/expired:
//!   400 `IncorrectStatus`. Wrong state for Restart/Update/UpdateImageCache/logs/exec: 400
//!   `IncorrectStatus`. Too many images / size / retention: 400 `InvalidParameter.Image`,
//!   `InvalidParameter.ImageCacheSize`, `InvalidParameter.RetentionDays`; cache quota: 400
//!   `QuotaExceed.ImageCache`. Other bad values: `InvalidParameter.<Name>`; absent ones:
//!   `Missing<Name>` (top level) or `MissingParameter` (nested).
//! - `SignatureDoesNotMatch` is 400 (the gateway's list), `InvalidAccessKeyId.NotFound` 404, a
//!   request with no signature at all `IncompleteSignature`. A refused request does not spend
//!   its nonce. Throttling is 400 `Throttling.Api` with `x-ratelimit-user-api: …TimeLeft:<ms>`.
//! - Quotas per action: writes burst 100 at 20/s, `Describe*`/`List*` 2000/min (issue 3).
//! - Lists are ordered oldest first; `NextToken` is opaque (keyset, so deletions between pages
//!   skip nothing); DescribeImageCaches `Limit` defaults to 20 and is capped at 100;
//!   `MatchImage` answers only usable caches that hold at least one image, best first.
//! - Auto-match counts whole images after normalising references (`nginx` =
//!   `docker.io/library/nginx:latest`); ties go to more matched bytes, then the newest cache.
//! - Delete is allowed in every state; a live group with a preStop hook is `Terminating` until
//!   the agent ran it; deleting a `Terminating` group again is a no-op success.
//! - `ScheduleFailed` when no instance spec reaches the requested vCPU/GiB; image pulls that
//!   fail leave the group `Pending` with `ErrImagePull`/`ImagePullBackOff`, retried.
//! - A cache build pulls (progress 0–90%) then snapshots (100%); total image size above
//!   `ImageCacheSize` fails it (`ImageCacheSizeExceeded`). `ExpireDateTime` = creation +
//!   `RetentionDays` (kept on update), or failure + 24 h. The build instance
//!   (`ContainerGroupId`) is not listed as a group.
//! - `ClientToken` answers repeat the first answer for 24 h; different parameters get
//!   `IdempotentParameterMismatch`. Responses are always JSON (`Format=XML` is ignored).
//! - Exec URLs (`ws://HOST/exec/?s=…`) are single use and valid 30 s; an empty frame ends stdin.
//! - Chaos runs: `fault.rs` injects 5xx, `Throttling.User`, slow answers and writes applied
//!   then answered 503, at a rate that can change at runtime.
//!
//! Start one in-process:
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use eci_vk::emulator::{Emulator, auth::Credentials};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let emulator = Emulator::builder(Credentials::new("id", "secret")).serve(listener).await?;
//! println!("ECI on http://{}", emulator.addr());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod clock;
mod disks;
mod driver;
pub mod error;
pub mod fault;
#[doc(hidden)]
pub mod fuzz;
mod http;
pub mod instance;
pub mod matching;
mod ops;
pub mod params;
mod persist;
pub mod spec;
pub mod state;
pub mod sts;
pub mod throttle;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Mutex};
use tonic::transport::Endpoint;

pub use self::{
    auth::Credentials,
    clock::{Clock, IdSource, ManualClock, RandomIds, SequentialIds, SystemClock},
    error::ApiError,
    fault::{FaultConfig, FaultKind},
    throttle::{Quota, Quotas},
};
use crate::agent::{
    AgentChannel, AuthToken, LocalAgent, LocalAgentConfig, LoopbackAgent, SimulatedAgent,
    SimulatedConfig, agent_client, pb::agent_client::AgentClient,
};

/// The only API version of ECI.
pub const API_VERSION: &str = "2018-08-08";

/// Which agent does the data-plane work.
#[derive(Debug, Clone)]
pub enum AgentTarget {
    /// The simulated runtime, served in-process on a private unix socket.
    Simulated(SimulatedConfig),
    /// The real agent (registry pulls, snapshots, runc), served in-process on a private unix
    /// socket.
    Local(LocalAgentConfig),
    /// An agent already running at this URL (`unix:///run/eci-vk/agent.sock`, or
    /// `http://127.0.0.1:7000` for one on TCP, which requires its bearer token).
    Remote {
        /// Where it listens.
        url: String,
        /// The token sent with every call, for an agent that requires one.
        token: Option<AuthToken>,
    },
}

/// Errors of starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The in-process simulated agent could not be started.
    #[error("cannot start the in-process simulated agent")]
    StartAgent(#[from] crate::agent::LoopbackError),
    /// The in-process real agent could not be started.
    #[error("cannot start the in-process agent")]
    StartLocalAgent(#[from] crate::agent::StartError),
    /// The agent URL is not a valid URI.
    #[error("the agent address {url:?} is not a valid URL")]
    AgentUrl {
        /// The URL given.
        url: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The HTTP listener has no local address.
    #[error("cannot read the emulator's listening address")]
    LocalAddr(#[source] std::io::Error),
    /// The state in the data directory cannot be read.
    #[error("cannot load the emulator state from {path}")]
    LoadState {
        /// The state file.
        path: PathBuf,
        /// Why.
        #[source]
        source: persist::PersistError,
    },
}

/// Settings that shape behaviour (not identity).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a running group's agent status is read.
    pub poll_interval: Duration,
    /// Pause between pull attempts of a group whose image failed to pull.
    pub pull_retry: Duration,
    /// Manual image caches per account (ListUsage `MaxImageCacheCount`).
    pub max_image_caches: usize,
    /// vCPUs per account (ListUsage `MaxCpu`).
    pub max_cpu: f64,
    /// When `AutoMatchImageCache` finds no cache holding every image of a group, build an
    /// automatic cache (`auto-create-for-…`) of its images, as current ECI does (reference
    /// §3.6); one per set of images at a time.
    pub auto_create_image_cache: bool,
    /// Automatic caches per account (ListUsage `MaxAutoImageCacheCount`).
    pub max_auto_image_caches: usize,
    /// Instance specs (`2-4Gi`, `ecs.c6.large`) no group can get: a create that names only
    /// these answers `ContainerGroup.NoStock`, one that names others gets the next in order.
    pub sold_out: Vec<String>,
    /// The zone of each vSwitch the account has (`--vswitch-zones`): a group is created in its
    /// vSwitch's zone. A vSwitch not listed is in whichever zone its create names.
    pub vswitch_zones: std::collections::BTreeMap<String, String>,
    /// The longest life of temporary credentials issued by the STS and metadata stand-ins
    /// (STS grants 900 s to an hour, ECS six hours; tests shorten it to see refreshes).
    pub sts_credential_ttl: Duration,
    /// The RAM role the metadata stand-in says is attached to the instance.
    pub ecs_ram_role: String,
    /// How long the regular snapshot of a cache takes once its images are pulled; an instant
    /// (Flash) cache is Ready from its local snapshot meanwhile.
    pub regular_snapshot_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            pull_retry: Duration::from_secs(5),
            max_image_caches: 50,
            max_cpu: 1000.0,
            auto_create_image_cache: true,
            max_auto_image_caches: 20,
            sold_out: Vec::new(),
            vswitch_zones: std::collections::BTreeMap::new(),
            sts_credential_ttl: Duration::from_secs(3600),
            ecs_ram_role: "EciVirtualKubeletRole".to_owned(),
            regular_snapshot_delay: Duration::ZERO,
        }
    }
}

/// Builds an [`Emulator`].
#[derive(Debug)]
pub struct Builder {
    credentials: Credentials,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    agent: AgentTarget,
    quotas: Quotas,
    settings: Settings,
    data_dir: Option<PathBuf>,
    faults: FaultConfig,
}

/// The emulator (a namespace for [`Emulator::builder`]).
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder accepting exactly `credentials`, with the system clock, random ids, the
    /// in-process simulated agent, the documented quotas and no persistence.
    pub fn builder(credentials: Credentials) -> Builder {
        Builder {
            credentials,
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            agent: AgentTarget::Simulated(SimulatedConfig::default()),
            quotas: Quotas::default(),
            settings: Settings::default(),
            data_dir: None,
            faults: FaultConfig::default(),
        }
    }
}

impl Builder {
    /// Uses `clock` for every timestamp, window and quota.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `ids` for resource and request ids.
    #[must_use]
    pub fn ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// Chooses the agent.
    #[must_use]
    pub fn agent(mut self, agent: AgentTarget) -> Self {
        self.agent = agent;
        self
    }

    /// Sets the per-action quotas.
    #[must_use]
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Sets behaviour knobs.
    #[must_use]
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Injects faults into OpenAPI answers (chaos runs; none by default).
    #[must_use]
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Keeps state in `dir/state.json`, loading it at start.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Starts the agent (if in-process), loads state, resumes unfinished work and serves the
    /// OpenAPI on `listener` until [`Handle::shutdown`].
    ///
    /// # Errors
    /// When the agent cannot be started or reached by URL, or the saved state is unreadable.
    pub async fn serve(self, listener: TcpListener) -> Result<Handle, StartError> {
        let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
        // The in-process agent is on a private unix socket (its directory is 0700), so it
        // needs no token; a remote one on TCP gets its token from the caller.
        let (local_agent, url, token) = match self.agent {
            AgentTarget::Simulated(config) => {
                let agent = SimulatedAgent::new(config).spawn_loopback().await?;
                let url = agent.url();
                (Some(agent), url, None)
            }
            AgentTarget::Local(config) => {
                let agent = LocalAgent::start(config).await?.spawn_loopback().await?;
                let url = agent.url();
                (Some(agent), url, None)
            }
            AgentTarget::Remote { url, token } => (None, url, token),
        };
        // `Endpoint` (unlike `Channel::from_shared`, which takes only an HTTP URI) also reads
        // `unix://` URLs, dialling the socket.
        let channel = Endpoint::from_shared(url.clone())
            .map_err(|source| StartError::AgentUrl {
                url: url.clone(),
                source,
            })?
            .initial_connection_window_size(crate::agent::CONNECTION_WINDOW)
            .connect_lazy();
        let persister = self.data_dir.map(persist::Persister::new);
        let store = match &persister {
            Some(p) => p.load().map_err(|source| StartError::LoadState {
                path: p.path().to_owned(),
                source,
            })?,
            None => state::Store::default(),
        };
        let core = Arc::new(Core {
            settings: self.settings,
            clock: self.clock,
            ids: self.ids,
            verifier: auth::Verifier::new(self.credentials),
            throttle: throttle::Throttle::new(self.quotas),
            faults: fault::Faults::new(self.faults),
            store: Mutex::new(store),
            agent: agent_client(channel, token.as_ref()),
            persister,
            exec_sessions: parking_lot::Mutex::new(HashMap::new()),
            imds_tokens: parking_lot::Mutex::new(HashMap::new()),
            local_agent: local_agent
                .as_ref()
                .and_then(LoopbackAgent::local_agent)
                .cloned(),
            tasks: parking_lot::Mutex::new(tokio::task::JoinSet::new()),
        });
        // The saver is not a lifecycle task: `stop` lets it finish its write, then saves last.
        let saver = core.persister.is_some().then(|| {
            tokio::spawn(tracing::Instrument::instrument(
                persist::save_loop(core.clone()),
                tracing::info_span!("emulator_persist"),
            ))
        });
        if core.faults.watches_file() {
            let watcher = core.clone();
            core.spawn(tracing::info_span!("emulator_faults"), async move {
                fault::reload_loop(watcher).await;
            });
        }
        driver::resume_all(&core).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = http::router(core.clone());
        let span = tracing::info_span!("emulator", %addr);
        let server = tokio::spawn(tracing::Instrument::instrument(
            async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
            },
            span,
        ));
        tracing::info!(%addr, agent = %url, "ECI emulator listening");
        Ok(Handle {
            addr,
            core,
            saver,
            local_agent,
            shutdown: Some(tx),
            server,
        })
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    core: Arc<Core>,
    /// The task saving the state after changes (with a data directory).
    saver: Option<tokio::task::JoinHandle<()>>,
    local_agent: Option<LoopbackAgent>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Handle {
    /// A handle dropped without [`Handle::shutdown`] still stops the server and every lifecycle
    /// task (state is not saved then).
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let tasks = std::mem::take(&mut *self.core.tasks.lock());
        drop(tasks);
        if let Some(saver) = self.saver.take() {
            saver.abort();
        }
    }
}

impl Handle {
    /// Where the OpenAPI listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`, the endpoint for clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Sets the probability (0 to 1) that an OpenAPI call gets an injected fault, as the
    /// `--fault-file` does for the command line; a value outside 0 to 1 is ignored.
    pub fn set_fault_rate(&self, rate: f64) {
        self.core.faults.set_rate(rate);
    }

    /// A copy of the current state (for tests and diagnostics).
    pub async fn snapshot(&self) -> state::Store {
        self.core.store.lock().await.clone()
    }

    /// Waits until the server stops by itself (it only stops on shutdown or a fatal error).
    ///
    /// # Errors
    /// The I/O error that ended the server.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = (&mut self.server).await.unwrap_or(Ok(()));
        self.stop().await;
        result
    }

    /// Stops serving, stops every lifecycle task, saves state and stops an in-process agent.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Err(error) = (&mut self.server).await.unwrap_or(Ok(())) {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "emulator server ended with an error"
            );
        }
        self.stop().await;
    }

    async fn stop(&mut self) {
        let tasks = std::mem::take(&mut *self.core.tasks.lock());
        drop(tasks); // aborts every lifecycle task
        if let Some(persister) = &self.core.persister {
            persister.stop();
        }
        if let Some(saver) = self.saver.take() {
            // Its write in flight finishes first; the last save below is then the newest.
            let _ = saver.await;
        }
        self.core.save_now().await;
        if let Some(agent) = self.local_agent.take() {
            agent.shutdown().await;
        }
    }
}

/// An interactive exec session handed out by ExecContainerCommand.
#[derive(Debug, Clone)]
pub(crate) struct ExecSession {
    pub group_id: String,
    pub container: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub expires: jiff::Timestamp,
}

/// Shared by the HTTP handlers and the lifecycle tasks.
#[derive(Debug)]
pub(crate) struct Core {
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdSource>,
    pub verifier: auth::Verifier,
    pub throttle: throttle::Throttle,
    pub faults: fault::Faults,
    pub store: Mutex<state::Store>,
    pub agent: AgentClient<AgentChannel>,
    /// The in-process real agent, whose counters `/metrics` shows.
    pub local_agent: Option<LocalAgent>,
    pub persister: Option<persist::Persister>,
    pub exec_sessions: parking_lot::Mutex<HashMap<String, ExecSession>>,
    /// IMDSv2 tokens the metadata stand-in gave, with their expiry.
    pub imds_tokens: parking_lot::Mutex<HashMap<String, jiff::Timestamp>>,
    pub tasks: parking_lot::Mutex<tokio::task::JoinSet<()>>,
}

impl Core {
    /// Now, from the clock seam.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// Runs `task` as a tracked lifecycle task (aborted at shutdown).
    pub fn spawn(&self, span: tracing::Span, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock();
        // Reap finished tasks so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(tracing::Instrument::instrument(task, span));
    }

    /// Notes that the state changed, so it is saved soon (with a data directory).
    pub fn changed(&self) {
        if let Some(persister) = &self.persister {
            persister.notify.notify_one();
        }
    }

    /// Saves the state if a data directory is configured.
    pub async fn save_now(&self) {
        if let Some(persister) = &self.persister {
            // Numbered under the store lock, so the writer can drop an older snapshot that
            // reaches it after a newer one.
            let snapshot = persister.snapshot(&*self.store.lock().await);
            if let Err(error) = match snapshot {
                Ok(snapshot) => persister.save(snapshot).await,
                Err(error) => Err(error),
            } {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "cannot save the emulator state"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
