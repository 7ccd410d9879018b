//! Security Token Service: `AssumeRole` (signed with other credentials) and
//! `AssumeRoleWithOIDC` (anonymous, authenticated by an OIDC token: RRSA).
//!
//! Both are RPC actions of STS version 2015-04-01, sent as a form body to the STS endpoint.
//! `AssumeRoleWithOIDC` carries no `Signature`, `SignatureMethod`, `SignatureVersion` or
//! `AccessKeyId`: "AssumeRoleWithOIDC" on help.aliyun.com
//! (<https://help.aliyun.com/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc>)
//! documents it as callable anonymously. `DurationSeconds` is 900 to the role's
//! `MaxSessionDuration`, 3600 by default; `RoleSessionName` 2 to 64 of `[A-Za-z0-9.@_-]`.

use std::{collections::BTreeMap, path::PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

use super::{Credentials, provider::Fetched, provider::Net};
use crate::eci::{Error, client::api_error, params::decode, sign};

/// The STS API version.
pub const STS_API_VERSION: &str = "2015-04-01";
/// STS's public endpoint, what the SDKs use unless told otherwise.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com/";
/// The session lifetime asked for, STS's default.
pub const DEFAULT_DURATION_SECONDS: u32 = 3600;

/// A role to assume with `AssumeRole`.
#[derive(Debug, Clone)]
pub(crate) struct RoleArn {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration_seconds: u32,
}

/// A role to assume with an OIDC token (RRSA).
#[derive(Debug, Clone)]
pub(crate) struct OidcRole {
    pub role_arn: String,
    pub provider_arn: String,
    pub token_file: PathBuf,
    pub session_name: String,
    pub duration_seconds: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    credentials: Issued,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Issued {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

/// STS `AssumeRoleWithOIDC` with the token read from its file now (projected tokens rotate).
pub(crate) async fn assume_role_with_oidc(
    net: &Net,
    role: &OidcRole,
    source_name: &str,
) -> Result<Fetched, Error> {
    let token = tokio::fs::read_to_string(&role.token_file)
        .await
        .map_err(|e| Error::CredentialsUnavailable {
            source_name: source_name.to_owned(),
            reason: format!(
                "cannot read the OIDC token file {}: {e}",
                role.token_file.display()
            ),
            transient: false,
        })?;
    let mut params = common("AssumeRoleWithOIDC");
    params.insert("RoleArn".into(), role.role_arn.clone());
    params.insert("OIDCProviderArn".into(), role.provider_arn.clone());
    params.insert("OIDCToken".into(), token.trim().to_owned());
    params.insert("RoleSessionName".into(), role.session_name.clone());
    params.insert("DurationSeconds".into(), role.duration_seconds.to_string());
    send(net, "AssumeRoleWithOIDC", &params, source_name).await
}

/// STS `AssumeRole`, signed (V1) with `base`.
pub(crate) async fn assume_role(
    net: &Net,
    base: &Credentials,
    role: &RoleArn,
    source_name: &str,
) -> Result<Fetched, Error> {
    let mut params = common("AssumeRole");
    params.insert("RoleArn".into(), role.role_arn.clone());
    params.insert("RoleSessionName".into(), role.session_name.clone());
    params.insert("DurationSeconds".into(), role.duration_seconds.to_string());
    if let Some(id) = &role.external_id {
        params.insert("ExternalId".into(), id.clone());
    }
    params.insert("AccessKeyId".into(), base.access_key_id().to_owned());
    params.insert("SignatureMethod".into(), "HMAC-SHA1".into());
    params.insert("SignatureVersion".into(), "1.0".into());
    if let Some(token) = base.security_token() {
        params.insert("SecurityToken".into(), token.to_owned());
    }
    let signature = sign::v1_signature(base.secret(), &sign::v1_string_to_sign("POST", &params));
    params.insert("Signature".into(), signature);
    send(net, "AssumeRole", &params, source_name).await
}

fn common(action: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    params.insert("Action".into(), action.to_owned());
    params.insert("Version".into(), STS_API_VERSION.to_owned());
    params.insert("Format".into(), "JSON".into());
    params.insert(
        "Timestamp".into(),
        Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    params.insert(
        "SignatureNonce".into(),
        uuid::Uuid::new_v4().simple().to_string(),
    );
    params
}

async fn send(
    net: &Net,
    action: &'static str,
    params: &BTreeMap<String, String>,
    source_name: &str,
) -> Result<Fetched, Error> {
    let unavailable = |reason: String, transient: bool| Error::CredentialsUnavailable {
        source_name: source_name.to_owned(),
        reason,
        transient,
    };
    let body = serde_urlencoded::to_string(params)
        .map_err(|e| unavailable(format!("cannot encode the {action} request: {e}"), false))?;
    let response = net
        .http
        .post(net.sts.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            unavailable(
                format!("STS {action} got no answer: {}", e.without_url()),
                true,
            )
        })?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| {
        unavailable(
            format!("STS {action} answer was cut short: {}", e.without_url()),
            true,
        )
    })?;
    if !(200..300).contains(&status) {
        let api = api_error(action, status, &bytes, None);
        return Err(unavailable(
            format!(
                "STS {action} answered HTTP {status} {}: {}",
                api.code, api.message
            ),
            api.is_retryable(),
        ));
    }
    let answer: Answer = decode(&bytes).map_err(|e| {
        unavailable(
            format!("STS {action} answer is not the documented JSON: {e}"),
            false,
        )
    })?;
    let issued = answer.credentials;
    let expires: Timestamp = issued.expiration.parse().map_err(|_| {
        unavailable(
            format!("STS {action} answered an Expiration that is not a time"),
            false,
        )
    })?;
    Ok(Fetched {
        credentials: Credentials::new(
            issued.access_key_id,
            issued.access_key_secret,
            Some(issued.security_token),
        ),
        expires: Some(expires),
    })
}
