//! Entry points for the fuzz targets of `fuzz/` (issue #20), kept in this room so the targets
//! reach only what the node itself runs on a pod it reads. Not an API: hidden from the docs.

use k8s_openapi::api::core::v1::Pod;

use super::{Placement, annotations, check_supported, env::Sources, fields};
use crate::imagecache::SnapshotDecision;

/// A pod as the watch hands it over (any JSON): checked, reviewed field by field, its
/// behaviour annotations read, and translated into a `CreateContainerGroup` with none of the
/// objects it names present (each a clear "missing", never a panic).
pub fn translate(data: &[u8]) {
    let Ok(pod) = serde_json::from_slice::<Pod>(data) else {
        return;
    };
    let placement = Placement {
        cluster: "fuzz".into(),
        node: "virtual-kubelet".into(),
        cluster_domain: "cluster.local".into(),
        ..Placement::default()
    };
    let _ = annotations::behaviour(&pod);
    let _ = fields::review(&pod);
    if check_supported(&pod).is_err() {
        return;
    }
    let _ = super::translate(
        &pod,
        &placement,
        &Sources::default(),
        &SnapshotDecision::NotRequested,
        Vec::new(),
    );
}
