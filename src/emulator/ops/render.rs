//! Response bodies, with the field names of the reference's examples (Appendix A).

use jiff::Timestamp;
use serde_json::{Value, json};

use super::super::{
    spec::{ContainerSpec, Probe, Tag},
    state::{Cache, ContainerRuntime, ContainerState, Event, Group},
};

/// `2018-08-02T15:00:00Z`.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time or `""`.
pub fn opt_time(t: Option<Timestamp>) -> String {
    t.map(time).unwrap_or_default()
}

pub fn tags(tags: &[Tag]) -> Value {
    tags.iter()
        .map(|t| json!({"Key": t.key, "Value": t.value}))
        .collect()
}

pub fn events(events: &[Event]) -> Value {
    events
        .iter()
        .map(|e| {
            json!({
                "Count": e.count,
                "Type": e.kind,
                "Name": e.name,
                "Reason": e.reason,
                "Message": e.message,
                "FirstTimestamp": time(e.first),
                "LastTimestamp": time(e.last),
            })
        })
        .collect()
}

fn state(s: &ContainerState) -> Value {
    json!({
        "State": s.state,
        "DetailStatus": s.detail_status,
        "ExitCode": s.exit_code,
        "Signal": s.signal,
        "Reason": s.reason,
        "Message": s.message,
        "StartTime": opt_time(s.start_time),
        "FinishTime": opt_time(s.finish_time),
    })
}

fn probe(p: Option<&Probe>) -> Value {
    let Some(p) = p else {
        return json!({});
    };
    let mut v = json!({
        "Execs": p.exec,
        "InitialDelaySeconds": p.initial_delay_seconds,
        "PeriodSeconds": p.period_seconds,
        "SuccessThreshold": p.success_threshold,
        "FailureThreshold": p.failure_threshold,
        "TimeoutSeconds": p.timeout_seconds,
    });
    if let Some((path, port, scheme)) = &p.http_get {
        v["HttpGet"] = json!({"Path": path, "Port": port, "Scheme": scheme});
    }
    if let Some(port) = p.tcp_socket_port {
        v["TcpSocket"] = json!({"Port": port});
    }
    v
}

fn container(spec: &ContainerSpec, rt: Option<&ContainerRuntime>, init: bool) -> Value {
    let default = ContainerRuntime::waiting(&spec.name, "ContainerCreating");
    let rt = rt.unwrap_or(&default);
    let env: Vec<Value> = spec
        .env
        .iter()
        .map(|e| {
            let mut v = json!({"Key": e.key, "Value": e.value});
            if let Some(path) = &e.field_path {
                v["ValueFrom"] = json!({"FieldRef": {"FieldPath": path}});
            }
            v
        })
        .collect();
    let mut v = json!({
        "Name": spec.name,
        // The image the container runs from, once the machine made it: an update shows its
        // new image when the container was made again from it.
        "Image": if rt.image.is_empty() { &spec.image } else { &rt.image },
        "ImagePullPolicy": spec.image_pull_policy,
        "Cpu": spec.cpu,
        "Memory": spec.memory,
        "Gpu": spec.gpu,
        "Args": spec.args,
        "WorkingDir": spec.working_dir,
        "EnvironmentVars": env,
        "Ports": spec.ports.iter().map(|p| json!({"Port": p.port, "Protocol": p.protocol})).collect::<Vec<_>>(),
        "VolumeMounts": spec.volume_mounts.iter().map(|m| json!({
            "Name": m.name, "MountPath": m.mount_path, "ReadOnly": m.read_only,
            "SubPath": m.sub_path, "MountPropagation": m.mount_propagation,
        })).collect::<Vec<_>>(),
        "SecurityContext": {
            "Capability": {"Adds": spec.capability_add},
            "ReadOnlyRootFilesystem": spec.read_only_root_filesystem.unwrap_or(false),
            "RunAsUser": spec.run_as_user.unwrap_or(0),
        },
        "Ready": rt.ready,
        "RestartCount": rt.restart_count,
        "CurrentState": state(&rt.current),
        "PreviousState": state(&rt.previous),
    });
    // Init containers echo `Command`, containers `Commands` (reference §2.2).
    if init {
        v["Command"] = json!(spec.commands);
    } else {
        v["Commands"] = json!(spec.commands);
        v["ReadinessProbe"] = probe(spec.readiness_probe.as_ref());
        v["LivenessProbe"] = probe(spec.liveness_probe.as_ref());
        v["Stdin"] = json!(spec.stdin);
        v["StdinOnce"] = json!(spec.stdin_once);
        v["Tty"] = json!(spec.tty);
    }
    v
}

/// One element of `ContainerGroups[]`.
pub fn group(g: &Group, with_events: bool) -> Value {
    let s = &g.spec;
    let runtime =
        |list: &[ContainerRuntime], name: &str| list.iter().find(|c| c.name == name).cloned();
    let containers: Vec<Value> = s
        .containers
        .iter()
        .map(|c| container(c, runtime(&g.containers, &c.name).as_ref(), false))
        .collect();
    let init: Vec<Value> = s
        .init_containers
        .iter()
        .map(|c| container(c, runtime(&g.init_containers, &c.name).as_ref(), true))
        .collect();
    let volumes: Vec<Value> = s
        .volumes
        .iter()
        .map(|v| {
            let mut out = json!({"Name": v.name, "Type": v.kind});
            for (k, value) in &v.fields {
                out[k.as_str()] = value.clone();
            }
            out
        })
        .collect();
    let o = &s.options;
    json!({
        "ContainerGroupId": g.id,
        "ContainerGroupName": s.name,
        "RegionId": g.region_id,
        "ZoneId": g.zone_id,
        // One VPC and one network interface per group, named after the group (the emulator
        // has no VPC of its own).
        "VpcId": "vpc-emulator",
        "EniInstanceId": format!("eni-{}", g.id.trim_start_matches("eci-")),
        "SpotStrategy": if o.spot_strategy.is_empty() { "NoSpot" } else { o.spot_strategy.as_str() },
        "SpotPriceLimit": o.spot_price_limit,
        "RamRoleName": o.ram_role_name,
        "Ipv6Address": o.ipv6_address,
        "ComputeCategory": o.compute_categories.first().cloned().unwrap_or_default(),
        "VSwitchId": s.vswitch_id,
        "SecurityGroupId": s.security_group_id,
        "ResourceGroupId": s.resource_group_id,
        "Status": g.status.as_str(),
        "Cpu": s.cpu,
        "Memory": s.memory,
        "InstanceType": s.instance_type,
        "RestartPolicy": s.restart_policy,
        "IntranetIp": g.intranet_ip,
        "InternetIp": o.internet_ip,
        "EphemeralStorage": s.ephemeral_storage,
        "DnsPolicy": s.dns_policy,
        "DnsConfig": {
            "NameServers": s.dns_name_servers,
            "Searches": s.dns_searches,
            "Options": s.dns_options.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect::<Vec<_>>(),
        },
        "HostAliases": s.host_aliases.iter().map(|(ip, names)| json!({"Ip": ip, "Hostnames": names})).collect::<Vec<_>>(),
        "CreationTime": time(g.creation_time),
        "SucceededTime": opt_time(g.succeeded_time),
        "FailedTime": opt_time(g.failed_time),
        "ExpiredTime": opt_time(g.expired_time),
        "Tags": tags(&s.tags),
        "Events": if with_events { events(&g.events) } else { json!([]) },
        "Containers": containers,
        "InitContainers": init,
        "Volumes": volumes,
    })
}

/// One element of `ImageCaches[]`.
pub fn cache(c: &Cache) -> Value {
    json!({
        "ImageCacheId": c.id,
        "ImageCacheName": c.spec.name,
        "ImageCacheSize": c.spec.size_gib,
        "Images": c.spec.images,
        "Status": c.status.as_str(),
        "Progress": format!("{}%", c.progress),
        "SnapshotId": c.snapshot_id.clone().unwrap_or_default(),
        "FlashSnapshotId": c.flash_snapshot_id.clone().unwrap_or_default(),
        "ContainerGroupId": c.container_group_id,
        "CreationTime": time(c.creation_time),
        "ExpireDateTime": opt_time(c.expire_date_time),
        "LastMatchedTime": opt_time(c.last_matched_time),
        "EliminationStrategy": c.spec.elimination_strategy,
        "RegionId": c.region_id,
        "ResourceGroupId": c.spec.resource_group_id,
        "Tags": tags(&c.spec.tags),
        "Events": events(&c.events),
    })
}
