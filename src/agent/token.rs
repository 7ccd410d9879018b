//! The bearer token an agent served over TCP requires, and the client side that sends it.
//!
//! A unix socket is the agent's default: there the kernel tells who connects (peer credentials,
//! `listen.rs`), as containerd and CRI runtimes rely on for their sockets. TCP carries no such
//! identity, so an agent on TCP requires `authorization: Bearer <token>` on every call (gRPC's
//! call-credentials convention) and answers `UNAUTHENTICATED` otherwise.

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

use super::pb::agent_client::AgentClient;

/// The metadata key of the token (HTTP/2 header names are lower case).
const AUTHORIZATION: &str = "authorization";

/// Why a token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is empty (after trimming the surrounding whitespace of its file).
    #[error("the token is empty")]
    Empty,
    /// The token holds a character that cannot travel in a header (only visible ASCII can).
    #[error("the token holds a character other than visible ASCII")]
    NotVisibleAscii,
}

/// A shared secret between an agent and its emulator. `Debug` never shows it.
#[derive(Clone)]
pub struct AuthToken(Arc<SecretString>);

// === impl AuthToken ===

impl AuthToken {
    /// The token `text`, trimmed of surrounding whitespace (a token file ends in a newline).
    ///
    /// # Errors
    /// [`TokenError`] when nothing is left or a character cannot travel in a header.
    pub fn new(text: &str) -> Result<Self, TokenError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotVisibleAscii);
        }
        Ok(Self(Arc::new(SecretString::from(token.to_owned()))))
    }

    /// Whether `presented` is this token. Both are hashed first and the digests compared in
    /// constant time, so neither the content nor the length of the token leaks through timing.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = Sha256::digest(self.0.expose_secret().as_bytes());
        let presented = Sha256::digest(presented);
        expected.ct_eq(&presented).into()
    }

    /// `Bearer <token>` as a metadata value marked sensitive (kept out of HPACK tables and
    /// `Debug` output).
    fn header(&self) -> AsciiMetadataValue {
        let text = format!("Bearer {}", self.0.expose_secret());
        // `new` admitted only visible ASCII, which is always a valid header value.
        let mut value = MetadataValue::try_from(text.as_str())
            .unwrap_or_else(|_| AsciiMetadataValue::from_static(""));
        value.set_sensitive(true);
        value
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken([REDACTED])")
    }
}

/// The server side: admits a call only with the token, when the agent has one.
#[derive(Clone, Debug)]
pub(crate) struct RequireToken(Option<AuthToken>);

// === impl RequireToken ===

impl RequireToken {
    /// Checks every call against `token`; `None` admits every call (a unix socket whose peers
    /// were checked when they connected).
    pub(crate) fn new(token: Option<AuthToken>) -> Self {
        Self(token)
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|value| bearer(value.as_bytes()));
        match presented {
            Some(presented) if token.matches(presented) => Ok(request),
            // One answer for a missing and a wrong token, and never an echo of what was sent.
            _ => Err(Status::unauthenticated(
                "the agent requires its bearer token (authorization: Bearer <token>)",
            )),
        }
    }
}

/// The credentials of an `authorization` value of the Bearer scheme (RFC 6750; the scheme
/// name is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    let (scheme, credentials) = value.split_at_checked(SCHEME.len())?;
    scheme.eq_ignore_ascii_case(SCHEME).then_some(credentials)
}

/// The client side: adds the token to every call, when there is one.
#[derive(Clone, Debug)]
pub struct SendToken(Option<AsciiMetadataValue>);

impl Interceptor for SendToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(AUTHORIZATION, value.clone());
        }
        Ok(request)
    }
}

/// The channel of an agent client: a tonic channel that sends the token, if any.
pub type AgentChannel = InterceptedService<Channel, SendToken>;

/// A client of the agent protocol on `channel`, sending `token` with every call when given
/// (an agent on TCP requires it; one on a unix socket needs none).
pub fn agent_client(channel: Channel, token: Option<&AuthToken>) -> AgentClient<AgentChannel> {
    AgentClient::with_interceptor(channel, SendToken(token.map(AuthToken::header)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(interceptor: &mut RequireToken, authorization: Option<&'static str>) -> Option<Code> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert(AUTHORIZATION, AsciiMetadataValue::from_static(value));
        }
        interceptor.call(request).err().map(|status| status.code())
    }

    use tonic::Code;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let token = AuthToken::new("abc").expect("valid");
        let mut check = RequireToken::new(Some(token));
        assert_eq!(call(&mut check, Some("Bearer abc")), None);
        assert_eq!(call(&mut check, Some("bearer abc")), None);
        for refused in [
            None,
            Some("Bearer abcd"),
            Some("Bearer ab"),
            Some("Basic abc"),
            Some("abc"),
        ] {
            assert_eq!(
                call(&mut check, refused),
                Some(Code::Unauthenticated),
                "{refused:?}"
            );
        }
        let mut open = RequireToken::new(None);
        assert_eq!(
            call(&mut open, None),
            None,
            "no token: peers were checked at accept"
        );
    }

    #[test]
    fn the_client_sends_a_sensitive_header() {
        let token = AuthToken::new("abc").expect("valid");
        let mut send = SendToken(Some(token.header()));
        let request = send.call(Request::new(())).expect("never fails");
        let value = request.metadata().get(AUTHORIZATION).expect("sent");
        assert_eq!(value.as_bytes(), b"Bearer abc");
        assert!(value.is_sensitive());
        assert!(!format!("{send:?}").contains("abc"));
    }
}
