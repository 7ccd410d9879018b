//! Credentials that change while the node runs: one [`Provider`] per source of the chain,
//! holding the current credentials and fetching new ones before the old ones expire.
//!
//! Temporary credentials (STS tokens from RRSA, `AssumeRole` or the ECS metadata service) live
//! from 15 minutes to a few hours; a node runs for months. Every signed request asks the
//! provider for the current credentials ([`Provider::current`]); the provider answers from its
//! cache while they are fresh and refreshes them ahead of their expiry, the way Alibaba Cloud's
//! credentials SDKs do: one refresh at a time, and when a refresh fails while the old
//! credentials are still valid, those are used and the failure is logged (the next call tries
//! again). Credentials read from files (a mounted Secret, a credentials file) are re-read every
//! [`REREAD_FILES`], so a rotated Secret is picked up without a restart.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use jiff::{SignedDuration, Timestamp};
use reqwest::Url;

use super::{Credentials, metadata::EcsRole, profile, sts};
use crate::eci::Error;

/// How long credentials read from a file are used before the file is read again.
pub const REREAD_FILES: Duration = Duration::from_secs(60);
/// The most a refresh is brought forward before expiry (the SDKs refresh about 3 minutes
/// ahead); short-lived credentials are refreshed when a third of their life is left.
const MAX_REFRESH_AHEAD: SignedDuration = SignedDuration::from_mins(3);
/// Credentials closer than this to their expiry are not used even when a refresh failed: a
/// request signed with them could arrive after they expired.
const EXPIRY_SAFETY: SignedDuration = SignedDuration::from_secs(5);
/// After a failed refresh, the held credentials are used this long before the next try.
const RETRY_FAILED: SignedDuration = SignedDuration::from_secs(5);

/// Credentials as one fetch returned them: with an expiry when they are temporary.
#[derive(Clone, Debug)]
pub(crate) struct Fetched {
    pub credentials: Credentials,
    pub expires: Option<Timestamp>,
}

/// Where a provider's credentials come from.
pub(crate) enum Source {
    /// Fixed for the life of the process (the environment).
    Static(Credentials),
    /// A file or directory, read again every [`REREAD_FILES`].
    File(FileSource),
    /// RRSA: an OIDC token file exchanged with STS `AssumeRoleWithOIDC`.
    Oidc(sts::OidcRole),
    /// The ECS instance's RAM role, from the metadata service.
    EcsRole(EcsRole),
    /// STS `AssumeRole`, signed with the credentials of another provider.
    AssumeRole { base: Provider, role: sts::RoleArn },
}

/// A file-backed source of long-lived credentials.
#[derive(Debug, Clone)]
pub(crate) enum FileSource {
    /// A directory with `access-key-id`, `access-key-secret`, `security-token` (a Secret mount).
    Dir(PathBuf),
    /// A profile of an INI credentials file or of the CLI's `config.json`.
    Profile(profile::ProfileRef),
}

impl FileSource {
    async fn read(&self) -> Result<Credentials, Error> {
        match self {
            FileSource::Dir(dir) => Credentials::from_dir(dir).await,
            FileSource::Profile(at) => at.read_static(),
        }
    }
}

/// The network side of the chain: one HTTP client, the STS endpoint and the metadata service.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub http: reqwest::Client,
    pub sts: Url,
    pub metadata: Url,
}

/// The current credentials of one source, refreshed as they near expiry. Cheap to clone.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    source: Source,
    net: Option<Net>,
    cached: parking_lot::Mutex<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
    /// After a failed refresh: not before then again while the held credentials are usable.
    retry_at: parking_lot::Mutex<Option<Timestamp>>,
    fetches: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    fetched: Fetched,
    at: Timestamp,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key id is not a secret (every signed request carries it); the rest stays out.
        let key_id = self
            .inner
            .cached
            .lock()
            .as_ref()
            .map(|c| c.fetched.credentials.access_key_id().to_owned());
        f.debug_struct("Provider")
            .field("source", &self.inner.name)
            .field("access_key_id", &key_id)
            .finish_non_exhaustive()
    }
}

impl From<Credentials> for Provider {
    fn from(credentials: Credentials) -> Self {
        Provider::new(
            "static credentials".into(),
            Source::Static(credentials),
            None,
        )
    }
}

impl Provider {
    pub(crate) fn new(name: String, source: Source, net: Option<Net>) -> Self {
        let cached = match &source {
            Source::Static(credentials) => Some(Cached {
                fetched: Fetched {
                    credentials: credentials.clone(),
                    expires: None,
                },
                at: Timestamp::now(),
            }),
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                name,
                source,
                net,
                cached: parking_lot::Mutex::new(cached),
                refreshing: tokio::sync::Mutex::new(()),
                retry_at: parking_lot::Mutex::new(None),
                fetches: AtomicU64::new(0),
            }),
        }
    }

    /// Which source this is, for the start-up log line (never a secret).
    pub fn describe(&self) -> &str {
        &self.inner.name
    }

    /// How many times credentials were fetched from the source (not served from the cache).
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// The expiry of the credentials held now, if they are temporary.
    pub fn expires(&self) -> Option<Timestamp> {
        self.inner
            .cached
            .lock()
            .as_ref()
            .and_then(|c| c.fetched.expires)
    }

    /// The credentials to sign a request with now.
    ///
    /// # Errors
    /// [`Error::CredentialsUnavailable`] (or a file error) when the source cannot give
    /// credentials and none that are still valid are held.
    pub async fn current(&self) -> Result<Credentials, Error> {
        Ok(self.current_fetched().await?.credentials)
    }

    async fn current_fetched(&self) -> Result<Fetched, Error> {
        let now = Timestamp::now();
        if let Some(fresh) = self.fresh(now) {
            return Ok(fresh);
        }
        // While one caller refreshes (or waits out a failed refresh), the others keep using
        // what is held as long as it is valid, rather than queue behind it.
        let usable = self.usable(now);
        let _one_at_a_time = match (self.inner.refreshing.try_lock(), &usable) {
            (Ok(guard), _) => guard,
            (Err(_), Some(held)) => return Ok(held.clone()),
            (Err(_), None) => self.inner.refreshing.lock().await,
        };
        let now = Timestamp::now();
        if let Some(fresh) = self.fresh(now) {
            return Ok(fresh); // another caller refreshed while this one waited
        }
        if let Some(held) = &usable
            && self.inner.retry_at.lock().is_some_and(|at| now < at)
        {
            return Ok(held.clone());
        }
        let fetched = Box::pin(self.fetch()).await.and_then(|fetched| {
            match fetched.expires {
                Some(expires) if expires <= now.checked_add(EXPIRY_SAFETY).unwrap_or(now) => {
                    Err(Error::CredentialsUnavailable {
                        source_name: self.inner.name.clone(),
                        reason: format!("the credentials it gave expire at {expires}, too soon to use (is the clock right?)"),
                        transient: true,
                    })
                }
                _ => Ok(fetched),
            }
        });
        match fetched {
            Ok(fetched) => {
                *self.inner.retry_at.lock() = None;
                self.inner.fetches.fetch_add(1, Ordering::Relaxed);
                if let Some(expires) = fetched.expires {
                    tracing::info!(source = %self.inner.name, %expires, "ECI credentials refreshed");
                }
                *self.inner.cached.lock() = Some(Cached {
                    fetched: fetched.clone(),
                    at: now,
                });
                Ok(fetched)
            }
            Err(error) => {
                // Not again before RETRY_FAILED: one warning per attempt, not per request.
                *self.inner.retry_at.lock() = now.checked_add(RETRY_FAILED).ok();
                match usable {
                    Some(held) => {
                        tracing::warn!(source = %self.inner.name, expires = ?held.expires, error = &error as &dyn std::error::Error, "could not refresh ECI credentials; using the ones held until they expire");
                        Ok(held)
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// The cached credentials if they may still sign a request at `now`.
    fn usable(&self, now: Timestamp) -> Option<Fetched> {
        let cached = self.inner.cached.lock();
        let held = cached.as_ref()?;
        still_usable(held, now).then(|| held.fetched.clone())
    }

    /// The cached credentials if they need no refresh at `now`.
    fn fresh(&self, now: Timestamp) -> Option<Fetched> {
        let cached = self.inner.cached.lock();
        let held = cached.as_ref()?;
        let fresh = match (&self.inner.source, held.fetched.expires) {
            (Source::Static(_), _) => true,
            (Source::File(_), _) => {
                now.duration_since(held.at) < SignedDuration::try_from(REREAD_FILES).ok()?
            }
            (_, Some(expires)) => now < refresh_at(held.at, expires),
            (_, None) => true,
        };
        fresh.then(|| held.fetched.clone())
    }

    async fn fetch(&self) -> Result<Fetched, Error> {
        let net = || {
            self.inner
                .net
                .as_ref()
                .ok_or_else(|| Error::CredentialsUnavailable {
                    source_name: self.inner.name.clone(),
                    reason: "no network settings for this source".into(),
                    transient: false,
                })
        };
        match &self.inner.source {
            Source::Static(credentials) => Ok(Fetched {
                credentials: credentials.clone(),
                expires: None,
            }),
            Source::File(file) => Ok(Fetched {
                credentials: file.read().await?,
                expires: None,
            }),
            Source::Oidc(role) => sts::assume_role_with_oidc(net()?, role, &self.inner.name).await,
            Source::EcsRole(role) => role.fetch(net()?, &self.inner.name).await,
            Source::AssumeRole { base, role } => {
                let base = base.current().await?;
                sts::assume_role(net()?, &base, role, &self.inner.name).await
            }
        }
    }
}

/// When credentials fetched at `at` and expiring at `expires` are refreshed: a third of their
/// life ahead, at most [`MAX_REFRESH_AHEAD`].
fn refresh_at(at: Timestamp, expires: Timestamp) -> Timestamp {
    let life = expires.duration_since(at);
    let ahead = (life / 3).clamp(SignedDuration::ZERO, MAX_REFRESH_AHEAD);
    expires.checked_sub(ahead).unwrap_or(expires)
}

fn still_usable(held: &Cached, now: Timestamp) -> bool {
    held.fetched
        .expires
        .is_none_or(|expires| now.checked_add(EXPIRY_SAFETY).is_ok_and(|t| t < expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn refresh_comes_a_third_of_the_life_ahead_at_most_three_minutes() {
        // An hour-long token: three minutes ahead.
        assert_eq!(
            refresh_at(at("2026-01-01T00:00:00Z"), at("2026-01-01T01:00:00Z")),
            at("2026-01-01T00:57:00Z")
        );
        // A 30 s token (the emulator's test setting): 10 s ahead.
        assert_eq!(
            refresh_at(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:30Z")),
            at("2026-01-01T00:00:20Z")
        );
    }

    #[test]
    fn held_credentials_are_used_after_a_failed_refresh_only_while_valid() {
        let held = Cached {
            fetched: Fetched {
                credentials: Credentials::new("STS.id", "s", Some("t".into())),
                expires: Some(at("2026-01-01T00:01:00Z")),
            },
            at: at("2026-01-01T00:00:00Z"),
        };
        assert!(still_usable(&held, at("2026-01-01T00:00:50Z")));
        assert!(!still_usable(&held, at("2026-01-01T00:00:56Z")));
    }

    #[tokio::test]
    async fn static_credentials_need_no_fetch() {
        let provider = Provider::from(Credentials::new("LTAIid", "secret", None));
        let c = provider.current().await.expect("static");
        assert_eq!(c.access_key_id(), "LTAIid");
        assert_eq!(provider.fetches(), 0);
        assert!(!format!("{provider:?}").contains("secret"));
    }

    #[tokio::test]
    async fn a_directory_is_read_again_after_the_reread_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("access-key-id"), "LTAIone").expect("write");
        std::fs::write(dir.path().join("access-key-secret"), "s1").expect("write");
        let provider = Provider::new(
            "dir".into(),
            Source::File(FileSource::Dir(dir.path().to_owned())),
            None,
        );
        assert_eq!(
            provider.current().await.expect("read").access_key_id(),
            "LTAIone"
        );
        std::fs::write(dir.path().join("access-key-id"), "LTAItwo").expect("write");
        // Within the interval the held pair is used…
        assert_eq!(
            provider.current().await.expect("held").access_key_id(),
            "LTAIone"
        );
        // …and once it has passed, the file is read again.
        provider.inner.cached.lock().as_mut().expect("cached").at =
            Timestamp::now() - SignedDuration::from_secs(61);
        assert_eq!(
            provider.current().await.expect("reread").access_key_id(),
            "LTAItwo"
        );
        assert_eq!(provider.fetches(), 2);

        // The file goes bad: the held pair is used, and the next calls do not read again
        // before the retry time.
        std::fs::write(dir.path().join("access-key-id"), "").expect("write");
        let age = |provider: &Provider| {
            provider.inner.cached.lock().as_mut().expect("cached").at =
                Timestamp::now() - SignedDuration::from_secs(61);
        };
        age(&provider);
        assert_eq!(
            provider.current().await.expect("held").access_key_id(),
            "LTAItwo"
        );
        assert!(provider.inner.retry_at.lock().is_some());
        std::fs::write(dir.path().join("access-key-id"), "LTAIthree").expect("write");
        assert_eq!(
            provider
                .current()
                .await
                .expect("still held")
                .access_key_id(),
            "LTAItwo"
        );
        *provider.inner.retry_at.lock() = None;
        assert_eq!(
            provider.current().await.expect("read").access_key_id(),
            "LTAIthree"
        );
    }
}
