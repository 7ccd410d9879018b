//! The `eci-profile` ConfigMap's `data`, read and checked into a [`Profile`].
//!
//! The keys and the `selectors` format are ACK's ("Configure an eci-profile",
//! <https://www.alibabacloud.com/help/en/ack/ack-managed-and-ack-dedicated/user-guide/configure-an-eci-profile>):
//! the network settings (`securityGroupId`, `vSwitchIds` comma-separated, `vpcId`), the
//! `enable…` switches written as `"true"`/`"false"`, `featureGates` (`Name=bool`, comma
//! separated), `slsMachineGroup`, and `selectors`, a JSON array of
//! `{name, namespaceSelector, objectSelector, effect: {annotations, labels}}`.
//!
//! Where the page is silent the node chose: a selector must be named and its name unique (the
//! name is what an event and the log refer to); `In`/`NotIn` need values and
//! `Exists`/`DoesNotExist` take none, as the API server checks a `LabelSelector`; an empty
//! `selectors` (`""`, as ACK ships it) is no selector.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector as LabelMatcher, SelectorExt as _};
use serde::Deserialize;

/// The parsed, checked profile. [`Profile::default`] is the profile of a cluster without the
/// ConfigMap: no override, no selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// `securityGroupId`: the security group of new container groups.
    pub security_group_id: Option<String>,
    /// `vSwitchIds`: the vSwitches of new container groups, in the order written.
    pub vswitch_ids: Option<Vec<String>>,
    /// `vpcId` (ECI takes the VPC from the vSwitch; kept for the record).
    pub vpc_id: Option<String>,
    /// `selectors`, in the order written: the first that matches a pod places it.
    pub selectors: Vec<Selector>,
    /// ACK's boolean switches, each `None` when the key is absent.
    pub switches: Switches,
    /// `featureGates`: `Name=bool` pairs.
    pub feature_gates: BTreeMap<String, bool>,
    /// `slsMachineGroup`: the Log Service machine group of ACK's log controller.
    pub sls_machine_group: Option<String>,
}

/// ACK's `enable…` keys, read as booleans (`None`: the key is absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// `enableClusterIp`.
    pub enable_cluster_ip: Option<bool>,
    /// `enableHybridMode`.
    pub enable_hybrid_mode: Option<bool>,
    /// `enableLinuxArm64Node`.
    pub enable_linux_arm64_node: Option<bool>,
    /// `enableLogController`.
    pub enable_log_controller: Option<bool>,
    /// `enablePVCController`.
    pub enable_pvc_controller: Option<bool>,
    /// `enablePrivateZone`.
    pub enable_private_zone: Option<bool>,
    /// `enableReuseSSLKey`.
    pub enable_reuse_ssl_key: Option<bool>,
}

/// One entry of `selectors`: which pods it places, and what it adds to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    /// `name`.
    pub name: String,
    /// `namespaceSelector`, on the labels of the pod's namespace (`None`: every namespace).
    pub namespace_selector: Option<LabelSelector>,
    /// `objectSelector`, on the pod's labels (`None`: every pod).
    pub object_selector: Option<LabelSelector>,
    /// `effect`: what a matched pod gets.
    pub effect: Effect,
    /// The two selectors, checked and ready to match.
    namespace_matcher: LabelMatcher,
    object_matcher: LabelMatcher,
}

/// `effect` of a selector: annotations and labels added to the pods it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    /// Annotations to add.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Labels to add.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Whether a pod with `pod_labels` in a namespace with `namespace_labels` is matched: both
    /// selectors must match, an absent one matches everything.
    pub fn matches(
        &self,
        namespace_labels: &BTreeMap<String, String>,
        pod_labels: &BTreeMap<String, String>,
    ) -> bool {
        self.namespace_matcher.matches(namespace_labels) && self.object_matcher.matches(pod_labels)
    }
}

impl Profile {
    /// The vSwitches a node's new groups get under this profile, given the node's own
    /// (`configured`, from its flags) and whether the node is in one zone (`zoned`).
    ///
    /// ACK applies a changed `vSwitchIds` to the next pod without a restart. A node of no zone
    /// takes the profile's list as it is (ECI picks the zone among them). A zone's node keeps
    /// only those of its own vSwitches the profile still lists (the node cannot tell another
    /// vSwitch's zone: the ECI OpenAPI does not say); none left means the zone is drained.
    pub fn vswitches_for(&self, configured: &[String], zoned: bool) -> Vec<String> {
        match &self.vswitch_ids {
            None => configured.to_vec(),
            Some(listed) if !zoned => listed.clone(),
            Some(listed) => configured
                .iter()
                .filter(|v| listed.contains(v))
                .cloned()
                .collect(),
        }
    }

    /// The first selector that matches (see [`Selector::matches`]).
    pub fn selector_for(
        &self,
        namespace_labels: &BTreeMap<String, String>,
        pod_labels: &BTreeMap<String, String>,
    ) -> Option<&Selector> {
        self.selectors
            .iter()
            .find(|s| s.matches(namespace_labels, pod_labels))
    }
}

/// The keys this node acts on.
const ACTED_ON: &[&str] = &["securityGroupId", "vSwitchIds", "selectors"];
/// ACK's other keys: read and checked, not acted on by this node.
const KNOWN_IGNORED: &[&str] = &[
    "vpcId",
    "enableClusterIp",
    "enableHybridMode",
    "enableLinuxArm64Node",
    "enableLogController",
    "enablePVCController",
    "enablePrivateZone",
    "enableReuseSSLKey",
    "featureGates",
    "slsMachineGroup",
];

/// A selector as written in the JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSelector {
    name: Option<String>,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    #[serde(default)]
    effect: Effect,
}

/// Reads a profile's `data`.
///
/// # Errors
/// Every bad key, one line each naming the key and why: a switch that is not `true`/`false`,
/// `selectors` that are not a JSON array of selectors or hold a bad label selector, a
/// security group not like `sg-…`, a vSwitch not like `vsw-…`, a VPC not like `vpc-…`.
///
/// The warnings of a good profile name the keys this node does not act on (ACK's keys set to
/// something other than empty or `false`; feature gates with one turned on), and keys ACK does
/// not know.
pub fn parse(data: &BTreeMap<String, String>) -> Result<(Profile, Vec<String>), Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut profile = Profile::default();
    let text = |key: &str| {
        data.get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(sg) = text("securityGroupId") {
        if cloud_id(&sg, "sg-") {
            profile.security_group_id = Some(sg);
        } else {
            errors.push(format!(
                "securityGroupId: {sg:?} is not a security group id (sg-…)"
            ));
        }
    }
    if let Some(list) = text("vSwitchIds") {
        let ids: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let bad: Vec<&String> = ids.iter().filter(|id| !cloud_id(id, "vsw-")).collect();
        if bad.is_empty() && !ids.is_empty() {
            profile.vswitch_ids = Some(ids);
        } else if ids.is_empty() {
            errors.push(format!("vSwitchIds: {list:?} names no vSwitch"));
        } else {
            errors.push(format!("vSwitchIds: {bad:?} are not vSwitch ids (vsw-…)"));
        }
    }
    if let Some(vpc) = text("vpcId") {
        if cloud_id(&vpc, "vpc-") {
            profile.vpc_id = Some(vpc);
        } else {
            errors.push(format!("vpcId: {vpc:?} is not a VPC id (vpc-…)"));
        }
    }
    let mut switch = |key: &str, slot: &mut Option<bool>| {
        let Some(value) = data.get(key) else {
            return;
        };
        match value.trim() {
            "" => {}
            "true" => *slot = Some(true),
            "false" => *slot = Some(false),
            other => errors.push(format!(
                "{key}: {other:?} is neither \"true\" nor \"false\""
            )),
        }
    };
    let s = &mut profile.switches;
    switch("enableClusterIp", &mut s.enable_cluster_ip);
    switch("enableHybridMode", &mut s.enable_hybrid_mode);
    switch("enableLinuxArm64Node", &mut s.enable_linux_arm64_node);
    switch("enableLogController", &mut s.enable_log_controller);
    switch("enablePVCController", &mut s.enable_pvc_controller);
    switch("enablePrivateZone", &mut s.enable_private_zone);
    switch("enableReuseSSLKey", &mut s.enable_reuse_ssl_key);
    if let Some(gates) = text("featureGates") {
        for pair in gates.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some((name, "true")) if !name.is_empty() => {
                    profile.feature_gates.insert(name.to_owned(), true);
                }
                Some((name, "false")) if !name.is_empty() => {
                    profile.feature_gates.insert(name.to_owned(), false);
                }
                _ => errors.push(format!(
                    "featureGates: {pair:?} is not Name=true or Name=false"
                )),
            }
        }
    }
    profile.sls_machine_group = text("slsMachineGroup");
    if let Some(json) = text("selectors") {
        match parse_selectors(&json) {
            Ok(selectors) => profile.selectors = selectors,
            Err(why) => errors.push(format!("selectors: {why}")),
        }
    }
    for (key, value) in data {
        let value = value.trim();
        if ACTED_ON.contains(&key.as_str()) {
            continue;
        }
        if KNOWN_IGNORED.contains(&key.as_str()) {
            // A switch left off asks nothing of the node; nor do feature gates all off.
            let off = value.is_empty()
                || value == "false"
                || (key == "featureGates" && !profile.feature_gates.values().any(|on| *on));
            if !off {
                warnings.push(format!("{key}: known to ACK, not acted on by this node"));
            }
        } else {
            warnings.push(format!("{key}: not a key of ACK's eci-profile, ignored"));
        }
    }
    if errors.is_empty() {
        Ok((profile, warnings))
    } else {
        Err(errors)
    }
}

/// Whether `id` looks like a cloud resource id with `prefix` (`sg-`, `vsw-`, `vpc-`): the
/// prefix and then letters and digits.
fn cloud_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// `selectors`: a JSON array of selectors, each checked.
fn parse_selectors(json: &str) -> Result<Vec<Selector>, String> {
    let raw: Vec<RawSelector> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON array of selectors: {e}"))?;
    let mut names = BTreeSet::new();
    let mut selectors = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let name = raw
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("selector #{index} has no name"))?;
        if !names.insert(name.clone()) {
            return Err(format!("two selectors are named {name:?}"));
        }
        let namespace_matcher = matcher(raw.namespace_selector.as_ref())
            .map_err(|why| format!("selector {name:?}: namespaceSelector: {why}"))?;
        let object_matcher = matcher(raw.object_selector.as_ref())
            .map_err(|why| format!("selector {name:?}: objectSelector: {why}"))?;
        for key in raw
            .effect
            .annotations
            .keys()
            .chain(raw.effect.labels.keys())
        {
            if !valid_key(key) {
                return Err(format!(
                    "selector {name:?}: effect: {key:?} is not a valid key"
                ));
            }
        }
        for value in raw.effect.labels.values() {
            if !valid_label_value(value) {
                return Err(format!(
                    "selector {name:?}: effect: label value {value:?} is not a label value"
                ));
            }
        }
        selectors.push(Selector {
            name,
            namespace_selector: raw.namespace_selector,
            object_selector: raw.object_selector,
            effect: raw.effect,
            namespace_matcher,
            object_matcher,
        });
    }
    Ok(selectors)
}

/// A label selector checked as the API server checks one, ready to match (kube's own
/// matcher: `matchLabels` and `In`, `NotIn`, `Exists`, `DoesNotExist`).
fn matcher(selector: Option<&LabelSelector>) -> Result<LabelMatcher, String> {
    let Some(selector) = selector else {
        return Ok(LabelMatcher::default());
    };
    for (key, value) in selector.match_labels.iter().flatten() {
        if !valid_key(key) || !valid_label_value(value) {
            return Err(format!("matchLabels {key:?}: {value:?} is not a label"));
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let key = &requirement.key;
        if !valid_key(key) {
            return Err(format!("{key:?} is not a label key"));
        }
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "{key:?} {} needs at least one value",
                    requirement.operator
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!("{key:?} {} takes no values", requirement.operator));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "{key:?}: operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                ));
            }
        }
        if let Some(bad) = values.iter().find(|v| !valid_label_value(v)) {
            return Err(format!("{key:?}: {bad:?} is not a label value"));
        }
    }
    LabelMatcher::try_from(selector.clone()).map_err(|e| e.to_string())
}

/// A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters (letters, digits, `-`, `_`, `.`, alphanumeric at both ends).
fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_label_value(name)
}

/// A label value: empty, or at most 63 letters, digits, `-`, `_`, `.`, alphanumeric at both
/// ends.
fn valid_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_profiles_vswitches_narrow_a_zones_and_replace_a_zoneless_nodes() {
        let own = vec!["vsw-j1".to_owned(), "vsw-j2".to_owned()];
        let none = Profile::default();
        assert_eq!(none.vswitches_for(&own, true), own);
        let listed = Profile {
            vswitch_ids: Some(vec!["vsw-j2".into(), "vsw-k1".into()]),
            ..Profile::default()
        };
        assert_eq!(listed.vswitches_for(&own, true), ["vsw-j2"]);
        assert_eq!(listed.vswitches_for(&own, false), ["vsw-j2", "vsw-k1"]);
        let other_zone = Profile {
            vswitch_ids: Some(vec!["vsw-k1".into()]),
            ..Profile::default()
        };
        assert!(other_zone.vswitches_for(&own, true).is_empty(), "drained");
    }

    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        data(pairs)
    }

    fn errors_of(pairs: &[(&str, &str)]) -> Vec<String> {
        parse(&data(pairs)).expect_err("bad profile")
    }

    #[test]
    fn ack_default_profile_parses() {
        let (profile, warnings) = parse(&data(&[
            ("enableClusterIp", "true"),
            ("enableHybridMode", "false"),
            ("enableLinuxArm64Node", "false"),
            ("enableLogController", "false"),
            ("enablePVCController", "false"),
            ("enablePrivateZone", "false"),
            ("enableReuseSSLKey", "false"),
            ("featureGates", "WaitForFirstConsumer=false"),
            ("securityGroupId", "sg-2zeeyaaxlkq9sppl1234"),
            ("selectors", ""),
            ("slsMachineGroup", ""),
            (
                "vSwitchIds",
                "vsw-2ze23nqzig8inprou1234, vsw-2ze94pjtfuj9vaymf1234",
            ),
            ("vpcId", "vpc-2zeghwzptn5zii0w71234"),
        ]))
        .expect("ACK's default profile");
        assert_eq!(
            profile.security_group_id.as_deref(),
            Some("sg-2zeeyaaxlkq9sppl1234")
        );
        assert_eq!(
            profile.vswitch_ids,
            Some(vec![
                "vsw-2ze23nqzig8inprou1234".to_owned(),
                "vsw-2ze94pjtfuj9vaymf1234".to_owned()
            ])
        );
        assert_eq!(profile.vpc_id.as_deref(), Some("vpc-2zeghwzptn5zii0w71234"));
        assert_eq!(profile.switches.enable_cluster_ip, Some(true));
        assert_eq!(profile.switches.enable_pvc_controller, Some(false));
        assert!(!profile.feature_gates["WaitForFirstConsumer"]);
        assert!(profile.selectors.is_empty());
        // Only the keys set to something the node does not do are named.
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.starts_with("enableClusterIp:")));
        assert!(warnings.iter().any(|w| w.starts_with("vpcId:")));
    }

    #[test]
    fn an_empty_profile_is_the_default() {
        assert_eq!(
            parse(&BTreeMap::new()).expect("empty"),
            (Profile::default(), vec![])
        );
    }

    #[test]
    fn unknown_keys_are_warned_about_by_name() {
        let (_, warnings) = parse(&data(&[("colour", "blue")])).expect("parses");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("colour:"), "{warnings:?}");
    }

    #[test]
    fn a_switch_that_is_not_a_boolean_is_an_error() {
        let errors = errors_of(&[("enableClusterIp", "maybe"), ("enablePVCController", "yes")]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("enableClusterIp:"), "{errors:?}");
        assert!(errors[0].contains("maybe"));
    }

    #[test]
    fn bad_cloud_ids_are_errors() {
        let errors = errors_of(&[
            ("securityGroupId", "group-1"),
            ("vSwitchIds", "vsw-abc,subnet-1"),
            ("vpcId", "vpc-"),
        ]);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("securityGroupId:")));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("vSwitchIds:") && e.contains("subnet-1"))
        );
        assert!(errors.iter().any(|e| e.starts_with("vpcId:")));
        assert!(errors_of(&[("vSwitchIds", " , ")])[0].starts_with("vSwitchIds:"));
    }

    #[test]
    fn bad_feature_gates_are_errors() {
        assert!(errors_of(&[("featureGates", "A=true,B")])[0].starts_with("featureGates:"));
    }

    #[test]
    fn selectors_that_are_not_json_are_an_error() {
        let errors = errors_of(&[("selectors", "[{\"name\": ")]);
        assert!(errors[0].starts_with("selectors:"), "{errors:?}");
        let errors = errors_of(&[("selectors", "{\"name\": \"x\"}")]);
        assert!(errors[0].contains("JSON array"), "{errors:?}");
        let errors = errors_of(&[("selectors", r#"[{"name": "x", "colour": "blue"}]"#)]);
        assert!(errors[0].contains("colour"), "{errors:?}");
    }

    #[test]
    fn bad_label_selectors_are_errors() {
        for (json, why) in [
            (
                r#"[{"name":"a","namespaceSelector":{"matchExpressions":[{"key":"k","operator":"Near","values":["v"]}]}}]"#,
                "Near",
            ),
            (
                r#"[{"name":"a","objectSelector":{"matchExpressions":[{"key":"k","operator":"In"}]}}]"#,
                "needs at least one value",
            ),
            (
                r#"[{"name":"a","objectSelector":{"matchExpressions":[{"key":"k","operator":"Exists","values":["v"]}]}}]"#,
                "takes no values",
            ),
            (
                r#"[{"name":"a","objectSelector":{"matchLabels":{"bad key":"v"}}}]"#,
                "bad key",
            ),
            (r#"[{"objectSelector":{}}]"#, "no name"),
            (r#"[{"name":"a"},{"name":"a"}]"#, "two selectors"),
            (
                r#"[{"name":"a","effect":{"labels":{"k":"not a value"}}}]"#,
                "not a label value",
            ),
        ] {
            let errors = errors_of(&[("selectors", json)]);
            assert!(
                errors.len() == 1 && errors[0].starts_with("selectors:") && errors[0].contains(why),
                "{json}: {errors:?}"
            );
        }
    }

    fn profile_with(json: &str) -> Profile {
        parse(&data(&[("selectors", json)])).expect("parses").0
    }

    #[test]
    fn selectors_match_namespace_and_pod_labels() {
        let profile = profile_with(
            r#"[
              {"name": "ns", "namespaceSelector": {"matchLabels": {"eci": "true"}},
               "effect": {"annotations": {"k8s.aliyun.com/eci-use-specs": "2-4Gi"}}},
              {"name": "pods", "objectSelector": {"matchExpressions": [
                 {"key": "tier", "operator": "In", "values": ["batch", "ml"]},
                 {"key": "pinned", "operator": "DoesNotExist"}]},
               "effect": {"labels": {"on-eci": "yes"}}},
              {"name": "both",
               "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
               "objectSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}}
            ]"#,
        );
        let first = profile.selectors.first().expect("a selector");
        assert_eq!(
            first.effect.annotations["k8s.aliyun.com/eci-use-specs"],
            "2-4Gi"
        );
        let name = |ns: &[(&str, &str)], pod: &[(&str, &str)]| {
            profile
                .selector_for(&labels(ns), &labels(pod))
                .map(|s| s.name.clone())
        };
        assert_eq!(name(&[("eci", "true")], &[]), Some("ns".into()));
        assert_eq!(name(&[("eci", "false")], &[]), None);
        assert_eq!(name(&[], &[("tier", "ml")]), Some("pods".into()));
        assert_eq!(name(&[], &[("tier", "ml"), ("pinned", "1")]), None);
        assert_eq!(name(&[], &[("tier", "web")]), None);
        assert_eq!(name(&[("team", "a")], &[]), Some("both".into()));
        assert_eq!(name(&[("team", "a")], &[("env", "prod")]), None);
        assert_eq!(
            name(&[("team", "a")], &[("env", "dev")]),
            Some("both".into())
        );
        // The first that matches wins.
        assert_eq!(
            name(&[("eci", "true"), ("team", "a")], &[("tier", "ml")]),
            Some("ns".into())
        );
    }

    #[test]
    fn a_selector_without_selectors_matches_every_pod() {
        let profile = profile_with(r#"[{"name": "all"}]"#);
        assert!(profile.selector_for(&labels(&[]), &labels(&[])).is_some());
    }
}
