use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use tonic::Code;

use super::*;
use crate::agent::{
    SimulatedAgent, SimulatedConfig, agent_client,
    pb::{DeleteGroupRequest, agent_client::AgentClient},
};

fn delete_request() -> DeleteGroupRequest {
    DeleteGroupRequest {
        group_id: "eci-none".into(),
        ..DeleteGroupRequest::default()
    }
}

/// A simulated agent served on `listener` until the returned sender is dropped.
fn spawn(listener: AgentListener) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = SimulatedAgent::new(SimulatedConfig::default());
    tokio::spawn(agent.serve(listener, async move {
        let _ = rx.await;
    }));
    tx
}

#[tokio::test]
async fn an_agent_on_tcp_admits_only_calls_with_its_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let token = AuthToken::new("s3cret-token\n").expect("token");
    let _stop = spawn(AgentListener::tcp(listener, token.clone()));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect_lazy();

    let refused = AgentClient::new(channel.clone())
        .delete_group(delete_request())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(!refused.message().contains("s3cret"), "{refused:?}");

    let wrong = AuthToken::new("another-token").expect("token");
    let refused = agent_client(channel.clone(), Some(&wrong))
        .delete_group(delete_request())
        .await
        .expect_err("wrong token");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    agent_client(channel, Some(&token))
        .delete_group(delete_request())
        .await
        .expect("the token admits the call");
}

#[tokio::test]
async fn a_unix_socket_is_private_and_removed_when_the_server_stops() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("run");
    let path = dir.join("agent.sock");
    let socket = UnixSocket::bind(&path).await.expect("bind");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir), 0o700);

    let stop = spawn(AgentListener::unix(socket, None));
    let url = format!("unix://{}", path.display());
    AgentClient::connect(url)
        .await
        .expect("connect")
        .delete_group(delete_request())
        .await
        .expect("our own user is admitted without a token");
    drop(stop);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "socket left behind");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_in_process_agent_listens_on_a_private_socket() {
    let agent = SimulatedAgent::new(SimulatedConfig::default())
        .spawn_loopback()
        .await
        .expect("spawn");
    let socket = agent.socket_path();
    let dir = agent.socket_dir().to_owned();
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    let dir_meta = std::fs::metadata(&dir).expect("dir");
    assert_eq!(dir_meta.permissions().mode() & 0o777, 0o700);
    assert!(agent.url().starts_with("unix:///"), "{}", agent.url());
    AgentClient::connect(agent.url())
        .await
        .expect("connect")
        .delete_group(delete_request())
        .await
        .expect("call");
    agent.shutdown().await;
    assert!(!dir.exists(), "the socket directory outlived the agent");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("agent.sock");
    // A socket whose listener is gone: what a killed agent leaves.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
    assert!(path.exists());
    let live = UnixSocket::bind(&path)
        .await
        .expect("the stale socket is replaced");
    let again = UnixSocket::bind(&path).await.expect_err("in use");
    assert!(matches!(again, ListenError::InUse { .. }), "{again:?}");
    drop(live);
    assert!(!path.exists(), "dropping the socket removes its file");
}

#[tokio::test]
async fn unsafe_places_for_the_socket_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let open = root.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let error = UnixSocket::bind(&open.join("agent.sock"))
        .await
        .expect_err("world-writable directory");
    assert!(
        matches!(error, ListenError::UnsafeDirectory { .. }),
        "{error:?}"
    );

    let file = root.path().join("not-a-socket");
    std::fs::write(&file, "keep me").expect("write");
    let error = UnixSocket::bind(&file).await.expect_err("a regular file");
    assert!(matches!(error, ListenError::NotASocket { .. }), "{error:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "keep me");
}

#[test]
fn only_root_and_the_agents_user_may_connect() {
    assert!(peer_is_admitted(0, 1000));
    assert!(peer_is_admitted(1000, 1000));
    assert!(!peer_is_admitted(1001, 1000));
    assert!(peer_is_admitted(0, 0));
    assert!(!peer_is_admitted(1000, 0));
}

#[test]
fn a_socket_directory_must_be_the_agents_and_closed_to_writers() {
    assert!(directory_is_safe(1000, 0o40700, 1000));
    assert!(directory_is_safe(0, 0o40755, 0));
    assert!(!directory_is_safe(0, 0o40755, 1000), "another owner");
    assert!(!directory_is_safe(1000, 0o40770, 1000), "group-writable");
    assert!(!directory_is_safe(0, 0o41777, 0), "world-writable (/tmp)");
}

#[test]
fn tokens_are_trimmed_checked_and_never_shown() {
    let token = AuthToken::new("  abc-123\n").expect("valid");
    assert!(!format!("{token:?}").contains("abc-123"));
    assert!(matches!(
        AuthToken::new(" \n"),
        Err(crate::agent::TokenError::Empty)
    ));
    assert!(matches!(
        AuthToken::new("has space"),
        Err(crate::agent::TokenError::NotVisibleAscii)
    ));
}
