//! Choosing an image cache for a container group (`AutoMatchImageCache`) and ranking caches for
//! DescribeImageCaches `MatchImage.N`.
//!
//! The documented priority is (1) image match degree, (2) size of the matched images, (3)
//! creation time (reference §3.6); the direction of each is a gap, and the emulator chooses
//! "more is better" for the first two and "newest first" for the third, as the design says.
//! Match degree is counted per image (not per layer): an image matches when its normalised
//! reference equals one of the cache's.

use jiff::Timestamp;

use super::state::Cache;

/// The canonical form of an image reference: registry, repository and tag or digest spelled
/// out, so `nginx`, `nginx:latest`, `docker.io/nginx` and `docker.io/library/nginx:latest` agree.
pub fn normalize_image(reference: &str) -> String {
    let reference = reference.trim();
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    // A tag is a `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    let first = repo.split('/').next().unwrap_or_default();
    let has_registry =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full_repo = if has_registry {
        repo.to_owned()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    let full_repo = full_repo
        .strip_prefix("index.docker.io/")
        .map_or(full_repo.clone(), |rest| format!("docker.io/{rest}"));
    match (tag, digest) {
        (_, Some(digest)) => format!("{full_repo}@{digest}"),
        (Some(tag), None) => format!("{full_repo}:{tag}"),
        (None, None) => format!("{full_repo}:latest"),
    }
}

/// How well one cache covers a set of wanted images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// Wanted images the cache holds.
    pub matched: usize,
    /// Bytes of those images in the cache.
    pub matched_bytes: u64,
    /// The cache's creation time.
    pub created: Timestamp,
}

/// Scores `cache` against `wanted` (already normalised, without repeats).
pub fn score(cache: &Cache, wanted: &[String]) -> Score {
    let mut matched = 0;
    let mut matched_bytes = 0;
    for image in &cache.spec.images {
        let normal = normalize_image(image);
        if wanted.contains(&normal) {
            matched += 1;
            matched_bytes += cache.image_sizes.get(image).copied().unwrap_or(0);
        }
    }
    Score {
        matched,
        matched_bytes,
        created: cache.creation_time,
    }
}

/// Which caches may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MatchFilter {
    /// Every wanted image must be in the cache (`ImageFullMatch`, `imc-perfect-match`).
    pub full: bool,
    /// At least this many wanted images must be in the cache (`ImageMatchCountRequest`).
    /// Ignored when `full` is set, which wins (reference §3.6).
    pub at_least: Option<usize>,
}

/// The usable caches that match `wanted` images, best first.
///
/// Candidates are `Ready`, unexpired caches with at least one matched image that pass
/// `filter`; ranked by matched count, then matched bytes, then creation time (newest first),
/// then id for a total order.
pub fn rank<'a>(
    caches: impl IntoIterator<Item = &'a Cache>,
    images: &[String],
    filter: MatchFilter,
    now: Timestamp,
) -> Vec<(&'a Cache, Score)> {
    let mut wanted: Vec<String> = Vec::new();
    for image in images {
        let normal = normalize_image(image);
        if !wanted.contains(&normal) {
            wanted.push(normal);
        }
    }
    let mut out: Vec<(&Cache, Score)> = caches
        .into_iter()
        .filter(|c| c.usable(now))
        .map(|c| (c, score(c, &wanted)))
        .filter(|(_, s)| s.matched > 0)
        .filter(|(_, s)| {
            if filter.full {
                s.matched == wanted.len()
            } else {
                filter.at_least.is_none_or(|n| s.matched >= n)
            }
        })
        .collect();
    out.sort_by(|(ca, a), (cb, b)| {
        b.matched
            .cmp(&a.matched)
            .then(b.matched_bytes.cmp(&a.matched_bytes))
            .then(b.created.cmp(&a.created))
            .then(ca.id.cmp(&cb.id))
    });
    out
}

#[cfg(test)]
mod tests;
