//! What a pod asks of image caches, read from its own annotations (DESIGN.md "A snapshot for a
//! pod"): an explicit cache id, automatic matching with its filters, or nothing.
//!
//! - explicit: `k8s.aliyun.com/eci-imc-id` (current) or `k8s.aliyun.com/eci-image-snapshot-id`
//!   (legacy); both names mean the same, and an explicit id wins over automatic matching;
//! - automatic: `k8s.aliyun.com/eci-auto-imc: "true"` (current) or
//!   `k8s.aliyun.com/eci-image-cache: "true"` (legacy), filtered by
//!   `k8s.aliyun.com/imc-perfect-match` and `k8s.aliyun.com/imc-match-count-request`.
//!
//! Automatic matching is on unless the pod says `"false"`, as current ECI has it ("Use an
//! ImageCache to accelerate pod creation": `eci-auto-imc` "The default value is true",
//! https://help.aliyun.com/en/eci/user-guide/use-imagecache-to-accelerate-the-creation-of-pods);
//! the node's `--auto-match-image-cache=false` makes it opt-in again, as in the user guide.
//! A malformed value is an [`AnnotationError`] naming the annotation; the caller fails the pod
//! with it, never the node.

use std::collections::BTreeMap;

use super::matcher::MatchOptions;

/// Explicit cache id, current name.
pub const ANNOTATION_IMC_ID: &str = crate::eci::annotation::IMC_ID;
/// Explicit cache id, legacy name (the user guide's).
pub const ANNOTATION_IMAGE_SNAPSHOT_ID: &str = crate::eci::annotation::IMAGE_SNAPSHOT_ID;
/// Automatic matching, current name.
pub const ANNOTATION_AUTO_IMC: &str = crate::eci::annotation::AUTO_IMC;
/// Automatic matching, legacy name (the user guide's).
pub const ANNOTATION_IMAGE_CACHE: &str = crate::eci::annotation::IMAGE_CACHE;
/// Filter: the cache must hold every image of the pod.
pub const ANNOTATION_PERFECT_MATCH: &str = crate::eci::annotation::IMC_PERFECT_MATCH;
/// Filter: the cache must hold at least this many of the pod's images.
pub const ANNOTATION_MATCH_COUNT_REQUEST: &str = crate::eci::annotation::IMC_MATCH_COUNT_REQUEST;

/// What the pod asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotRequest {
    /// No cache: the pod pulls its images.
    None,
    /// This cache, by cloud id.
    Explicit {
        /// The `imc-…` id as given.
        id: String,
        /// The annotation it came from.
        annotation: &'static str,
    },
    /// The best matching cache, under these filters.
    Automatic {
        /// The pod's filters.
        options: MatchOptions,
        /// Whether the pod's own annotation asked for it (else the node's default did).
        asked: bool,
    },
}

/// A pod annotation that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// A boolean annotation is not one of Go's `strconv.ParseBool` spellings.
    #[error("annotation {annotation} must be \"true\" or \"false\", not {value:?}")]
    NotABool {
        /// The annotation.
        annotation: &'static str,
        /// Its value.
        value: String,
    },
    /// `imc-match-count-request` is not a whole number of at least 1.
    #[error("annotation {annotation} must be a whole number of at least 1, not {value:?}")]
    NotACount {
        /// The annotation.
        annotation: &'static str,
        /// Its value.
        value: String,
    },
    /// An explicit cache id is empty.
    #[error("annotation {annotation} names no image cache")]
    EmptyId {
        /// The annotation.
        annotation: &'static str,
    },
    /// Both explicit-id annotations are set, to different caches.
    #[error(
        "annotations {ANNOTATION_IMC_ID} ({current:?}) and {ANNOTATION_IMAGE_SNAPSHOT_ID} ({legacy:?}) name different image caches"
    )]
    ConflictingIds {
        /// Value of the current annotation.
        current: String,
        /// Value of the legacy annotation.
        legacy: String,
    },
}

impl AnnotationError {
    /// The annotation at fault (the current one for conflicting ids).
    pub fn annotation(&self) -> &'static str {
        match self {
            Self::NotABool { annotation, .. }
            | Self::NotACount { annotation, .. }
            | Self::EmptyId { annotation } => annotation,
            Self::ConflictingIds { .. } => ANNOTATION_IMC_ID,
        }
    }
}

/// Decides what a pod asks for from its annotations (`metadata.annotations` of the pod itself),
/// with automatic matching on by default when `auto_default` is set.
///
/// Filters are read, and checked, only when automatic matching is on: without it they have no
/// effect. Once an explicit id is given, the automatic annotations are not read at all.
///
/// # Errors
/// An [`AnnotationError`] naming the first malformed annotation that matters.
pub fn resolve_snapshot_request(
    annotations: &BTreeMap<String, String>,
    auto_default: bool,
) -> Result<SnapshotRequest, AnnotationError> {
    let get = |name: &str| annotations.get(name).map(|v| v.trim());
    let explicit = |annotation: &'static str| {
        get(annotation)
            .map(|v| {
                if v.is_empty() {
                    Err(AnnotationError::EmptyId { annotation })
                } else {
                    Ok(v.to_owned())
                }
            })
            .transpose()
    };
    match (
        explicit(ANNOTATION_IMC_ID)?,
        explicit(ANNOTATION_IMAGE_SNAPSHOT_ID)?,
    ) {
        (Some(current), Some(legacy)) if current != legacy => {
            return Err(AnnotationError::ConflictingIds { current, legacy });
        }
        (Some(id), _) => {
            return Ok(SnapshotRequest::Explicit {
                id,
                annotation: ANNOTATION_IMC_ID,
            });
        }
        (None, Some(id)) => {
            return Ok(SnapshotRequest::Explicit {
                id,
                annotation: ANNOTATION_IMAGE_SNAPSHOT_ID,
            });
        }
        (None, None) => {}
    }
    let flag = |annotation: &'static str| {
        get(annotation)
            .map(|v| {
                parse_bool(v).ok_or_else(|| AnnotationError::NotABool {
                    annotation,
                    value: v.to_owned(),
                })
            })
            .transpose()
    };
    let current = flag(ANNOTATION_AUTO_IMC)?;
    let legacy = flag(ANNOTATION_IMAGE_CACHE)?;
    // A "true" under either name asks; else a "false" under either declines; else the default.
    let asked = current == Some(true) || legacy == Some(true);
    let declined = current == Some(false) || legacy == Some(false);
    if !asked && (declined || !auto_default) {
        return Ok(SnapshotRequest::None);
    }
    let perfect_match = flag(ANNOTATION_PERFECT_MATCH)?.unwrap_or(false);
    let match_count_request = get(ANNOTATION_MATCH_COUNT_REQUEST)
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| AnnotationError::NotACount {
                    annotation: ANNOTATION_MATCH_COUNT_REQUEST,
                    value: v.to_owned(),
                })
        })
        .transpose()?;
    Ok(SnapshotRequest::Automatic {
        options: MatchOptions {
            perfect_match,
            match_count_request,
            storage_gib: None,
            fresh_only: false,
        },
        asked,
    })
}

/// Go's `strconv.ParseBool`, which the ECI virtual kubelet applies to its annotations.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pairs: &[(&str, &str)]) -> Result<SnapshotRequest, AnnotationError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        resolve_snapshot_request(&map, false)
    }

    fn auto(perfect_match: bool, match_count_request: Option<u32>) -> SnapshotRequest {
        SnapshotRequest::Automatic {
            options: MatchOptions {
                perfect_match,
                match_count_request,
                storage_gib: None,
                fresh_only: false,
            },
            asked: true,
        }
    }

    #[test]
    fn matching_is_on_by_default_unless_the_pod_says_false() {
        let by_default = |pairs: &[(&str, &str)]| {
            let map = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            resolve_snapshot_request(&map, true)
        };
        assert_eq!(
            by_default(&[]),
            Ok(SnapshotRequest::Automatic {
                options: MatchOptions::default(),
                asked: false
            })
        );
        assert_eq!(
            by_default(&[(ANNOTATION_PERFECT_MATCH, "true")]),
            Ok(SnapshotRequest::Automatic {
                options: MatchOptions {
                    perfect_match: true,
                    ..MatchOptions::default()
                },
                asked: false
            })
        );
        for off in [ANNOTATION_AUTO_IMC, ANNOTATION_IMAGE_CACHE] {
            assert_eq!(
                by_default(&[(off, "false")]),
                Ok(SnapshotRequest::None),
                "{off}"
            );
        }
        assert_eq!(
            by_default(&[(ANNOTATION_AUTO_IMC, "true")]),
            Ok(auto(false, None))
        );
    }

    #[test]
    fn nothing_asked_means_no_cache() {
        assert_eq!(resolve(&[]), Ok(SnapshotRequest::None));
        assert_eq!(
            resolve(&[("app", "x"), (ANNOTATION_PERFECT_MATCH, "true")]),
            Ok(SnapshotRequest::None)
        );
        assert_eq!(
            resolve(&[(ANNOTATION_AUTO_IMC, "false")]),
            Ok(SnapshotRequest::None)
        );
    }

    #[test]
    fn either_explicit_name_gives_the_id() {
        assert_eq!(
            resolve(&[(ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-2ze5tm5gehgtiigaz5jh")]),
            Ok(SnapshotRequest::Explicit {
                id: "imc-2ze5tm5gehgtiigaz5jh".into(),
                annotation: ANNOTATION_IMAGE_SNAPSHOT_ID
            })
        );
        assert_eq!(
            resolve(&[(ANNOTATION_IMC_ID, " imc-a ")]),
            Ok(SnapshotRequest::Explicit {
                id: "imc-a".into(),
                annotation: ANNOTATION_IMC_ID
            })
        );
        assert_eq!(
            resolve(&[
                (ANNOTATION_IMC_ID, "imc-a"),
                (ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-a")
            ]),
            Ok(SnapshotRequest::Explicit {
                id: "imc-a".into(),
                annotation: ANNOTATION_IMC_ID
            })
        );
    }

    #[test]
    fn explicit_wins_over_automatic() {
        assert_eq!(
            resolve(&[
                (ANNOTATION_IMAGE_CACHE, "true"),
                (ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-x"),
                // Not read once an id is given, so not an error.
                (ANNOTATION_MATCH_COUNT_REQUEST, "many"),
            ]),
            Ok(SnapshotRequest::Explicit {
                id: "imc-x".into(),
                annotation: ANNOTATION_IMAGE_SNAPSHOT_ID
            })
        );
    }

    #[test]
    fn either_automatic_name_turns_matching_on() {
        assert_eq!(
            resolve(&[(ANNOTATION_IMAGE_CACHE, "true")]),
            Ok(auto(false, None))
        );
        assert_eq!(
            resolve(&[(ANNOTATION_AUTO_IMC, "True")]),
            Ok(auto(false, None))
        );
        assert_eq!(
            resolve(&[
                (ANNOTATION_AUTO_IMC, "false"),
                (ANNOTATION_IMAGE_CACHE, "1")
            ]),
            Ok(auto(false, None))
        );
    }

    #[test]
    fn filters_are_read_with_automatic_matching() {
        assert_eq!(
            resolve(&[
                (ANNOTATION_AUTO_IMC, "true"),
                (ANNOTATION_PERFECT_MATCH, "true"),
                (ANNOTATION_MATCH_COUNT_REQUEST, "2"),
            ]),
            Ok(auto(true, Some(2)))
        );
        assert_eq!(
            resolve(&[
                (ANNOTATION_IMAGE_CACHE, "true"),
                (ANNOTATION_MATCH_COUNT_REQUEST, " 3 "),
            ]),
            Ok(auto(false, Some(3)))
        );
    }

    #[test]
    fn malformed_values_name_their_annotation() {
        let err = resolve(&[
            (ANNOTATION_AUTO_IMC, "true"),
            (ANNOTATION_MATCH_COUNT_REQUEST, "two"),
        ])
        .expect_err("not a count");
        assert_eq!(
            err,
            AnnotationError::NotACount {
                annotation: ANNOTATION_MATCH_COUNT_REQUEST,
                value: "two".into()
            }
        );
        assert!(err.to_string().contains(ANNOTATION_MATCH_COUNT_REQUEST));
        for bad in ["0", "-1", "1.5", ""] {
            let err = resolve(&[
                (ANNOTATION_AUTO_IMC, "true"),
                (ANNOTATION_MATCH_COUNT_REQUEST, bad),
            ])
            .expect_err(bad);
            assert_eq!(err.annotation(), ANNOTATION_MATCH_COUNT_REQUEST);
        }
        let err = resolve(&[(ANNOTATION_IMAGE_CACHE, "yes")]).expect_err("not a bool");
        assert_eq!(err.annotation(), ANNOTATION_IMAGE_CACHE);
        let err = resolve(&[
            (ANNOTATION_AUTO_IMC, "true"),
            (ANNOTATION_PERFECT_MATCH, "sure"),
        ])
        .expect_err("not a bool");
        assert_eq!(err.annotation(), ANNOTATION_PERFECT_MATCH);
        let err = resolve(&[(ANNOTATION_IMC_ID, "  ")]).expect_err("empty");
        assert_eq!(
            err,
            AnnotationError::EmptyId {
                annotation: ANNOTATION_IMC_ID
            }
        );
        let err = resolve(&[
            (ANNOTATION_IMC_ID, "imc-a"),
            (ANNOTATION_IMAGE_SNAPSHOT_ID, "imc-b"),
        ])
        .expect_err("conflict");
        assert!(matches!(err, AnnotationError::ConflictingIds { .. }));
        assert!(err.to_string().contains("imc-a") && err.to_string().contains("imc-b"));
    }
}
