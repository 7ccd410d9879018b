//! Persistent storage of a pod: which claims its volumes name, and a bound PersistentVolume →
//! the ECI volume ECI documents for it. Pure; the claims and volumes are read by
//! [`super::sources`].
//!
//! A `persistentVolumeClaim` volume names its claim; a generic `ephemeral` volume uses the claim
//! its controller makes, `<pod>-<volume>`. A bound PV maps so:
//!
//! - Alibaba Cloud disk (CSI `diskplugin.csi.alibabacloud.com`, volumeHandle = disk id) →
//!   `DiskVolume` (`DiskId`, `FsType`, `DiskSize` in GiB), one group at a time
//!   (<https://www.alibabacloud.com/help/doc-detail/144571.htm>: "A disk can be mounted to only one
//!   instance", at most six per instance).
//! - NAS (CSI `nasplugin.csi.alibabacloud.com` with volumeAttributes `server`/`path`, or an `nfs`
//!   PV) → `NFSVolume` (`Server`, `Path`, `ReadOnly`)
//!   (<https://www.alibabacloud.com/help/doc-detail/151419.htm>).
//! - OSS (CSI `ossplugin.csi.alibabacloud.com`, volumeAttributes `bucket`, `url`, `path`,
//!   `otherOpts`) → `FlexVolume` with driver `alicloud/oss` and those attributes as its JSON
//!   `Options` (<https://help.aliyun.com/zh/eci/user-guide/mount-an-oss-bucket>: OSS only as a
//!   static volume). Access keys in the PV are never sent: the instance's RAM role reads the bucket.
//!
//! Anything else (another CSI driver, iscsi, rbd, cephfs, …) is refused with its type, so the
//! pod fails instead of running without its data.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, Pod,
};

use crate::{
    eci::{
        Volume,
        container_spec::{DiskVolume, FlexVolume, NfsVolume, VolumeType},
    },
    quantity,
};

/// The CSI driver of Alibaba Cloud disks.
pub const DISK_DRIVER: &str = "diskplugin.csi.alibabacloud.com";
/// The CSI driver of NAS file systems.
pub const NAS_DRIVER: &str = "nasplugin.csi.alibabacloud.com";
/// The CSI driver of OSS buckets.
pub const OSS_DRIVER: &str = "ossplugin.csi.alibabacloud.com";

/// A pod volume backed by a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRef {
    /// The pod's volume.
    pub volume: String,
    /// The claim's name (in the pod's namespace).
    pub claim: String,
    /// `persistentVolumeClaim.readOnly`.
    pub read_only: bool,
    /// For a generic ephemeral volume, the UID of the pod that must own the claim: a claim of
    /// that name made for an earlier pod of the same name is not this pod's (the kubelet
    /// checks the same).
    pub owner_uid: Option<String>,
}

/// What the API server says of a claim.
#[derive(Debug, Clone)]
pub enum Claim {
    /// Bound to this volume.
    Bound(Box<PersistentVolume>),
    /// Not usable yet: why, for the pod's event.
    NotBound(String),
}

/// The claims the pod's volumes name, in order.
pub fn claim_refs(pod: &Pod) -> Vec<ClaimRef> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    volumes
        .filter_map(|v| {
            if let Some(pvc) = &v.persistent_volume_claim {
                Some(ClaimRef {
                    volume: v.name.clone(),
                    claim: pvc.claim_name.clone(),
                    read_only: pvc.read_only == Some(true),
                    owner_uid: None,
                })
            } else {
                // https://kubernetes.io/docs/concepts/storage/ephemeral-volumes/#persistentvolumeclaim-naming
                v.ephemeral.as_ref().map(|_| ClaimRef {
                    volume: v.name.clone(),
                    claim: format!("{pod_name}-{}", v.name),
                    read_only: false,
                    owner_uid: pod.metadata.uid.clone(),
                })
            }
        })
        .collect()
}

/// Whether `claim` may serve `reference`: always for a named claim; for a generic ephemeral
/// volume only when the pod (`owner_uid`) is the claim's controller, as the kubelet checks.
pub fn claim_belongs(claim: &PersistentVolumeClaim, reference: &ClaimRef) -> bool {
    reference.owner_uid.as_ref().is_none_or(|uid| {
        claim
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && &o.uid == uid)
    })
}

/// A volume this node cannot give a pod: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The pod's volume.
    pub volume: String,
    /// What it is, e.g. `csi driver "example.com/x"` or `iscsi`.
    pub kind: String,
}

/// The ECI volume `name` of a bound PersistentVolume; `read_only` is the claim's.
///
/// # Errors
/// [`Refused`] for a PV of a type ECI cannot mount.
pub fn map_pv(name: &str, pv: &PersistentVolume, read_only: bool) -> Result<Volume, Refused> {
    let refused = |kind: String| Refused {
        volume: name.to_owned(),
        kind,
    };
    let Some(spec) = &pv.spec else {
        return Err(refused("PersistentVolume without a spec".into()));
    };
    if let Some(nfs) = &spec.nfs {
        let mut v = Volume::new(name, VolumeType::NfsVolume);
        v.nfs_volume = Some(NfsVolume {
            server: nfs.server.clone(),
            path: nfs.path.clone(),
            read_only: Some(read_only || nfs.read_only == Some(true)),
        });
        return Ok(v);
    }
    if let Some(csi) = &spec.csi {
        let size = spec
            .capacity
            .as_ref()
            .and_then(|c| c.get("storage"))
            .and_then(|q| quantity::parse(&q.0).ok())
            .map(|b| (b.value() / f64::from(1u32 << 30)).ceil());
        return map_csi(name, csi, size, read_only).map_err(refused);
    }
    Err(refused(source_kind(spec)))
}

/// An inline `csi` volume of the pod: mapped as a PV of the same driver would be (a disk needs
/// a PV, for its volumeHandle).
///
/// # Errors
/// [`Refused`] for a driver ECI cannot mount.
pub fn map_inline_csi(
    name: &str,
    csi: &k8s_openapi::api::core::v1::CSIVolumeSource,
) -> Result<Volume, Refused> {
    let source = CSIPersistentVolumeSource {
        driver: csi.driver.clone(),
        fs_type: csi.fs_type.clone(),
        read_only: csi.read_only,
        volume_attributes: csi.volume_attributes.clone(),
        ..CSIPersistentVolumeSource::default()
    };
    map_csi(name, &source, None, false).map_err(|kind| Refused {
        volume: name.to_owned(),
        kind: format!("inline {kind}"),
    })
}

/// Whether the PV itself asks to be mounted read-only.
pub fn pv_read_only(pv: &PersistentVolume) -> bool {
    let spec = pv.spec.as_ref();
    spec.and_then(|s| s.csi.as_ref())
        .and_then(|c| c.read_only)
        .or_else(|| spec.and_then(|s| s.nfs.as_ref()).and_then(|n| n.read_only))
        == Some(true)
}

/// The CSI sources of Alibaba Cloud's drivers; `size_gib` is the PV's capacity.
fn map_csi(
    name: &str,
    csi: &CSIPersistentVolumeSource,
    size_gib: Option<f64>,
    read_only: bool,
) -> Result<Volume, String> {
    let empty = BTreeMap::new();
    let attributes = csi.volume_attributes.as_ref().unwrap_or(&empty);
    let attribute = |key: &str| attributes.get(key).filter(|v| !v.is_empty()).cloned();
    let read_only = read_only || csi.read_only == Some(true);
    match csi.driver.as_str() {
        DISK_DRIVER => {
            if csi.volume_handle.is_empty() {
                return Err(format!("csi driver {DISK_DRIVER:?} without a volumeHandle"));
            }
            let mut v = Volume::new(name, VolumeType::DiskVolume);
            v.disk_volume = Some(DiskVolume {
                disk_id: csi.volume_handle.clone(),
                fs_type: csi
                    .fs_type
                    .clone()
                    .filter(|f| !f.is_empty())
                    .or_else(|| attribute("fsType")),
                // Saturating float → integer; a disk is at most 32768 GiB.
                disk_size: size_gib.filter(|s| *s >= 1.0).map(|s| s as i64),
            });
            Ok(v)
        }
        NAS_DRIVER => {
            let server = attribute("server")
                .ok_or_else(|| format!("csi driver {NAS_DRIVER:?} without a server attribute"))?;
            let mut v = Volume::new(name, VolumeType::NfsVolume);
            v.nfs_volume = Some(NfsVolume {
                server,
                path: attribute("path").unwrap_or_else(|| "/".into()),
                read_only: Some(read_only),
            });
            Ok(v)
        }
        OSS_DRIVER => {
            let bucket = attribute("bucket")
                .ok_or_else(|| format!("csi driver {OSS_DRIVER:?} without a bucket attribute"))?;
            let mut options = serde_json::Map::new();
            options.insert("bucket".into(), bucket.into());
            for key in ["url", "path", "otherOpts"] {
                if let Some(value) = attribute(key) {
                    options.insert(key.into(), value.into());
                }
            }
            if read_only {
                options.insert("readOnly".into(), "true".into());
            }
            let mut v = Volume::new(name, VolumeType::FlexVolume);
            v.flex_volume = Some(FlexVolume {
                driver: "alicloud/oss".into(),
                fs_type: None,
                options: Some(serde_json::Value::Object(options).to_string()),
            });
            Ok(v)
        }
        other => Err(format!("csi driver {other:?}")),
    }
}

/// The name of the volume source a spec carries: the first key of its JSON form that is not
/// one of `ignore` (the fields every source shares).
pub fn source_name(value: &serde_json::Value, ignore: &[&str]) -> String {
    value
        .as_object()
        .and_then(|o| o.keys().find(|k| !ignore.contains(&k.as_str())).cloned())
        .unwrap_or_else(|| "unknown".into())
}

fn source_kind(spec: &k8s_openapi::api::core::v1::PersistentVolumeSpec) -> String {
    const SHARED: &[&str] = &[
        "accessModes",
        "capacity",
        "claimRef",
        "mountOptions",
        "nodeAffinity",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeAttributesClassName",
        "volumeMode",
    ];
    let value = serde_json::to_value(spec).unwrap_or_default();
    source_name(&value, SHARED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(yaml: &str) -> PersistentVolume {
        serde_yaml_ng::from_str(yaml).expect("fixture pv")
    }

    #[test]
    fn an_alibaba_disk_is_a_disk_volume() {
        let disk = pv(r#"
metadata: {name: pv-disk}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  csi: {driver: diskplugin.csi.alibabacloud.com, volumeHandle: d-abc123, fsType: xfs}
"#);
        let v = map_pv("data", &disk, false).expect("maps");
        assert_eq!(v.kind, VolumeType::DiskVolume);
        assert_eq!(
            v.disk_volume,
            Some(DiskVolume {
                disk_id: "d-abc123".into(),
                fs_type: Some("xfs".into()),
                disk_size: Some(20),
            })
        );
    }

    #[test]
    fn nas_through_csi_or_nfs_is_an_nfs_volume() {
        let nas = pv(r#"
metadata: {name: pv-nas}
spec:
  csi:
    driver: nasplugin.csi.alibabacloud.com
    volumeHandle: pv-nas
    volumeAttributes: {server: "0cd8b4a576-g****.cn-hangzhou.nas.aliyuncs.com", path: /share}
"#);
        let v = map_pv("shared", &nas, true).expect("maps");
        assert_eq!(v.kind, VolumeType::NfsVolume);
        assert_eq!(
            v.nfs_volume,
            Some(NfsVolume {
                server: "0cd8b4a576-g****.cn-hangzhou.nas.aliyuncs.com".into(),
                path: "/share".into(),
                read_only: Some(true),
            })
        );
        let nfs = pv("metadata: {name: n}\nspec: {nfs: {server: 10.0.0.5, path: /exports/a}}");
        let v = map_pv("shared", &nfs, false).expect("maps");
        assert_eq!(
            v.nfs_volume.map(|n| (n.server, n.path, n.read_only)),
            Some(("10.0.0.5".into(), "/exports/a".into(), Some(false)))
        );
        let serverless = pv(
            "metadata: {name: n}\nspec: {csi: {driver: nasplugin.csi.alibabacloud.com, volumeHandle: x}}",
        );
        assert!(map_pv("shared", &serverless, false).is_err());
    }

    #[test]
    fn oss_is_an_oss_flexvolume_without_keys() {
        let oss = pv(r#"
metadata: {name: pv-oss}
spec:
  csi:
    driver: ossplugin.csi.alibabacloud.com
    volumeHandle: pv-oss
    volumeAttributes: {bucket: oss-test, url: oss-cn-beijing-internal.aliyuncs.com, otherOpts: "-o allow_other", akSecret: hidden}
"#);
        let v = map_pv("bucket", &oss, false).expect("maps");
        assert_eq!(v.kind, VolumeType::FlexVolume);
        let flex = v.flex_volume.expect("flex");
        assert_eq!(flex.driver, "alicloud/oss");
        let options: serde_json::Value =
            serde_json::from_str(flex.options.as_deref().unwrap_or_default()).expect("json");
        assert_eq!(options["bucket"], "oss-test");
        assert_eq!(options["url"], "oss-cn-beijing-internal.aliyuncs.com");
        assert!(!flex.options.unwrap_or_default().contains("hidden"));
    }

    #[test]
    fn other_volume_types_are_refused_by_name() {
        let unknown =
            pv("metadata: {name: x}\nspec: {csi: {driver: ebs.csi.aws.com, volumeHandle: vol-1}}");
        assert_eq!(
            map_pv("data", &unknown, false).unwrap_err(),
            Refused {
                volume: "data".into(),
                kind: "csi driver \"ebs.csi.aws.com\"".into()
            }
        );
        let iscsi = pv(
            "metadata: {name: x}\nspec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], iscsi: {targetPortal: 10.0.0.1, iqn: iqn.x, lun: 0}}",
        );
        assert_eq!(map_pv("data", &iscsi, false).unwrap_err().kind, "iscsi");
    }

    #[test]
    fn an_ephemeral_claim_serves_only_the_pod_that_owns_it() {
        let claim = |owner: &str| -> PersistentVolumeClaim {
            serde_yaml_ng::from_str(&format!(
                "metadata: {{name: web-0-scratch, ownerReferences: [{{apiVersion: v1, kind: Pod, name: web-0, uid: {owner}, controller: true}}]}}"
            ))
            .expect("fixture claim")
        };
        let ephemeral = ClaimRef {
            volume: "scratch".into(),
            claim: "web-0-scratch".into(),
            read_only: false,
            owner_uid: Some("u-new".into()),
        };
        assert!(claim_belongs(&claim("u-new"), &ephemeral));
        assert!(
            !claim_belongs(&claim("u-old"), &ephemeral),
            "an earlier pod of the same name"
        );
        let named = ClaimRef {
            owner_uid: None,
            ..ephemeral
        };
        assert!(
            claim_belongs(&claim("u-old"), &named),
            "a named claim is anyone's"
        );
    }

    #[test]
    fn claims_and_ephemeral_volumes_name_their_claims() {
        let pod: Pod = serde_yaml_ng::from_str(
            r#"
metadata: {name: web-0, namespace: ns, uid: u-web}
spec:
  containers: [{name: c, image: i}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data-web-0, readOnly: true}}
  - {name: scratch, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}}}
  - {name: tmp, emptyDir: {}}
"#,
        )
        .expect("fixture pod");
        let refs = claim_refs(&pod);
        assert_eq!(
            refs,
            [
                ClaimRef {
                    volume: "data".into(),
                    claim: "data-web-0".into(),
                    read_only: true,
                    owner_uid: None,
                },
                ClaimRef {
                    volume: "scratch".into(),
                    claim: "web-0-scratch".into(),
                    read_only: false,
                    owner_uid: Some("u-web".into()),
                }
            ]
        );
    }
}
