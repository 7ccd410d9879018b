//! `--data-dir` as a crash sees it: what is in `state.json` without a clean shutdown, and
//! what the saved `ClientToken` records hold.

use std::{sync::Arc, time::Duration};

use super::*;
use crate::emulator::state::Store;

/// The saved state, once it satisfies `want`; panics after 10 s.
async fn saved_until(dir: &std::path::Path, what: &str, want: impl Fn(&Store) -> bool) -> Store {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(bytes) = std::fs::read(dir.join("state.json")) {
            let store: Store = serde_json::from_slice(&bytes).expect("a decodable state");
            if want(&store) {
                return store;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the saved state never showed {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deletes a cache in `status` (made from `image` with `sim`) and checks the delete is on
/// disk without a clean shutdown, then that a restart does not bring the cache back.
async fn deleted_cache_stays_deleted(sim: fn() -> SimulatedConfig, image: &str, status: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let handle = start(clock.clone(), sim(), Quotas::default(), Some(dir.path())).await;
    let c = Client::new(&handle, clock.clone());
    let body = c
        .call(
            "CreateImageCache",
            &[("ImageCacheName", "doomed"), ("Image.1", image)],
        )
        .await;
    let id = body["ImageCacheId"].as_str().unwrap_or_default().to_owned();
    c.wait_cache(&id, status).await;
    saved_until(dir.path(), status, |s| {
        s.caches
            .get(&id)
            .is_some_and(|cache| cache.status.as_str() == status)
    })
    .await;
    // Let any save already under way land before the delete.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.call("DeleteImageCache", &[("ImageCacheId", &id)]).await;
    // A cache without a snapshot has nothing to release, so its delete starts no work; it
    // must be saved all the same.
    saved_until(dir.path(), "the delete", |s| !s.caches.contains_key(&id)).await;
    drop(handle); // as kill -9: no last save

    let handle = start(clock.clone(), sim(), Quotas::default(), Some(dir.path())).await;
    let c = Client::new(&handle, clock);
    assert!(c.cache(&id).await.is_null(), "the deleted cache came back");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_deleted_failed_cache_stays_deleted_after_a_crash() {
    within(deleted_cache_stays_deleted(
        SimulatedConfig::default,
        "example.com/does-not-exist:1",
        "Failed",
    ))
    .await;
}

#[tokio::test]
async fn a_deleted_creating_cache_stays_deleted_after_a_crash() {
    within(deleted_cache_stays_deleted(
        pulls_that_never_finish,
        "nginx",
        "Creating",
    ))
    .await;
}

#[tokio::test]
async fn client_token_records_hold_no_parameter_value() {
    within(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (handle, c) = start_saving(dir.path()).await;
        let create = |password: &str| {
            Req::new(
                "CreateContainerGroup",
                &[
                    ("ContainerGroupName", "private"),
                    ("Container.1.Name", "a"),
                    ("Container.1.Image", "nginx"),
                    ("ImageRegistryCredential.1.Server", "registry.example.com"),
                    ("ImageRegistryCredential.1.UserName", "me"),
                    ("ImageRegistryCredential.1.Password", password),
                    ("ClientToken", "pod-with-a-login"),
                ],
            )
        };
        let first = c.send(create("hunter2")).await.ok();
        let tokens = handle.snapshot().await.tokens;
        assert_eq!(tokens.len(), 1);
        for record in tokens.values() {
            assert!(
                !record.fingerprint.contains("hunter2"),
                "{}",
                record.fingerprint
            );
            assert!(
                record
                    .fingerprint
                    .contains("ImageRegistryCredential.1.Password="),
                "names stay, to say which parameter differs: {}",
                record.fingerprint
            );
        }
        let again = c.send(create("hunter2")).await.ok();
        assert_eq!(first["ContainerGroupId"], again["ContainerGroupId"]);
        let other = c.send(create("hunter3")).await;
        assert_eq!(
            (other.status, other.code()),
            (400, "IdempotentParameterMismatch")
        );
        // The token record is saved though the create's own work may have been saved before.
        let saved = saved_until(dir.path(), "the token record", |s| !s.tokens.is_empty()).await;
        let text = serde_json::to_string(&saved.tokens).expect("encode");
        assert!(!text.contains("hunter2"), "{text}");
        handle.shutdown().await;
    })
    .await;
}
