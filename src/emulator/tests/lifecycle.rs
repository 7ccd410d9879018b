//! Happy paths over HTTP: caches, groups, matching, tokens, pagination, persistence, expiry.

use std::{sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::*;
use crate::emulator::{Credentials, Emulator, ManualClock, Settings, clock::is_resource_id};

fn events(v: &Value) -> Vec<(String, String)> {
    v["Events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["Reason"].as_str().unwrap_or("").to_owned(),
                        e["Message"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn create_cache(c: &Client, name: &str, images: &[&str]) -> String {
    let mut req = Req::new("CreateImageCache", &[("ImageCacheName", name)]);
    for (i, image) in images.iter().enumerate() {
        req = req.param(&format!("Image.{}", i + 1), image);
    }
    let body = c.send(req).await.ok();
    let id = body["ImageCacheId"].as_str().expect("id").to_owned();
    assert!(is_resource_id(&id, "imc"), "{id}");
    assert!(is_resource_id(
        body["ContainerGroupId"].as_str().expect("builder"),
        "eci"
    ));
    id
}

async fn create_group(c: &Client, name: &str, extra: &[(&str, &str)]) -> String {
    let mut req = Req::new(
        "CreateContainerGroup",
        &[
            ("ContainerGroupName", name),
            ("Container.1.Name", "app"),
            ("Container.1.Image", "nginx:1.25"),
        ],
    );
    for (k, v) in extra {
        req = req.param(k, v);
    }
    let body = c.send(req).await.ok();
    body["ContainerGroupId"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_cache_and_a_group_from_it_live_their_whole_life() {
    within(async {
        let (handle, c) = start_default().await;
        let cache_id = create_cache(&c, "web", &["nginx:1.25", "busybox:1.36"]).await;
        let cache = c.wait_cache(&cache_id, "Ready").await;
        assert_eq!(cache["Progress"], "100%");
        assert!(is_resource_id(
            cache["SnapshotId"].as_str().expect("snapshot"),
            "s"
        ));
        assert_eq!(cache["ImageCacheSize"], 20);
        assert_eq!(
            cache["ExpireDateTime"], "",
            "no RetentionDays: never expires"
        );
        let cache_events = events(&cache);
        let reasons: Vec<&str> = cache_events.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(reasons, ["Started", "Pulled", "Pulled", "Created"]);
        assert_eq!(cache_events[1].1, "Success pull image nginx:1.25");
        assert_eq!(cache_events[2].1, "Success pull image busybox:1.36");

        let id = create_group(
            &c,
            "web-1",
            &[("ImageSnapshotId", &cache_id), ("Container.1.Cpu", "0.3")],
        )
        .await;
        assert!(is_resource_id(&id, "eci"));
        let group = c.wait_group(&id, "Running").await;
        assert_eq!(group["Cpu"], 0.5, "0.3 vCPU rounds up to the 0.5 spec");
        assert_eq!(group["Containers"][0]["Ready"], true);
        assert_eq!(group["Containers"][0]["CurrentState"]["State"], "Running");
        let evs = events(&group);
        assert!(
            evs.iter()
                .any(|(r, m)| r == "SuccessfulHitImageCache" && m.contains(&cache_id)),
            "{evs:?}"
        );
        assert!(
            evs.iter()
                .any(|(r, m)| r == "Pulled" && m.contains("already present")),
            "{evs:?}"
        );
        assert!(evs.iter().any(|(r, _)| r == "Started"), "{evs:?}");
        assert!(
            evs.iter()
                .any(|(r, m)| r == "Created" && m == "Created container app"),
            "{evs:?}"
        );
        assert_ne!(c.cache(&cache_id).await["LastMatchedTime"], "");

        let log = c
            .call(
                "DescribeContainerLog",
                &[("ContainerGroupId", &id), ("ContainerName", "app")],
            )
            .await;
        assert!(
            log["Content"]
                .as_str()
                .expect("content")
                .contains("simulated container app started")
        );
        let exec = c
            .call(
                "ExecContainerCommand",
                &[
                    ("ContainerGroupId", &id),
                    ("ContainerName", "app"),
                    ("Command", "[\"echo\",\"hi\"]"),
                    ("Sync", "true"),
                    ("TTY", "false"),
                ],
            )
            .await;
        assert_eq!(exec["SyncResponse"], "hi\n");
        let exec = c
            .call(
                "ExecContainerCommand",
                &[
                    ("ContainerGroupId", &id),
                    ("ContainerName", "app"),
                    ("Command", "[\"/bin/sh\"]"),
                ],
            )
            .await;
        assert!(
            exec["WebSocketUri"]
                .as_str()
                .expect("uri")
                .starts_with("ws://")
        );
        let metric = c
            .call("DescribeContainerGroupMetric", &[("ContainerGroupId", &id)])
            .await;
        let records = metric["Records"].as_array().expect("records");
        assert!(!records.is_empty() && records.len() <= 50);
        assert_eq!(records[0]["CPU"]["Limit"], 500.0);

        c.call("RestartContainerGroup", &[("ContainerGroupId", &id)])
            .await;
        let restarted = c.wait_group(&id, "Running").await;
        assert_eq!(restarted["Containers"][0]["RestartCount"], 1);

        c.call(
            "UpdateContainerGroup",
            &[
                ("ContainerGroupId", &id),
                ("UpdateType", "IncrementalUpdate"),
                ("Container.1.Name", "app"),
                ("Container.1.Image", "nginx:1.26"),
            ],
        )
        .await;
        let updated = c.wait_group(&id, "Running").await;
        assert_eq!(updated["Containers"][0]["Image"], "nginx:1.26");

        c.call("DeleteContainerGroup", &[("ContainerGroupId", &id)])
            .await;
        let listed = c.call("DescribeContainerGroups", &[]).await;
        assert_eq!(listed["TotalCount"], 0);
        c.call("DeleteImageCache", &[("ImageCacheId", &cache_id)])
            .await;
        assert_eq!(c.call("DescribeImageCaches", &[]).await["TotalCount"], 0);
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn containers_end_by_exit_code_and_restart_policy() {
    within(async {
        let (handle, c) = start_default().await;
        let exit = |code: &'static str| {
            [
                ("RestartPolicy", "Never"),
                ("Container.1.EnvironmentVar.1.Key", "SIMULATED_EXIT_CODE"),
                ("Container.1.EnvironmentVar.1.Value", code),
            ]
        };
        let ok = create_group(&c, "ok", &exit("0")).await;
        let bad = create_group(&c, "bad", &exit("3")).await;
        let big = create_group(&c, "big", &[("Cpu", "128"), ("Memory", "1024")]).await;
        let done = c.wait_group(&ok, "Succeeded").await;
        assert_ne!(done["SucceededTime"], "");
        let failed = c.wait_group(&bad, "Failed").await;
        assert_eq!(failed["Containers"][0]["CurrentState"]["ExitCode"], 3);
        let unschedulable = c.wait_group(&big, "ScheduleFailed").await;
        assert!(
            events(&unschedulable)
                .iter()
                .any(|(r, m)| r == "FailedScheduling" && m.starts_with("Schedule eci failed"))
        );
        // Terminal groups cannot be restarted.
        let refused = c
            .send(Req::new(
                "RestartContainerGroup",
                &[("ContainerGroupId", &ok)],
            ))
            .await;
        assert_eq!(refused.code(), "IncorrectStatus");
        let filtered = c
            .call("DescribeContainerGroups", &[("Status", "Failed")])
            .await;
        assert_eq!(filtered["TotalCount"], 1);
        assert_eq!(
            filtered["ContainerGroups"][0]["ContainerGroupId"],
            bad.as_str()
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn auto_match_picks_the_cache_with_most_matched_images() {
    within(async {
        let (handle, c) = start_default().await;
        let one = create_cache(&c, "one", &["nginx:1.25"]).await;
        let both = create_cache(&c, "both", &["docker.io/library/nginx:1.25", "redis:7"]).await;
        let _other = create_cache(&c, "other", &["postgres:16"]).await;
        c.wait_cache(&one, "Ready").await;
        c.wait_cache(&both, "Ready").await;
        let id = create_group(
            &c,
            "auto",
            &[
                ("AutoMatchImageCache", "true"),
                ("Container.2.Name", "cache"),
                ("Container.2.Image", "redis:7"),
            ],
        )
        .await;
        let group = c.group(&id).await;
        assert!(
            events(&group)
                .iter()
                .any(|(r, m)| r == "SuccessfulHitImageCache" && m.contains(&both)),
            "{group}"
        );
        // The same ranking through DescribeImageCaches.
        let ranked = c
            .call(
                "DescribeImageCaches",
                &[("MatchImage.1", "nginx:1.25"), ("MatchImage.2", "redis:7")],
            )
            .await;
        let ids: Vec<&str> = ranked["ImageCaches"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|v| v["ImageCacheId"].as_str())
            .collect();
        assert_eq!(ids, [both.as_str(), one.as_str()]);
        let full = c
            .call(
                "DescribeImageCaches",
                &[
                    ("MatchImage.1", "nginx:1.25"),
                    ("MatchImage.2", "redis:7"),
                    ("ImageFullMatch", "true"),
                ],
            )
            .await;
        assert_eq!(full["TotalCount"], 1);
        // Nothing matches: a miss is recorded and the group still starts.
        let miss = create_group(
            &c,
            "miss",
            &[
                ("AutoMatchImageCache", "true"),
                ("Container.1.Image", "mysql:8"),
            ],
        )
        .await;
        let miss = c.wait_group(&miss, "Running").await;
        assert!(events(&miss).iter().any(|(r, _)| r == "ImageCacheMissed"));
        assert!(
            events(&miss)
                .iter()
                .any(|(r, m)| r == "Pulled" && m.contains("Successfully pulled"))
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_token_makes_one_resource() {
    within(async {
        let (handle, c) = start_default().await;
        let make = |name: &'static str| {
            Req::new(
                "CreateContainerGroup",
                &[
                    ("ContainerGroupName", name),
                    ("Container.1.Name", "a"),
                    ("Container.1.Image", "nginx"),
                    ("ClientToken", "pod-uid-1"),
                ],
            )
        };
        let first = c.send(make("same")).await.ok();
        // A retry (fresh nonce, other signature version) returns the same id.
        let second = c.send(make("same").style(Style::V1Get)).await.ok();
        assert_eq!(first["ContainerGroupId"], second["ContainerGroupId"]);
        assert_ne!(first["RequestId"], second["RequestId"]);
        assert_eq!(
            c.call("DescribeContainerGroups", &[]).await["TotalCount"],
            1
        );
        let mismatch = c.send(make("different")).await;
        assert_eq!(
            (mismatch.status, mismatch.code()),
            (400, "IdempotentParameterMismatch")
        );
        assert_eq!(
            c.call("DescribeContainerGroups", &[]).await["TotalCount"],
            1
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn describe_pages_through_groups_and_filters_by_tag() {
    within(async {
        let (handle, c) = start_default().await;
        let mut made = Vec::new();
        for i in 0..25 {
            let name = format!("g-{i}");
            let tag = if i % 5 == 0 { "blue" } else { "green" };
            made.push(
                create_group(&c, &name, &[("Tag.1.Key", "color"), ("Tag.1.Value", tag)]).await,
            );
        }
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let mut req = Req::new("DescribeContainerGroups", &[("Limit", "10")]);
            if !token.is_empty() {
                req = req.param("NextToken", &token);
            }
            let body = c.send(req).await.ok();
            assert_eq!(body["TotalCount"], 25);
            pages += 1;
            for g in body["ContainerGroups"].as_array().expect("list") {
                seen.push(g["ContainerGroupId"].as_str().expect("id").to_owned());
            }
            token = body["NextToken"].as_str().expect("token").to_owned();
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(pages, 3);
        let mut sorted = made.clone();
        sorted.sort();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(got, sorted, "every group exactly once");
        // Limit is capped at 20.
        let capped = c.call("DescribeContainerGroups", &[("Limit", "50")]).await;
        assert_eq!(capped["ContainerGroups"].as_array().map(Vec::len), Some(20));
        let blue = c
            .call(
                "DescribeContainerGroups",
                &[("Tag.1.Key", "color"), ("Tag.1.Value", "blue")],
            )
            .await;
        assert_eq!(blue["TotalCount"], 5);
        let bad = c
            .send(Req::new(
                "DescribeContainerGroups",
                &[("NextToken", "not-a-token")],
            ))
            .await;
        assert_eq!(bad.code(), "InvalidParameter.NextToken");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn v1_get_and_form_post_work_like_v3() {
    within(async {
        let (handle, c) = start_default().await;
        let id = create_cache(&c, "v1", &["nginx:1.25"]).await;
        for style in [Style::V1Get, Style::V1Post] {
            let body = c
                .send(Req::new("DescribeImageCaches", &[("ImageCacheId", &id)]).style(style))
                .await
                .ok();
            assert_eq!(body["TotalCount"], 1, "{style:?}");
            let request_id = body["RequestId"].as_str().expect("request id");
            assert_eq!(request_id, request_id.to_ascii_uppercase());
        }
        let usage = c.call("ListUsage", &[]).await;
        assert_eq!(usage["Attributes"]["UsedImageCacheCount"], 1);
        assert_eq!(usage["Attributes"]["MaxImageCacheCount"], 50);
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_restarted_emulator_keeps_its_groups_and_caches() {
    within(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (handle, c) = start_saving(dir.path()).await;
        let cache = create_cache(&c, "kept", &["nginx:1.25"]).await;
        c.wait_cache(&cache, "Ready").await;
        let group = create_group(&c, "kept", &[]).await;
        c.wait_group(&group, "Running").await;
        handle.shutdown().await;

        let (handle, c) = start_saving(dir.path()).await;
        assert_eq!(c.cache(&cache).await["Status"], "Ready");
        let again = c.wait_group(&group, "Running").await;
        assert_eq!(again["ContainerGroupName"], "kept");
        // The cache's snapshot is back on the (fresh, in-process) agent: a new group from it
        // finds its image already present.
        let from_cache = create_group(&c, "after", &[("ImageSnapshotId", &cache)]).await;
        let after = c.wait_group(&from_cache, "Running").await;
        assert!(
            events(&after)
                .iter()
                .any(|(r, m)| r == "Pulled" && m.contains("already present")),
            "{after}"
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn caches_expire_by_retention_and_failed_caches_after_a_day() {
    within(async {
        let start_at: Timestamp = Timestamp::now();
        let manual = ManualClock::new(start_at);
        let clock: Arc<dyn Clock> = Arc::new(manual.clone());
        let handle = start(
            clock.clone(),
            SimulatedConfig::default(),
            Quotas::default(),
            None,
        )
        .await;
        let c = Client::new(&handle, clock);
        let failed = create_cache(&c, "broken", &["example.com/does-not-exist:1"]).await;
        let cache = c.wait_cache(&failed, "Failed").await;
        let day = (start_at + SignedDuration::from_hours(24))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        assert_eq!(cache["ExpireDateTime"], day.as_str());
        let kept = c
            .send(Req::new(
                "CreateImageCache",
                &[
                    ("ImageCacheName", "week"),
                    ("Image.1", "nginx"),
                    ("RetentionDays", "7"),
                ],
            ))
            .await
            .ok();
        let kept = kept["ImageCacheId"].as_str().expect("id").to_owned();
        c.wait_cache(&kept, "Ready").await;
        manual.advance(SignedDuration::from_hours(24) + SignedDuration::from_secs(1));
        assert!(
            c.cache(&failed).await.is_null(),
            "failed cache gone after 24 h"
        );
        assert_eq!(c.cache(&kept).await["Status"], "Ready");
        manual.advance(SignedDuration::from_hours(24 * 6));
        assert!(c.cache(&kept).await.is_null(), "gone after 7 days");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cache_progress_rises_while_images_are_pulled() {
    within(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sim = SimulatedConfig {
            pull_delay_per_image: Duration::from_millis(400),
            progress_steps: 4,
            ..SimulatedConfig::default()
        };
        let handle = start(clock.clone(), sim, Quotas::default(), None).await;
        let c = Client::new(&handle, clock);
        let id = create_cache(&c, "slow", &["nginx:1.25", "redis:7"]).await;
        let mut seen = Vec::new();
        loop {
            let cache = c.cache(&id).await;
            let progress: u32 = cache["Progress"]
                .as_str()
                .and_then(|p| p.trim_end_matches('%').parse().ok())
                .expect("progress");
            if seen.last() != Some(&progress) {
                seen.push(progress);
            }
            if cache["Status"] == "Ready" {
                break;
            }
            assert!(
                ["Preparing", "Creating"].contains(&cache["Status"].as_str().unwrap_or("")),
                "{cache}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "monotonic: {seen:?}");
        assert!(seen.len() >= 4, "several intermediate values: {seen:?}");
        assert_eq!(seen.last(), Some(&100));
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_update_rebuilds_the_snapshot_and_a_failed_update_can_be_retried() {
    within(async {
        let (handle, c) = start_default().await;
        let id = create_cache(&c, "upd", &["nginx:1.25"]).await;
        let first = c.wait_cache(&id, "Ready").await;
        let first_snapshot = first["SnapshotId"].as_str().expect("snapshot").to_owned();
        c.call(
            "UpdateImageCache",
            &[
                ("ImageCacheId", &id),
                ("Image.1", "nginx:1.26"),
                ("Image.2", "redis:7"),
            ],
        )
        .await;
        let updated = c.wait_cache(&id, "Ready").await;
        assert_ne!(
            updated["SnapshotId"],
            first_snapshot.as_str(),
            "a new snapshot"
        );
        assert_eq!(
            updated["Images"],
            serde_json::json!(["nginx:1.26", "redis:7"])
        );
        assert!(events(&updated).iter().any(|(r, _)| r == "Updated"));
        // An update whose image cannot be pulled ends UpdateFailed, keeps no expiry, and may be retried.
        c.call(
            "UpdateImageCache",
            &[
                ("ImageCacheId", &id),
                ("Image.1", "example.com/does-not-exist:1"),
            ],
        )
        .await;
        let failed = c.wait_cache(&id, "UpdateFailed").await;
        assert_eq!(failed["ExpireDateTime"], "");
        c.call(
            "UpdateImageCache",
            &[("ImageCacheId", &id), ("Image.1", "nginx:1.27")],
        )
        .await;
        c.wait_cache(&id, "Ready").await;
        // Images heavier than ImageCacheSize fail the creation, and the failed cache expires in a day.
        let huge = create_cache(&c, "huge", &["example.com/huge-image:1"]).await;
        let huge = c.wait_cache(&huge, "Failed").await;
        assert!(
            events(&huge)
                .iter()
                .any(|(r, _)| r == "ImageCacheSizeExceeded"),
            "{huge}"
        );
        assert_ne!(huge["ExpireDateTime"], "");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_miss_builds_one_automatic_cache_of_every_image() {
    within(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let handle = Emulator::builder(Credentials::new(ID, SECRET))
            .settings(Settings {
                poll_interval: Duration::from_millis(10),
                auto_create_image_cache: true,
                ..Settings::default()
            })
            .serve(listener)
            .await
            .expect("emulator");
        let c = Client::new(&handle, Arc::new(SystemClock));
        let first = create_group(&c, "first", &[("AutoMatchImageCache", "true")]).await;
        let group = c.group(&first).await;
        assert!(events(&group).iter().any(|(r, _)| r == "ImageCacheMissed"));
        let listed = c.call("DescribeImageCaches", &[]).await;
        assert_eq!(listed["TotalCount"], 1);
        let auto = &listed["ImageCaches"][0];
        assert_eq!(
            auto["ImageCacheName"],
            format!("auto-create-for-{first}").as_str()
        );
        let auto_id = auto["ImageCacheId"].as_str().expect("id").to_owned();
        // A group of the same images while it builds does not build another.
        create_group(&c, "meanwhile", &[("AutoMatchImageCache", "true")]).await;
        let listed = c.call("DescribeImageCaches", &[]).await;
        assert_eq!(listed["TotalCount"], 1, "{listed}");
        c.wait_cache(&auto_id, "Ready").await;
        let usage = c.call("ListUsage", &[]).await;
        assert_eq!(usage["Attributes"]["UsedAutoImageCacheCount"], 1);
        assert_eq!(usage["Attributes"]["UsedImageCacheCount"], 0);
        // The next group with the same images hits it.
        let second = create_group(&c, "second", &[("AutoMatchImageCache", "true")]).await;
        let second = c.group(&second).await;
        assert!(
            events(&second)
                .iter()
                .any(|(r, m)| r == "SuccessfulHitImageCache" && m.contains(&auto_id)),
            "{second}"
        );
        // A group holding one more image starts from it and has a cache of both built.
        let wider = create_group(
            &c,
            "wider",
            &[
                ("AutoMatchImageCache", "true"),
                ("Container.2.Name", "sidecar"),
                ("Container.2.Image", "busybox:1.36"),
            ],
        )
        .await;
        let wider = c.group(&wider).await;
        let reasons: Vec<String> = events(&wider).into_iter().map(|(r, _)| r).collect();
        assert!(
            reasons.iter().any(|r| r == "SuccessfulHitImageCache")
                && reasons.iter().any(|r| r == "ImageCacheAutoCreated"),
            "{wider}"
        );
        let usage = c.call("ListUsage", &[]).await;
        assert_eq!(usage["Attributes"]["UsedAutoImageCacheCount"], 2);
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_active_deadline_stops_the_instance() {
    within(async {
        let manual = ManualClock::new(Timestamp::now());
        let clock: Arc<dyn Clock> = Arc::new(manual.clone());
        let handle = start(
            clock.clone(),
            SimulatedConfig::default(),
            Quotas::default(),
            None,
        )
        .await;
        let c = Client::new(&handle, clock);
        let id = create_group(&c, "deadline", &[("ActiveDeadlineSeconds", "60")]).await;
        c.wait_group(&id, "Running").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            c.group(&id).await["Status"],
            "Running",
            "not before the deadline"
        );
        manual.advance(SignedDuration::from_secs(61));
        let failed = c.wait_group(&id, "Failed").await;
        assert_eq!(
            failed["Containers"][0]["CurrentState"]["Reason"],
            "DeadlineExceeded"
        );
        assert!(events(&failed).iter().any(|(r, _)| r == "DeadlineExceeded"));
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_flash_cache_is_ready_from_its_local_snapshot_before_the_regular_one() {
    within(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let handle = Emulator::builder(Credentials::new(ID, SECRET))
            .settings(Settings {
                poll_interval: Duration::from_millis(10),
                regular_snapshot_delay: Duration::from_millis(1500),
                ..Settings::default()
            })
            .serve(listener)
            .await
            .expect("emulator");
        let c = Client::new(&handle, Arc::new(SystemClock));
        let flash = c
            .call(
                "CreateImageCache",
                &[
                    ("ImageCacheName", "flash"),
                    ("Image.1", "nginx:1.25"),
                    ("Flash", "true"),
                    ("FlashCopyCount", "2"),
                    ("StandardCopyCount", "3"),
                    ("AcrRegistryInfo.1.InstanceId", "cri-abc"),
                    ("OsType", "Linux"),
                    ("Annotations", r#"{"k8s.aliyun.com/imc-cpu-arch":"amd64"}"#),
                ],
            )
            .await["ImageCacheId"]
            .as_str()
            .expect("id")
            .to_owned();
        let regular = create_cache(&c, "regular", &["nginx:1.25"]).await;
        let ready = c.wait_cache(&flash, "Ready").await;
        assert_ne!(ready["FlashSnapshotId"], "", "{ready}");
        assert_eq!(
            ready["Progress"], "90%",
            "the regular snapshot is still made"
        );
        assert_ne!(
            c.cache(&regular).await["Status"],
            "Ready",
            "a regular cache waits for its regular snapshot"
        );
        c.wait_cache(&regular, "Ready").await;
        let done = c.wait_cache(&flash, "Ready").await;
        let settled = if done["Progress"] == "100%" {
            done
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.cache(&flash).await
        };
        assert_eq!(settled["Progress"], "100%", "{settled}");
        assert_eq!(
            settled["FlashSnapshotId"], "",
            "the local snapshot is deleted"
        );
        // What ECI refuses about these options, it refuses by name.
        for (name, value) in [
            ("FlashCopyCount", "0"),
            ("OsType", "Plan9"),
            ("Annotations", r#"{"k8s.aliyun.com/imc-cpu-arch":"sparc"}"#),
            ("EipInstanceId", "ip-1"),
        ] {
            let refused = c
                .send(
                    Req::new(
                        "CreateImageCache",
                        &[("ImageCacheName", "bad"), ("Image.1", "nginx:1.25")],
                    )
                    .param(name, value),
                )
                .await;
            assert_eq!(refused.status, 400, "{name}: {}", refused.body);
            assert!(
                refused.body["Message"].to_string().contains(name),
                "{name}: {}",
                refused.body
            );
        }
        handle.shutdown().await;
    })
    .await;
}
