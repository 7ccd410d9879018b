//! The server side of SPDY/3.1, as far as Kubernetes streaming (exec, attach) uses it.
//!
//! The API server speaks SPDY/3.1 to kubelets for `exec` and `attach` (it translates
//! kubectl's WebSockets to SPDY unless a node declares `ExtendWebSocketsToKubelet`). No
//! maintained Rust crate serves SPDY, so the framing is here: [`frame`] (SYN_STREAM,
//! SYN_REPLY, RST_STREAM, PING, GOAWAY, DATA; SETTINGS, HEADERS and WINDOW_UPDATE are read and
//! ignored, as the Go peers never enforce windows) and [`headers`] (zlib with the SPDY/3
//! dictionary).
//!
//! [`Session::start`] splits a connection into a reader task (decodes frames, answers pings,
//! reports [`Event`]s) and a writer task (encodes frames in order through one compressor);
//! [`Writer`] is the cloneable handle that sends.

mod dictionary;
pub mod frame;
pub mod headers;

use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt as _},
    sync::mpsc,
};
use tracing::{Instrument as _, debug, trace};

pub use frame::{FLAG_FIN, Frame, RST_CANCEL, RST_PROTOCOL_ERROR};
pub use headers::Headers;

/// What can go wrong on a SPDY connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the connection failed.
    #[error("SPDY connection I/O failed")]
    Io(#[source] std::io::Error),
    /// A frame does not follow SPDY/3.1.
    #[error("malformed SPDY frame: {0}")]
    BadFrame(&'static str),
    /// A header block does not follow SPDY/3.1.
    #[error("malformed SPDY header block: {0}")]
    BadHeaderBlock(&'static str),
    /// The header compression failed.
    #[error("SPDY header compression: {0}")]
    Zlib(&'static str),
}

/// What the peer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It opened stream `id` with these headers.
    Open {
        /// Stream id.
        id: u32,
        /// Its headers (`streamtype` for remotecommand).
        headers: Headers,
    },
    /// Bytes on a stream.
    Data {
        /// Stream id.
        id: u32,
        /// Payload.
        data: Vec<u8>,
    },
    /// The peer finished sending on a stream.
    Fin {
        /// Stream id.
        id: u32,
    },
    /// The peer reset a stream.
    Reset {
        /// Stream id.
        id: u32,
    },
    /// The peer is going away.
    GoAway,
}

/// Sends frames on the connection, in order. Cloneable; the connection's write side closes
/// when every clone is dropped.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Frame>,
}

impl Writer {
    /// Queues a frame; `false` when the connection is gone.
    pub async fn send(&self, frame: Frame) -> bool {
        self.tx.send(frame).await.is_ok()
    }

    /// SYN_REPLY to stream `id` (no headers).
    pub async fn reply(&self, id: u32) -> bool {
        self.send(Frame::SynReply {
            id,
            headers: Vec::new(),
            flags: 0,
        })
        .await
    }

    /// Data on stream `id`, split into frames of at most 32 KiB.
    pub async fn data(&self, id: u32, data: &[u8]) -> bool {
        for chunk in data.chunks(32 * 1024) {
            let frame = Frame::Data {
                id,
                data: chunk.to_vec(),
                flags: 0,
            };
            if !self.send(frame).await {
                return false;
            }
        }
        true
    }

    /// Ends this side of stream `id` (an empty DATA frame with FIN).
    pub async fn fin(&self, id: u32) -> bool {
        self.send(Frame::Data {
            id,
            data: Vec::new(),
            flags: FLAG_FIN,
        })
        .await
    }
}

/// A server-side SPDY session over one upgraded connection.
pub struct Session {
    /// What the peer does; `None` once the connection is closed or broken.
    pub events: mpsc::Receiver<Event>,
    /// How to answer.
    pub writer: Writer,
    /// The reader task: stopped when the session is dropped, which also lets the writer
    /// finish and close the connection once every [`Writer`] is gone.
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Session {
    /// Starts the reader and writer tasks on `io`.
    pub fn start<IO>(io: IO) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut read, mut write) = tokio::io::split(io);
        let (frame_tx, mut frame_rx) = mpsc::channel::<Frame>(64);
        let (event_tx, events) = mpsc::channel::<Event>(64);
        let writer = Writer { tx: frame_tx };
        tokio::spawn(
            async move {
                let mut compressor = match headers::Compressor::new() {
                    Ok(c) => c,
                    Err(error) => {
                        debug!(error = %error, "no SPDY compressor");
                        return;
                    }
                };
                while let Some(frame) = frame_rx.recv().await {
                    trace!(?frame, "spdy send");
                    let bytes = match frame::encode(&frame, &mut compressor) {
                        Ok(b) => b,
                        Err(error) => {
                            debug!(error = %error, "cannot encode a SPDY frame");
                            break;
                        }
                    };
                    if write.write_all(&bytes).await.is_err() || write.flush().await.is_err() {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            }
            .instrument(tracing::debug_span!("spdy_writer")),
        );
        let pong = writer.clone();
        let reader = tokio::spawn(
            async move {
                let mut decompressor = headers::Decompressor::new();
                loop {
                    let frame = match frame::read_frame(&mut read, &mut decompressor).await {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(error) => {
                            debug!(error = %error, "SPDY connection ended");
                            break;
                        }
                    };
                    trace!(?frame, "spdy recv");
                    let events: Vec<Event> = match frame {
                        Frame::SynStream { id, headers, flags } => {
                            let mut events = vec![Event::Open { id, headers }];
                            if flags & FLAG_FIN != 0 {
                                events.push(Event::Fin { id });
                            }
                            events
                        }
                        Frame::Data { id, data, flags } => {
                            let mut events = Vec::new();
                            if !data.is_empty() {
                                events.push(Event::Data { id, data });
                            }
                            if flags & FLAG_FIN != 0 {
                                events.push(Event::Fin { id });
                            }
                            events
                        }
                        Frame::RstStream { id, .. } => vec![Event::Reset { id }],
                        Frame::GoAway { .. } => vec![Event::GoAway],
                        Frame::Ping { id } => {
                            // Pings from the peer are echoed (this side never starts one).
                            let _ = pong.send(Frame::Ping { id }).await;
                            Vec::new()
                        }
                        Frame::SynReply { .. }
                        | Frame::Settings
                        | Frame::Headers { .. }
                        | Frame::WindowUpdate => Vec::new(),
                    };
                    for event in events {
                        if event_tx.send(event).await.is_err() {
                            return;
                        }
                    }
                }
            }
            .instrument(tracing::debug_span!("spdy_reader")),
        );
        Self {
            events,
            writer,
            reader,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_reports_streams_and_echoes_pings() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut session = Session::start(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let mut c = headers::Compressor::new().expect("c");
        let mut bytes = frame::encode(
            &Frame::SynStream {
                id: 1,
                headers: vec![("streamtype".into(), "stdin".into())],
                flags: 0,
            },
            &mut c,
        )
        .expect("e");
        bytes.extend(frame::encode(&Frame::Ping { id: 1 }, &mut c).expect("e"));
        bytes.extend(
            frame::encode(
                &Frame::Data {
                    id: 1,
                    data: b"hi".to_vec(),
                    flags: FLAG_FIN,
                },
                &mut c,
            )
            .expect("e"),
        );
        client_write.write_all(&bytes).await.expect("write");
        assert_eq!(
            session.events.recv().await,
            Some(Event::Open {
                id: 1,
                headers: vec![("streamtype".into(), "stdin".into())]
            })
        );
        assert_eq!(
            session.events.recv().await,
            Some(Event::Data {
                id: 1,
                data: b"hi".to_vec()
            })
        );
        assert_eq!(session.events.recv().await, Some(Event::Fin { id: 1 }));
        assert!(session.writer.reply(1).await);
        let mut d = headers::Decompressor::new();
        let ping = frame::read_frame(&mut client_read, &mut d)
            .await
            .expect("r");
        assert_eq!(ping, Some(Frame::Ping { id: 1 }));
        let reply = frame::read_frame(&mut client_read, &mut d)
            .await
            .expect("r");
        assert!(matches!(reply, Some(Frame::SynReply { id: 1, .. })));
        // Both halves gone closes the pipe: the session sees the end.
        drop(client_read);
        drop(client_write);
        assert_eq!(session.events.recv().await, None);
    }
}
