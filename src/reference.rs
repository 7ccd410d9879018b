//! Image references: the one place that parses, normalises and compares them, and that names
//! the registry host of a login. The node's matcher, the pull-secret resolver, the emulator's
//! `AutoMatchImageCache` and the agent's puller all call it, so what a cache is matched by and
//! what the puller fetches can never disagree.
//!
//! Parsing is the OCI distribution grammar as the agent pulls with it
//! ([`oci_client::Reference`], a re-export of `oci_spec::distribution::Reference`): the first
//! path component is a registry host only if the name has a `/` and that component contains a
//! `.` or a `:` (a port), or is `localhost`; otherwise the registry is Docker Hub. On top of
//! that grammar this module folds what the grammar leaves open:
//! - every Docker Hub alias of [`DOCKER_HUB_ALIASES`] is spelt [`DEFAULT_REGISTRY`];
//! - on Docker Hub, a one-component repository lives under `library/`;
//! - the registry host is lower-cased (DNS names are case-insensitive; repositories are not,
//!   and upper case in a repository is refused);
//! - the tag defaults to [`DEFAULT_TAG`]; with a digest (`@sha256:…`) the tag is ignored for
//!   comparison, since the digest names the content.
//!
//! A leaf: it imports nothing from the crate.

use std::{fmt, str::FromStr};

use oci_client::{ParseError, Reference};

/// The registry of images named without a host.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag of images named without a tag or digest.
pub const DEFAULT_TAG: &str = "latest";
/// Every spelling of Docker Hub's host, folded into [`DEFAULT_REGISTRY`]: `docker.io` in
/// references, `index.docker.io` in docker's own config (`https://index.docker.io/v1/`),
/// `registry-1.docker.io` the API host, `registry.hub.docker.com` the old web/API host.
pub const DOCKER_HUB_ALIASES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Why a string is not an image reference.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty or only whitespace.
    #[error("image reference is empty")]
    Empty,
    /// The reference does not follow the OCI distribution grammar (whitespace, upper case in
    /// the repository, an empty component or tag, a malformed digest, …).
    #[error("image reference {reference:?} is not valid")]
    Invalid {
        /// The reference as given.
        reference: String,
        /// What the grammar found wrong.
        #[source]
        source: ParseError,
    },
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(Reference);

impl ImageRef {
    /// Parses and normalises `reference` (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// A [`ReferenceError`] when the text is empty or not a reference.
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        let trimmed = reference.trim();
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let parsed: Reference = trimmed.parse().map_err(|source| ReferenceError::Invalid {
            reference: reference.to_owned(),
            source,
        })?;
        let registry = fold_registry(parsed.registry());
        let repository = if registry == DEFAULT_REGISTRY && !parsed.repository().contains('/') {
            format!("library/{}", parsed.repository())
        } else {
            parsed.repository().to_owned()
        };
        let tag = parsed.tag().map(str::to_owned);
        let digest = parsed.digest().map(str::to_owned);
        let normal = match (tag, digest) {
            (Some(tag), Some(digest)) => {
                Reference::with_tag_and_digest(registry, repository, tag, digest)
            }
            (None, Some(digest)) => Reference::with_digest(registry, repository, digest),
            (tag, None) => Reference::with_tag(
                registry,
                repository,
                tag.unwrap_or_else(|| DEFAULT_TAG.to_owned()),
            ),
        };
        // oci-client lets upper case through in a Docker Hub repository without a registry
        // (`Foo/bar`), which the grammar forbids and which its own parser then refuses in the
        // normal form (`docker.io/Foo/bar:latest`, found by the `image_reference` fuzz target):
        // a reference is valid only if its normal form is.
        if let Err(source) = normal.whole().parse::<Reference>() {
            return Err(ReferenceError::Invalid {
                reference: reference.to_owned(),
                source,
            });
        }
        Ok(Self(normal))
    }

    /// The registry host, lower case, with its port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The repository path within the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    /// The tag, `latest` when none was given.
    pub fn tag(&self) -> &str {
        self.0.tag().unwrap_or(DEFAULT_TAG)
    }

    /// The digest (`sha256:…`), if the reference pinned one.
    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// The normalised reference as `oci-client` pulls it.
    pub fn reference(&self) -> &Reference {
        &self.0
    }

    /// The key two references are compared by: `registry/repository@digest` when pinned by
    /// digest, else `registry/repository:tag`.
    pub fn key(&self) -> String {
        match self.digest() {
            Some(digest) => format!("{}/{}@{digest}", self.registry(), self.repository()),
            None => format!("{}/{}:{}", self.registry(), self.repository(), self.tag()),
        }
    }

    /// The key of this image pinned to `digest`: how a pod naming it by digest is compared
    /// with a cache that holds it by tag.
    pub fn key_at(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.registry(), self.repository())
    }

    /// Whether both references name the same image (by digest when either is pinned).
    pub fn same_image(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(reference: &str) -> Result<Self, Self::Err> {
        Self::parse(reference)
    }
}

impl fmt::Display for ImageRef {
    /// The spelled-out reference: registry, repository, then tag and/or digest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The comparison key of `reference` ([`ImageRef::key`]), or the trimmed text itself when it
/// does not parse: an unparsable reference can still equal the same unparsable text.
pub fn image_key(reference: &str) -> String {
    ImageRef::parse(reference).map_or_else(|_| reference.trim().to_owned(), |r| r.key())
}

/// The registry host a docker-config key or login server names, for finding the login of an
/// image's registry: scheme and path dropped, lower-cased, Docker Hub's aliases folded
/// (`https://index.docker.io/v1/` and `registry.hub.docker.com` → `docker.io`,
/// `host:5000/v2/` → `host:5000`).
pub fn registry_host(server: &str) -> String {
    let server = server.trim();
    let server = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    fold_registry(server.split('/').next().unwrap_or_default())
}

/// `host` lower-cased, with a Docker Hub alias spelt [`DEFAULT_REGISTRY`].
fn fold_registry(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        DEFAULT_REGISTRY.to_owned()
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Normalising is idempotent for references as registries write them (a host with or
        /// without a port, nested repositories, a tag and/or a digest)...
        #[test]
        fn normalising_a_reference_is_idempotent(
            reference in "([a-z0-9]{1,8}(\\.[a-z]{2,4})?(:[0-9]{2,5})?/)?[a-z0-9]{1,8}(/[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?(@sha256:[0-9a-f]{64})?"
        ) {
            let parsed = ImageRef::parse(&reference).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let key = parsed.key();
            let again = ImageRef::parse(&key).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(again.key(), key);
            proptest::prop_assert!(parsed.same_image(&again));
        }

        /// ...and any text at all is either refused or normalised idempotently, never a panic.
        #[test]
        fn any_text_is_refused_or_normalised_idempotently(text in "\\PC{0,80}") {
            fuzz::parse(text.as_bytes());
        }
    }

    #[test]
    fn upper_case_in_a_docker_hub_repository_is_refused() {
        // What the fuzz target found (fuzz/regressions/image_reference/).
        assert!(ImageRef::parse("UCprpe/ase").is_err());
        assert!(ImageRef::parse("library/Nginx").is_err());
        assert!(ImageRef::parse("Registry.Example.com/app").is_ok());
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn key(r: &str) -> String {
        ImageRef::parse(r).expect(r).key()
    }

    #[test]
    fn every_docker_hub_alias_is_docker_io() {
        for host in DOCKER_HUB_ALIASES {
            assert_eq!(
                key(&format!("{host}/library/nginx")),
                "docker.io/library/nginx:latest"
            );
            assert_eq!(
                key(&format!("{host}/nginx:1.25")),
                "docker.io/library/nginx:1.25"
            );
        }
        // Used to match on the node but not in the emulator.
        assert_eq!(key("registry-1.docker.io/library/nginx"), key("nginx"),);
        assert_eq!(
            key("REGISTRY.HUB.DOCKER.COM/user/app"),
            "docker.io/user/app:latest"
        );
    }

    #[test]
    fn official_images_live_under_library_on_docker_hub() {
        assert_eq!(key("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(key("docker.io/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(key("library/nginx"), "docker.io/library/nginx:latest");
        // Only Docker Hub has `library/`.
        assert_eq!(key("quay.io/nginx"), "quay.io/nginx:latest");
    }

    #[test]
    fn user_images_keep_their_namespace() {
        assert_eq!(key("user/app"), "docker.io/user/app:latest");
        assert_eq!(key("org/team/app"), "docker.io/org/team/app:latest");
    }

    #[test]
    fn the_tag_defaults_to_latest() {
        assert_eq!(key("nginx:latest"), key("nginx"));
        assert_eq!(ImageRef::parse("user/app").expect("parses").tag(), "latest");
        assert_ne!(key("nginx:1.25"), key("nginx:1.26"));
    }

    #[test]
    fn hosts_with_dots_ports_or_localhost_are_registries() {
        assert_eq!(key("registry:5000/app"), "registry:5000/app:latest");
        assert_eq!(key("127.0.0.1:5000/ns/app:1"), "127.0.0.1:5000/ns/app:1");
        assert_eq!(
            key("registry.cn-hangzhou.aliyuncs.com/acs/pause:3.0"),
            "registry.cn-hangzhou.aliyuncs.com/acs/pause:3.0"
        );
        // Without a dot, port or `localhost`, the first component is a Docker Hub namespace.
        assert_eq!(key("registry/app"), "docker.io/registry/app:latest");
        let r = ImageRef::parse("Registry.Example.COM:443/app").expect("parses");
        assert_eq!(r.registry(), "registry.example.com:443");
    }

    #[test]
    fn a_port_is_not_a_tag() {
        let r = ImageRef::parse("localhost:5000/app").expect("parses");
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.tag(), "latest");
    }

    #[test]
    fn localhost_is_a_registry_without_library() {
        assert_eq!(key("localhost/app"), "localhost/app:latest");
        assert_eq!(key("localhost:5000/app:v1"), "localhost:5000/app:v1");
    }

    #[test]
    fn digests_beat_tags() {
        let by_digest = ImageRef::parse(&format!("nginx@{DIGEST}")).expect("parses");
        let tagged_and_pinned = ImageRef::parse(&format!("nginx:1.25@{DIGEST}")).expect("parses");
        let full = ImageRef::parse(&format!("docker.io/library/nginx@{DIGEST}")).expect("parses");
        assert!(by_digest.same_image(&tagged_and_pinned));
        assert!(by_digest.same_image(&full));
        assert_eq!(by_digest.key(), format!("docker.io/library/nginx@{DIGEST}"));
        assert_eq!(tagged_and_pinned.tag(), "1.25");
        assert_eq!(tagged_and_pinned.digest(), Some(DIGEST));
        // A tag alone does not equal a pinned digest: the tag may have moved.
        let tag_only = ImageRef::parse("nginx:1.25").expect("parses");
        assert!(!tag_only.same_image(&tagged_and_pinned));
        let other = ImageRef::parse(&format!("localhost:5000/nginx@{DIGEST}")).expect("parses");
        assert!(!other.same_image(&by_digest));
    }

    #[test]
    fn display_spells_everything_out() {
        let r = ImageRef::parse(&format!("busybox:1@{DIGEST}")).expect("parses");
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox:1@{DIGEST}")
        );
        assert_eq!(
            " busybox ".parse::<ImageRef>().expect("parses").to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        assert_eq!(ImageRef::parse("  "), Err(ReferenceError::Empty));
        for bad in [
            "Nginx",
            "library/BusyBox",
            "ngi nx",
            "a//b",
            "localhost:5000/",
            "nginx:",
            "x:y:z",
            "nginx@sha256:xyz",
            "nginx@",
        ] {
            assert!(
                matches!(ImageRef::parse(bad), Err(ReferenceError::Invalid { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn image_key_falls_back_to_the_text() {
        assert_eq!(image_key("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(image_key(" Not/A Ref "), "Not/A Ref");
    }

    #[test]
    fn login_servers_name_registry_hosts() {
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("registry-1.docker.io"), "docker.io");
        assert_eq!(registry_host("registry.hub.docker.com"), "docker.io");
        assert_eq!(registry_host("docker.io"), "docker.io");
        assert_eq!(registry_host("host:5000/v2/"), "host:5000");
        assert_eq!(
            registry_host("http://Reg.Example:5000/x"),
            "reg.example:5000"
        );
        assert_eq!(registry_host(" 127.0.0.1:5443 "), "127.0.0.1:5443");
        // A login and an image on the same registry meet on the same host.
        let image = ImageRef::parse("registry.hub.docker.com/user/app").expect("parses");
        assert_eq!(
            registry_host("https://index.docker.io/v1/"),
            image.registry()
        );
    }
}

/// Entry point of the `image_reference` fuzz target (`fuzz/`, issue #20). Not an API.
#[doc(hidden)]
pub mod fuzz {
    use super::{ImageRef, image_key, registry_host};

    /// Any text as a reference: never a panic, and a parsed reference normalises idempotently
    /// (the key of its key is itself, and names the same image).
    pub fn parse(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let _ = registry_host(text);
        let _ = image_key(text);
        if let Ok(parsed) = ImageRef::parse(text) {
            let key = parsed.key();
            match ImageRef::parse(&key) {
                Ok(again) => {
                    assert_eq!(again.key(), key, "normalising {text:?} is idempotent");
                    assert!(
                        parsed.same_image(&again),
                        "{text:?} and its key are one image"
                    );
                }
                Err(error) => panic!("the key {key:?} of {text:?} does not parse: {error}"),
            }
        }
    }
}
