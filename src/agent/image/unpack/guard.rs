//! The reader between the decompressed layer and `tar`: it hashes the stream for the
//! `diff_id` and passes at most the [`Limits`]' bytes, and nothing once cancelled.

use std::{
    cell::Cell,
    io::{self, Read},
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use sha2::{Digest as _, Sha256};

use super::{Limits, UnpackError};

/// Hashes what passes through it: the uncompressed tar, for the layer's `diff_id`.
pub(super) struct HashingReader<R> {
    pub(super) inner: R,
    pub(super) hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// What the tar reader is reading: each has its own budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Phase {
    /// Header material before an entry ([`Limits::header_bytes`]).
    #[default]
    Header,
    /// An entry's data (bounded by the stream only).
    Data,
    /// After the end-of-archive marker ([`Limits::trailing_bytes`]).
    Trailer,
}

/// Why the guard stopped the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// A phase's budget ran out (header or trailer).
    Budget(Phase),
    /// The whole stream's budget ran out.
    Stream,
    /// The cancel flag was raised.
    Cancelled,
}

impl Stop {
    pub(super) fn error(self, limits: &Limits) -> UnpackError {
        match self {
            Self::Budget(Phase::Trailer) => UnpackError::TrailingData {
                limit: limits.trailing_bytes,
            },
            // Data has no budget of its own; only header material can run out here.
            Self::Budget(Phase::Header | Phase::Data) => UnpackError::HeaderTooLarge {
                limit: limits.header_bytes,
            },
            Self::Stream => UnpackError::ExceedStream {
                limit: limits.stream_bytes,
            },
            Self::Cancelled => UnpackError::Cancelled,
        }
    }
}

/// The current phase's budget, shared between the guard (which `tar::Archive` owns while it
/// reads) and the loop that moves from phase to phase.
#[derive(Debug, Default)]
pub(super) struct Budget {
    phase: Cell<Phase>,
    /// Bytes the current phase may still read.
    left: Cell<u64>,
    /// Set when the guard refused a read, so the error can be named.
    pub(super) stopped: Cell<Option<Stop>>,
}

impl Budget {
    pub(super) fn enter(&self, phase: Phase, bytes: u64) {
        self.phase.set(phase);
        self.left.set(bytes);
    }
}

/// Passes at most the budgets' bytes from `inner`, and nothing once cancelled: `tar` reads
/// long names and PAX headers with an unbounded `read_to_end`, so this is where they stop.
pub(super) struct GuardedReader<R> {
    pub(super) inner: HashingReader<R>,
    pub(super) budget: Rc<Budget>,
    pub(super) stream_left: u64,
    pub(super) cancel: Option<Arc<AtomicBool>>,
}

impl<R: Read> GuardedReader<R> {
    fn stop(&self, stop: Stop) -> io::Error {
        self.budget.stopped.set(Some(stop));
        io::Error::other(format!("layer reading stopped: {stop:?}"))
    }

    /// Whether `inner` has more to give, reading (and hashing) at most one byte to see.
    fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.inner.read(&mut [0u8; 1])? == 0)
    }
}

impl<R: Read> Read for GuardedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
        {
            return Err(self.stop(Stop::Cancelled));
        }
        let left = self.budget.left.get();
        // A budget spent exactly at the end of the stream is no excess: look before refusing.
        if left == 0 || self.stream_left == 0 {
            if self.at_end()? {
                return Ok(0);
            }
            let stop = if self.stream_left == 0 {
                Stop::Stream
            } else {
                Stop::Budget(self.budget.phase.get())
            };
            return Err(self.stop(stop));
        }
        let allowed = left.min(self.stream_left);
        let len = usize::try_from(allowed).map_or(buf.len(), |allowed| allowed.min(buf.len()));
        let n = self.inner.read(&mut buf[..len])?;
        let n64 = n as u64;
        self.stream_left -= n64;
        self.budget.left.set(left.saturating_sub(n64));
        Ok(n)
    }
}
