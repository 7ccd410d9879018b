//! Request signing for the Alibaba Cloud RPC OpenAPI: V1 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256).
//!
//! Everything here is a pure function of its inputs: the caller supplies the timestamp, the nonce
//! and the parameters, so the client (which signs) and the emulator (which verifies) share exactly
//! one implementation, and tests can pin every byte. Canonicalisation is kept apart from the HMAC
//! step so each can be checked against the reference's vectors (`eci-openapi.md` §1.4, §1.5).

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// The `Authorization` scheme name of signature V3.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Hex SHA-256 of the empty body, the `x-acs-content-sha256` of every request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 percent-encoding (unreserved set only, uppercase hex, space = %20), as both signature
/// versions use.
///
/// `A–Z a–z 0–9 - _ . ~` stay literal; every other UTF-8 byte becomes `%XY`. This is what the
/// official SDKs produce after their `+`→`%20`, `*`→`%2A`, `%7E`→`~` fix-ups.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// `k1=v1&k2=v2…` with both sides percent-encoded, in the map's (byte-wise sorted) order,
/// leaving out `skip` if given.
///
/// The reference notes a discrepancy for V3: the Go util encodes only values, the V3 document
/// says names and values. Names are encoded here, as the document says; for every ECI parameter
/// name (ASCII letters, digits and `.`) the two agree, and the Python SDK's requests verify
/// against this form (reference §1.5a). Sorting is over the raw names (BTreeMap order), as the
/// SDK sorts; for these names it is the same as sorting encoded names.
fn canonical_query(params: &BTreeMap<String, String>, skip: Option<&str>) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if Some(k.as_str()) == skip {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// V1 (HMAC-SHA1): the string to sign for METHOD and all params except `Signature` (sorted by key).
///
/// `METHOD + "&%2F&" + percent_encode(canonicalized query)`: the canonical query is encoded a
/// second time, so `:` in a timestamp appears as `%253A`. `params` holds every request parameter
/// (query and form body) unencoded; a `Signature` entry, if present, is ignored.
pub fn v1_string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    let canonical = canonical_query(params, Some("Signature"));
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&canonical)
    )
}

/// V1: base64(HMAC-SHA1(secret + "&", string_to_sign)).
pub fn v1_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let key = format!("{access_key_secret}&");
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The canonical URI of V3: `/` for an empty path, otherwise each segment percent-encoded with
/// the `/` separators kept.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// V3 (ACS3-HMAC-SHA256): the canonical request. `query` are the query params (unencoded),
/// `headers` the headers to sign (lowercase names; host, x-acs-* and content-type as the spec
/// says), `hashed_payload` hex sha256 of the body.
///
/// Returns the canonical request and the signed header names joined by `;`.
///
/// Every header passed in is signed: the caller chooses the set. The official Python SDK also
/// signs `accept` and `user-agent` (reference §1.5a), so a verifier must pass exactly the headers
/// that the request's `SignedHeaders` names. Names are lower-cased and values trimmed here, so a
/// caller that forgets to do so still gets the canonical form.
pub fn v3_canonical_request(
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    hashed_payload: &str,
) -> (String, String) {
    // Re-sort after lower-casing: a mixed-case key could otherwise sit in the wrong place.
    let headers: BTreeMap<String, &str> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let mut canonical_headers = String::new();
    for (k, v) in &headers {
        canonical_headers.push_str(k);
        canonical_headers.push(':');
        canonical_headers.push_str(v);
        canonical_headers.push('\n');
    }
    let signed_headers = headers
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(";");
    let request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(path),
        canonical_query(query, None),
        canonical_headers,
        signed_headers,
        hashed_payload
    );
    (request, signed_headers)
}

/// V3: the string to sign, `"ACS3-HMAC-SHA256\n" + hex(sha256(canonical_request))`.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{V3_ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// V3: hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" + hex(sha256(canonical_request)))).
///
/// The key is the bare secret (unlike V1, no `&` is appended).
pub fn v3_signature(access_key_secret: &str, canonical_request: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(access_key_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(v3_string_to_sign(canonical_request).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// V3: the full Authorization header value.
pub fn v3_authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// Hex SHA-256 of a request body, for `x-acs-content-sha256` and the canonical request.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Constant-time comparison of two signatures, for verifiers.
///
/// Length is not secret (both versions have fixed-length signatures), only the content is.
/// `subtle` keeps the comparison free of data-dependent branches, which a hand-written fold
/// cannot promise once the optimiser has seen it.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn percent_encode_follows_rfc3986() {
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("+/:=&"), "%2B%2F%3A%3D%26");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode(""), "");
    }

    /// The published vector of the Alibaba Cloud "Signature mechanism" page (reference §1.4).
    #[test]
    fn v1_published_vector() {
        let params = map(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        let sts = v1_string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    /// The ECI-flavoured V1 vectors of reference §1.4 (GET and POST), with a list parameter.
    #[test]
    fn v1_eci_vectors_and_signature_param_is_ignored() {
        let mut params = map(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeImageCaches"),
            ("Format", "JSON"),
            ("Limit", "20"),
            ("MatchImage.1", "nginx:1.25"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "0123456789abcdef"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-01-01T00:00:00Z"),
            ("Version", "2018-08-08"),
        ]);
        let get = v1_signature("testsecret", &v1_string_to_sign("GET", &params));
        assert_eq!(get, "+qlokqJK4IuqLTYKLRClp6G/tc0=");
        params.insert("Signature".into(), get);
        let post = v1_signature("testsecret", &v1_string_to_sign("POST", &params));
        assert_eq!(post, "RYgHuVunWh7nY4F1inxBsIBYOvk=");
        // A different secret gives a different signature.
        assert_ne!(
            v1_signature("othersecret", &v1_string_to_sign("POST", &params)),
            post
        );
    }

    /// The computed V3 vector of reference §1.5 (no official one is published).
    #[test]
    fn v3_reference_vector() {
        let query = map(&[("ImageCacheId", "imc-test"), ("RegionId", "cn-hangzhou")]);
        let headers = map(&[
            ("host", "eci.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", "DescribeImageCaches"),
            ("x-acs-version", "2018-08-08"),
            ("x-acs-date", "2024-01-01T00:00:00Z"),
            ("x-acs-signature-nonce", "0123456789abcdef"),
            ("x-acs-content-sha256", EMPTY_PAYLOAD_SHA256),
        ]);
        let (cr, signed) =
            v3_canonical_request("POST", "/", &query, &headers, EMPTY_PAYLOAD_SHA256);
        assert_eq!(
            signed,
            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        assert_eq!(
            cr,
            format!(
                "POST\n/\nImageCacheId=imc-test&RegionId=cn-hangzhou\n\
                 host:eci.cn-hangzhou.aliyuncs.com\nx-acs-action:DescribeImageCaches\n\
                 x-acs-content-sha256:{EMPTY_PAYLOAD_SHA256}\nx-acs-date:2024-01-01T00:00:00Z\n\
                 x-acs-signature-nonce:0123456789abcdef\nx-acs-version:2018-08-08\n\n{signed}\n\
                 {EMPTY_PAYLOAD_SHA256}"
            )
        );
        assert_eq!(
            v3_string_to_sign(&cr),
            "ACS3-HMAC-SHA256\nee3edcac235df361782f18af47c708aec80aa6f76ba745995404448637f19adf"
        );
        let sig = v3_signature("testsecret", &cr);
        assert_eq!(
            sig,
            "1974b2c56f522f584c387ee58487c47a3109084c8cd809e4e914d7e4b05b84ce"
        );
        assert_eq!(
            v3_authorization("testid", &signed, &sig),
            format!("ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={signed},Signature={sig}")
        );
    }

    #[test]
    fn v3_normalises_header_names_values_and_encodes_query() {
        let query = map(&[("b", "x y*"), ("A", "1")]);
        let headers = map(&[
            ("X-Acs-Date", " d "),
            ("host", "h"),
            ("accept", "application/json"),
        ]);
        let (cr, signed) = v3_canonical_request("post", "", &query, &headers, "abc");
        assert_eq!(signed, "accept;host;x-acs-date");
        assert_eq!(
            cr,
            "POST\n/\nA=1&b=x%20y%2A\naccept:application/json\nhost:h\nx-acs-date:d\n\n\
             accept;host;x-acs-date\nabc"
        );
        // An empty query value still appears as `key=`.
        let (cr, _) = v3_canonical_request("GET", "/", &map(&[("k", "")]), &BTreeMap::new(), "h");
        assert_eq!(cr, "GET\n/\nk=\n\n\nh");
    }

    #[test]
    fn empty_payload_hash_and_signature_comparison() {
        assert_eq!(sha256_hex(b""), EMPTY_PAYLOAD_SHA256);
        assert!(signatures_equal("abc", "abc"));
        assert!(!signatures_equal("abc", "abd"));
        assert!(!signatures_equal("abc", "abcd"));
    }
}
