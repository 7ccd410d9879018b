//! A pod's `imagePullSecrets` as the registry logins of its container group
//! (`ImageRegistryCredential.N`), for the registries its images live on.
//!
//! As a kubelet does, a pull secret that is missing or unusable does not stop the pod: it is
//! skipped with a Warning event (`FailedToRetrieveImagePullSecret`) and the images are pulled
//! with the logins that remain, or anonymously. Nothing of a Secret's content reaches an
//! event or a log line (the errors name the Secret and what is wrong with it).

use k8s_openapi::api::core::v1::Pod;

use crate::{eci::ImageRegistryCredential, imagecache};

/// The logins of `pod`'s pull secrets, and one warning per secret that could not be used.
pub async fn credentials(
    client: &kube::Client,
    pod: &Pod,
) -> (Vec<ImageRegistryCredential>, Vec<String>) {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let Some(spec) = pod.spec.as_ref() else {
        return (Vec::new(), Vec::new());
    };
    let images: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter_map(|c| c.image.clone())
        .collect();
    let mut logins: Vec<ImageRegistryCredential> = Vec::new();
    let mut warnings = Vec::new();
    for reference in spec.image_pull_secrets.iter().flatten() {
        let name = reference.name.as_str();
        if name.is_empty() {
            continue;
        }
        // One Secret at a time, so one bad Secret costs only its own logins.
        let entry = [format!("{namespace}:{name}")];
        match imagecache::resolve_pull_secrets(client, &entry, &images).await {
            Ok(found) => {
                for login in found {
                    // An earlier Secret's login for a registry wins, as for the kubelet.
                    if !logins.iter().any(|l| l.server == login.server) {
                        logins.push(login);
                    }
                }
            }
            Err(error) => warnings.push(format!(
                "Unable to retrieve some image pull secrets ({name}); attempting to pull the \
                 image may not succeed: {}",
                crate::error_chain(&error)
            )),
        }
    }
    logins.truncate(imagecache::MAX_CREDENTIALS);
    (logins, warnings)
}
