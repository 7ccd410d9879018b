//! The `ImageCache` controller (DESIGN.md "A cache"): keeps one cloud image cache per object.
//!
//! # Expected flow
//! 1. the finalizer [`FINALIZER`] is added before anything is created in the cloud;
//! 2. the cloud cache is found by the id in the status, else by the tags naming the cluster and
//!    the object (so a restart, or a status lost with a backup restore, adopts it);
//! 3. none found: `imagePullSecrets` are resolved into registry logins and `CreateImageCache`
//!    is called with a `ClientToken` derived from the object's UID and generation, so a retry
//!    after a crash gets the same cache back rather than a second one;
//! 4. found but built from an older spec: `UpdateImageCache` (from `Ready`/`UpdateFailed`),
//!    or, for a cache that failed to build, delete it and create anew;
//! 5. the status is written from `DescribeImageCaches` through the status subresource, and the
//!    object is polled while the cloud works;
//! 6. deletion: `DeleteImageCache`, then the finalizer is removed.
//!
//! # Errors
//! A pull secret that is missing or malformed makes the object `Failed` with an Event naming
//! the Secret; like every other error it is retried with a per-object exponential backoff
//! ([`Settings::error_backoff`]), never in a hot loop and never by exiting.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use kube::{
    Api, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams},
    runtime::{
        Controller, PredicateConfig, WatchStreamExt,
        controller::Action,
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        finalizer::{self, Event as Finalizer},
        reflector, watcher,
    },
};
use parking_lot::Mutex;
use tracing::{Instrument, field};

mod auto;
mod build;
mod cloud;
mod freshness;
mod view;
mod warm;

pub use auto::{ANNOTATION_CLOUD_ID, AutoCreated, LABEL_AUTO_CREATED};
use build::Build;
pub use cloud::object_tag_value;
use cloud::{create, delete_cloud, find_cloud, in_sync, update, update_token};
pub use freshness::Freshness;
pub use warm::{ANNOTATION_WARM, ANNOTATION_WORKLOAD, LABEL_WARM, Warm};

use super::{
    index::CacheIndexHandle,
    pull_secrets::PullSecretError,
    resource::{ImageCache, ImageCacheStatus},
    status,
};
use crate::{
    eci,
    election::{self, Campaign, ElectionConfig, Elector},
};

/// The finalizer this controller owns on every `ImageCache`.
pub const FINALIZER: &str = "eci.alibabacloud.com/image-cache";
/// Field manager of the status this controller writes.
pub const FIELD_MANAGER: &str = "eci-vk-imagecache";
/// Cloud tag naming the cluster (spelt in [`eci::tag`], with its legacy spelling).
pub use crate::eci::tag::CLUSTER as TAG_CLUSTER;
/// Cloud tag naming the `ImageCache` object.
pub use crate::eci::tag::IMAGE_CACHE as TAG_OBJECT;
/// Cloud tag holding the object's UID.
pub use crate::eci::tag::UID as TAG_UID;
/// Annotation on the object: registries pulled over plain HTTP (comma-separated hosts).
pub const ANNOTATION_PLAIN_HTTP: &str = crate::eci::annotation::PLAIN_HTTP_REGISTRY;
/// Annotation on the object: registries whose certificate is not verified.
pub const ANNOTATION_INSECURE: &str = crate::eci::annotation::INSECURE_REGISTRY;

/// Settings of the controller. `Default` suits production; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Name of this cluster, put in a tag on every cloud cache.
    pub cluster_name: String,
    /// Only reconcile objects with these labels (`key=value,...`); all when `None`.
    pub label_selector: Option<String>,
    /// How often a cache the cloud is still building is polled.
    pub poll_interval: Duration,
    /// How often a settled (Ready or Failed) cache is checked again.
    pub resync_interval: Duration,
    /// First and longest delay after an error; doubled per consecutive failure of one object.
    pub error_backoff: (Duration, Duration),
    /// Objects reconciled at once.
    pub concurrency: u16,
    /// Security group for the temporary build instance, if the account needs one.
    pub security_group_id: Option<String>,
    /// vSwitches for the temporary build instance, comma-separated.
    pub vswitch_id: Option<String>,
    /// Reconcile only while holding this Lease, so one of several node processes does the
    /// work; `None` reconciles unconditionally (a single node). The index is kept either way.
    pub leader_lease: Option<ElectionConfig>,
    /// Told of every reconcile and every change of leadership (metrics); none by default.
    pub observer: Option<Observer>,
    /// Make the caches ECI builds for this cluster's pods objects, and delete them when idle;
    /// `None` leaves them to ECI.
    pub auto_created: Option<AutoCreated>,
    /// Read what a Ready cache's images are from their registries, and notice tags that move;
    /// `None` never asks a registry.
    pub freshness: Option<Freshness>,
    /// Cache the images of workloads that ask for it before they scale; `None`: never.
    pub warm: Option<Warm>,
}

/// What the controller tells its [`Observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// One reconcile of one object ended: whether it succeeded, and how long it took.
    Reconciled {
        /// Success.
        ok: bool,
        /// Its duration.
        took: Duration,
    },
    /// This process began (`true`) or stopped (`false`) doing the controller's writes.
    Leading(bool),
    /// A cloud cache became Ready this long after it was created.
    Built {
        /// Creation to Ready, as the reconciler saw it.
        took: Duration,
    },
}

/// A hook called with each [`Report`].
#[derive(Clone)]
pub struct Observer(pub Arc<dyn Fn(Report) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl Settings {
    fn report(&self, report: Report) {
        if let Some(observer) = &self.observer {
            (observer.0)(report);
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cluster_name: "default".into(),
            label_selector: None,
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(300),
            error_backoff: (Duration::from_secs(5), Duration::from_secs(300)),
            // Reads are shared (`view.rs`) and creates wait in the client's budget, so more at
            // once costs the cloud nothing: with 4, 200 caches went out 7 a second (#21).
            concurrency: 16,
            security_group_id: None,
            vswitch_id: None,
            leader_lease: None,
            observer: None,
            auto_created: None,
            freshness: None,
            warm: None,
        }
    }
}

/// What can fail while reconciling one object. Each variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The object has no UID (never for an object read from the API server).
    #[error("image cache {name} has no uid")]
    MissingUid {
        /// The object.
        name: String,
    },
    /// A pull secret could not be used.
    #[error("image cache {name}: pull secrets unusable")]
    PullSecret {
        /// The object.
        name: String,
        /// Which secret and why.
        #[source]
        source: PullSecretError,
    },
    /// A call to ECI failed.
    #[error("image cache {name}: ECI {action} failed")]
    Cloud {
        /// The object.
        name: String,
        /// The action.
        action: &'static str,
        /// The client error.
        #[source]
        source: Box<eci::Error>,
    },
    /// The spec asks for a size or retention ECI cannot take.
    #[error("image cache {name}: {field} {value} is out of range")]
    OutOfRange {
        /// The object.
        name: String,
        /// The field.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// An annotation of the object cannot be understood; the object is Failed until it is
    /// fixed.
    #[error("image cache {name}: malformed annotation")]
    Annotation {
        /// The object.
        name: String,
        /// Which annotation and why.
        #[source]
        source: eci::annotation_value::Invalid,
    },
    /// An image of the spec is not an image reference; the object is Failed until it is fixed.
    #[error("image cache {name}: image {image:?} is not a valid reference")]
    InvalidImage {
        /// The object.
        name: String,
        /// The image as written (at most 200 characters of it).
        image: String,
        /// Why it does not parse.
        #[source]
        source: crate::reference::ReferenceError,
    },
    /// Writing the status failed.
    #[error("image cache {name}: cannot write status")]
    PatchStatus {
        /// The object.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
}

impl ReconcileError {
    /// A stable label for metrics: the variant name.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::MissingUid { .. } => "MissingUid",
            Self::PullSecret { .. } => "PullSecret",
            Self::Cloud { .. } => "Cloud",
            Self::OutOfRange { .. } => "OutOfRange",
            Self::Annotation { .. } => "Annotation",
            Self::InvalidImage { .. } => "InvalidImage",
            Self::PatchStatus { .. } => "PatchStatus",
        }
    }
}

/// Why the controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The CRD is not installed (or not readable): install it with `eci-vk crd | kubectl apply -f -`.
    #[error(
        "cannot list imagecaches.eci.alibabacloud.com; is the CRD installed (eci-vk crd | kubectl apply -f -) and may this identity list it?"
    )]
    CrdUnavailable(#[source] Box<kube::Error>),
}

/// State shared by all reconciliations.
struct Context {
    kube: kube::Client,
    eci: eci::Client,
    settings: Settings,
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
    /// Objects waiting out their error backoff: until when, and at which generation. Our own
    /// status write after a failure comes back as a watch event; without this hold it would
    /// retry at once and turn the backoff into a hot loop against the cloud's quota.
    held: Mutex<HashMap<String, (tokio::time::Instant, Option<i64>)>>,
    /// When each object's images were last checked at their registries.
    freshness_checked: Mutex<HashMap<String, tokio::time::Instant>>,
    /// The checks at registries under way beside the reconciles, and their answers.
    looks: freshness::Looks,
    /// Objects whose registries did not answer a digest check (warned once).
    registry_warned: Mutex<std::collections::HashSet<String>>,
    /// The registries the last create or update of each object logged into, for its status.
    logged_in: Mutex<HashMap<String, Vec<String>>>,
    clock: fn() -> Timestamp,
    /// The listing of this cluster's cloud caches that reconciles share.
    view: view::CloudView,
}

/// The controller, ready to run. Keep [`ImageCacheController::index`] for the matcher.
pub struct ImageCacheController {
    context: Arc<Context>,
    index: CacheIndexHandle,
}

impl ImageCacheController {
    /// A controller reconciling with `kube` and `eci`.
    pub fn new(kube: kube::Client, eci: eci::Client, settings: Settings) -> Self {
        let recorder = Recorder::new(
            kube.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: None,
            },
        );
        let view = view::CloudView::new(&settings.cluster_name);
        Self {
            context: Arc::new(Context {
                kube,
                eci,
                settings,
                recorder,
                failures: Mutex::new(HashMap::new()),
                held: Mutex::new(HashMap::new()),
                freshness_checked: Mutex::new(HashMap::new()),
                looks: freshness::Looks::default(),
                logged_in: Mutex::new(HashMap::new()),
                registry_warned: Mutex::new(std::collections::HashSet::new()),
                clock: Timestamp::now,
                view,
            }),
            index: CacheIndexHandle::new(),
        }
    }

    /// The index of caches this controller keeps current.
    pub fn index(&self) -> CacheIndexHandle {
        self.index.clone()
    }

    /// Keeps `index` current instead of a fresh one, so an index handed out before (to the pod
    /// controller) survives a restart of the controller (say, after the CRD was installed).
    #[must_use]
    pub fn with_index(mut self, index: CacheIndexHandle) -> Self {
        self.index = index;
        self
    }

    /// Runs until `shutdown` completes, then finishes the reconciliations in flight.
    ///
    /// # Errors
    /// [`RunError::CrdUnavailable`] if the CRD cannot be listed at start.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    ) -> Result<(), RunError> {
        let ctx = self.context;
        let api: Api<ImageCache> = Api::all(ctx.kube.clone());
        let mut list = ListParams::default().limit(1);
        if let Some(selector) = &ctx.settings.label_selector {
            list = list.labels(selector);
        }
        api.list(&list)
            .await
            .map_err(|e| RunError::CrdUnavailable(Box::new(e)))?;
        let mut watch = watcher::Config::default();
        if let Some(selector) = &ctx.settings.label_selector {
            watch = watch.labels(selector);
        }
        let shutdown: Stop = (Box::pin(shutdown) as BoxedStop).shared();
        let index = self
            .index
            .follow(api.clone(), watch.clone(), shutdown.clone())
            .instrument(tracing::info_span!("imagecache_index"));
        let cache_index = self.index.clone();
        let reconciling = async move {
            match ctx.settings.leader_lease.clone() {
                None => {
                    ctx.settings.report(Report::Leading(true));
                    work(api, watch, ctx, cache_index, shutdown).await;
                }
                Some(lease) => lead(api, watch, ctx, cache_index, lease, shutdown).await,
            }
        };
        tokio::join!(reconciling, index);
        Ok(())
    }
}

type BoxedStop = std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>;
type Stop = futures::future::Shared<BoxedStop>;

/// Reconciles until `stop`, then finishes the reconciliations in flight.
/// The leader's work: the reconciler, and the keeper of automatically created caches.
async fn work(
    api: Api<ImageCache>,
    watch: watcher::Config,
    ctx: Arc<Context>,
    index: CacheIndexHandle,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let stop = (Box::pin(stop) as BoxedStop).shared();
    let keeping = async {
        if let Some(settings) = ctx.settings.auto_created.clone() {
            auto::keep(ctx.clone(), index, settings, stop.clone()).await;
        }
    };
    let warming = async {
        if let Some(settings) = ctx.settings.warm.clone() {
            warm::keep(ctx.clone(), settings, stop.clone()).await;
        }
    };
    tokio::join!(
        run_controller(api, watch, ctx.clone(), stop.clone()),
        keeping,
        warming
    );
}

async fn run_controller(
    api: Api<ImageCache>,
    watch: watcher::Config,
    ctx: Arc<Context>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let config = kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency);
    // Triggered by what the user or an owner changes, not by the controller's own status
    // writes: each of those used to bring a reconcile, and with it a read of the cloud, on top
    // of the polls (8.4 `DescribeImageCaches` a cache; issue #21). Polls are requeues.
    let (reader, writer) = reflector::store();
    let triggers = watcher(api, watch)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(what_the_reconcile_reads, PredicateConfig::default());
    Controller::for_stream(triggers, reader)
        .with_config(config)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => {
                    tracing::trace!(imagecache.name = %object.name, "reconciled");
                }
                // Reconcile errors are logged by error_policy; these are queue and watch errors.
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "image cache controller"
                ),
            }
        })
        .await;
}

/// Hashes what a reconcile acts on besides the status: the spec (its generation), the labels
/// and annotations that carry build settings, the finalizers (the finalizer helper waits for
/// its own addition to come back) and the deletion mark.
fn what_the_reconcile_reads(object: &ImageCache) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0)
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// Reconciles only while holding the lease (see [`crate::election`]); waits for it otherwise.
async fn lead(
    api: Api<ImageCache>,
    watch: watcher::Config,
    ctx: Arc<Context>,
    index: CacheIndexHandle,
    lease: ElectionConfig,
    shutdown: Stop,
) {
    let (campaign, leadership) = Campaign::new(Elector::new(ctx.kube.clone(), lease));
    let (released_tx, released_rx) = tokio::sync::oneshot::channel::<()>();
    let campaigning = campaign.run(async move {
        let _ = released_rx.await;
    });
    let leading = async {
        let _ = election::while_leading(leadership, shutdown.clone(), |stop| {
            let (api, watch, ctx, index) = (api.clone(), watch.clone(), ctx.clone(), index.clone());
            async move {
                tracing::info!("leading the image cache controller");
                ctx.settings.report(Report::Leading(true));
                // Reported lost when this future is dropped, too.
                let _leading = ReportOnDrop(ctx.clone());
                work(api, watch, ctx.clone(), index, stop).await;
                Ok::<(), std::convert::Infallible>(())
            }
        })
        .await;
        // The reconciliations have stopped: only now may a successor take the lease.
        let _ = released_tx.send(());
    };
    tokio::join!(campaigning, leading);
}

/// Reports the end of a term when the leader's work ends or is dropped.
struct ReportOnDrop(Arc<Context>);

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        self.0.settings.report(Report::Leading(false));
    }
}

/// Runs the controller until `shutdown` (see [`ImageCacheController`]).
///
/// # Errors
/// As [`ImageCacheController::run`].
pub async fn run(
    kube: kube::Client,
    eci: eci::Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    ImageCacheController::new(kube, eci, settings)
        .run(shutdown)
        .await
}

async fn reconcile(
    object: Arc<ImageCache>,
    ctx: Arc<Context>,
) -> Result<Action, finalizer::Error<ReconcileError>> {
    let name = object.name_any();
    let span =
        tracing::debug_span!("imagecache", imagecache.name = %name, imagecache.uid = field::Empty);
    if let Some(uid) = object.uid() {
        span.record("imagecache.uid", field::display(uid));
    }
    if let Some(wait) = still_held(&ctx, &object) {
        return Ok(Action::requeue(wait));
    }
    let api: Api<ImageCache> = Api::all(ctx.kube.clone());
    let started = tokio::time::Instant::now();
    let result = finalizer::finalizer(&api, FINALIZER, object, |event| async {
        match event {
            Finalizer::Apply(object) => apply(&object, &ctx).await,
            Finalizer::Cleanup(object) => cleanup(&object, &ctx).await,
        }
    })
    .instrument(span)
    .await;
    ctx.settings.report(Report::Reconciled {
        ok: result.is_ok(),
        took: started.elapsed(),
    });
    if result.is_ok() {
        ctx.failures.lock().remove(&name);
    }
    result
}

/// How long `object` must still wait after a failure; `None` when it may be reconciled now
/// (no failure, the backoff is over, its spec changed, or it is being deleted).
fn still_held(ctx: &Context, object: &ImageCache) -> Option<Duration> {
    let name = object.name_any();
    let mut held = ctx.held.lock();
    let (until, generation) = *held.get(&name)?;
    let now = tokio::time::Instant::now();
    if until > now
        && generation == object.metadata.generation
        && object.metadata.deletion_timestamp.is_none()
    {
        return Some(until - now);
    }
    held.remove(&name);
    None
}

fn error_policy(
    object: Arc<ImageCache>,
    error: &finalizer::Error<ReconcileError>,
    ctx: Arc<Context>,
) -> Action {
    let name = object.name_any();
    let failures = {
        let mut all = ctx.failures.lock();
        let n = all.entry(name.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(ctx.settings.error_backoff, failures);
    ctx.held.lock().insert(
        name.clone(),
        (
            tokio::time::Instant::now() + delay,
            object.metadata.generation,
        ),
    );
    tracing::warn!(
        imagecache.name = %name,
        failures,
        retry_in = ?delay,
        error = error as &dyn std::error::Error,
        "image cache reconcile failed"
    );
    Action::requeue(delay)
}

/// The delay before retry number `failures` (1-based): `first`, doubled each time, at most
/// `longest`.
fn backoff((first, longest): (Duration, Duration), failures: u32) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(longest)
}

async fn apply(object: &ImageCache, ctx: &Context) -> Result<Action, ReconcileError> {
    use eci::ImageCacheStatus as S;
    let name = object.name_any();
    let build = match Build::read(
        object,
        ctx.settings.security_group_id.as_deref(),
        ctx.settings.vswitch_id.as_deref(),
    ) {
        Ok(build) => build,
        Err(invalid) => return Err(bad_annotation(object, ctx, invalid).await),
    };
    // The schema checks only that images are not empty: a string that is no reference is
    // refused here, before the cloud is asked to build it.
    for image in &object.spec.images {
        if let Err(source) = crate::reference::ImageRef::parse(image) {
            let error = ReconcileError::InvalidImage {
                name: name.clone(),
                image: image.chars().take(200).collect(),
                source,
            };
            return Err(refuse_spec(object, ctx, "InvalidImage", error).await);
        }
    }
    let mut cloud = find_cloud(object, ctx).await?;
    tracing::debug!(
        imagecache.name = %name,
        cloud = ?cloud.as_ref().map(|c| (&c.image_cache_id, c.status)),
        "read the cloud cache"
    );
    // Built with registry protocols, an OS or an architecture the object no longer asks for,
    // which UpdateImageCache cannot change: built anew (an adopted cache is left as it is).
    if let Some(c) = &cloud
        && !build.built_alike(c)
        && cloud::annotation(object, ANNOTATION_CLOUD_ID).is_none()
        && !matches!(c.status, S::Preparing | S::Creating | S::Updating)
    {
        tracing::info!(imagecache.name = %name, imagecache.id = %c.image_cache_id, "build settings changed; building the cache anew");
        delete_cloud(&name, &c.image_cache_id, ctx).await?;
        cloud = None;
    }
    if let Some(c) = &cloud
        && !in_sync(&object.spec, c)
        && owns_its_cache(object)
    {
        match c.status {
            S::Ready | S::UpdateFailed => {
                refused(
                    object,
                    ctx,
                    "UpdateImageCacheFailed",
                    update(object, &build, c, update_token(object)?, ctx).await,
                )
                .await?;
                // Read by itself: the shared listing may have started before the update.
                cloud = cloud::by_id(ctx, &name, &c.image_cache_id).await?;
            }
            S::Failed => {
                // A failed build cannot be updated: replace it.
                delete_cloud(&name, &c.image_cache_id, ctx).await?;
                cloud = None;
            }
            // Still building or updating: the update follows when it settles.
            S::Preparing | S::Creating | S::Updating | S::Unknown => {}
        }
    }
    let mut just_created = false;
    let cloud = match cloud {
        Some(cloud) => cloud,
        None if let Some(id) = cloud::annotation(object, ANNOTATION_CLOUD_ID) => {
            // An adopted cache that does not exist is not built anew: the object says so.
            let failed = status::failed(
                "ImageCacheNotFound",
                format!("The image cache {id} named by {ANNOTATION_CLOUD_ID} does not exist."),
                object.meta().generation,
                object.status.as_ref(),
                (ctx.clock)(),
            );
            if object.status.as_ref() != Some(&failed) {
                write_status(object, &failed, ctx).await?;
            }
            return Ok(Action::requeue(ctx.settings.resync_interval));
        }
        None => {
            // Built for this spec and gone at its expiry: the cloud's retention is honoured,
            // not undone by building it again. A spec change builds a new one.
            let now = (ctx.clock)();
            if let Some(previous) = object.status.as_ref().filter(|p| {
                p.image_cache_id.is_some()
                    && p.observed_generation == object.meta().generation
                    && p.expire_date_time.as_ref().is_some_and(|t| t.0 <= now)
            }) {
                let next = status::expired(previous, now);
                if next != *previous {
                    write_status(object, &next, ctx).await?;
                }
                return Ok(Action::requeue(ctx.settings.resync_interval));
            }
            let id = refused(
                object,
                ctx,
                "CreateImageCacheFailed",
                create(object, &build, ctx).await,
            )
            .await?;
            // Not described now: a cache just created from this spec is Preparing and in
            // sync, and the next poll reads the rest from the shared listing.
            just_created = true;
            eci::ImageCache {
                image_cache_id: id,
                status: S::Preparing,
                images: object.spec.images.clone(),
                ..eci::ImageCache::default()
            }
        }
    };
    let synced = just_created || in_sync(&object.spec, &cloud);
    let mut next = status::from_cloud(
        &cloud,
        object.meta().generation,
        synced,
        object.status.as_ref(),
        (ctx.clock)(),
    );
    if let Some(hosts) = ctx.logged_in.lock().remove(&name) {
        next.private_registries = hosts;
    }
    // A look at the registries under way is polled for like a build.
    let looking = synced && freshness::check(object, &build, &cloud, ctx, &mut next).await?;
    let before = object.status.as_ref().and_then(|s| s.phase.clone());
    if object.status.as_ref() != Some(&next) {
        write_status(object, &next, ctx).await?;
    }
    if before.as_deref() != next.phase.as_deref() {
        match cloud.status {
            S::Ready => {
                // A first build only: an update's Ready says nothing of how long a build takes.
                if matches!(before.as_deref(), None | Some("Preparing" | "Creating"))
                    && cloud::annotation(object, ANNOTATION_CLOUD_ID).is_none()
                    && let Ok(created) = cloud.creation_time.parse::<Timestamp>()
                {
                    let took = (ctx.clock)().duration_since(created);
                    ctx.settings.report(Report::Built {
                        took: Duration::try_from(took).unwrap_or_default(),
                    });
                }
                publish(
                    object,
                    ctx,
                    EventType::Normal,
                    "Ready",
                    format!("Image cache {} is ready", cloud.image_cache_id),
                    "DescribeImageCaches",
                )
                .await;
            }
            S::Failed | S::UpdateFailed => {
                let message = next
                    .conditions
                    .first()
                    .map_or_else(String::new, |c| c.message.clone());
                publish(
                    object,
                    ctx,
                    EventType::Warning,
                    status::phase_name(cloud.status),
                    message,
                    "DescribeImageCaches",
                )
                .await;
            }
            _ => {}
        }
    }
    Ok(match cloud.status {
        S::Ready if synced && !looking => Action::requeue(
            ctx.settings
                .freshness
                .as_ref()
                .map_or(ctx.settings.resync_interval, |f| {
                    f.interval.min(ctx.settings.resync_interval)
                }),
        ),
        S::Failed | S::UpdateFailed if synced => Action::requeue(ctx.settings.resync_interval),
        _ => Action::requeue(ctx.settings.poll_interval),
    })
}

/// A malformed annotation: the object is Failed with a Warning naming it, nothing is asked of
/// the cloud, and the error backs off until the object changes.
async fn bad_annotation(
    object: &ImageCache,
    ctx: &Context,
    invalid: eci::annotation_value::Invalid,
) -> ReconcileError {
    let error = ReconcileError::Annotation {
        name: object.name_any(),
        source: invalid,
    };
    refuse_spec(object, ctx, "InvalidAnnotation", error).await
}

/// Something the object asks for that no cloud call could honour: the object is Failed with
/// `reason` and the error's whole chain as its message and a Warning event, nothing is asked of
/// the cloud, and the error (returned) backs off until the object changes.
async fn refuse_spec(
    object: &ImageCache,
    ctx: &Context,
    reason: &str,
    error: ReconcileError,
) -> ReconcileError {
    let message = match &error {
        // The annotation's own message names the object's key and value already.
        ReconcileError::Annotation { source, .. } => source.to_string(),
        other => crate::error_chain(other),
    };
    let failed = status::failed(
        reason,
        message.clone(),
        object.meta().generation,
        object.status.as_ref(),
        (ctx.clock)(),
    );
    if object.status.as_ref() != Some(&failed)
        && let Err(error) = write_status(object, &failed, ctx).await
    {
        return error;
    }
    publish(
        object,
        ctx,
        EventType::Warning,
        reason,
        message,
        "Reconcile",
    )
    .await;
    error
}

/// When the cloud refuses a request for good (a 4xx answer: quota, invalid parameter), the
/// object shows it: phase Failed and a Warning event with the cloud's answer. Transient
/// failures only back off. The error is returned either way, so the retry backs off.
async fn refused<T>(
    object: &ImageCache,
    ctx: &Context,
    reason: &str,
    result: Result<T, ReconcileError>,
) -> Result<T, ReconcileError> {
    if let Err(ReconcileError::Cloud { source, .. }) = &result
        && let Some(api) = source.api()
        && !api.is_retryable()
    {
        let message = api.to_string();
        let failed = status::failed(
            reason,
            message.clone(),
            object.meta().generation,
            object.status.as_ref(),
            (ctx.clock)(),
        );
        write_status(object, &failed, ctx).await?;
        publish(
            object,
            ctx,
            EventType::Warning,
            reason,
            message,
            "Reconcile",
        )
        .await;
    }
    result
}

/// Whether the node may change and delete the object's cloud cache: one it built, or an
/// automatic one it adopted; a cache brought in by hand with [`ANNOTATION_CLOUD_ID`] (the
/// console's, another cluster's) is only read.
fn owns_its_cache(object: &ImageCache) -> bool {
    cloud::annotation(object, ANNOTATION_CLOUD_ID).is_none()
        || object
            .labels()
            .get(LABEL_AUTO_CREATED)
            .is_some_and(|v| v == "true")
}

async fn cleanup(object: &ImageCache, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = object.name_any();
    if !owns_its_cache(object) {
        tracing::info!(imagecache.name = %name, "the object goes; the cloud cache it named is not this node's and stays");
        return Ok(Action::await_change());
    }
    // Every cloud cache this object may own: the one in its status and any tagged for it.
    let mut ids: Vec<String> = object
        .status
        .as_ref()
        .and_then(|s| s.image_cache_id.clone())
        .into_iter()
        .filter(|id| !id.is_empty())
        .collect();
    if let Some(adopted) = cloud::annotation(object, ANNOTATION_CLOUD_ID)
        && !ids.contains(&adopted)
    {
        ids.push(adopted);
    }
    let uid = object.uid().unwrap_or_default();
    // Both spellings: a cache made by the previous release must not be orphaned.
    for cache in cloud::owned_caches(ctx, &name, Some(&uid)).await? {
        if !ids.contains(&cache.image_cache_id) {
            ids.push(cache.image_cache_id);
        }
    }
    for id in &ids {
        delete_cloud(&name, id, ctx).await?;
        tracing::info!(imagecache.name = %name, imagecache.id = %id, "deleted cloud image cache");
    }
    ctx.looks.forget(&name);
    ctx.freshness_checked.lock().remove(&name);
    ctx.registry_warned.lock().remove(&name);
    Ok(Action::await_change())
}

async fn write_status(
    object: &ImageCache,
    next: &ImageCacheStatus,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let name = object.name_any();
    let api: Api<ImageCache> = Api::all(ctx.kube.clone());
    let patch = serde_json::json!({
        "apiVersion": ImageCache::api_version(&()),
        "kind": ImageCache::kind(&()),
        "status": next,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| ReconcileError::PatchStatus {
        name,
        source: Box::new(source),
    })?;
    Ok(())
}

/// Publishes a Kubernetes Event on the object. Failing to publish is logged, not fatal: the
/// status already says the same.
async fn publish(
    object: &ImageCache,
    ctx: &Context,
    type_: EventType,
    reason: &str,
    note: String,
    action: &str,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(imagecache.name = %object.name_any(), reason, error = &error as &dyn std::error::Error, "cannot publish event");
    }
}

/// What a reconcile reads from an object before it asks the cloud anything (its build settings,
/// size and retention), each a clear error on bad input: the `imagecache_spec` fuzz target's
/// path (`crate::imagecache::fuzz`).
pub(super) fn read_object(object: &ImageCache) -> Result<(), String> {
    build::Build::read(object, None, None).map_err(|invalid| invalid.to_string())?;
    cloud::size_and_retention(object).map_err(|error| error.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_back_off_exponentially_to_a_ceiling() {
        let policy = (Duration::from_secs(5), Duration::from_secs(300));
        let delays: Vec<u64> = [1, 2, 3, 4, 5, 6, 7, 50, u32::MAX]
            .into_iter()
            .map(|n| backoff(policy, n).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(policy, 0), Duration::from_secs(5));
    }

    #[test]
    fn only_what_a_reconcile_acts_on_triggers_it() {
        let mut object = ImageCache::new(
            "web",
            super::super::resource::ImageCacheSpec {
                images: vec!["nginx".to_owned()],
                image_pull_secrets: Vec::new(),
                image_cache_size: 20,
                retention_days: None,
            },
        );
        object.metadata.generation = Some(1);
        let first = what_the_reconcile_reads(&object);

        // The controller's own status writes do not trigger it.
        let mut written = object.clone();
        written.status = Some(ImageCacheStatus {
            phase: Some("Creating".to_owned()),
            ..ImageCacheStatus::default()
        });
        written.metadata.resource_version = Some("42".to_owned());
        assert_eq!(what_the_reconcile_reads(&written), first);

        // A spec change, a build annotation, a label, the finalizer and deletion do.
        let changes: [fn(&mut ImageCache); 5] = [
            |o| o.metadata.generation = Some(2),
            |o| {
                o.annotations_mut()
                    .insert(ANNOTATION_PLAIN_HTTP.to_owned(), "registry:5000".to_owned());
            },
            |o| {
                o.labels_mut().insert("team".to_owned(), "a".to_owned());
            },
            |o| o.finalizers_mut().push(FINALIZER.to_owned()),
            |o| {
                o.metadata.deletion_timestamp = Some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
                );
            },
        ];
        for change in changes {
            let mut changed = object.clone();
            change(&mut changed);
            assert_ne!(what_the_reconcile_reads(&changed), first);
        }
    }
}
