//! Image references normalised the way Docker and containerd read them, so a pod's `nginx` and
//! a cache's `docker.io/library/nginx:latest` are recognised as the same image.
//!
//! Rules (the distribution reference grammar, as `docker pull` applies it):
//! - the first path component is a registry host only if the name has a `/` and that component
//!   contains a `.` or a `:` (a port), or is `localhost`; otherwise the registry is `docker.io`;
//! - on `docker.io`, a one-component repository lives under `library/`;
//! - `index.docker.io` and `registry-1.docker.io` are spellings of `docker.io`;
//! - the tag defaults to `latest`; with a digest (`@sha256:…`) the tag is ignored for
//!   comparison, since the digest names the content.

use std::fmt;

/// The registry of images named without a host.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag of images named without a tag or digest.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty or only whitespace.
    #[error("image reference is empty")]
    Empty,
    /// The reference contains whitespace or control characters inside it.
    #[error("image reference {reference:?} contains whitespace")]
    Whitespace {
        /// The reference as given.
        reference: String,
    },
    /// The repository path is empty, has an empty component, or has upper-case letters (which
    /// the distribution grammar forbids in repositories).
    #[error("image reference {reference:?} has an invalid repository")]
    InvalidRepository {
        /// The reference as given.
        reference: String,
    },
    /// The tag after `:` is empty or longer than 128 characters.
    #[error("image reference {reference:?} has an invalid tag")]
    InvalidTag {
        /// The reference as given.
        reference: String,
    },
    /// The digest after `@` is not `algorithm:hex`.
    #[error("image reference {reference:?} has an invalid digest")]
    InvalidDigest {
        /// The reference as given.
        reference: String,
    },
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises `reference`.
    ///
    /// # Errors
    /// A [`ReferenceError`] saying which part is malformed.
    pub fn parse(reference: &str) -> Result<Self, ReferenceError> {
        let trimmed = reference.trim();
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Whitespace {
                reference: reference.to_owned(),
            });
        }
        let (name, digest) = match trimmed.split_once('@') {
            Some((name, digest)) => {
                if !valid_digest(digest) {
                    return Err(ReferenceError::InvalidDigest {
                        reference: reference.to_owned(),
                    });
                }
                (name, Some(digest.to_owned()))
            }
            None => (trimmed, None),
        };
        // A tag is a `:` after the last `/`; a `:` before it belongs to a registry port.
        let last_component = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_component..].rfind(':') {
            Some(i) => {
                let tag = &name[last_component + i + 1..];
                if tag.is_empty() || tag.len() > 128 || !tag.chars().all(tag_char) {
                    return Err(ReferenceError::InvalidTag {
                        reference: reference.to_owned(),
                    });
                }
                (&name[..last_component + i], Some(tag.to_owned()))
            }
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_ascii_lowercase(), rest.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), path.to_owned()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_owned(),
            _ => registry,
        };
        if repository.is_empty()
            || repository.split('/').any(str::is_empty)
            || !repository.chars().all(repository_char)
        {
            return Err(ReferenceError::InvalidRepository {
                reference: reference.to_owned(),
            });
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, `latest` when none was given.
    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// The digest (`sha256:…`), if the reference pinned one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The key two references are compared by: `registry/repository@digest` when pinned by
    /// digest, else `registry/repository:tag`.
    pub fn key(&self) -> String {
        match &self.digest {
            Some(digest) => format!("{}/{}@{digest}", self.registry, self.repository),
            None => format!("{}/{}:{}", self.registry, self.repository, self.tag()),
        }
    }

    /// Whether both references name the same image (by digest when either is pinned).
    pub fn same_image(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl fmt::Display for ImageRef {
    /// The fully spelled-out reference, tag and digest included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag())?;
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The comparison key of `reference` ([`ImageRef::key`]), or the trimmed text itself when it
/// does not parse: an unparsable reference can still equal the same unparsable text.
pub fn image_key(reference: &str) -> String {
    ImageRef::parse(reference).map_or_else(|_| reference.trim().to_owned(), |r| r.key())
}

fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn repository_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-' | '/')
}

fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '_' | '-')
        })
        && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn key(r: &str) -> String {
        ImageRef::parse(r).expect(r).key()
    }

    #[test]
    fn official_images_live_under_library_on_docker_hub() {
        assert_eq!(key("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(key("nginx:latest"), "docker.io/library/nginx:latest");
        assert_eq!(key("docker.io/nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            key("docker.io/library/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            key("index.docker.io/library/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            key("registry-1.docker.io/nginx:1.25"),
            "docker.io/library/nginx:1.25"
        );
    }

    #[test]
    fn user_images_keep_their_namespace() {
        assert_eq!(key("user/app"), "docker.io/user/app:latest");
        assert_eq!(key("user/app:v2"), "docker.io/user/app:v2");
        assert_eq!(key("org/team/app"), "docker.io/org/team/app:latest");
    }

    #[test]
    fn hosts_with_dots_ports_or_localhost_are_registries() {
        assert_eq!(key("registry:5000/app"), "registry:5000/app:latest");
        assert_eq!(key("127.0.0.1:5000/ns/app:1"), "127.0.0.1:5000/ns/app:1");
        assert_eq!(key("localhost/app"), "localhost/app:latest");
        assert_eq!(key("localhost:5000/app:v1"), "localhost:5000/app:v1");
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
    fn digests_are_compared_by_digest() {
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
    fn different_tags_or_registries_differ() {
        assert_ne!(key("nginx:1.25"), key("nginx:1.26"));
        assert_ne!(key("nginx"), key("quay.io/nginx"));
        assert_ne!(key("user/app"), key("app"));
    }

    #[test]
    fn display_spells_everything_out() {
        let r = ImageRef::parse(&format!("busybox:1@{DIGEST}")).expect("parses");
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox:1@{DIGEST}")
        );
        assert_eq!(
            ImageRef::parse(" busybox ").expect("parses").to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        assert_eq!(ImageRef::parse("  "), Err(ReferenceError::Empty));
        assert!(matches!(
            ImageRef::parse("ngi nx"),
            Err(ReferenceError::Whitespace { .. })
        ));
        assert!(matches!(
            ImageRef::parse("Nginx"),
            Err(ReferenceError::InvalidRepository { .. })
        ));
        assert!(matches!(
            ImageRef::parse("a//b"),
            Err(ReferenceError::InvalidRepository { .. })
        ));
        assert!(matches!(
            ImageRef::parse("localhost:5000/"),
            Err(ReferenceError::InvalidRepository { .. })
        ));
        assert!(matches!(
            ImageRef::parse("nginx:"),
            Err(ReferenceError::InvalidTag { .. })
        ));
        assert!(matches!(
            ImageRef::parse("nginx@sha256:xyz"),
            Err(ReferenceError::InvalidDigest { .. })
        ));
        assert!(matches!(
            ImageRef::parse("nginx@"),
            Err(ReferenceError::InvalidDigest { .. })
        ));
    }

    #[test]
    fn image_key_falls_back_to_the_text() {
        assert_eq!(image_key("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(image_key(" Not/A Ref "), "Not/A Ref");
    }
}
