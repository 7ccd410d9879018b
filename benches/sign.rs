//! The cost of signing one ECI OpenAPI request, both signature versions (src/eci/sign.rs): V1
//! (HMAC-SHA1 over the doubly-encoded canonical query, what the node sends) and V3
//! (ACS3-HMAC-SHA256 over a canonical request). The parameters are those of a typical
//! `CreateContainerGroup` with two containers, so the canonical query has the size it has in use.
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::{collections::BTreeMap, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use eci_vk::eci::sign;

const SECRET: &str = "bench-access-key-secret-0123456789";

fn params() -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("Action", "CreateContainerGroup"),
        ("Version", "2018-08-08"),
        ("Format", "JSON"),
        ("AccessKeyId", "LTAI5tBenchAccessKeyId"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "0f6c2b1e-8c9a-4a53-9d2e-3f1b7c5d9e10"),
        ("Timestamp", "2026-11-28T09:00:00Z"),
        ("RegionId", "cn-hangzhou"),
        ("ContainerGroupName", "default-web-7d9f8b6c5d-x2k4q"),
        ("ClientToken", "3f2b6a1c-5d4e-4f7a-9b8c-1d2e3f4a5b6c"),
        ("RestartPolicy", "Always"),
        ("Cpu", "2.0"),
        ("Memory", "4.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for c in 1..=2 {
        let pre = format!("Container.{c}.");
        p.insert(format!("{pre}Name"), format!("container-{c}"));
        p.insert(
            format!("{pre}Image"),
            format!("registry.example.com:5000/team/app-{c}:1.2.3"),
        );
        p.insert(format!("{pre}Command.1"), "sh".into());
        p.insert(format!("{pre}Arg.1"), "-c".into());
        p.insert(
            format!("{pre}Arg.2"),
            "exec /app --listen :8080 --verbose".into(),
        );
        for e in 1..=8 {
            p.insert(format!("{pre}EnvironmentVar.{e}.Key"), format!("VAR_{e}"));
            p.insert(
                format!("{pre}EnvironmentVar.{e}.Value"),
                format!("value with spaces & symbols {e}/=?"),
            );
        }
    }
    for (t, (k, v)) in [
        ("eci-vk.io/cluster", "bench"),
        ("eci-vk.io/node", "virtual-kubelet"),
        ("eci-vk.io/namespace", "default"),
        ("eci-vk.io/name", "web-7d9f8b6c5d-x2k4q"),
        ("eci-vk.io/uid", "3f2b6a1c-5d4e-4f7a-9b8c-1d2e3f4a5b6c"),
    ]
    .into_iter()
    .enumerate()
    {
        p.insert(format!("Tag.{}.Key", t + 1), k.into());
        p.insert(format!("Tag.{}.Value", t + 1), v.into());
    }
    p
}

fn bench(c: &mut Criterion) {
    let params = params();
    c.bench_function("sign/v1_create_container_group", |b| {
        b.iter(|| {
            let to_sign = sign::v1_string_to_sign("POST", black_box(&params));
            sign::v1_signature(SECRET, &to_sign)
        });
    });

    // V3 carries the parameters in the query and signs host, x-acs-* and the body hash.
    let body_hash = sign::sha256_hex(b"");
    let headers: BTreeMap<String, String> = [
        ("host", "eci.cn-hangzhou.aliyuncs.com"),
        ("x-acs-action", "CreateContainerGroup"),
        ("x-acs-version", "2018-08-08"),
        ("x-acs-date", "2026-11-28T09:00:00Z"),
        (
            "x-acs-signature-nonce",
            "0f6c2b1e-8c9a-4a53-9d2e-3f1b7c5d9e10",
        ),
        ("x-acs-content-sha256", body_hash.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    c.bench_function("sign/v3_create_container_group", |b| {
        b.iter(|| {
            let (request, signed) = sign::v3_canonical_request(
                "POST",
                "/",
                black_box(&params),
                black_box(&headers),
                &body_hash,
            );
            let signature = sign::v3_signature(SECRET, &request);
            sign::v3_authorization("LTAI5tBenchAccessKeyId", &signed, &signature)
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
