//! Verifying who sent a request: the one configured AccessKey pair or temporary credentials the
//! emulator's STS issued (accepted with their security token until they expire), V1 or V3
//! signatures, the 15-minute timestamp window and nonce reuse (reference §1.3–§1.5, codes §1.8).
//!
//! The signing functions are the client's own (`crate::eci::sign`), so client and emulator cannot
//! disagree about canonical forms. The secret is never logged, echoed or put in an error.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};

use super::error::ApiError;
use crate::eci::sign;

/// Allowed difference between a request's timestamp and the emulator's clock.
pub const TIMESTAMP_WINDOW: SignedDuration = SignedDuration::from_mins(15);

/// The one AccessKey pair the emulator accepts.
#[derive(Clone)]
pub struct Credentials {
    /// AccessKey ID.
    pub access_key_id: String,
    access_key_secret: String,
}

impl Credentials {
    /// A pair.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .finish()
    }
}

/// The parts of a request the signatures cover.
/// Not `Debug`: it holds the signature, the security token and the OIDC token.
pub struct SignedParts<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// URL path.
    pub path: &'a str,
    /// Decoded query parameters only.
    pub query: &'a BTreeMap<String, String>,
    /// Query and form-body parameters together.
    pub params: &'a BTreeMap<String, String>,
    /// Headers, names lowercase.
    pub headers: &'a BTreeMap<String, String>,
    /// Raw body.
    pub body: &'a [u8],
}

/// Temporary credentials issued by the emulator's STS or metadata service.
#[derive(Clone)]
pub struct Issued {
    /// Their secret.
    pub secret: String,
    /// The security token that must accompany them.
    pub token: String,
    /// When they stop being accepted.
    pub expires: Timestamp,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Checks signatures and remembers nonces.
#[derive(Debug)]
pub struct Verifier {
    credentials: Credentials,
    /// HMAC key of `ClientToken` fingerprints, derived from the secret (never the secret).
    fingerprint_key: [u8; 32],
    nonces: Mutex<HashMap<String, Timestamp>>,
    issued: Mutex<HashMap<String, Issued>>,
}

fn incomplete(message: &str) -> ApiError {
    ApiError::bad_request("IncompleteSignature", message)
}

fn mismatch() -> ApiError {
    // The reference lists 400 (gateway) and 403 (product pages); the emulator answers 400, the
    // gateway's, which every client treats as a non-retryable client error either way.
    ApiError::bad_request(
        "SignatureDoesNotMatch",
        "Specified signature does not match our calculation.",
    )
}

impl Verifier {
    /// A verifier for `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        let fingerprint_key = hmac_sha256(
            credentials.access_key_secret.as_bytes(),
            b"eci-emulator ClientToken fingerprint",
        );
        Self {
            fingerprint_key,
            credentials,
            nonces: Mutex::new(HashMap::new()),
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// Accepts `id` with `issued`'s secret and token until `issued.expires`. Credentials
    /// expired for more than a day are forgotten as new ones are issued (until then a request
    /// with them is answered `InvalidSecurityToken.Expired`, as the cloud does).
    pub fn issue(&self, id: String, issued: Issued, now: Timestamp) {
        let mut all = self.issued.lock();
        all.retain(|_, i| {
            i.expires
                .checked_add(SignedDuration::from_hours(24))
                .is_ok_and(|t| t > now)
        });
        all.insert(id, issued);
    }

    /// `value` as it appears in a `ClientToken` fingerprint: hex HMAC-SHA256 under a key
    /// derived from the account's secret, so the same value gives the same text across
    /// restarts and the text reveals nothing of it.
    pub fn fingerprint_value(&self, value: &str) -> String {
        hex::encode(hmac_sha256(&self.fingerprint_key, value.as_bytes()))
    }

    /// The account's own AccessKey pair, for the emulator's STS to check `AssumeRole` callers.
    pub fn account_key_id(&self) -> &str {
        &self.credentials.access_key_id
    }

    /// Verifies the request's signature (V3 when an `ACS3-…` Authorization header is present,
    /// else V1), its timestamp and its nonce; records the nonce only when everything holds.
    ///
    /// # Errors
    /// `IncompleteSignature`, `InvalidAccessKeyId.NotFound` (404), `InvalidSignatureMethod`,
    /// `SignatureDoesNotMatch`, `MissingTimestamp`, `InvalidTimeStamp.Format`,
    /// `InvalidTimeStamp.Expired`, `MissingSignatureNonce`, `SignatureNonceUsed`.
    pub fn verify(&self, parts: &SignedParts<'_>, now: Timestamp) -> Result<(), ApiError> {
        let (timestamp, nonce) = match parts.headers.get("authorization") {
            Some(auth) if auth.starts_with("ACS3-") => self.verify_v3(parts, auth, now)?,
            _ if parts.params.contains_key("Signature") => self.verify_v1(parts, now)?,
            _ => {
                return Err(incomplete(
                    "The request carries neither a Signature parameter nor an ACS3 Authorization header.",
                ));
            }
        };
        check_timestamp(&timestamp, now)?;
        let mut nonces = self.nonces.lock();
        if nonces.len() >= 4096 {
            // Nonces older than the window can never be replayed: their timestamps are stale.
            nonces.retain(|_, at| {
                at.saturating_add(TIMESTAMP_WINDOW.saturating_mul(2))
                    .is_ok_and(|t| t > now)
            });
        }
        if nonces.contains_key(&nonce) {
            return Err(ApiError::bad_request(
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        nonces.insert(nonce, now);
        Ok(())
    }

    /// The secret to verify a request from `id` with: the account's, or that of unexpired
    /// temporary credentials presented with their own `token`.
    fn secret_for(
        &self,
        id: &str,
        token: Option<&String>,
        now: Timestamp,
    ) -> Result<String, ApiError> {
        if id == self.credentials.access_key_id {
            return Ok(self.credentials.access_key_secret.clone());
        }
        let Some(issued) = self.issued.lock().get(id).cloned() else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        };
        match token {
            None => Err(ApiError::bad_request(
                "InvalidSecurityToken.Missing",
                "The request uses temporary credentials but carries no SecurityToken.",
            )),
            Some(token) if !sign::signatures_equal(token, &issued.token) => {
                Err(ApiError::bad_request(
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ))
            }
            Some(_) if issued.expires <= now => Err(ApiError::bad_request(
                "InvalidSecurityToken.Expired",
                "Specified SecurityToken is expired.",
            )),
            Some(_) => Ok(issued.secret),
        }
    }

    fn verify_v1(
        &self,
        parts: &SignedParts<'_>,
        now: Timestamp,
    ) -> Result<(String, String), ApiError> {
        let p = parts.params;
        let key_id = p
            .get("AccessKeyId")
            .ok_or_else(|| ApiError::missing("AccessKeyId"))?;
        let secret = self.secret_for(key_id, p.get("SecurityToken"), now)?;
        match p.get("SignatureMethod").map(String::as_str) {
            Some("HMAC-SHA1") => {}
            None => return Err(ApiError::missing("SignatureMethod")),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "InvalidSignatureMethod",
                    "Specified signature method is not supported (HMAC-SHA1 only).",
                ));
            }
        }
        if p.get("SignatureVersion").is_some_and(|v| v != "1.0") {
            return Err(ApiError::bad_request(
                "InvalidSignatureVersion",
                "Specified signature version is not supported (1.0 only).",
            ));
        }
        let given = p.get("Signature").map(String::as_str).unwrap_or_default();
        let expected = sign::v1_signature(&secret, &sign::v1_string_to_sign(parts.method, p));
        if !sign::signatures_equal(given, &expected) {
            return Err(mismatch());
        }
        let timestamp = p
            .get("Timestamp")
            .cloned()
            .ok_or_else(|| ApiError::missing("Timestamp"))?;
        let nonce = p
            .get("SignatureNonce")
            .filter(|n| !n.is_empty())
            .cloned()
            .ok_or_else(|| ApiError::missing("SignatureNonce"))?;
        Ok((timestamp, nonce))
    }

    fn verify_v3(
        &self,
        parts: &SignedParts<'_>,
        auth: &str,
        now: Timestamp,
    ) -> Result<(String, String), ApiError> {
        let (algorithm, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        if algorithm != sign::V3_ALGORITHM {
            return Err(ApiError::bad_request(
                "InvalidSignatureMethod",
                "Specified signature algorithm is not supported (ACS3-HMAC-SHA256 only).",
            ));
        }
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for field in rest.split(',') {
            match field.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(incomplete(
                "The Authorization header needs Credential, SignedHeaders and Signature.",
            ));
        };
        let secret = self.secret_for(credential, parts.headers.get("x-acs-security-token"), now)?;
        let names: Vec<&str> = signed_headers
            .split(';')
            .filter(|n| !n.is_empty())
            .collect();
        // The V3 page ("Request syntax and signature method V3", SignedHeaders): every common
        // request header but Authorization must be signed when present. Unsigned, an
        // `x-acs-*` header (the action, the version, the token) could be changed in flight.
        if let Some(unsigned) = parts
            .headers
            .keys()
            .find(|name| name.starts_with("x-acs-") && !names.contains(&name.as_str()))
        {
            return Err(incomplete(&format!(
                "The header {unsigned} must be signed."
            )));
        }
        for required in [
            "host",
            "x-acs-action",
            "x-acs-version",
            "x-acs-date",
            "x-acs-signature-nonce",
        ] {
            if !names.contains(&required) {
                return Err(incomplete(&format!(
                    "The header {required} must be signed."
                )));
            }
        }
        let mut headers = BTreeMap::new();
        for name in &names {
            let value = parts
                .headers
                .get(*name)
                .ok_or_else(|| incomplete(&format!("The signed header {name} is absent.")))?;
            headers.insert((*name).to_owned(), value.clone());
        }
        let body_hash = sign::sha256_hex(parts.body);
        if let Some(claimed) = parts.headers.get("x-acs-content-sha256")
            && !claimed.eq_ignore_ascii_case(&body_hash)
        {
            return Err(mismatch());
        }
        let (canonical, canonical_names) =
            sign::v3_canonical_request(parts.method, parts.path, parts.query, &headers, &body_hash);
        let expected = sign::v3_signature(&secret, &canonical);
        if canonical_names != signed_headers || !sign::signatures_equal(signature, &expected) {
            return Err(mismatch());
        }
        let timestamp = headers.get("x-acs-date").cloned().unwrap_or_default();
        let nonce = headers
            .get("x-acs-signature-nonce")
            .cloned()
            .unwrap_or_default();
        if nonce.is_empty() {
            return Err(ApiError::missing("SignatureNonce"));
        }
        Ok((timestamp, nonce))
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac as _};
    // HMAC takes a key of any length, so `new_from_slice` cannot fail; the fallback is never
    // taken.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn check_timestamp(timestamp: &str, now: Timestamp) -> Result<(), ApiError> {
    if timestamp.is_empty() {
        return Err(ApiError::missing("Timestamp"));
    }
    let at: Timestamp = timestamp.parse().map_err(|_| {
        ApiError::bad_request(
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted (UTC, yyyy-MM-ddTHH:mm:ssZ).",
        )
    })?;
    let skew = now.duration_since(at).abs();
    if skew > TIMESTAMP_WINDOW {
        return Err(ApiError::bad_request(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired (more than 15 minutes from the server's time).",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
