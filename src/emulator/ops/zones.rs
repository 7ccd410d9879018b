//! Which zone and vSwitch a new group lands in.
//!
//! `CreateContainerGroup` takes up to ten vSwitches, comma-separated, for a multi-zone
//! create, and an optional `ZoneId` (reference §2, "CreateContainerGroup"; ECI's
//! "Create a multi-zone instance" page). The group is in one of them: with a `ZoneId`, the
//! first vSwitch in that zone; without, the first. No ECI page found lists a code for vSwitches
//! that are all outside the `ZoneId` asked, so the emulator answers the documented generic
//! `InvalidParameter` (400) with a message naming both.

use std::collections::BTreeMap;

use crate::emulator::error::ApiError;

/// The zone and the one vSwitch a group is created in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    /// Zone id.
    pub zone: String,
    /// vSwitch id (empty: the account's default vSwitch).
    pub vswitch: String,
}

/// Where a group asked for `vswitches` (comma-separated) in `zone` (may be empty) lands, given
/// the zone of each vSwitch the account has. A vSwitch the layout does not list is in the zone
/// asked (`<region>-a` when none is).
///
/// # Errors
/// `InvalidParameter` when every vSwitch named is in another zone than `zone`.
pub fn land(
    region: &str,
    zone: &str,
    vswitches: &str,
    layout: &BTreeMap<String, String>,
) -> Result<Landing, ApiError> {
    let default_zone = || {
        if zone.is_empty() {
            format!("{region}-a")
        } else {
            zone.to_owned()
        }
    };
    let ids: Vec<&str> = vswitches
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let zone_of = |id: &str| layout.get(id).cloned().unwrap_or_else(default_zone);
    let Some(first) = ids.first() else {
        return Ok(Landing {
            zone: default_zone(),
            vswitch: String::new(),
        });
    };
    if zone.is_empty() {
        return Ok(Landing {
            zone: zone_of(first),
            vswitch: (*first).to_owned(),
        });
    }
    match ids.iter().find(|id| zone_of(id) == zone) {
        Some(id) => Ok(Landing {
            zone: zone.to_owned(),
            vswitch: (*id).to_owned(),
        }),
        None => Err(ApiError::bad_request(
            "InvalidParameter",
            format!(
                "The specified VSwitchId {} is not in the specified ZoneId {zone}: {}.",
                ids.join(","),
                ids.iter()
                    .map(|id| format!("{id} is in {}", zone_of(id)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> BTreeMap<String, String> {
        [("vsw-j1", "cn-hangzhou-j"), ("vsw-k1", "cn-hangzhou-k")]
            .into_iter()
            .map(|(v, z)| (v.to_owned(), z.to_owned()))
            .collect()
    }

    #[test]
    fn a_group_lands_in_its_vswitch_zone() {
        let landing = land("cn-hangzhou", "", "vsw-k1", &layout()).unwrap();
        assert_eq!(landing.zone, "cn-hangzhou-k");
        assert_eq!(landing.vswitch, "vsw-k1");
        let asked = land("cn-hangzhou", "cn-hangzhou-k", "vsw-j1,vsw-k1", &layout()).unwrap();
        assert_eq!(
            asked.vswitch, "vsw-k1",
            "the first vSwitch in the zone asked"
        );
    }

    #[test]
    fn vswitches_of_another_zone_are_refused() {
        let error = land("cn-hangzhou", "cn-hangzhou-k", "vsw-j1", &layout()).unwrap_err();
        let text = format!("{error:?}");
        assert!(text.contains("InvalidParameter"), "{text}");
        assert!(text.contains("vsw-j1 is in cn-hangzhou-j"), "{text}");
    }

    #[test]
    fn unlisted_vswitches_and_no_vswitch_keep_the_zone_asked() {
        let landing = land("cn-hangzhou", "cn-hangzhou-h", "vsw-other", &layout()).unwrap();
        assert_eq!(landing.zone, "cn-hangzhou-h");
        assert_eq!(
            land("cn-hangzhou", "", "", &layout()).unwrap().zone,
            "cn-hangzhou-a"
        );
    }
}
