//! A blob read while it downloads, so that a layer is unpacked as its bytes arrive rather than
//! after its last one.
//!
//! The writer is [`ContentStore::ingest`](super::ContentStore::ingest): it publishes its ingest
//! file once created, then how many bytes are written after every chunk, then the end. Readers
//! read that file by position (`pread`), each at its own offset and never past what was
//! published, and wait when they have caught up. Nothing is buffered in memory, and a reader
//! that falls behind (a layer waiting for the one below it) never holds the download back: it
//! reads from the file later.
//!
//! The bytes are read before the download has verified its digest. An unpack stays inside its
//! root whatever the bytes are (`unpack`), and a build whose blob then fails verification fails
//! and throws its staging directory away, so unverified bytes never become a snapshot.

use std::{
    fs::File,
    io::{self, Read},
    os::unix::fs::FileExt as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::{Condvar, Mutex};

/// How often a waiting reader looks at its cancel flag: a build that is dropped raises it.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// One blob of a build, as far as its download has come.
#[derive(Debug, Default)]
pub struct GrowingBlob {
    state: Mutex<State>,
    /// Wakes the blocking readers at every change.
    grew: Condvar,
    /// Wakes the async waiters for the end ([`Self::download_failed`]).
    ended: tokio::sync::Notify,
}

#[derive(Debug, Default)]
enum State {
    /// The download has not started.
    #[default]
    Waiting,
    /// Bytes `..written` of `file` are on disk.
    Growing { file: Arc<File>, written: u64 },
    /// All `size` bytes are on disk and verified.
    Complete { file: Arc<File>, size: u64 },
    /// The download failed or was dropped; the writer's error says why.
    Failed,
}

impl GrowingBlob {
    /// Whether the download failed (or was dropped before its end).
    #[cfg(test)]
    pub fn failed(&self) -> bool {
        matches!(*self.state.lock(), State::Failed)
    }

    /// Waits for the download to end: whether it failed.
    pub async fn download_failed(&self) -> bool {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the state is read, so an end in between is not missed.
            ended.as_mut().enable();
            match *self.state.lock() {
                State::Complete { .. } => return false,
                State::Failed => return true,
                State::Waiting | State::Growing { .. } => {}
            }
            ended.await;
        }
    }

    /// The writer's side: the blob fails when it is dropped before [`BlobWriter::complete`].
    pub(super) fn writer(&self) -> BlobWriter<'_> {
        BlobWriter {
            blob: self,
            done: false,
        }
    }

    /// A reader from the first byte; `cancel` stops its waiting.
    pub fn reader(self: &Arc<Self>, cancel: Option<Arc<AtomicBool>>) -> GrowingReader {
        GrowingReader {
            blob: Arc::clone(self),
            position: 0,
            cancel,
        }
    }

    fn set(&self, state: State) {
        *self.state.lock() = state;
        self.changed();
    }

    fn changed(&self) {
        self.grew.notify_all();
        self.ended.notify_waiters();
    }
}

/// Publishes a download's progress to its [`GrowingBlob`].
#[derive(Debug)]
pub(super) struct BlobWriter<'a> {
    blob: &'a GrowingBlob,
    done: bool,
}

impl BlobWriter<'_> {
    /// The ingest file exists (empty); `file` is a handle on it for the readers.
    pub(super) fn started(&self, file: File) {
        self.blob.set(State::Growing {
            file: Arc::new(file),
            written: 0,
        });
    }

    /// The first `written` bytes are in the file.
    pub(super) fn wrote(&self, written: u64) {
        let mut state = self.blob.state.lock();
        if let State::Growing { written: w, .. } = &mut *state {
            *w = written;
        }
        drop(state);
        self.blob.grew.notify_all();
    }

    /// The download is verified: `size` bytes in the file it started with.
    pub(super) fn complete(mut self, size: u64) {
        let mut state = self.blob.state.lock();
        if let State::Growing { file, .. } = &*state {
            *state = State::Complete {
                file: Arc::clone(file),
                size,
            };
            self.done = true;
        }
        drop(state);
        self.blob.changed();
    }

    /// The blob was already in the store: `file` holds all of it.
    pub(super) fn present(mut self, file: File, size: u64) {
        self.blob.set(State::Complete {
            file: Arc::new(file),
            size,
        });
        self.done = true;
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.blob.set(State::Failed);
        }
    }
}

/// Reads a [`GrowingBlob`] from its start, blocking while the download is behind: use it from
/// a blocking thread.
#[derive(Debug)]
pub struct GrowingReader {
    blob: Arc<GrowingBlob>,
    position: u64,
    cancel: Option<Arc<AtomicBool>>,
}

impl GrowingReader {
    /// The file and how many bytes past the position may be read; 0 at the end of the blob.
    fn wait(&self) -> io::Result<(Arc<File>, u64)> {
        let mut state = self.blob.state.lock();
        loop {
            match &*state {
                State::Growing { file, written } if *written > self.position => {
                    return Ok((Arc::clone(file), written - self.position));
                }
                State::Complete { file, size } => {
                    return Ok((Arc::clone(file), size.saturating_sub(self.position)));
                }
                State::Failed => {
                    return Err(io::Error::other("the blob's download failed"));
                }
                State::Waiting | State::Growing { .. } => {}
            }
            if self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "reading the blob was cancelled",
                ));
            }
            self.blob.grew.wait_for(&mut state, CANCEL_CHECK);
        }
    }
}

impl Read for GrowingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (file, available) = self.wait()?;
        if available == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            // Published bytes that the file does not have: it was truncated under us.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob's file is shorter than its download",
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn temp_file() -> (tempfile::NamedTempFile, File) {
        let file = tempfile::NamedTempFile::new().unwrap();
        let handle = file.reopen().unwrap();
        (file, handle)
    }

    #[test]
    fn a_reader_gets_each_byte_as_it_is_written_and_ends_with_the_blob() {
        let blob = Arc::new(GrowingBlob::default());
        let (mut file, handle) = temp_file();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let mut reader = blob.reader(None);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 64];
                loop {
                    let n = reader.read(&mut buf).unwrap();
                    if n == 0 {
                        return got;
                    }
                    got.extend_from_slice(&buf[..n]);
                    tx.send(got.len()).unwrap();
                }
            })
        };
        let writer = blob.writer();
        writer.started(handle);
        file.write_all(b"first ").unwrap();
        writer.wrote(6);
        // The reader has the first part while the download goes on.
        assert_eq!(rx.recv().unwrap(), 6);
        file.write_all(b"second").unwrap();
        writer.wrote(12);
        assert_eq!(rx.recv().unwrap(), 12);
        writer.complete(12);
        assert_eq!(reader.join().unwrap(), b"first second");
    }

    #[test]
    fn a_dropped_download_fails_its_waiting_reader() {
        let blob = Arc::new(GrowingBlob::default());
        let (mut file, handle) = temp_file();
        let mut reader = blob.reader(None);
        let waiting = std::thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).map(|_| all)
        });
        let writer = blob.writer();
        writer.started(handle);
        file.write_all(b"part").unwrap();
        writer.wrote(4);
        drop(writer);
        let error = waiting.join().unwrap().unwrap_err();
        assert_eq!(error.to_string(), "the blob's download failed");
        assert!(blob.failed());
    }

    #[test]
    fn a_cancelled_reader_stops_waiting_for_a_download_that_never_starts() {
        let blob = Arc::new(GrowingBlob::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let mut reader = blob.reader(Some(Arc::clone(&cancel)));
        let waiting = std::thread::spawn(move || reader.read(&mut [0u8; 8]));
        cancel.store(true, Ordering::Relaxed);
        let error = waiting.join().unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::Interrupted);
        assert!(!blob.failed());
    }

    #[tokio::test]
    async fn waiting_for_the_end_tells_a_verified_download_from_a_failed_one() {
        let verified = GrowingBlob::default();
        let (_file, handle) = temp_file();
        let writer = verified.writer();
        writer.started(handle);
        let (failed_at_end, ()) = tokio::join!(verified.download_failed(), async {
            writer.wrote(0);
            tokio::task::yield_now().await;
            writer.complete(0);
        });
        assert!(!failed_at_end);
        let failed = GrowingBlob::default();
        let writer = failed.writer();
        let (failed_at_end, ()) = tokio::join!(failed.download_failed(), async {
            tokio::task::yield_now().await;
            drop(writer);
        });
        assert!(failed_at_end);
    }

    #[test]
    fn a_present_blob_reads_at_once() {
        let blob = Arc::new(GrowingBlob::default());
        let (mut file, handle) = temp_file();
        file.write_all(b"stored").unwrap();
        blob.writer().present(handle, 6);
        let mut all = String::new();
        blob.reader(None).read_to_string(&mut all).unwrap();
        assert_eq!(all, "stored");
    }
}
