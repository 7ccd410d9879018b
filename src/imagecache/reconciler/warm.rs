//! Warm before the burst: a workload that asks for it gets an ImageCache of its pod template's
//! images before it scales, so its first pod already starts from a cache.
//!
//! # Expected flow (leader only, every [`Warm::interval`])
//! 1. Deployments, StatefulSets, Jobs and CronJobs are listed; those annotated
//!    [`ANNOTATION_WARM`]` = "true"` whose pod template lands on a virtual node (its
//!    `nodeName`, the `type: virtual-kubelet` node selector, or a toleration of the
//!    `virtual-kubelet.io/provider` taint) want a cache;
//! 2. each gets an ImageCache `warm-<hash of kind, namespace and name>`, labelled
//!    [`LABEL_WARM`], holding the template's images (init containers first, at most 20) and its
//!    pull secrets; a changed template changes the object's images, and the reconciler updates
//!    the cloud cache;
//! 3. an object whose workload is gone or no longer asks is marked with the time
//!    ([`ANNOTATION_ORPHANED`]) and deleted [`Warm::grace`] later, unless the workload asks
//!    again meanwhile.
//!
//! Only objects of the node's ImageCache class are kept (each class has its own leader), and a
//! template pinned by `nodeName` is warmed by the leader of that node only.

use std::{collections::BTreeMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::PodTemplateSpec,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
};

use super::Context;
use crate::imagecache::{
    host::{LABEL_CLASS, class_selector},
    resource::{ImageCache, ImageCacheSpec, MAX_IMAGES},
};

/// The annotation on a workload asking for its images to be cached before it scales.
pub const ANNOTATION_WARM: &str = "eci.alibabacloud.com/warm-image-cache";
/// Label of the ImageCaches made for workloads.
pub const LABEL_WARM: &str = "eci.alibabacloud.com/warm";
/// Annotation naming the workload an ImageCache was made for, `Kind/namespace/name`.
pub const ANNOTATION_WORKLOAD: &str = "eci.alibabacloud.com/warm-workload";
/// Annotation with the time the workload went away (or stopped asking).
pub const ANNOTATION_ORPHANED: &str = "eci.alibabacloud.com/warm-orphaned-at";
/// The taint key of virtual nodes (ACK's and ours).
const VIRTUAL_NODE_TAINT: &str = "virtual-kubelet.io/provider";

/// How workloads are warmed.
#[derive(Debug, Clone)]
pub struct Warm {
    /// Time between two rounds.
    pub interval: Duration,
    /// Time a cache is kept after its workload went away.
    pub grace: Duration,
    /// The names of the nodes this process serves (one, or one per zone): a template naming
    /// one lands here.
    pub node_names: Vec<String>,
    /// The class label the objects get.
    pub class: Option<String>,
}

/// A workload and its pod template.
struct Workload {
    kind: &'static str,
    namespace: String,
    name: String,
    asks: bool,
    template: Option<PodTemplateSpec>,
}

impl Workload {
    fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The ImageCache name for workload `id`: `warm-` and 16 hex digits of its SHA-256.
fn object_name(id: &str) -> String {
    use sha2::Digest as _;
    format!(
        "warm-{}",
        &hex::encode(sha2::Sha256::digest(id.as_bytes()))[..16]
    )
}

/// Whether pods of `template` land on a virtual node.
fn targets_virtual_node(template: &PodTemplateSpec, node_names: &[String]) -> bool {
    let Some(spec) = template.spec.as_ref() else {
        return false;
    };
    spec.node_name
        .as_ref()
        .is_some_and(|name| node_names.contains(name))
        || spec
            .node_selector
            .as_ref()
            .is_some_and(|s| s.get("type").map(String::as_str) == Some("virtual-kubelet"))
        || spec.tolerations.iter().flatten().any(|t| {
            t.key.as_deref() == Some(VIRTUAL_NODE_TAINT)
                || (t.key.is_none() && t.operator.as_deref() == Some("Exists"))
        })
}

/// The cache a template wants: its images (init containers first, repeats dropped, at most
/// [`MAX_IMAGES`]) and pull secrets.
fn wanted(template: &PodTemplateSpec, namespace: &str) -> Option<ImageCacheSpec> {
    let spec = template.spec.as_ref()?;
    let mut images: Vec<String> = Vec::new();
    for image in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter_map(|c| c.image.clone())
    {
        if !images.contains(&image) {
            images.push(image);
        }
    }
    images.truncate(MAX_IMAGES);
    if images.is_empty() {
        return None;
    }
    Some(ImageCacheSpec {
        images,
        image_pull_secrets: spec
            .image_pull_secrets
            .iter()
            .flatten()
            .filter(|s| !s.name.is_empty())
            .map(|s| format!("{namespace}:{}", s.name))
            .collect(),
        image_cache_size: crate::imagecache::DEFAULT_IMAGE_CACHE_SIZE_GIB,
        retention_days: None,
    })
}

fn asks(annotations: &BTreeMap<String, String>) -> bool {
    annotations
        .get(ANNOTATION_WARM)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

type RoundError = Box<dyn std::error::Error + Send + Sync>;

/// Every workload of the four kinds, with whether it asks for a cache.
async fn workloads(kube: &kube::Client) -> Result<Vec<Workload>, RoundError> {
    let all = ListParams::default();
    let mut out = Vec::new();
    let mut add = |kind, meta: &ObjectMeta, template: Option<PodTemplateSpec>| {
        out.push(Workload {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            asks: meta.annotations.as_ref().is_some_and(asks),
            template,
        });
    };
    for d in Api::<Deployment>::all(kube.clone()).list(&all).await? {
        add("Deployment", &d.metadata, Some(d.spec.template));
    }
    for s in Api::<StatefulSet>::all(kube.clone()).list(&all).await? {
        add("StatefulSet", &s.metadata, Some(s.spec.template));
    }
    for j in Api::<Job>::all(kube.clone()).list(&all).await? {
        add("Job", &j.metadata, j.spec.map(|s| s.template));
    }
    for c in Api::<CronJob>::all(kube.clone()).list(&all).await? {
        add(
            "CronJob",
            &c.metadata,
            c.spec.job_template.spec.map(|s| s.template),
        );
    }
    Ok(out)
}

/// Keeps the caches of workloads that ask for one until `stop`.
pub(super) async fn keep(
    ctx: std::sync::Arc<Context>,
    settings: Warm,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    loop {
        if let Err(error) = round(&ctx, &settings).await {
            tracing::warn!(
                error = &*error as &dyn std::error::Error,
                "cannot keep the caches of warmed workloads; retrying"
            );
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
    }
}

async fn round(ctx: &Context, settings: &Warm) -> Result<(), RoundError> {
    let api: Api<ImageCache> = Api::all(ctx.kube.clone());
    let existing = api
        .list(&ListParams::default().labels(&format!(
            "{LABEL_WARM}=true,{}",
            class_selector(settings.class.as_deref())
        )))
        .await?;
    let mut wanted_names = Vec::new();
    for workload in workloads(&ctx.kube).await? {
        let Some(template) = workload.template.as_ref().filter(|_| workload.asks) else {
            continue;
        };
        if !targets_virtual_node(template, &settings.node_names) {
            continue;
        }
        let Some(spec) = wanted(template, &workload.namespace) else {
            continue;
        };
        let name = object_name(&workload.id());
        wanted_names.push(name.clone());
        match existing.items.iter().find(|o| o.name_any() == name) {
            None => {
                let mut labels = BTreeMap::from([(LABEL_WARM.to_owned(), "true".to_owned())]);
                if let Some(class) = &settings.class {
                    labels.insert(LABEL_CLASS.to_owned(), class.clone());
                }
                let object = ImageCache {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        labels: Some(labels),
                        annotations: Some(BTreeMap::from([(
                            ANNOTATION_WORKLOAD.to_owned(),
                            workload.id(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    spec,
                    status: None,
                };
                match api.create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        tracing::info!(workload = %workload.id(), imagecache.name = %name, "warming a workload's images")
                    }
                    Err(kube::Error::Api(status)) if status.code == 409 => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Some(object) => {
                let orphaned = object.annotations().contains_key(ANNOTATION_ORPHANED);
                if object.spec.images != spec.images
                    || object.spec.image_pull_secrets != spec.image_pull_secrets
                    || orphaned
                {
                    // The template changed (or the workload asks again): follow it.
                    let patch = serde_json::json!({
                        "metadata": {"annotations": {ANNOTATION_ORPHANED: null}},
                        "spec": {"images": spec.images, "imagePullSecrets": spec.image_pull_secrets},
                    });
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                    tracing::info!(workload = %workload.id(), imagecache.name = %name, "the workload's images changed; following them");
                }
            }
        }
    }
    let now = (ctx.clock)();
    let grace = SignedDuration::try_from(settings.grace).unwrap_or(SignedDuration::MAX);
    for object in existing.items.iter().filter(|o| {
        !wanted_names.contains(&o.name_any()) && o.metadata.deletion_timestamp.is_none()
    }) {
        let name = object.name_any();
        match object
            .annotations()
            .get(ANNOTATION_ORPHANED)
            .and_then(|t| t.parse::<Timestamp>().ok())
        {
            None => {
                let patch = serde_json::json!({
                    "metadata": {"annotations": {ANNOTATION_ORPHANED: now.to_string()}},
                });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            Some(since) if now.duration_since(since) >= grace => {
                tracing::info!(imagecache.name = %name, "its workload went away; deleting the warm cache");
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, LocalObjectReference, PodSpec, Toleration};

    use super::*;

    fn template(node: Option<&str>, tolerate: bool) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                node_name: node.map(str::to_owned),
                tolerations: tolerate.then(|| {
                    vec![Toleration {
                        key: Some(VIRTUAL_NODE_TAINT.into()),
                        operator: Some("Exists".into()),
                        ..Toleration::default()
                    }]
                }),
                init_containers: Some(vec![Container {
                    name: "init".into(),
                    image: Some("busybox".into()),
                    ..Container::default()
                }]),
                containers: vec![
                    Container {
                        name: "app".into(),
                        image: Some("app:v1".into()),
                        ..Container::default()
                    },
                    Container {
                        name: "again".into(),
                        image: Some("busybox".into()),
                        ..Container::default()
                    },
                ],
                image_pull_secrets: Some(vec![LocalObjectReference {
                    name: "login".into(),
                }]),
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn a_template_for_the_virtual_node_wants_its_images_cached() {
        let nodes = ["vk-cn-hangzhou-j".to_owned(), "vk-cn-hangzhou-k".to_owned()];
        assert!(targets_virtual_node(
            &template(Some("vk-cn-hangzhou-k"), false),
            &nodes
        ));
        assert!(targets_virtual_node(&template(None, true), &nodes));
        assert!(!targets_virtual_node(
            &template(Some("worker-1"), false),
            &nodes
        ));
        let spec = wanted(&template(None, true), "shop").expect("images");
        assert_eq!(spec.images, ["busybox", "app:v1"]);
        assert_eq!(spec.image_pull_secrets, ["shop:login"]);
    }

    #[test]
    fn names_are_stable_valid_and_distinct() {
        let a = object_name("Deployment/shop/web");
        assert_eq!(a, object_name("Deployment/shop/web"));
        assert_ne!(a, object_name("StatefulSet/shop/web"));
        assert_eq!(a.len(), "warm-".len() + 16);
        let on = BTreeMap::from([(ANNOTATION_WARM.to_owned(), "True".to_owned())]);
        assert!(asks(&on));
        assert!(!asks(&BTreeMap::new()));
    }
}
