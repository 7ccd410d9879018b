//! HTTP tests: an emulator on `127.0.0.1:0`, signed requests built with the client's `sign`
//! functions, over real loopback HTTP.

mod errors;
mod faults;
mod lifecycle;
mod persistence;
mod runtime;
mod storage;
mod wire;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use jiff::Timestamp;
use serde_json::Value;

use super::{AgentTarget, Clock, Credentials, Emulator, Handle, Quotas, Settings, SystemClock};
use crate::{agent::SimulatedConfig, eci::sign};

pub const ID: &str = "test-access-key-id";
pub const SECRET: &str = "test-access-key-secret";
pub const REGION: &str = "cn-hangzhou";

/// How a request is signed and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// V1, every parameter in the query.
    V1Get,
    /// V1, every parameter in a form body.
    V1Post,
    /// V3, business parameters in the query.
    V3,
}

/// One request, with knobs to break it.
#[derive(Debug, Clone)]
pub struct Req {
    pub action: String,
    pub params: Vec<(String, String)>,
    pub style: Style,
    pub secret: String,
    pub time: Option<Timestamp>,
    pub nonce: Option<String>,
    pub region: bool,
}

impl Req {
    pub fn new(action: &str, params: &[(&str, &str)]) -> Self {
        Self {
            action: action.into(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            style: Style::V3,
            secret: SECRET.into(),
            time: None,
            nonce: None,
            region: true,
        }
    }
    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = secret.into();
        self
    }
    pub fn time(mut self, t: Timestamp) -> Self {
        self.time = Some(t);
        self
    }
    pub fn nonce(mut self, n: &str) -> Self {
        self.nonce = Some(n.into());
        self
    }
    pub fn without_region(mut self) -> Self {
        self.region = false;
        self
    }
    pub fn param(mut self, k: &str, v: &str) -> Self {
        self.params.push((k.into(), v.into()));
        self
    }
}

/// A signing client for one emulator.
pub struct Client {
    addr: std::net::SocketAddr,
    clock: Arc<dyn Clock>,
    nonce: AtomicU64,
}

/// An answer: HTTP status, body and the rate-limit header.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub ratelimit: Option<String>,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["Code"].as_str().unwrap_or("")
    }
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "unexpected error: {}", self.body);
        self.body
    }
}

fn encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Client {
    pub fn new(handle: &Handle, clock: Arc<dyn Clock>) -> Self {
        Self {
            addr: handle.addr(),
            clock,
            nonce: AtomicU64::new(0),
        }
    }

    pub fn fresh_nonce(&self) -> String {
        format!(
            "nonce-{}-{}",
            std::process::id(),
            self.nonce.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub async fn send(&self, req: Req) -> Answer {
        let time = req.time.unwrap_or_else(|| self.clock.now());
        let stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = req.nonce.clone().unwrap_or_else(|| self.fresh_nonce());
        let mut business = req.params.clone();
        if req.region {
            business.push(("RegionId".into(), REGION.into()));
        }
        let (method, target, mut headers, body) = match req.style {
            Style::V1Get | Style::V1Post => {
                let mut all: std::collections::BTreeMap<String, String> =
                    business.into_iter().collect();
                for (k, v) in [
                    ("Action", req.action.as_str()),
                    ("Version", "2018-08-08"),
                    ("Format", "JSON"),
                    ("AccessKeyId", ID),
                    ("SignatureMethod", "HMAC-SHA1"),
                    ("SignatureVersion", "1.0"),
                    ("SignatureNonce", nonce.as_str()),
                    ("Timestamp", stamp.as_str()),
                ] {
                    all.insert(k.into(), v.into());
                }
                let method = if req.style == Style::V1Get {
                    "GET"
                } else {
                    "POST"
                };
                let signature =
                    sign::v1_signature(&req.secret, &sign::v1_string_to_sign(method, &all));
                all.insert("Signature".into(), signature);
                let pairs: Vec<(String, String)> = all.into_iter().collect();
                if req.style == Style::V1Get {
                    (
                        method,
                        format!("/?{}", encode(&pairs)),
                        Vec::new(),
                        String::new(),
                    )
                } else {
                    let form = vec![(
                        "content-type".to_owned(),
                        "application/x-www-form-urlencoded".to_owned(),
                    )];
                    (method, "/".to_owned(), form, encode(&pairs))
                }
            }
            Style::V3 => {
                let query: std::collections::BTreeMap<String, String> =
                    business.into_iter().collect();
                let hash = sign::EMPTY_PAYLOAD_SHA256;
                let host = self.addr.to_string();
                let signed_headers: std::collections::BTreeMap<String, String> = [
                    ("host", host.as_str()),
                    ("x-acs-action", req.action.as_str()),
                    ("x-acs-version", "2018-08-08"),
                    ("x-acs-date", stamp.as_str()),
                    ("x-acs-signature-nonce", nonce.as_str()),
                    ("x-acs-content-sha256", hash),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
                let (canonical, signed) =
                    sign::v3_canonical_request("POST", "/", &query, &signed_headers, hash);
                let signature = sign::v3_signature(&req.secret, &canonical);
                let pairs: Vec<(String, String)> = query.into_iter().collect();
                let mut headers: Vec<(String, String)> = signed_headers
                    .into_iter()
                    .filter(|(k, _)| k != "host")
                    .collect();
                headers.push((
                    "authorization".into(),
                    sign::v3_authorization(ID, &signed, &signature),
                ));
                (
                    "POST",
                    format!("/?{}", encode(&pairs)),
                    headers,
                    String::new(),
                )
            }
        };
        headers.push(("accept".into(), "application/json".into()));
        let (status, response_headers, text) =
            raw_http(self.addr, method, &target, &headers, &body).await;
        let ratelimit = response_headers.get("x-ratelimit-user-api").cloned();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        Answer {
            status,
            body,
            ratelimit,
        }
    }

    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Value {
        self.send(Req::new(action, params)).await.ok()
    }

    /// Describes one group.
    pub async fn group(&self, id: &str) -> Value {
        let ids = format!("[\"{id}\"]");
        let body = self
            .call("DescribeContainerGroups", &[("ContainerGroupIds", &ids)])
            .await;
        body["ContainerGroups"][0].clone()
    }

    /// Describes one cache.
    pub async fn cache(&self, id: &str) -> Value {
        let body = self
            .call("DescribeImageCaches", &[("ImageCacheId", id)])
            .await;
        body["ImageCaches"][0].clone()
    }

    /// Polls until `field` of the resource is `want`; panics after 10 s.
    pub async fn wait_group(&self, id: &str, want: &str) -> Value {
        wait(|| self.group(id), want).await
    }

    pub async fn wait_cache(&self, id: &str, want: &str) -> Value {
        wait(|| self.cache(id), want).await
    }
}

/// One HTTP/1.1 exchange over a fresh loopback connection (`Connection: close`): status,
/// lowercase headers, body. Plain sockets keep the tests free of any TLS stack.
async fn raw_http(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, std::collections::HashMap<String, String>, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: std::collections::HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = match headers
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) => rest[..n.min(rest.len())].to_owned(),
        None => rest.to_owned(),
    };
    (status, headers, body)
}

async fn wait<F, Fut>(get: F, want: &str) -> Value
where
    F: Fn() -> Fut,
    Fut: Future<Output = Value>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = get().await;
        if v["Status"] == want {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An emulator with fast simulated delays and a fast poll.
pub async fn start(
    clock: Arc<dyn Clock>,
    sim: SimulatedConfig,
    quotas: Quotas,
    data_dir: Option<&std::path::Path>,
) -> Handle {
    start_with(clock, sim, quotas, data_dir, fast_settings()).await
}

/// The settings [`start`] uses: a fast poll and pull retry, the documented account quotas.
pub fn fast_settings() -> Settings {
    Settings {
        poll_interval: Duration::from_millis(10),
        pull_retry: Duration::from_millis(50),
        ..Settings::default()
    }
}

/// A simulated runtime whose pulls take an hour: every cache stays `Creating` at 0% for the
/// whole test, so the state holds still.
pub fn pulls_that_never_finish() -> SimulatedConfig {
    SimulatedConfig {
        pull_delay_per_image: Duration::from_secs(3600),
        ..SimulatedConfig::default()
    }
}

/// [`start`] with other settings.
pub async fn start_with(
    clock: Arc<dyn Clock>,
    sim: SimulatedConfig,
    quotas: Quotas,
    data_dir: Option<&std::path::Path>,
    settings: Settings,
) -> Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut builder = Emulator::builder(Credentials::new(ID, SECRET))
        .clock(clock)
        .agent(AgentTarget::Simulated(sim))
        .quotas(quotas)
        .settings(settings);
    if let Some(dir) = data_dir {
        builder = builder.data_dir(dir);
    }
    builder.serve(listener).await.expect("emulator starts")
}

pub async fn start_default() -> (Handle, Client) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let handle = start(
        clock.clone(),
        SimulatedConfig::default(),
        Quotas::default(),
        None,
    )
    .await;
    let client = Client::new(&handle, clock);
    (handle, client)
}

/// An emulator on the system clock that saves its state in `dir`, and a client.
pub async fn start_saving(dir: &std::path::Path) -> (Handle, Client) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let handle = start(
        clock.clone(),
        SimulatedConfig::default(),
        Quotas::default(),
        Some(dir),
    )
    .await;
    let client = Client::new(&handle, clock);
    (handle, client)
}

/// Runs a test body with an overall timeout.
pub async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}
