//! The ECS instance's RAM role, from the instance metadata service (`100.100.100.200`).
//!
//! As ECS documents it ("Instance metadata", "Instance RAM roles"), hardened mode (IMDSv2)
//! first: `PUT /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds` gives a token
//! that every later request carries in `X-aliyun-ecs-metadata-token`. When the token cannot be
//! had and `ALIBABA_CLOUD_IMDSV1_DISABLED` is not set, the plain requests are tried, as the SDKs
//! do. The role's name is `GET /latest/meta-data/ram/security-credentials/` unless given; its
//! credentials are `GET …/security-credentials/<role>`: `AccessKeyId`, `AccessKeySecret`,
//! `SecurityToken`, `Expiration` and `Code: "Success"`.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use super::{
    Credentials,
    provider::{Fetched, Net},
};
use crate::eci::{Error, params::decode};

/// ECS's metadata service.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200/";
/// Lifetime asked for the IMDSv2 token, in seconds (the SDKs' value).
const TOKEN_TTL_SECONDS: &str = "21600";
/// One metadata request's limit: the service is on the host, an answer is immediate.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// An ECS instance RAM role.
#[derive(Debug, Clone)]
pub(crate) struct EcsRole {
    /// The role's name; discovered from the metadata service when `None`.
    pub role_name: Option<String>,
    /// Refuse the plain (IMDSv1) requests when no token can be had.
    pub imdsv1_disabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    code: String,
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

impl EcsRole {
    pub(crate) async fn fetch(&self, net: &Net, source_name: &str) -> Result<Fetched, Error> {
        let unavailable = |reason: String, transient: bool| Error::CredentialsUnavailable {
            source_name: source_name.to_owned(),
            reason,
            transient,
        };
        let url = |path: &str| {
            net.metadata
                .join(path)
                .map_err(|_| unavailable(format!("bad metadata path {path}"), false))
        };
        let token = match net
            .http
            .put(url("latest/api/token")?)
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.text().await.ok(),
            _ => None,
        };
        if token.is_none() && self.imdsv1_disabled {
            return Err(unavailable(
                "the metadata service gave no IMDSv2 token and ALIBABA_CLOUD_IMDSV1_DISABLED is set"
                    .into(),
                true,
            ));
        }
        let get = |path: String| {
            let mut request = net.http.get(url(&path)?).timeout(REQUEST_TIMEOUT);
            if let Some(token) = &token {
                request = request.header("X-aliyun-ecs-metadata-token", token.trim());
            }
            Ok::<_, Error>(request)
        };
        let read = |request: reqwest::RequestBuilder| async move {
            let response = request.send().await.map_err(|e| {
                unavailable(
                    format!("the metadata service did not answer: {}", e.without_url()),
                    true,
                )
            })?;
            let status = response.status();
            let body = response
                .bytes()
                .await
                .map_err(|e| unavailable(format!("metadata answer cut short: {e}"), true))?;
            if !status.is_success() {
                return Err(unavailable(
                    format!(
                        "the metadata service answered HTTP {} (is a RAM role attached to this instance?)",
                        status.as_u16()
                    ),
                    status.is_server_error(),
                ));
            }
            Ok(body)
        };
        let role = match &self.role_name {
            Some(role) => role.clone(),
            None => {
                let body = read(get("latest/meta-data/ram/security-credentials/".into())?).await?;
                String::from_utf8_lossy(&body)
                    .lines()
                    .next()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| {
                        unavailable("no RAM role is attached to this instance".into(), false)
                    })?
                    .to_owned()
            }
        };
        let body = read(get(format!(
            "latest/meta-data/ram/security-credentials/{role}"
        ))?)
        .await?;
        let answer: Answer = decode(&body).map_err(|e| {
            unavailable(
                format!("the metadata service's credentials are not the documented JSON: {e}"),
                false,
            )
        })?;
        if answer.code != "Success" {
            return Err(unavailable(
                format!("the metadata service answered Code {:?}", answer.code),
                true,
            ));
        }
        let expires: Timestamp = answer
            .expiration
            .parse()
            .map_err(|_| unavailable("the Expiration is not a time".into(), false))?;
        Ok(Fetched {
            credentials: Credentials::new(
                answer.access_key_id,
                answer.access_key_secret,
                Some(answer.security_token),
            ),
            expires: Some(expires),
        })
    }
}
