//! ECI's pod annotations → `CreateContainerGroup` parameters, checked before anything is asked
//! of the cloud.
//!
//! The list is ECI's "ECI Pod Annotation" page
//! (<https://help.aliyun.com/en/eci/user-guide/pod-annotations-1>, Chinese
//! <https://help.aliyun.com/zh/eci/user-guide/pod-annotations>); each key is spelt once in
//! [`crate::eci::annotation`], and [`TABLE`] says what becomes of each (the README's table is
//! generated from it and a test keeps the two equal). An annotation with a parameter sets it;
//! one whose effect is the node's own (`eci-fail-strategy`, `eci-max-pending-minute`,
//! `eci-instance-family`/`-generation`) is carried out here and by the pass; one ECI's API has
//! no parameter for is a Warning event naming it. A malformed value fails the pod with
//! [`INVALID_REASON`] and an event naming the annotation and its value.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::Pod;

use crate::eci::{ContainerGroup, CreateContainerGroup, annotation as key};

/// Status and event reason of a pod whose annotation is malformed.
pub const INVALID_REASON: &str = "InvalidAnnotation";
/// Event reason of an annotation ECI's API has no parameter for, or that has no effect here.
pub const UNSUPPORTED_REASON: &str = "UnsupportedAnnotation";
/// ECI's event reason when `eci-instance-family`/`-generation` meet specs that are all ECS
/// types ("Specify ECS instance families", which ignores them then).
pub const IGNORED_FEATURES_REASON: &str = "IgnoreInstanceTypeFeatures";

/// Most specs `eci-use-specs` (and `InstanceType`) takes.
pub const MAX_SPECS: usize = 5;
/// Most vSwitches of one group.
pub const MAX_VSWITCHES: usize = 10;
/// Most security groups of one group.
pub const MAX_SECURITY_GROUPS: usize = 5;
/// Most tags `eci-custom-tags` adds.
pub const MAX_CUSTOM_TAGS: usize = 3;
/// `eci-max-pending-minute`: smallest, largest and default (4 hours).
pub const MAX_PENDING_MINUTES: std::ops::RangeInclusive<u64> = 10..=1440;
/// The time a group may stay Pending when the pod does not say.
pub const DEFAULT_MAX_PENDING: Duration = Duration::from_secs(240 * 60);

/// A malformed annotation: the pod fails with [`INVALID_REASON`].
pub use crate::eci::annotation_value::Invalid;

/// How a pod's failed create is handled (`eci-fail-strategy`, ECI's "Configure a fault
/// handling policy for a pod",
/// <https://www.alibabacloud.com/help/en/eci/user-guide/configure-a-fault-handling-policy-for-a-pod>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailStrategy {
    /// `fail-back` (and `fail-over`): the node keeps retrying; the pod stays Pending with the
    /// reason in its `ContainerInstanceCreated` condition.
    #[default]
    FailBack,
    /// `fail-fast`: the first refusal is final; the pod stays Pending with reason
    /// `ContainerInstanceScheduleFailed` and is not retried, for its owner to decide.
    FailFast,
}

/// What the node itself does for a pod's annotations, beyond the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// `eci-fail-strategy`.
    pub fail_strategy: FailStrategy,
    /// `eci-max-pending-minute`.
    pub max_pending: Duration,
}

/// What [`apply`] did besides setting parameters: Warning events to publish once the group
/// exists, as `(reason, message)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The warnings.
    pub warnings: Vec<(&'static str, String)>,
}

/// Node-wide defaults a pod's annotation overrides (`--ram-role-name`, `--spot-fallback`; the
/// node's vSwitches and security group are already in the request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    /// RAM role of new groups.
    pub ram_role: Option<String>,
    /// Whether a spot pod falls back to pay-as-you-go when no spot instance is in stock.
    pub spot_fallback: bool,
}

/// What the node does for the pod itself: its fail strategy and longest Pending time. A value
/// [`apply`] would refuse counts as absent here (the pod has failed for it already).
pub fn behaviour(pod: &Pod) -> Behaviour {
    let fail_strategy = match get(pod, key::FAIL_STRATEGY) {
        Some("fail-fast") => FailStrategy::FailFast,
        _ => FailStrategy::FailBack,
    };
    let max_pending = get(pod, key::MAX_PENDING_MINUTE)
        .and_then(|v| integer(key::MAX_PENDING_MINUTE, v, MAX_PENDING_MINUTES).ok())
        .map_or(DEFAULT_MAX_PENDING, |m| Duration::from_secs(m * 60));
    Behaviour {
        fail_strategy,
        max_pending,
    }
}

/// Applies the pod's annotations to its request (after [`super::translate`] built it from the
/// spec and the node's placement): parameters set, node defaults overridden.
///
/// # Errors
/// [`Invalid`] for the first malformed annotation.
pub fn apply(
    pod: &Pod,
    defaults: &Defaults,
    request: &mut CreateContainerGroup,
) -> Result<Applied, Invalid> {
    let mut applied = Applied::default();
    instance::instance(pod, request, &mut applied)?;
    instance::spot(pod, defaults, request, &mut applied)?;
    settings::network(pod, request, &mut applied)?;
    settings::identity(pod, defaults, request)?;
    settings::system(pod, request)?;
    settings::registries_of(pod, request)?;
    if let Some(v) = get(pod, key::FAIL_STRATEGY) {
        one_of(
            key::FAIL_STRATEGY,
            v,
            &["fail-back", "fail-over", "fail-fast"],
        )?;
    }
    if let Some(v) = get(pod, key::MAX_PENDING_MINUTE) {
        integer(key::MAX_PENDING_MINUTE, v, MAX_PENDING_MINUTES)?;
    }
    for (k, why) in WARNED {
        if get(pod, k).is_some() {
            applied
                .warnings
                .push((UNSUPPORTED_REASON, format!("{k}: {why}")));
        }
    }
    let unknown: Vec<&String> = pod
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(key::PREFIX))
        .filter(|k| {
            !TABLE.iter().any(|r| r.key == k.as_str()) && !key::WRITTEN_BACK.contains(&k.as_str())
        })
        .collect();
    for k in unknown {
        applied.warnings.push((
            UNSUPPORTED_REASON,
            format!(
                "{k} is not an annotation of ECI's \"ECI Pod Annotation\" page; it has no effect"
            ),
        ));
    }
    Ok(applied)
}

/// The annotations ECI's virtual node writes on a pod once its group exists ("ECI Pod
/// Annotation", the ones added after scheduling), from the group as described. The group's
/// EIP id is not in `DescribeContainerGroups`: `allocated-eipInstanceId` is written only for
/// an EIP the pod named.
pub fn written_back(pod: &Pod, group: &ContainerGroup) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let mut put = |k: &'static str, v: &str| {
        if !v.is_empty() {
            out.insert(k, v.to_owned());
        }
    };
    put(key::INSTANCE_ID, &group.container_group_id);
    let spec = if group.instance_type.is_empty() && group.cpu > 0.0 {
        format!("{:.1}-{:.1}Gi", group.cpu, group.memory)
    } else {
        group.instance_type.clone()
    };
    put(key::INSTANCE_SPEC, &spec);
    put(key::INSTANCE_COMPUTE_CATEGORY, &group.compute_category);
    put(key::ALLOCATED_EIP_ADDRESS, &group.internet_ip);
    if !group.internet_ip.is_empty() {
        put(
            key::ALLOCATED_EIP_INSTANCE_ID,
            get(pod, key::EIP_INSTANCE_ID).unwrap_or_default(),
        );
    }
    put(key::ALLOCATED_IPV6_ADDRESS, &group.ipv6_address);
    put(key::ENI_INSTANCE_ID, &group.eni_instance_id);
    put(key::VPC, &group.vpc_id);
    out
}

/// Of `wanted`, the annotations the pod does not have yet with that value.
pub fn missing(
    pod: &Pod,
    wanted: BTreeMap<&'static str, String>,
) -> BTreeMap<&'static str, String> {
    let have = pod.metadata.annotations.as_ref();
    wanted
        .into_iter()
        .filter(|(k, v)| have.and_then(|a| a.get(*k)) != Some(v))
        .collect()
}

mod instance;
mod settings;
mod table;
mod values;

use table::WARNED;
pub use table::{Row, TABLE, readme_table};
use values::{get, integer, one_of};

#[cfg(test)]
#[path = "annotations/tests.rs"]
mod tests;
