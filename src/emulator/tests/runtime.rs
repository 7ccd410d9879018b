//! Exec URLs, preStop termination and a remote agent.

use std::{sync::Arc, time::Duration};

use futures_util::SinkExt as _;
use tokio_stream::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::{
    agent::SimulatedAgent,
    emulator::{AgentTarget, Credentials, Emulator},
};

async fn running_group(c: &Client, name: &str, extra: &[(&str, &str)]) -> String {
    let mut req = Req::new(
        "CreateContainerGroup",
        &[
            ("ContainerGroupName", name),
            ("Container.1.Name", "app"),
            ("Container.1.Image", "busybox:1.36"),
        ],
    );
    for (k, v) in extra {
        req = req.param(k, v);
    }
    let id = c.send(req).await.ok()["ContainerGroupId"]
        .as_str()
        .expect("id")
        .to_owned();
    c.wait_group(&id, "Running").await;
    id
}

#[tokio::test]
async fn an_exec_url_is_an_interactive_single_use_websocket() {
    within(async {
        let (handle, c) = start_default().await;
        let id = running_group(&c, "shell", &[]).await;
        let exec = c
            .call(
                "ExecContainerCommand",
                &[
                    ("ContainerGroupId", &id),
                    ("ContainerName", "app"),
                    ("Command", "[\"cat\"]"),
                ],
            )
            .await;
        let uri = exec["WebSocketUri"].as_str().expect("uri").to_owned();
        let (mut socket, _) = tokio_tungstenite::connect_async(uri.as_str())
            .await
            .expect("connect");
        socket
            .send(Message::Binary(b"hello\n".to_vec().into()))
            .await
            .expect("send");
        let echoed = socket.next().await.expect("frame").expect("ok");
        assert_eq!(echoed.into_data().as_ref(), b"hello\n");
        socket
            .send(Message::Binary(Vec::new().into()))
            .await
            .expect("end stdin");
        let mut exit = None;
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame {
                exit = Some(text.to_string());
            }
        }
        assert_eq!(exit.as_deref(), Some("{\"ExitCode\":0}"));
        // The URL was used up.
        assert!(
            tokio_tungstenite::connect_async(uri.as_str())
                .await
                .is_err()
        );
        // Exec needs a running container and a known one.
        let unknown = c
            .send(Req::new(
                "ExecContainerCommand",
                &[
                    ("ContainerGroupId", &id),
                    ("ContainerName", "nope"),
                    ("Command", "[\"ls\"]"),
                ],
            ))
            .await;
        assert_eq!(unknown.code(), "InvalidParameter.NotFound");
        let bad_sync = c
            .send(Req::new(
                "ExecContainerCommand",
                &[
                    ("ContainerGroupId", &id),
                    ("ContainerName", "app"),
                    ("Command", "[\"/bin/bash\"]"),
                    ("Sync", "true"),
                ],
            ))
            .await;
        assert_eq!(bad_sync.code(), "InvalidParameter.Sync");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_group_with_a_pre_stop_hook_is_terminating_before_it_goes() {
    within(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sim = SimulatedConfig {
            pre_stop_delay: Duration::from_millis(500),
            ..SimulatedConfig::default()
        };
        let handle = start(clock.clone(), sim, Quotas::default(), None).await;
        let c = Client::new(&handle, clock);
        let hooked = running_group(
            &c,
            "hooked",
            &[("Container.1.LifecyclePreStopHandlerExec.1", "sleep")],
        )
        .await;
        let plain = running_group(&c, "plain", &[]).await;
        c.call("DeleteContainerGroup", &[("ContainerGroupId", &plain)])
            .await;
        assert!(c.group(&plain).await.is_null(), "no hook: gone at once");
        c.call("DeleteContainerGroup", &[("ContainerGroupId", &hooked)])
            .await;
        assert_eq!(c.group(&hooked).await["Status"], "Terminating");
        // Deleting again while it terminates is accepted and changes nothing.
        c.call("DeleteContainerGroup", &[("ContainerGroupId", &hooked)])
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !c.group(&hooked).await.is_null() {
            assert!(tokio::time::Instant::now() < deadline, "never removed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_remote_agent_does_the_work_when_given_by_url() {
    within(async {
        let agent = SimulatedAgent::new(SimulatedConfig::default())
            .spawn_loopback()
            .await
            .expect("agent");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let handle = Emulator::builder(Credentials::new(ID, SECRET))
            .agent(AgentTarget::Remote {
                url: agent.url(),
                token: None,
            })
            .settings(Settings {
                poll_interval: Duration::from_millis(10),
                ..Settings::default()
            })
            .serve(listener)
            .await
            .expect("emulator");
        let c = Client::new(&handle, Arc::new(SystemClock));
        let id = running_group(&c, "remote", &[]).await;
        // The remote agent knows the group.
        let mut client = crate::agent::pb::agent_client::AgentClient::connect(agent.url())
            .await
            .expect("connect");
        let status = client
            .inspect_group(crate::agent::pb::InspectGroupRequest { group_id: id })
            .await
            .expect("known to the agent")
            .into_inner();
        assert_eq!(status.containers[0].name, "app");
        handle.shutdown().await;
        agent.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_crash_looping_container_restarts_and_refuses_exec() {
    within(async {
        let (handle, c) = start_default().await;
        let id = running_group(
            &c,
            "crashy",
            &[
                ("Container.1.EnvironmentVar.1.Key", "SIMULATED_EXIT_CODE"),
                ("Container.1.EnvironmentVar.1.Value", "1"),
            ],
        )
        .await;
        let group = c.group(&id).await;
        assert_eq!(
            group["Containers"][0]["CurrentState"]["Reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(group["Containers"][0]["Ready"], false);
        let exec = c
            .send(Req::new(
                "ExecContainerCommand",
                &[
                    ("ContainerGroupId", &id),
                    ("ContainerName", "app"),
                    ("Command", "[\"ls\"]"),
                    ("Sync", "true"),
                ],
            ))
            .await;
        assert_eq!(
            (exec.status, exec.code()),
            (400, "IncorrectStatus"),
            "{}",
            exec.body
        );
        // One restart per second of back-off.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let g = c.group(&id).await;
            if g["Containers"][0]["RestartCount"].as_i64().unwrap_or(0) >= 1 {
                assert_eq!(g["Containers"][0]["PreviousState"]["ExitCode"], 1);
                assert!(
                    g["Events"]
                        .as_array()
                        .expect("events")
                        .iter()
                        .any(|e| e["Reason"] == "BackOff")
                );
                // Restarts fold into one Started event (its Count grows), as Kubernetes
                // aggregates the kubelet's.
                let started = g["Events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .filter(|e| e["Reason"] == "Started")
                    .count();
                assert_eq!(started, 1, "{g}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never restarted: {g}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.shutdown().await;
    })
    .await;
}
