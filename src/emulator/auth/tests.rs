use jiff::{SignedDuration, Timestamp};

use super::*;

fn now() -> Timestamp {
    "2024-01-01T00:00:00Z".parse().expect("time")
}

fn verifier() -> Verifier {
    Verifier::new(Credentials::new("testid", "testsecret"))
}

fn v1_params(secret: &str, nonce: &str, timestamp: &str) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("AccessKeyId", "testid"),
        ("Action", "DescribeImageCaches"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", nonce),
        ("SignatureVersion", "1.0"),
        ("Timestamp", timestamp),
        ("Version", "2018-08-08"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let signature = sign::v1_signature(secret, &sign::v1_string_to_sign("GET", &p));
    p.insert("Signature".into(), signature);
    p
}

fn check_v1(
    v: &Verifier,
    params: &BTreeMap<String, String>,
    at: Timestamp,
) -> Result<(), ApiError> {
    let empty = BTreeMap::new();
    v.verify(
        &SignedParts {
            method: "GET",
            path: "/",
            query: params,
            params,
            headers: &empty,
            body: b"",
        },
        at,
    )
}

#[test]
fn v1_accepts_the_right_secret_once_per_nonce() {
    let v = verifier();
    let p = v1_params("testsecret", "n1", "2024-01-01T00:00:00Z");
    check_v1(&v, &p, now()).expect("valid");
    let replay = check_v1(&v, &p, now()).expect_err("replay");
    assert_eq!(replay.code, "SignatureNonceUsed");
}

#[test]
fn v1_rejects_wrong_secret_key_and_time_without_burning_the_nonce() {
    let v = verifier();
    let wrong = v1_params("othersecret", "n2", "2024-01-01T00:00:00Z");
    let error = check_v1(&v, &wrong, now()).expect_err("wrong secret");
    assert_eq!(
        (error.code.as_str(), error.status.as_u16()),
        ("SignatureDoesNotMatch", 400)
    );
    assert!(!error.message.contains("testsecret"));
    // The nonce of a refused request is still free.
    check_v1(
        &v,
        &v1_params("testsecret", "n2", "2024-01-01T00:00:00Z"),
        now(),
    )
    .expect("nonce unused");

    let mut other_key = v1_params("testsecret", "n3", "2024-01-01T00:00:00Z");
    other_key.insert("AccessKeyId".into(), "someone".into());
    let error = check_v1(&v, &other_key, now()).expect_err("unknown key");
    assert_eq!(
        (error.code.as_str(), error.status.as_u16()),
        ("InvalidAccessKeyId.NotFound", 404)
    );

    let stale = v1_params("testsecret", "n4", "2023-12-31T23:44:59Z");
    assert_eq!(
        check_v1(&v, &stale, now()).expect_err("stale").code,
        "InvalidTimeStamp.Expired"
    );
    let edge = v1_params("testsecret", "n5", "2023-12-31T23:45:00Z");
    check_v1(&v, &edge, now()).expect("exactly 15 minutes is allowed");
    let future = v1_params("testsecret", "n6", "2024-01-01T00:16:00Z");
    assert_eq!(
        check_v1(&v, &future, now()).expect_err("future").code,
        "InvalidTimeStamp.Expired"
    );
    let garbled = v1_params("testsecret", "n7", "yesterday");
    assert_eq!(
        check_v1(&v, &garbled, now()).expect_err("format").code,
        "InvalidTimeStamp.Format"
    );
}

#[test]
fn v1_tampering_with_a_parameter_breaks_the_signature() {
    let v = verifier();
    let mut p = v1_params("testsecret", "n8", "2024-01-01T00:00:00Z");
    p.insert("RegionId".into(), "cn-beijing".into());
    assert_eq!(
        check_v1(&v, &p, now()).expect_err("tampered").code,
        "SignatureDoesNotMatch"
    );
}

fn v3_request(
    secret: &str,
    nonce: &str,
    date: &str,
    body: &[u8],
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let query: BTreeMap<String, String> =
        [("RegionId".to_owned(), "cn-hangzhou".to_owned())].into();
    let hash = sign::sha256_hex(body);
    let mut headers: BTreeMap<String, String> = [
        ("host", "127.0.0.1:1"),
        ("x-acs-action", "DescribeImageCaches"),
        ("x-acs-version", "2018-08-08"),
        ("x-acs-date", date),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", hash.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (canonical, signed) = sign::v3_canonical_request("POST", "/", &query, &headers, &hash);
    let signature = sign::v3_signature(secret, &canonical);
    headers.insert("accept".into(), "application/json".into()); // not signed: ignored
    headers.insert(
        "authorization".into(),
        sign::v3_authorization("testid", &signed, &signature),
    );
    (query, headers)
}

fn check_v3(
    v: &Verifier,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<(), ApiError> {
    v.verify(
        &SignedParts {
            method: "POST",
            path: "/",
            query,
            params: query,
            headers,
            body,
        },
        now(),
    )
}

#[test]
fn v3_accepts_a_signed_request_and_rejects_changes() {
    let v = verifier();
    let (q, h) = v3_request("testsecret", "m1", "2024-01-01T00:00:00Z", b"");
    check_v3(&v, &q, &h, b"").expect("valid");
    assert_eq!(
        check_v3(&v, &q, &h, b"").expect_err("replay").code,
        "SignatureNonceUsed"
    );

    let (q, h) = v3_request("wrong", "m2", "2024-01-01T00:00:00Z", b"");
    assert_eq!(
        check_v3(&v, &q, &h, b"").expect_err("secret").code,
        "SignatureDoesNotMatch"
    );

    let (q, h) = v3_request("testsecret", "m3", "2024-01-01T00:00:00Z", b"A=1");
    assert_eq!(
        check_v3(&v, &q, &h, b"A=2").expect_err("body").code,
        "SignatureDoesNotMatch"
    );
    check_v3(&v, &q, &h, b"A=1").expect("the signed body");

    let (mut q, h) = v3_request("testsecret", "m4", "2024-01-01T00:00:00Z", b"");
    q.insert("RegionId".into(), "cn-beijing".into());
    assert_eq!(
        check_v3(&v, &q, &h, b"").expect_err("query").code,
        "SignatureDoesNotMatch"
    );

    let (q, h) = v3_request("testsecret", "m5", "2023-12-31T23:40:00Z", b"");
    assert_eq!(
        check_v3(&v, &q, &h, b"").expect_err("stale").code,
        "InvalidTimeStamp.Expired"
    );

    let mut headers = v3_request("testsecret", "m6", "2024-01-01T00:00:00Z", b"").1;
    headers.insert(
        "authorization".into(),
        "ACS3-HMAC-SM3 Credential=testid,SignedHeaders=host,Signature=00".into(),
    );
    assert_eq!(
        check_v3(&v, &BTreeMap::new(), &headers, b"")
            .expect_err("algorithm")
            .code,
        "InvalidSignatureMethod"
    );
}

#[test]
fn unsigned_requests_are_incomplete() {
    let v = verifier();
    let empty = BTreeMap::new();
    let error = v
        .verify(
            &SignedParts {
                method: "GET",
                path: "/",
                query: &empty,
                params: &empty,
                headers: &empty,
                body: b"",
            },
            now() + SignedDuration::ZERO,
        )
        .expect_err("unsigned");
    assert_eq!(error.code, "IncompleteSignature");
}

#[test]
fn credentials_never_print_the_secret() {
    let shown = format!("{:?}", Credentials::new("id", "s3cr3t-value"));
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    assert!(shown.contains("id"));
}

/// V1 parameters of temporary credentials `id`/`secret`, with `token` as `SecurityToken`.
fn v1_temporary(id: &str, secret: &str, token: &str, nonce: &str) -> BTreeMap<String, String> {
    let mut p = v1_params(secret, nonce, "2024-01-01T00:00:00Z");
    p.remove("Signature");
    p.insert("AccessKeyId".into(), id.into());
    p.insert("SecurityToken".into(), token.into());
    let signature = sign::v1_signature(secret, &sign::v1_string_to_sign("GET", &p));
    p.insert("Signature".into(), signature);
    p
}

#[test]
fn temporary_credentials_are_accepted_with_their_token_until_they_expire() {
    let v = verifier();
    v.issue(
        "STS.temp".into(),
        Issued {
            secret: "tempsecret".into(),
            token: "CAIStoken".into(),
            expires: now() + SignedDuration::from_mins(10),
        },
        now(),
    );
    let code = |p: &BTreeMap<String, String>, at: Timestamp| {
        check_v1(&v, p, at).map_or_else(|e| e.code, |()| "ok".to_owned())
    };
    let good = v1_temporary("STS.temp", "tempsecret", "CAIStoken", "t1");
    assert_eq!(code(&good, now()), "ok");
    let wrong_token = v1_temporary("STS.temp", "tempsecret", "CAISother", "t2");
    assert_eq!(
        code(&wrong_token, now()),
        "InvalidSecurityToken.MismatchWithAccessKey"
    );
    let mut no_token = v1_temporary("STS.temp", "tempsecret", "CAIStoken", "t3");
    no_token.remove("SecurityToken");
    assert_eq!(code(&no_token, now()), "InvalidSecurityToken.Missing");
    let late = v1_temporary("STS.temp", "tempsecret", "CAIStoken", "t4");
    assert_eq!(
        code(&late, now() + SignedDuration::from_mins(11)),
        "InvalidSecurityToken.Expired"
    );
    // Issuing more keeps an expired pair known for a day, so it is still called expired.
    v.issue(
        "STS.next".into(),
        Issued {
            secret: "s".into(),
            token: "t".into(),
            expires: now() + SignedDuration::from_mins(30),
        },
        now() + SignedDuration::from_mins(20),
    );
    let later = v1_temporary("STS.temp", "tempsecret", "CAIStoken", "t5");
    assert_eq!(
        code(&later, now() + SignedDuration::from_mins(12)),
        "InvalidSecurityToken.Expired"
    );
}

/// A V3 request signing only `signed` of its `x-acs-*` headers (plus host), the others sent
/// unsigned beside it.
fn v3_partly_signed(
    nonce: &str,
    signed: &[&str],
    unsigned: &[(&str, &str)],
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let query: BTreeMap<String, String> =
        [("RegionId".to_owned(), "cn-hangzhou".to_owned())].into();
    let hash = sign::EMPTY_PAYLOAD_SHA256;
    let all = [
        ("x-acs-action", "DescribeImageCaches"),
        ("x-acs-version", "2018-08-08"),
        ("x-acs-date", "2024-01-01T00:00:00Z"),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-content-sha256", hash),
    ];
    let mut headers: BTreeMap<String, String> = all
        .iter()
        .filter(|(k, _)| signed.contains(k))
        .chain(&[("host", "127.0.0.1:1")])
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (canonical, names) = sign::v3_canonical_request("POST", "/", &query, &headers, hash);
    let signature = sign::v3_signature("testsecret", &canonical);
    for (k, v) in unsigned {
        headers.insert((*k).to_owned(), (*v).to_owned());
    }
    headers.insert(
        "authorization".into(),
        sign::v3_authorization("testid", &names, &signature),
    );
    (query, headers)
}

#[test]
fn v3_requires_the_action_and_version_signed() {
    let v = verifier();
    let base = [
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ];
    let (q, h) = v3_partly_signed(
        "u1",
        &base,
        &[
            ("x-acs-action", "DeleteContainerGroup"),
            ("x-acs-version", "2018-08-08"),
        ],
    );
    assert_eq!(
        check_v3(&v, &q, &h, b"").expect_err("unsigned action").code,
        "IncompleteSignature"
    );
    let (q, h) = v3_partly_signed("u2", &base, &[]);
    assert_eq!(
        check_v3(&v, &q, &h, b"").expect_err("no action").code,
        "IncompleteSignature"
    );
    let mut with_action = base.to_vec();
    with_action.push("x-acs-action");
    let (q, h) = v3_partly_signed("u3", &with_action, &[("x-acs-version", "2018-08-08")]);
    assert_eq!(
        check_v3(&v, &q, &h, b"")
            .expect_err("unsigned version")
            .code,
        "IncompleteSignature"
    );
    with_action.push("x-acs-version");
    let (q, h) = v3_partly_signed("u4", &with_action, &[]);
    check_v3(&v, &q, &h, b"").expect("all signed");
}

#[test]
fn v3_refuses_any_unsigned_acs_header() {
    let v = verifier();
    let (q, mut h) = v3_request("testsecret", "u5", "2024-01-01T00:00:00Z", b"");
    h.insert("x-acs-resourcegroupid".into(), "rg-other".into());
    let error = check_v3(&v, &q, &h, b"").expect_err("unsigned x-acs header");
    assert_eq!(error.code, "IncompleteSignature");
    assert!(error.message.contains("x-acs-resourcegroupid"), "{error}");
    // Refused before the nonce was spent: the request without it passes.
    h.remove("x-acs-resourcegroupid");
    check_v3(&v, &q, &h, b"").expect("valid");
}
