//! SPDY/3.1 frames on the wire: the 8-byte frame header, the control frames a remotecommand
//! session uses, and data frames.

use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::{
    Error,
    headers::{Compressor, Decompressor, Headers},
};

/// SPDY protocol version in control frames.
const VERSION: u16 = 3;
/// Largest frame payload accepted (SPDY's 24-bit length allows 16 MiB; no peer of ours sends
/// more than a few KiB).
const MAX_PAYLOAD: usize = 1 << 20;

/// `FLAG_FIN` on data, SYN_STREAM and SYN_REPLY frames.
pub const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status: the stream is being cancelled.
pub const RST_CANCEL: u32 = 5;
/// RST_STREAM status: a protocol error.
pub const RST_PROTOCOL_ERROR: u32 = 1;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A peer opens a stream.
    SynStream {
        /// Stream id.
        id: u32,
        /// Header block.
        headers: Headers,
        /// Flags (FIN, UNIDIRECTIONAL).
        flags: u8,
    },
    /// The answer to a SYN_STREAM.
    SynReply {
        /// Stream id.
        id: u32,
        /// Header block.
        headers: Headers,
        /// Flags (FIN).
        flags: u8,
    },
    /// A stream is aborted.
    RstStream {
        /// Stream id.
        id: u32,
        /// Status code.
        status: u32,
    },
    /// Settings (read and ignored: nothing here depends on them).
    Settings,
    /// A ping to echo.
    Ping {
        /// Ping id.
        id: u32,
    },
    /// The peer will open no more streams.
    GoAway {
        /// Last stream it handled.
        last_stream: u32,
        /// Status code.
        status: u32,
    },
    /// More headers for a stream (read and ignored).
    Headers {
        /// Stream id.
        id: u32,
    },
    /// Flow-control credit (read and ignored: the Go peers do not enforce windows).
    WindowUpdate,
    /// Bytes on a stream.
    Data {
        /// Stream id.
        id: u32,
        /// Payload.
        data: Vec<u8>,
        /// Flags (FIN).
        flags: u8,
    },
}

fn be32(bytes: &[u8], at: usize) -> Result<u32, Error> {
    let slice = bytes
        .get(at..at + 4)
        .ok_or(Error::BadFrame("control frame too short"))?;
    let mut four = [0u8; 4];
    four.copy_from_slice(slice);
    Ok(u32::from_be_bytes(four))
}

/// Reads the next frame; `Ok(None)` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    decompressor: &mut Decompressor,
) -> Result<Option<Frame>, Error> {
    let mut head = [0u8; 8];
    match io.read_exact(&mut head).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(Error::Io(error)),
    }
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let flags = head[4];
    let len = usize::try_from(u32::from_be_bytes([0, head[5], head[6], head[7]]))
        .map_err(|_| Error::BadFrame("length"))?;
    if len > MAX_PAYLOAD {
        return Err(Error::BadFrame("frame larger than 1 MiB"));
    }
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.map_err(Error::Io)?;
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            id: first & 0x7fff_ffff,
            data: payload,
            flags,
        }));
    }
    let version = u16::try_from((first >> 16) & 0x7fff).unwrap_or(0);
    if version != VERSION {
        return Err(Error::BadFrame("not SPDY version 3"));
    }
    let kind = u16::try_from(first & 0xffff).unwrap_or(0);
    let stream = |at| be32(&payload, at).map(|v| v & 0x7fff_ffff);
    let frame = match kind {
        SYN_STREAM => Frame::SynStream {
            id: stream(0)?,
            headers: decompressor.decompress(payload.get(10..).unwrap_or_default())?,
            flags,
        },
        SYN_REPLY => Frame::SynReply {
            id: stream(0)?,
            headers: decompressor.decompress(payload.get(4..).unwrap_or_default())?,
            flags,
        },
        RST_STREAM => Frame::RstStream {
            id: stream(0)?,
            status: be32(&payload, 4)?,
        },
        SETTINGS => Frame::Settings,
        PING => Frame::Ping {
            id: be32(&payload, 0)?,
        },
        GOAWAY => Frame::GoAway {
            last_stream: stream(0)?,
            status: be32(&payload, 4).unwrap_or(0),
        },
        HEADERS => {
            // Keep the shared zlib stream in step even though the headers are not used.
            let id = stream(0)?;
            decompressor.decompress(payload.get(4..).unwrap_or_default())?;
            Frame::Headers { id }
        }
        WINDOW_UPDATE => Frame::WindowUpdate,
        _ => return Err(Error::BadFrame("unknown control frame type")),
    };
    Ok(Some(frame))
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    let len = u32::try_from(payload.len()).unwrap_or(0) & 0x00ff_ffff;
    out.extend_from_slice(&(u32::from(flags) << 24 | len).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Encodes a frame this side sends. SYN_STREAM is never sent by a server here.
pub fn encode(frame: &Frame, compressor: &mut Compressor) -> Result<Vec<u8>, Error> {
    Ok(match frame {
        Frame::SynReply { id, headers, flags } => {
            let mut payload = (id & 0x7fff_ffff).to_be_bytes().to_vec();
            payload.extend(compressor.compress(headers)?);
            control(SYN_REPLY, *flags, &payload)
        }
        Frame::RstStream { id, status } => {
            let mut payload = (id & 0x7fff_ffff).to_be_bytes().to_vec();
            payload.extend_from_slice(&status.to_be_bytes());
            control(RST_STREAM, 0, &payload)
        }
        Frame::Ping { id } => control(PING, 0, &id.to_be_bytes()),
        Frame::GoAway {
            last_stream,
            status,
        } => {
            let mut payload = (last_stream & 0x7fff_ffff).to_be_bytes().to_vec();
            payload.extend_from_slice(&status.to_be_bytes());
            control(GOAWAY, 0, &payload)
        }
        Frame::Data { id, data, flags } => {
            let mut out = Vec::with_capacity(8 + data.len());
            out.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
            let len = u32::try_from(data.len()).unwrap_or(0) & 0x00ff_ffff;
            out.extend_from_slice(&(u32::from(*flags) << 24 | len).to_be_bytes());
            out.extend_from_slice(data);
            out
        }
        Frame::SynStream { id, headers, flags } => {
            // Only tests play the client; encoded for them.
            let mut payload = (id & 0x7fff_ffff).to_be_bytes().to_vec();
            payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            payload.extend(compressor.compress(headers)?);
            control(SYN_STREAM, *flags, &payload)
        }
        Frame::Settings | Frame::Headers { .. } | Frame::WindowUpdate => {
            return Err(Error::BadFrame("this side does not send that frame"));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(frame: Frame) -> Frame {
        let mut c = Compressor::new().expect("c");
        let mut d = Decompressor::new();
        let bytes = encode(&frame, &mut c).expect("encode");
        read_frame(&mut bytes.as_slice(), &mut d)
            .await
            .expect("decode")
            .expect("a frame")
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let headers = vec![("streamtype".to_owned(), "stdout".to_owned())];
        for frame in [
            Frame::SynStream {
                id: 3,
                headers: headers.clone(),
                flags: 0,
            },
            Frame::SynReply {
                id: 3,
                headers,
                flags: FLAG_FIN,
            },
            Frame::RstStream {
                id: 5,
                status: RST_CANCEL,
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_stream: 9,
                status: 0,
            },
            Frame::Data {
                id: 1,
                data: b"hello".to_vec(),
                flags: FLAG_FIN,
            },
        ] {
            assert_eq!(round_trip(frame.clone()).await, frame);
        }
    }

    #[tokio::test]
    async fn data_frame_layout_matches_the_spec() {
        let mut c = Compressor::new().expect("c");
        let bytes = encode(
            &Frame::Data {
                id: 1,
                data: vec![0xaa],
                flags: FLAG_FIN,
            },
            &mut c,
        )
        .expect("encode");
        assert_eq!(bytes, [0, 0, 0, 1, 1, 0, 0, 1, 0xaa]);
        let ping = encode(&Frame::Ping { id: 1 }, &mut c).expect("encode");
        assert_eq!(ping, [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
    }

    #[tokio::test]
    async fn end_of_input_is_a_clean_close_and_garbage_is_an_error() {
        let mut d = Decompressor::new();
        assert_eq!(
            read_frame(&mut [].as_slice(), &mut d).await.expect("eof"),
            None
        );
        let bad = [0x80, 2, 0, 1, 0, 0, 0, 0];
        assert!(read_frame(&mut bad.as_slice(), &mut d).await.is_err());
    }
}
