//! The HTTP face: `/` answers every action (GET or POST, parameters in the query and/or an
//! `application/x-www-form-urlencoded` body), `/exec/?s=…` is the WebSocket that
//! ExecContainerCommand hands out.
//!
//! Order of checks, each answered with its documented code and nothing changed on failure:
//! path and method → `Action`/`Version` → signature, timestamp, nonce → quota → `RegionId` and
//! the operation's own parameters.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{
        Query, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};

use super::{
    API_VERSION, Core,
    auth::SignedParts,
    error::ApiError,
    fault::Fault,
    ops::{self, ACTIONS, unknown_action},
    params::Params,
    sts,
};
use crate::agent::pb::{self, ExecInput, exec_input, exec_output};

/// The emulator's routes.
pub fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/exec/", get(exec_socket))
        .route("/metrics", get(metrics))
        .merge(sts::metadata_router())
        .fallback(openapi)
        .with_state(core)
}

/// Prometheus text of the in-process agent's counters (bytes pulled per image, cache and
/// group): how tests and benchmarks read what a pod's start cost. Not part of the ECI API;
/// the node never calls it.
async fn metrics(State(core): State<Arc<Core>>) -> Response {
    match &core.local_agent {
        Some(agent) => (
            [("content-type", "text/plain; version=0.0.4")],
            agent.metrics(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no in-process agent").into_response(),
    }
}

fn pairs(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(text).map_err(|_| {
        ApiError::bad_request(
            "InvalidParameter",
            "The query string or form body is not well formed.",
        )
    })
}

/// Parameters by name.
type Parameters = BTreeMap<String, String>;

/// A request's parameters, decoded: those of the query alone (V3 signs them apart), and those
/// of the query and an `application/x-www-form-urlencoded` body together (the query wins).
///
/// # Errors
/// `InvalidParameter` for a query or form that is not well formed, or a form not in UTF-8.
pub(super) fn decode(
    query: Option<&str>,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<(Parameters, Parameters), ApiError> {
    let query: BTreeMap<String, String> = pairs(query.unwrap_or_default())?.into_iter().collect();
    let mut params = query.clone();
    let form = headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form && !body.is_empty() {
        let text = std::str::from_utf8(body).map_err(|_| {
            ApiError::bad_request("InvalidParameter", "The form body is not UTF-8.")
        })?;
        for (k, v) in pairs(text)? {
            params.entry(k).or_insert(v);
        }
    }
    Ok((query, params))
}

/// The action and version a request names, taken only from what its signature covers: V3
/// from its `x-acs-action`/`x-acs-version` headers (which `verify` requires signed), V1 from
/// its signed parameters. V1 signs no header, so an `x-acs-action` beside it (the node's client
/// sends one) never chooses the operation.
pub(super) fn signed_action<'a>(
    headers: &'a BTreeMap<String, String>,
    params: &'a BTreeMap<String, String>,
) -> (Option<&'a String>, Option<&'a String>) {
    let v3 = headers
        .get("authorization")
        .is_some_and(|a| a.starts_with("ACS3-"));
    if v3 {
        (headers.get("x-acs-action"), headers.get("x-acs-version"))
    } else {
        (params.get("Action"), params.get("Version"))
    }
}

async fn openapi(
    State(core): State<Arc<Core>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = core.ids.request_id();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let (action, result) = answer(&core, &method, &uri, &headers, &body, &host).await;
    match result {
        Ok(mut value) => {
            value["RequestId"] = Value::from(request_id.clone());
            tracing::debug!(action, request_id, "answered");
            with_request_id(axum::Json(value).into_response(), &request_id)
        }
        Err(error) => {
            tracing::debug!(
                action,
                request_id,
                code = error.code,
                status = error.status.as_u16(),
                "refused"
            );
            let body = json!({
                "RequestId": request_id,
                "HostId": host,
                "Code": error.code,
                "Message": error.message,
                "Recommend": format!(
                    "https://api.alibabacloud.com/troubleshoot?q={}&product=Eci&requestId={request_id}",
                    error.code
                ),
            });
            let mut response = (error.status, axum::Json(body)).into_response();
            if let Some(ms) = error.retry_after_ms
                && let Ok(value) =
                    HeaderValue::from_str(&format!("Limit:0,Remain:0,TimeLeft:{ms},Reset:{ms}"))
            {
                response.headers_mut().insert("x-ratelimit-user-api", value);
            }
            with_request_id(response, &request_id)
        }
    }
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-acs-request-id", value);
    }
    response
}

async fn answer(
    core: &Arc<Core>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    host: &str,
) -> (String, Result<Value, ApiError>) {
    let mut action = String::new();
    let result = async {
        if uri.path() != "/" {
            return Err(unknown_action(uri.path()));
        }
        if *method != Method::GET && *method != Method::POST {
            return Err(ApiError::bad_request(
                "UnsupportedHTTPMethod",
                "This http method is not supported (GET and POST only).",
            ));
        }
        let header_map: BTreeMap<String, String> = headers
            .iter()
            .filter_map(|(k, v)| {
                Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        let (query, params) = decode(uri.query(), &header_map, body)?;
        let (action_name, version) = signed_action(&header_map, &params);
        action = action_name
            .cloned()
            .ok_or_else(|| ApiError::missing("Action"))?;
        let version = version.ok_or_else(|| ApiError::missing("Version"))?;
        let parts = SignedParts {
            method: method.as_str(),
            path: uri.path(),
            query: &query,
            params: &params,
            headers: &header_map,
            body,
        };
        if version == sts::STS_API_VERSION && sts::ACTIONS.contains(&action.as_str()) {
            // STS: AssumeRoleWithOIDC is anonymous (its OIDC token is the proof); AssumeRole is
            // signed like any call.
            if action != "AssumeRoleWithOIDC" {
                core.verifier.verify(&parts, core.now())?;
            }
            return sts::answer(core, &action, &params);
        }
        if version != API_VERSION {
            return Err(ApiError::bad_request(
                "NoSuchVersion",
                format!("Specified api version {version} is not valid (ECI is {API_VERSION})."),
            ));
        }
        if !ACTIONS.contains(&action.as_str()) {
            return Err(unknown_action(&action));
        }
        core.verifier.verify(&parts, core.now())?;
        // After the signature (the nonce is spent, as on the gateway), before the quota and
        // the operation; no lock is held while a slow answer waits.
        let mut applied_then = None;
        match core.faults.pick(&action) {
            None => {}
            Some(Fault::Refuse(error)) => {
                tracing::debug!(action, fault = %error.code, "fault injected: refused");
                return Err(error);
            }
            Some(Fault::Slow(delay)) => {
                tracing::debug!(action, delay_ms = delay.as_millis(), "fault injected: slow");
                tokio::time::sleep(delay).await;
            }
            Some(Fault::AppliedThen(error)) => applied_then = Some(error),
        }
        core.throttle.take(&action, core.now())?;
        let answer = ops::dispatch(core, &action, &Params::new(params), host).await?;
        if let Some(error) = applied_then {
            tracing::debug!(action, fault = %error.code, "fault injected: applied, then refused");
            return Err(error);
        }
        Ok(answer)
    }
    .await;
    (action, result)
}

// === exec WebSocket ===

#[derive(Debug, serde::Deserialize)]
struct ExecQuery {
    s: String,
}

/// The session of an ExecContainerCommand URL: single use, valid for 30 s.
///
/// Frames: a non-empty binary or text frame from the client is stdin and an empty one ends
/// stdin (EOF); stdout and stderr come back as binary frames, then one text frame
/// `{"ExitCode":N}` before the server closes. A close from the client ends stdin and the session.
async fn exec_socket(
    State(core): State<Arc<Core>>,
    Query(query): Query<ExecQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let session = {
        let mut sessions = core.exec_sessions.lock();
        sessions.remove(&query.s)
    };
    let Some(session) = session.filter(|s| s.expires > core.now()) else {
        return (StatusCode::NOT_FOUND, "unknown or expired exec session").into_response();
    };
    upgrade.on_upgrade(move |socket| async move {
        let span =
            tracing::info_span!("exec", group = %session.group_id, container = %session.container);
        tracing::Instrument::instrument(bridge(core, session, socket), span).await;
    })
}

/// The text frame that ends a session with an error: `{"Error": message}`, JSON-escaped.
fn error_frame(message: &str) -> Message {
    Message::Text(serde_json::json!({ "Error": message }).to_string().into())
}

async fn bridge(core: Arc<Core>, session: super::ExecSession, mut socket: WebSocket) {
    let (tx, rx) = tokio::sync::mpsc::channel::<ExecInput>(16);
    let start = ExecInput {
        input: Some(exec_input::Input::Start(pb::ExecStart {
            group_id: session.group_id.clone(),
            container: session.container.clone(),
            command: session.command.clone(),
            tty: session.tty,
            stdin: session.stdin,
        })),
    };
    if tx.send(start).await.is_err() {
        return;
    }
    let mut output = match core.agent.clone().exec(ReceiverStream::new(rx)).await {
        Ok(o) => o.into_inner(),
        Err(status) => {
            let _ = socket.send(error_frame(status.message())).await;
            return;
        }
    };
    let mut stdin_open = true;
    loop {
        tokio::select! {
            incoming = socket.recv(), if stdin_open => {
                let input = match incoming {
                    Some(Ok(Message::Binary(bytes))) if !bytes.is_empty() => exec_input::Input::Stdin(bytes.to_vec()),
                    Some(Ok(Message::Text(text))) if !text.is_empty() => exec_input::Input::Stdin(text.as_bytes().to_vec()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => {
                        stdin_open = false;
                        exec_input::Input::CloseStdin(true)
                    }
                };
                if tx.send(ExecInput { input: Some(input) }).await.is_err() {
                    stdin_open = false;
                }
            }
            out = output.next() => {
                let out = match out {
                    Some(Ok(out)) => out,
                    // The runtime's own words, as ECI's exec gateway would pass them on; a
                    // session never just stops without saying why.
                    Some(Err(status)) => {
                        tracing::warn!(error = status.message(), "the runtime failed the exec");
                        let _ = socket.send(error_frame(status.message())).await;
                        break;
                    }
                    None => {
                        let _ = socket.send(error_frame("the runtime ended the exec without an exit code")).await;
                        break;
                    }
                };
                let bytes = match out.output {
                    Some(exec_output::Output::Stdout(bytes) | exec_output::Output::Stderr(bytes)) => bytes,
                    Some(exec_output::Output::Exit(exit)) => {
                        let _ = socket.send(Message::Text(format!("{{\"ExitCode\":{}}}", exit.exit_code).into())).await;
                        break;
                    }
                    None => continue,
                };
                if socket.send(Message::Binary(bytes.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
