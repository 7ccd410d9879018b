use super::*;

const MB: u64 = 1024 * 1024;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn now() -> Timestamp {
    t("2026-01-10T00:00:00Z")
}

fn cache(id: &str, created: &str, images: &[(&str, u64)]) -> CacheEntry {
    CacheEntry {
        id: id.into(),
        name: format!("name-{id}"),
        phase: READY_PHASE.into(),
        expires: None,
        created: t(created),
        images: images
            .iter()
            .map(|(r, b)| CachedImage {
                reference: (*r).into(),
                bytes: *b,
                digests: Vec::new(),
            })
            .collect(),
        size_gib: 20,
        origin: Origin::Object,
        last_matched: None,
        stale: false,
        private_registries: Vec::new(),
    }
}

fn winner(index: &CacheIndex, pod: &[&str], options: MatchOptions) -> Result<String, Miss> {
    index
        .select(pod, options, now())
        .outcome()
        .map(|c| c.cache.id.clone())
}

#[test]
fn more_matched_images_win_over_bytes_and_age() {
    let index = CacheIndex::from_entries([
        cache("imc-one", "2026-01-09T00:00:00Z", &[("nginx", 900 * MB)]),
        cache(
            "imc-two",
            "2026-01-01T00:00:00Z",
            &[("nginx", MB), ("busybox", MB)],
        ),
    ]);
    assert_eq!(
        winner(&index, &["nginx", "busybox"], MatchOptions::default()),
        Ok("imc-two".into())
    );
}

#[test]
fn equal_counts_rank_by_matched_bytes() {
    let index = CacheIndex::from_entries([
        // More bytes overall, but the big image is not one the pod uses.
        cache(
            "imc-small",
            "2026-01-09T00:00:00Z",
            &[("nginx", 10 * MB), ("huge", 5000 * MB)],
        ),
        cache(
            "imc-big",
            "2026-01-01T00:00:00Z",
            &[("nginx:latest", 200 * MB)],
        ),
    ]);
    let report = index.select(["nginx"], MatchOptions::default(), now());
    let won = report.outcome().expect("a winner");
    assert_eq!(won.cache.id, "imc-big");
    assert_eq!(won.matched_bytes, 200 * MB);
}

#[test]
fn equal_counts_and_bytes_rank_newest_first() {
    let index = CacheIndex::from_entries([
        cache("imc-old", "2026-01-01T00:00:00Z", &[("nginx", MB)]),
        cache("imc-new", "2026-01-05T00:00:00Z", &[("nginx", MB)]),
        cache("imc-mid", "2026-01-03T00:00:00Z", &[("nginx", MB)]),
    ]);
    assert_eq!(
        winner(&index, &["nginx"], MatchOptions::default()),
        Ok("imc-new".into())
    );
}

#[test]
fn a_full_tie_is_broken_by_id() {
    let index = CacheIndex::from_entries([
        cache("imc-b", "2026-01-01T00:00:00Z", &[("nginx", MB)]),
        cache("imc-a", "2026-01-01T00:00:00Z", &[("nginx", MB)]),
    ]);
    assert_eq!(
        winner(&index, &["nginx"], MatchOptions::default()),
        Ok("imc-a".into())
    );
}

#[test]
fn images_are_compared_normalised() {
    let index = CacheIndex::from_entries([cache(
        "imc-1",
        "2026-01-01T00:00:00Z",
        &[
            ("docker.io/library/nginx:latest", MB),
            ("localhost:5000/app:v1", MB),
        ],
    )]);
    let report = index.select(
        ["nginx", "localhost:5000/app:v1", "app:v1"],
        MatchOptions::default(),
        now(),
    );
    let won = report.outcome().expect("a winner");
    assert_eq!(won.matched, 2);
    assert_eq!(
        report.matched_images(won),
        vec!["nginx", "localhost:5000/app:v1"]
    );
}

#[test]
fn repeated_pod_images_count_once() {
    // An init container and a container with the same image.
    let index =
        CacheIndex::from_entries([cache("imc-1", "2026-01-01T00:00:00Z", &[("busybox", MB)])]);
    let report = index.select(
        ["busybox", "busybox:latest", "docker.io/busybox"],
        MatchOptions {
            perfect_match: true,
            ..MatchOptions::default()
        },
        now(),
    );
    assert_eq!(report.wanted.len(), 1);
    let won = report.outcome().expect("perfect");
    assert_eq!((won.matched, won.matched_bytes), (1, MB));
}

#[test]
fn only_ready_unexpired_caches_qualify() {
    let mut creating = cache("imc-creating", "2026-01-09T00:00:00Z", &[("nginx", MB)]);
    creating.phase = "Creating".into();
    let mut expired = cache("imc-expired", "2026-01-09T00:00:00Z", &[("nginx", MB)]);
    expired.expires = Some(t("2026-01-09T12:00:00Z"));
    let mut index = CacheIndex::from_entries([creating, expired]);
    let report = index.select(["nginx"], MatchOptions::default(), now());
    assert_eq!(report.outcome().err(), Some(Miss::NoneUsable));
    let verdicts: Vec<_> = report.ranked().iter().map(|c| c.verdict).collect();
    assert!(verdicts.contains(&Verdict::NotReady));
    assert!(verdicts.contains(&Verdict::Expired(t("2026-01-09T12:00:00Z"))));

    let mut later = cache("imc-later", "2026-01-01T00:00:00Z", &[("nginx", MB)]);
    later.expires = Some(t("2026-02-01T00:00:00Z"));
    index.upsert(later);
    assert_eq!(
        winner(&index, &["nginx"], MatchOptions::default()),
        Ok("imc-later".into())
    );
}

#[test]
fn perfect_match_requires_every_image() {
    let index = CacheIndex::from_entries([
        cache(
            "imc-partial",
            "2026-01-09T00:00:00Z",
            &[("nginx", 900 * MB), ("redis", MB)],
        ),
        cache(
            "imc-full",
            "2026-01-01T00:00:00Z",
            &[("nginx", MB), ("busybox", MB), ("redis", MB)],
        ),
    ]);
    let perfect = MatchOptions {
        perfect_match: true,
        match_count_request: None,
        storage_gib: None,
        fresh_only: false,
    };
    assert_eq!(
        winner(&index, &["nginx", "busybox"], perfect),
        Ok("imc-full".into())
    );
    let report = index.select(["nginx", "busybox", "mysql"], perfect, now());
    assert_eq!(report.outcome().err(), Some(Miss::FilteredOut));
    assert!(
        report
            .candidates
            .iter()
            .all(|c| matches!(c.verdict, Verdict::NotPerfect { .. }))
    );
}

#[test]
fn match_count_request_sets_a_floor() {
    let index = CacheIndex::from_entries([
        cache("imc-one", "2026-01-09T00:00:00Z", &[("nginx", MB)]),
        cache(
            "imc-two",
            "2026-01-01T00:00:00Z",
            &[("nginx", MB), ("busybox", MB)],
        ),
    ]);
    let at_least = |n| MatchOptions {
        perfect_match: false,
        match_count_request: Some(n),
        storage_gib: None,
        fresh_only: false,
    };
    let pod = ["nginx", "busybox", "redis"];
    assert_eq!(winner(&index, &pod, at_least(2)), Ok("imc-two".into()));
    let report = index.select(pod, at_least(3), now());
    assert_eq!(report.outcome().err(), Some(Miss::FilteredOut));
    assert!(
        report
            .candidates
            .iter()
            .all(|c| c.verdict == Verdict::BelowMatchCount { required: 3 })
    );
    // Only the one-image cache passes a floor of one when the other is not Ready.
    let mut index = index;
    let mut two = index.remove("imc-two").expect("present");
    two.phase = "Updating".into();
    index.upsert(two);
    assert_eq!(winner(&index, &pod, at_least(1)), Ok("imc-one".into()));
}

#[test]
fn perfect_match_wins_over_match_count() {
    let index = CacheIndex::from_entries([cache(
        "imc-two",
        "2026-01-01T00:00:00Z",
        &[("nginx", MB), ("busybox", MB)],
    )]);
    // A count of 1 alone would accept the cache; perfect match (which wins) does not.
    let both = MatchOptions {
        perfect_match: true,
        match_count_request: Some(1),
        storage_gib: None,
        fresh_only: false,
    };
    let report = index.select(["nginx", "busybox", "redis"], both, now());
    assert_eq!(report.outcome().err(), Some(Miss::FilteredOut));
    assert_eq!(
        report.candidates[0].verdict,
        Verdict::NotPerfect { missing: 1 }
    );
    // And a count larger than the cache holds does not matter once the match is perfect.
    let both = MatchOptions {
        perfect_match: true,
        match_count_request: Some(5),
        storage_gib: None,
        fresh_only: false,
    };
    assert_eq!(
        winner(&index, &["nginx", "busybox"], both),
        Ok("imc-two".into())
    );
}

#[test]
fn misses_say_why() {
    let index =
        CacheIndex::from_entries([cache("imc-1", "2026-01-01T00:00:00Z", &[("nginx", MB)])]);
    let none: [&str; 0] = [];
    assert_eq!(
        index
            .select(none, MatchOptions::default(), now())
            .outcome()
            .err(),
        Some(Miss::NoImages)
    );
    assert_eq!(
        winner(&index, &["redis"], MatchOptions::default()),
        Err(Miss::NoCacheHoldsAnImage)
    );
    assert_eq!(
        winner(&CacheIndex::new(), &["redis"], MatchOptions::default()),
        Err(Miss::NoCacheHoldsAnImage)
    );
}

#[test]
fn candidates_carry_age_and_rank_for_explain() {
    let mut creating = cache("imc-c", "2026-01-09T00:00:00Z", &[("nginx", MB)]);
    creating.phase = "Creating".into();
    let index = CacheIndex::from_entries([
        creating,
        cache("imc-a", "2026-01-08T00:00:00Z", &[("nginx", MB)]),
        cache(
            "imc-b",
            "2026-01-01T00:00:00Z",
            &[("nginx", MB), ("busybox", 2 * MB)],
        ),
    ]);
    let report = index.select(["nginx", "busybox"], MatchOptions::default(), now());
    let ranked: Vec<_> = report
        .ranked()
        .iter()
        .map(|c| c.cache.id.as_str())
        .collect();
    assert_eq!(ranked, ["imc-b", "imc-a", "imc-c"]);
    let best = report.winner().expect("winner");
    assert_eq!(best.age, SignedDuration::from_hours(9 * 24));
    assert_eq!(best.matched_bytes, 3 * MB);
}

#[test]
fn upsert_replaces_and_remove_forgets() {
    let mut index = CacheIndex::new();
    index.upsert(cache("imc-1", "2026-01-01T00:00:00Z", &[("nginx", MB)]));
    index.upsert(cache("imc-1", "2026-01-01T00:00:00Z", &[("redis", MB)]));
    assert_eq!(index.len(), 1);
    assert_eq!(
        winner(&index, &["nginx"], MatchOptions::default()),
        Err(Miss::NoCacheHoldsAnImage)
    );
    assert_eq!(
        winner(&index, &["redis"], MatchOptions::default()),
        Ok("imc-1".into())
    );
    assert!(index.remove("imc-1").is_some());
    assert!(index.is_empty());
    assert!(index.get("imc-1").is_none());
    // A freed slot is reused without mixing up postings.
    index.upsert(cache("imc-2", "2026-01-01T00:00:00Z", &[("nginx", MB)]));
    assert_eq!(
        winner(&index, &["redis"], MatchOptions::default()),
        Err(Miss::NoCacheHoldsAnImage)
    );
    assert_eq!(
        index.get("imc-2").map(|c| c.name.as_str()),
        Some("name-imc-2")
    );
}

#[test]
fn docker_hub_aliases_hit_the_same_cache_as_the_emulator_matches() {
    // The node and the emulator used to disagree on `registry.hub.docker.com`; both read
    // references through `crate::reference` now.
    let index =
        CacheIndex::from_entries([cache("imc-nginx", "2026-01-01T00:00:00Z", &[("nginx", MB)])]);
    for pod_image in [
        "registry-1.docker.io/library/nginx",
        "registry.hub.docker.com/nginx:latest",
        "INDEX.DOCKER.IO/nginx",
    ] {
        assert_eq!(
            winner(&index, &[pod_image], MatchOptions::default()),
            Ok("imc-nginx".into()),
            "{pod_image}"
        );
    }
}

#[test]
fn a_pod_naming_an_image_by_digest_matches_the_cache_holding_its_tag() {
    let digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut entry = cache("imc-tagged", "2026-01-01T00:00:00Z", &[("nginx:1.25", MB)]);
    entry.images[0].digests = vec![digest.to_owned()];
    let index = CacheIndex::from_entries([entry]);
    assert_eq!(
        winner(
            &index,
            &[&format!("nginx@{digest}")],
            MatchOptions::default()
        ),
        Ok("imc-tagged".into())
    );
    let other = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    assert_eq!(
        winner(
            &index,
            &[&format!("nginx@{other}")],
            MatchOptions::default()
        ),
        Err(Miss::NoCacheHoldsAnImage),
        "another digest is other content"
    );
    let report = index.select([format!("nginx@{digest}")], MatchOptions::default(), now());
    assert!(report.winner().is_some_and(|w| w.full && w.matched == 1));
}

#[test]
fn a_stale_cache_is_skipped_only_by_pods_that_pull_always() {
    let mut entry = cache("imc-stale", "2026-01-01T00:00:00Z", &[("app:v1", MB)]);
    entry.stale = true;
    let index = CacheIndex::from_entries([entry]);
    assert_eq!(
        winner(&index, &["app:v1"], MatchOptions::default()),
        Ok("imc-stale".into()),
        "IfNotPresent takes what the cache holds, as ECI does"
    );
    let always = MatchOptions {
        fresh_only: true,
        ..MatchOptions::default()
    };
    assert_eq!(winner(&index, &["app:v1"], always), Err(Miss::NoneUsable));
    let report = index.select(["app:v1"], always, now());
    assert_eq!(report.candidates[0].verdict, Verdict::Stale);
}
