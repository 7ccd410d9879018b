//! Container logs: each instance's stdout and stderr, a line at a time, into a file with a
//! timestamp and the stream name per line (`<RFC 3339> <stdout|stderr> <text>`). The previous
//! instance's file is kept beside the current one for `previous`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::{
    fs::File,
    io::{
        AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _,
        BufReader,
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

    /// Starts a new instance's log: the current file becomes the previous one.
    pub(crate) async fn rotate(&self) -> Result<LogSink, RuntimeError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(RuntimeError::io("create", &self.dir))?;
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
            file: Arc::new(Mutex::new(file)),
        })
    }
}

/// Where one instance's output goes; clones share the file, so lines of stdout and stderr
/// interleave whole.
#[derive(Debug, Clone)]
pub(crate) struct LogSink {
    file: Arc<Mutex<File>>,
}

impl LogSink {
    /// Appends one line (without its newline).
    pub(crate) async fn line(&self, stream: &str, text: &[u8]) {
        let mut record = format!("{} {stream} ", jiff::Timestamp::now()).into_bytes();
        record.extend_from_slice(text);
        record.push(b'\n');
        let mut file = self.file.lock().await;
        if let Err(error) = file.write_all(&record).await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "cannot write a log line"
            );
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
    let mut content = Vec::new();
    file.read_to_end(&mut content)
        .await
        .map_err(RuntimeError::io("read", &path))?;
    let render = Render {
        since_ms: request.since_ms,
        timestamps: request.timestamps,
    };
    // Only whole lines now; a partial last line is read again while following.
    let whole = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let mut lines: Vec<&[u8]> = content[..whole]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if request.tail_lines > 0 {
        let keep = usize::try_from(request.tail_lines).unwrap_or(usize::MAX);
        lines.drain(..lines.len().saturating_sub(keep));
    }
    let mut first = Vec::new();
    for line in lines {
        render.render(line, &mut first);
    }
    let mut budget = Budget((request.limit_bytes > 0).then_some(request.limit_bytes));
    let more = budget.take(&mut first);
    let follow = request.follow && !request.previous && more;
    let offset = whole as u64;
    let span = tracing::info_span!("container_logs", group = %request.group_id, container = %request.container);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            for chunk in first.chunks(CHUNK) {
                if tx
                    .send(Ok(pb::LogChunk {
                        data: chunk.to_vec(),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if follow {
                follow_file(file, offset, render, budget, alive, tx).await;
            }
        },
        span,
    ));
    Ok(rx)
}

async fn follow_file(
    mut file: File,
    mut offset: u64,
    render: Render,
    mut budget: Budget,
    alive: StillRunning,
    tx: mpsc::Sender<Result<pb::LogChunk, tonic::Status>>,
) {
    let mut pending = Vec::new();
    loop {
        // Ask before reading, so the lines written before the end are still sent.
        let running = alive();
        if file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
            return;
        }
        let mut fresh = Vec::new();
        if file.read_to_end(&mut fresh).await.is_err() {
            return;
        }
        offset += fresh.len() as u64;
        pending.extend_from_slice(&fresh);
        if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            let mut out = Vec::new();
            for line in pending[..end]
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
            {
                render.render(line, &mut out);
            }
            pending.drain(..=end);
            let more = budget.take(&mut out);
            if !out.is_empty() && tx.send(Ok(pb::LogChunk { data: out })).await.is_err() {
                return;
            }
            if !more {
                return;
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
}
