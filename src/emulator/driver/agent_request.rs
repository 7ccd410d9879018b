//! What the agent is asked to run: a group's ECI spec turned into the agent protocol.
//!
//! The emulator keeps requests as ECI flattened them (`spec.rs`); the agent wants typed
//! volumes, decoded file contents and one pull policy per image.

use std::collections::HashMap;

use base64::Engine as _;

use crate::{
    agent::pb,
    emulator::{
        disks,
        spec::{ContainerSpec, GroupSpec, Volume},
    },
};

/// The CreateGroup request for generation `generation` of group `id`.
pub(super) fn create_group(id: &str, generation: u64, spec: &GroupSpec) -> pb::CreateGroupRequest {
    pb::CreateGroupRequest {
        group_id: id.to_owned(),
        init_containers: spec.init_containers.iter().map(container).collect(),
        containers: spec.containers.iter().map(container).collect(),
        restart_policy: spec.restart_policy.clone(),
        cpu: spec.cpu,
        memory_gib: spec.memory,
        generation,
        hostname: hostname(spec),
        volumes: spec.volumes.iter().filter_map(volume).collect(),
        dns_name_servers: spec.dns_name_servers.clone(),
        dns_searches: spec.dns_searches.clone(),
        dns_options: spec
            .dns_options
            .iter()
            .map(|(name, value)| {
                if value.is_empty() {
                    name.clone()
                } else {
                    format!("{name}:{value}")
                }
            })
            .collect(),
        host_aliases: spec
            .host_aliases
            .iter()
            .map(|(ip, hostnames)| pb::HostAlias {
                ip: ip.clone(),
                hostnames: hostnames.clone(),
            })
            .collect(),
    }
}

/// `HostName` if the request gave one, else the group's name; cut to the 63 characters a
/// Linux hostname may have (a group name may have 128).
fn hostname(spec: &GroupSpec) -> String {
    let name = if spec.host_name.is_empty() {
        &spec.name
    } else {
        &spec.host_name
    };
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_owned()
}

/// The pull policy of every image whose containers ask for one. When two containers share an
/// image, `Always` wins over `IfNotPresent` and `IfNotPresent` over `Never`: the image must be
/// usable by both.
pub(super) fn pull_policies(spec: &GroupSpec) -> HashMap<String, String> {
    fn rank(policy: &str) -> u8 {
        match policy {
            "Always" => 2,
            "Never" => 0,
            _ => 1,
        }
    }
    let mut out: HashMap<String, String> = HashMap::new();
    for c in spec.init_containers.iter().chain(&spec.containers) {
        if c.image_pull_policy.is_empty() {
            continue;
        }
        let entry = out
            .entry(c.image.clone())
            .or_insert_with(|| c.image_pull_policy.clone());
        if rank(&c.image_pull_policy) > rank(entry) {
            entry.clone_from(&c.image_pull_policy);
        }
    }
    out
}

fn container(c: &ContainerSpec) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone(),
        command: c.commands.clone(),
        args: c.args.clone(),
        working_dir: c.working_dir.clone(),
        env: c
            .env
            .iter()
            .map(|e| pb::EnvVar {
                name: e.key.clone(),
                value: e.value.clone(),
            })
            .collect(),
        ports: c
            .ports
            .iter()
            .map(|p| pb::PortSpec {
                port: u32::try_from(p.port).unwrap_or(0),
                protocol: p.protocol.clone(),
            })
            .collect(),
        cpu: c.cpu,
        memory_gib: c.memory,
        tty: c.tty,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        pre_stop_exec: if c.has_pre_stop && c.pre_stop_exec.is_empty() {
            vec!["<preStop>".into()]
        } else {
            c.pre_stop_exec.clone()
        },
        volume_mounts: c
            .volume_mounts
            .iter()
            .map(|m| pb::VolumeMount {
                name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only,
                sub_path: m.sub_path.clone(),
            })
            .collect(),
        run_as_user: c.run_as_user,
        run_as_group: c.run_as_group,
        read_only_root_filesystem: c.read_only_root_filesystem.unwrap_or(false),
        capability_add: c.capability_add.clone(),
        run_as_non_root: c.run_as_non_root,
        privileged: c.privileged,
    }
}

/// The agent's form of a volume. A disk (`DiskVolume`, or a `FlexVolume` of driver
/// `alicloud/disk`) and an NFS share are directories the agent keeps across groups; other
/// flexvolumes (OSS) and host paths need a cloud service the agent does not have: the
/// containers see an empty directory there, so the volume is passed as one.
fn volume(v: &Volume) -> Option<pb::Volume> {
    let field = |name: &str| v.fields.iter().find(|(k, _)| k == name).map(|(_, x)| x);
    let text = |name: &str| field(name).and_then(|x| x.as_str()).unwrap_or_default();
    let source = match v.kind.as_str() {
        "ConfigFileVolume" => {
            let files = field("ConfigFileVolumeConfigFileToPaths")
                .and_then(|x| x.as_array())
                .map(|files| {
                    files
                        .iter()
                        .map(|f| pb::ConfigFile {
                            path: f["Path"].as_str().unwrap_or_default().to_owned(),
                            content: decode(f["Content"].as_str().unwrap_or_default()),
                            mode: mode(&f["Mode"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            pb::volume::Source::ConfigFile(pb::ConfigFileVolume {
                files,
                default_mode: text("ConfigFileVolumeDefaultMode").parse().unwrap_or(0),
            })
        }
        "EmptyDirVolume" => pb::volume::Source::EmptyDir(pb::EmptyDirVolume {
            medium: text("EmptyDirVolumeMedium").to_owned(),
            size_limit_bytes: size_bytes(text("EmptyDirVolumeSizeLimit")),
        }),
        "NFSVolume" => pb::volume::Source::Nfs(pb::NfsVolume {
            server: text("NFSVolumeServer").to_owned(),
            path: text("NFSVolumePath").to_owned(),
            read_only: field("NFSVolumeReadOnly")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        }),
        _ => match disks::disk_id(v) {
            Some(disk_id) => pb::volume::Source::Disk(pb::DiskVolume {
                disk_id,
                fs_type: text("DiskVolumeFsType").to_owned(),
            }),
            None => pb::volume::Source::EmptyDir(pb::EmptyDirVolume::default()),
        },
    };
    Some(pb::Volume {
        name: v.name.clone(),
        source: Some(source),
    })
}

/// ECI carries file contents as base64; content that is not is passed as written.
fn decode(content: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .unwrap_or_else(|_| content.as_bytes().to_vec())
}

fn mode(value: &serde_json::Value) -> u32 {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(0)
}

/// ECI sizes are quantities such as `1Gi`, `512Mi`, `1.5Gi` or plain bytes, read by
/// [`crate::quantity`]; 0 when absent or unknown.
fn size_bytes(quantity: &str) -> u64 {
    crate::quantity::bytes(quantity).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::spec::ContainerSpec;

    #[test]
    fn sizes_are_read_as_quantities() {
        assert_eq!(size_bytes("1Gi"), 1 << 30);
        assert_eq!(size_bytes("512Mi"), 512 << 20);
        assert_eq!(size_bytes("100"), 100);
        assert_eq!(size_bytes(""), 0);
        assert_eq!(size_bytes("1Xi"), 0);
        // Used to be 0: the emulator now reads sizes with the node's parser.
        assert_eq!(size_bytes("1.5Gi"), 1_610_612_736);
        assert_eq!(size_bytes("1e3"), 1000);
    }

    #[test]
    fn config_files_are_decoded() {
        let v = Volume {
            name: "cfg".into(),
            kind: "ConfigFileVolume".into(),
            fields: vec![(
                "ConfigFileVolumeConfigFileToPaths".into(),
                serde_json::json!([{"Path": "a/b", "Content": "aGVsbG8=", "Mode": "384"}]),
            )],
        };
        let Some(pb::Volume {
            source: Some(pb::volume::Source::ConfigFile(c)),
            ..
        }) = volume(&v)
        else {
            panic!("not a config file volume");
        };
        assert_eq!(c.files[0].path, "a/b");
        assert_eq!(c.files[0].content, b"hello");
        assert_eq!(c.files[0].mode, 384);
    }

    #[test]
    fn the_strictest_pull_policy_of_an_image_wins() {
        let c = |image: &str, policy: &str| ContainerSpec {
            image: image.into(),
            image_pull_policy: policy.into(),
            ..ContainerSpec::default()
        };
        let spec = GroupSpec {
            containers: vec![
                c("a", "Never"),
                c("a", "Always"),
                c("b", "IfNotPresent"),
                c("d", ""),
            ],
            ..GroupSpec::default()
        };
        let p = pull_policies(&spec);
        assert_eq!(p["a"], "Always");
        assert_eq!(p["b"], "IfNotPresent");
        assert!(!p.contains_key("d"));
    }
}
