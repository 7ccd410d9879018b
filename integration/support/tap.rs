//! A TCP forwarder that notes when a client sent something: put in front of a server, it tells
//! when a process last talked to it (a request, not a kept-alive idle connection).

use std::{net::SocketAddr, sync::Arc, time::Instant};

use anyhow::Result;
use parking_lot::Mutex;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A running tap; it stops with the runtime that runs it.
#[derive(Clone)]
pub struct Tap {
    /// Where clients connect.
    pub addr: SocketAddr,
    sent: Arc<Mutex<Vec<Instant>>>,
}

impl Tap {
    /// Starts forwarding from a free loopback port to `upstream` on `runtime`.
    pub fn start(runtime: &tokio::runtime::Runtime, upstream: SocketAddr) -> Result<Self> {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let noted = sent.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let noted = noted.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = client_read.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            noted.lock().push(Instant::now());
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Ok(Self { addr, sent })
    }

    /// When clients sent data after `since`.
    pub fn sent_after(&self, since: Instant) -> Vec<Instant> {
        self.sent
            .lock()
            .iter()
            .copied()
            .filter(|at| *at > since)
            .collect()
    }
}
