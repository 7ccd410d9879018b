//! What `eci-vk explain-match -f pod.yaml` answers: which of the cluster's ImageCaches a pod
//! would start from, and why. It reads the pod (or a Deployment-like object's pod template)
//! from a file, lists the cluster's ImageCaches once, and renders the matcher's report ([`super::explain`])
//! together with what the pod's own annotations ask for — the same decision the node makes at
//! creation ([`super::decide_snapshot`]), so a user can see it before creating the pod.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::{Api, ResourceExt, api::ListParams};

use super::{
    annotations::{SnapshotRequest, resolve_snapshot_request},
    explain::explain,
    index::entry_of,
    matcher::{CacheIndex, MatchOptions},
    resource::ImageCache,
    snapshot::{
        Policy, SnapshotDecision, decide_snapshot, instance_storage_gib, pod_images, pulls_always,
    },
};

/// Why explain-match could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a pod or an object with a pod template.
    #[error("{path} is not a Pod or an object with spec.template: {reason}")]
    NotAPod {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ImageCaches could not be listed.
    #[error(
        "cannot list imagecaches.eci.alibabacloud.com (is the CRD installed: eci-vk crd | kubectl apply -f -?)"
    )]
    List(#[source] kube::Error),
}

/// What the cluster's ImageCaches (those matching `selector`, a label selector) do for `pod`:
/// the report `eci-vk explain-match` prints.
///
/// # Errors
/// [`ExplainError::List`] when the ImageCaches cannot be listed.
pub async fn explain_pod(
    kube: kube::Client,
    pod: &Pod,
    selector: Option<&str>,
    policy: Policy,
) -> Result<String, ExplainError> {
    let api: Api<ImageCache> = Api::all(kube.clone());
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let objects = api.list(&params).await.map_err(ExplainError::List)?;
    // The registries the pod has pull secrets for, as the node reads them (a Secret that
    // cannot be read adds none).
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let images: Vec<String> = pod_images(pod).into_iter().map(str::to_owned).collect();
    let mut logins = Vec::new();
    for secret in pod
        .spec
        .iter()
        .flat_map(|s| s.image_pull_secrets.iter().flatten())
    {
        let entry = [format!("{namespace}:{}", secret.name)];
        if let Ok(found) = super::pull_secrets::resolve(&kube, &entry, &images).await {
            logins.extend(
                found
                    .iter()
                    .map(|l| crate::reference::registry_host(&l.server)),
            );
        }
    }
    Ok(render(
        pod,
        &objects.items,
        policy,
        &logins,
        Timestamp::now(),
    ))
}

/// Reads a Pod, or the pod template of a workload (its annotations are the template's: the
/// workload's own do nothing, as on the node).
pub fn read_pod(path: &Path) -> Result<Pod, ExplainError> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|source| ExplainError::ReadFile {
                path: path.to_path_buf(),
                source,
            })?
    } else {
        std::fs::read_to_string(path).map_err(|source| ExplainError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?
    };
    parse_pod(&text).map_err(|reason| ExplainError::NotAPod {
        path: path.to_path_buf(),
        reason,
    })
}

fn parse_pod(text: &str) -> Result<Pod, String> {
    let value: serde_json::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    if value["kind"] == "Pod" {
        return serde_json::from_value(value).map_err(|e| e.to_string());
    }
    let template = &value["spec"]["template"];
    if template.is_null() {
        return Err(format!(
            "kind {} has no spec.template",
            value["kind"].as_str().unwrap_or("(none)")
        ));
    }
    let metadata = serde_json::from_value(template["metadata"].clone()).unwrap_or_default();
    let spec: PodSpec =
        serde_json::from_value(template["spec"].clone()).map_err(|e| e.to_string())?;
    let mut pod = Pod {
        metadata,
        spec: Some(spec),
        ..Pod::default()
    };
    if pod.metadata.name.is_none() {
        pod.metadata.name = value["metadata"]["name"].as_str().map(str::to_owned);
    }
    Ok(pod)
}

/// The whole answer for `pod` against `caches` at `now`.
pub fn render(
    pod: &Pod,
    caches: &[ImageCache],
    policy: Policy,
    logins: &[String],
    now: Timestamp,
) -> String {
    let index = CacheIndex::from_entries(caches.iter().filter_map(entry_of));
    let without_id = caches.len() - index.len();
    let mut out = format!(
        "pod {}: {} image cache(s) in the cluster",
        pod.name_any(),
        caches.len()
    );
    if without_id > 0 {
        out.push_str(&format!(" ({without_id} without a cloud cache yet)"));
    }
    out.push('\n');
    let empty = std::collections::BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let options = match resolve_snapshot_request(annotations, policy.auto_default) {
        Err(error) => {
            out.push_str(&format!(
                "the pod would fail (InvalidImageCacheAnnotation): {error}\n"
            ));
            return out;
        }
        Ok(SnapshotRequest::None) => {
            out.push_str("asks for: no image cache (eci-auto-imc \"false\", or no annotation on a node with --auto-match-image-cache=false); below is what automatic matching would choose\n");
            MatchOptions::default()
        }
        Ok(SnapshotRequest::Explicit { id, annotation }) => {
            out.push_str(&format!(
                "asks for: image cache {id} ({annotation}; an explicit id wins over automatic matching)\n"
            ));
            MatchOptions::default()
        }
        Ok(SnapshotRequest::Automatic { options, asked }) => {
            out.push_str(if asked {
                "asks for: automatic matching\n"
            } else {
                "asks for: automatic matching (the default; eci-auto-imc: \"false\" turns it off)\n"
            });
            MatchOptions {
                storage_gib: Some(instance_storage_gib(pod)),
                fresh_only: pulls_always(pod),
                ..options
            }
        }
    };
    let guard = policy.private_guard.then_some(logins);
    out.push_str(&explain(&index.select_for(
        pod_images(pod),
        options,
        guard,
        now,
    )));
    match decide_snapshot(pod, &index, policy, logins, now) {
        Ok(SnapshotDecision::Use { id, name, .. }) => {
            out.push_str(&format!(
                "the node would create the pod from {id} ({name})\n"
            ));
        }
        Ok(SnapshotDecision::AutoCreate { partial }) => {
            if let Some(id) = partial {
                out.push_str(&format!("no cache holds every image: ECI would be asked to match (AutoMatchImageCache), starting the pod from {id}, and to build a cache of all its images\n"));
            } else {
                out.push_str("no usable cache holds an image: ECI would be asked to match (AutoMatchImageCache) and to build a cache of the pod's images\n");
            }
        }
        Ok(SnapshotDecision::Missed { asked, .. }) => {
            out.push_str(if asked {
                "the node would create the pod without a cache (event ImageCacheMissed)\n"
            } else {
                "the node would create the pod without a cache\n"
            });
        }
        Ok(SnapshotDecision::NotRequested) => {
            out.push_str("the node would create the pod without a cache\n");
        }
        Err(error) => out.push_str(&format!(
            "the pod would fail ({}): {error}\n",
            error.reason()
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::imagecache::{ImageCacheSpec, ImageCacheStatus};

    fn cache(name: &str, id: &str, start: &str, images: &[&str]) -> ImageCache {
        let mut o = ImageCache::new(
            name,
            ImageCacheSpec {
                images: images.iter().map(|s| (*s).to_owned()).collect(),
                image_pull_secrets: Vec::new(),
                image_cache_size: 20,
                retention_days: None,
            },
        );
        o.status = Some(ImageCacheStatus {
            phase: Some("Ready".into()),
            image_cache_id: Some(id.into()),
            start_time: Some(Time(start.parse().expect("time"))),
            ..ImageCacheStatus::default()
        });
        o
    }

    const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  annotations:
    k8s.aliyun.com/eci-image-snapshot-id: imc-ignored
spec:
  template:
    metadata:
      annotations:
        k8s.aliyun.com/eci-image-cache: "true"
    spec:
      containers:
      - name: nginx
        image: nginx:1.7.9
"#;

    #[test]
    fn a_deployment_is_read_through_its_template() {
        let pod = parse_pod(DEPLOYMENT).expect("a pod template");
        assert_eq!(pod.name_any(), "nginx-deployment");
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().expect("time");
        let caches = [
            cache("old", "imc-old", "2026-01-01T00:00:00Z", &["nginx:1.7.9"]),
            cache(
                "new",
                "imc-new",
                "2026-01-09T00:00:00Z",
                &["docker.io/library/nginx:1.7.9"],
            ),
            cache("other", "imc-other", "2026-01-09T00:00:00Z", &["redis"]),
        ];
        let text = render(&pod, &caches, Policy::default(), &[], now);
        assert!(text.contains("asks for: automatic matching"), "{text}");
        assert!(text.contains("chosen: imc-new"), "{text}");
        assert!(text.contains("newer"), "{text}");
        assert!(
            text.contains("the node would create the pod from imc-new (new)"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_explicit_id_says_the_pod_fails() {
        let pod = parse_pod(
            "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    k8s.aliyun.com/eci-imc-id: imc-nope\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
        )
        .expect("a pod");
        let text = render(&pod, &[], Policy::default(), &[], Timestamp::UNIX_EPOCH);
        assert!(
            text.contains("the pod would fail (ImageCacheNotFound)"),
            "{text}"
        );
        assert!(parse_pod("kind: ConfigMap\n").is_err());
    }
}
