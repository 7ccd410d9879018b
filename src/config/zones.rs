//! Which virtual nodes one process registers: one per zone of its vSwitches, as ACK's managed
//! virtual node does, or the single node every existing manifest names.
//!
//! ACK names a zone's node `virtual-kubelet-<zone-id>` (the "virtual node FAQ",
//! https://www.alibabacloud.com/help/en/ack/serverless-kubernetes/user-guide/virtual-node-faq),
//! and gives each zone's pods only that zone's vSwitches. With one zone, or a `--node-name`
//! given, the single node keeps its name (`virtual-kubelet` unless told), so the user guide's
//! `nodeName: virtual-kubelet` keeps working.

use super::checks::valid_node_name;

/// ECI takes at most this many vSwitches in one `CreateContainerGroup` (its `VSwitchId` is "up
/// to 10 IDs comma-separated").
pub const MAX_VSWITCHES: usize = 10;

/// One virtual node this process registers and serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneNode {
    /// The Node's name.
    pub name: String,
    /// Its zone: the `topology.kubernetes.io/zone` label and the groups' `ZoneId` (`None`: the
    /// cloud picks one among the vSwitches').
    pub zone: Option<String>,
    /// The vSwitches its groups are created in (empty: the cloud's default vSwitch).
    pub vswitches: Vec<String>,
}

/// A zone and its vSwitches, as `--zone-vswitches` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSwitches {
    /// Zone id, `cn-hangzhou-j`.
    pub zone: String,
    /// Its vSwitch ids.
    pub vswitches: Vec<String>,
}

/// Parses `--zone-vswitches`: `ZONE=vsw-1,vsw-2;ZONE2=vsw-3` (zones apart by `;`, a zone's
/// vSwitches by `,`).
///
/// # Errors
/// A message naming the part that is wrong: a zone without `=`, an id that is not `vsw-…`, a
/// zone or a vSwitch listed twice, or a zone id that cannot end a node name.
pub fn parse_zone_vswitches(value: &str) -> Result<Vec<ZoneSwitches>, String> {
    let mut zones: Vec<ZoneSwitches> = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((zone, ids)) = part.split_once('=') else {
            return Err(format!("{part:?} is not ZONE=vsw-id[,vsw-id…]"));
        };
        let zone = zone.trim();
        if !valid_node_name(zone) {
            return Err(format!(
                "zone {zone:?} is not a zone id (lowercase letters, digits and '-')"
            ));
        }
        if zones.iter().any(|z| z.zone == zone) {
            return Err(format!("zone {zone:?} is listed twice"));
        }
        let vswitches: Vec<String> = ids
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        if vswitches.is_empty() {
            return Err(format!("zone {zone:?} has no vSwitch"));
        }
        for id in &vswitches {
            if !id.starts_with("vsw-") || id.len() > 64 {
                return Err(format!("{id:?} (zone {zone}) is not a vSwitch id (vsw-…)"));
            }
            if zones.iter().flat_map(|z| &z.vswitches).any(|v| v == id)
                || vswitches.iter().filter(|v| *v == id).count() > 1
            {
                return Err(format!("vSwitch {id:?} is listed twice"));
            }
        }
        if vswitches.len() > MAX_VSWITCHES {
            return Err(format!(
                "zone {zone:?} has {} vSwitches; ECI takes at most {MAX_VSWITCHES} per group",
                vswitches.len()
            ));
        }
        zones.push(ZoneSwitches {
            zone: zone.to_owned(),
            vswitches,
        });
    }
    Ok(zones)
}

/// The nodes to register.
///
/// - No zones listed: one node, `name`, with `--zone` and `--vswitch` as given.
/// - One zone: one node, `name`, in that zone with its vSwitches.
/// - Several zones and `name_given`: one node, `name`, with every zone's vSwitches (ECI picks
///   the zone among them, as for a pod that lists several).
/// - Several zones: one node per zone, `<prefix>-<zone>`.
///
/// # Errors
/// A node name that is not a DNS label, or a multi-zone `VSwitchId` longer than ECI takes.
pub fn zone_nodes(
    name: &str,
    name_given: bool,
    prefix: &str,
    zone: Option<&str>,
    vswitch: Option<&str>,
    zones: &[ZoneSwitches],
) -> Result<Vec<ZoneNode>, String> {
    let nodes = match zones {
        [] => vec![ZoneNode {
            name: name.to_owned(),
            zone: zone.map(str::to_owned),
            vswitches: vswitch
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }],
        [one] => vec![ZoneNode {
            name: name.to_owned(),
            zone: Some(one.zone.clone()),
            vswitches: one.vswitches.clone(),
        }],
        several if name_given => {
            let vswitches: Vec<String> = several.iter().flat_map(|z| z.vswitches.clone()).collect();
            if vswitches.len() > MAX_VSWITCHES {
                return Err(format!(
                    "--node-name {name} with {} vSwitches in all: ECI takes at most {MAX_VSWITCHES} per group (drop --node-name for a node per zone)",
                    vswitches.len()
                ));
            }
            vec![ZoneNode {
                name: name.to_owned(),
                zone: None,
                vswitches,
            }]
        }
        several => several
            .iter()
            .map(|z| ZoneNode {
                name: format!("{prefix}-{}", z.zone),
                zone: Some(z.zone.clone()),
                vswitches: z.vswitches.clone(),
            })
            .collect(),
    };
    if let Some(bad) = nodes.iter().find(|n| !valid_node_name(&n.name)) {
        return Err(format!(
            "node name {:?} is not a DNS label (lowercase letters, digits, '-', '.', at most 63 characters)",
            bad.name
        ));
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_zones() -> Vec<ZoneSwitches> {
        parse_zone_vswitches("cn-hangzhou-j=vsw-j1,vsw-j2; cn-hangzhou-k=vsw-k1").unwrap()
    }

    #[test]
    fn zones_parse_with_their_vswitches() {
        assert_eq!(
            two_zones(),
            vec![
                ZoneSwitches {
                    zone: "cn-hangzhou-j".into(),
                    vswitches: vec!["vsw-j1".into(), "vsw-j2".into()]
                },
                ZoneSwitches {
                    zone: "cn-hangzhou-k".into(),
                    vswitches: vec!["vsw-k1".into()]
                },
            ]
        );
        assert_eq!(parse_zone_vswitches("").unwrap(), vec![]);
    }

    #[test]
    fn bad_zone_lists_name_what_is_wrong() {
        for (value, says) in [
            ("cn-hangzhou-j", "is not ZONE=vsw-id"),
            ("cn-hangzhou-j=sw-1", "is not a vSwitch id"),
            ("cn-hangzhou-j=vsw-1;cn-hangzhou-j=vsw-2", "listed twice"),
            (
                "cn-hangzhou-j=vsw-1;cn-hangzhou-k=vsw-1",
                "vSwitch \"vsw-1\" is listed twice",
            ),
            ("Zone_A=vsw-1", "is not a zone id"),
            ("cn-hangzhou-j=", "has no vSwitch"),
        ] {
            let error = parse_zone_vswitches(value).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
        }
    }

    #[test]
    fn several_zones_make_a_node_per_zone() {
        let nodes = zone_nodes(
            "virtual-kubelet",
            false,
            "virtual-kubelet",
            None,
            None,
            &two_zones(),
        )
        .unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "virtual-kubelet-cn-hangzhou-j",
                "virtual-kubelet-cn-hangzhou-k"
            ]
        );
        assert_eq!(nodes[1].zone.as_deref(), Some("cn-hangzhou-k"));
        assert_eq!(nodes[1].vswitches, ["vsw-k1"]);
    }

    #[test]
    fn one_zone_or_a_given_name_keeps_a_single_node() {
        let one = parse_zone_vswitches("cn-hangzhou-j=vsw-j1").unwrap();
        let nodes = zone_nodes(
            "virtual-kubelet",
            false,
            "virtual-kubelet",
            None,
            None,
            &one,
        )
        .unwrap();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "virtual-kubelet");
        assert_eq!(nodes[0].zone.as_deref(), Some("cn-hangzhou-j"));

        let given = zone_nodes("edge", true, "virtual-kubelet", None, None, &two_zones()).unwrap();
        assert_eq!(given.len(), 1);
        assert_eq!(given[0].name, "edge");
        assert_eq!(given[0].zone, None);
        assert_eq!(given[0].vswitches, ["vsw-j1", "vsw-j2", "vsw-k1"]);

        let flags = zone_nodes(
            "virtual-kubelet",
            false,
            "virtual-kubelet",
            Some("cn-hangzhou-h"),
            Some("vsw-1,vsw-2"),
            &[],
        )
        .unwrap();
        assert_eq!(flags[0].zone.as_deref(), Some("cn-hangzhou-h"));
        assert_eq!(flags[0].vswitches, ["vsw-1", "vsw-2"]);
    }

    #[test]
    fn a_zone_node_name_must_be_a_dns_label() {
        let zones = parse_zone_vswitches(&format!("{}=vsw-1;b=vsw-2", "z".repeat(60))).unwrap();
        let error = zone_nodes(
            "virtual-kubelet",
            false,
            "virtual-kubelet",
            None,
            None,
            &zones,
        )
        .unwrap_err();
        assert!(error.contains("is not a DNS label"), "{error}");
    }
}
