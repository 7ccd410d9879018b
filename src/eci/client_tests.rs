//! Tests of the client over real HTTP on loopback: a tiny HTTP/1.1 server verifies each request's
//! signature with `sign` (as the emulator does) and answers canned bodies, errors and throttling.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use super::*;
use crate::eci::{
    ContainerGroupStatus, CreateContainerGroup, Credentials, DescribeContainerGroups,
    DescribeImageCaches, ImageCacheStatus, Quota,
};

const ID: &str = "LTAItestid";
const SECRET: &str = "s3cr3t-test-secret";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// Decoded query parameters.
    query: BTreeMap<String, String>,
    /// Lower-case header names.
    headers: BTreeMap<String, String>,
    /// Whether the signature verified against `SECRET`.
    verified: bool,
}

/// What the server answers: status, extra headers, body.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn ok(body: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![],
        body: body.to_owned(),
    }
}

fn error(status: u16, code: &str) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: format!(
            r#"{{"RequestId":"REQ-{status}","HostId":"127.0.0.1","Code":"{code}","Message":"m {code}","Recommend":"https://x/?q={code}"}}"#
        ),
    }
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Option<Reply> + Send + Sync>;

/// Starts the server; the handler gets each request and its 0-based index, and answers `None`
/// to never reply (a hung server). Returns the base URL and the log of requests.
async fn serve(
    handler: impl Fn(&Seen, usize) -> Option<Reply> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    serve_with(None, Arc::new(handler)).await
}

/// [`serve`], over TLS when an acceptor is given (the URL is then `https://localhost:PORT/`).
async fn serve_with(
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: Handler,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = match tls {
        Some(_) => format!("https://localhost:{}/", addr.port()),
        None => format!("http://{addr}/"),
    };
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let handler = handler.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(sock).await {
                            answer(stream, &log, &handler).await;
                        }
                    }
                    None => answer(sock, &log, &handler).await,
                }
            });
        }
    });
    (url, seen)
}

/// Reads one request head from `sock`, records it and writes the handler's reply.
async fn answer(
    mut sock: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    log: &Mutex<Vec<Seen>>,
    handler: &Handler,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = parse(&buf);
    let index = {
        let mut log = log.lock();
        log.push(request.clone());
        log.len() - 1
    };
    let Some(reply) = handler(&request, index) else {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    };
    let mut out = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    let _ = sock.write_all(out.as_bytes()).await;
    let _ = sock.shutdown().await;
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf8")
}

/// Parses the request head and verifies its signature (V1 if it has `Signature`, else V3).
fn parse(buf: &[u8]) -> Seen {
    let text = String::from_utf8_lossy(buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default();
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let query: BTreeMap<String, String> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let headers: BTreeMap<String, String> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let verified = if let Some(signature) = query.get("Signature") {
        let sts = sign::v1_string_to_sign(&method, &query);
        sign::signatures_equal(&sign::v1_signature(SECRET, &sts), signature)
    } else {
        verify_v3(&method, path, &query, &headers)
    };
    Seen {
        method,
        path: path.to_owned(),
        query,
        headers,
        verified,
    }
}

fn verify_v3(
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
) -> bool {
    let Some(auth) = headers.get("authorization") else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("ACS3-HMAC-SHA256 ") else {
        return false;
    };
    let fields: BTreeMap<&str, &str> = rest.split(',').filter_map(|f| f.split_once('=')).collect();
    if fields.get("Credential") != Some(&ID) {
        return false;
    }
    let signed: BTreeMap<String, String> = fields
        .get("SignedHeaders")
        .unwrap_or(&"")
        .split(';')
        .map(|h| (h.to_owned(), headers.get(h).cloned().unwrap_or_default()))
        .collect();
    let payload = headers
        .get("x-acs-content-sha256")
        .cloned()
        .unwrap_or_default();
    let (cr, names) = sign::v3_canonical_request(method, path, query, &signed, &payload);
    names == *fields.get("SignedHeaders").unwrap_or(&"")
        && sign::signatures_equal(
            &sign::v3_signature(SECRET, &cr),
            fields.get("Signature").unwrap_or(&""),
        )
}

fn config(url: &str, signature: SignatureVersion) -> ClientConfig {
    let mut cfg = ClientConfig::new("cn-hangzhou", Credentials::new(ID, SECRET, None));
    cfg.endpoint = Endpoint::Url(url.to_owned());
    cfg.signature = signature;
    cfg.timeout = Duration::from_secs(5);
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
    };
    cfg.budget = BudgetConfig::disabled();
    cfg
}

fn client(url: &str, signature: SignatureVersion) -> Client {
    Client::new(config(url, signature)).expect("client")
}

/// Every test future gets a deadline so a hung server fails the test instead of the run.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test deadline")
}

const CACHES: &str = r#"{"RequestId":"R1","TotalCount":1,"NextToken":"","ImageCaches":[
    {"ImageCacheId":"imc-abc","Status":"Ready","Images":["nginx:1.25"]}]}"#;

#[tokio::test]
async fn v3_request_is_signed_and_answer_decoded() {
    within(async {
        let (url, seen) = serve(|_, _| Some(ok(CACHES))).await;
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.clock = Arc::new(|| "2024-01-01T00:00:00Z".parse().expect("timestamp"));
        cfg.nonce = Arc::new(|| "fixed-nonce".to_owned());
        let c = Client::new(cfg).expect("client");
        let r = c
            .describe_image_caches(&DescribeImageCaches {
                match_images: vec!["nginx:1.25".into(), "my app:*".into()],
                ..DescribeImageCaches::default()
            })
            .await
            .expect("answer");
        assert_eq!(r.image_caches[0].status, ImageCacheStatus::Ready);
        let seen = seen.lock();
        assert_eq!(seen.len(), 1);
        let s = &seen[0];
        assert!(s.verified, "V3 signature must verify: {s:?}");
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, "/");
        assert_eq!(s.headers["x-acs-action"], "DescribeImageCaches");
        assert_eq!(s.headers["x-acs-version"], "2018-08-08");
        assert_eq!(s.headers["x-acs-date"], "2024-01-01T00:00:00Z");
        assert_eq!(s.headers["x-acs-signature-nonce"], "fixed-nonce");
        assert_eq!(
            s.headers["x-acs-content-sha256"],
            sign::EMPTY_PAYLOAD_SHA256
        );
        assert!(s.headers["authorization"].contains("SignedHeaders=host;x-acs-action;"));
        assert!(!s.headers.contains_key("x-acs-security-token"));
        // Business parameters only, in the query; the space and `*` survive the round trip.
        let q: Vec<(&str, &str)> = s
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            q,
            vec![
                ("MatchImage.1", "nginx:1.25"),
                ("MatchImage.2", "my app:*"),
                ("RegionId", "cn-hangzhou"),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn v1_request_carries_common_parameters_and_verifies() {
    within(async {
        let (url, seen) = serve(|_, _| Some(ok(CACHES))).await;
        let mut cfg = config(&url, SignatureVersion::V1);
        cfg.credentials = Credentials::new(ID, SECRET, Some("sts-token".into())).into();
        let c = Client::new(cfg).expect("client");
        c.describe_image_caches(&DescribeImageCaches {
            image_cache_id: Some("imc-abc".into()),
            ..DescribeImageCaches::default()
        })
        .await
        .expect("answer");
        let seen = seen.lock();
        let s = &seen[0];
        assert!(s.verified, "V1 signature must verify: {s:?}");
        assert_eq!(s.method, "POST");
        for (k, v) in [
            ("Action", "DescribeImageCaches"),
            ("Version", "2018-08-08"),
            ("Format", "JSON"),
            ("AccessKeyId", ID),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SecurityToken", "sts-token"),
            ("RegionId", "cn-hangzhou"),
            ("ImageCacheId", "imc-abc"),
        ] {
            assert_eq!(s.query.get(k).map(String::as_str), Some(v), "{k}");
        }
        let ts = &s.query["Timestamp"];
        assert!(
            ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
        assert!(!s.query["SignatureNonce"].is_empty());
        assert_eq!(s.headers["x-acs-action"], "DescribeImageCaches");
        assert!(!s.headers.contains_key("authorization"));
    })
    .await;
}

#[tokio::test]
async fn v3_with_sts_token_signs_the_token_header() {
    within(async {
        let (url, seen) = serve(|_, _| Some(ok(r#"{"RequestId":"R"}"#))).await;
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.credentials = Credentials::new(ID, SECRET, Some("sts-token".into())).into();
        Client::new(cfg)
            .expect("client")
            .list_usage()
            .await
            .expect("answer");
        let s = &seen.lock()[0];
        assert!(s.verified);
        assert_eq!(s.headers["x-acs-security-token"], "sts-token");
        assert!(s.headers["authorization"].contains("x-acs-security-token"));
    })
    .await;
}

#[tokio::test]
async fn wrong_secret_is_a_final_api_error_without_credentials() {
    within(async {
        let (url, seen) = serve(|s, _| {
            Some(if s.verified {
                ok("{}")
            } else {
                error(400, "SignatureDoesNotMatch")
            })
        })
        .await;
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.credentials = Credentials::new(ID, "not-the-secret", None).into();
        let c = Client::new(cfg).expect("client");
        let err = c.list_usage().await.expect_err("must fail");
        assert_eq!(seen.lock().len(), 1, "never retried");
        let api = err.api().expect("api error");
        assert_eq!(api.status, 400);
        assert_eq!(api.code, "SignatureDoesNotMatch");
        assert_eq!(api.request_id, "REQ-400");
        assert_eq!(api.host_id, "127.0.0.1");
        assert_eq!(api.recommend, "https://x/?q=SignatureDoesNotMatch");
        assert_eq!(api.action, "ListUsage");
        let shown = format!("{err} {err:?} {c:?}");
        assert!(!shown.contains("not-the-secret"), "{shown}");
        assert!(shown.contains(ID), "the key id is not secret: {shown}");
    })
    .await;
}

#[tokio::test]
async fn throttling_is_retried_with_fresh_signatures_and_the_same_client_token() {
    within(async {
        let (url, seen) = serve(|_, i| {
            Some(match i {
                0 => error(400, "Throttling.User"),
                1 => Reply {
                    status: 400,
                    headers: vec![("x-ratelimit-user-api", "Limit:1,TimeLeft:2".into())],
                    body: r#"{"Code":"Throttling.Api"}"#.into(),
                },
                _ => ok(r#"{"RequestId":"R","ContainerGroupId":"eci-123"}"#),
            })
        })
        .await;
        let c = client(&url, SignatureVersion::V3);
        let r = c
            .create_container_group(&CreateContainerGroup {
                container_group_name: "web".into(),
                ..CreateContainerGroup::default()
            })
            .await
            .expect("third attempt succeeds");
        assert_eq!(r.container_group_id, "eci-123");
        let seen = seen.lock();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| s.verified));
        let tokens: Vec<&String> = seen.iter().map(|s| &s.query["ClientToken"]).collect();
        assert!(!tokens[0].is_empty());
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
        let nonces: std::collections::HashSet<&String> = seen
            .iter()
            .map(|s| &s.headers["x-acs-signature-nonce"])
            .collect();
        assert_eq!(nonces.len(), 3, "a fresh nonce per attempt");
        let sigs: std::collections::HashSet<&String> =
            seen.iter().map(|s| &s.headers["authorization"]).collect();
        assert_eq!(sigs.len(), 3, "a fresh signature per attempt");
    })
    .await;
}

#[tokio::test]
async fn caller_client_token_is_kept_on_v1_retries() {
    within(async {
        let (url, seen) = serve(|_, i| {
            Some(if i == 0 {
                error(503, "ServiceUnavailable")
            } else {
                ok(r#"{"RequestId":"R","ContainerGroupId":"eci-1"}"#)
            })
        })
        .await;
        let c = client(&url, SignatureVersion::V1);
        c.create_container_group(&CreateContainerGroup {
            container_group_name: "web".into(),
            client_token: Some("pod-uid-1".into()),
            ..CreateContainerGroup::default()
        })
        .await
        .expect("second attempt succeeds");
        let seen = seen.lock();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.verified));
        assert!(seen.iter().all(|s| s.query["ClientToken"] == "pod-uid-1"));
        assert_ne!(
            seen[0].query["SignatureNonce"],
            seen[1].query["SignatureNonce"]
        );
        assert_ne!(seen[0].query["Signature"], seen[1].query["Signature"]);
    })
    .await;
}

#[tokio::test]
async fn transient_statuses_are_retried() {
    within(async {
        let (url, seen) = serve(|_, i| {
            Some(match i {
                0 => Reply {
                    status: 429,
                    headers: vec![],
                    body: String::new(),
                },
                1 => error(500, "InternalError"),
                2 => Reply {
                    status: 502,
                    headers: vec![],
                    body: "<html>bad gateway</html>".into(),
                },
                _ => ok(r#"{"RequestId":"R"}"#),
            })
        })
        .await;
        client(&url, SignatureVersion::V3)
            .list_usage()
            .await
            .expect("fourth attempt succeeds");
        assert_eq!(seen.lock().len(), 4);
    })
    .await;
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    within(async {
        for (status, code) in [
            (400, "InvalidParameter"),
            (404, "InvalidAction.NotFound"),
            (403, "Forbidden.RAM"),
        ] {
            let (url, seen) = serve(move |_, _| Some(error(status, code))).await;
            let err = client(&url, SignatureVersion::V3)
                .list_usage()
                .await
                .expect_err("fails");
            assert_eq!(err.code(), Some(code));
            assert_eq!(err.api().map(|a| a.status), Some(status));
            assert_eq!(seen.lock().len(), 1, "{code} retried");
        }
    })
    .await;
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    within(async {
        let (url, seen) = serve(|_, _| Some(error(503, "ServiceUnavailable"))).await;
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.retry.max_attempts = 3;
        let err = Client::new(cfg)
            .expect("client")
            .list_usage()
            .await
            .expect_err("fails");
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        assert_eq!(seen.lock().len(), 3);
    })
    .await;
}

#[tokio::test]
async fn undecodable_success_is_a_decode_error_and_not_retried() {
    within(async {
        let (url, seen) = serve(|_, _| Some(ok("not json"))).await;
        let err = client(&url, SignatureVersion::V3)
            .list_usage()
            .await
            .expect_err("fails");
        assert!(
            matches!(
                err,
                Error::Decode {
                    action: "ListUsage",
                    status: 200,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(seen.lock().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn connection_failures_are_retried_then_reported_without_url() {
    within(async {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut cfg = config(&format!("http://127.0.0.1:{port}/"), SignatureVersion::V1);
        cfg.retry.max_attempts = 2;
        let err = Client::new(cfg)
            .expect("client")
            .list_usage()
            .await
            .expect_err("nothing listens");
        assert!(
            matches!(
                err,
                Error::Transport {
                    action: "ListUsage",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.is_retryable());
        let shown = format!("{err:?}");
        assert!(!shown.contains("Signature="), "URL leaked: {shown}");
        assert!(!shown.contains(ID), "URL leaked: {shown}");
    })
    .await;
}

#[tokio::test]
async fn timeouts_are_retried() {
    within(async {
        let (url, seen) = serve(|_, _| None).await;
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.timeout = Duration::from_millis(200);
        cfg.retry.max_attempts = 2;
        let err = Client::new(cfg)
            .expect("client")
            .list_usage()
            .await
            .expect_err("server hangs");
        let Error::Transport { source, .. } = &err else {
            panic!("expected a transport error, got {err:?}");
        };
        assert!(source.is_timeout(), "{source:?}");
        assert_eq!(seen.lock().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn describe_all_follows_next_token() {
    within(async {
        let (url, seen) = serve(|s, _| {
            Some(match s.query.get("NextToken").map(String::as_str) {
                None => ok(
                    r#"{"TotalCount":2,"NextToken":"p2","ContainerGroups":[{"ContainerGroupId":"eci-1","Status":"Running"}]}"#,
                ),
                Some("p2") => ok(
                    r#"{"TotalCount":2,"NextToken":"","ContainerGroups":[{"ContainerGroupId":"eci-2","Status":"Pending"}]}"#,
                ),
                Some(_) => error(400, "InvalidParameter"),
            })
        })
        .await;
        let groups = client(&url, SignatureVersion::V3)
            .describe_all_container_groups(&DescribeContainerGroups {
                tags: vec![crate::eci::Tag::new("node", "vk")],
                ..DescribeContainerGroups::default()
            })
            .await
            .expect("two pages");
        let ids: Vec<(&str, ContainerGroupStatus)> = groups
            .iter()
            .map(|g| (g.container_group_id.as_str(), g.status))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("eci-1", ContainerGroupStatus::Running),
                ("eci-2", ContainerGroupStatus::Pending)
            ]
        );
        let seen = seen.lock();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|s| s.query["Tag.1.Key"] == "node"));
    })
    .await;
}

#[tokio::test]
async fn budget_is_shared_by_clones_of_a_client() {
    within(async {
        let (url, seen) = serve(|_, _| Some(ok(r#"{"RequestId":"R"}"#))).await;
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.budget = BudgetConfig {
            enabled: true,
            write: Quota {
                burst: 1,
                per_second: 1.0,
            },
            read: Quota {
                burst: 2,
                per_second: 10.0,
            },
        };
        let a = Client::new(cfg).expect("client");
        let b = a.clone();
        let start = tokio::time::Instant::now();
        a.list_usage().await.expect("ok");
        b.list_usage().await.expect("ok");
        // The bucket of 2 is now empty for both clones: the third call waits ~100 ms.
        b.list_usage().await.expect("ok");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(90), "{took:?}");
        assert_eq!(seen.lock().len(), 3);
    })
    .await;
}

#[test]
fn endpoints() {
    assert_eq!(
        Endpoint::Public
            .base_url("cn-hangzhou")
            .expect("valid")
            .as_str(),
        "https://eci.cn-hangzhou.aliyuncs.com/"
    );
    assert_eq!(
        Endpoint::Vpc
            .base_url("ap-northeast-1")
            .expect("valid")
            .as_str(),
        "https://eci-vpc.ap-northeast-1.aliyuncs.com/"
    );
    assert_eq!(
        Endpoint::Url("http://127.0.0.1:8080/".into())
            .base_url("cn-hangzhou")
            .expect("valid")
            .as_str(),
        "http://127.0.0.1:8080/"
    );
    for bad in ["", "CN-hangzhou", "cn hangzhou", "-x", "a.b"] {
        assert!(Endpoint::Public.base_url(bad).is_err(), "{bad:?}");
    }
    for bad in ["127.0.0.1:8080", "ftp://x/", "http://x/?a=b", "not a url"] {
        assert!(
            Endpoint::Url(bad.into()).base_url("cn-hangzhou").is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn host_header_keeps_non_default_ports() {
    let u = |s: &str| Url::parse(s).expect("url");
    assert_eq!(host_header(&u("http://127.0.0.1:8080/")), "127.0.0.1:8080");
    assert_eq!(
        host_header(&u("https://eci.cn-hangzhou.aliyuncs.com:443/")),
        "eci.cn-hangzhou.aliyuncs.com"
    );
}

#[test]
fn rate_limit_hint_reads_time_left() {
    let mut h = HeaderMap::new();
    assert_eq!(rate_limit_hint(&h), None);
    h.insert(
        "x-ratelimit-user",
        HeaderValue::from_static("Limit:100,Remain:0,TimeLeft:1500,Reset:1"),
    );
    assert_eq!(rate_limit_hint(&h), Some(Duration::from_millis(1500)));
}

#[test]
fn error_envelope_accepts_lower_case_keys_and_foreign_bodies() {
    let e = api_error(
        "ListUsage",
        400,
        br#"{"requestId":"r","code":"Throttling","message":"slow down"}"#,
        None,
    );
    assert_eq!(
        (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
        ("Throttling", "slow down", "r")
    );
    let e = api_error("ListUsage", 502, b"<html>bad gateway</html>", None);
    assert_eq!(e.code, "");
    assert_eq!(e.message, "<html>bad gateway</html>");
    assert!(e.is_retryable());
}

#[test]
fn client_debug_hides_the_secret() {
    let c = client("http://127.0.0.1:1/", SignatureVersion::V3);
    let shown = format!("{c:?} {c:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}

/// The pods controller spawns calls onto tasks: the futures must be `Send`.
#[test]
fn call_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let c = client("http://127.0.0.1:1/", SignatureVersion::V3);
    let request = CreateContainerGroup::default();
    assert_send(&c.create_container_group(&request));
    assert_send(&c.describe_all_container_groups(&DescribeContainerGroups::default()));
    assert_send(&c.list_usage());
}

/// Both kinds of endpoint build a client with the ring provider explicitly, so nothing depends on
/// (or installs) a process-wide rustls default: `https` with the system roots, `http` without.
#[test]
fn clients_build_without_a_process_crypto_provider() {
    let mut cfg = config("http://127.0.0.1:1/", SignatureVersion::V3);
    Client::new(cfg.clone()).expect("http client");
    cfg.endpoint = Endpoint::Vpc;
    match Client::new(cfg) {
        Ok(c) => assert_eq!(
            c.base_url().as_str(),
            "https://eci-vpc.cn-hangzhou.aliyuncs.com/"
        ),
        // A machine without a CA bundle: the typed error, not a panic.
        Err(e) => assert!(matches!(e, Error::Tls(_)), "{e:?}"),
    }
}

#[tokio::test]
async fn exec_is_not_repeated_after_an_unknown_outcome_but_is_after_throttling() {
    within(async {
        let exec = crate::eci::ExecContainerCommand {
            container_group_id: "eci-1".into(),
            container_name: "app".into(),
            command: vec!["touch".into(), "/x".into()],
            sync: Some(true),
            ..crate::eci::ExecContainerCommand::default()
        };
        let (url, seen) = serve(|_, _| Some(error(503, "ServiceUnavailable"))).await;
        let err = client(&url, SignatureVersion::V3)
            .exec_container_command(&exec)
            .await
            .expect_err("fails");
        assert_eq!(err.code(), Some("ServiceUnavailable"));
        assert_eq!(seen.lock().len(), 1, "a 503 exec may have run");

        let (url, seen) = serve(|_, i| {
            Some(if i == 0 {
                error(400, "Throttling.User")
            } else {
                ok(r#"{"RequestId":"R","SyncResponse":"done"}"#)
            })
        })
        .await;
        let r = client(&url, SignatureVersion::V3)
            .exec_container_command(&exec)
            .await
            .expect("throttled exec is retried");
        assert_eq!(r.sync_response, "done");
        assert_eq!(seen.lock().len(), 2);
        assert_eq!(seen.lock()[1].query["Command"], r#"["touch","/x"]"#);
    })
    .await;
}

#[tokio::test]
async fn describe_all_image_caches_follows_next_token() {
    within(async {
        let (url, seen) = serve(|s, _| {
            Some(match s.query.get("NextToken").map(String::as_str) {
                None => ok(r#"{"NextToken":"n2","ImageCaches":[{"ImageCacheId":"imc-1"}]}"#),
                Some("n2") => ok(r#"{"NextToken":"n2","ImageCaches":[{"ImageCacheId":"imc-2"}]}"#),
                Some(_) => error(400, "InvalidParameter"),
            })
        })
        .await;
        let caches = client(&url, SignatureVersion::V1)
            .describe_all_image_caches(&DescribeImageCaches::default())
            .await
            .expect("pages");
        let ids: Vec<&str> = caches.iter().map(|c| c.image_cache_id.as_str()).collect();
        // The second page repeats its own token: the walk stops rather than looping.
        assert_eq!(ids, vec!["imc-1", "imc-2"]);
        assert_eq!(seen.lock().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn observer_sees_every_attempt_with_status_and_code() {
    within(async {
        let (url, _seen) = serve(|_, i| {
            Some(if i == 0 {
                error(400, "Throttling.User")
            } else {
                ok(r#"{"RequestId":"R"}"#)
            })
        })
        .await;
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.observer = Some(Arc::new(move |r: &AttemptRecord<'_>| {
            sink.lock().push((
                r.action,
                r.attempt,
                r.status,
                r.code.map(str::to_owned),
                r.throttled,
            ));
        }));
        Client::new(cfg)
            .expect("client")
            .list_usage()
            .await
            .expect("second attempt succeeds");
        assert_eq!(
            *records.lock(),
            vec![
                (
                    "ListUsage",
                    1,
                    Some(400),
                    Some("Throttling.User".to_owned()),
                    true
                ),
                ("ListUsage", 2, Some(200), None, false),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn an_action_name_unfit_for_a_header_is_an_error_not_a_panic() {
    let c = client("http://127.0.0.1:1/", SignatureVersion::V3);
    let err = c
        .call("Bad\nAction", &BTreeMap::new())
        .await
        .expect_err("refused before sending");
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
}

/// A self-signed certificate for `localhost` and a TLS acceptor serving it (HTTP/1.1 only).
fn tls_fixture() -> (Vec<u8>, tokio_rustls::TlsAcceptor) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert_der = certified.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
    .expect("server config");
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    (cert_der, tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

#[tokio::test]
async fn https_endpoint_is_verified_and_signed() {
    within(async {
        let (cert, acceptor) = tls_fixture();
        let (url, seen) = serve_with(
            Some(acceptor),
            Arc::new(|_: &Seen, _| Some(ok(r#"{"RequestId":"R"}"#))),
        )
        .await;

        // Trusting the test CA: the call goes through and its signature verifies, with the
        // `localhost:PORT` host the certificate was checked against.
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.extra_root_certificates = vec![cert];
        Client::new(cfg)
            .expect("client")
            .list_usage()
            .await
            .expect("TLS call");
        {
            let seen = seen.lock();
            assert_eq!(seen.len(), 1);
            assert!(seen[0].verified);
            assert!(seen[0].headers["host"].starts_with("localhost:"));
        }

        // Not trusting it: the handshake fails, nothing reaches the server's HTTP layer.
        let mut cfg = config(&url, SignatureVersion::V3);
        cfg.retry.max_attempts = 1;
        match Client::new(cfg) {
            Ok(c) => {
                let err = c.list_usage().await.expect_err("unknown CA");
                assert!(matches!(err, Error::Transport { .. }), "{err:?}");
            }
            // A machine without a system CA bundle cannot even build the client.
            Err(e) => assert!(matches!(e, Error::Tls(_)), "{e:?}"),
        }
        assert_eq!(seen.lock().len(), 1);
    })
    .await;
}

#[test]
fn error_messages_never_carry_the_string_to_sign_or_a_token() {
    let body = br#"{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3DSTS.x%26SecurityToken%3DCAISsecret-token"}"#;
    let e = api_error("AssumeRole", 400, body, None);
    assert!(!e.message.contains("CAISsecret-token"), "{}", e.message);
    assert!(
        e.message.starts_with("Specified signature is not matched"),
        "{}",
        e.message
    );
    let e = api_error(
        "ListUsage",
        400,
        br#"{"Code":"X","Message":"bad SecurityToken=CAISsecret-token&x=1; SecurityToken is expired"}"#,
        None,
    );
    assert_eq!(
        e.message,
        "bad SecurityToken=[REDACTED]&x=1; SecurityToken is expired"
    );
}
