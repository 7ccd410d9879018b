//! `/exec/{namespace}/{pod}/{container}`: Kubernetes remotecommand over SPDY/3.1, bridged to
//! an ECI exec session.
//!
//! Expected flow (as the API server drives a kubelet): an HTTP/1.1 upgrade to `SPDY/3.1`
//! offering `X-Stream-Protocol-Version`s → 101 with the chosen one → the client opens one
//! SPDY stream per channel (`streamtype`: `error`, and `stdin`/`stdout`/`stderr`/`resize` as
//! the query asks), each answered with SYN_REPLY, within the creation timeout →
//! `ExecContainerCommand` → the cloud's WebSocket carries stdin one way and output the other
//! → the exit code goes back on the `error` stream as a `metav1.Status` (v4/v5:
//! `NonZeroExitCode` with an `ExitCode` cause, which kubectl turns into its own exit code).
//!
//! Guarantees: the session ends when either side goes away or nothing moves for the idle
//! timeout; the cloud session is closed with it.
//!
//! Caveats: the cloud's exec has one output channel, so stderr arrives on stdout; ECI has no
//! documented way to resize a terminal, so resize messages are read and not forwarded; ECI
//! commands are at most 20 arguments of 256 characters.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tracing::{Instrument as _, debug, info};

use super::{
    ApiError, Ctx,
    cloud_exec::{self, Output},
    lookup,
    spdy::{self, Event, Frame},
};
use crate::eci::ExecContainerCommand;

/// Protocols this side speaks, preferred first.
const PROTOCOLS: [&str; 4] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
];
/// Limit on the ExecContainerCommand call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a finished session waits for the client to hang up.
const LINGER: Duration = Duration::from_secs(5);

/// What the client asked for (query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// argv.
    pub command: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
    /// A terminal.
    pub tty: bool,
}

fn truthy(value: &str) -> bool {
    matches!(value, "1" | "true" | "True")
}

/// Parses the exec query (`command` repeated; `input`/`stdin`, `output`/`stdout`,
/// `error`/`stderr`, `tty`).
///
/// # Errors
/// 400 for a malformed query, no stream at all, or tty together with stderr.
pub fn parse_query(raw: &str) -> Result<StreamOptions, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|_| ApiError::bad_request("the query string is not well formed"))?;
    let mut options = StreamOptions::default();
    for (key, value) in pairs {
        match key.as_str() {
            "command" => options.command.push(value),
            "input" | "stdin" => options.stdin = truthy(&value),
            "output" | "stdout" => options.stdout = truthy(&value),
            "error" | "stderr" => options.stderr = truthy(&value),
            "tty" => options.tty = truthy(&value),
            _ => {}
        }
    }
    if !(options.stdin || options.stdout || options.stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    if options.tty && options.stderr {
        return Err(ApiError::bad_request(
            "stderr cannot be used with a tty: the terminal merges it into stdout",
        ));
    }
    Ok(options)
}

/// The protocol to speak: the first of ours the client offers.
///
/// # Errors
/// 403-free 400 when the client offers none of ours.
pub fn negotiate(headers: &HeaderMap) -> Result<&'static str, ApiError> {
    let offered: Vec<String> = headers
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .collect();
    PROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "none of the offered stream protocols {offered:?} is supported; this node speaks {}",
                PROTOCOLS.join(", ")
            ))
        })
}

fn wants_spdy(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"))
}

/// The ECI limits on a command.
fn check_command(command: &[String]) -> Result<(), ApiError> {
    if command.is_empty() {
        return Err(ApiError::bad_request("exec needs a command"));
    }
    if command.len() > 20 || command.iter().any(|c| c.chars().count() > 256) {
        return Err(ApiError::bad_request(
            "ECI runs commands of at most 20 arguments of at most 256 characters each",
        ));
    }
    Ok(())
}

/// Serves `/exec`: checks everything answerable before the upgrade, answers 101, and runs the
/// session on the upgraded connection.
pub async fn serve_exec(
    ctx: Arc<Ctx>,
    namespace: String,
    pod: String,
    container: String,
    mut request: Request,
) -> Result<Response, ApiError> {
    let options = parse_query(request.uri().query().unwrap_or_default())?;
    check_command(&options.command)?;
    if !wants_spdy(request.headers()) {
        return Err(ApiError::bad_request(
            "exec needs an HTTP/1.1 upgrade to SPDY/3.1 (Upgrade: SPDY/3.1)",
        ));
    }
    let protocol = negotiate(request.headers())?;
    let target = lookup::find(&ctx.kube, &ctx.node, &namespace, &pod, Some(&container)).await?;
    let upgrade = hyper::upgrade::on(&mut request);
    let span = tracing::info_span!("exec", pod.namespace = %namespace, pod.name = %pod, container = %container, protocol);
    tokio::spawn(
        async move {
            match upgrade.await {
                Ok(upgraded) => {
                    let session = spdy::Session::start(TokioIo::new(upgraded));
                    run(ctx, session, target.group_id, container, options, protocol).await;
                }
                Err(error) => debug!(error = %error, "the upgrade did not complete"),
            }
        }
        .instrument(span),
    );
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    headers.insert(
        "X-Stream-Protocol-Version",
        HeaderValue::from_static(protocol),
    );
    Ok(response)
}

/// The streams of a session, by type.
#[derive(Debug, Default)]
struct Streams {
    ids: HashMap<String, u32>,
    stdin_early: Vec<u8>,
    stdin_done: bool,
    highest: u32,
}

impl Streams {
    fn get(&self, kind: &str) -> Option<u32> {
        self.ids.get(kind).copied()
    }

    fn complete(&self, options: &StreamOptions, protocol: &str) -> bool {
        let resize = options.tty && protocol != "v2.channel.k8s.io";
        let need = [
            ("error", true),
            ("stdin", options.stdin),
            ("stdout", options.stdout),
            ("stderr", options.stderr),
            ("resize", resize),
        ];
        need.iter()
            .all(|(kind, wanted)| !wanted || self.ids.contains_key(*kind))
    }
}

/// Waits for the client's streams; `None` when it went away or took too long.
async fn collect_streams(
    session: &mut spdy::Session,
    options: &StreamOptions,
    protocol: &str,
    timeout: Duration,
) -> Option<Streams> {
    let mut streams = Streams::default();
    let deadline = tokio::time::Instant::now() + timeout;
    while !streams.complete(options, protocol) {
        let event = tokio::time::timeout_at(deadline, session.events.recv())
            .await
            .ok()??;
        match event {
            Event::Open { id, headers } => {
                let kind = headers
                    .iter()
                    .find(|(k, _)| k == "streamtype")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                streams.highest = streams.highest.max(id);
                if !session.writer.reply(id).await {
                    return None;
                }
                streams.ids.insert(kind, id);
            }
            Event::Data { id, data } if Some(id) == streams.get("stdin") => {
                streams.stdin_early.extend(data);
            }
            Event::Fin { id } if Some(id) == streams.get("stdin") => streams.stdin_done = true,
            Event::GoAway => return None,
            _ => {}
        }
    }
    Some(streams)
}

/// The `metav1.Status` a v4/v5 client reads on the error stream.
fn status_json(exit: Option<i32>, command: &[String]) -> Vec<u8> {
    let value = match exit {
        Some(0) => json!({"metadata": {}, "status": "Success"}),
        Some(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        None => json!({
            "metadata": {},
            "status": "Failure",
            "message": "the ECI exec session ended without an exit code",
            "reason": "InternalError",
            "code": 500,
        }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// An error written on the error stream before the command ran.
fn failure_json(protocol: &str, message: &str) -> Vec<u8> {
    if protocol == "v2.channel.k8s.io" || protocol == "v3.channel.k8s.io" {
        return message.as_bytes().to_vec();
    }
    serde_json::to_vec(&json!({
        "metadata": {}, "status": "Failure", "message": message,
        "reason": "InternalError", "code": 500,
    }))
    .unwrap_or_default()
}

async fn finish(session: &mut spdy::Session, streams: &Streams, error_body: Option<Vec<u8>>) {
    let writer = &session.writer;
    for kind in ["stdout", "stderr"] {
        if let Some(id) = streams.get(kind) {
            writer.fin(id).await;
        }
    }
    if let Some(id) = streams.get("error") {
        if let Some(body) = error_body
            && !body.is_empty()
        {
            writer.data(id, &body).await;
        }
        writer.fin(id).await;
    }
    writer
        .send(Frame::GoAway {
            last_stream: streams.highest,
            status: 0,
        })
        .await;
    // Let the client read everything and hang up; then the connection is dropped anyway.
    let _ = tokio::time::timeout(LINGER, async {
        while session.events.recv().await.is_some() {}
    })
    .await;
}

async fn run(
    ctx: Arc<Ctx>,
    mut session: spdy::Session,
    group: String,
    container: String,
    options: StreamOptions,
    protocol: &'static str,
) {
    let Some(streams) = collect_streams(
        &mut session,
        &options,
        protocol,
        ctx.stream_creation_timeout,
    )
    .await
    else {
        debug!("the client did not open its streams in time");
        return;
    };
    let request = ExecContainerCommand {
        container_group_id: group,
        container_name: container,
        command: options.command.clone(),
        tty: Some(options.tty),
        stdin: Some(options.stdin),
        sync: None,
    };
    let url =
        match tokio::time::timeout(CALL_TIMEOUT, ctx.eci.exec_container_command(&request)).await {
            Ok(Ok(answer)) if !answer.web_socket_uri.is_empty() => answer.web_socket_uri,
            Ok(Ok(_)) => {
                let body = failure_json(protocol, "ECI returned no exec URL");
                return finish(&mut session, &streams, Some(body)).await;
            }
            Ok(Err(error)) => {
                let body = failure_json(protocol, &format!("ExecContainerCommand failed: {error}"));
                return finish(&mut session, &streams, Some(body)).await;
            }
            Err(_) => {
                let body = failure_json(protocol, "ExecContainerCommand timed out");
                return finish(&mut session, &streams, Some(body)).await;
            }
        };
    let (mut input, mut output) = match cloud_exec::connect(&url).await {
        Ok(halves) => halves,
        Err(error) => {
            let body = failure_json(
                protocol,
                &format!("cannot open the ECI exec session: {error}"),
            );
            return finish(&mut session, &streams, Some(body)).await;
        }
    };
    info!("exec session started");
    if !streams.stdin_early.is_empty() {
        input.stdin(streams.stdin_early.clone()).await;
    }
    let mut stdin_open = options.stdin && !streams.stdin_done;
    if !stdin_open {
        input.close_stdin().await;
    }
    let out_stream = streams.get("stdout").or_else(|| streams.get("stderr"));
    let ended = loop {
        let step = tokio::time::timeout(ctx.stream_idle_timeout, async {
            tokio::select! {
                event = session.events.recv() => Step::Client(event),
                out = output.next() => Step::Cloud(out),
            }
        })
        .await;
        match step {
            Err(_) => {
                debug!(idle = ?ctx.stream_idle_timeout, "exec session idle; closing");
                break Ended::Dropped("idle timeout");
            }
            Ok(Step::Client(None | Some(Event::GoAway))) => {
                debug!("the client went away");
                break Ended::Dropped("the client went away");
            }
            Ok(Step::Client(Some(Event::Data { id, data }))) => {
                if Some(id) == streams.get("stdin") && stdin_open {
                    if !input.stdin(data).await {
                        break Ended::Dropped("the cloud session refused stdin");
                    }
                } else if Some(id) == streams.get("resize") {
                    debug!(size = %String::from_utf8_lossy(&data), "terminal resize (ECI has no resize call; not forwarded)");
                }
            }
            Ok(Step::Client(Some(Event::Fin { id }))) => {
                if Some(id) == streams.get("stdin") && stdin_open {
                    stdin_open = false;
                    input.close_stdin().await;
                }
            }
            Ok(Step::Client(Some(Event::Reset { id }))) => {
                if Some(id) == streams.get("error") || Some(id) == out_stream {
                    break Ended::Dropped("the client reset a stream");
                }
            }
            Ok(Step::Client(Some(Event::Open { id, .. }))) => {
                session.writer.reply(id).await;
            }
            Ok(Step::Cloud(Output::Bytes(bytes))) => {
                if let Some(id) = out_stream
                    && !session.writer.data(id, &bytes).await
                {
                    break Ended::Dropped("the client's output stream is gone");
                }
            }
            Ok(Step::Cloud(Output::Exit(code))) => break Ended::Exit(code),
            Ok(Step::Cloud(Output::Closed)) => {
                break Ended::Dropped("the cloud closed the session");
            }
            Ok(Step::Cloud(Output::Failed(message))) => break Ended::Failed(message),
        }
    };
    input.close().await;
    let body = match ended {
        Ended::Failed(message) => {
            info!(error = %message, "exec session failed");
            // ECI's own words, as a kubelet passes on its runtime's.
            Some(failure_json(
                protocol,
                &format!("the ECI exec session failed: {message}"),
            ))
        }
        Ended::Exit(code) => {
            info!(exit_code = code, "exec session ended");
            exit_body(protocol, Some(code), &options.command)
        }
        Ended::Dropped(by) => {
            // An exec that ends without an exit code must say which side let go.
            info!(ended_by = by, "exec session ended without an exit code");
            exit_body(protocol, None, &options.command)
        }
    };
    finish(&mut session, &streams, body).await;
}

enum Step {
    Client(Option<Event>),
    Cloud(Output),
}

/// How a session ended.
enum Ended {
    /// The command exited with this code.
    Exit(i32),
    /// ECI failed the session (its message).
    Failed(String),
    /// One side let go before an exit code came (which, for the log).
    Dropped(&'static str),
}

/// What the error stream says of a session that ended with `exit` (`None`: no exit code).
fn exit_body(protocol: &str, exit: Option<i32>, command: &[String]) -> Option<Vec<u8>> {
    if protocol == "v4.channel.k8s.io" || protocol == "v5.channel.k8s.io" {
        return Some(status_json(exit, command));
    }
    match exit {
        Some(0) => None,
        Some(code) => Some(format!("command terminated with exit code {code}").into_bytes()),
        None => Some(b"the ECI exec session ended without an exit code".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_like_the_api_server_sends_them() {
        let options = parse_query("command=cat&command=%2Fetc%2Fhostname&input=1&output=1&tty=1")
            .expect("ok");
        assert_eq!(options.command, vec!["cat", "/etc/hostname"]);
        assert!(options.stdin && options.stdout && options.tty && !options.stderr);
        assert!(parse_query("command=ls").is_err());
        assert!(parse_query("command=ls&output=1&error=1&tty=1").is_err());
    }

    #[test]
    fn the_newest_common_protocol_wins() {
        let mut headers = HeaderMap::new();
        headers.append(
            "X-Stream-Protocol-Version",
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        headers.append(
            "X-Stream-Protocol-Version",
            HeaderValue::from_static("v5.channel.k8s.io"),
        );
        assert_eq!(negotiate(&headers).expect("ok"), "v5.channel.k8s.io");
        let mut old = HeaderMap::new();
        old.append(
            "X-Stream-Protocol-Version",
            HeaderValue::from_static("channel.k8s.io"),
        );
        assert!(negotiate(&old).is_err());
    }

    #[test]
    fn exit_codes_travel_as_a_status() {
        let status: serde_json::Value =
            serde_json::from_slice(&status_json(Some(3), &["sh".into()])).expect("json");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        let ok: serde_json::Value =
            serde_json::from_slice(&status_json(Some(0), &[])).expect("json");
        assert_eq!(ok["status"], "Success");
    }

    #[test]
    fn commands_follow_the_eci_limits() {
        assert!(check_command(&[]).is_err());
        assert!(check_command(&vec!["x".to_owned(); 21]).is_err());
        assert!(check_command(&["x".repeat(257)]).is_err());
        assert!(check_command(&["ls".into()]).is_ok());
    }
}
