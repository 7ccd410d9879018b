use std::path::Path;

use tonic::Request;

use super::*;
use crate::agent::pb::agent_server::Agent as _;

/// An agent that never runs a container: enough for images, snapshots and counters.
async fn agent(dir: &Path) -> LocalAgent {
    LocalAgent::start(LocalAgentConfig {
        runc: "/bin/false".into(),
        ..LocalAgentConfig::new(dir)
    })
    .await
    .unwrap()
}

/// A complete (empty) snapshot `id`, as a build leaves it.
fn put_snapshot(agent: &LocalAgent, id: &str) {
    let dir = agent.inner.snapshots.root().join(id);
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let manifest = serde_json::json!({"id": id, "images": [], "sizeBytes": 0});
    std::fs::write(dir.join("snapshot.json"), manifest.to_string()).unwrap();
}

fn prepared(at: Instant, staging: Option<&str>, own: &[&str]) -> Prepared {
    let mut p = Prepared::new(at);
    p.staging_snapshot = staging.map(str::to_owned);
    p.own_snapshots = own.iter().map(|s| (*s).to_owned()).collect();
    p
}

#[tokio::test]
async fn a_deleted_group_leaves_no_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    let group = PullScope::Group("eci-gone".into());
    agent
        .pull_stats()
        .record(&group, "example.com/only-gone:v1", 10);
    agent
        .pull_stats()
        .record(&PullScope::Group("eci-live".into()), "busybox", 5);
    assert!(agent.metrics().contains("eci-gone"));

    agent
        .delete_group(Request::new(pb::DeleteGroupRequest {
            group_id: "eci-gone".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let metrics = agent.metrics();
    assert!(!metrics.contains("eci-gone"), "{metrics}");
    assert!(!metrics.contains("only-gone"), "{metrics}");
    assert!(metrics.contains("eci-live"), "{metrics}");
    assert!(
        metrics.contains("eci_agent_pulled_bytes_total 15\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deleted_cache_snapshot_leaves_no_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    put_snapshot(&agent, "prep-imc-1");
    agent.inner.prepared.lock().insert(
        "imc-1".into(),
        prepared(Instant::now(), Some("prep-imc-1"), &[]),
    );
    agent
        .pull_stats()
        .record(&PullScope::Cache("imc-1".into()), "busybox", 10);
    agent
        .build_snapshot(Request::new(pb::BuildSnapshotRequest {
            scope: "imc-1".into(),
            snapshot_id: "s-1".into(),
        }))
        .await
        .unwrap();
    assert!(agent.metrics().contains("imc-1"));

    agent
        .delete_snapshot(Request::new(pb::DeleteSnapshotRequest {
            snapshot_id: "s-1".into(),
        }))
        .await
        .unwrap();
    assert!(!agent.metrics().contains("imc-1"), "{}", agent.metrics());
    assert!(!agent.inner.snapshots.root().join("s-1").exists());
}

#[tokio::test]
async fn unused_prepared_scopes_expire_with_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    let then = Instant::now();
    for id in [
        "prep-imc-old",
        "grp-eci-old-1",
        "grp-eci-run-1",
        "prep-imc-new",
    ] {
        put_snapshot(&agent, id);
    }
    {
        let mut all = agent.inner.prepared.lock();
        all.insert("imc-old".into(), prepared(then, Some("prep-imc-old"), &[]));
        all.insert("eci-old".into(), prepared(then, None, &["grp-eci-old-1"]));
        let mut running = prepared(then, None, &["grp-eci-run-1"]);
        running.created = true;
        all.insert("eci-run".into(), running);
        all.insert(
            "imc-new".into(),
            prepared(then + PREPARED_TTL / 2, Some("prep-imc-new"), &[]),
        );
    }
    agent
        .pull_stats()
        .record(&PullScope::Group("eci-old".into()), "busybox", 1);

    agent.sweep_prepared(then + PREPARED_TTL).await;

    let mut left: Vec<String> = agent.inner.prepared.lock().keys().cloned().collect();
    left.sort();
    assert_eq!(left, ["eci-run", "imc-new"]);
    let root = agent.inner.snapshots.root();
    assert!(!root.join("prep-imc-old").exists());
    assert!(!root.join("grp-eci-old-1").exists());
    assert!(root.join("grp-eci-run-1").exists());
    assert!(root.join("prep-imc-new").exists());
    assert!(!agent.metrics().contains("eci-old"));
}
