//! Our ECI client against our emulator, over real HTTP on loopback: every operation the node
//! uses, through both signature versions; and a burst of creates that the emulator throttles
//! and the client's retries (or its local budget) complete without a duplicate group.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use eci_vk::eci::{
    self, BudgetConfig, Client, ClientConfig, Container, ContainerGroupStatus,
    CreateContainerGroup, CreateImageCache, DeleteContainerGroup, DeleteImageCache,
    DescribeContainerGroupMetric, DescribeContainerGroups, DescribeContainerLog,
    DescribeImageCaches, ExecContainerCommand, ImageCacheStatus, RestartContainerGroup,
    RetryPolicy, SignatureVersion, Tag, UpdateContainerGroup, UpdateImageCache,
};

use crate::support::{
    Ground,
    emulator::EmulatorProcess,
    ground::Namespace,
    harness::{Phase, Test},
    wait::eventually,
};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "eci_api::every_operation_round_trips_v3",
            phase: Phase::WithCrd,
            run: round_trip_v3,
        },
        Test {
            name: "eci_api::every_operation_round_trips_v1",
            phase: Phase::WithCrd,
            run: round_trip_v1,
        },
        Test {
            name: "eci_api::burst_is_throttled_then_retried_without_duplicates",
            phase: Phase::WithCrd,
            run: burst_retried,
        },
        Test {
            name: "eci_api::budget_keeps_a_burst_under_the_quota",
            phase: Phase::WithCrd,
            run: burst_budgeted,
        },
    ]
}

const FAST: &[&str] = &[
    "--sim-pull-ms",
    "20",
    "--sim-snapshot-ms",
    "20",
    "--sim-start-ms",
    "20",
];

fn client(
    emulator: &EmulatorProcess,
    signature: SignatureVersion,
    tune: impl FnOnce(&mut ClientConfig),
) -> Result<Client> {
    let mut config = emulator.client_config();
    config.signature = signature;
    tune(&mut config);
    Ok(Client::new(config)?)
}

fn round_trip_v3(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    round_trip(ground, SignatureVersion::V3)
}

fn round_trip_v1(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    round_trip(ground, SignatureVersion::V1)
}

fn round_trip(ground: &Ground, signature: SignatureVersion) -> Result<()> {
    let emulator = EmulatorProcess::start(ground.eci_vk(), FAST)?;
    let eci = client(&emulator, signature, |_| {})?;
    let busybox = ground.registry.reference("eci-test/busybox", "v1");
    let filler = ground.registry.reference("eci-test/filler-100m", "v1");
    ground.runtime.block_on(async {
        let usage = eci.list_usage().await.context("ListUsage")?;
        ensure!(!usage.attributes.is_empty(), "ListUsage returned nothing");

        // --- image cache: create (idempotent by ClientToken), wait Ready, match, update -----
        let create = CreateImageCache {
            image_cache_name: "round-trip".into(),
            images: vec![busybox.clone(), filler.clone()],
            image_cache_size: Some(20),
            retention_days: Some(7),
            tags: vec![Tag::new("suite", "eci_api")],
            client_token: Some(format!("round-trip-cache-{signature:?}")),
            ..Default::default()
        };
        let cache_id = eci
            .create_image_cache(&create)
            .await
            .context("CreateImageCache")?
            .image_cache_id;
        ensure!(
            cache_id.starts_with("imc-") && cache_id.len() == 24,
            "cache id {cache_id}"
        );
        let again = eci.create_image_cache(&create).await?.image_cache_id;
        ensure!(
            again == cache_id,
            "the same ClientToken made a second cache: {again}"
        );

        let by_id = DescribeImageCaches {
            image_cache_id: Some(cache_id.clone()),
            ..Default::default()
        };
        let ready = eventually("the cache to be Ready", 30, || async {
            let caches = eci.describe_image_caches(&by_id).await?.image_caches;
            Ok(caches
                .into_iter()
                .find(|c| c.status == ImageCacheStatus::Ready))
        })
        .await?;
        ensure!(ready.progress == "100%", "progress {}", ready.progress);
        ensure!(
            !ready.expire_date_time.is_empty(),
            "RetentionDays gave no ExpireDateTime"
        );
        ensure!(
            ready.images == [busybox.clone(), filler.clone()],
            "images {:?}",
            ready.images
        );

        let matching = DescribeImageCaches {
            match_images: vec![busybox.clone()],
            image_match_count_request: Some(1),
            ..Default::default()
        };
        let matched = eci
            .describe_image_caches(&matching)
            .await
            .context("DescribeImageCaches MatchImage")?;
        ensure!(
            matched
                .image_caches
                .iter()
                .any(|c| c.image_cache_id == cache_id),
            "MatchImage missed the cache"
        );

        eci.update_image_cache(&UpdateImageCache {
            image_cache_id: cache_id.clone(),
            images: vec![busybox.clone()],
            ..Default::default()
        })
        .await
        .context("UpdateImageCache")?;
        eventually("the updated cache to be Ready", 30, || async {
            let caches = eci.describe_image_caches(&by_id).await?.image_caches;
            Ok(caches
                .into_iter()
                .find(|c| c.status == ImageCacheStatus::Ready && c.images == [busybox.clone()]))
        })
        .await?;

        // --- container group from the cache ------------------------------------------------
        let tag = Tag::new("round-trip", format!("{signature:?}"));
        let group_id = eci
            .create_container_group(&CreateContainerGroup {
                container_group_name: "round-trip".into(),
                containers: vec![Container {
                    name: "main".into(),
                    image: busybox.clone(),
                    commands: vec!["sh".into(), "-c".into(), "echo hello; sleep 3600".into()],
                    ..Default::default()
                }],
                image_snapshot_id: Some(cache_id.clone()),
                tags: vec![tag.clone()],
                client_token: Some(format!("round-trip-group-{signature:?}")),
                ..Default::default()
            })
            .await
            .context("CreateContainerGroup")?
            .container_group_id;
        ensure!(
            group_id.starts_with("eci-") && group_id.len() == 24,
            "group id {group_id}"
        );

        let by_tag = DescribeContainerGroups {
            tags: vec![tag.clone()],
            ..Default::default()
        };
        let wait_running = || {
            eventually("the group to run", 30, || async {
                let groups = eci
                    .describe_container_groups(&by_tag)
                    .await?
                    .container_groups;
                Ok(groups.into_iter().find(|g| {
                    g.container_group_id == group_id && g.status == ContainerGroupStatus::Running
                }))
            })
        };
        let running = wait_running().await?;
        ensure!(
            running.containers.len() == 1 && running.containers[0].name == "main",
            "containers {:?}",
            running.containers
        );

        eci.describe_container_log(&DescribeContainerLog {
            container_group_id: group_id.clone(),
            container_name: "main".into(),
            tail: Some(10),
            ..Default::default()
        })
        .await
        .context("DescribeContainerLog")?;
        eci.exec_container_command(&ExecContainerCommand {
            container_group_id: group_id.clone(),
            container_name: "main".into(),
            command: vec!["cat".into(), "/etc/hostname".into()],
            sync: Some(true),
            ..Default::default()
        })
        .await
        .context("ExecContainerCommand")?;
        eci.describe_container_group_metric(&DescribeContainerGroupMetric {
            container_group_id: group_id.clone(),
            ..Default::default()
        })
        .await
        .context("DescribeContainerGroupMetric")?;
        eci.update_container_group(&UpdateContainerGroup {
            container_group_id: group_id.clone(),
            tags: vec![tag.clone(), Tag::new("updated", "yes")],
            ..Default::default()
        })
        .await
        .context("UpdateContainerGroup")?;
        wait_running().await?;
        eci.restart_container_group(&RestartContainerGroup {
            container_group_id: group_id.clone(),
            ..Default::default()
        })
        .await
        .context("RestartContainerGroup")?;
        wait_running().await?;

        // --- deletion ---------------------------------------------------------------------
        eci.delete_container_group(&DeleteContainerGroup {
            container_group_id: group_id.clone(),
            ..Default::default()
        })
        .await
        .context("DeleteContainerGroup")?;
        eventually("the group to go", 30, || async {
            let groups = eci
                .describe_container_groups(&by_tag)
                .await?
                .container_groups;
            Ok(groups
                .iter()
                .all(|g| g.container_group_id != group_id)
                .then_some(()))
        })
        .await?;
        eci.delete_image_cache(&DeleteImageCache {
            image_cache_id: cache_id.clone(),
            ..Default::default()
        })
        .await
        .context("DeleteImageCache")?;
        eventually("the cache to go", 30, || async {
            Ok(eci
                .describe_image_caches(&by_id)
                .await?
                .image_caches
                .is_empty()
                .then_some(()))
        })
        .await?;
        Ok(())
    })
}

/// Creates `n` groups at once, each with its own ClientToken, and a fifth of them again (the
/// repeats must return the same ids), and checks exactly `n` distinct groups exist.
async fn burst(eci: &Client, n: usize, label: &str) -> Result<()> {
    let tag = Tag::new("burst", label);
    let create = |i: usize| {
        let eci = eci.clone();
        let tag = tag.clone();
        let token = format!("{label}-{i}");
        async move {
            eci.create_container_group(&CreateContainerGroup {
                container_group_name: format!("burst-{i}"),
                containers: vec![Container {
                    name: "c".into(),
                    image: "busybox".into(),
                    ..Default::default()
                }],
                tags: vec![tag],
                client_token: Some(token),
                ..Default::default()
            })
            .await
            .map(|r| r.container_group_id)
        }
    };
    let create_all = |range: std::ops::Range<usize>| {
        let mut tasks = tokio::task::JoinSet::new();
        for i in range.clone() {
            let create = create(i);
            tasks.spawn(async move { (i, create.await) });
        }
        async move {
            let mut ids = vec![String::new(); range.len()];
            while let Some(joined) = tasks.join_next().await {
                let (i, id) = joined?;
                ids[i - range.start] = id.with_context(|| format!("create #{i} failed"))?;
            }
            anyhow::Ok(ids)
        }
    };
    let ids = create_all(0..n).await?;
    let distinct: HashSet<_> = ids.iter().cloned().collect();
    ensure!(
        distinct.len() == n,
        "{} distinct ids for {n} creates",
        distinct.len()
    );
    // The same ClientTokens again: the same groups, no new ones.
    let again = create_all(0..n / 5).await?;
    ensure!(
        again[..] == ids[..n / 5],
        "a repeated ClientToken made a new group"
    );

    let listed = eci
        .describe_all_container_groups(&DescribeContainerGroups {
            tags: vec![tag.clone()],
            limit: Some(20),
            ..Default::default()
        })
        .await?;
    let listed: HashSet<_> = listed
        .iter()
        .map(|g| g.container_group_id.clone())
        .collect();
    ensure!(
        listed.len() == n,
        "the emulator holds {} groups for {n} creates",
        listed.len()
    );
    ensure!(
        listed.iter().all(|id| distinct.contains(id)),
        "listed ids differ from created ones"
    );
    Ok(())
}

fn burst_retried(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let emulator = EmulatorProcess::start(ground.eci_vk(), FAST)?;
    let throttled = Arc::new(AtomicU32::new(0));
    let counter = throttled.clone();
    let eci = client(&emulator, SignatureVersion::V3, |config| {
        config.budget = BudgetConfig::disabled();
        config.retry = RetryPolicy {
            max_attempts: 30,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        config.observer = Some(Arc::new(move |attempt: &eci::AttemptRecord<'_>| {
            if attempt.throttled {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    })?;
    ground.runtime.block_on(burst(&eci, 300, "retried"))?;
    let throttled = throttled.load(Ordering::Relaxed);
    ensure!(
        throttled > 0,
        "300 creates at once were never throttled: the emulator enforces no quota"
    );
    eprintln!("[eci_api] 300 creates without a budget: {throttled} throttled answers, all retried");
    Ok(())
}

fn burst_budgeted(ground: &Ground, _namespace: &Namespace) -> Result<()> {
    let emulator = EmulatorProcess::start(ground.eci_vk(), FAST)?;
    let throttled = Arc::new(AtomicU32::new(0));
    let counter = throttled.clone();
    let eci = client(&emulator, SignatureVersion::V3, |config| {
        config.observer = Some(Arc::new(move |attempt: &eci::AttemptRecord<'_>| {
            if attempt.throttled {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    })?;
    ground.runtime.block_on(burst(&eci, 300, "budgeted"))?;
    // The budget is set to the documented quota itself, so the two buckets agree only up to
    // network jitter: a request that overtakes the first one on the wire can find the server's
    // bucket a fraction of a token short. Without the budget the same burst draws hundreds of
    // Throttling answers (see the test above); with it, at most a stray few, which retries absorb.
    let throttled = throttled.load(Ordering::Relaxed);
    eprintln!("[eci_api] 300 creates with the budget: {throttled} throttled answers");
    ensure!(
        throttled <= 5,
        "the client's budget let {throttled} creates be throttled"
    );
    Ok(())
}
