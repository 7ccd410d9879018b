//! Injected faults (`--fault-*`) over HTTP: every kind at a rate of 1, writes applied before
//! an `applied-then-timeout` answer, nonces spent by a faulted call.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use super::*;
use crate::emulator::{FaultConfig, FaultKind};

async fn start_faulty(kinds: &[FaultKind]) -> (Handle, Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let handle = Emulator::builder(Credentials::new(ID, SECRET))
        .clock(clock.clone())
        .agent(AgentTarget::Simulated(SimulatedConfig::default()))
        .settings(fast_settings())
        .faults(FaultConfig {
            rate: 1.0,
            seed: Some(42),
            kinds: kinds.to_vec(),
            slow: Duration::from_millis(20),
            file: None,
        })
        .serve(listener)
        .await
        .expect("emulator starts");
    let client = Client::new(&handle, clock);
    (handle, client)
}

fn create(token: &str) -> Req {
    Req::new(
        "CreateContainerGroup",
        &[
            ("ContainerGroupName", "chaos"),
            ("Container.1.Name", "a"),
            ("Container.1.Image", "nginx"),
            ("ClientToken", token),
        ],
    )
}

#[tokio::test]
async fn server_errors_are_503_or_500_and_change_nothing() {
    within(async {
        let (handle, c) = start_faulty(&[FaultKind::ServerError]).await;
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            let answer = c.send(create("t-5xx")).await;
            seen.insert((answer.status, answer.code().to_owned()));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [
                (500, "InternalError".to_owned()),
                (503, "ServiceUnavailable".to_owned())
            ]
        );
        handle.set_fault_rate(0.0);
        let groups = c.call("DescribeContainerGroups", &[]).await;
        assert_eq!(groups["TotalCount"], 0, "nothing was created");
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn throttling_is_the_documented_user_flow_control() {
    within(async {
        let (handle, c) = start_faulty(&[FaultKind::Throttling]).await;
        let answer = c.send(Req::new("DescribeContainerGroups", &[])).await;
        assert_eq!((answer.status, answer.code()), (400, "Throttling.User"));
        assert_eq!(
            answer.body["Message"],
            "Request was denied due to user flow control."
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn slow_answers_are_normal_answers() {
    within(async {
        let (handle, c) = start_faulty(&[FaultKind::Slow]).await;
        let id = c.send(create("t-slow")).await.ok()["ContainerGroupId"].clone();
        assert!(id.is_string(), "{id}");
        assert_eq!(
            c.group(id.as_str().unwrap_or("")).await["ContainerGroupId"],
            id
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn applied_then_timeout_applies_the_write_and_a_retry_gets_the_same_id() {
    within(async {
        let (handle, c) = start_faulty(&[FaultKind::AppliedThenTimeout]).await;
        let answer = c.send(create("t-applied")).await;
        assert_eq!((answer.status, answer.code()), (503, "ServiceUnavailable"));
        // Reads never get this kind: the describe answers, and sees the group.
        let groups = c.call("DescribeContainerGroups", &[]).await;
        assert_eq!(groups["TotalCount"], 1, "{groups}");
        let id = groups["ContainerGroups"][0]["ContainerGroupId"].clone();
        handle.set_fault_rate(0.0);
        let retry = c.send(create("t-applied")).await.ok();
        assert_eq!(retry["ContainerGroupId"], id);
        assert_eq!(
            c.call("DescribeContainerGroups", &[]).await["TotalCount"],
            1
        );
        handle.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_faulted_call_spends_its_nonce() {
    within(async {
        let (handle, c) = start_faulty(&[FaultKind::ServerError]).await;
        let first = c
            .send(Req::new("DescribeContainerGroups", &[]).nonce("chaos-nonce"))
            .await;
        assert!(first.status >= 500, "{}", first.body);
        handle.set_fault_rate(0.0);
        let again = c
            .send(Req::new("DescribeContainerGroups", &[]).nonce("chaos-nonce"))
            .await;
        assert_eq!((again.status, again.code()), (400, "SignatureNonceUsed"));
        handle.shutdown().await;
    })
    .await;
}
