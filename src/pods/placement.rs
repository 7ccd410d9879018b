//! Where a new group goes under the eci-profile in force: the profile's `securityGroupId`
//! and `vSwitchIds` are read for each create, so a change applies to the next pod without a
//! restart, as ACK does ("Configure an eci-profile",
//! https://www.alibabacloud.com/help/en/ack/ack-managed-and-ack-dedicated/user-guide/configure-an-eci-profile).

use super::translate::{Placement, Unsupported};
use crate::profile::Profile;

/// `base` (the node's flags) under `profile`.
///
/// # Errors
/// [`Unsupported::ZoneWithoutVSwitch`] when the node is in a zone and the profile lists none
/// of its vSwitches.
pub fn under_profile(base: &Placement, profile: &Profile) -> Result<Placement, Unsupported> {
    let own = base.vswitches();
    let vswitches = profile.vswitches_for(&own, base.zone.is_some());
    if vswitches.is_empty() && !own.is_empty() {
        return Err(Unsupported::ZoneWithoutVSwitch {
            zone: base.zone.clone().unwrap_or_default(),
            own: own.join(","),
        });
    }
    let mut placement = base.clone();
    placement.vswitch = (!vswitches.is_empty()).then(|| vswitches.join(","));
    if let Some(group) = &profile.security_group_id {
        placement.security_group = Some(group.clone());
    }
    Ok(placement)
}

/// Why the zone of the node `base` places groups for is drained under `profile` (the profile
/// lists none of its vSwitches), or `None`: the one decision the pod controller refuses pods by
/// and the Node is cordoned by.
pub fn zone_drained(base: &Placement, profile: &Profile) -> Option<String> {
    match under_profile(base, profile) {
        Err(drained @ Unsupported::ZoneWithoutVSwitch { .. }) => Some(drained.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone_node() -> Placement {
        Placement {
            zone: Some("cn-hangzhou-j".into()),
            vswitch: Some("vsw-j1,vsw-j2".into()),
            security_group: Some("sg-flag".into()),
            ..Placement::default()
        }
    }

    #[test]
    fn the_profile_overrides_the_flags_for_the_next_create() {
        let profile = Profile {
            security_group_id: Some("sg-profile".into()),
            vswitch_ids: Some(vec!["vsw-j2".into(), "vsw-k1".into()]),
            ..Profile::default()
        };
        let placement = under_profile(&zone_node(), &profile).expect("placement");
        assert_eq!(placement.security_group.as_deref(), Some("sg-profile"));
        assert_eq!(placement.vswitch.as_deref(), Some("vsw-j2"));
        let unchanged = under_profile(&zone_node(), &Profile::default()).expect("placement");
        assert_eq!(unchanged.security_group.as_deref(), Some("sg-flag"));
        assert_eq!(unchanged.vswitch.as_deref(), Some("vsw-j1,vsw-j2"));
    }

    #[test]
    fn a_zone_whose_vswitches_the_profile_dropped_takes_no_pod() {
        let profile = Profile {
            vswitch_ids: Some(vec!["vsw-k1".into()]),
            ..Profile::default()
        };
        let refused = under_profile(&zone_node(), &profile).expect_err("drained");
        assert_eq!(refused.reason(), "ZoneWithoutVSwitch");
        assert!(refused.to_string().contains("vsw-j1,vsw-j2"), "{refused}");
    }
}
