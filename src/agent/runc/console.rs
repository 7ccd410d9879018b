//! The terminal of a tty exec.
//!
//! runc accepts `--console-socket` only together with `--detach`, and a detached exec's exit
//! code is lost (the process is reparented inside the container). So a tty exec runs in the
//! foreground with a pseudo-terminal the agent allocates as runc's stdin/stdout/stderr: runc
//! makes the container's own terminal, copies between the two, and on SIGWINCH copies our
//! terminal's size onto the container's. The only `unsafe` of the runtime lives here.

use std::os::fd::{AsRawFd as _, OwnedFd};

use nix::{
    fcntl::{FcntlArg, OFlag, fcntl},
    pty::{Winsize, openpty},
};
use tokio::io::unix::AsyncFd;

nix::ioctl_write_ptr_bad!(set_window_size, nix::libc::TIOCSWINSZ, Winsize);

/// The agent's end (master) of a pseudo-terminal, for async reads and writes.
#[derive(Debug)]
pub(crate) struct Terminal {
    fd: AsyncFd<OwnedFd>,
}

impl Terminal {
    /// A new pseudo-terminal of 80x24: the master, and the slave to hand to runc.
    pub(crate) fn open() -> std::io::Result<(Self, OwnedFd)> {
        let size = Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pair = openpty(&size, None).map_err(std::io::Error::from)?;
        let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL)?);
        fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        fcntl(
            &pair.master,
            FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
        // SAFETY: `pair.master` is an `OwnedFd` moved into the `AsyncFd`, so the descriptor
        // stays open and is used by nothing else for as long as it is registered.
        let fd = unsafe { AsyncFd::register(pair.master) }.map_err(std::io::Error::from)?;
        Ok((Self { fd }, pair.slave))
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

    /// Sets the terminal's size (runc, told by SIGWINCH, copies it into the container).
    pub(crate) fn resize(&self, width: u16, height: u16) -> std::io::Result<()> {
        let size = Winsize {
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
