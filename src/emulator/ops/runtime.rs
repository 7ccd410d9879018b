//! DescribeContainerLog, ExecContainerCommand, DescribeContainerGroupMetric (which ask the
//! agent while the caller waits) and ListUsage.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;

use super::{Ctx, render};
use crate::{
    agent::pb::{self, ExecInput, LogsRequest, StatsRequest, exec_input, exec_output},
    emulator::{
        Core, ExecSession,
        error::ApiError,
        params::Params,
        state::{Group, GroupStatus, Store},
    },
};

/// Most bytes DescribeContainerLog returns (reference §2.7).
const MAX_LOG_BYTES: i64 = 1_048_576;
/// How long an exec URL may be used (reference §2.8).
const EXEC_URL_TTL: SignedDuration = SignedDuration::from_secs(30);

/// The agent's refusal as the caller sees it: a container that is not running is the caller's
/// problem (`IncorrectStatus`), anything else a fault of the service (`InternalError`, 500).
fn agent_error(status: &tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::FailedPrecondition => ApiError::bad_request(
            "IncorrectStatus",
            format!("The container cannot do this now: {}", status.message()),
        ),
        tonic::Code::NotFound => ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "InvalidParameter.NotFound",
            format!("The container does not exist: {}", status.message()),
        ),
        code => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("The request processing has failed due to some unknown error ({code})."),
        ),
    }
}

/// The group and checks shared by the three runtime calls, read under the lock.
async fn group_for(core: &Arc<Core>, region: &str, id: &str) -> Result<Group, ApiError> {
    let store = core.store.lock().await;
    store
        .groups
        .get(id)
        .filter(|g| g.region_id == region)
        .cloned()
        .ok_or_else(|| ApiError::not_found("container group", id))
}

fn has_container(group: &Group, name: &str) -> Result<(), ApiError> {
    let known = group
        .spec
        .containers
        .iter()
        .chain(&group.spec.init_containers)
        .any(|c| c.name == name);
    if known {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "container",
            &format!("{name} of {}", group.id),
        ))
    }
}

pub async fn describe_log(core: &Arc<Core>, region: &str, p: &Params) -> Result<Value, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let container = p.required("ContainerName")?;
    let tail = match p.int("Tail")? {
        None => 500,
        Some(n) if n >= 0 => n.min(2000),
        Some(_) => return Err(ApiError::invalid("Tail", "must not be negative")),
    };
    let limit_bytes = match p.int("LimitBytes")? {
        None => MAX_LOG_BYTES,
        Some(n) if (1..=MAX_LOG_BYTES).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid("LimitBytes", "must be 1–1048576")),
    };
    let now = core.now();
    let since_ms = match (p.int("SinceSeconds")?, p.get("StartTime")) {
        (Some(s), _) => now.as_millisecond() - s.saturating_mul(1000),
        (None, Some(t)) => t
            .parse::<Timestamp>()
            .map_err(|_| ApiError::invalid("StartTime", "expected an RFC 3339 UTC time"))?
            .as_millisecond(),
        (None, None) => 0,
    };
    let group = group_for(core, region, id).await?;
    has_container(&group, container)?;
    if matches!(
        group.status,
        GroupStatus::Scheduling | GroupStatus::ScheduleFailed
    ) {
        return Err(ApiError::incorrect_status(
            "container group",
            id,
            group.status.as_str(),
            "reading logs",
        ));
    }
    let request = LogsRequest {
        group_id: id.to_owned(),
        container: container.to_owned(),
        tail_lines: u32::try_from(tail).unwrap_or(2000),
        since_ms,
        timestamps: p.bool("Timestamps")?.unwrap_or(false),
        previous: p.bool("LastTime")?.unwrap_or(false),
        limit_bytes: u64::try_from(limit_bytes).unwrap_or(0),
        follow: false,
    };
    let mut content = Vec::new();
    match core.agent.clone().logs(request).await {
        Ok(stream) => {
            let mut stream = stream.into_inner();
            while let Some(chunk) = stream.next().await {
                content.extend(chunk.map_err(|s| agent_error(&s))?.data);
            }
        }
        // The machine is gone or the container never started: there is no log yet.
        Err(status) if status.code() == tonic::Code::NotFound => {}
        Err(status) => return Err(agent_error(&status)),
    }
    Ok(json!({
        "ContainerName": container,
        "Content": String::from_utf8_lossy(&content),
    }))
}

pub async fn exec(
    core: &Arc<Core>,
    region: &str,
    p: &Params,
    host: &str,
) -> Result<Value, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let container = p.required("ContainerName")?;
    p.required("Command")?;
    let command = p.json_strings("Command")?.unwrap_or_default();
    if command.is_empty() || command.len() > 20 || command.iter().any(|c| c.len() > 256) {
        return Err(ApiError::invalid(
            "Command",
            "1–20 strings of at most 256 characters",
        ));
    }
    let tty = p.bool("TTY")?.unwrap_or(false);
    let stdin = p.bool("Stdin")?.unwrap_or(true);
    let sync = p.bool("Sync")?.unwrap_or(false);
    if sync && (tty || command == ["/bin/bash"]) {
        return Err(ApiError::invalid(
            "Sync",
            "a synchronous exec needs TTY=false and a command other than /bin/bash",
        ));
    }
    let group = group_for(core, region, id).await?;
    has_container(&group, container)?;
    if group.status != GroupStatus::Running {
        return Err(ApiError::incorrect_status(
            "container group",
            id,
            group.status.as_str(),
            "exec",
        ));
    }
    if !sync {
        let token = core.ids.resource_id("exec");
        let expires = core
            .now()
            .saturating_add(EXEC_URL_TTL)
            .unwrap_or_else(|_| core.now());
        let mut sessions = core.exec_sessions.lock();
        let now = core.now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            token.clone(),
            ExecSession {
                group_id: id.to_owned(),
                container: container.to_owned(),
                command,
                tty,
                stdin,
                expires,
            },
        );
        return Ok(json!({
            "WebSocketUri": format!("ws://{host}/exec/?s={token}"),
            "HttpUrl": format!("http://{host}/terminal?param={token}"),
            "SyncResponse": "",
        }));
    }
    let start = ExecInput {
        input: Some(exec_input::Input::Start(pb::ExecStart {
            group_id: id.to_owned(),
            container: container.to_owned(),
            command,
            tty: false,
            stdin: false,
        })),
    };
    let close = ExecInput {
        input: Some(exec_input::Input::CloseStdin(true)),
    };
    let outbound = tokio_stream::iter([start, close]);
    let mut output = Vec::new();
    let mut stream = core
        .agent
        .clone()
        .exec(outbound)
        .await
        .map_err(|s| agent_error(&s))?
        .into_inner();
    while let Some(message) = stream.next().await {
        match message.map_err(|s| agent_error(&s))?.output {
            Some(exec_output::Output::Stdout(bytes) | exec_output::Output::Stderr(bytes)) => {
                output.extend(bytes)
            }
            Some(exec_output::Output::Exit(_)) => break,
            None => {}
        }
    }
    Ok(json!({
        "WebSocketUri": "",
        "HttpUrl": "",
        "SyncResponse": String::from_utf8_lossy(&output),
    }))
}

fn usage_json(u: Option<&pb::ResourceUsage>, cpu_limit: f64) -> (Value, Value) {
    let u = u.cloned().unwrap_or_default();
    #[allow(clippy::cast_precision_loss)] // load is a ratio for display
    let load = if cpu_limit > 0.0 {
        u.cpu_usage_nano_cores as f64 / (cpu_limit * 1e9) * 1000.0
    } else {
        0.0
    };
    (
        json!({
            "Limit": cpu_limit * 1000.0,
            "Load": load,
            "UsageCoreNanoSeconds": u.cpu_usage_core_nanoseconds,
            "UsageNanoCores": u.cpu_usage_nano_cores,
        }),
        json!({
            "AvailableBytes": u.memory_available_bytes,
            "Cache": u.memory_cache_bytes,
            "Rss": u.memory_rss_bytes,
            "UsageBytes": u.memory_usage_bytes,
            "WorkingSet": u.memory_working_set_bytes,
        }),
    )
}

/// `t - d`, or the earliest time when that underflows (times come from callers).
fn earlier(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_sub(d).unwrap_or(Timestamp::MIN)
}

pub async fn metric(core: &Arc<Core>, region: &str, p: &Params) -> Result<Value, ApiError> {
    let id = p.required("ContainerGroupId")?;
    let parse = |name: &str| {
        p.get(name)
            .map(|t| {
                t.parse::<Timestamp>()
                    .map_err(|_| ApiError::invalid(name, "expected an RFC 3339 UTC time"))
            })
            .transpose()
    };
    let (start, end) = (parse("StartTime")?, parse("EndTime")?);
    let period = p.one_of("Period", &["15", "30", "60", "600"])?;
    let now = core.now();
    let (start, end, step) = match (start, end) {
        (None, None) => (earlier(now, SignedDuration::from_mins(5)), now, 15),
        (s, e) => {
            let end = e.unwrap_or(now);
            let start = s.unwrap_or_else(|| earlier(end, SignedDuration::from_mins(5)));
            (
                start,
                end,
                period
                    .as_deref()
                    .unwrap_or("60")
                    .parse::<i64>()
                    .unwrap_or(60),
            )
        }
    };
    if start > end {
        return Err(ApiError::invalid("StartTime", "must not be after EndTime"));
    }
    let group = group_for(core, region, id).await?;
    let stats = match core
        .agent
        .clone()
        .stats(StatsRequest {
            group_id: id.to_owned(),
        })
        .await
    {
        Ok(s) => Some(s.into_inner()),
        Err(status) if status.code() == tonic::Code::NotFound => None,
        Err(status) => return Err(agent_error(&status)),
    };
    let mut records = Vec::new();
    if let Some(stats) = stats {
        // The agent reports the present; every point of the window shows it (the emulator keeps
        // no history). At most 50 points, the newest.
        let from = start.max(group.creation_time);
        let mut at = end;
        while at >= from && records.len() < 50 {
            let (cpu, memory) = usage_json(stats.usage.as_ref(), group.spec.cpu);
            let containers: Vec<Value> = stats
                .containers
                .iter()
                .map(|c| {
                    let (cpu, memory) = usage_json(c.usage.as_ref(), group.spec.cpu);
                    json!({"Name": c.name, "CPU": cpu, "Memory": memory})
                })
                .collect();
            records.push(json!({
                "Timestamp": render::time(at),
                "CPU": cpu,
                "Memory": memory,
                "Network": {"Interfaces": [{
                    "Name": "eth0",
                    "RxBytes": stats.network_rx_bytes, "RxDrops": 0, "RxErrors": 0, "RxPackets": stats.network_rx_bytes / 1024,
                    "TxBytes": stats.network_tx_bytes, "TxDrops": 0, "TxErrors": 0, "TxPackets": stats.network_tx_bytes / 1024,
                }]},
                "Disk": [],
                "Filesystem": [],
                "Containers": containers,
            }));
            let Ok(previous) = at.checked_sub(SignedDuration::from_secs(step)) else {
                break;
            };
            at = previous;
        }
        records.reverse();
    }
    Ok(json!({"ContainerGroupId": id, "Records": records}))
}

pub fn list_usage(ctx: &Ctx<'_>, store: &Store) -> Value {
    let used_cpu: f64 = store
        .groups
        .values()
        .filter(|g| g.region_id == ctx.region && !g.status.is_terminal())
        .map(|g| g.spec.cpu)
        .sum();
    let count = |automatic: bool| {
        store
            .caches
            .values()
            .filter(|c| c.region_id == ctx.region && c.automatic == automatic)
            .count()
    };
    json!({
        "Attributes": {
            "UsedCpu": used_cpu,
            "MaxCpu": ctx.core.settings.max_cpu,
            "MaxImageCacheCount": ctx.core.settings.max_image_caches,
            "UsedImageCacheCount": count(false),
            "MaxAutoImageCacheCount": ctx.core.settings.max_auto_image_caches,
            "UsedAutoImageCacheCount": count(true),
            "MaxDataCacheCount": 0,
            "UsedDataCacheCount": 0,
        }
    })
}
