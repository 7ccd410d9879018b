//! One reconciler at a time: several node processes in one cluster take turns through a
//! `coordination.k8s.io/v1` Lease, so they do not fight over the same cloud caches. The
//! holder renews it; the others wait until it lapses (holder killed) and take over.
//!
//! # Guarantees
//! - a process reconciles only while its last renewal is younger than the lease duration;
//!   the renew interval is well below it, so a live leader never lapses;
//! - writes use the Lease's `resourceVersion`, so two candidates cannot both win one term.
//!
//! # Caveats
//! A leader stalled longer than the lease (a frozen process) may overlap its successor
//! briefly; the reconciler is idempotent (ClientTokens, adoption by tags), so the overlap
//! cannot create a second cloud cache from one object.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};

/// Where the lease lives and who asks for it.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This process (e.g. the node name): written as `holderIdentity`.
    pub identity: String,
    /// How long a renewal holds the lease.
    pub duration: Duration,
    /// How often the holder renews, and how often the others try.
    pub renew_interval: Duration,
}

impl LeaseSettings {
    /// A lease `name` in `namespace` for `identity`, 15 s long, renewed every 5 s.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
        }
    }
}

/// Reading or writing the Lease failed (not: someone else holds it).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server refused or did not answer.
    #[error("cannot {operation} lease {namespace}/{name}")]
    Api {
        /// `get`, `create` or `replace`.
        operation: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Takes or renews the lease for `settings.identity` at `now`. `Ok(false)`: another holder's
/// term is still running, or another candidate won the race.
///
/// # Errors
/// [`LeaseError`] when the API server cannot be read or written.
pub async fn try_acquire(
    kube: &kube::Client,
    settings: &LeaseSettings,
    now: Timestamp,
) -> Result<bool, LeaseError> {
    let api: Api<Lease> = Api::namespaced(kube.clone(), &settings.namespace);
    let error = |operation: &'static str| {
        move |source: kube::Error| LeaseError::Api {
            operation,
            namespace: settings.namespace.clone(),
            name: settings.name.clone(),
            source: Box::new(source),
        }
    };
    let seconds = i32::try_from(settings.duration.as_secs())
        .unwrap_or(i32::MAX)
        .max(1);
    let Some(mut lease) = api.get_opt(&settings.name).await.map_err(error("get"))? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                namespace: Some(settings.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(settings.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(error("create")(e)),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let mine = spec.holder_identity.as_deref() == Some(settings.identity.as_str());
    let held_for =
        SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(seconds)));
    let lapsed = spec.holder_identity.as_deref().is_none_or(str::is_empty)
        || spec
            .renew_time
            .as_ref()
            .is_none_or(|t| t.0.checked_add(held_for).is_ok_and(|end| end <= now));
    if !mine && !lapsed {
        return Ok(false);
    }
    if !mine {
        spec.holder_identity = Some(settings.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(MicroTime(now));
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_conflict(&e) => Ok(false),
        Err(e) => Err(error("replace")(e)),
    }
}

/// Gives the lease up (on shutdown), so a successor need not wait for it to lapse. Best effort.
pub async fn release(kube: &kube::Client, settings: &LeaseSettings) {
    let api: Api<Lease> = Api::namespaced(kube.clone(), &settings.namespace);
    let Ok(Some(mut lease)) = api.get_opt(&settings.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    if let Err(error) = api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        tracing::debug!(
            error = &error as &dyn std::error::Error,
            "cannot release the image cache lease"
        );
    }
}
