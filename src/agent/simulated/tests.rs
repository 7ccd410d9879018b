use super::{
    timeline::{CyclePhase, Timeline},
    *,
};
use crate::agent::pb::{EnvVar, agent_client::AgentClient};

fn spec(name: &str, env: &[(&str, &str)]) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        image: "busybox:1.36".into(),
        env: env
            .iter()
            .map(|(k, v)| EnvVar {
                name: (*k).into(),
                value: (*v).into(),
            })
            .collect(),
        ..ContainerSpec::default()
    }
}

fn config() -> SimulatedConfig {
    SimulatedConfig {
        restart_delay: Duration::from_secs(10),
        ..SimulatedConfig::default()
    }
}

#[test]
fn a_container_without_exit_runs_forever() {
    let t = Timeline::of(&spec("a", &[]), "Always", &config());
    let view = t.at(Duration::from_secs(3600));
    assert_eq!(
        view.current,
        CyclePhase::Running {
            started: Duration::ZERO
        }
    );
    assert_eq!(view.restarts, 0);
    assert!(view.previous.is_none());
}

#[test]
fn never_policy_exits_once_with_its_code() {
    let s = spec(
        "a",
        &[("SIMULATED_EXIT_CODE", "3"), ("SIMULATED_RUN_MS", "5000")],
    );
    let t = Timeline::of(&s, "Never", &config());
    assert!(matches!(
        t.at(Duration::from_secs(4)).current,
        CyclePhase::Running { .. }
    ));
    let view = t.at(Duration::from_secs(100));
    assert_eq!(
        view.current,
        CyclePhase::Exited {
            started: Duration::ZERO,
            finished: Duration::from_secs(5),
            code: 3
        }
    );
    assert_eq!(view.restarts, 0);
}

#[test]
fn on_failure_does_not_restart_a_clean_exit_but_restarts_a_failure() {
    let ok = spec(
        "a",
        &[("SIMULATED_EXIT_CODE", "0"), ("SIMULATED_RUN_MS", "1000")],
    );
    let view = Timeline::of(&ok, "OnFailure", &config()).at(Duration::from_secs(60));
    assert!(matches!(view.current, CyclePhase::Exited { code: 0, .. }));
    assert_eq!(view.restarts, 0);

    let bad = spec(
        "a",
        &[("SIMULATED_EXIT_CODE", "1"), ("SIMULATED_RUN_MS", "1000")],
    );
    let t = Timeline::of(&bad, "OnFailure", &config());
    // Cycle of 11 s: running 0–1 s, back-off 1–11 s, running again from 11 s.
    let backoff = t.at(Duration::from_secs(5));
    assert!(matches!(backoff.current, CyclePhase::BackOff { .. }));
    assert_eq!(backoff.restarts, 0);
    let again = t.at(Duration::from_millis(11_500));
    assert_eq!(
        again.current,
        CyclePhase::Running {
            started: Duration::from_secs(11)
        }
    );
    assert_eq!(again.restarts, 1);
    assert!(matches!(
        again.previous,
        Some(CyclePhase::Exited { code: 1, .. })
    ));
}

#[test]
fn image_sizes_are_deterministic_and_bounded() {
    let a = simulated_image_size("nginx:1.25");
    assert_eq!(a, simulated_image_size("nginx:1.25"));
    assert_ne!(a, simulated_image_size("nginx:1.26"));
    assert!((8 * 1024 * 1024..256 * 1024 * 1024).contains(&a));
}

async fn client() -> (LoopbackAgent, AgentClient<tonic::transport::Channel>) {
    let agent = SimulatedAgent::new(config())
        .spawn_loopback()
        .await
        .expect("bind");
    let client = AgentClient::connect(agent.url()).await.expect("connect");
    (agent, client)
}

#[tokio::test]
async fn prepare_build_and_use_a_snapshot_over_grpc() {
    let (agent, mut client) = tokio::time::timeout(Duration::from_secs(10), client())
        .await
        .expect("timeout");
    let mut stream = client
        .prepare_images(PrepareImagesRequest {
            scope: "imc-1".into(),
            images: vec!["nginx:1.25".into(), "redis:7".into()],
            ..PrepareImagesRequest::default()
        })
        .await
        .expect("prepare")
        .into_inner();
    let mut last = None;
    let mut messages = 0;
    while let Some(message) = stream.next().await {
        let message = message.expect("progress");
        messages += 1;
        last = Some(message);
    }
    let last = last.expect("at least one message");
    assert!(last.done);
    assert_eq!(messages, 2 * 4 + 1, "4 steps per image and a final message");
    let snapshot = client
        .build_snapshot(BuildSnapshotRequest {
            scope: "imc-1".into(),
            snapshot_id: "s-1".into(),
        })
        .await
        .expect("build")
        .into_inner();
    assert_eq!(snapshot.images.len(), 2);
    // With the snapshot as base, only the new image is pulled.
    let mut stream = client
        .prepare_images(PrepareImagesRequest {
            scope: "eci-1".into(),
            images: vec!["nginx:1.25".into(), "busybox:1".into()],
            base_snapshot_id: "s-1".into(),
            ..PrepareImagesRequest::default()
        })
        .await
        .expect("prepare")
        .into_inner();
    let mut final_images = Vec::new();
    while let Some(message) = stream.next().await {
        final_images = message.expect("progress").images;
    }
    assert!(final_images[0].from_snapshot);
    assert!(!final_images[1].from_snapshot);
    // A failing image is NOT_FOUND.
    let error = client
        .prepare_images(PrepareImagesRequest {
            scope: "eci-2".into(),
            images: vec!["example.com/does-not-exist:1".into()],
            ..PrepareImagesRequest::default()
        })
        .await
        .expect_err("missing image");
    assert_eq!(error.code(), tonic::Code::NotFound);
    agent.shutdown().await;
}

#[tokio::test]
async fn group_lifecycle_exec_and_logs_over_grpc() {
    let (agent, mut client) = tokio::time::timeout(Duration::from_secs(10), client())
        .await
        .expect("timeout");
    let created = client
        .create_group(CreateGroupRequest {
            group_id: "eci-1".into(),
            containers: vec![spec("web", &[])],
            restart_policy: "Always".into(),
            ..CreateGroupRequest::default()
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.phase(), GroupPhase::Running);
    assert!(created.containers[0].ready);

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(ExecInput {
        input: Some(exec_input::Input::Start(pb::ExecStart {
            group_id: "eci-1".into(),
            container: "web".into(),
            command: vec!["echo".into(), "hello".into()],
            ..pb::ExecStart::default()
        })),
    })
    .await
    .expect("send");
    let mut out = client
        .exec(ReceiverStream::new(rx))
        .await
        .expect("exec")
        .into_inner();
    let mut stdout = Vec::new();
    let mut code = None;
    while let Some(message) = out.next().await {
        match message.expect("output").output {
            Some(exec_output::Output::Stdout(bytes)) => stdout.extend(bytes),
            Some(exec_output::Output::Exit(exit)) => code = Some(exit.exit_code),
            _ => {}
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "hello\n");
    assert_eq!(code, Some(0));

    let mut logs = client
        .logs(LogsRequest {
            group_id: "eci-1".into(),
            container: "web".into(),
            ..LogsRequest::default()
        })
        .await
        .expect("logs")
        .into_inner();
    let chunk = logs.next().await.expect("a chunk").expect("ok");
    assert!(String::from_utf8_lossy(&chunk.data).contains("simulated container web started"));

    let restarted = client
        .restart_group(RestartGroupRequest {
            group_id: "eci-1".into(),
        })
        .await
        .expect("restart")
        .into_inner();
    assert_eq!(restarted.containers[0].restart_count, 1);

    client
        .delete_group(DeleteGroupRequest {
            group_id: "eci-1".into(),
            ..DeleteGroupRequest::default()
        })
        .await
        .expect("delete");
    let gone = client
        .inspect_group(InspectGroupRequest {
            group_id: "eci-1".into(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    agent.shutdown().await;
}

#[tokio::test]
async fn creates_are_ordered_by_generation() {
    let (agent, mut client) = tokio::time::timeout(Duration::from_secs(10), client())
        .await
        .expect("timeout");
    let create = |generation: u64, image: &str| CreateGroupRequest {
        group_id: "eci-g".into(),
        containers: vec![ContainerSpec {
            name: "app".into(),
            image: image.into(),
            ..ContainerSpec::default()
        }],
        restart_policy: "Always".into(),
        generation,
        ..CreateGroupRequest::default()
    };
    client
        .create_group(create(1, "app:1"))
        .await
        .expect("first");
    let same = client
        .create_group(create(1, "app:other"))
        .await
        .expect("idempotent")
        .into_inner();
    assert_eq!(
        same.containers[0].image, "app:1",
        "same generation: unchanged"
    );
    let newer = client
        .create_group(create(2, "app:2"))
        .await
        .expect("newer")
        .into_inner();
    assert_eq!(newer.containers[0].image, "app:2");
    let stale = client
        .create_group(create(1, "app:1"))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    agent.shutdown().await;
}
