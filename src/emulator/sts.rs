//! Stand-ins for the two places temporary credentials come from, so the node's credential chain
//! is tested against something that issues, checks and expires them:
//!
//! * STS (version 2015-04-01) on the OpenAPI's own `/`: `AssumeRole`, signed with the account's
//!   AccessKey or with temporary credentials, and `AssumeRoleWithOIDC`, anonymous, as
//!   "AssumeRoleWithOIDC" documents
//!   (<https://help.aliyun.com/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc>):
//!   `DurationSeconds` 900 to 3600 (a role's default `MaxSessionDuration`), `RoleSessionName`
//!   2–64 of `[A-Za-z0-9.@_-]`, `OIDCToken` 4–20,000 characters.
//! * the ECS metadata service under `/latest/`: the IMDSv2 token (`PUT /latest/api/token`) and
//!   the instance RAM role's credentials (`GET /latest/meta-data/ram/security-credentials/…`).
//!
//! Every credential issued is accepted by the OpenAPI's signature check, with its token, until
//! it expires ([`super::auth::Verifier::issue`]). `Settings::sts_credential_ttl` caps their
//! life so a test sees several refreshes in a minute. The OIDC token's signature is not checked
//! (the emulator knows no identity provider's keys); its form, expiry and audience are.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Core, auth::Issued, error::ApiError};

/// The STS API version.
pub const STS_API_VERSION: &str = "2015-04-01";
/// The account id in the ARNs the emulator issues and accepts.
pub const ACCOUNT_ID: &str = "1234567890123456";
/// The audience ACK's RRSA puts in its tokens, which the emulator requires.
pub const OIDC_AUDIENCE: &str = "sts.aliyuncs.com";

/// The STS actions.
pub const ACTIONS: &[&str] = &["AssumeRole", "AssumeRoleWithOIDC"];

/// Answers an STS action whose parameters passed the common checks. `AssumeRoleWithOIDC` is
/// anonymous; `AssumeRole` must have been verified by the caller.
pub(crate) fn answer(
    core: &Core,
    action: &str,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<Value, ApiError> {
    let now = core.now();
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    let role_arn = get("RoleArn");
    let role_name = role_arn
        .strip_prefix(&format!("acs:ram::{ACCOUNT_ID}:role/"))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "InvalidParameter.RoleArn",
                "The parameter RoleArn is not a role of this account (acs:ram::<uid>:role/<name>).",
            )
        })?;
    let session = get("RoleSessionName");
    let session_ok = (2..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if !session_ok {
        return Err(ApiError::bad_request(
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName must be 2 to 64 of letters, digits, '.', '@', '-', '_'.",
        ));
    }
    let duration = match get("DurationSeconds") {
        "" => 3600,
        d => d
            .parse::<i64>()
            .ok()
            .filter(|d| (900..=3600).contains(d))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidParameter.DurationSeconds",
                    "The parameter DurationSeconds must be 900 to the role's MaxSessionDuration (3600).",
                )
            })?,
    };
    let mut extra = json!({});
    if action == "AssumeRoleWithOIDC" {
        let provider = get("OIDCProviderArn");
        if !provider.starts_with(&format!("acs:ram::{ACCOUNT_ID}:oidc-provider/")) {
            return Err(ApiError::bad_request(
                "EntityNotExist.OIDCProvider",
                "The OIDC provider does not exist.",
            ));
        }
        let claims = oidc_claims(get("OIDCToken"), now)?;
        extra = json!({ "OIDCTokenInfo": {
            "Subject": claims.get("sub").cloned().unwrap_or_default(),
            "Issuer": claims.get("iss").cloned().unwrap_or_default(),
            "ClientIds": OIDC_AUDIENCE,
        }});
    }
    let ttl = SignedDuration::from_secs(duration)
        .min(SignedDuration::try_from(core.settings.sts_credential_ttl).unwrap_or_default());
    let credentials = issue(core, now, ttl);
    let mut answer = json!({
        "AssumedRoleUser": {
            "AssumedRoleId": format!("3{}:{session}", &core.ids.resource_id("r")[2..]),
            "Arn": format!("acs:ram::{ACCOUNT_ID}:role/{role_name}/{session}"),
        },
        "Credentials": credentials,
    });
    if let (Some(answer), Value::Object(extra)) = (answer.as_object_mut(), extra) {
        answer.extend(extra);
    }
    tracing::info!(
        action,
        role = role_name,
        session,
        "issued temporary credentials"
    );
    Ok(answer)
}

/// The claims of a well-formed, unexpired JWT for [`OIDC_AUDIENCE`].
fn oidc_claims(token: &str, now: Timestamp) -> Result<HashMap<String, String>, ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(
            "AuthenticationFail.OIDCToken.Invalid",
            format!("The OIDC token is invalid: {why}."),
        )
    };
    if !(4..=20_000).contains(&token.len()) {
        return Err(invalid("it must be 4 to 20000 characters"));
    }
    let payload = token
        .split('.')
        .nth(1)
        .filter(|_| token.split('.').count() == 3)
        .ok_or_else(|| invalid("it is not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid("its payload is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| invalid("its payload is not JSON"))?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("it has no exp"))?;
    if exp <= now.as_second() {
        return Err(ApiError::bad_request(
            "AuthenticationFail.OIDCToken.Expired",
            "The OIDC token has expired.",
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == OIDC_AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(OIDC_AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return Err(ApiError::bad_request(
            "AuthenticationFail.OIDCToken.AudienceMismatch",
            format!("The OIDC token's audience is not {OIDC_AUDIENCE}."),
        ));
    }
    Ok(["sub", "iss"]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), claims.get(k)?.as_str()?.to_owned())))
        .collect())
}

/// New temporary credentials valid for `ttl`, registered with the verifier; the JSON STS and
/// the metadata service answer with.
fn issue(core: &Core, now: Timestamp, ttl: SignedDuration) -> Value {
    let id = format!("STS.{}", core.ids.resource_id("nt").replace('-', ""));
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let token = format!(
        "CAIS{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let expires = now.checked_add(ttl).unwrap_or(now);
    core.verifier.issue(
        id.clone(),
        Issued {
            secret: secret.clone(),
            token: token.clone(),
            expires,
        },
        now,
    );
    json!({
        "AccessKeyId": id,
        "AccessKeySecret": secret,
        "SecurityToken": token,
        "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

// === the ECS metadata service ===

/// The metadata service's routes.
pub(crate) fn metadata_router() -> Router<Arc<Core>> {
    Router::new()
        .route("/latest/api/token", put(imds_token))
        .route(
            "/latest/meta-data/ram/security-credentials/",
            get(role_name),
        )
        .route(
            "/latest/meta-data/ram/security-credentials/{role}",
            get(role_credentials),
        )
}

/// IMDSv2: a session token for `X-aliyun-ecs-metadata-token-ttl-seconds` (1 to 21600).
async fn imds_token(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    let ttl = headers
        .get("x-aliyun-ecs-metadata-token-ttl-seconds")
        .and_then(|v| v.to_str().ok()?.parse::<i64>().ok())
        .filter(|t| (1..=21_600).contains(t));
    let Some(ttl) = ttl else {
        return (
            StatusCode::BAD_REQUEST,
            "X-aliyun-ecs-metadata-token-ttl-seconds must be 1 to 21600",
        )
            .into_response();
    };
    let token = uuid::Uuid::new_v4().simple().to_string();
    let expires = core
        .now()
        .checked_add(SignedDuration::from_secs(ttl))
        .unwrap_or_else(|_| core.now());
    let now = core.now();
    let mut tokens = core.imds_tokens.lock();
    tokens.retain(|_, until| *until > now);
    tokens.insert(token.clone(), expires);
    drop(tokens);
    token.into_response()
}

/// A request's IMDSv2 token, when it carries one, must be one the service gave and unexpired.
fn token_ok(core: &Core, headers: &HeaderMap) -> bool {
    match headers.get("x-aliyun-ecs-metadata-token") {
        None => true, // IMDSv1
        Some(token) => token
            .to_str()
            .ok()
            .and_then(|t| core.imds_tokens.lock().get(t).copied())
            .is_some_and(|expires| expires > core.now()),
    }
}

async fn role_name(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    if !token_ok(&core, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    core.settings.ecs_ram_role.clone().into_response()
}

async fn role_credentials(
    State(core): State<Arc<Core>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !token_ok(&core, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if role != core.settings.ecs_ram_role {
        return StatusCode::NOT_FOUND.into_response();
    }
    let now = core.now();
    // ECS issues six-hour credentials; the emulator's cap applies as for STS.
    let ttl = SignedDuration::from_hours(6)
        .min(SignedDuration::try_from(core.settings.sts_credential_ttl).unwrap_or_default());
    let mut credentials = issue(&core, now, ttl);
    if let Some(c) = credentials.as_object_mut() {
        c.insert("Code".into(), "Success".into());
        c.insert(
            "LastUpdated".into(),
            now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
        );
    }
    tracing::info!(role, "metadata service issued instance-role credentials");
    axum::Json(credentials).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    #[test]
    fn oidc_tokens_are_checked_for_form_expiry_and_audience() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let later = now.as_second() + 600;
        let good = jwt(
            &json!({"aud": [OIDC_AUDIENCE], "exp": later, "sub": "system:serviceaccount:kube-system:eci-vk", "iss": "https://k"}),
        );
        let claims = oidc_claims(&good, now).expect("good");
        assert_eq!(claims["sub"], "system:serviceaccount:kube-system:eci-vk");
        let code = |t: &str| oidc_claims(t, now).expect_err("refused").code;
        assert_eq!(code("abc.def"), "AuthenticationFail.OIDCToken.Invalid");
        assert_eq!(
            code(&jwt(
                &json!({"aud": OIDC_AUDIENCE, "exp": now.as_second() - 1})
            )),
            "AuthenticationFail.OIDCToken.Expired"
        );
        assert_eq!(
            code(&jwt(
                &json!({"aud": "https://kubernetes.default.svc", "exp": later})
            )),
            "AuthenticationFail.OIDCToken.AudienceMismatch"
        );
    }
}
