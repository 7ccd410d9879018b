use super::{table::WARNED, *};
use crate::eci::Tag;

fn pod(annotations: &[(&str, &str)]) -> Pod {
    let mut pod: Pod = serde_yaml_ng::from_str(
        "metadata: {name: a, namespace: b, uid: u}\nspec: {containers: [{name: c, image: i}]}",
    )
    .expect("fixture");
    pod.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    pod
}

fn sized() -> CreateContainerGroup {
    CreateContainerGroup {
        cpu: Some(2.0),
        memory: Some(4.0),
        ..CreateContainerGroup::default()
    }
}

fn applied(annotations: &[(&str, &str)]) -> Result<(CreateContainerGroup, Applied), Invalid> {
    let mut request = sized();
    let applied = apply(&pod(annotations), &Defaults::default(), &mut request)?;
    Ok((request, applied))
}

fn refused(annotations: &[(&str, &str)]) -> Invalid {
    applied(annotations).expect_err("a malformed annotation")
}

#[test]
fn specs_become_the_instance_type_in_order_and_replace_the_size() {
    let (request, _) = applied(&[(key::USE_SPECS, "ecs.c6.large, 2-4Gi")]).expect("valid");
    assert_eq!(request.instance_type.as_deref(), Some("ecs.c6.large,2-4Gi"));
    assert_eq!((request.cpu, request.memory), (None, None));
    for bad in [
        "2-4G",
        "four-8Gi",
        "ecs.c6",
        "1-2Gi,2-4Gi,4-8Gi,8-16Gi,ecs.c6.large,ecs.g6.large",
    ] {
        let why = refused(&[(key::USE_SPECS, bad)]);
        assert_eq!(why.key, key::USE_SPECS, "{bad}");
        assert_eq!(why.value, bad);
    }
}

#[test]
fn families_and_generations_size_the_pod_into_ecs_types() {
    let (request, _) = applied(&[(key::INSTANCE_FAMILY, "ecs.g6,ecs.c6")]).expect("valid");
    assert_eq!(
        request.instance_type.as_deref(),
        Some("ecs.c6.large,ecs.g6.large"),
        "the closest fit first"
    );
    let (request, _) = applied(&[
        (key::INSTANCE_GENERATION, "6"),
        (key::INSTANCE_FAMILY, "-ecs.r6"),
    ])
    .expect("valid");
    assert_eq!(
        request.instance_type.as_deref(),
        Some("ecs.c6.large,ecs.g6.large")
    );
    let (request, applied) = applied(&[
        (key::USE_SPECS, "ecs.c7.large"),
        (key::INSTANCE_FAMILY, "ecs.g6"),
    ])
    .expect("valid");
    assert_eq!(request.instance_type.as_deref(), Some("ecs.c7.large"));
    assert_eq!(applied.warnings[0].0, IGNORED_FEATURES_REASON);
    assert_eq!(
        refused(&[(key::INSTANCE_FAMILY, "ecs.x1")]).key,
        key::INSTANCE_FAMILY
    );
    assert_eq!(
        refused(&[(key::INSTANCE_GENERATION, "3")]).key,
        key::INSTANCE_GENERATION
    );
    assert_eq!(
        refused(&[
            (key::INSTANCE_FAMILY, "ecs.c6"),
            (key::INSTANCE_GENERATION, "-6")
        ])
        .why,
        "allows no ECS family"
    );
}

#[test]
fn a_price_limited_spot_needs_its_price() {
    let why = refused(&[(key::SPOT_STRATEGY, "SpotWithPriceLimit")]);
    assert_eq!(why.key, key::SPOT_STRATEGY);
    assert!(why.why.contains(key::SPOT_PRICE_LIMIT), "{why}");
    let (request, _) = applied(&[
        (key::SPOT_STRATEGY, "SpotWithPriceLimit"),
        (key::SPOT_PRICE_LIMIT, "0.25"),
    ])
    .expect("valid");
    assert_eq!(request.spot_strategy.as_deref(), Some("SpotWithPriceLimit"));
    assert_eq!(request.spot_price_limit, Some(0.25));
    assert_eq!(request.strict_spot, Some(true), "no fallback unless asked");
    assert_eq!(
        refused(&[(key::SPOT_STRATEGY, "Cheap")]).key,
        key::SPOT_STRATEGY
    );
    for price in ["abc", "0.1234", "-1", "0"] {
        assert_eq!(
            refused(&[
                (key::SPOT_STRATEGY, "SpotWithPriceLimit"),
                (key::SPOT_PRICE_LIMIT, price)
            ])
            .key,
            key::SPOT_PRICE_LIMIT,
            "{price}"
        );
    }
}

#[test]
fn spot_fallback_comes_from_the_node_unless_the_pod_says() {
    let spot = pod(&[
        (key::SPOT_STRATEGY, "SpotAsPriceGo"),
        (key::SPOT_DURATION, "0"),
    ]);
    let defaults = Defaults {
        spot_fallback: true,
        ..Defaults::default()
    };
    let mut request = sized();
    apply(&spot, &defaults, &mut request).expect("valid");
    assert_eq!(request.strict_spot, Some(false));
    assert_eq!(request.spot_duration, Some(0));
    let strict = pod(&[
        (key::SPOT_STRATEGY, "SpotAsPriceGo"),
        (key::SPOT_FALLBACK, "false"),
    ]);
    let mut request = sized();
    apply(&strict, &defaults, &mut request).expect("valid");
    assert_eq!(request.strict_spot, Some(true));
    // Without a spot strategy the spot settings change nothing, and say so.
    let (request, applied) = applied(&[(key::SPOT_PRICE_LIMIT, "0.5")]).expect("valid");
    assert_eq!(
        (request.spot_strategy, request.spot_price_limit),
        (None, None)
    );
    assert_eq!(applied.warnings.len(), 1);
}

#[test]
fn network_annotations_replace_the_nodes_and_are_checked() {
    let mut request = sized();
    request.vswitch_id = Some("vsw-node".into());
    apply(
        &pod(&[
            (key::VSWITCH, "vsw-a, vsw-b"),
            (key::SCHEDULE_STRATEGY, "VSwitchRandom"),
            (key::SECURITY_GROUP, "sg-1"),
            (key::WITH_EIP, "true"),
            (key::EIP_BANDWIDTH, "20"),
            (key::EIP_ISP, "BGP_PRO"),
            (key::FIXED_IP, "true"),
            (key::FIXED_IP_RETAIN_HOUR, "24"),
            (key::ENABLE_IPV6, "true"),
            (key::INGRESS_BANDWIDTH, "40M"),
            (key::EGRESS_BANDWIDTH, "1K"),
        ]),
        &Defaults::default(),
        &mut request,
    )
    .expect("valid");
    assert_eq!(request.vswitch_id.as_deref(), Some("vsw-a,vsw-b"));
    assert_eq!(request.schedule_strategy.as_deref(), Some("VSwitchRandom"));
    assert_eq!(request.security_group_id.as_deref(), Some("sg-1"));
    assert_eq!(request.auto_create_eip, Some(true));
    assert_eq!(request.eip_bandwidth, Some(20));
    assert_eq!(request.eip_isp.as_deref(), Some("BGP_PRO"));
    assert_eq!(
        (request.fixed_ip, request.fixed_ip_retain_hour),
        (Some(true), Some(24))
    );
    assert_eq!(request.ipv6_address_count, Some(1));
    // Bytes per second in the annotation, bits per second on the wire.
    assert_eq!(request.ingress_bandwidth, Some(320_000_000));
    assert_eq!(request.egress_bandwidth, Some(8_000));

    let eleven = (0..11)
        .map(|i| format!("vsw-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(refused(&[(key::VSWITCH, &eleven)]).key, key::VSWITCH);
    assert_eq!(
        refused(&[(key::SECURITY_GROUP, "default")]).key,
        key::SECURITY_GROUP
    );
    assert_eq!(
        refused(&[(key::SCHEDULE_STRATEGY, "Random")]).key,
        key::SCHEDULE_STRATEGY
    );
    assert_eq!(refused(&[(key::WITH_EIP, "yes")]).key, key::WITH_EIP);
    assert_eq!(
        refused(&[(key::WITH_EIP, "true"), (key::EIP_INSTANCE_ID, "eip-1")]).key,
        key::EIP_INSTANCE_ID
    );
    assert_eq!(
        refused(&[(key::INGRESS_BANDWIDTH, "40Mbps")]).key,
        key::INGRESS_BANDWIDTH
    );
    // EIP settings without an EIP to create are ignored, with a Warning.
    let (request, applied) = applied(&[(key::EIP_BANDWIDTH, "5")]).expect("valid");
    assert_eq!(request.eip_bandwidth, None);
    assert_eq!(applied.warnings.len(), 1);
}

#[test]
fn identity_tags_and_hosts() {
    let defaults = Defaults {
        ram_role: Some("NodeRole".into()),
        ..Defaults::default()
    };
    let mut request = sized();
    apply(&pod(&[]), &defaults, &mut request).expect("valid");
    assert_eq!(request.ram_role_name.as_deref(), Some("NodeRole"));
    let mut request = sized();
    apply(
        &pod(&[
            (key::RAM_ROLE_NAME, "PodRole"),
            (key::CUSTOM_TAGS, "env:test, team:a"),
            (
                key::CUSTOM_HOSTS,
                r#"[{"host":"db.local","ip":"10.0.0.9"}]"#,
            ),
            (key::RESOURCE_GROUP_ID, "rg-1"),
        ]),
        &defaults,
        &mut request,
    )
    .expect("valid");
    assert_eq!(request.ram_role_name.as_deref(), Some("PodRole"));
    assert_eq!(
        request.tags,
        [Tag::new("env", "test"), Tag::new("team", "a")]
    );
    assert_eq!(request.host_aliases[0].hostnames, ["db.local"]);
    assert_eq!(request.resource_group_id.as_deref(), Some("rg-1"));
    assert_eq!(
        refused(&[(key::CUSTOM_TAGS, "a:1,b:2,c:3,d:4")]).key,
        key::CUSTOM_TAGS
    );
    assert_eq!(
        refused(&[(key::CUSTOM_TAGS, "novalue")]).key,
        key::CUSTOM_TAGS
    );
    assert_eq!(
        refused(&[(key::CUSTOM_TAGS, "eci-vk.io/node:other")]).key,
        key::CUSTOM_TAGS,
        "the node's own tags cannot be forged"
    );
    assert_eq!(
        refused(&[(key::CUSTOM_HOSTS, "db=10.0.0.9")]).key,
        key::CUSTOM_HOSTS
    );
}

#[test]
fn system_and_registry_annotations() {
    let (request, _) = applied(&[
        (key::COMPUTE_CATEGORY, "economy,general"),
        (key::GPU_DRIVER_VERSION, "tesla=535"),
        (key::EXTRA_EPHEMERAL_STORAGE, "50Gi"),
        (key::CPU_OPTION_CORE, "2"),
        (key::CPU_OPTION_HT, "1"),
        (key::NTP_SERVER, "100.100.5.1,100.100.5.2"),
        (key::CORE_PATTERN, "/pod/data/dump/core"),
        (key::DATA_CACHE_BUCKET, "default"),
        (key::DATA_CACHE_PL, "PL1"),
        (key::PLAIN_HTTP_REGISTRY, "harbor.local,10.0.0.1:5000"),
        (key::ACR_INSTANCE_IDS, "cri-a,cn-beijing:cri-b"),
        (key::FAIL_STRATEGY, "fail-fast"),
        (key::MAX_PENDING_MINUTE, "30"),
    ])
    .expect("valid");
    assert_eq!(request.compute_categories, ["economy", "general"]);
    assert_eq!(request.gpu_driver_version.as_deref(), Some("tesla=535"));
    assert_eq!(request.ephemeral_storage, Some(50));
    assert_eq!(
        (
            request.cpu_options_core,
            request.cpu_options_threads_per_core
        ),
        (Some(2), Some(1))
    );
    assert_eq!(request.ntp_servers, ["100.100.5.1", "100.100.5.2"]);
    assert_eq!(request.core_pattern.as_deref(), Some("/pod/data/dump/core"));
    assert_eq!(request.data_cache_pl.as_deref(), Some("PL1"));
    assert_eq!(
        request.plain_http_registry.as_deref(),
        Some("harbor.local,10.0.0.1:5000")
    );
    assert_eq!(
        request.acr_registry_info[1].region_id.as_deref(),
        Some("cn-beijing")
    );
    assert_eq!(request.acr_registry_info[1].instance_id, "cri-b");
    for (k, bad) in [
        (key::COMPUTE_CATEGORY, "cheap"),
        (key::GPU_DRIVER_VERSION, "535"),
        (key::EXTRA_EPHEMERAL_STORAGE, "lots"),
        (key::CPU_OPTION_HT, "4"),
        (key::NTP_SERVER, "ntp.aliyun.com"),
        (key::CORE_PATTERN, "|/bin/dump"),
        (key::PLAIN_HTTP_REGISTRY, "http://harbor.local"),
        (key::ACR_INSTANCE_IDS, "acr-1"),
        (key::FAIL_STRATEGY, "fail-slow"),
        (key::MAX_PENDING_MINUTE, "5"),
    ] {
        let why = refused(&[(k, bad)]);
        assert_eq!((why.key, why.value.as_str()), (k, bad));
    }
}

#[test]
fn behaviour_reads_the_fail_strategy_and_pending_limit() {
    let default = behaviour(&pod(&[]));
    assert_eq!(default.fail_strategy, FailStrategy::FailBack);
    assert_eq!(default.max_pending, DEFAULT_MAX_PENDING);
    let fast = behaviour(&pod(&[
        (key::FAIL_STRATEGY, "fail-fast"),
        (key::MAX_PENDING_MINUTE, "30"),
    ]));
    assert_eq!(fast.fail_strategy, FailStrategy::FailFast);
    assert_eq!(fast.max_pending, Duration::from_secs(1800));
}

#[test]
fn annotations_without_a_parameter_and_unknown_ones_are_warned_about() {
    let (_, applied) = applied(&[
        (key::PRIVATEPOOL_ID, "eap-1"),
        ("k8s.aliyun.com/eci-made-up", "x"),
        (key::INSTANCE_ID, "eci-copied"),
        ("example.com/other", "x"),
    ])
    .expect("valid");
    let notes: Vec<&str> = applied.warnings.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with(key::PRIVATEPOOL_ID));
    assert!(notes[1].starts_with("k8s.aliyun.com/eci-made-up"));
}

#[test]
fn what_is_written_back_comes_from_the_group() {
    let group = ContainerGroup {
        container_group_id: "eci-1".into(),
        instance_type: "ecs.c6.large".into(),
        internet_ip: "47.0.0.1".into(),
        vpc_id: "vpc-1".into(),
        eni_instance_id: "eni-1".into(),
        ..ContainerGroup::default()
    };
    let named = pod(&[(key::EIP_INSTANCE_ID, "eip-9")]);
    let out = written_back(&named, &group);
    assert_eq!(out[key::INSTANCE_SPEC], "ecs.c6.large");
    assert_eq!(out[key::ALLOCATED_EIP_ADDRESS], "47.0.0.1");
    assert_eq!(out[key::ALLOCATED_EIP_INSTANCE_ID], "eip-9");
    assert_eq!(out[key::ENI_INSTANCE_ID], "eni-1");
    assert!(!out.contains_key(key::ALLOCATED_IPV6_ADDRESS));
    let sized = ContainerGroup {
        cpu: 2.0,
        memory: 4.0,
        ..ContainerGroup::default()
    };
    assert_eq!(
        written_back(&pod(&[]), &sized)[key::INSTANCE_SPEC],
        "2.0-4.0Gi"
    );
    // Only what the pod lacks is written.
    let has = pod(&[(key::INSTANCE_ID, "eci-1")]);
    let todo = missing(&has, written_back(&has, &group));
    assert!(!todo.contains_key(key::INSTANCE_ID));
    assert!(todo.contains_key(key::VPC));
}

#[test]
fn every_row_of_the_table_is_a_distinct_key() {
    let mut keys: Vec<&str> = TABLE.iter().map(|r| r.key).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before);
    for (k, _) in WARNED {
        assert!(
            TABLE.iter().any(|r| r.key == *k),
            "{k} warned but not in the table"
        );
    }
}

#[test]
fn the_readme_holds_the_annotation_table() {
    let readme = include_str!("../../../README.md");
    assert!(
        readme.contains(&readme_table()),
        "README.md's annotation table differs from pods::annotations::readme_table(); paste its \
         output (cargo test --lib print_annotation_table -- --ignored --nocapture)"
    );
    for written in key::WRITTEN_BACK {
        assert!(
            readme.contains(&format!("`{written}`")),
            "README.md does not name {written}"
        );
    }
}

#[test]
#[ignore = "prints the README's table"]
fn print_annotation_table() {
    println!("{}", readme_table());
}
