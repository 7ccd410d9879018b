//! Entry point of the `openapi_request` fuzz target (`fuzz/`, issue #20): the emulator's
//! reading of a request (query and form parsing, the action it names, signature
//! canonicalisation and checks), and the property that what the node's client signs the
//! emulator verifies. Not an API: hidden from the docs.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::{
    API_VERSION,
    auth::{Credentials, SignedParts, Verifier},
    http::{decode, signed_action},
};
use crate::eci::{self, SignatureVersion};

const KEY_ID: &str = "fuzz-key-id";
const SECRET: &str = "fuzz-key-secret";
const NOW: &str = "2026-01-01T00:00:00Z";

/// A request as text: its query on the first line, a form body on the second, then headers
/// (`name: value`, one per line). Decoded and verified as the HTTP face does it; never a
/// panic. Whatever parameters decode, signed by the client, verify.
pub fn request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let query = lines.next();
    let body = lines.next().unwrap_or_default();
    let headers: BTreeMap<String, String> = lines
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let Ok((query, params)) = decode(query, &headers, body.as_bytes()) else {
        return;
    };
    let _ = signed_action(&headers, &params);
    let verifier = Verifier::new(Credentials::new(KEY_ID, SECRET));
    for method in ["GET", "POST"] {
        let parts = SignedParts {
            method,
            path: "/",
            query: &query,
            params: &params,
            headers: &headers,
            body: body.as_bytes(),
        };
        let _ = verifier.verify(&parts, now());
    }
    sign_then_verify(&params);
}

/// `params`, signed by the node's client (V1 and V3) and put on the wire as it sends them,
/// decode to what was signed and pass the emulator's verifier, which names the action the
/// client called.
///
/// # Panics
/// When they do not: the client and the emulator disagree on the wire format.
pub fn sign_then_verify(params: &BTreeMap<String, String>) {
    let Ok(base) = reqwest::Url::parse("http://127.0.0.1:9/") else {
        return;
    };
    let credentials = eci::Credentials::new(KEY_ID, SECRET, None);
    let verifier = Verifier::new(Credentials::new(KEY_ID, SECRET));
    let action = "DescribeContainerGroups";
    for (n, signature) in [SignatureVersion::V1, SignatureVersion::V3]
        .into_iter()
        .enumerate()
    {
        let nonce = format!("nonce-{n}");
        let Ok((url, sent)) =
            eci::signed_request(&base, signature, action, params, &credentials, NOW, &nonce)
        else {
            continue;
        };
        let mut headers: BTreeMap<String, String> = sent
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        headers.insert("host".into(), "127.0.0.1:9".into());
        let (query, decoded) = decode(url.query(), &headers, b"")
            .unwrap_or_else(|e| panic!("{signature:?}: the client's query does not decode: {e:?}"));
        for (name, value) in params {
            let reserved =
                matches!(signature, SignatureVersion::V1) && V1_RESERVED.contains(&name.as_str());
            if !reserved {
                assert_eq!(decoded.get(name), Some(value), "{signature:?}: {name:?}");
            }
        }
        let (named, version) = signed_action(&headers, &decoded);
        assert_eq!(named.map(String::as_str), Some(action), "{signature:?}");
        assert_eq!(
            version.map(String::as_str),
            Some(API_VERSION),
            "{signature:?}"
        );
        let parts = SignedParts {
            method: "POST",
            path: url.path(),
            query: &query,
            params: &decoded,
            headers: &headers,
            body: b"",
        };
        if let Err(error) = verifier.verify(&parts, now()) {
            panic!("{signature:?}: the client's request is refused: {error:?}");
        }
    }
}

/// The parameters a V1 request sets itself, over any of the same name.
const V1_RESERVED: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Signature",
    "SecurityToken",
];

/// [`NOW`] as a timestamp.
fn now() -> Timestamp {
    Timestamp::constant(1_767_225_600, 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_the_time_the_client_signs_with() {
        assert_eq!(super::now(), super::NOW.parse::<jiff::Timestamp>().unwrap());
    }
}
