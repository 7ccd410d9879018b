//! Where the agent protocol is served, and who may use it.
//!
//! As containerd and the CRI runtimes serve their APIs, the agent listens on a unix socket by
//! default: the socket lives in a directory only its user can write, the file is `0600`, and
//! every connection's peer credentials are checked when it is accepted, so only root and the
//! agent's own user reach it. TCP is served only with a bearer token (`token.rs`), since a TCP
//! peer proves nothing about who it is.

use std::{
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio_stream::{
    Stream, StreamExt as _,
    wrappers::{TcpListenerStream, UnixListenerStream},
};

use super::{
    pb::agent_server::{Agent, AgentServer},
    token::{AuthToken, RequireToken},
};

/// The mode of the agent's socket file: its user only.
const SOCKET_MODE: u32 = 0o600;
/// The mode of a socket directory the agent creates.
const DIRECTORY_MODE: u32 = 0o700;

/// The HTTP/2 connection window both ends of the agent protocol use.
///
/// h2 (0.4.16 on) closes a connection with `GOAWAY(ENHANCE_YOUR_CALM, "too_many_data_frames")`
/// once small DATA frames it buffered but the application has not read yet exceed a budget,
/// which is half the connection window (hyperium/h2#939, fixed by scaling in 0.4.19). Every
/// gRPC message of the protocol is such a frame: with 10,000 groups' status polls in flight on
/// the emulator's one connection the default window's budget ran out, and every call on the
/// connection failed (`transport error`, counted in BENCHMARKS.md, "Round two"). 16 MiB gives
/// room for tens of thousands of calls in flight.
pub const CONNECTION_WINDOW: u32 = 16 << 20;

/// Errors of binding the agent's unix socket.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The socket path has no parent directory (a relative or root path).
    #[error("the socket path {path} has no parent directory")]
    NoParent {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket's directory could not be created or read.
    #[error("cannot create or read the socket directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket's directory belongs to another user or others may write to it, so someone
    /// else could replace the socket.
    #[error(
        "the socket directory {path} is owned by uid {owner} with mode {mode:o}; it must belong to uid {euid} and not be writable by group or others"
    )]
    UnsafeDirectory {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// The agent's effective uid.
        euid: u32,
    },
    /// Something other than a socket is at the socket path; it is left alone.
    #[error("{path} exists and is not a socket")]
    NotASocket {
        /// The socket path.
        path: PathBuf,
    },
    /// Another process answers on the socket (a second agent on the same path).
    #[error("another process is listening on {path}")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// A stale socket could not be removed.
    #[error("cannot remove the stale socket {path}")]
    RemoveStale {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket could not be bound.
    #[error("cannot bind the socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket's mode could not be set.
    #[error("cannot set the mode of the socket {path}")]
    Chmod {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound unix socket of the agent; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    file: SocketFile,
}

/// Removes the socket file on drop, so a stopped agent leaves no socket behind.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// === impl UnixSocket ===

impl UnixSocket {
    /// Binds `path`: creates its directory `0700` if missing (refusing one another user owns or
    /// others may write), removes a stale socket (refusing a live one or a file of another
    /// type), binds, and makes the socket `0600`.
    ///
    /// # Errors
    /// [`ListenError`] naming the path and the step that failed.
    pub async fn bind(path: &Path) -> Result<Self, ListenError> {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .ok_or_else(|| ListenError::NoParent {
                path: path.to_owned(),
            })?;
        let directory_error = |source| ListenError::Directory {
            path: dir.to_owned(),
            source,
        };
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIRECTORY_MODE)
            .create(dir)
            .await
            .map_err(directory_error)?;
        let meta = tokio::fs::metadata(dir).await.map_err(directory_error)?;
        let euid = nix::unistd::geteuid().as_raw();
        if !directory_is_safe(meta.uid(), meta.mode(), euid) {
            return Err(ListenError::UnsafeDirectory {
                path: dir.to_owned(),
                owner: meta.uid(),
                mode: meta.mode() & 0o7777,
                euid,
            });
        }
        remove_stale(path).await?;
        let listener = UnixListener::bind(path).map_err(|source| ListenError::Bind {
            path: path.to_owned(),
            source,
        })?;
        let file = SocketFile(path.to_owned());
        // Between bind and chmod the socket has the umask's mode; the directory's mode and the
        // peer check at accept keep other users out meanwhile.
        tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .await
            .map_err(|source| ListenError::Chmod {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self { listener, file })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.file.0
    }
}

/// A directory may hold the agent's socket when the agent's user owns it and neither group nor
/// others may write to it (else they could swap the socket for their own).
fn directory_is_safe(owner: u32, mode: u32, euid: u32) -> bool {
    owner == euid && mode & 0o022 == 0
}

/// Removes a socket left by an agent that died, as containerd does before it listens; refuses a
/// socket someone answers on and anything that is not a socket.
async fn remove_stale(path: &Path) -> Result<(), ListenError> {
    let meta = match tokio::fs::symlink_metadata(path).await {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ListenError::RemoveStale {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket {
            path: path.to_owned(),
        });
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(ListenError::InUse {
            path: path.to_owned(),
        });
    }
    tokio::fs::remove_file(path)
        .await
        .map_err(|source| ListenError::RemoveStale {
            path: path.to_owned(),
            source,
        })
}

/// Whether a peer of uid `peer` may use an agent running as `euid`: root, or the same user
/// (as containerd's socket admits only what its mode and owner allow, checked here per
/// connection).
fn peer_is_admitted(peer: u32, euid: u32) -> bool {
    peer == 0 || peer == euid
}

/// The connections of `listener` whose peer is admitted; others are closed at once.
fn admitted(
    listener: UnixListener,
) -> impl Stream<Item = std::io::Result<UnixStream>> + Send + 'static {
    let euid = nix::unistd::geteuid().as_raw();
    UnixListenerStream::new(listener).filter_map(move |accepted| match accepted {
        Ok(stream) => match stream.peer_cred() {
            Ok(cred) if peer_is_admitted(cred.uid(), euid) => Some(Ok(stream)),
            Ok(cred) => {
                tracing::warn!(
                    peer.uid = cred.uid(),
                    peer.pid = ?cred.pid(),
                    "refused an agent connection from another user"
                );
                None
            }
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "refused an agent connection whose peer is unknown"
                );
                None
            }
        },
        Err(error) => Some(Err(error)),
    })
}

/// Where an agent serves its protocol, with the check each call must pass.
#[derive(Debug)]
pub struct AgentListener {
    incoming: Incoming,
    token: Option<AuthToken>,
}

#[derive(Debug)]
enum Incoming {
    Unix(UnixSocket),
    Tcp(TcpListener),
}

// === impl AgentListener ===

impl AgentListener {
    /// A unix socket: peers are checked when they connect; with `token`, every call must also
    /// carry it.
    pub fn unix(socket: UnixSocket, token: Option<AuthToken>) -> Self {
        Self {
            incoming: Incoming::Unix(socket),
            token,
        }
    }

    /// A TCP listener, which always requires `token`.
    pub fn tcp(listener: TcpListener, token: AuthToken) -> Self {
        Self {
            incoming: Incoming::Tcp(listener),
            token: Some(token),
        }
    }
}

/// Serves `agent` on `listener` until `shutdown` completes; a unix socket's file is removed
/// when the server ends.
pub(crate) async fn serve<A: Agent>(
    agent: A,
    listener: AgentListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let service = AgentServer::with_interceptor(agent, RequireToken::new(listener.token));
    let router = tonic::transport::Server::builder()
        .initial_connection_window_size(CONNECTION_WINDOW)
        .add_service(service);
    match listener.incoming {
        Incoming::Tcp(listener) => {
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await
        }
        Incoming::Unix(UnixSocket { listener, file }) => {
            let served = router
                .serve_with_incoming_shutdown(admitted(listener), shutdown)
                .await;
            drop(file);
            served
        }
    }
}

#[cfg(test)]
mod tests;
