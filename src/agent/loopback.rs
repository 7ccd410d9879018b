//! The one way to run an agent in-process: served on a unix socket in a private directory, in a
//! background task, so the emulator reaches it through the same gRPC client it uses for a
//! remote agent, and no other user of the machine can reach it at all.
//!
//! Both runtimes go through it: [`LocalAgent::spawn_loopback`] (the real agent, whose counters
//! the emulator's `/metrics` shows) and [`super::SimulatedAgent::spawn_loopback`].

use std::{
    path::{Path, PathBuf},
    pin::Pin,
};

use tokio::{sync::oneshot, task::JoinHandle};
use tracing::Instrument as _;

use super::{
    LocalAgent,
    listen::{AgentListener, ListenError, UnixSocket},
};

/// The socket's name inside the private directory.
const SOCKET_NAME: &str = "agent.sock";

/// Errors of starting an in-process agent's server.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// The private directory of the socket could not be created.
    #[error("cannot create the in-process agent's socket directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket could not be bound.
    #[error("cannot bind the in-process agent's socket")]
    Bind(#[source] ListenError),
    /// The temporary directory's path is not UTF-8, so it cannot be written as a URL.
    #[error("the in-process agent's socket path {path} is not UTF-8")]
    NotUtf8 {
        /// The socket path.
        path: PathBuf,
    },
}

/// The future a server runs until: it completes when the agent is asked to stop.
pub(crate) type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An agent served on a private unix socket. Dropping it stops the server and removes the
/// socket's directory; [`Self::shutdown`] also waits for the server (the real agent removes
/// every container group on its way out).
#[derive(Debug)]
pub struct LoopbackAgent {
    dir: PrivateDir,
    url: String,
    /// The real agent, when this is one.
    local: Option<LocalAgent>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// A `0700` directory of random name under the temporary directory, removed on drop.
#[derive(Debug)]
struct PrivateDir(PathBuf);

impl PrivateDir {
    async fn create() -> Result<Self, LoopbackError> {
        let path =
            std::env::temp_dir().join(format!("eci-vk-agent-sock-{:016x}", rand::random::<u64>()));
        // Not recursive: creating fails if the name exists, so nobody can have prepared it.
        tokio::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .await
            .map_err(|source| LoopbackError::Directory {
                path: path.clone(),
                source,
            })?;
        Ok(Self(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// === impl LoopbackAgent ===

impl LoopbackAgent {
    /// Binds a socket in a fresh private directory and spawns `serve(listener, shutdown)` on
    /// it, in a span named for the runtime.
    pub(crate) async fn spawn<F>(
        runtime: &'static str,
        local: Option<LocalAgent>,
        serve: impl FnOnce(AgentListener, ShutdownSignal) -> F,
    ) -> Result<Self, LoopbackError>
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        let dir = PrivateDir::create().await?;
        let path = dir.0.join(SOCKET_NAME);
        let url = match path.to_str() {
            Some(text) => format!("unix://{text}"),
            None => return Err(LoopbackError::NotUtf8 { path }),
        };
        let socket = UnixSocket::bind(&path).await.map_err(LoopbackError::Bind)?;
        let (tx, rx) = oneshot::channel::<()>();
        let span =
            tracing::info_span!("agent", agent.socket = %path.display(), agent.runtime = runtime);
        let signal: ShutdownSignal = Box::pin(async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(serve(AgentListener::unix(socket, None), signal).instrument(span));
        Ok(Self {
            dir,
            url,
            local,
            shutdown: Some(tx),
            task,
        })
    }

    /// The socket the agent listens on, in a `0700` directory of its own.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.0.join(SOCKET_NAME)
    }

    /// The directory of the socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir.0
    }

    /// `unix:///…/agent.sock`, for a tonic client.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The real agent, for its counters; `None` for the simulated one.
    pub fn local_agent(&self) -> Option<&LocalAgent> {
        self.local.as_ref()
    }

    /// Stops serving and waits for the server (and the real agent's teardown of every group).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "the in-process agent stopped with an error"
            ),
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "the in-process agent task failed"
            ),
        }
    }
}

impl Drop for LoopbackAgent {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
