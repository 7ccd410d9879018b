//! Exec: a command in a running container through `runc exec`, with pipes or with a terminal.
//! The output stream ends with exactly one `exit` message.

use std::{process::Stdio, sync::Arc, time::Duration};

use futures::StreamExt as _;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    sync::mpsc,
};

use super::{ExecInputStream, RuntimeError, command::Runc, console::Terminal, pb};

type Output = mpsc::Sender<Result<pb::ExecOutput, tonic::Status>>;

/// How long output may still drain after the command exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

fn stdout(data: Vec<u8>) -> pb::ExecOutput {
    pb::ExecOutput {
        output: Some(pb::exec_output::Output::Stdout(data)),
    }
}

fn stderr(data: Vec<u8>) -> pb::ExecOutput {
    pb::ExecOutput {
        output: Some(pb::exec_output::Output::Stderr(data)),
    }
}

fn exit(code: i32) -> pb::ExecOutput {
    pb::ExecOutput {
        output: Some(pb::exec_output::Output::Exit(pb::ExecExit {
            exit_code: code,
        })),
    }
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    match status {
        Ok(status) => status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(128),
        Err(_) => 128,
    }
}

/// Starts `start.command` in the runc container `container_id`.
pub(crate) fn start(
    runc: &Runc,
    container_id: &str,
    start: pb::ExecStart,
    input: ExecInputStream,
) -> Result<mpsc::Receiver<Result<pb::ExecOutput, tonic::Status>>, RuntimeError> {
    if start.command.is_empty() {
        return Err(RuntimeError::invalid("exec needs a command"));
    }
    let (tx, rx) = mpsc::channel(32);
    let span = tracing::info_span!("exec", group = %start.group_id, container = %start.container, tty = start.tty);
    if start.tty {
        let (terminal, slave) = Terminal::open().map_err(RuntimeError::io("open", "/dev/ptmx"))?;
        let stdio = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(RuntimeError::io("open", "/dev/ptmx"))
        };
        let mut command = runc.command(["exec", "--tty"]);
        command
            .arg(container_id)
            .args(&start.command)
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(stdio(&slave)?)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| RuntimeError::Spawn {
            program: "runc exec".into(),
            source,
        })?;
        // Only runc holds the slave now, so the master reads EOF (EIO) once runc is gone.
        drop(slave);
        tokio::spawn(tracing::Instrument::instrument(
            run_tty(child, terminal, input, tx),
            span,
        ));
    } else {
        let mut command = runc.command(["exec"]);
        command
            .arg(container_id)
            .args(&start.command)
            .stdin(if start.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| RuntimeError::Spawn {
            program: "runc exec".into(),
            source,
        })?;
        tokio::spawn(tracing::Instrument::instrument(
            run_pipes(child, input, tx),
            span,
        ));
    }
    Ok(rx)
}

async fn forward(
    mut reader: impl AsyncRead + Unpin,
    tx: Output,
    wrap: fn(Vec<u8>) -> pb::ExecOutput,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(Ok(wrap(buf[..n].to_vec()))).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn run_pipes(mut child: tokio::process::Child, mut input: ExecInputStream, tx: Output) {
    let mut stdin = child.stdin.take();
    let out = child
        .stdout
        .take()
        .map(|o| tokio::spawn(forward(o, tx.clone(), stdout)));
    let err = child
        .stderr
        .take()
        .map(|e| tokio::spawn(forward(e, tx.clone(), stderr)));
    let feed = tokio::spawn(async move {
        while let Some(Ok(message)) = input.next().await {
            match message.input {
                Some(pb::exec_input::Input::Stdin(data)) => {
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Some(pb::exec_input::Input::CloseStdin(true)) => stdin = None,
                _ => {}
            }
        }
    });
    let status = child.wait().await;
    feed.abort();
    for task in [out, err].into_iter().flatten() {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
    }
    let _ = tx.send(Ok(exit(exit_code(status)))).await;
}

async fn run_tty(
    mut child: tokio::process::Child,
    terminal: Terminal,
    mut input: ExecInputStream,
    tx: Output,
) {
    let terminal = Arc::new(terminal);
    let runc_pid = child.id().and_then(|id| i32::try_from(id).ok());
    let reader = {
        let terminal = Arc::clone(&terminal);
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match terminal.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(Ok(stdout(buf[..n].to_vec()))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    };
    let feed = {
        let terminal = Arc::clone(&terminal);
        tokio::spawn(async move {
            while let Some(Ok(message)) = input.next().await {
                match message.input {
                    Some(pb::exec_input::Input::Stdin(data))
                        if terminal.write_all(&data).await.is_err() =>
                    {
                        return;
                    }
                    Some(pb::exec_input::Input::Resize(size)) => {
                        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
                        if terminal
                            .resize(clamp(size.width), clamp(size.height))
                            .is_ok()
                            && let Some(pid) = runc_pid
                        {
                            // runc resizes the container's terminal on SIGWINCH.
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGWINCH,
                            );
                        }
                    }
                    // End of input on a terminal is its EOF character (^D).
                    Some(pb::exec_input::Input::CloseStdin(true)) => {
                        let _ = terminal.write_all(&[4]).await;
                    }
                    _ => {}
                }
            }
        })
    };
    let status = child.wait().await;
    feed.abort();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, reader).await;
    let _ = tx.send(Ok(exit(exit_code(status)))).await;
}
