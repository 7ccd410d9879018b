//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log from
//! `DescribeContainerLog`, and `follow` without a cloud call per line.
//!
//! ECI has no log stream, so follow polls `DescribeContainerLog` every [`FOLLOW_POLL`] from a
//! cursor: lines are always fetched with timestamps, the newest timestamp sent is the next
//! `StartTime`, and lines at exactly that time already sent are skipped. The stream ends when
//! the client goes away, the byte limit is reached or the group is gone.
//!
//! Caveats: ECI returns at most 2000 lines (`Tail`) and 1 MiB per call; without `tailLines`
//! the node asks for 2000, the most the cloud gives.

use std::{collections::HashSet, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{Instrument as _, debug};

use super::{ApiError, Ctx, lookup};
use crate::eci::{self, DescribeContainerLog};

/// Time between two polls of a followed log: `DescribeContainerLog` is limited to 500 calls a
/// minute per account, so one follower costs 30 of them.
pub const FOLLOW_POLL: Duration = Duration::from_secs(2);
/// Most lines ECI returns.
const MAX_TAIL: u32 = 2000;
/// Most bytes ECI returns.
const MAX_BYTES: u64 = 1_048_576;
/// Limit on one DescribeContainerLog call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The kubelet's log options (query string).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    follow: Option<String>,
    tail_lines: Option<String>,
    since_seconds: Option<String>,
    since_time: Option<String>,
    limit_bytes: Option<String>,
    timestamps: Option<String>,
    previous: Option<String>,
}

/// Checked log options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming.
    pub follow: bool,
    /// Lines from the end.
    pub tail: Option<u32>,
    /// Only newer than this many seconds.
    pub since_seconds: Option<u64>,
    /// Only newer than this time.
    pub since_time: Option<Timestamp>,
    /// Byte limit.
    pub limit_bytes: Option<u64>,
    /// Prefix timestamps.
    pub timestamps: bool,
    /// The previous instance.
    pub previous: bool,
}

fn flag(value: Option<&String>) -> Result<bool, ApiError> {
    match value.map(String::as_str) {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!("{other:?} is not a boolean"))),
    }
}

fn number(name: &str, value: Option<&String>, least: u64) -> Result<Option<u64>, ApiError> {
    value
        .map(|v| match v.parse::<u64>() {
            Ok(n) if n >= least => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be an integer of at least {least}, not {v:?}"
            ))),
        })
        .transpose()
}

impl LogQuery {
    /// Checks the options as the kubelet does.
    ///
    /// # Errors
    /// 400 naming the bad option.
    pub fn check(&self) -> Result<LogOptions, ApiError> {
        let since_time = self
            .since_time
            .as_ref()
            .map(|t| {
                t.parse::<Timestamp>().map_err(|_| {
                    ApiError::bad_request(format!("sinceTime {t:?} is not an RFC 3339 time"))
                })
            })
            .transpose()?;
        let since_seconds = number("sinceSeconds", self.since_seconds.as_ref(), 1)?;
        if since_seconds.is_some() && since_time.is_some() {
            return Err(ApiError::bad_request(
                "at most one of sinceSeconds or sinceTime may be specified",
            ));
        }
        Ok(LogOptions {
            follow: flag(self.follow.as_ref())?,
            tail: number("tailLines", self.tail_lines.as_ref(), 0)?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            since_seconds,
            since_time,
            limit_bytes: number("limitBytes", self.limit_bytes.as_ref(), 1)?,
            timestamps: flag(self.timestamps.as_ref())?,
            previous: flag(self.previous.as_ref())?,
        })
    }
}

/// The first request for a log.
fn first_request(group: &str, container: &str, options: &LogOptions) -> DescribeContainerLog {
    DescribeContainerLog {
        container_group_id: group.to_owned(),
        container_name: container.to_owned(),
        // ECI reads `Tail=0` as its default; `tailLines=0` means no old lines, and a follow
        // still needs the newest one for its cursor.
        tail: Some(options.tail.unwrap_or(MAX_TAIL).clamp(1, MAX_TAIL)),
        start_time: options.since_time.map(|t| t.to_string()),
        since_seconds: options.since_seconds,
        limit_bytes: Some(options.limit_bytes.unwrap_or(MAX_BYTES).min(MAX_BYTES)),
        // Follow needs the timestamps for its cursor; they are cut off again if not asked for.
        timestamps: Some(options.timestamps || options.follow),
        last_time: options.previous.then_some(true),
    }
}

/// A timestamped line split into its time and the line as the user wants it.
fn split_line(line: &str, keep_timestamp: bool) -> (Option<Timestamp>, String) {
    let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
    match stamp.parse::<Timestamp>() {
        Ok(at) if keep_timestamp => (Some(at), line.to_owned()),
        Ok(at) => (Some(at), rest.to_owned()),
        Err(_) => (None, line.to_owned()),
    }
}

/// What a follow has sent so far.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Lines older than this are never sent (the request's `sinceTime`/`sinceSeconds`, or
    /// the follow's start when the log was empty), so a poll without a newest time does not
    /// repeat the whole tail.
    pub floor: Option<Timestamp>,
    /// Newest timestamp sent.
    pub newest: Option<Timestamp>,
    /// Lines sent with exactly that timestamp.
    pub at_newest: HashSet<String>,
}

impl Cursor {
    /// The lines of `content` not sent yet (each ending in `\n`), advancing the cursor.
    pub fn advance(&mut self, content: &str, keep_timestamp: bool) -> String {
        let mut out = String::new();
        for line in content.lines() {
            let (at, shown) = split_line(line, true);
            if let (Some(at), Some(floor)) = (at, self.floor)
                && at < floor
            {
                continue;
            }
            match (at, self.newest) {
                (Some(at), Some(newest)) if at < newest => continue,
                (Some(at), Some(newest)) if at == newest => {
                    if !self.at_newest.insert(shown.clone()) {
                        continue;
                    }
                }
                (Some(at), _) => {
                    self.newest = Some(at);
                    self.at_newest.clear();
                    self.at_newest.insert(shown.clone());
                }
                (None, _) => {}
            }
            out.push_str(&split_line(line, keep_timestamp).1);
            out.push('\n');
        }
        out
    }
}

/// One `DescribeContainerLog`; the outer error is the timeout.
async fn describe(
    ctx: &Ctx,
    request: &DescribeContainerLog,
) -> Result<Result<String, eci::Error>, tokio::time::error::Elapsed> {
    tokio::time::timeout(CALL_TIMEOUT, ctx.eci.describe_container_log(request))
        .await
        .map(|answer| answer.map(|r| r.content))
}

/// Serves one log request.
pub async fn serve(
    ctx: Arc<Ctx>,
    namespace: String,
    pod: String,
    container: String,
    query: LogQuery,
) -> Result<Response, ApiError> {
    let options = query.check()?;
    let asked_at = Timestamp::now();
    let target = lookup::find(&ctx.kube, &ctx.node, &namespace, &pod, Some(&container)).await?;
    let request = first_request(&target.group_id, &container, &options);
    let content = describe(&ctx, &request)
        .await
        .map_err(|_| ApiError::unavailable("DescribeContainerLog timed out"))?
        .map_err(|error| ApiError::from_eci(&error))?;
    let plain = |body: Body| {
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        response
    };
    let no_old_lines = options.tail == Some(0);
    if !options.follow || options.previous {
        if no_old_lines {
            return Ok(plain(Body::empty()));
        }
        let content = if options.timestamps || !options.follow {
            content
        } else {
            Cursor::default().advance(&content, false)
        };
        return Ok(plain(Body::from(content)));
    }
    let since = options.since_time.or_else(|| {
        let seconds = i64::try_from(options.since_seconds?).ok()?;
        asked_at
            .checked_sub(jiff::SignedDuration::from_secs(seconds))
            .ok()
    });
    let mut cursor = Cursor {
        floor: since,
        ..Cursor::default()
    };
    let first = cursor.advance(&content, options.timestamps);
    if cursor.newest.is_none() && since.is_none() {
        // An empty log so far: follow from now (by this node's clock; the cloud stamps lines
        // with its own, so a skew of a few seconds may drop or repeat the first lines).
        cursor.floor = Some(asked_at);
    }
    let first = if no_old_lines { String::new() } else { first };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    let span = tracing::debug_span!("log_follow", pod.namespace = %namespace, pod.name = %pod, container = %container);
    tokio::spawn(
        follow(ctx, target.group_id, container, options, cursor, first, tx).instrument(span),
    );
    Ok(plain(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    )))
}

async fn follow(
    ctx: Arc<Ctx>,
    group: String,
    container: String,
    options: LogOptions,
    mut cursor: Cursor,
    first: String,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    let mut left = options.limit_bytes.unwrap_or(u64::MAX);
    let send = |text: String, left: &mut u64| {
        let mut bytes = text.into_bytes();
        let room = usize::try_from(*left).unwrap_or(usize::MAX);
        bytes.truncate(room);
        *left = left.saturating_sub(bytes.len() as u64);
        Bytes::from(bytes)
    };
    let chunk = send(first, &mut left);
    if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
        return;
    }
    while left > 0 {
        tokio::select! {
            () = tx.closed() => break,
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
        let request = DescribeContainerLog {
            container_group_id: group.clone(),
            container_name: container.clone(),
            tail: Some(MAX_TAIL),
            start_time: cursor.newest.or(cursor.floor).map(|t| t.to_string()),
            since_seconds: None,
            limit_bytes: Some(MAX_BYTES),
            timestamps: Some(true),
            last_time: None,
        };
        let content = match describe(&ctx, &request).await {
            Ok(Ok(content)) => content,
            Err(_) => continue,
            Ok(Err(error)) if error.is_retryable() => continue,
            Ok(Err(error)) => {
                debug!(error = &error as &dyn std::error::Error, "log follow ends");
                break;
            }
        };
        let fresh = cursor.advance(&content, options.timestamps);
        if fresh.is_empty() {
            continue;
        }
        let chunk = send(fresh, &mut left);
        if tx.send(Ok(chunk)).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let query = LogQuery {
            follow: Some("true".into()),
            tail_lines: Some("5".into()),
            ..LogQuery::default()
        };
        let options = query.check().expect("valid");
        assert!(options.follow);
        assert_eq!(options.tail, Some(5));
        let bad = LogQuery {
            since_seconds: Some("0".into()),
            ..LogQuery::default()
        };
        assert!(bad.check().is_err());
        let both = LogQuery {
            since_seconds: Some("5".into()),
            since_time: Some("2026-01-01T00:00:00Z".into()),
            ..LogQuery::default()
        };
        assert!(both.check().is_err());
    }

    #[test]
    fn the_cursor_sends_each_line_once() {
        let mut cursor = Cursor::default();
        let first = "2026-01-01T00:00:01Z a\n2026-01-01T00:00:02Z b\n";
        assert_eq!(cursor.advance(first, false), "a\nb\n");
        // The next poll starts at the newest time sent: `b` comes again, `c` is new.
        let next = "2026-01-01T00:00:02Z b\n2026-01-01T00:00:02Z c\n2026-01-01T00:00:03Z d\n";
        assert_eq!(
            cursor.advance(next, true),
            "2026-01-01T00:00:02Z c\n2026-01-01T00:00:03Z d\n"
        );
        assert_eq!(cursor.advance(next, false), "");
    }

    #[test]
    fn the_floor_keeps_old_lines_out() {
        let mut cursor = Cursor {
            floor: Some("2026-01-01T00:00:02Z".parse().expect("time")),
            ..Cursor::default()
        };
        let log = "2026-01-01T00:00:01Z old\n2026-01-01T00:00:03Z new\n";
        assert_eq!(cursor.advance(log, false), "new\n");
    }
}
