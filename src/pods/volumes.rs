//! Pod volumes → ECI volumes, and container mounts of the volumes that could be mapped. Pure.
//!
//! emptyDir → `EmptyDirVolume`; nfs → `NFSVolume`; configMap, secret, downwardAPI and projected
//! (their configMap/secret/downwardAPI sources) → `ConfigFileVolume` with the files' contents
//! (base64, as ECI wants); an optional source that is missing becomes an empty directory.
//! A projected `serviceAccountToken` gets the token the controller requested for the pod
//! (TokenRequest API, bound to the pod). Every file keeps its mode: the item's `mode`, else the
//! volume's `defaultMode` (`ConfigFileToPath.N.Mode`, `ConfigFileVolume.DefaultMode`).
//!
//! persistentVolumeClaim and ephemeral volumes → their bound PersistentVolume's ECI volume
//! ([`super::storage`]); an inline `csi` volume likewise. A claim not bound yet holds the pod
//! back ([`Mapped::waiting`]); a volume of any other type is refused ([`Mapped::refused`]), so
//! nothing the pod asks for is dropped.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{KeyToPath, Pod};

use super::{
    env::{Missing, SourceKind, Sources, field_text},
    storage::{self, Claim, Refused},
};
use crate::eci::{
    Volume,
    container_spec::{ConfigFileToPath, ConfigFileVolume, EmptyDirVolume, NfsVolume, VolumeType},
};

/// The mapped volumes, the names of those mapped, and missing references.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// ECI volumes.
    pub volumes: Vec<Volume>,
    /// Names of the pod volumes that exist in `volumes` (mounts of others are dropped).
    pub names: HashSet<String>,
    /// ConfigMaps/Secrets that were not found.
    pub missing: Vec<Missing>,
    /// Volumes every mount of which must be read-only (a read-only claim or PV).
    pub read_only: HashSet<String>,
    /// Claims not bound yet: why, one line each (the pod waits).
    pub waiting: Vec<String>,
    /// Volumes this node cannot give the pod (the pod fails).
    pub refused: Vec<Refused>,
}

/// The volume sources mapped here or refused before (`hostPath`); any other is refused.
const KNOWN: &[&str] = &[
    "name",
    "emptyDir",
    "nfs",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "persistentVolumeClaim",
    "ephemeral",
    "csi",
];

/// The type of a pod volume this node does not map (`None` for the ones it does, and
/// `hostPath`, which has its own refusal).
pub fn unknown_source(volume: &k8s_openapi::api::core::v1::Volume) -> Option<String> {
    if volume.host_path.is_some() {
        return None;
    }
    let value = serde_json::to_value(volume).unwrap_or_default();
    let kind = storage::source_name(&value, KNOWN);
    (kind != "unknown").then_some(kind)
}

/// Maps the pod's volumes.
pub fn map(pod: &Pod, sources: &Sources, host_ip: &str) -> Mapped {
    let mut out = Mapped::default();
    let Some(spec) = &pod.spec else {
        return out;
    };
    for volume in spec.volumes.iter().flatten() {
        let name = volume.name.clone();
        let mut missing = |kind, object: &str, key: Option<&str>, optional: bool| {
            out.missing.push(Missing {
                kind,
                name: object.to_owned(),
                key: key.map(str::to_owned),
                optional,
                container: format!("volume {name}"),
            });
        };
        let mapped = if let Some(e) = &volume.empty_dir {
            let mut v = Volume::new(&name, VolumeType::EmptyDirVolume);
            v.empty_dir_volume = Some(EmptyDirVolume {
                medium: e.medium.clone().filter(|m| !m.is_empty()),
                size_limit: e.size_limit.as_ref().map(|q| q.0.clone()),
            });
            Some(v)
        } else if let Some(nfs) = &volume.nfs {
            let mut v = Volume::new(&name, VolumeType::NfsVolume);
            v.nfs_volume = Some(NfsVolume {
                server: nfs.server.clone(),
                path: nfs.path.clone(),
                read_only: nfs.read_only,
            });
            Some(v)
        } else if let Some(cm) = &volume.config_map {
            let optional = cm.optional == Some(true);
            match lookup(sources, SourceKind::ConfigMap, &cm.name) {
                Some(data) => {
                    let (selected, absent) = select(&data, cm.items.as_deref());
                    for key in &absent {
                        missing(SourceKind::ConfigMap, &cm.name, Some(key), optional);
                    }
                    Some(files(&name, selected, cm.default_mode))
                }
                None => {
                    missing(SourceKind::ConfigMap, &cm.name, None, optional);
                    Some(empty(&name))
                }
            }
        } else if let Some(secret) = &volume.secret {
            let object = secret.secret_name.clone().unwrap_or_default();
            let optional = secret.optional == Some(true);
            match lookup(sources, SourceKind::Secret, &object) {
                Some(data) => {
                    let (selected, absent) = select(&data, secret.items.as_deref());
                    for key in &absent {
                        missing(SourceKind::Secret, &object, Some(key), optional);
                    }
                    Some(files(&name, selected, secret.default_mode))
                }
                None => {
                    missing(SourceKind::Secret, &object, None, optional);
                    Some(empty(&name))
                }
            }
        } else if let Some(downward) = &volume.downward_api {
            let data: Files = downward
                .items
                .iter()
                .flatten()
                .filter_map(|item| {
                    let field = item.field_ref.as_ref()?;
                    Some((
                        item.path.clone(),
                        (field_text(pod, &field.field_path, host_ip)?, item.mode),
                    ))
                })
                .collect();
            Some(files(&name, data, downward.default_mode))
        } else if let Some(projected) = &volume.projected {
            let mut data = Files::new();
            for source in projected.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    let optional = cm.optional == Some(true);
                    match lookup(sources, SourceKind::ConfigMap, &cm.name) {
                        Some(found) => {
                            let (selected, absent) = select(&found, cm.items.as_deref());
                            for key in &absent {
                                missing(SourceKind::ConfigMap, &cm.name, Some(key), optional);
                            }
                            data.extend(selected);
                        }
                        None => missing(SourceKind::ConfigMap, &cm.name, None, optional),
                    }
                }
                if let Some(secret) = &source.secret {
                    let optional = secret.optional == Some(true);
                    match lookup(sources, SourceKind::Secret, &secret.name) {
                        Some(found) => {
                            let (selected, absent) = select(&found, secret.items.as_deref());
                            for key in &absent {
                                missing(SourceKind::Secret, &secret.name, Some(key), optional);
                            }
                            data.extend(selected);
                        }
                        None => missing(SourceKind::Secret, &secret.name, None, optional),
                    }
                }
                if let Some(token) = &source.service_account_token
                    && let Some(value) = sources.tokens.get(&(name.clone(), token.path.clone()))
                {
                    data.insert(token.path.clone(), (value.clone(), None));
                }
                if let Some(downward) = &source.downward_api {
                    for item in downward.items.iter().flatten() {
                        if let Some(value) = item
                            .field_ref
                            .as_ref()
                            .and_then(|f| field_text(pod, &f.field_path, host_ip))
                        {
                            data.insert(item.path.clone(), (value, item.mode));
                        }
                    }
                }
            }
            Some(files(&name, data, projected.default_mode))
        } else if volume.persistent_volume_claim.is_some() || volume.ephemeral.is_some() {
            match sources.claims.get(&name) {
                Some(Claim::Bound(pv)) => {
                    let claim_read_only = volume
                        .persistent_volume_claim
                        .as_ref()
                        .and_then(|c| c.read_only)
                        == Some(true);
                    if claim_read_only || storage::pv_read_only(pv) {
                        out.read_only.insert(name.clone());
                    }
                    match storage::map_pv(&name, pv, claim_read_only) {
                        Ok(v) => Some(v),
                        Err(refused) => {
                            out.refused.push(refused);
                            None
                        }
                    }
                }
                Some(Claim::NotBound(why)) => {
                    out.waiting.push(why.clone());
                    None
                }
                None => {
                    out.waiting
                        .push(format!("the claim of volume {name:?} was not read yet"));
                    None
                }
            }
        } else if let Some(csi) = &volume.csi {
            if csi.read_only == Some(true) {
                out.read_only.insert(name.clone());
            }
            match storage::map_inline_csi(&name, csi) {
                Ok(v) => Some(v),
                Err(refused) => {
                    out.refused.push(refused);
                    None
                }
            }
        } else {
            let value = serde_json::to_value(volume).unwrap_or_default();
            out.refused.push(Refused {
                volume: name.clone(),
                kind: storage::source_name(&value, KNOWN),
            });
            None
        };
        if let Some(v) = mapped {
            out.names.insert(volume.name.clone());
            out.volumes.push(v);
        }
    }
    out
}

fn lookup(sources: &Sources, kind: SourceKind, name: &str) -> Option<BTreeMap<String, String>> {
    sources
        .objects
        .get(&(kind, name.to_owned()))
        .cloned()
        .flatten()
}

/// Files of a volume: path → (content, the item's own mode).
type Files = BTreeMap<String, (String, Option<i32>)>;

/// The files of a source: every key, or only `items` (key → path, with the item's mode); and
/// the keys `items` names that the source does not have (a kubelet does not start a pod whose
/// non-optional volume lacks one, so they are reported as missing, never skipped).
fn select(data: &BTreeMap<String, String>, items: Option<&[KeyToPath]>) -> (Files, Vec<String>) {
    match items {
        Some(items) if !items.is_empty() => {
            let mut files = Files::new();
            let mut absent = Vec::new();
            for item in items {
                match data.get(&item.key) {
                    Some(value) => {
                        files.insert(item.path.clone(), (value.clone(), item.mode));
                    }
                    None => absent.push(item.key.clone()),
                }
            }
            (files, absent)
        }
        _ => (
            data.iter()
                .map(|(k, v)| (k.clone(), (v.clone(), None)))
                .collect(),
            Vec::new(),
        ),
    }
}

/// A file mode as ECI takes it (the decimal of the permission bits, as Kubernetes gives it).
fn file_mode(mode: Option<i32>) -> Option<u32> {
    mode.and_then(|m| u32::try_from(m).ok())
}

fn files(name: &str, selected: Files, default_mode: Option<i32>) -> Volume {
    if selected.is_empty() {
        return empty(name);
    }
    let mut v = Volume::new(name, VolumeType::ConfigFileVolume);
    v.config_file_volume = Some(ConfigFileVolume {
        config_file_to_paths: selected
            .into_iter()
            .map(|(path, (content, mode))| ConfigFileToPath {
                path,
                content: base64::engine::general_purpose::STANDARD.encode(content),
                mode: file_mode(mode),
            })
            .collect(),
        default_mode: file_mode(default_mode),
    });
    v
}

fn empty(name: &str) -> Volume {
    let mut v = Volume::new(name, VolumeType::EmptyDirVolume);
    v.empty_dir_volume = Some(EmptyDirVolume::default());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_yaml_ng::from_str(
            r#"
metadata: {name: p, namespace: ns, uid: u}
spec:
  containers: [{name: c, image: i}]
  volumes:
  - {name: scratch, emptyDir: {medium: Memory}}
  - {name: conf, configMap: {name: settings, items: [{key: a, path: a.txt}]}}
  - {name: creds, secret: {secretName: creds}}
  - {name: maybe, configMap: {name: absent, optional: true}}
  - {name: info, downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}}
  - name: api
    projected:
      sources:
      - serviceAccountToken: {path: token}
      - configMap: {name: settings, items: [{key: b, path: ca.crt}]}
      - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]}
  - {name: claim, persistentVolumeClaim: {claimName: data}}
"#,
        )
        .expect("fixture")
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.objects.insert(
            (SourceKind::ConfigMap, "settings".into()),
            Some(
                [
                    ("a".to_owned(), "A".to_owned()),
                    ("b".to_owned(), "B".to_owned()),
                ]
                .into(),
            ),
        );
        s.objects.insert(
            (SourceKind::Secret, "creds".into()),
            Some([("password".to_owned(), "pw".to_owned())].into()),
        );
        s.objects
            .insert((SourceKind::ConfigMap, "absent".into()), None);
        s
    }

    fn paths(v: &Volume) -> Vec<(String, String)> {
        v.config_file_volume
            .iter()
            .flat_map(|c| &c.config_file_to_paths)
            .map(|f| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(&f.content)
                    .expect("base64");
                (f.path.clone(), String::from_utf8(bytes).expect("utf8"))
            })
            .collect()
    }

    #[test]
    fn a_key_the_source_lacks_is_missing_not_skipped() {
        let pod: Pod = serde_yaml_ng::from_str(
            r#"
metadata: {name: p, namespace: ns, uid: u}
spec:
  containers: [{name: c, image: i}]
  volumes:
  - {name: conf, configMap: {name: settings, items: [{key: a, path: a.txt}, {key: nope, path: n}]}}
  - {name: soft, configMap: {name: settings, optional: true, items: [{key: gone, path: g}]}}
"#,
        )
        .expect("fixture");
        let mapped = map(&pod, &sources(), "10.0.0.1");
        let absent: Vec<(Option<&str>, bool)> = mapped
            .missing
            .iter()
            .map(|m| (m.key.as_deref(), m.optional))
            .collect();
        assert_eq!(absent, [(Some("nope"), false), (Some("gone"), true)]);
    }

    #[test]
    fn volumes_map_to_eci_types() {
        let mapped = map(&pod(), &sources(), "10.0.0.1");
        let by = |n: &str| mapped.volumes.iter().find(|v| v.name == n).expect(n);
        assert_eq!(by("scratch").kind, VolumeType::EmptyDirVolume);
        assert_eq!(paths(by("conf")), [("a.txt".to_owned(), "A".to_owned())]);
        assert_eq!(
            paths(by("creds")),
            [("password".to_owned(), "pw".to_owned())]
        );
        assert_eq!(by("maybe").kind, VolumeType::EmptyDirVolume);
        assert_eq!(paths(by("info")), [("name".to_owned(), "p".to_owned())]);
        assert_eq!(
            paths(by("api")),
            [
                ("ca.crt".to_owned(), "B".to_owned()),
                ("namespace".to_owned(), "ns".to_owned())
            ]
        );
        assert!(!mapped.names.contains("claim"));
        let mut with_token = sources();
        with_token
            .tokens
            .insert(("api".into(), "token".into()), "jwt".into());
        let mapped = map(&pod(), &with_token, "10.0.0.1");
        let api = mapped
            .volumes
            .iter()
            .find(|v| v.name == "api")
            .expect("api");
        assert!(paths(api).contains(&("token".to_owned(), "jwt".to_owned())));
        assert_eq!(mapped.missing.len(), 1);
        assert!(mapped.missing[0].optional);
        assert_eq!(
            mapped.waiting.len(),
            1,
            "the claim was not read: the pod waits"
        );
    }

    #[test]
    fn file_modes_are_sent() {
        let pod: Pod = serde_yaml_ng::from_str(
            r#"
metadata: {name: p, namespace: ns, uid: u}
spec:
  containers: [{name: c, image: i}]
  volumes:
  - {name: conf, configMap: {name: settings, defaultMode: 256, items: [{key: a, path: a.sh, mode: 493}, {key: b, path: b}]}}
  - name: api
    projected:
      defaultMode: 288
      sources:
      - secret: {name: creds, items: [{key: password, path: pw, mode: 384}]}
      - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}, mode: 292}]}
"#,
        )
        .expect("fixture");
        let mapped = map(&pod, &sources(), "10.0.0.1");
        let modes = |n: &str| {
            let c = mapped
                .volumes
                .iter()
                .find(|v| v.name == n)
                .and_then(|v| v.config_file_volume.clone())
                .expect(n);
            let files: Vec<_> = c
                .config_file_to_paths
                .iter()
                .map(|f| (f.path.clone(), f.mode))
                .collect();
            (files, c.default_mode)
        };
        assert_eq!(
            modes("conf"),
            (
                vec![("a.sh".to_owned(), Some(0o755)), ("b".to_owned(), None)],
                Some(0o400)
            )
        );
        assert_eq!(
            modes("api"),
            (
                vec![
                    ("name".to_owned(), Some(0o444)),
                    ("pw".to_owned(), Some(0o600))
                ],
                Some(0o440)
            )
        );
    }
}
