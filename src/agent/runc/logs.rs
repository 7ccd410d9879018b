//! Container logs: each instance's stdout and stderr, a line at a time, into a file with a
//! timestamp and the stream name per line (`<RFC 3339> <stdout|stderr> <text>`). The previous
//! instance's file is kept beside the current one for `previous`.
//!
//! Like the kubelet's (`containerLogMaxSize` 10 MiB, `containerLogMaxFiles` 5), a file is
//! rotated by size: at [`MAX_FILE_BYTES`] `current.log` becomes `current.log.1` (older ones
//! shift up, the oldest of [`MAX_FILES`] is dropped), and reads, as the kubelet's, see the
//! current file only. A tail is found by reading backwards from the end in [`TAIL_BLOCK`]s,
//! and everything is sent in bounded chunks, so no read holds a whole file in memory.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{
    fs::File,
    io::{
        AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncSeek, AsyncSeekExt as _,
        AsyncWriteExt as _, BufReader,
    },
    sync::{Mutex, mpsc},
};

use super::{RuntimeError, pb};

/// Longest line kept whole; longer output is split into lines of this size.
const MAX_LINE: usize = 16 * 1024;
/// Largest chunk sent to a reader.
const CHUNK: usize = 32 * 1024;
/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(150);
/// A log file is rotated once it would grow past this (the kubelet's `containerLogMaxSize`).
pub(crate) const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Files kept per instance, the current one included (the kubelet's `containerLogMaxFiles`).
pub(crate) const MAX_FILES: usize = 5;
/// The block a tail is looked for in, backwards from the end of the file.
const TAIL_BLOCK: usize = 64 * 1024;

/// The log files of one container.
#[derive(Debug, Clone)]
pub(crate) struct LogFiles {
    dir: PathBuf,
}

impl LogFiles {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub(crate) fn current(&self) -> PathBuf {
        self.dir.join("current.log")
    }

    pub(crate) fn previous(&self) -> PathBuf {
        self.dir.join("previous.log")
    }

    /// The `n`-th rotated file of the current instance (`current.log.<n>`, 1 the newest).
    fn rotated(&self, n: usize) -> PathBuf {
        self.dir.join(format!("current.log.{n}"))
    }

    /// Starts a new instance's log: the current file becomes the previous one, and the
    /// rotated files of the instance before go.
    pub(crate) async fn rotate(&self) -> Result<LogSink, RuntimeError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(RuntimeError::io("create", &self.dir))?;
        for n in 1..MAX_FILES {
            let _ = tokio::fs::remove_file(self.rotated(n)).await;
        }
        let current = self.current();
        if tokio::fs::try_exists(&current).await.unwrap_or(false) {
            tokio::fs::rename(&current, self.previous())
                .await
                .map_err(RuntimeError::io("rotate", &current))?;
        }
        let file = File::create(&current)
            .await
            .map_err(RuntimeError::io("create", &current))?;
        Ok(LogSink {
            inner: Arc::new(Mutex::new(SinkFile {
                files: self.clone(),
                file,
                size: 0,
            })),
        })
    }
}

/// Where one instance's output goes; clones share the file, so lines of stdout and stderr
/// interleave whole.
#[derive(Debug, Clone)]
pub(crate) struct LogSink {
    inner: Arc<Mutex<SinkFile>>,
}

#[derive(Debug)]
struct SinkFile {
    files: LogFiles,
    file: File,
    /// Bytes in `file`.
    size: u64,
}

impl SinkFile {
    /// Shifts `current.log` to `current.log.1` (and so on, dropping the oldest) and starts an
    /// empty `current.log`.
    async fn rotate_by_size(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        let _ = tokio::fs::remove_file(self.files.rotated(MAX_FILES - 1)).await;
        for n in (1..MAX_FILES - 1).rev() {
            let _ = tokio::fs::rename(self.files.rotated(n), self.files.rotated(n + 1)).await;
        }
        tokio::fs::rename(self.files.current(), self.files.rotated(1)).await?;
        self.file = File::create(self.files.current()).await?;
        self.size = 0;
        Ok(())
    }
}

impl LogSink {
    /// Appends one line (without its newline), rotating the file first when the line would
    /// take it past [`MAX_FILE_BYTES`].
    pub(crate) async fn line(&self, stream: &str, text: &[u8]) {
        let mut record = format!("{} {stream} ", jiff::Timestamp::now()).into_bytes();
        record.extend_from_slice(text);
        record.push(b'\n');
        let mut sink = self.inner.lock().await;
        if sink.size > 0
            && sink.size + record.len() as u64 > MAX_FILE_BYTES
            && let Err(error) = sink.rotate_by_size().await
        {
            // Tried again after another MAX_FILE_BYTES, not at every line.
            sink.size = 0;
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot rotate a log file"
            );
        }
        match sink.file.write_all(&record).await {
            Ok(()) => sink.size += record.len() as u64,
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot write a log line"
            ),
        }
    }

    /// Copies `reader` into the log, line by line, until it closes.
    pub(crate) async fn pump(self, stream: &'static str, reader: impl AsyncRead + Unpin) {
        let mut reader = BufReader::new(reader);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buffer)
                .await;
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if buffer.last() == Some(&b'\n') {
                        buffer.pop();
                    }
                    self.line(stream, &buffer).await;
                }
            }
        }
    }
}

/// One parsed line of a log file.
struct Line<'a> {
    at_ms: i64,
    timestamp: &'a str,
    text: &'a [u8],
}

fn parse_line(raw: &[u8]) -> Option<Line<'_>> {
    let space = raw.iter().position(|b| *b == b' ')?;
    let timestamp = std::str::from_utf8(&raw[..space]).ok()?;
    let at_ms = timestamp.parse::<jiff::Timestamp>().ok()?.as_millisecond();
    let rest = &raw[space + 1..];
    let stream_end = rest.iter().position(|b| *b == b' ')?;
    Some(Line {
        at_ms,
        timestamp,
        text: &rest[stream_end + 1..],
    })
}

/// The options of a read that apply line by line.
#[derive(Debug, Clone, Copy)]
struct Render {
    since_ms: i64,
    timestamps: bool,
}

impl Render {
    fn render(self, raw: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(line) = parse_line(raw) else {
            return false;
        };
        if self.since_ms > 0 && line.at_ms < self.since_ms {
            return false;
        }
        if self.timestamps {
            out.extend_from_slice(line.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.text);
        out.push(b'\n');
        true
    }
}

/// A byte budget (`limit_bytes`); `None` for no limit.
struct Budget(Option<u64>);

impl Budget {
    /// Cuts `data` to what is left; false once the budget is spent.
    fn take(&mut self, data: &mut Vec<u8>) -> bool {
        let Some(left) = self.0.as_mut() else {
            return true;
        };
        let keep = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
        data.truncate(keep);
        *left -= keep as u64;
        *left > 0
    }
}

/// Whether the instance being followed is still running.
pub(crate) type StillRunning = Box<dyn Fn() -> bool + Send + Sync>;

/// Where the last `lines` whole lines of the first `len` bytes of `reader` start: newlines
/// are counted backwards from `len` one [`TAIL_BLOCK`] at a time (a last line without its
/// newline is not a line yet), so a tail reads about what it returns, not the whole file.
async fn tail_start<R: AsyncRead + AsyncSeek + Unpin>(
    reader: &mut R,
    len: u64,
    lines: u64,
) -> std::io::Result<u64> {
    let mut block = vec![0u8; TAIL_BLOCK];
    let mut pos = len;
    let mut last_end_seen = false;
    let mut counted = 0u64;
    while pos > 0 {
        let size = usize::try_from(pos.min(TAIL_BLOCK as u64)).unwrap_or(TAIL_BLOCK);
        pos -= size as u64;
        reader.seek(std::io::SeekFrom::Start(pos)).await?;
        reader.read_exact(&mut block[..size]).await?;
        for (i, byte) in block[..size].iter().enumerate().rev() {
            if *byte != b'\n' {
                continue;
            }
            if !last_end_seen {
                // The end of the last whole line.
                last_end_seen = true;
                continue;
            }
            counted += 1;
            if counted == lines {
                return Ok(pos + i as u64 + 1);
            }
        }
    }
    Ok(0)
}

/// Whole lines rendered from what a reader gives, a chunk at a time; a partial last line is
/// kept for the next chunk.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Takes `fresh` bytes and renders the lines they complete.
    fn feed(&mut self, fresh: &[u8], render: Render) -> Vec<u8> {
        self.pending.extend_from_slice(fresh);
        let mut out = Vec::new();
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            for line in self.pending[..end]
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
            {
                render.render(line, &mut out);
            }
            self.pending.drain(..=end);
        }
        out
    }
}

/// Sends the lines of `reader` from `from` to `to` in chunks of at most [`CHUNK`] bytes read;
/// `Ok(false)` when the budget is spent or the receiver is gone. A partial last line stays in
/// `lines`.
async fn send_range<R: AsyncRead + AsyncSeek + Unpin>(
    reader: &mut R,
    from: u64,
    to: u64,
    render: Render,
    lines: &mut Lines,
    budget: &mut Budget,
    tx: &mpsc::Sender<Result<pb::LogChunk, tonic::Status>>,
) -> std::io::Result<bool> {
    reader.seek(std::io::SeekFrom::Start(from)).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let want = usize::try_from((to - at).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = reader.read(&mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        at += n as u64;
        let mut out = lines.feed(&buf[..n], render);
        let more = budget.take(&mut out);
        if !out.is_empty() && tx.send(Ok(pb::LogChunk { data: out })).await.is_err() {
            return Ok(false);
        }
        if !more {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Streams a container's log per `request`. `alive` says whether to keep following (the
/// instance still runs and the group exists); it is only asked when `request.follow`.
pub(crate) async fn read(
    files: &LogFiles,
    request: &pb::LogsRequest,
    alive: StillRunning,
) -> Result<mpsc::Receiver<Result<pb::LogChunk, tonic::Status>>, RuntimeError> {
    let path = if request.previous {
        files.previous()
    } else {
        files.current()
    };
    let (tx, rx) = mpsc::channel(8);
    let mut file = match File::open(&path).await {
        Ok(file) => file,
        // No instance yet (or no previous one): an empty log.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(rx),
        Err(error) => return Err(RuntimeError::io("open", path)(error)),
    };
    let len = file
        .metadata()
        .await
        .map_err(RuntimeError::io("inspect", &path))?
        .len();
    let start = if request.tail_lines > 0 {
        tail_start(&mut file, len, u64::from(request.tail_lines))
            .await
            .map_err(RuntimeError::io("read", &path))?
    } else {
        0
    };
    let render = Render {
        since_ms: request.since_ms,
        timestamps: request.timestamps,
    };
    let follow = request.follow && !request.previous;
    let mut budget = Budget((request.limit_bytes > 0).then_some(request.limit_bytes));
    let span = tracing::info_span!("container_logs", group = %request.group_id, container = %request.container);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let mut lines = Lines::default();
            let sent =
                send_range(&mut file, start, len, render, &mut lines, &mut budget, &tx).await;
            if follow && sent.unwrap_or(false) {
                // The partial last line is read again while following.
                let offset = len - lines.pending.len() as u64;
                follow_file(file, path, offset, render, budget, alive, tx).await;
            }
        },
        span,
    ));
    Ok(rx)
}

/// Follows the log from `offset` while the instance runs, reading at most [`CHUNK`] bytes a
/// pass. When the file was rotated away (the current path names another file), the rest of
/// the old one is read, then the new one from its start.
async fn follow_file(
    mut file: File,
    path: PathBuf,
    mut offset: u64,
    render: Render,
    mut budget: Budget,
    alive: StillRunning,
    tx: mpsc::Sender<Result<pb::LogChunk, tonic::Status>>,
) {
    let mut lines = Lines::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Ask before reading, so the lines written before the end are still sent; likewise,
        // look for a rotation before reading the old file to its end.
        let running = alive();
        let rotated = is_rotated(&file, &path).await;
        if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
            return;
        }
        let Ok(n) = file.read(&mut buf).await else {
            return;
        };
        offset += n as u64;
        let mut out = lines.feed(&buf[..n], render);
        let more = budget.take(&mut out);
        if !out.is_empty() && tx.send(Ok(pb::LogChunk { data: out })).await.is_err() {
            return;
        }
        if !more {
            return;
        }
        if n == CHUNK {
            // More may be there already.
            continue;
        }
        if rotated {
            match File::open(&path).await {
                Ok(next) => {
                    file = next;
                    offset = 0;
                    lines = Lines::default();
                    continue;
                }
                Err(_) => return,
            }
        }
        if !running {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = tx.closed() => return,
        }
    }
}

/// Whether `path` now names another file than `file` (a rotation renamed it away).
async fn is_rotated(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata().await, tokio::fs::metadata(path).await) {
        (Ok(open), Ok(now)) => (open.dev(), open.ino()) != (now.dev(), now.ino()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_render_with_and_without_timestamps() {
        let raw = b"2026-01-02T03:04:05.000000006Z stdout hello world";
        let mut out = Vec::new();
        let render = Render {
            since_ms: 0,
            timestamps: false,
        };
        assert!(render.render(raw, &mut out));
        assert_eq!(out, b"hello world\n");
        out.clear();
        let render = Render {
            since_ms: 0,
            timestamps: true,
        };
        assert!(render.render(raw, &mut out));
        assert_eq!(out, b"2026-01-02T03:04:05.000000006Z hello world\n");
        let late = Render {
            since_ms: i64::MAX,
            timestamps: false,
        };
        assert!(!late.render(raw, &mut Vec::new()));
    }

    #[test]
    fn budget_cuts_and_ends() {
        let mut budget = Budget(Some(5));
        let mut data = b"abc".to_vec();
        assert!(budget.take(&mut data));
        let mut data = b"defg".to_vec();
        assert!(!budget.take(&mut data));
        assert_eq!(data, b"de");
    }

    #[tokio::test]
    async fn files_rotate_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(dir.path().join("logs"));
        let sink = files.rotate().await.unwrap();
        sink.line("stdout", b"one").await;
        let sink = files.rotate().await.unwrap();
        sink.line("stderr", b"two").await;
        sink.line("stdout", b"three").await;
        let collect = |request: pb::LogsRequest| {
            let files = files.clone();
            async move {
                let mut rx = read(&files, &request, Box::new(|| false)).await.unwrap();
                let mut all = Vec::new();
                while let Some(Ok(chunk)) = rx.recv().await {
                    all.extend(chunk.data);
                }
                String::from_utf8(all).unwrap()
            }
        };
        assert_eq!(collect(pb::LogsRequest::default()).await, "two\nthree\n");
        assert_eq!(
            collect(pb::LogsRequest {
                tail_lines: 1,
                ..Default::default()
            })
            .await,
            "three\n"
        );
        assert_eq!(
            collect(pb::LogsRequest {
                previous: true,
                ..Default::default()
            })
            .await,
            "one\n"
        );
        assert_eq!(
            collect(pb::LogsRequest {
                limit_bytes: 5,
                ..Default::default()
            })
            .await,
            "two\nt"
        );
    }

    #[tokio::test]
    async fn a_log_rotates_by_size_and_keeps_five_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(dir.path().join("logs"));
        let sink = files.rotate().await.unwrap();
        let line = vec![b'x'; 16 * 1024];
        // 51 MiB: past five files of 10 MiB.
        for _ in 0..(51 * 64) {
            sink.line("stdout", &line).await;
        }
        let current = std::fs::metadata(files.current()).unwrap().len();
        assert!(current <= MAX_FILE_BYTES, "{current}");
        let names: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), MAX_FILES, "{names:?}");
        for name in &names {
            let len = std::fs::metadata(dir.path().join("logs").join(name))
                .unwrap()
                .len();
            assert!(len <= MAX_FILE_BYTES, "{name}: {len}");
        }
        // A new instance starts clean: the last file is `previous`, the rotated ones go.
        let _sink = files.rotate().await.unwrap();
        let left = std::fs::read_dir(dir.path().join("logs")).unwrap().count();
        assert_eq!(left, 2);
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
            let n = buf.filled().len() - before;
            self.read += n as u64;
            polled
        }
    }

    impl<R: AsyncSeek + Unpin> AsyncSeek for Counting<R> {
        fn start_seek(
            mut self: std::pin::Pin<&mut Self>,
            position: std::io::SeekFrom,
        ) -> std::io::Result<()> {
            std::pin::Pin::new(&mut self.inner).start_seek(position)
        }

        fn poll_complete(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<u64>> {
            std::pin::Pin::new(&mut self.inner).poll_complete(cx)
        }
    }

    #[tokio::test]
    async fn a_tail_reads_from_the_end_only() {
        let mut log = Vec::new();
        for i in 0..100_000 {
            log.extend_from_slice(
                format!("2026-01-02T03:04:05Z stdout line {i:06} of a long log\n").as_bytes(),
            );
        }
        log.extend_from_slice(b"2026-01-02T03:04:05Z stdout partial");
        let len = log.len() as u64;
        assert!(len > 4 << 20);
        let mut reader = Counting {
            inner: std::io::Cursor::new(log),
            read: 0,
        };
        let start = tail_start(&mut reader, len, 3).await.unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        let render = Render {
            since_ms: 0,
            timestamps: false,
        };
        let mut lines = Lines::default();
        let sent = send_range(
            &mut reader,
            start,
            len,
            render,
            &mut lines,
            &mut Budget(None),
            &tx,
        )
        .await
        .unwrap();
        assert!(sent);
        drop(tx);
        let mut all = Vec::new();
        while let Some(Ok(chunk)) = rx.recv().await {
            all.extend(chunk.data);
        }
        assert_eq!(
            String::from_utf8(all).unwrap(),
            "line 099997 of a long log\nline 099998 of a long log\nline 099999 of a long log\n"
        );
        assert_eq!(lines.pending, b"2026-01-02T03:04:05Z stdout partial");
        assert!(
            reader.read <= 2 * TAIL_BLOCK as u64,
            "read {} bytes of {len}",
            reader.read
        );
        // Asking for more lines than there are starts at the beginning.
        let mut small = std::io::Cursor::new(b"a\nb\nc\n".to_vec());
        assert_eq!(tail_start(&mut small, 6, 2).await.unwrap(), 2);
        assert_eq!(tail_start(&mut small, 6, 9).await.unwrap(), 0);
    }
}
