//! The cloud side of an exec: `ExecContainerCommand` hands out a `WebSocketUri`; this connects
//! to it and speaks its framing.
//!
//! Framing (as the emulator serves it; ECI documents only the URL): a non-empty binary frame
//! from us is stdin, an empty one ends stdin; binary frames from the cloud are the command's
//! output (stdout and stderr together), and a text frame `{"ExitCode":N}` ends the session.

use std::sync::Arc;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt as _, StreamExt as _};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_tungstenite::{
    WebSocketStream, client_async,
    tungstenite::{Message, client::IntoClientRequest as _},
};

/// A connection of any transport.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// The sending half of an exec session in the cloud (stdin).
pub struct CloudInput {
    sink: SplitSink<Socket, Message>,
}

/// The receiving half of an exec session in the cloud (output and exit code).
pub struct CloudOutput {
    stream: SplitStream<Socket>,
}

/// What the cloud sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Output bytes.
    Bytes(Vec<u8>),
    /// The command ended with this code.
    Exit(i32),
    /// The session closed without an exit code.
    Closed,
    /// The cloud refused or ended the session with an error (its message).
    Failed(String),
}

/// Why the session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not ws:// or wss:// with a host.
    #[error("the exec URL is not a ws:// or wss:// URL")]
    BadUrl,
    /// TCP or TLS failed.
    #[error("cannot connect to the exec URL's host")]
    Connect(#[source] std::io::Error),
    /// The WebSocket handshake failed.
    #[error("the exec WebSocket handshake failed")]
    Handshake(#[source] tokio_tungstenite::tungstenite::Error),
}

fn tls() -> Result<tokio_rustls::TlsConnector, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| ConnectError::Connect(std::io::Error::other(e)))?;
    // "dangerous" is rustls' name for any custom verifier; this is the platform's WebPKI check.
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Connect(std::io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Connects to `url` (valid for a short time after `ExecContainerCommand`).
///
/// # Errors
/// [`ConnectError`] naming the step that failed; the URL (a credential) is never included.
pub async fn connect(url: &str) -> Result<(CloudInput, CloudOutput), ConnectError> {
    let (secure, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else {
        return Err(ConnectError::BadUrl);
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(ConnectError::BadUrl);
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse().unwrap_or(0)),
        _ => (authority.to_owned(), if secure { 443 } else { 80 }),
    };
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(ConnectError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if secure {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| ConnectError::BadUrl)?;
        Box::new(
            tls()?
                .connect(name, tcp)
                .await
                .map_err(ConnectError::Connect)?,
        )
    } else {
        Box::new(tcp)
    };
    let request = url.into_client_request().map_err(ConnectError::Handshake)?;
    let (socket, _) = client_async(request, io)
        .await
        .map_err(ConnectError::Handshake)?;
    let (sink, stream) = socket.split();
    Ok((CloudInput { sink }, CloudOutput { stream }))
}

impl CloudInput {
    /// Sends stdin bytes; `false` when the session is gone.
    pub async fn stdin(&mut self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return true;
        }
        self.sink.send(Message::Binary(bytes.into())).await.is_ok()
    }

    /// Ends stdin.
    pub async fn close_stdin(&mut self) -> bool {
        self.sink
            .send(Message::Binary(Vec::new().into()))
            .await
            .is_ok()
    }

    /// Closes the session.
    pub async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

impl CloudOutput {
    /// The next output.
    pub async fn next(&mut self) -> Output {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Binary(bytes))) => return Output::Bytes(bytes.to_vec()),
                Some(Ok(Message::Text(text))) => {
                    let value: serde_json::Value =
                        serde_json::from_str(text.as_str()).unwrap_or_default();
                    if let Some(code) = value.get("ExitCode").and_then(serde_json::Value::as_i64) {
                        return Output::Exit(i32::try_from(code).unwrap_or(-1));
                    }
                    if let Some(error) = value.get("Error") {
                        return Output::Failed(
                            error
                                .as_str()
                                .map_or_else(|| error.to_string(), str::to_owned),
                        );
                    }
                    return Output::Bytes(text.as_bytes().to_vec());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return Output::Closed,
            }
        }
    }
}
