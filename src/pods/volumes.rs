//! Pod volumes → ECI volumes, and container mounts of the volumes that could be mapped. Pure.
//!
//! emptyDir → `EmptyDirVolume`; nfs → `NFSVolume`; configMap, secret, downwardAPI and projected
//! (their configMap/secret/downwardAPI sources) → `ConfigFileVolume` with the files' contents
//! (base64, as ECI wants); an optional source that is missing becomes an empty directory.
//! A projected `serviceAccountToken` gets the token the controller requested for the pod
//! (TokenRequest API, bound to the pod). Not mapped yet, with their mounts left out:
//! persistentVolumeClaim and other drivers.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{KeyToPath, Pod};

use super::env::{Missing, SourceKind, Sources, field_text};
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
}

/// Maps the pod's volumes.
pub fn map(pod: &Pod, sources: &Sources, host_ip: &str) -> Mapped {
    let mut out = Mapped::default();
    let Some(spec) = &pod.spec else {
        return out;
    };
    for volume in spec.volumes.iter().flatten() {
        let name = volume.name.clone();
        let mut missing = |kind, object: &str, optional: bool| {
            out.missing.push(Missing {
                kind,
                name: object.to_owned(),
                key: None,
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
                Some(data) => Some(files(&name, &data, cm.items.as_deref(), cm.default_mode)),
                None => {
                    missing(SourceKind::ConfigMap, &cm.name, optional);
                    Some(empty(&name))
                }
            }
        } else if let Some(secret) = &volume.secret {
            let object = secret.secret_name.clone().unwrap_or_default();
            let optional = secret.optional == Some(true);
            match lookup(sources, SourceKind::Secret, &object) {
                Some(data) => Some(files(
                    &name,
                    &data,
                    secret.items.as_deref(),
                    secret.default_mode,
                )),
                None => {
                    missing(SourceKind::Secret, &object, optional);
                    Some(empty(&name))
                }
            }
        } else if let Some(downward) = &volume.downward_api {
            let data: BTreeMap<String, String> = downward
                .items
                .iter()
                .flatten()
                .filter_map(|item| {
                    let field = item.field_ref.as_ref()?;
                    Some((
                        item.path.clone(),
                        field_text(pod, &field.field_path, host_ip)?,
                    ))
                })
                .collect();
            Some(files(&name, &data, None, downward.default_mode))
        } else if let Some(projected) = &volume.projected {
            let mut data = BTreeMap::new();
            for source in projected.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    match lookup(sources, SourceKind::ConfigMap, &cm.name) {
                        Some(found) => data.extend(select(&found, cm.items.as_deref())),
                        None => missing(SourceKind::ConfigMap, &cm.name, cm.optional == Some(true)),
                    }
                }
                if let Some(secret) = &source.secret {
                    match lookup(sources, SourceKind::Secret, &secret.name) {
                        Some(found) => data.extend(select(&found, secret.items.as_deref())),
                        None => missing(
                            SourceKind::Secret,
                            &secret.name,
                            secret.optional == Some(true),
                        ),
                    }
                }
                if let Some(token) = &source.service_account_token
                    && let Some(value) = sources.tokens.get(&(name.clone(), token.path.clone()))
                {
                    data.insert(token.path.clone(), value.clone());
                }
                if let Some(downward) = &source.downward_api {
                    for item in downward.items.iter().flatten() {
                        if let Some(value) = item
                            .field_ref
                            .as_ref()
                            .and_then(|f| field_text(pod, &f.field_path, host_ip))
                        {
                            data.insert(item.path.clone(), value);
                        }
                    }
                }
            }
            Some(if data.is_empty() {
                empty(&name)
            } else {
                files(&name, &data, None, projected.default_mode)
            })
        } else {
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

/// The files of a source: every key, or only `items` (key → path).
fn select(
    data: &BTreeMap<String, String>,
    items: Option<&[KeyToPath]>,
) -> BTreeMap<String, String> {
    match items {
        Some(items) if !items.is_empty() => items
            .iter()
            .filter_map(|i| Some((i.path.clone(), data.get(&i.key)?.clone())))
            .collect(),
        _ => data.clone(),
    }
}

fn files(
    name: &str,
    data: &BTreeMap<String, String>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Volume {
    let selected = select(data, items);
    if selected.is_empty() {
        return empty(name);
    }
    let mut v = Volume::new(name, VolumeType::ConfigFileVolume);
    v.config_file_volume = Some(ConfigFileVolume {
        config_file_to_paths: selected
            .into_iter()
            .map(|(path, content)| ConfigFileToPath {
                path,
                content: base64::engine::general_purpose::STANDARD.encode(content),
                mode: None,
            })
            .collect(),
        default_mode: default_mode.and_then(|m| u32::try_from(m).ok()),
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
    }
}
