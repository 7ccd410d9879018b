//! The ECI OpenAPI client: one `reqwest::Client`, an endpoint, credentials, a budget and a
//! retry policy, and the single place where requests are signed and sent.
//!
//! # Expected flow of one call ([`Client::send`])
//! 1. The typed request is flattened to parameters once ([`super::params::to_params`]);
//!    `RegionId` is added from the client, and for actions that take a `ClientToken` one is
//!    generated if the caller gave none, so every retry carries the same token and the service
//!    can deduplicate.
//! 2. Each attempt takes a token from the per-action [`Budget`], then is signed afresh (new
//!    timestamp, new nonce, new signature) and sent as `POST /` with the parameters in the query
//!    string and an empty body, as the current SDK does (reference §1.1).
//! 3. A retryable failure ([`Error::is_retryable`]) waits per the [`RetryPolicy`] and tries
//!    again, up to `max_attempts`; anything else is returned at once.
//!
//! # Guarantees
//! The AccessKey secret and the security token are never logged, never put in an error, and not
//! shown by `Debug`. Request parameters are not logged either (they may hold registry passwords).

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use jiff::Timestamp;
use reqwest::{
    Url,
    header::{ACCEPT, HeaderMap, HeaderName, HeaderValue},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::Instrument as _;

use super::{
    ApiError, Budget, BudgetConfig, Error, Provider, RetryPolicy,
    params::{decode, to_params},
    sign,
};

/// The API version of every ECI action.
pub const API_VERSION: &str = "2018-08-08";

/// A typed ECI action: its request type serialises to the action's parameters.
pub trait Action: Serialize + Sync {
    /// The action name, sent as `Action` / `x-acs-action`.
    const NAME: &'static str;
    /// Whether the action accepts `ClientToken` (idempotent creation, deletion and update).
    const TAKES_CLIENT_TOKEN: bool = false;
    /// Whether a request whose outcome is unknown (timeout, dropped connection, 5xx) may be
    /// sent again. True for reads and for actions deduplicated by `ClientToken`; false for
    /// side effects without a token (`ExecContainerCommand`), which are retried only when the
    /// service said it did not run them (throttling).
    const SAFE_TO_REPEAT: bool = true;
    /// The decoded answer.
    type Response: DeserializeOwned;
}

/// The answer of actions that return nothing but a request id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EmptyResponse {
    /// Id of the request, for support.
    pub request_id: String,
}

/// Where the API is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `https://eci.<region>.aliyuncs.com/`.
    Public,
    /// `https://eci-vpc.<region>.aliyuncs.com/`, reachable from inside an Alibaba Cloud VPC.
    Vpc,
    /// A full URL, e.g. `http://127.0.0.1:8080/` for the local emulator.
    Url(String),
}

impl Endpoint {
    /// The base URL of this endpoint for `region`.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] for a region that is not a host label, or an override that is
    /// not an absolute `http(s)` URL.
    pub fn base_url(&self, region: &str) -> Result<Url, Error> {
        let host_prefix = match self {
            Endpoint::Public => "eci",
            Endpoint::Vpc => "eci-vpc",
            Endpoint::Url(url) => {
                let invalid = |reason| Error::InvalidEndpoint {
                    endpoint: url.clone(),
                    reason,
                };
                let parsed = Url::parse(url).map_err(|_| invalid("not a URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(invalid("must be an http:// or https:// URL with a host"));
                }
                if parsed.query().is_some() {
                    return Err(invalid("must not have a query string"));
                }
                return Ok(parsed);
            }
        };
        let valid_region = !region.is_empty()
            && region.len() <= 63
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !region.starts_with('-')
            && !region.ends_with('-');
        if !valid_region {
            return Err(Error::InvalidEndpoint {
                endpoint: region.to_owned(),
                reason: "region id must be lowercase letters, digits and '-'",
            });
        }
        Url::parse(&format!("https://{host_prefix}.{region}.aliyuncs.com/")).map_err(|_| {
            Error::InvalidEndpoint {
                endpoint: region.to_owned(),
                reason: "region id does not form a valid host",
            }
        })
    }
}

/// Which signature the client puts on requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// HMAC-SHA1 over all parameters, sent as the `Signature` parameter.
    V1,
    /// ACS3-HMAC-SHA256 in the `Authorization` header: what current SDKs send.
    #[default]
    V3,
}

/// Source of the current time, for `Timestamp` / `x-acs-date`.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;
/// Source of fresh nonces, for `SignatureNonce` / `x-acs-signature-nonce`.
pub type NonceSource = Arc<dyn Fn() -> String + Send + Sync>;
/// Called after every attempt, e.g. to count API calls by action and code for metrics.
pub type Observer = Arc<dyn Fn(&AttemptRecord<'_>) + Send + Sync>;

/// What one attempt of a call came to. Carries no parameters and no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord<'a> {
    /// The action.
    pub action: &'static str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// HTTP status, `None` if no answer arrived.
    pub status: Option<u16>,
    /// The API error code of a failed answer.
    pub code: Option<&'a str>,
    /// Whether the service throttled the attempt.
    pub throttled: bool,
    /// Time spent waiting for the local budget before sending.
    pub budget_wait: Duration,
    /// Time from sending to the end of the answer.
    pub elapsed: Duration,
}

/// Everything a [`Client`] needs. Build with [`ClientConfig::new`], then adjust fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// Region id, e.g. `cn-hangzhou`: part of the endpoint and sent as `RegionId`.
    pub region: String,
    /// Public, VPC or an explicit URL.
    pub endpoint: Endpoint,
    /// Where the AccessKey pair (and STS token) of each request comes from: fixed
    /// credentials convert into a [`Provider`]; temporary ones are refreshed by it.
    pub credentials: Provider,
    /// V3 by default.
    pub signature: SignatureVersion,
    /// Limit on one attempt, from connect to the end of the body.
    pub timeout: Duration,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// The local per-action budget.
    pub budget: BudgetConfig,
    /// Clock for timestamps (a seam for tests).
    pub clock: Clock,
    /// Nonce generator (a seam for tests).
    pub nonce: NonceSource,
    /// Per-attempt hook for metrics; none by default.
    pub observer: Option<Observer>,
    /// CA certificates (DER) trusted besides the system's, for an `https` endpoint behind a
    /// private CA (a proxy, or the emulator served over TLS).
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Asked right before each attempt is sent: `false` fails the call with
    /// [`Error::NotLeader`] and sends nothing (a node whose leader term has ended). None: always.
    pub gate: Option<Gate>,
}

/// See [`ClientConfig::gate`].
pub type Gate = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

impl ClientConfig {
    /// Defaults: public endpoint, V3, 30 s timeout, 10 s connect timeout, default retry policy
    /// and ECI's quotas.
    pub fn new(region: impl Into<String>, credentials: impl Into<Provider>) -> Self {
        Self {
            region: region.into(),
            endpoint: Endpoint::Public,
            credentials: credentials.into(),
            signature: SignatureVersion::V3,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            user_agent: format!("eci-virtual-kubelet/{}", env!("CARGO_PKG_VERSION")),
            retry: RetryPolicy::default(),
            budget: BudgetConfig::default(),
            clock: Arc::new(Timestamp::now),
            nonce: Arc::new(|| uuid::Uuid::new_v4().simple().to_string()),
            observer: None,
            gate: None,
            extra_root_certificates: Vec::new(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("signature", &self.signature)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// The ECI OpenAPI client. Cheap to clone; clones share the connection pool and the budget.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    config: ClientConfig,
    budget: Budget,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What one attempt returned: a 2xx body, or an error.
type Attempt = Result<(u16, Vec<u8>), Error>;

impl Client {
    /// Builds the client and its HTTP connection pool.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] for a bad region or endpoint, [`Error::Tls`] if an `https`
    /// endpoint is configured on a machine without CA certificates, [`Error::HttpClient`] if the
    /// HTTP client cannot start.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let base = config.endpoint.base_url(&config.region)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(
                base.scheme() == "https",
                &config.extra_root_certificates,
            )?)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(Error::HttpClient)?;
        let budget = Budget::new(config.budget.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                budget,
            }),
        })
    }

    /// The same client (connection pool, quota budget, settings) whose calls also ask `gate`
    /// first ([`ClientConfig::gate`]): the node's own calls, held back outside its leader
    /// term, beside ungated ones that share the account's budget with them.
    pub fn gated(&self, gate: Gate) -> Self {
        let mut config = self.inner.config.clone();
        config.gate = Some(gate);
        Self {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                base: self.inner.base.clone(),
                config,
                budget: self.inner.budget.clone(),
            }),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The region this client speaks for.
    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    /// The sustained calls a second the local budget allows `action`; `None` when the budget
    /// is off. Callers that page through a large answer pace themselves with it.
    pub fn sustained_rate(&self, action: &str) -> Option<f64> {
        let config = self.inner.budget.config();
        config.enabled.then(|| config.quota_for(action).per_second)
    }

    /// Calls a typed action (see the module docs for the flow).
    ///
    /// # Errors
    /// [`Error::Api`] for the service's error answer (after retries if it was transient),
    /// [`Error::Transport`] if no answer arrived, [`Error::Decode`] for an unexpected body.
    pub async fn send<A: Action>(&self, request: &A) -> Result<A::Response, Error> {
        let mut params = to_params(request).map_err(|reason| Error::Encode {
            action: A::NAME,
            reason,
        })?;
        params
            .entry("RegionId".to_owned())
            .or_insert_with(|| self.inner.config.region.clone());
        if A::TAKES_CLIENT_TOKEN {
            params
                .entry("ClientToken".to_owned())
                .or_insert_with(|| uuid::Uuid::new_v4().to_string());
        }
        let (status, body) = self.call_with(A::NAME, &params, A::SAFE_TO_REPEAT).await?;
        decode(&body).map_err(|source| Error::Decode {
            action: A::NAME,
            status,
            source,
        })
    }

    /// Calls `action` with already-flattened parameters, retrying transient failures; returns
    /// the status and body of the successful answer. `RegionId` is not added here.
    ///
    /// # Errors
    /// As [`Client::send`], without decoding.
    pub async fn call(
        &self,
        action: &'static str,
        params: &BTreeMap<String, String>,
    ) -> Result<(u16, Vec<u8>), Error> {
        self.call_with(action, params, true).await
    }

    /// [`Client::call`], retrying failures of unknown outcome only if `safe_to_repeat`.
    async fn call_with(
        &self,
        action: &'static str,
        params: &BTreeMap<String, String>,
        safe_to_repeat: bool,
    ) -> Result<(u16, Vec<u8>), Error> {
        let span = tracing::debug_span!("eci_call", action);
        async {
            let policy = &self.inner.config.retry;
            let max = policy.max_attempts.max(1);
            let mut attempt = 1;
            loop {
                // Credentials first: when they cannot be had, nothing is sent, so the call may
                // be tried again whatever the action, without spending the quota budget.
                let credentials = match self.inner.config.credentials.current().await {
                    Ok(credentials) => credentials,
                    Err(e) if attempt < max => {
                        let wait = policy.backoff(attempt, None);
                        tracing::info!(
                            attempt,
                            wait_ms = wait.as_millis(),
                            error = &e as &dyn std::error::Error,
                            "no ECI credentials yet, retrying"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let budget_wait = self.inner.budget.acquire(action).await;
                // Asked after the budget wait, which may be long: the term may have ended.
                if let Some(gate) = &self.inner.config.gate
                    && !gate()
                {
                    return Err(Error::NotLeader { action });
                }
                let sent = tokio::time::Instant::now();
                let result = self.attempt(action, params, &credentials).await;
                if let Some(observe) = &self.inner.config.observer {
                    let (status, code, throttled) = match &result {
                        Ok((status, _)) => (Some(*status), None, false),
                        Err(Error::Api(api)) => (
                            Some(api.status),
                            Some(api.code.as_str()),
                            api.is_throttling(),
                        ),
                        Err(_) => (None, None, false),
                    };
                    observe(&AttemptRecord {
                        action,
                        attempt,
                        status,
                        code,
                        throttled,
                        budget_wait,
                        elapsed: sent.elapsed(),
                    });
                }
                match result {
                    Ok(ok) => return Ok(ok),
                    Err(e)
                        if attempt < max
                            && e.is_retryable()
                            && (safe_to_repeat || e.api().is_some_and(ApiError::is_throttling)) =>
                    {
                        let hint = e.api().and_then(|a| a.retry_after);
                        let wait = policy.backoff(attempt, hint);
                        tracing::info!(
                            attempt,
                            code = e.code().unwrap_or("transport"),
                            wait_ms = wait.as_millis(),
                            error = &e as &dyn std::error::Error,
                            "ECI call failed transiently, retrying"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One signed attempt.
    async fn attempt(
        &self,
        action: &'static str,
        params: &BTreeMap<String, String>,
        credentials: &super::Credentials,
    ) -> Attempt {
        let cfg = &self.inner.config;
        let timestamp = (cfg.clock)().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = (cfg.nonce)();
        let (url, headers) = signed_request(
            &self.inner.base,
            cfg.signature,
            action,
            params,
            credentials,
            &timestamp,
            &nonce,
        )?;
        let transport = |source: reqwest::Error| Error::Transport {
            action,
            source: source.without_url(),
        };
        let response = self
            .inner
            .http
            .post(url)
            .headers(headers)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = rate_limit_hint(response.headers());
        let body = response.bytes().await.map_err(transport)?.to_vec();
        if (200..300).contains(&status) {
            Ok((status, body))
        } else {
            Err(Error::Api(Box::new(api_error(
                action,
                status,
                &body,
                retry_after,
            ))))
        }
    }
}

/// The TLS settings of the client: rustls with the ring provider chosen explicitly (no process
/// default is read or installed), system roots plus `extra_roots` for `https` endpoints.
///
/// A plain `http` endpoint (the emulator on loopback) gets an empty root store instead, so the
/// client starts on machines without a CA bundle; reqwest needs a TLS config either way.
pub(crate) fn tls_config(
    https: bool,
    extra_roots: &[Vec<u8>],
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?;
    let mut config = if https {
        let extra = extra_roots
            .iter()
            .map(|der| rustls::pki_types::CertificateDer::from(der.clone()));
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(Error::Tls)?;
        // "dangerous" is rustls' name for any custom verifier; this one is the platform's
        // WebPKI verification, as `with_platform_verifier` installs it.
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The request the client sends for `action` with `params`: its URL (with the query) and its
/// headers, signed as `signature` says. Apart from the I/O, so the emulator's tests can check
/// that what the client signs its verifier accepts (sign → verify, issue #20).
///
/// # Errors
/// [`Error::Encode`] when a value cannot be a header (a security token with control
/// characters).
pub(crate) fn signed_request(
    base: &Url,
    signature: SignatureVersion,
    action: &'static str,
    params: &BTreeMap<String, String>,
    credentials: &super::Credentials,
    timestamp: &str,
    nonce: &str,
) -> Result<(Url, HeaderMap), Error> {
    let mut url = base.clone();
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    // `action` may come from `Client::call`: checked, never `from_static` (which panics).
    insert_header(&mut headers, "x-acs-action", action, action)?;
    headers.insert("x-acs-version", HeaderValue::from_static(API_VERSION));
    match signature {
        SignatureVersion::V1 => {
            let mut all = params.clone();
            for (k, v) in [
                ("Action", action),
                ("Version", API_VERSION),
                ("Format", "JSON"),
                ("AccessKeyId", credentials.access_key_id()),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureVersion", "1.0"),
                ("SignatureNonce", nonce),
                ("Timestamp", timestamp),
            ] {
                all.insert(k.to_owned(), v.to_owned());
            }
            if let Some(token) = credentials.security_token() {
                all.insert("SecurityToken".to_owned(), token.to_owned());
            }
            let string_to_sign = sign::v1_string_to_sign("POST", &all);
            let signature = sign::v1_signature(credentials.secret(), &string_to_sign);
            all.insert("Signature".to_owned(), signature);
            url.set_query(Some(&encode_query(&all)));
        }
        SignatureVersion::V3 => {
            let query = encode_query(params);
            url.set_query((!query.is_empty()).then_some(query.as_str()));
            let mut signed = BTreeMap::new();
            signed.insert("host".to_owned(), host_header(&url));
            signed.insert("x-acs-action".to_owned(), action.to_owned());
            signed.insert("x-acs-version".to_owned(), API_VERSION.to_owned());
            signed.insert("x-acs-date".to_owned(), timestamp.to_owned());
            signed.insert("x-acs-signature-nonce".to_owned(), nonce.to_owned());
            signed.insert(
                "x-acs-content-sha256".to_owned(),
                sign::EMPTY_PAYLOAD_SHA256.to_owned(),
            );
            if let Some(token) = credentials.security_token() {
                signed.insert("x-acs-security-token".to_owned(), token.to_owned());
            }
            let (canonical, signed_names) = sign::v3_canonical_request(
                "POST",
                url.path(),
                params,
                &signed,
                sign::EMPTY_PAYLOAD_SHA256,
            );
            let signature = sign::v3_signature(credentials.secret(), &canonical);
            let authorization =
                sign::v3_authorization(credentials.access_key_id(), &signed_names, &signature);
            signed.remove("host"); // reqwest writes the same Host itself.
            for (name, value) in signed {
                insert_header(&mut headers, &name, &value, action)?;
            }
            insert_header(&mut headers, "authorization", &authorization, action)?;
        }
    }
    Ok((url, headers))
}

/// `k=v&…` with RFC 3986 encoding, the exact bytes the signatures were computed over.
fn encode_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Host` header reqwest will send: host, plus the port when it is not the scheme's default.
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn insert_header(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    action: &'static str,
) -> Result<(), Error> {
    // Values are ASCII we produced (or the STS token); a token with control characters is the
    // only way to fail here, and the error must not echo it.
    let value = HeaderValue::from_str(value).map_err(|_| Error::Encode {
        action,
        reason: format!("header {name} has characters not allowed in HTTP"),
    })?;
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Encode {
        action,
        reason: format!("invalid header name {name}"),
    })?;
    headers.insert(name, value);
    Ok(())
}

/// `TimeLeft:<ms>` from `x-ratelimit-user-api` or `x-ratelimit-user`, the SDK's throttling hint.
fn rate_limit_hint(headers: &HeaderMap) -> Option<Duration> {
    ["x-ratelimit-user-api", "x-ratelimit-user"]
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find_map(|value| {
            value.split(',').find_map(|part| {
                let ms = part.trim().strip_prefix("TimeLeft:")?.trim();
                ms.parse::<u64>().ok().map(Duration::from_millis)
            })
        })
}

/// The error envelope, with the lower-case spellings the SDK also accepts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    #[serde(rename = "RequestId", alias = "requestId")]
    request_id: String,
    #[serde(rename = "HostId", alias = "hostId")]
    host_id: String,
    #[serde(rename = "Code", alias = "code")]
    code: String,
    #[serde(rename = "Message", alias = "message")]
    message: String,
    #[serde(rename = "Recommend", alias = "recommend")]
    recommend: String,
}

/// A service message without the request's secrets: the gateway answers a V1
/// `SignatureDoesNotMatch` with its string to sign, which holds every parameter, the
/// `SecurityToken` among them. That part is cut, and any `SecurityToken` left is masked.
fn scrub(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let kept = match lower.find("string to sign") {
        Some(at) => format!("{}[string to sign withheld]", &message[..at]),
        None => message.to_owned(),
    };
    let mut out = String::with_capacity(kept.len());
    let mut rest = kept.as_str();
    while let Some(at) = rest.find("SecurityToken") {
        let (before, after) = rest.split_at(at + "SecurityToken".len());
        out.push_str(before);
        rest = after;
        if let Some(value) = ["=", "%3D", ":"]
            .iter()
            .find_map(|sep| after.strip_prefix(sep))
        {
            let end = value
                .find(|c: char| c == '&' || c == ',' || c.is_whitespace())
                .unwrap_or(value.len());
            out.push_str("=[REDACTED]");
            rest = &value[end..];
        }
    }
    out.push_str(rest);
    out
}

/// Builds the typed error of a non-2xx answer; a body that is not an envelope keeps its start as
/// the message.
pub(crate) fn api_error(
    action: &'static str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ApiError {
    let envelope = decode::<Envelope>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        Envelope {
            message: text.chars().take(200).collect(),
            ..Envelope::default()
        }
    });
    ApiError {
        action,
        status,
        code: envelope.code,
        message: scrub(&envelope.message),
        request_id: envelope.request_id,
        host_id: envelope.host_id,
        recommend: envelope.recommend,
        retry_after,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
