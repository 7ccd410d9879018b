//! A match report as text, for `eci-vk explain-match`: each candidate with its matched images,
//! matched bytes and age, its verdict, and why the winner won or why none qualified.

use std::fmt::Write as _;

use jiff::SignedDuration;

use super::matcher::{Candidate, MatchReport, Miss, Verdict};

fn age(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn verdict(v: Verdict) -> String {
    match v {
        Verdict::Qualified => "qualified".into(),
        Verdict::NotReady => "not Ready".into(),
        Verdict::Expired(at) => format!("expired at {at}"),
        Verdict::Stale => "stale: a tag moved and the pod pulls Always".into(),
        Verdict::Private => {
            "private: built with a login for a registry the pod has no pull secret for".into()
        }
        Verdict::TooLarge {
            size_gib,
            storage_gib,
        } => format!(
            "too large: {size_gib} GiB does not fit the instance's {storage_gib} GiB of storage"
        ),
        Verdict::NotPerfect { missing } => format!("imc-perfect-match: {missing} image(s) missing"),
        Verdict::BelowMatchCount { required } => {
            format!("imc-match-count-request: fewer than {required}")
        }
    }
}

/// Why `winner` ranks above `runner_up`, by the first rule that separates them.
pub fn why_better(winner: &Candidate<'_>, runner_up: &Candidate<'_>) -> String {
    if winner.matched != runner_up.matched {
        format!(
            "more matched images ({} vs {})",
            winner.matched, runner_up.matched
        )
    } else if winner.matched_bytes != runner_up.matched_bytes {
        format!(
            "same matched images, more matched bytes ({} vs {})",
            winner.matched_bytes, runner_up.matched_bytes
        )
    } else if winner.cache.created != runner_up.cache.created {
        format!(
            "same matched images and bytes, newer ({} vs {})",
            winner.cache.created, runner_up.cache.created
        )
    } else {
        "a full tie, broken by cache id".into()
    }
}

/// The report as lines of text.
pub fn explain(report: &MatchReport<'_>) -> String {
    let mut out = String::new();
    let images: Vec<&str> = report.wanted.iter().map(|w| w.reference.as_str()).collect();
    let _ = writeln!(out, "pod images: {}", images.join(", "));
    let _ = writeln!(
        out,
        "filters: imc-perfect-match={} imc-match-count-request={}",
        report.options.perfect_match,
        report
            .options
            .match_count_request
            .map_or_else(|| "-".to_owned(), |n| n.to_string())
    );
    let ranked = report.ranked();
    let winner = report.winner().map(|w| w.cache.id.as_str());
    for c in &ranked {
        let mark = if Some(c.cache.id.as_str()) == winner {
            "*"
        } else {
            " "
        };
        let _ = writeln!(
            out,
            "{mark} {} ({}) phase={} matched={}/{} [{}] bytes={} age={} -> {}",
            c.cache.id,
            c.cache.name,
            c.cache.phase,
            c.matched,
            report.wanted.len(),
            report.matched_images(c).join(", "),
            c.matched_bytes,
            age(c.age),
            verdict(c.verdict)
        );
    }
    match report.outcome() {
        Ok(w) => {
            let runner_up = ranked
                .iter()
                .find(|c| c.cache.id != w.cache.id && c.verdict == Verdict::Qualified);
            let why = runner_up.map_or_else(
                || "the only qualified cache".to_owned(),
                |r| format!("{} over {}", why_better(w, r), r.cache.id),
            );
            let _ = writeln!(out, "chosen: {} ({why})", w.cache.id);
        }
        Err(miss) => {
            let why = match miss {
                Miss::NoImages => "the pod names no images",
                Miss::NoCacheHoldsAnImage => "no cache holds any of the pod's images",
                Miss::NoneUsable => "every cache holding the pod's images is not Ready or expired",
                Miss::FilteredOut => "no usable cache passes the pod's filters",
                Miss::NotEntitled => {
                    "the caches holding the pod's images were built with logins for registries the pod has no pull secret for"
                }
            };
            let _ = writeln!(out, "no cache chosen: {why}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::imagecache::{CacheEntry, CacheIndex, CachedImage, MatchOptions, Origin};

    fn entry(id: &str, created: &str, images: &[(&str, u64)]) -> CacheEntry {
        CacheEntry {
            id: id.into(),
            name: format!("obj-{id}"),
            phase: "Ready".into(),
            expires: None,
            created: created.parse().expect("time"),
            images: images
                .iter()
                .map(|(r, b)| CachedImage {
                    reference: (*r).into(),
                    bytes: *b,
                    digests: Vec::new(),
                })
                .collect(),
            size_gib: 20,
            origin: Origin::Object,
            last_matched: None,
            stale: false,
            private_registries: Vec::new(),
        }
    }

    #[test]
    fn says_why_the_winner_won() {
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().expect("time");
        let index = CacheIndex::from_entries([
            entry("imc-a", "2026-01-09T00:00:00Z", &[("nginx", 10)]),
            entry("imc-b", "2026-01-01T00:00:00Z", &[("nginx", 20)]),
        ]);
        let text = explain(&index.select(["nginx"], MatchOptions::default(), now));
        assert!(
            text.contains("* imc-b (obj-imc-b) phase=Ready matched=1/1 [nginx] bytes=20 age=9d"),
            "{text}"
        );
        assert!(
            text.contains(
                "chosen: imc-b (same matched images, more matched bytes (20 vs 10) over imc-a)"
            ),
            "{text}"
        );
        let text = explain(&index.select(["redis"], MatchOptions::default(), now));
        assert!(
            text.contains("no cache chosen: no cache holds any of the pod's images"),
            "{text}"
        );
    }
}
