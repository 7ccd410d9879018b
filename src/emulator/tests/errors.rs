//! Bad requests get the documented codes and change nothing; bursts are throttled.

use std::{sync::Arc, time::Duration};

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::emulator::ManualClock;

/// Sends `req`, expects `(status, code)`, and checks the emulator's state did not change.
async fn refused(handle: &Handle, c: &Client, req: Req, status: u16, code: &str) {
    let before = handle.snapshot().await;
    let answer = c.send(req.clone()).await;
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{} -> {}",
        req.action,
        answer.body
    );
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(answer.body[field].is_string(), "{field} in {}", answer.body);
    }
    assert!(
        !answer.body.to_string().contains(SECRET),
        "the secret is never echoed"
    );
    assert_eq!(
        handle.snapshot().await,
        before,
        "{} changed state",
        req.action
    );
}

fn images(n: usize) -> Req {
    let mut req = Req::new("CreateImageCache", &[("ImageCacheName", "many")]);
    for i in 1..=n {
        req = req.param(&format!("Image.{i}"), &format!("example.com/app{i}:1"));
    }
    req
}

fn group_from(cache: &str) -> Req {
    Req::new(
        "CreateContainerGroup",
        &[
            ("ContainerGroupName", "web"),
            ("Container.1.Name", "a"),
            ("Container.1.Image", "nginx"),
            ("ImageSnapshotId", cache),
        ],
    )
}

#[tokio::test]
async fn bad_requests_get_documented_codes_and_change_nothing() {
    within(async {
        let (handle, c) = start_default().await;
        // Settled state to compare against: a Ready cache, a Failed cache, a Running group.
        let ready = c.send(images(2)).await.ok()["ImageCacheId"]
            .as_str()
            .expect("id")
            .to_owned();
        c.wait_cache(&ready, "Ready").await;
        let broken = c
            .send(Req::new(
                "CreateImageCache",
                &[
                    ("ImageCacheName", "broken"),
                    ("Image.1", "example.com/does-not-exist:1"),
                ],
            ))
            .await
            .ok()["ImageCacheId"]
            .as_str()
            .expect("id")
            .to_owned();
        c.wait_cache(&broken, "Failed").await;
        let group = c.send(group_from(&ready)).await.ok()["ContainerGroupId"]
            .as_str()
            .expect("id")
            .to_owned();
        c.wait_group(&group, "Running").await;
        tokio::time::sleep(Duration::from_millis(100)).await;

        let list = || Req::new("DescribeContainerGroups", &[]);
        let create = || group_from(&ready);
        refused(
            &handle,
            &c,
            create().secret("wrong-secret"),
            400,
            "SignatureDoesNotMatch",
        )
        .await;
        refused(
            &handle,
            &c,
            create().secret("wrong-secret").style(Style::V1Get),
            400,
            "SignatureDoesNotMatch",
        )
        .await;
        let stale = Timestamp::now() - SignedDuration::from_mins(16);
        refused(
            &handle,
            &c,
            create().time(stale),
            400,
            "InvalidTimeStamp.Expired",
        )
        .await;
        refused(
            &handle,
            &c,
            create().time(stale).style(Style::V1Post),
            400,
            "InvalidTimeStamp.Expired",
        )
        .await;
        // A nonce spent on a read cannot carry a write.
        c.send(list().nonce("once-only")).await.ok();
        refused(
            &handle,
            &c,
            create().nonce("once-only"),
            400,
            "SignatureNonceUsed",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new("RunInstances", &[]),
            404,
            "InvalidAction.NotFound",
        )
        .await;
        refused(
            &handle,
            &c,
            create().without_region(),
            400,
            "MissingRegionId",
        )
        .await;
        refused(&handle, &c, images(21), 400, "InvalidParameter.Image").await;
        refused(
            &handle,
            &c,
            images(1).param("ImageCacheSize", "19"),
            400,
            "InvalidParameter.ImageCacheSize",
        )
        .await;
        refused(&handle, &c, group_from(&broken), 400, "IncorrectStatus").await;
        refused(
            &handle,
            &c,
            group_from("imc-aaaaaaaaaaaaaaaaaaaa"),
            400,
            "InvalidImageSnapshotId.NotFound",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new(
                "UpdateImageCache",
                &[("ImageCacheId", &broken), ("ImageCacheName", "x")],
            ),
            400,
            "IncorrectStatus",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new(
                "DeleteContainerGroup",
                &[("ContainerGroupId", "eci-aaaaaaaaaaaaaaaaaaaa")],
            ),
            404,
            "InvalidParameter.NotFound",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new(
                "UpdateImageCache",
                &[("ImageCacheId", &ready), ("ImageCacheSize", "19")],
            ),
            400,
            "InvalidParameter.ImageCacheSize",
        )
        .await;
        refused(
            &handle,
            &c,
            create().param("DryRun", "true"),
            400,
            "DryRunOperation",
        )
        .await;
        let too_many_ids = (0..21)
            .map(|i| format!("\"eci-{i:020}\""))
            .collect::<Vec<_>>()
            .join(",");
        refused(
            &handle,
            &c,
            Req::new(
                "DescribeContainerGroups",
                &[("ContainerGroupIds", &format!("[{too_many_ids}]"))],
            ),
            400,
            "InvalidParameter.ContainerGroupIds",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new("DescribeContainerGroups", &[("Limit", "0")]),
            400,
            "InvalidParameter.Limit",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new("DescribeContainerGroups", &[("Status", "Sleeping")]),
            400,
            "InvalidParameter.Status",
        )
        .await;
        refused(
            &handle,
            &c,
            Req::new("RestartContainerGroup", &[("ContainerGroupId", &group)])
                .param("ClientToken", &"x".repeat(65)),
            400,
            "InvalidParameter.ClientToken",
        )
        .await;
        refused(
            &handle,
            &c,
            create().param("Container.1.Port.1.Port", "70000"),
            400,
            "InvalidParameter.Container",
        )
        .await;
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_cache_still_being_created_cannot_be_used_or_updated() {
    within(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Pulls that take an hour: the cache stays `Creating` at 0% for the whole test.
        let sim = pulls_that_never_finish();
        let handle = start(clock.clone(), sim, Quotas::default(), None).await;
        let c = Client::new(&handle, clock);
        let id = c.send(images(1)).await.ok()["ImageCacheId"]
            .as_str()
            .expect("id")
            .to_owned();
        let cache = c.wait_cache(&id, "Creating").await;
        assert_eq!(cache["Progress"], "0%");
        refused(
            &handle,
            &c,
            Req::new(
                "UpdateImageCache",
                &[("ImageCacheId", &id), ("Image.1", "nginx")],
            ),
            400,
            "IncorrectStatus",
        )
        .await;
        refused(&handle, &c, group_from(&id), 400, "IncorrectStatus").await;
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_burst_of_creates_is_throttled_at_the_quota() {
    within(async {
        // A frozen clock: no token comes back during the burst.
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
        let create = |i: usize| {
            Req::new(
                "CreateContainerGroup",
                &[("Container.1.Name", "a"), ("Container.1.Image", "nginx")],
            )
            .param("ContainerGroupName", &format!("burst-{i}"))
        };
        for i in 0..100 {
            c.send(create(i)).await.ok();
        }
        let throttled = c.send(create(100)).await;
        assert_eq!(
            (throttled.status, throttled.code()),
            (400, "Throttling.Api")
        );
        assert!(
            throttled
                .ratelimit
                .as_deref()
                .is_some_and(|h| h.contains("TimeLeft:50")),
            "{:?}",
            throttled.ratelimit
        );
        // Reads have their own quota.
        assert_eq!(
            c.call("DescribeContainerGroups", &[]).await["TotalCount"],
            100
        );
        // 20 per second come back.
        manual.advance(SignedDuration::from_millis(100));
        c.send(create(101)).await.ok();
        c.send(create(102)).await.ok();
        assert_eq!(c.send(create(103)).await.code(), "Throttling.Api");
        assert_eq!(
            c.call("DescribeContainerGroups", &[]).await["TotalCount"],
            102
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_image_cache_quota_is_the_configured_one() {
    within(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // An account whose quota was raised above the default 50 (through Quota Center).
        let sim = pulls_that_never_finish();
        let settings = Settings {
            max_image_caches: 55,
            ..fast_settings()
        };
        let handle = start_with(clock.clone(), sim, Quotas::default(), None, settings).await;
        let c = Client::new(&handle, clock);
        let mut ids = Vec::new();
        for _ in 0..55 {
            let created = c.send(images(1)).await.ok();
            ids.push(created["ImageCacheId"].as_str().expect("id").to_owned());
        }
        for id in &ids {
            c.wait_cache(id, "Creating").await;
        }
        let answer = c.send(images(1)).await;
        assert_eq!(
            answer.body["Message"],
            "The image cache quota of 55 is used up."
        );
        refused(&handle, &c, images(1), 400, "QuotaExceed.ImageCache").await;
        let usage = c.call("ListUsage", &[]).await;
        assert_eq!(usage["Attributes"]["MaxImageCacheCount"], 55);
        assert_eq!(usage["Attributes"]["UsedImageCacheCount"], 55);
        // Deleting one frees its place.
        c.call("DeleteImageCache", &[("ImageCacheId", &ids[0])])
            .await;
        c.send(images(1)).await.ok();
        handle.shutdown().await;
    })
    .await;
}

/// A V1 request whose signed parameters name no action, with an unsigned `x-acs-action`
/// header: the header must not choose the operation.
#[tokio::test]
async fn an_unsigned_header_never_chooses_the_action() {
    within(async {
        let (handle, c) = start_default().await;
        let id = c
            .call(
                "CreateContainerGroup",
                &[
                    ("ContainerGroupName", "keep"),
                    ("Container.1.Name", "a"),
                    ("Container.1.Image", "nginx"),
                ],
            )
            .await["ContainerGroupId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stamp = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let nonce = c.fresh_nonce();
        let mut all: std::collections::BTreeMap<String, String> = [
            ("ContainerGroupId", id.as_str()),
            ("RegionId", REGION),
            ("Version", "2018-08-08"),
            ("AccessKeyId", ID),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce.as_str()),
            ("Timestamp", stamp.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let signature = sign::v1_signature(SECRET, &sign::v1_string_to_sign("GET", &all));
        all.insert("Signature".into(), signature);
        let pairs: Vec<(String, String)> = all.into_iter().collect();
        let headers = [("x-acs-action".to_owned(), "DeleteContainerGroup".to_owned())];
        let (status, _, body) = raw_http(
            handle.addr(),
            "GET",
            &format!("/?{}", encode(&pairs)),
            &headers,
            "",
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("MissingAction"), "{body}");
        assert_eq!(
            c.group(&id).await["ContainerGroupId"],
            id.as_str(),
            "not deleted"
        );
        handle.shutdown().await;
    })
    .await;
}
