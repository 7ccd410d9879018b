//! Serving HTTPS: the accept loop both of the node's servers share (the kubelet API and the
//! eci-profile webhook). Each connection is taken with the TLS acceptor in force when it
//! arrives (a reloaded certificate applies to the next connections), its handshake is bounded,
//! and it is served over HTTP/1.1 with upgrades (exec's SPDY) by the router `router` makes
//! for it from the client's verified certificate, if any.
//!
//! A leaf: it knows TLS and HTTP, no room.

use std::{future::Future, net::SocketAddr, time::Duration};

use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use rustls::pki_types::CertificateDer;
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument as _, debug};

/// Limit on the TLS handshake of one connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until `stop`, each served by `router(client certificate)`
/// and traced in `span(remote address)`.
pub async fn serve(
    listener: TcpListener,
    acceptors: watch::Receiver<TlsAcceptor>,
    router: impl Fn(Option<&CertificateDer<'_>>) -> axum::Router + Clone + Send + 'static,
    span: impl Fn(SocketAddr) -> tracing::Span,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (tcp, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    debug!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptors.borrow().clone();
        let router = router.clone();
        tokio::spawn(
            async move {
                let Ok(Ok(stream)) =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                else {
                    debug!("TLS handshake failed or timed out");
                    return;
                };
                let app = router(
                    stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first()),
                );
                let served = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                    .with_upgrades()
                    .await;
                if let Err(error) = served {
                    debug!(error = %error, "connection ended with an error");
                }
            }
            .instrument(span(remote)),
        );
    }
}
