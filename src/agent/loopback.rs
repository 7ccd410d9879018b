//! The one way to run an agent in-process: served on a fresh `127.0.0.1` port in a background
//! task, so the emulator reaches it through the same gRPC client it uses for a remote agent.
//!
//! Both runtimes go through it: [`LocalAgent::spawn_loopback`] (the real agent, whose counters
//! the emulator's `/metrics` shows) and [`super::SimulatedAgent::spawn_loopback`].

use std::{net::SocketAddr, pin::Pin};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tracing::Instrument as _;

use super::LocalAgent;

/// Errors of starting an in-process agent's server.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// The loopback listener could not be bound.
    #[error("cannot bind the in-process agent's loopback listener")]
    Bind(#[source] std::io::Error),
    /// The bound listener has no local address (never expected).
    #[error("cannot read the in-process agent's listening address")]
    LocalAddr(#[source] std::io::Error),
}

/// The future a server runs until: it completes when the agent is asked to stop.
pub(crate) type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// An agent served on a loopback port. Dropping it stops the server; [`Self::shutdown`] also
/// waits for it (the real agent removes every container group on its way out).
#[derive(Debug)]
pub struct LoopbackAgent {
    addr: SocketAddr,
    /// The real agent, when this is one.
    local: Option<LocalAgent>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

// === impl LoopbackAgent ===

impl LoopbackAgent {
    /// Binds a loopback port and spawns `serve(listener, shutdown)` on it, in a span named
    /// for the runtime.
    pub(crate) async fn spawn<F>(
        runtime: &'static str,
        local: Option<LocalAgent>,
        serve: impl FnOnce(TcpListener, ShutdownSignal) -> F,
    ) -> Result<Self, LoopbackError>
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(LoopbackError::Bind)?;
        let addr = listener.local_addr().map_err(LoopbackError::LocalAddr)?;
        let (tx, rx) = oneshot::channel::<()>();
        let span = tracing::info_span!("agent", %addr, agent.runtime = runtime);
        let signal: ShutdownSignal = Box::pin(async move {
            let _ = rx.await;
        });
        let task = tokio::spawn(serve(listener, signal).instrument(span));
        Ok(Self {
            addr,
            local,
            shutdown: Some(tx),
            task,
        })
    }

    /// Where the agent listens (`127.0.0.1:…`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for a tonic client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
