//! Exec: a command in a running container through `runc exec`, with pipes or with a terminal.
//! The output stream ends with exactly one `exit` message.

use std::{path::Path, process::Stdio, sync::Arc, time::Duration};

use futures::StreamExt as _;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    sync::mpsc,
};

use super::{ExecInputStream, RuntimeError, command::Runc, console::Terminal, pb};

type Output = mpsc::Sender<Result<pb::ExecOutput, tonic::Status>>;

/// How long to wait for runc to hand over the terminal.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(20);
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

/// Starts `start.command` in the runc container `container_id`; `socket_dir` holds the
/// console socket of a tty exec.
pub(crate) async fn start(
    runc: &Runc,
    container_id: &str,
    socket_dir: &Path,
    start: pb::ExecStart,
    input: ExecInputStream,
) -> Result<mpsc::Receiver<Result<pb::ExecOutput, tonic::Status>>, RuntimeError> {
    if start.command.is_empty() {
        return Err(RuntimeError::invalid("exec needs a command"));
    }
    let (tx, rx) = mpsc::channel(32);
    let span = tracing::info_span!("exec", group = %start.group_id, container = %start.container, tty = start.tty);
    if start.tty {
        let socket = socket_dir.join(format!(
            "exec-{}.sock",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(RuntimeError::io("listen on", &socket))?;
        let mut command = runc.command(["exec", "--tty", "--console-socket"]);
        command
            .arg(&socket)
            .arg(container_id)
            .args(&start.command)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| RuntimeError::Spawn {
            program: "runc exec".into(),
            source,
        });
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_file(&socket);
                return Err(error);
            }
        };
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                run_tty(child, listener, input, tx, container_id_owned(&start)).await;
                let _ = tokio::fs::remove_file(&socket).await;
            },
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

fn container_id_owned(start: &pb::ExecStart) -> String {
    format!("{}/{}", start.group_id, start.container)
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
    listener: tokio::net::UnixListener,
    mut input: ExecInputStream,
    tx: Output,
    what: String,
) {
    let errors = child
        .stderr
        .take()
        .map(|e| tokio::spawn(forward(e, tx.clone(), stderr)));
    let accepted = tokio::select! {
        accepted = tokio::time::timeout(CONSOLE_TIMEOUT, listener.accept()) => accepted,
        status = child.wait() => {
            // runc ended before handing over a terminal: its stderr says why.
            if let Some(task) = errors { let _ = task.await; }
            let _ = tx.send(Ok(exit(exit_code(status)))).await;
            return;
        }
    };
    let terminal = match accepted {
        Ok(Ok((stream, _))) => receive(stream).await,
        Ok(Err(error)) => Err(error),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no terminal from runc",
        )),
    };
    let terminal = match terminal {
        Ok(terminal) => Arc::new(terminal),
        Err(error) => {
            tracing::warn!(error = &error as &dyn std::error::Error, exec = %what, "no terminal for exec");
            let _ = child.start_kill();
            let status = child.wait().await;
            let _ = tx
                .send(Ok(stderr(
                    format!("cannot set up the terminal: {error}\n").into_bytes(),
                )))
                .await;
            let _ = tx.send(Ok(exit(exit_code(status)))).await;
            return;
        }
    };
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
                    Some(pb::exec_input::Input::Stdin(data)) => {
                        if terminal.write_all(&data).await.is_err() {
                            return;
                        }
                    }
                    Some(pb::exec_input::Input::Resize(size)) => {
                        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
                        let _ = terminal.resize(clamp(size.width), clamp(size.height));
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
    if let Some(task) = errors {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, task).await;
    }
    let _ = tx.send(Ok(exit(exit_code(status)))).await;
}

async fn receive(stream: tokio::net::UnixStream) -> std::io::Result<Terminal> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CONSOLE_TIMEOUT))?;
    let master = tokio::task::spawn_blocking(move || super::console::receive_master(&stream))
        .await
        .map_err(std::io::Error::other)??;
    Terminal::new(master)
}
