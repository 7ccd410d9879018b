//! The cloud disks of container groups: a group mounts at most [`MAX_DISKS`], and a disk is
//! attached to one group at a time, until that group is deleted.
//!
//! ECI documents both limits (<https://www.alibabacloud.com/help/doc-detail/144571.htm>: "A disk
//! can be mounted to only one instance", "A maximum of six disk volumes"). Too many disks is
//! ECI's documented `DiskNumber.LimitExceed`
//! (<https://help.aliyun.com/en/eci/developer-reference/api-eci-2018-08-08-errorcodes>); ECI
//! documents no code for a disk already in use, so it is `IncorrectDiskStatus`, the code ECS
//! answers when a disk's status forbids attaching it (chosen here, in the gateway's style).

use std::collections::BTreeSet;

use super::{
    error::ApiError,
    spec::{GroupSpec, Volume},
    state::Store,
};

/// Most disk volumes of one group.
pub const MAX_DISKS: usize = 6;

/// The disk a volume attaches: `DiskVolume.DiskId`, or the `volumeId` option of a
/// `FlexVolume` of driver `alicloud/disk` (ECI's documented form of the same thing).
pub fn disk_id(volume: &Volume) -> Option<String> {
    let field = |name: &str| {
        volume
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_str())
    };
    match volume.kind.as_str() {
        "DiskVolume" => field("DiskVolumeDiskId").map(str::to_owned),
        "FlexVolume" if field("FlexVolumeDriver") == Some("alicloud/disk") => {
            let options: serde_json::Value =
                serde_json::from_str(field("FlexVolumeOptions").unwrap_or("{}")).ok()?;
            options["volumeId"].as_str().map(str::to_owned)
        }
        _ => None,
    }
    .filter(|id| !id.is_empty())
}

/// Checks the disks of a new group of `region`: each a valid id, none twice, at most
/// [`MAX_DISKS`], none attached to a group that still exists.
///
/// # Errors
/// `InvalidParameter` for a bad or repeated id, `DiskNumber.LimitExceed`, `IncorrectDiskStatus`.
pub fn check_new(store: &Store, region: &str, spec: &GroupSpec) -> Result<(), ApiError> {
    let mut wanted = BTreeSet::new();
    for volume in &spec.volumes {
        if volume.kind == "DiskVolume" && disk_id(volume).is_none() {
            return Err(ApiError::missing("Volume.N.DiskVolume.DiskId"));
        }
        let Some(id) = disk_id(volume) else {
            continue;
        };
        let valid = id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(ApiError::invalid(
                "Volume.N.DiskVolume.DiskId",
                format!("{id:?} is not a disk id"),
            ));
        }
        if !wanted.insert(id.clone()) {
            return Err(ApiError::invalid(
                "Volume.N.DiskVolume.DiskId",
                format!("disk {id} is named by two volumes"),
            ));
        }
    }
    if wanted.len() > MAX_DISKS {
        return Err(ApiError::bad_request(
            "DiskNumber.LimitExceed",
            format!(
                "The maximum number of disks in an instance is exceeded: {} > {MAX_DISKS}.",
                wanted.len()
            ),
        ));
    }
    for group in store.groups.values().filter(|g| g.region_id == region) {
        if let Some(id) = group
            .spec
            .volumes
            .iter()
            .filter_map(disk_id)
            .find(|id| wanted.contains(id))
        {
            return Err(ApiError::bad_request(
                "IncorrectDiskStatus",
                format!(
                    "The current status of disk {id} does not support this operation: it is in use by container group {}.",
                    group.id
                ),
            ));
        }
    }
    Ok(())
}
