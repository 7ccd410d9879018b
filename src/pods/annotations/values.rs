//! Reading a pod's annotations: the value of one (trimmed), and the readers of values, shared
//! with ImageCaches ([`crate::eci::annotation_value`]).

use k8s_openapi::api::core::v1::Pod;

pub(super) use crate::eci::annotation_value::{
    bandwidth_bits, boolean, ids, integer, invalid, list, one_of, registries, small,
};

/// The pod's annotation `key`, trimmed; an empty value counts as absent.
pub(super) fn get<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}
