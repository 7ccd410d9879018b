//! Creating a pod's container group: its image cache first (decided from memory), then what
//! the request is built from ([`super::sources`], the pull secrets), the request itself
//! ([`super::translate`]), and `CreateContainerGroup` with the pod's UID as `ClientToken`.
//! A create that fails for a reason worth retrying waits under a [`Backoff`] (2 s, doubling, at
//! most 5 minutes); a hit on an image cache is recorded on the pod afterwards, and so are the
//! fields ECI cannot honour ([`super::fields`]), as `UnsupportedField` Warning events.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    ResourceExt,
    runtime::{events::EventType, reflector::ObjectRef},
};
use parking_lot::Mutex;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{
    annotations,
    context::{Context, ECI_TIMEOUT},
    fields, pull_secrets,
    snapshot::{self, Resolve},
    sources::fetch_sources,
    status::not_created_status,
    translate::{CLAIM_NOT_BOUND, check_supported, translate},
    writes::{failed_status, publish, reject, write_status},
};
use crate::{eci, imagecache};

/// Longest wait before retrying a failed create.
const MAX_CREATE_BACKOFF: Duration = Duration::from_secs(300);

/// How long a create waits after its `attempts`-th failure: 2 s, doubling, at most
/// [`MAX_CREATE_BACKOFF`].
fn retry_wait(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(9)).min(MAX_CREATE_BACKOFF)
}

/// Failed creates, by pod UID: how many attempts failed, and when to try again.
#[derive(Debug, Default)]
pub(super) struct Backoff(Mutex<HashMap<String, (u32, Instant)>>);

// === impl Backoff ===

impl Backoff {
    /// Whether the pod's next attempt is not yet due at `now`.
    fn waiting(&self, uid: &str, now: Instant) -> bool {
        self.0.lock().get(uid).is_some_and(|(_, next)| now < *next)
    }

    /// One more failed attempt at `now`: the next one waits longer.
    fn failed(&self, uid: &str, now: Instant) {
        let mut backoff = self.0.lock();
        let entry = backoff.entry(uid.to_owned()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now + retry_wait(entry.0);
    }

    /// The group was created: the pod's failures are forgotten.
    fn succeeded(&self, uid: &str) {
        self.0.lock().remove(uid);
    }

    /// Forgets the pods that no longer exist.
    pub(super) fn retain(&self, live: &HashSet<String>) {
        self.0.lock().retain(|uid, _| live.contains(uid));
    }
}

/// How long a create request whose answer was lost is resent unchanged. ECI's idempotency
/// contract ("How to ensure idempotence", the `ClientToken` parameter of
/// `CreateContainerGroup`) holds a token to the parameters it first came with: a create that
/// timed out may have been applied, and a repeat built afresh (new service-account tokens, a
/// Secret edited meanwhile, a cache that turned Ready) would get `IdempotentParameterMismatch`.
/// Within this window the retry is byte for byte the first request, as the SDKs' retries are.
/// Bounded because the request carries service-account tokens: projected ones live at least
/// 10 minutes (the API server's minimum `expirationSeconds`), and a kubelet refreshes them at
/// 80 % of their life; past the window the request is rebuilt, and a mismatch then means the
/// first one was applied (see [`already_created`]).
const RESEND_WINDOW: Duration = Duration::from_secs(300);

/// A request built for a pod and sent, with what its success reports.
#[derive(Debug, Clone)]
struct Sent {
    request: eci::CreateContainerGroup,
    snapshot: imagecache::SnapshotDecision,
    warnings: Vec<(&'static str, String)>,
    built: Instant,
}

/// Create requests whose answer was lost or said to retry, by pod UID: the retry sends the
/// same request ([`RESEND_WINDOW`]).
#[derive(Debug, Default)]
pub(super) struct Unanswered(Mutex<HashMap<String, Sent>>);

// === impl Unanswered ===

impl Unanswered {
    /// The request to send again for the pod, if one was sent within the window at `now`.
    fn take(&self, uid: &str, now: Instant) -> Option<Sent> {
        let sent = self.0.lock().remove(uid)?;
        (now.saturating_duration_since(sent.built) < RESEND_WINDOW).then_some(sent)
    }

    fn keep(&self, uid: &str, sent: Sent) {
        self.0.lock().insert(uid.to_owned(), sent);
    }

    /// Forgets the pods that no longer exist.
    pub(super) fn retain(&self, live: &HashSet<String>) {
        self.0.lock().retain(|uid, _| live.contains(uid));
    }
}

/// ECI says the pod's `ClientToken` was used with other parameters: a create of this pod was
/// applied earlier (its answer lost, and the request since rebuilt). The group exists, so the
/// pod waits for a pass to find it by its tag and adopt it, and is never failed for it.
fn already_created(error: &eci::Error) -> bool {
    matches!(error.code(), Some("IdempotentParameterMismatch"))
}

/// Creates the group of a pod the watch has just shown, without waiting for a pass. A pod that
/// cannot run here is left to the pass, which says why.
pub(super) async fn create_new(ctx: &Context, pod: &Pod) {
    let Some(uid) = pod.uid() else {
        return;
    };
    if check_supported(pod).is_err() || ctx.rejected.lock().contains(&uid) {
        return;
    }
    if let Some(_creating) = ctx.starts.begin_create(&uid, None) {
        debug!("new pod seen; building its request");
        create(ctx, pod, &uid).await;
    }
}

/// Creates the pod's group, unless its last failure's backoff is still running.
pub(super) async fn create(ctx: &Context, pod: &Pod, uid: &str) {
    if ctx.backoff.waiting(uid, Instant::now()) {
        return;
    }
    let sent = match ctx.unanswered.take(uid, Instant::now()) {
        Some(sent) => {
            debug!("sending the create whose answer was lost again, unchanged");
            sent
        }
        None => match build(ctx, pod, uid).await {
            Some(sent) => sent,
            None => return,
        },
    };
    debug!("request built; creating the group");
    let answer =
        tokio::time::timeout(ECI_TIMEOUT, ctx.eci.create_container_group(&sent.request)).await;
    let snapshot = &sent.snapshot;
    let behaviour = annotations::behaviour(pod);
    match answer {
        Ok(Ok(created)) => {
            ctx.config.metrics.pod_create("created");
            ctx.backoff.succeeded(uid);
            ctx.starts.created(
                uid,
                &created.container_group_id,
                ObjectRef::from_obj(pod),
                Instant::now(),
                crate::metrics::decision_labels(snapshot).0,
            );
            ctx.config.metrics.cache_decision(snapshot);
            info!(group.id = %created.container_group_id, "container group created");
            publish(
                ctx,
                pod,
                EventType::Normal,
                "ProviderCreateSuccess",
                &format!("created ECI container group {}", created.container_group_id),
            )
            .await;
            // What ECI's virtual node writes on the pod at creation: the request and the group;
            // it rides with the pod's next status write.
            let written = BTreeMap::from([
                (eci::annotation::REQUEST_ID, created.request_id.clone()),
                (
                    eci::annotation::INSTANCE_ID,
                    created.container_group_id.clone(),
                ),
            ]);
            report_snapshot(ctx, pod, uid, snapshot, written).await;
            for (reason, note) in &sent.warnings {
                publish(ctx, pod, EventType::Warning, reason, note).await;
            }
            // Once, when the group exists: what the pod asked for that ECI cannot honour, in
            // one event (the recorder folds events of one reason into a series).
            let warnings = fields::review(pod).warnings;
            if !warnings.is_empty() {
                publish(
                    ctx,
                    pod,
                    EventType::Warning,
                    fields::WARNING_REASON,
                    &fields::warning_note(&warnings),
                )
                .await;
            }
        }
        Ok(Err(error)) => {
            ctx.config.metrics.pod_create("failed");
            let no_stock = out_of_stock(&error);
            let applied = already_created(&error);
            // A definite answer: the next try builds the request again, with a new choice.
            let vanished = matched_cache_vanished(&error, snapshot);
            let retryable = error.is_retryable()
                || waits_for_a_resource(&error)
                || no_stock
                || applied
                || vanished;
            let note = format!("CreateContainerGroup failed: {error}");
            warn!(
                error = &error as &dyn std::error::Error,
                retryable, "container group not created"
            );
            publish(ctx, pod, EventType::Warning, "ProviderFailed", &note).await;
            if no_stock {
                // ECI's fault-handling policy: fail-back keeps trying with the pod Pending,
                // fail-fast stops at once for the pod's owner to decide; both say why in the
                // pod's ContainerInstanceCreated condition.
                let code = error.code().unwrap_or("NoStock");
                let fail_fast = behaviour.fail_strategy == annotations::FailStrategy::FailFast;
                let status =
                    not_created_status(pod, code, &note, fail_fast, jiff::Timestamp::now());
                write_status(ctx, pod, uid, &status).await;
                if fail_fast {
                    ctx.rejected.lock().insert(uid.to_owned());
                    return;
                }
            }
            if retryable {
                if !applied && !vanished {
                    ctx.unanswered.keep(uid, sent);
                }
                ctx.backoff.failed(uid, Instant::now());
            } else {
                let status = failed_status("ProviderFailed", note);
                write_status(ctx, pod, uid, &status).await;
            }
        }
        Err(_) => {
            warn!(timeout = ?ECI_TIMEOUT, "CreateContainerGroup timed out; sending the same request again (the ClientToken makes it safe)");
            ctx.unanswered.keep(uid, sent);
            ctx.backoff.failed(uid, Instant::now());
        }
    }
}

/// Builds the pod's request: the pull secrets, the cache decision, the sources and the
/// translation, with their events. `None` when the pod cannot be created now (it waits, or was
/// failed or refused, with its reason).
async fn build(ctx: &Context, pod: &Pod, uid: &str) -> Option<Sent> {
    // The pull secrets first: the request needs them whole, and a cache built with logins
    // serves only pods with logins of their own for the same registries. Their warnings are
    // published only for a pod about to be created.
    let (logins, warnings) = pull_secrets::credentials(&ctx.kube, pod).await;
    // Then the cache, decided from memory: a pod that must fail for it fails before its
    // ConfigMaps and Secrets are read.
    let snapshot = match snapshot::resolve(
        &ctx.config.image_caches,
        Some(&ctx.eci),
        ctx.config.image_cache_policy,
        pod,
        &logins,
        jiff::Timestamp::now(),
    )
    .await
    {
        Ok(snapshot) => snapshot,
        // The index is still loading: the pass that follows its loading asks again, without
        // the growing backoff of a failed create.
        Err(Resolve::Wait) => {
            debug!("waiting for the image cache index before creating");
            return None;
        }
        Err(Resolve::Fail(error)) => {
            fail_for_snapshot(ctx, pod, uid, &error).await;
            return None;
        }
        // The cloud could not say whether the cache the pod names exists: asked again after
        // the create backoff, never a failed pod.
        Err(Resolve::Cloud(error)) => {
            warn!(
                error = &error as &dyn std::error::Error,
                "cannot look up the image cache the pod names; retrying"
            );
            ctx.backoff.failed(uid, Instant::now());
            return None;
        }
    };
    let Some(sources) = fetch_sources(ctx, pod).await else {
        ctx.backoff.failed(uid, Instant::now());
        return None;
    };
    let placement =
        match super::placement::under_profile(&ctx.config.placement, &ctx.config.profile.current())
        {
            Ok(placement) => placement,
            Err(unsupported) => {
                reject(ctx, pod, uid, &unsupported).await;
                return None;
            }
        };
    let translated = match translate(pod, &placement, &sources, &snapshot, logins) {
        Ok(translated) => translated,
        Err(unsupported) => {
            reject(ctx, pod, uid, &unsupported).await;
            return None;
        }
    };
    for gap in &translated.missing {
        publish(
            ctx,
            pod,
            EventType::Warning,
            gap.kind.missing_reason(gap.optional),
            &gap.note(),
        )
        .await;
    }
    for why in &translated.waiting {
        publish(ctx, pod, EventType::Warning, CLAIM_NOT_BOUND, why).await;
    }
    if translated.blocked() {
        ctx.config.metrics.pod_create("blocked");
        info!(
            "a mandatory ConfigMap or Secret is missing or a claim is not bound; the group is not created yet"
        );
        ctx.backoff.failed(uid, Instant::now());
        return None;
    }
    for warning in &warnings {
        publish(
            ctx,
            pod,
            EventType::Warning,
            "FailedToRetrieveImagePullSecret",
            warning,
        )
        .await;
    }
    Some(Sent {
        request: translated.request,
        snapshot,
        warnings: translated.warnings,
        built: Instant::now(),
    })
}

/// ECI's answers that no instance of the asked specs is in stock ("Configure a fault handling
/// policy for a pod" shows `ContainerGroup.NoStock`; its conditions page `NoStock`,
/// `StockExhaust` and `StockClose`).
fn out_of_stock(error: &eci::Error) -> bool {
    matches!(
        error.code(),
        Some("ContainerGroup.NoStock" | "NoStock" | "StockExhaust" | "StockClose")
    )
}

/// ECI errors that are not retryable as such but name a resource another group still holds (a
/// disk attached to the group of the pod's predecessor, during a rollout or a StatefulSet
/// restart): the pod waits and retries, as a kubelet waits for a volume to detach, rather than
/// failing for good.
fn waits_for_a_resource(error: &eci::Error) -> bool {
    matches!(error.code(), Some("IncorrectDiskStatus"))
}

/// The cache automatic matching chose for the pod was deleted between the choice and the
/// create (its ImageCache removed meanwhile): the choice was the node's, not the pod's, so the
/// pod is decided again on the next try (the index no longer holds the cache) instead of
/// failing, as ECI's own matching falls back when a cache goes away. A cache the pod named
/// itself still fails it. Found by the 30-minute chaos run (seed 20261207).
fn matched_cache_vanished(error: &eci::Error, snapshot: &imagecache::SnapshotDecision) -> bool {
    matches!(error.code(), Some("InvalidImageSnapshotId.NotFound"))
        && matches!(
            snapshot,
            imagecache::SnapshotDecision::Use {
                automatic: true,
                ..
            }
        )
}

/// The pod asked for an image cache it cannot have: it fails with the reason as its status
/// reason and a Warning event (once), and the node carries on with other pods.
async fn fail_for_snapshot(ctx: &Context, pod: &Pod, uid: &str, error: &imagecache::SnapshotError) {
    if !ctx.rejected.lock().insert(uid.to_owned()) {
        return;
    }
    let message = snapshot::message(error);
    info!(reason = error.reason(), %message, "pod cannot start from the image cache it names");
    ctx.config.metrics.pod_create("image-cache-refused");
    publish(ctx, pod, EventType::Warning, error.reason(), &message).await;
    let status = failed_status(error.reason(), message);
    write_status(ctx, pod, uid, &status).await;
}

/// After the group was created: a hit is recorded on the pod (annotation
/// `k8s.aliyun.com/eci-matched-image-cache`, owed to its next status write, and a
/// `SuccessfulHitImageCache` event), a miss the
/// pod asked to match is an `ImageCacheMissed` event; when ECI matches, its own events say what
/// it chose and built.
async fn report_snapshot(
    ctx: &Context,
    pod: &Pod,
    uid: &str,
    snapshot: &imagecache::SnapshotDecision,
    mut written: BTreeMap<&'static str, String>,
) {
    if let imagecache::SnapshotDecision::Use {
        id,
        name,
        automatic,
    } = snapshot
    {
        info!(imagecache.id = %id, imagecache.name = %name, automatic, "pod starts from an image cache");
        written.insert(imagecache::ANNOTATION_MATCHED_IMAGE_CACHE, id.clone());
    }
    if let imagecache::SnapshotDecision::AutoCreate { partial } = snapshot {
        info!(
            imagecache.partial = partial.as_deref().unwrap_or(""),
            "no image cache holds every image of the pod; ECI matches and builds one"
        );
    }
    ctx.owed.owe(uid, written);
    if let Some((reason, note)) = snapshot.event() {
        let kind = if reason == imagecache::REASON_HIT {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(ctx, pod, kind, reason, &note).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: &str) -> eci::Error {
        eci::Error::Api(Box::new(eci::ApiError {
            action: "CreateContainerGroup",
            status: 400,
            code: code.to_owned(),
            message: "m".into(),
            request_id: String::new(),
            host_id: String::new(),
            recommend: String::new(),
            retry_after: None,
        }))
    }

    #[test]
    fn a_disk_still_held_by_another_group_is_waited_for() {
        let held = api_error("IncorrectDiskStatus");
        assert!(!held.is_retryable(), "not retryable for the client");
        assert!(
            waits_for_a_resource(&held),
            "but the pod waits for the disk"
        );
        assert!(!waits_for_a_resource(&api_error("DiskNumber.LimitExceed")));
        assert!(!waits_for_a_resource(&api_error("InvalidParameter")));
    }

    fn sent(name: &str, built: Instant) -> Sent {
        Sent {
            request: eci::CreateContainerGroup {
                container_group_name: name.into(),
                client_token: Some("uid-1".into()),
                ..Default::default()
            },
            snapshot: imagecache::SnapshotDecision::NotRequested,
            warnings: Vec::new(),
            built,
        }
    }

    #[test]
    fn a_create_whose_answer_was_lost_is_sent_again_unchanged_within_the_window() {
        let unanswered = Unanswered::default();
        let t0 = Instant::now();
        unanswered.keep("uid-1", sent("first", t0));
        let again = unanswered.take("uid-1", t0 + Duration::from_secs(60));
        assert_eq!(
            again.map(|s| s.request.container_group_name).as_deref(),
            Some("first"),
            "the retry is the request first sent, not one built again"
        );
        assert!(unanswered.take("uid-1", t0).is_none(), "taken once");

        unanswered.keep("uid-1", sent("first", t0));
        assert!(
            unanswered.take("uid-1", t0 + RESEND_WINDOW).is_none(),
            "past the window its tokens may have expired: built again"
        );

        unanswered.keep("uid-1", sent("first", t0));
        unanswered.retain(&HashSet::new());
        assert!(
            unanswered.take("uid-1", t0).is_none(),
            "a deleted pod's request goes"
        );
    }

    #[test]
    fn a_client_token_used_with_other_parameters_means_the_group_exists() {
        let mismatch = api_error("IdempotentParameterMismatch");
        assert!(!mismatch.is_retryable(), "not retryable for the client");
        assert!(already_created(&mismatch), "but the pod waits to adopt it");
        assert!(!already_created(&api_error("InvalidParameter")));
    }

    #[test]
    fn a_matched_cache_deleted_meanwhile_is_chosen_again_but_a_named_one_fails() {
        let gone = api_error("InvalidImageSnapshotId.NotFound");
        let chosen = |automatic| imagecache::SnapshotDecision::Use {
            id: "imc-0123456789abcdefghij".into(),
            name: "c".into(),
            automatic,
        };
        assert!(!gone.is_retryable());
        assert!(matched_cache_vanished(&gone, &chosen(true)));
        assert!(!matched_cache_vanished(&gone, &chosen(false)));
        assert!(!matched_cache_vanished(
            &api_error("InvalidParameter"),
            &chosen(true)
        ));
    }

    #[test]
    fn retries_wait_two_seconds_doubling_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=10).map(|n| retry_wait(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_wait(u32::MAX), MAX_CREATE_BACKOFF);
    }

    #[test]
    fn a_failed_create_waits_its_turn_and_a_success_forgets() {
        let backoff = Backoff::default();
        let start = Instant::now();
        assert!(!backoff.waiting("u1", start), "a first create goes at once");
        backoff.failed("u1", start);
        assert!(backoff.waiting("u1", start + Duration::from_secs(1)));
        assert!(!backoff.waiting("u1", start + Duration::from_secs(2)));
        assert!(
            !backoff.waiting("u2", start),
            "one pod's failures hold back no other"
        );
        backoff.failed("u1", start + Duration::from_secs(2));
        assert!(backoff.waiting("u1", start + Duration::from_secs(5)));
        assert!(!backoff.waiting("u1", start + Duration::from_secs(6)));
        backoff.succeeded("u1");
        assert!(!backoff.waiting("u1", start + Duration::from_secs(2)));
    }

    #[test]
    fn pods_that_are_gone_are_forgotten() {
        let backoff = Backoff::default();
        let now = Instant::now();
        backoff.failed("gone", now);
        backoff.failed("live", now);
        backoff.retain(&HashSet::from(["live".to_owned()]));
        assert!(!backoff.waiting("gone", now));
        assert!(backoff.waiting("live", now));
    }
}
