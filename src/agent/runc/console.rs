//! The terminal of a tty exec: runc creates the pseudo-terminal inside the container and sends
//! its master over `--console-socket` (SCM_RIGHTS); the runtime reads and writes it and sets its
//! size. The only `unsafe` of the runtime lives here.

use std::{
    io::IoSliceMut,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use nix::{
    fcntl::{FcntlArg, OFlag, fcntl},
    sys::socket::{ControlMessageOwned, MsgFlags, recvmsg},
};
use tokio::io::unix::AsyncFd;

nix::ioctl_write_ptr_bad!(set_window_size, nix::libc::TIOCSWINSZ, nix::pty::Winsize);

/// Receives the terminal master runc sends on `socket` (blocking).
pub(crate) fn receive_master(socket: &std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    for cmsg in message.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // Close any extra descriptor rather than leak it.
            for &extra in &fds[1..] {
                // SAFETY: the kernel just installed `extra` in our table for us alone.
                drop(unsafe { OwnedFd::from_raw_fd(extra) });
            }
            // SAFETY: SCM_RIGHTS installed `fd` in this process for us alone; nobody else owns
            // it, so taking ownership (and closing it on drop) is sound.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(std::io::Error::other("runc sent no terminal"))
}

/// A terminal master for async reads and writes.
#[derive(Debug)]
pub(crate) struct Terminal {
    fd: AsyncFd<OwnedFd>,
}

impl Terminal {
    pub(crate) fn new(master: OwnedFd) -> std::io::Result<Self> {
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: `master` is an `OwnedFd` moved into the `AsyncFd`, so the descriptor stays
        // open and is used by nothing else for as long as it is registered.
        let fd = unsafe { AsyncFd::register(master) }.map_err(std::io::Error::from)?;
        Ok(Self { fd })
    }

    /// Reads some output; 0 once the other side is closed (EIO on a pty).
    pub(crate) async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(error)) if error.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => {}
            }
        }
    }

    /// Writes all of `data`.
    pub(crate) async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Sets the terminal's size (the program gets SIGWINCH).
    pub(crate) fn resize(&self, width: u16, height: u16) -> std::io::Result<()> {
        let size = nix::pty::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which points at a live,
        // initialised local for the duration of the call; the fd is a pty master we own.
        unsafe { set_window_size(self.fd.get_ref().as_raw_fd(), &raw const size) }
            .map(drop)
            .map_err(std::io::Error::from)
    }
}
