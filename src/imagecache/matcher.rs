//! Choosing the image cache a pod starts from (automatic matching, DESIGN.md "A snapshot for a
//! pod"): a pure function of the pod's images, the known caches, the pod's filters and the time.
//!
//! Rules:
//! - candidates are caches holding at least one of the pod's images (init + regular, compared
//!   by normalised reference, see [`super::reference`]); a candidate qualifies when it is
//!   `Ready`, not expired, fits the instance's storage (a cache larger than the 30 GiB an
//!   instance has, plus what the pod adds, cannot be its disk), and passes the pod's filter;
//! - filters: `imc-perfect-match` (every pod image held) wins over `imc-match-count-request`
//!   (at least N pod images held);
//! - ranking: more matched images, then more bytes of the matched images, then the newest
//!   cache; the cache id breaks a remaining tie so the choice never depends on map order.
//!
//! Speed: [`CacheIndex`] keeps each cache's normalised references and an inverted index from
//! image to caches, so a query touches only caches that share an image with the pod, and the
//! report borrows from the index instead of copying it.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::reference::{ImageRef, image_key};

/// The phase of a cache that pods can use.
pub const READY_PHASE: &str = "Ready";

/// One image of a cache and its size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CachedImage {
    /// The reference as the cache lists it.
    pub reference: String,
    /// Size of the image in bytes; 0 when unknown.
    pub bytes: u64,
    /// The digests it is known by (the tag's, and its platform manifest's): a pod naming the
    /// image by one of them matches it.
    pub digests: Vec<String>,
}

/// A cache as the matcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The cloud id, `imc-…` (the value a pod is given as `ImageSnapshotId`).
    pub id: String,
    /// The `ImageCache` object's name.
    pub name: String,
    /// The cloud phase, e.g. `Ready`, `Creating`.
    pub phase: String,
    /// When the cache expires; `None` never.
    pub expires: Option<Timestamp>,
    /// When the cache was created.
    pub created: Timestamp,
    /// The images it holds.
    pub images: Vec<CachedImage>,
    /// The cache's disk (`ImageCacheSize`) in GiB; 0 when unknown.
    pub size_gib: u64,
    /// Where the node learnt of it.
    pub origin: Origin,
    /// When a container group last started from it (the cloud's `LastMatchedTime`).
    pub last_matched: Option<Timestamp>,
    /// A tag of its images points to other content than it holds.
    pub stale: bool,
    /// Registries its images were pulled from with a login: a pod must have a login of its
    /// own for each to start from it (when the node guards private caches).
    pub private_registries: Vec<String>,
}

/// Where the node learnt of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// An `ImageCache` object of this cluster names it.
    #[default]
    Object,
    /// Only the cloud knows it: made in the console, through the API, by another cluster, or
    /// by ECI itself on an automatic-match miss.
    Cloud,
}

impl CacheEntry {
    /// Whether the cache's phase is `Ready`.
    pub fn is_ready(&self) -> bool {
        self.phase == READY_PHASE
    }

    /// Whether the cache has expired at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// The pod's filters on automatic matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MatchOptions {
    /// `k8s.aliyun.com/imc-perfect-match`: the cache must hold every image of the pod.
    pub perfect_match: bool,
    /// `k8s.aliyun.com/imc-match-count-request`: the cache must hold at least this many of the
    /// pod's images. Ignored when `perfect_match` is set.
    pub match_count_request: Option<u32>,
    /// The instance's temporary storage in GiB: a larger cache cannot be its disk. `None`
    /// checks nothing.
    pub storage_gib: Option<u64>,
    /// A container pulls `Always`: a stale cache would give it old content.
    pub fresh_only: bool,
}

/// Whether a candidate may be chosen, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Usable and passes the pod's filter.
    Qualified,
    /// Its phase is not `Ready`.
    NotReady,
    /// It expired at this time.
    Expired(Timestamp),
    /// A tag of its images moved and the pod pulls `Always`.
    Stale,
    /// It was built with logins for registries the pod has no pull secret for.
    Private,
    /// Its disk is larger than the instance's temporary storage.
    TooLarge {
        /// The cache's size, GiB.
        size_gib: u64,
        /// The instance's storage, GiB.
        storage_gib: u64,
    },
    /// `imc-perfect-match` is set and this many of the pod's images are missing.
    NotPerfect {
        /// Pod images the cache does not hold.
        missing: usize,
    },
    /// `imc-match-count-request` asks for more images than the cache holds.
    BelowMatchCount {
        /// The requested count.
        required: u32,
    },
}

/// One cache that holds at least one of the pod's images.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The cache.
    pub cache: &'a CacheEntry,
    /// How many distinct pod images it holds.
    pub matched: usize,
    /// Bytes of those images in the cache.
    pub matched_bytes: u64,
    /// Time since the cache was created (negative if it claims to be from the future).
    pub age: SignedDuration,
    /// Whether it may be chosen.
    pub verdict: Verdict,
    /// Whether it holds every image of the pod.
    pub full: bool,
    keys: &'a [String],
}

impl Candidate<'_> {
    /// Ranking order: `Less` means `self` is the better choice.
    fn rank(&self, other: &Self) -> std::cmp::Ordering {
        other
            .matched
            .cmp(&self.matched)
            .then(other.matched_bytes.cmp(&self.matched_bytes))
            .then(other.cache.created.cmp(&self.cache.created))
            .then_with(|| self.cache.id.cmp(&other.cache.id))
    }
}

/// Why no cache was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The pod names no images.
    NoImages,
    /// No known cache holds any of the pod's images.
    NoCacheHoldsAnImage,
    /// Caches hold some of the images, but none is `Ready`, unexpired and small enough for the
    /// instance's storage.
    NoneUsable,
    /// Usable caches hold some of the images, but none passes the pod's filter.
    FilteredOut,
    /// Caches hold some of the images, but only ones built with logins for registries the pod
    /// has no pull secret for.
    NotEntitled,
}

/// One distinct image of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedImage {
    /// The reference as the pod spells it (the first spelling, if several normalise alike).
    pub reference: String,
    /// Its normalised comparison key.
    pub key: String,
}

/// The result of a match, with the detail `eci-vk explain-match` prints.
#[derive(Debug, Clone)]
pub struct MatchReport<'a> {
    /// The pod's distinct images.
    pub wanted: Vec<WantedImage>,
    /// The filters applied.
    pub options: MatchOptions,
    /// Every cache holding at least one pod image, in no particular order (see [`Self::ranked`]).
    pub candidates: Vec<Candidate<'a>>,
    winner: Option<usize>,
}

impl<'a> MatchReport<'a> {
    /// The chosen cache, or why there is none.
    ///
    /// # Errors
    /// [`Miss`] when no candidate qualifies.
    pub fn outcome(&self) -> Result<&Candidate<'a>, Miss> {
        if let Some(i) = self.winner {
            return Ok(&self.candidates[i]);
        }
        if self.wanted.is_empty() {
            Err(Miss::NoImages)
        } else if self.candidates.is_empty() {
            Err(Miss::NoCacheHoldsAnImage)
        } else if self
            .candidates
            .iter()
            .any(|c| c.verdict == Verdict::Private)
            && self.candidates.iter().all(|c| {
                matches!(
                    c.verdict,
                    Verdict::Private
                        | Verdict::NotReady
                        | Verdict::Expired(_)
                        | Verdict::Stale
                        | Verdict::TooLarge { .. }
                )
            })
        {
            Err(Miss::NotEntitled)
        } else if self.candidates.iter().all(|c| {
            matches!(
                c.verdict,
                Verdict::NotReady | Verdict::Expired(_) | Verdict::Stale | Verdict::TooLarge { .. }
            )
        }) {
            Err(Miss::NoneUsable)
        } else {
            Err(Miss::FilteredOut)
        }
    }

    /// The winner, if any.
    pub fn winner(&self) -> Option<&Candidate<'a>> {
        self.winner.map(|i| &self.candidates[i])
    }

    /// Candidates best first: qualified ones in ranking order, then the others, ranked alike.
    pub fn ranked(&self) -> Vec<&Candidate<'a>> {
        let mut all: Vec<&Candidate<'a>> = self.candidates.iter().collect();
        all.sort_by(|a, b| {
            let qa = a.verdict != Verdict::Qualified;
            let qb = b.verdict != Verdict::Qualified;
            qa.cmp(&qb).then_with(|| a.rank(b))
        });
        all
    }

    /// The pod images (as the pod spells them) that `candidate` holds.
    pub fn matched_images(&self, candidate: &Candidate<'_>) -> Vec<&str> {
        self.wanted
            .iter()
            .filter(|w| candidate.keys.contains(&w.key))
            .map(|w| w.reference.as_str())
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Indexed {
    entry: CacheEntry,
    /// Distinct normalised keys of the entry's images (with the keys of their digests).
    keys: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    bytes: u64,
}

/// The caches known to the node, indexed for matching. Cheap to query; updates cost the size
/// of the changed cache.
#[derive(Debug, Clone, Default)]
pub struct CacheIndex {
    slots: Vec<Option<Indexed>>,
    free: Vec<u32>,
    by_id: HashMap<String, u32>,
    by_image: HashMap<String, Vec<Posting>>,
}

impl CacheIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of `entries` (a later entry with the same id replaces an earlier one).
    pub fn from_entries(entries: impl IntoIterator<Item = CacheEntry>) -> Self {
        let mut index = Self::new();
        for entry in entries {
            index.upsert(entry);
        }
        index
    }

    /// Number of caches.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no cache is known.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The cache with this cloud id.
    pub fn get(&self, id: &str) -> Option<&CacheEntry> {
        let slot = *self.by_id.get(id)?;
        self.slots
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map(|i| &i.entry)
    }

    /// All caches, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &CacheEntry> {
        self.slots.iter().flatten().map(|i| &i.entry)
    }

    /// Adds `entry`, replacing the cache with the same id.
    pub fn upsert(&mut self, entry: CacheEntry) {
        self.remove(&entry.id);
        let mut keys: Vec<String> = Vec::with_capacity(entry.images.len());
        let mut bytes: Vec<u64> = Vec::with_capacity(entry.images.len());
        for image in &entry.images {
            let parsed = ImageRef::parse(&image.reference).ok();
            let aliases = image
                .digests
                .iter()
                .filter_map(|d| parsed.as_ref().map(|r| r.key_at(d)));
            for key in std::iter::once(image_key(&image.reference)).chain(aliases) {
                match keys.iter().position(|k| *k == key) {
                    Some(i) => bytes[i] = bytes[i].max(image.bytes),
                    None => {
                        keys.push(key);
                        bytes.push(image.bytes);
                    }
                }
            }
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                // The index addresses slots with u32: more than 4 billion caches cannot occur
                // (ECI's quota is in the hundreds).
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        for (key, bytes) in keys.iter().zip(bytes) {
            self.by_image
                .entry(key.clone())
                .or_default()
                .push(Posting { slot, bytes });
        }
        self.by_id.insert(entry.id.clone(), slot);
        self.slots[slot as usize] = Some(Indexed { entry, keys });
    }

    /// Removes the cache with this id, returning it.
    pub fn remove(&mut self, id: &str) -> Option<CacheEntry> {
        let slot = self.by_id.remove(id)?;
        let indexed = self.slots.get_mut(slot as usize)?.take()?;
        for key in &indexed.keys {
            if let Some(postings) = self.by_image.get_mut(key) {
                postings.retain(|p| p.slot != slot);
                if postings.is_empty() {
                    self.by_image.remove(key);
                }
            }
        }
        self.free.push(slot);
        Some(indexed.entry)
    }

    /// Matches a pod's images (init and regular, in any order, repeats allowed) against the
    /// caches at time `now`.
    pub fn select<'a, I, S>(
        &'a self,
        pod_images: I,
        options: MatchOptions,
        now: Timestamp,
    ) -> MatchReport<'a>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.select_for(pod_images, options, None, now)
    }

    /// [`Self::select`] for a pod with logins for the registries `logins` (hosts, as
    /// [`crate::reference::registry_host`] spells them): a cache built with a login for any
    /// other registry is [`Verdict::Private`]. `None` checks nothing.
    pub fn select_for<'a, I, S>(
        &'a self,
        pod_images: I,
        options: MatchOptions,
        logins: Option<&[String]>,
        now: Timestamp,
    ) -> MatchReport<'a>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut wanted: Vec<WantedImage> = Vec::new();
        for image in pod_images {
            let reference = image.as_ref();
            let key = image_key(reference);
            if !wanted.iter().any(|w| w.key == key) {
                wanted.push(WantedImage {
                    reference: reference.trim().to_owned(),
                    key,
                });
            }
        }
        let mut matched = vec![0u32; self.slots.len()];
        let mut bytes = vec![0u64; self.slots.len()];
        let mut touched: Vec<u32> = Vec::new();
        for w in &wanted {
            for p in self.by_image.get(&w.key).map_or(&[][..], Vec::as_slice) {
                let s = p.slot as usize;
                if matched[s] == 0 {
                    touched.push(p.slot);
                }
                matched[s] += 1;
                bytes[s] = bytes[s].saturating_add(p.bytes);
            }
        }
        let mut candidates: Vec<Candidate<'a>> = Vec::with_capacity(touched.len());
        let mut winner: Option<usize> = None;
        for slot in touched {
            let Some(indexed) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            let cache = &indexed.entry;
            let count = matched[slot as usize] as usize;
            let verdict = if !cache.is_ready() {
                Verdict::NotReady
            } else if let Some(at) = cache.expires.filter(|at| *at <= now) {
                Verdict::Expired(at)
            } else if logins.is_some_and(|logins| {
                cache
                    .private_registries
                    .iter()
                    .any(|host| !logins.contains(host))
            }) {
                Verdict::Private
            } else if options.fresh_only && cache.stale {
                Verdict::Stale
            } else if let Some(storage_gib) = options
                .storage_gib
                .filter(|storage| cache.size_gib > *storage)
            {
                Verdict::TooLarge {
                    size_gib: cache.size_gib,
                    storage_gib,
                }
            } else if options.perfect_match && count < wanted.len() {
                Verdict::NotPerfect {
                    missing: wanted.len() - count,
                }
            } else if let Some(required) = options
                .match_count_request
                .filter(|n| !options.perfect_match && (count as u64) < u64::from(*n))
            {
                Verdict::BelowMatchCount { required }
            } else {
                Verdict::Qualified
            };
            let candidate = Candidate {
                cache,
                matched: count,
                matched_bytes: bytes[slot as usize],
                age: now.duration_since(cache.created),
                verdict,
                full: count == wanted.len(),
                keys: &indexed.keys,
            };
            if verdict == Verdict::Qualified
                && winner.is_none_or(|w| candidate.rank(&candidates[w]).is_lt())
            {
                winner = Some(candidates.len());
            }
            candidates.push(candidate);
        }
        MatchReport {
            wanted,
            options,
            candidates,
            winner,
        }
    }
}

#[cfg(test)]
mod tests;
