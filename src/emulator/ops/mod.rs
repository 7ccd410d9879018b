//! The operations: one function per OpenAPI action, dispatched by name.
//!
//! Writes run entirely under the store lock (validate, then change, then remember the
//! `ClientToken`), so a rejected request changes nothing and two requests with one token make
//! one resource. The agent is called only afterwards, by lifecycle tasks (`super::driver`), or,
//! for logs/exec/metrics, after the lock is released.

mod caches;
mod groups;
mod page;
mod render;
mod runtime;
mod zones;

use std::sync::Arc;

use serde_json::Value;

use super::{Core, driver::Work, error::ApiError, params::Params, state::Store};

/// Every action the emulator serves.
pub const ACTIONS: &[&str] = &[
    "CreateContainerGroup",
    "DescribeContainerGroups",
    "DeleteContainerGroup",
    "UpdateContainerGroup",
    "RestartContainerGroup",
    "DescribeContainerLog",
    "ExecContainerCommand",
    "DescribeContainerGroupMetric",
    "CreateImageCache",
    "DescribeImageCaches",
    "UpdateImageCache",
    "DeleteImageCache",
    "ListUsage",
];

/// Parameters that are not part of what a request asks for (signature, transport, identity):
/// left out of the `ClientToken` fingerprint so a retry with a fresh signature matches.
const COMMON: &[&str] = &[
    "AccessKeyId",
    "Action",
    "ClientToken",
    "Format",
    "OwnerAccount",
    "OwnerId",
    "ResourceOwnerAccount",
    "ResourceOwnerId",
    "SecurityToken",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureType",
    "SignatureVersion",
    "Timestamp",
    "Version",
];

/// Runs `action` and returns the answer body without `RequestId`.
///
/// `host` is the endpoint the caller used (for exec URLs).
pub async fn dispatch(
    core: &Arc<Core>,
    action: &str,
    p: &Params,
    host: &str,
) -> Result<Value, ApiError> {
    let region = p.required("RegionId")?.to_owned();
    match action {
        "DescribeContainerLog" => return runtime::describe_log(core, &region, p).await,
        "ExecContainerCommand" => return runtime::exec(core, &region, p, host).await,
        "DescribeContainerGroupMetric" => return runtime::metric(core, &region, p).await,
        _ => {}
    }
    let now = core.now();
    let (answer, work) = {
        let mut store = core.store.lock().await;
        let purged = store.purge(now);
        if !purged.is_empty() {
            core.changed();
        }
        driver::release(core, purged);
        let token = p.get("ClientToken").map(str::to_owned);
        if let Some(token) = &token {
            if token.len() > 64 || !token.is_ascii() {
                return Err(ApiError::invalid(
                    "ClientToken",
                    "at most 64 ASCII characters",
                ));
            }
            if let Some(answer) = replay(core, &store, action, token, p)? {
                return Ok(answer);
            }
        }
        let ctx = Ctx {
            core,
            now,
            region: &region,
        };
        let (answer, work) = match action {
            "CreateContainerGroup" => groups::create(&ctx, &mut store, p)?,
            "DescribeContainerGroups" => (groups::describe(&ctx, &store, p)?, Vec::new()),
            "DeleteContainerGroup" => groups::delete(&ctx, &mut store, p)?,
            "UpdateContainerGroup" => groups::update(&ctx, &mut store, p)?,
            "RestartContainerGroup" => groups::restart(&ctx, &mut store, p)?,
            "CreateImageCache" => caches::create(&ctx, &mut store, p)?,
            "DescribeImageCaches" => (caches::describe(&ctx, &store, p)?, Vec::new()),
            "UpdateImageCache" => caches::update(&ctx, &mut store, p)?,
            "DeleteImageCache" => caches::delete(&ctx, &mut store, p)?,
            "ListUsage" => (runtime::list_usage(&ctx, &store), Vec::new()),
            _ => return Err(unknown_action(action)),
        };
        if let Some(token) = token
            && !is_read(action)
        {
            store.tokens.insert(
                token_key(action, &token),
                super::state::TokenRecord {
                    fingerprint: fingerprint(core, p),
                    answer: answer.clone(),
                    at: now,
                },
            );
        }
        (answer, work)
    };
    // Every write changed the store (a deleted Creating cache leaves no work, a token record
    // none either), so every write is saved, not only those that start work.
    if !is_read(action) || !work.is_empty() {
        core.changed();
    }
    for w in work {
        driver::start(core, w);
    }
    Ok(answer)
}

use super::driver;

/// What an operation needs besides the store.
pub struct Ctx<'a> {
    pub core: &'a Arc<Core>,
    pub now: jiff::Timestamp,
    pub region: &'a str,
}

/// 404 `InvalidAction.NotFound` (reference §1.8).
pub fn unknown_action(action: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "InvalidAction.NotFound",
        format!("Specified api is not found, please check your url and method. ({action})"),
    )
}

fn token_key(action: &str, token: &str) -> String {
    format!("{action}\n{token}")
}

/// Whether `action` only reads the store.
fn is_read(action: &str) -> bool {
    action.starts_with("Describe") || action.starts_with("List")
}

/// The business parameters, canonically ordered, each value replaced by its HMAC-SHA256
/// (hex) under a key derived from the account's secret: equal requests still compare equal,
/// but the kept record (saved to disk for 24 h) holds no value, such as
/// `ImageRegistryCredential.N.Password`, and a weak one cannot be guessed offline from it.
fn fingerprint(core: &Core, p: &Params) -> String {
    p.map()
        .iter()
        .filter(|(k, _)| !COMMON.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", core.verifier.fingerprint_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A repeat of an earlier request with the same `ClientToken`: its first answer, or
/// `IdempotentParameterMismatch` when the parameters differ (reference §1.9).
fn replay(
    core: &Core,
    store: &Store,
    action: &str,
    token: &str,
    p: &Params,
) -> Result<Option<Value>, ApiError> {
    let Some(record) = store.tokens.get(&token_key(action, token)) else {
        return Ok(None);
    };
    let now = fingerprint(core, p);
    if record.fingerprint != now {
        // Which parameters differ (names only: values may be secrets), for whoever debugs a
        // client that repeats a token with another request.
        let first: std::collections::BTreeSet<&str> = record.fingerprint.split('&').collect();
        let second: std::collections::BTreeSet<&str> = now.split('&').collect();
        let mut names: Vec<&str> = first
            .symmetric_difference(&second)
            .filter_map(|pair| pair.split('=').next())
            .collect();
        names.dedup();
        tracing::warn!(action, parameters = ?names, "a repeated ClientToken with other parameters");
        return Err(ApiError::bad_request(
            "IdempotentParameterMismatch",
            "The request uses the same client token as a previous, but non-identical request.",
        ));
    }
    Ok(Some(record.answer.clone()))
}

/// The work a write leaves for lifecycle tasks.
pub type Outcome = (Value, Vec<Work>);
