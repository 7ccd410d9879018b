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
use crate::reference::image_key;

/// The canonical form of an image reference, by which caches are matched: the comparison key
/// of [`crate::reference`], the same normalisation the node's matcher and the agent's puller
/// use (so `nginx`, `docker.io/nginx` and `registry-1.docker.io/library/nginx:latest` agree).
pub fn normalize_image(reference: &str) -> String {
    image_key(reference)
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
