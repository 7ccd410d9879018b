//! The ImageCache side of `eci-vk run`: the cache index the pod controller matches against,
//! and (unless turned off) the reconciler, in the same process as the pods.
//!
//! # Expected flow
//! 1. probe the `ImageCache` API with a one-item list;
//! 2. not installed (404): the index is marked complete and empty, so pods asking for a cache
//!    get an answer instead of waiting; a warning is logged and the probe is retried with
//!    backoff (install the CRD any time, no restart needed);
//! 3. installed: with `reconcile`, run [`ImageCacheController`] on the shared index (it also
//!    follows the watch); without, only follow the watch into the index.
//!
//! # Guarantees
//! A missing CRD, RBAC refusal or unreachable API server never stops the node: this task only
//! ends on `shutdown`.

use std::{future::Future, time::Duration};

use futures::FutureExt;
use kube::{Api, api::ListParams, runtime::watcher};

use super::{
    index::CacheIndexHandle,
    reconciler::{ImageCacheController, RunError, Settings},
    resource::ImageCache,
};
use crate::eci;

/// First and longest wait between two probes of a missing `ImageCache` API.
const PROBE_BACKOFF: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(60));

/// Label giving an ImageCache a class: only nodes of that class (`--image-cache-class`)
/// reconcile and match it; nodes without a class take only unlabelled ImageCaches.
pub const LABEL_CLASS: &str = "eci.alibabacloud.com/image-cache-class";

/// The label selector of the ImageCaches a node of `class` handles.
pub fn class_selector(class: Option<&str>) -> String {
    match class {
        Some(class) => format!("{LABEL_CLASS}={class}"),
        None => format!("!{LABEL_CLASS}"),
    }
}

/// The Lease (in `kube-system`) through which the nodes of cluster `cluster` (and class
/// `class`) take turns reconciling: `eci-vk-imagecache-<cluster>[-<class>]`, made a valid
/// object name.
pub fn lease_name(cluster: &str, class: Option<&str>) -> String {
    let suffix = class.map(|c| format!("-{c}")).unwrap_or_default();
    let name: String = format!("eci-vk-imagecache-{cluster}{suffix}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    name.trim_end_matches('-').to_owned()
}

/// Keeps `index` current and, with `reconcile`, reconciles the caches, until `shutdown`.
pub async fn host(
    kube: kube::Client,
    eci: eci::Client,
    settings: Settings,
    reconcile: bool,
    index: CacheIndexHandle,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    type Boxed = std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>;
    let shutdown = (Box::pin(shutdown) as Boxed).shared();
    let api: Api<ImageCache> = Api::all(kube.clone());
    let mut wait = PROBE_BACKOFF.0;
    loop {
        let mut list = ListParams::default().limit(1);
        if let Some(selector) = &settings.label_selector {
            list = list.labels(selector);
        }
        let probe = api.list(&list).await;
        let error = match probe {
            Ok(_) if reconcile => {
                let controller =
                    ImageCacheController::new(kube.clone(), eci.clone(), settings.clone())
                        .with_index(index.clone());
                match controller.run(shutdown.clone()).await {
                    Ok(()) => return,
                    Err(RunError::CrdUnavailable(error)) => *error,
                }
            }
            Ok(_) => {
                let mut watch = watcher::Config::default();
                if let Some(selector) = &settings.label_selector {
                    watch = watch.labels(selector);
                }
                index.follow(api.clone(), watch, shutdown.clone()).await;
                return;
            }
            Err(error) => error,
        };
        if is_not_found(&error) {
            index.mark_absent();
            tracing::warn!(
                retry_in = ?wait,
                "the ImageCache CRD is not installed (install it with `eci-vk crd | kubectl apply -f -`); pods run without image caches meanwhile"
            );
        } else {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                retry_in = ?wait,
                "cannot list imagecaches.eci.alibabacloud.com; retrying"
            );
        }
        tokio::select! {
            () = shutdown.clone() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(PROBE_BACKOFF.1);
    }
}

/// Whether the API server says the resource does not exist (the CRD is not installed).
fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lease_names_are_object_names() {
        assert_eq!(
            super::lease_name("kubernetes", None),
            "eci-vk-imagecache-kubernetes"
        );
        assert_eq!(
            super::lease_name("kubernetes", Some("eu-1")),
            "eci-vk-imagecache-kubernetes-eu-1"
        );
        let long = super::lease_name(&format!("My_Cluster.{}", "x".repeat(80)), None);
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("eci-vk-imagecache-my-cluster-x"));
        assert_eq!(super::lease_name("a--", None), "eci-vk-imagecache-a");
        assert_eq!(
            super::class_selector(None),
            "!eci.alibabacloud.com/image-cache-class"
        );
    }
}
