use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;
use crate::emulator::{spec::CacheSpec, state::CacheStatus};

fn cache(id: &str, created: i64, images: &[(&str, u64)]) -> Cache {
    Cache {
        id: id.into(),
        region_id: "cn-hangzhou".into(),
        spec: CacheSpec {
            name: id.into(),
            images: images.iter().map(|(i, _)| (*i).to_owned()).collect(),
            size_gib: 20,
            ..CacheSpec::default()
        },
        status: CacheStatus::Ready,
        progress: 100,
        snapshot_id: Some(format!("s-{id}")),
        flash_snapshot_id: None,
        container_group_id: String::new(),
        creation_time: Timestamp::from_second(created).expect("time"),
        expire_date_time: None,
        last_matched_time: None,
        events: Vec::new(),
        image_sizes: images
            .iter()
            .map(|(i, s)| ((*i).to_owned(), *s))
            .collect::<BTreeMap<_, _>>(),
        generation: 0,
        automatic: false,
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(10_000).expect("time")
}

fn ids(ranked: &[(&Cache, Score)]) -> Vec<String> {
    ranked.iter().map(|(c, _)| c.id.clone()).collect()
}

#[test]
fn references_normalise_to_one_form() {
    assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
    assert_eq!(
        normalize_image("nginx:1.25"),
        "docker.io/library/nginx:1.25"
    );
    assert_eq!(
        normalize_image("docker.io/library/nginx:1.25"),
        "docker.io/library/nginx:1.25"
    );
    assert_eq!(
        normalize_image("index.docker.io/library/nginx:1.25"),
        "docker.io/library/nginx:1.25"
    );
    assert_eq!(
        normalize_image("bitnami/redis"),
        "docker.io/bitnami/redis:latest"
    );
    assert_eq!(
        normalize_image("127.0.0.1:5000/app"),
        "127.0.0.1:5000/app:latest"
    );
    assert_eq!(normalize_image("localhost/app:2"), "localhost/app:2");
    assert_eq!(
        normalize_image("registry-vpc.cn-hangzhou.aliyuncs.com/eci_open/nginx:1.15.10-perl"),
        "registry-vpc.cn-hangzhou.aliyuncs.com/eci_open/nginx:1.15.10-perl"
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        normalize_image(&format!("nginx:1.25@{digest}")),
        format!("docker.io/library/nginx@{digest}")
    );
}

#[test]
fn docker_hub_aliases_match_the_same_cache() {
    // `registry-1.docker.io/library/nginx` used to match an `nginx` cache on the node but not
    // here; both now read references through `crate::reference`.
    let nginx = cache("imc-nginx", 1, &[("nginx", 10)]);
    for wanted in [
        "registry-1.docker.io/library/nginx",
        "registry.hub.docker.com/nginx:latest",
        "index.docker.io/nginx",
    ] {
        let ranked = rank(
            [&nginx],
            &[wanted.to_owned()],
            MatchFilter::default(),
            now(),
        );
        assert_eq!(ids(&ranked), ["imc-nginx"], "{wanted}");
    }
}

#[test]
fn more_matched_images_beat_bigger_and_newer_caches() {
    let one = cache("imc-one", 500, &[("nginx:1.25", 900)]);
    let two = cache("imc-two", 100, &[("nginx:1.25", 10), ("redis:7", 10)]);
    let ranked = rank(
        [&one, &two],
        &["nginx:1.25".into(), "redis:7".into()],
        MatchFilter::default(),
        now(),
    );
    assert_eq!(ids(&ranked), ["imc-two", "imc-one"]);
    assert_eq!(ranked[0].1.matched, 2);
}

#[test]
fn equal_matches_rank_by_matched_bytes_then_newest() {
    let small_new = cache("imc-small", 900, &[("nginx:1.25", 10), ("other:1", 5000)]);
    let big_old = cache("imc-big", 100, &[("nginx:1.25", 100)]);
    let big_new = cache("imc-bignew", 200, &[("docker.io/library/nginx:1.25", 100)]);
    let ranked = rank(
        [&small_new, &big_old, &big_new],
        &["nginx:1.25".into()],
        MatchFilter::default(),
        now(),
    );
    // Bytes of *matched* images count, not of the whole cache; then the newer of the two.
    assert_eq!(ids(&ranked), ["imc-bignew", "imc-big", "imc-small"]);
}

#[test]
fn only_usable_matching_caches_are_candidates() {
    let mut creating = cache("imc-creating", 100, &[("nginx:1.25", 10)]);
    creating.status = CacheStatus::Creating;
    let mut expired = cache("imc-expired", 100, &[("nginx:1.25", 10)]);
    expired.expire_date_time = Some(Timestamp::from_second(5_000).expect("time"));
    let unrelated = cache("imc-unrelated", 100, &[("redis:7", 10)]);
    let ranked = rank(
        [&creating, &expired, &unrelated],
        &["nginx:1.25".into()],
        MatchFilter::default(),
        now(),
    );
    assert!(ranked.is_empty());
}

#[test]
fn full_match_and_count_filters() {
    let half = cache("imc-half", 100, &[("nginx:1.25", 10)]);
    let full = cache("imc-full", 50, &[("nginx:1.25", 1), ("redis:7", 1)]);
    let wanted: Vec<String> = vec!["nginx:1.25".into(), "redis:7".into()];
    let strict = rank(
        [&half, &full],
        &wanted,
        MatchFilter {
            full: true,
            at_least: None,
        },
        now(),
    );
    assert_eq!(ids(&strict), ["imc-full"]);
    let two = rank(
        [&half, &full],
        &wanted,
        MatchFilter {
            full: false,
            at_least: Some(2),
        },
        now(),
    );
    assert_eq!(ids(&two), ["imc-full"]);
    // Full match wins over a count request that would admit more.
    let both = rank(
        [&half, &full],
        &wanted,
        MatchFilter {
            full: true,
            at_least: Some(1),
        },
        now(),
    );
    assert_eq!(ids(&both), ["imc-full"]);
    let any = rank([&half, &full], &wanted, MatchFilter::default(), now());
    assert_eq!(ids(&any), ["imc-full", "imc-half"]);
}
