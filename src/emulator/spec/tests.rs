use std::collections::BTreeMap;

use super::*;

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn cache_params(images: usize, size: Option<&str>) -> Params {
    let mut map: BTreeMap<String, String> = (1..=images)
        .map(|i| (format!("Image.{i}"), format!("example.com/img{i}:1")))
        .collect();
    map.insert("ImageCacheName".into(), "c".into());
    if let Some(size) = size {
        map.insert("ImageCacheSize".into(), size.into());
    }
    Params::new(map)
}

#[test]
fn a_full_container_group_request_parses() {
    let p = params(&[
        ("ContainerGroupName", "web-1"),
        ("RestartPolicy", "OnFailure"),
        ("Container.1.Name", "nginx"),
        ("Container.1.Image", "nginx:1.25"),
        ("Container.1.Cpu", "0.5"),
        ("Container.1.Memory", "1"),
        ("Container.1.Command.1", "/bin/sh"),
        ("Container.1.Arg.1", "-c"),
        ("Container.1.EnvironmentVar.1.Key", "A"),
        ("Container.1.EnvironmentVar.1.Value", "1"),
        ("Container.1.Port.1.Port", "80"),
        ("Container.1.ReadinessProbe.HttpGet.Path", "/healthz"),
        ("Container.1.ReadinessProbe.HttpGet.Port", "80"),
        ("Container.1.LifecyclePreStopHandlerExec.1", "sleep"),
        ("InitContainer.1.Name", "init"),
        ("InitContainer.1.Image", "busybox:1"),
        ("Volume.1.Name", "cfg"),
        ("Volume.1.Type", "ConfigFileVolume"),
        (
            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path",
            "a.conf",
        ),
        (
            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content",
            "bGl1bWk=",
        ),
        ("Tag.1.Key", "k8s.io/pod"),
        ("Tag.1.Value", "web-1"),
        ("HostAliase.1.Ip", "1.1.1.1"),
        ("HostAliase.1.Hostname.1", "a.example"),
        ("DnsConfig.NameServer.1", "10.0.0.10"),
        ("ImageSnapshotId", "imc-00000000000000000001"),
    ]);
    let spec = parse_group(&p).expect("valid");
    assert_eq!(spec.restart_policy, "OnFailure");
    assert_eq!(spec.containers[0].commands, ["/bin/sh"]);
    assert_eq!(spec.containers[0].env[0].key, "A");
    assert_eq!(spec.containers[0].ports[0].port, 80);
    assert!(spec.containers[0].has_pre_stop);
    assert_eq!(
        spec.containers[0]
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.clone()),
        Some(("/healthz".into(), 80, "HTTP".into()))
    );
    assert_eq!(spec.init_containers[0].name, "init");
    assert_eq!(spec.volumes[0].kind, "ConfigFileVolume");
    assert_eq!(spec.tags[0].value, "web-1");
    assert_eq!(spec.host_aliases[0].1, ["a.example"]);
    assert_eq!(spec.images(), ["busybox:1", "nginx:1.25"]);
    // 0.5 vCPU / 1 GiB is a spec.
    assert_eq!((spec.cpu, spec.memory), (0.5, 1.0));
    assert_eq!(
        spec.image_snapshot_id.as_deref(),
        Some("imc-00000000000000000001")
    );
}

#[test]
fn bad_group_requests_name_the_parameter() {
    let no_container = params(&[("ContainerGroupName", "web")]);
    assert_eq!(
        parse_group(&no_container).expect_err("no container").code,
        "MissingParameter"
    );
    let no_name = params(&[("Container.1.Name", "a"), ("Container.1.Image", "b")]);
    assert_eq!(
        parse_group(&no_name).expect_err("no name").code,
        "MissingContainerGroupName"
    );
    let upper = params(&[
        ("ContainerGroupName", "Web"),
        ("Container.1.Name", "a"),
        ("Container.1.Image", "b"),
    ]);
    assert_eq!(
        parse_group(&upper).expect_err("uppercase").code,
        "InvalidParameter.ContainerGroupName"
    );
    let twice = params(&[
        ("ContainerGroupName", "web"),
        ("Container.1.Name", "a"),
        ("Container.1.Image", "b"),
        ("Container.2.Name", "a"),
        ("Container.2.Image", "c"),
    ]);
    assert_eq!(
        parse_group(&twice).expect_err("duplicate").code,
        "InvalidParameter.Container"
    );
    let policy = params(&[
        ("ContainerGroupName", "web"),
        ("RestartPolicy", "Sometimes"),
        ("Container.1.Name", "a"),
        ("Container.1.Image", "b"),
    ]);
    assert_eq!(
        parse_group(&policy).expect_err("policy").code,
        "InvalidParameter.RestartPolicy"
    );
    let tag = params(&[
        ("ContainerGroupName", "web"),
        ("Container.1.Name", "a"),
        ("Container.1.Image", "b"),
        ("Tag.1.Key", "acs:reserved"),
    ]);
    assert_eq!(
        parse_group(&tag).expect_err("tag").code,
        "InvalidParameter.Tag"
    );
}

#[test]
fn specs_round_up_and_default_to_2_4() {
    assert_eq!(resolve_spec(None, None, &[], &[]), (2.0, 4.0));
    let c = |cpu, memory| ContainerSpec {
        cpu,
        memory,
        ..ContainerSpec::default()
    };
    assert_eq!(
        resolve_spec(None, None, &[c(0.25, 0.5), c(0.5, 1.0)], &[]),
        (1.0, 2.0)
    );
    assert_eq!(
        resolve_spec(Some(4.0), Some(8.0), &[c(0.25, 0.5)], &[]),
        (4.0, 8.0)
    );
}

#[test]
fn image_cache_limits_are_enforced() {
    assert!(parse_cache(&cache_params(20, Some("20"))).is_ok());
    assert!(parse_cache(&cache_params(1, Some("32768"))).is_ok());
    let too_many = parse_cache(&cache_params(21, None)).expect_err("21 images");
    assert_eq!(too_many.code, "InvalidParameter.Image");
    let small = parse_cache(&cache_params(1, Some("19"))).expect_err("19 GiB");
    assert_eq!(small.code, "InvalidParameter.ImageCacheSize");
    let big = parse_cache(&cache_params(1, Some("32769"))).expect_err("too big");
    assert_eq!(big.code, "InvalidParameter.ImageCacheSize");
    assert_eq!(
        parse_cache(&cache_params(0, None)).expect_err("none").code,
        "MissingParameter"
    );
    let mut retention = cache_params(1, None).map().clone();
    retention.insert("RetentionDays".into(), "0".into());
    assert_eq!(
        parse_cache(&Params::new(retention))
            .expect_err("retention")
            .code,
        "InvalidParameter.RetentionDays"
    );
    assert_eq!(
        parse_cache(&cache_params(2, None))
            .expect("default size")
            .size_gib,
        20
    );
}

#[test]
fn cache_updates_keep_unspecified_fields_and_the_limits() {
    let current = parse_cache(&cache_params(2, Some("40"))).expect("valid");
    let renamed =
        apply_cache_update(&current, &params(&[("ImageCacheName", "new")])).expect("rename");
    assert_eq!(renamed.name, "new");
    assert_eq!(renamed.images, current.images);
    assert_eq!(renamed.size_gib, 40);
    let shrunk =
        apply_cache_update(&current, &params(&[("ImageCacheSize", "19")])).expect_err("19");
    assert_eq!(shrunk.code, "InvalidParameter.ImageCacheSize");
}

mod instances {
    use crate::emulator::{instance, params::params};

    #[test]
    fn the_first_spec_in_stock_is_chosen_in_order() {
        let p = params(&[("InstanceType", "ecs.c6.large,2-4Gi,ecs.g6.xlarge")]);
        let options = instance::parse(&p, 0).expect("valid");
        let chosen = instance::choose(&options, &["ecs.c6.large".to_owned()], 0).expect("in stock");
        assert_eq!(chosen, Some(("2-4Gi".to_owned(), 2.0, 4.0)));
        let none = instance::choose(
            &options,
            &[
                "ecs.c6.large".into(),
                "2-4Gi".into(),
                "ecs.g6.xlarge".into(),
            ],
            0,
        )
        .expect_err("all sold out");
        assert_eq!(none.code, "ContainerGroup.NoStock");
        // A GPU container skips the specs without GPUs.
        let p = params(&[("InstanceType", "2-4Gi,ecs.gn6i-c4g1.xlarge")]);
        let options = instance::parse(&p, 1).expect("valid");
        let chosen = instance::choose(&options, &[], 1).expect("a GPU type");
        assert_eq!(chosen.map(|c| c.0).as_deref(), Some("ecs.gn6i-c4g1.xlarge"));
    }

    #[test]
    fn instance_options_are_checked_as_eci_checks_them() {
        let code = |pairs: &[(&str, &str)], gpus| {
            instance::parse(&params(pairs), gpus)
                .expect_err("invalid")
                .code
        };
        assert_eq!(
            code(&[("InstanceType", "2-3Gi")], 0),
            "InvalidParameter.InstanceType"
        );
        assert_eq!(
            code(&[("SpotStrategy", "Cheap")], 0),
            "InvalidParameter.SpotStrategy"
        );
        assert_eq!(
            code(&[("SpotStrategy", "SpotWithPriceLimit")], 0),
            "MissingSpotPriceLimit"
        );
        assert_eq!(
            code(&[("SpotDuration", "3")], 0),
            "InvalidParameter.SpotDuration"
        );
        assert_eq!(
            code(&[("AutoCreateEip", "true"), ("EipInstanceId", "eip-1")], 0),
            "InvalidParameter.EipInstanceId"
        );
        assert_eq!(code(&[("EipISP", "Mobile")], 0), "InvalidParameter.EipISP");
        assert_eq!(
            code(&[("ComputeCategory.1", "cheap")], 0),
            "InvalidParameter.ComputeCategory"
        );
        assert_eq!(
            code(&[("NtpServer.1", "ntp.local")], 0),
            "InvalidParameter.NtpServer"
        );
        assert_eq!(
            code(&[("InstanceType", "2-4Gi")], 1),
            "InvalidParameter.Container"
        );
        let ok = instance::parse(
            &params(&[
                ("SpotStrategy", "SpotWithPriceLimit"),
                ("SpotPriceLimit", "0.25"),
                ("RamRoleName", "R"),
                ("AutoCreateEip", "true"),
            ]),
            0,
        )
        .expect("valid");
        assert_eq!(
            (
                ok.spot_price_limit,
                ok.ram_role_name.as_str(),
                ok.auto_create_eip
            ),
            (0.25, "R", true)
        );
    }
}
