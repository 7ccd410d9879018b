//! Unpacking image layers (tar, gzip, zstd) onto a root directory, safely.
//!
//! Layers are applied in order onto one directory (an image's rootfs in a snapshot), with the
//! OCI whiteouts honoured: `.wh.NAME` removes `NAME` from the layers below, `.wh..wh..opq`
//! empties its directory of what the layers below put there.
//!
//! # No path escapes
//! A layer comes from a registry and is untrusted. Nothing it contains may create, change or
//! remove anything outside the root. We resolve every path ourselves, one component at a time,
//! against the root (no crate does exactly this with the semantics we want: `tar`'s
//! `unpack_in` has no whiteouts and follows symlinks the layer planted; `cap-std` was
//! considered, but it would be a new dependency tree for the same hundred lines):
//! - entry names (and hard-link targets) with a `..` component or an absolute path are refused;
//! - intermediate components that are symlinks are followed *as if the root were `/`*, the
//!   semantics of filepath-securejoin, which containerd and umoci use to unpack layers: an
//!   absolute target restarts at the root, a `..` pops one directory and stays at the root
//!   when there is none left, at most 255 hops (securejoin's limit) before the path is refused
//!   as a loop. Real images need this: Debian has `var/run -> /run` and a later layer writes
//!   `var/run/x`, which lands in `<root>/run/x`. Only components `lstat` saw as real
//!   directories are ever kept, so the resolved directory is always below the root;
//! - the last component is never followed: an existing file, link or directory in the way is
//!   removed first and the new file is created with `O_EXCL`, so it cannot land through a link;
//! - hard links point at an existing non-directory inside the root, resolved the same way, and
//!   `linkat` does not follow a symlink source.
//!
//! An entry that is refused fails the whole layer ([`UnpackError::RefuseEntry`]); the caller
//! throws the partial root away.
//!
//! # Bounded reading
//! The tar stream is read through a guard ([`Limits`]): the header material before each entry
//! (GNU long names and links, PAX extended headers, which `tar` reads whole into memory) is
//! capped at 1 MiB as Go's archive/tar caps it, and so are the entry count, the whole
//! uncompressed stream and what follows the end-of-archive marker. The guard also checks an
//! optional cancel flag ([`UnpackOptions::cancel`]) on every read.
//!
//! Device nodes are skipped (containers get `/dev` from the runtime); ownership is applied
//! when the agent may (`chown` as root, before the mode so setuid bits survive) and skipped
//! otherwise, and then, as GNU tar does, the setuid and setgid bits are dropped: the file
//! belongs to the agent's user, whose rights they would grant.

use std::{
    collections::HashSet,
    ffi::{OsStr, OsString},
    fmt, fs,
    io::{self, BufRead, Read},
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Component, Path, PathBuf},
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use sha2::{Digest as _, Sha256};
use tracing::debug;

use self::guard::{Budget, GuardedReader, HashingReader, Phase};

/// Symlink hops followed while resolving one path: filepath-securejoin's limit (containerd and
/// umoci resolve layer paths with it), so an image they unpack does not fail here.
const MAX_SYMLINK_HOPS: u32 = 255;
/// Header material before one entry: its header block plus any GNU long name, long link and
/// PAX extended header, which `tar` reads whole into memory. Go's archive/tar caps those at
/// 1 MiB (`maxSpecialFileSize`) and no real path or attribute set comes near it.
pub const MAX_HEADER_BYTES: u64 = 1024 * 1024;
/// Entries in one layer. Each is an inode on the snapshot's disk; a distribution base has
/// about ten thousand and a large `node_modules` layer a few hundred thousand, so a million
/// leaves room for real images and stops an inode bomb of empty files.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Bytes of uncompressed tar in one layer: 64 GiB is past any real layer (registries and
/// ECI caches are sized in tens of GiB), and bounds the time a decompression bomb of empty
/// or skipped entries can take.
pub const MAX_STREAM_BYTES: u64 = 64 << 30;
/// Bytes after the end-of-archive marker: GNU tar pads the archive to a 10 KiB record and
/// writers like Go's add nothing; anything longer is not padding.
pub const MAX_TRAILING_BYTES: u64 = 1024 * 1024;
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer's first bytes could not be read.
    #[error("cannot read the start of the layer")]
    OpenLayer {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The media type says the layer is compressed but its bytes are not gzip or zstd.
    #[error("layer of media type {media_type} is not {expected}")]
    DetectCompression {
        /// The descriptor's media type.
        media_type: String,
        /// What the media type promised.
        expected: Compression,
    },
    /// The tar stream (or its compression) is corrupt or truncated.
    #[error("cannot read the layer's tar stream")]
    ReadLayer {
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry would write outside the root; the layer is refused.
    #[error("refused layer entry {}: {reason}", entry.display())]
    RefuseEntry {
        /// The entry's path as the layer names it.
        entry: PathBuf,
        /// How it would escape.
        reason: Escape,
    },
    /// Writing an entry failed (disk full, a file where a directory is needed).
    #[error("cannot write layer entry {} at {}", entry.display(), path.display())]
    WriteEntry {
        /// The entry's path as the layer names it.
        entry: PathBuf,
        /// Where it was being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The layer's files would take more than the bytes allowed (the cache size).
    #[error("layer needs more than the {limit} bytes left (at entry {})", entry.display())]
    ExceedSize {
        /// Bytes this layer (or, with a [`SizeBudget`], its snapshot) was allowed to write.
        limit: u64,
        /// The entry that did not fit.
        entry: PathBuf,
    },
    /// The header material before one entry (a GNU long name or link, a PAX extended header)
    /// is larger than allowed: a layer built to exhaust memory.
    #[error("layer entry headers exceed {limit} bytes (a long name or extended header)")]
    HeaderTooLarge {
        /// The bytes allowed ([`Limits::header_bytes`]).
        limit: u64,
    },
    /// The layer has more entries than allowed (an inode bomb).
    #[error("layer has more than {limit} entries")]
    TooManyEntries {
        /// The entries allowed ([`Limits::entries`]).
        limit: u64,
    },
    /// The uncompressed tar stream is longer than allowed (a decompression bomb).
    #[error("layer's uncompressed tar exceeds {limit} bytes")]
    ExceedStream {
        /// The bytes allowed ([`Limits::stream_bytes`]).
        limit: u64,
    },
    /// More data than padding follows the end-of-archive marker.
    #[error("layer has more than {limit} bytes after its end-of-archive marker")]
    TrailingData {
        /// The bytes allowed ([`Limits::trailing_bytes`]).
        limit: u64,
    },
    /// The cancel flag was raised ([`UnpackOptions::cancel`]): whoever wanted the layer went
    /// away. The root is partial.
    #[error("unpacking the layer was cancelled")]
    Cancelled,
}

/// How an entry would have escaped the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Escape {
    /// The path has a `..` component.
    ParentComponent,
    /// The path is absolute.
    AbsolutePath,
    /// More than 255 symlinks on the way (a loop).
    SymlinkLoop,
    /// A whiteout names `.` or `..` or nothing.
    BadWhiteout,
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ParentComponent => f.write_str("path has a `..` component"),
            Self::AbsolutePath => f.write_str("path is absolute"),
            Self::SymlinkLoop => f.write_str("too many levels of symlinks"),
            Self::BadWhiteout => f.write_str("whiteout names no file"),
        }
    }
}

/// A layer's compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`+gzip`, Docker's `.tar.gzip`).
    Gzip,
    /// zstd (`+zstd`).
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "a plain tar",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        })
    }
}

/// Decides a layer's compression from its media type and first bytes.
///
/// The magic bytes win when they show gzip (`1f 8b`) or zstd (`28 b5 2f fd`): some registries
/// label compressed layers as plain tars. A media type that promises compression the bytes
/// do not have is an error, not a guess.
pub fn detect_compression(media_type: &str, head: &[u8]) -> Result<Compression, UnpackError> {
    let by_magic = if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else {
        None
    };
    let by_media_type = if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
        Some(Compression::Gzip)
    } else if media_type.ends_with("+zstd") {
        Some(Compression::Zstd)
    } else {
        None
    };
    match (by_magic, by_media_type) {
        (Some(found), _) => Ok(found),
        (None, Some(expected)) => Err(UnpackError::DetectCompression {
            media_type: media_type.to_owned(),
            expected,
        }),
        (None, None) => Ok(Compression::None),
    }
}

/// What one layer did to the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created or kept.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Entries skipped (device nodes, FIFOs, unknown types).
    pub skipped: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// The sha256 of the uncompressed tar (`sha256:<hex>`), the layer's OCI `diff_id`.
    pub diff_id: String,
}

/// What one layer may make the unpacker read and write (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of regular-file content the layer may write (the snapshot's room left);
    /// [`UnpackError::ExceedSize`] past it. Unlimited by default.
    pub bytes: u64,
    /// Entries in the layer; [`UnpackError::TooManyEntries`] past it.
    pub entries: u64,
    /// Header material before one entry; [`UnpackError::HeaderTooLarge`] past it.
    pub header_bytes: u64,
    /// Bytes of uncompressed tar; [`UnpackError::ExceedStream`] past it.
    pub stream_bytes: u64,
    /// Bytes after the end-of-archive marker; [`UnpackError::TrailingData`] past it.
    pub trailing_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            bytes: u64::MAX,
            entries: MAX_ENTRIES,
            header_bytes: MAX_HEADER_BYTES,
            stream_bytes: MAX_STREAM_BYTES,
            trailing_bytes: MAX_TRAILING_BYTES,
        }
    }
}

/// How to unpack one layer: its limits, and a flag that stops it.
#[derive(Clone, Debug, Default)]
pub struct UnpackOptions {
    /// What the layer may read and write.
    pub limits: Limits,
    /// Raised (by whoever started the unpack) to stop it at its next read, with
    /// [`UnpackError::Cancelled`]: a blocking unpack outlives the task that awaited it.
    pub cancel: Option<Arc<AtomicBool>>,
    /// File content this layer shares with others unpacked beside it.
    pub budget: Option<Arc<SizeBudget>>,
}

/// Bytes of file content that the layers of one snapshot, unpacked side by side, may write
/// together (its `ImageCacheSize`). Each file's size is taken before the file is written, so
/// the limit holds at every moment, not only once a layer ends.
#[derive(Debug)]
pub struct SizeBudget {
    limit: u64,
    used: AtomicU64,
}

impl SizeBudget {
    /// A budget of `limit` bytes, none used.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `bytes`; `false`, taking nothing, when they do not fit.
    fn take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }
}

impl UnpackOptions {
    /// Allows at most `bytes` of regular-file content ([`Limits::bytes`]).
    #[cfg(test)]
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.limits.bytes = bytes;
        self
    }

    /// Stops the unpack when `cancel` is raised.
    #[must_use]
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Counts the layer's file content against `budget` too.
    #[must_use]
    pub fn with_budget(mut self, budget: Arc<SizeBudget>) -> Self {
        self.budget = Some(budget);
        self
    }
}

/// Unpacks a layer read from `reader` onto `root` (see the module docs). Blocking.
pub fn unpack_layer(
    mut reader: impl BufRead,
    media_type: &str,
    root: &Path,
    options: &UnpackOptions,
) -> Result<LayerStats, UnpackError> {
    let limits = options.limits;
    let head = reader
        .fill_buf()
        .map_err(|source| UnpackError::OpenLayer { source })?;
    let compression = detect_compression(media_type, head)?;
    let tar: Box<dyn Read> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(reader)
                .map_err(|source| UnpackError::ReadLayer { source })?,
        ),
    };
    let mut unpacker = Unpacker {
        root,
        max_bytes: limits.bytes,
        budget: options.budget.as_deref(),
        written: HashSet::new(),
        dir_modes: Vec::new(),
        stats: LayerStats::default(),
    };
    let budget = Rc::new(Budget::default());
    let mut guard = GuardedReader {
        inner: HashingReader {
            inner: tar,
            hasher: Sha256::new(),
        },
        budget: Rc::clone(&budget),
        stream_left: limits.stream_bytes,
        cancel: options.cancel.clone(),
    };
    // A read error the guard caused is reported as the limit (or cancel) that caused it,
    // whatever `tar` wrapped it in.
    read_archive(&mut guard, &mut unpacker, &limits).map_err(|error| {
        budget
            .stopped
            .get()
            .map_or(error, |stop| stop.error(&limits))
    })?;
    unpacker.finish()?;
    unpacker.stats.diff_id = format!("sha256:{:x}", guard.inner.hasher.finalize());
    Ok(unpacker.stats)
}

/// Applies every entry of the tar behind `guard`, then reads the end-of-archive blocks and
/// padding (they belong to the diff_id too).
fn read_archive<R: Read>(
    guard: &mut GuardedReader<R>,
    unpacker: &mut Unpacker<'_>,
    limits: &Limits,
) -> Result<(), UnpackError> {
    let read_error = |source| UnpackError::ReadLayer { source };
    let budget = Rc::clone(&guard.budget);
    {
        let mut archive = tar::Archive::new(&mut *guard);
        let mut entries = archive.entries().map_err(read_error)?;
        let mut count: u64 = 0;
        loop {
            // `next` reads only header material: the previous entry's padding, its header
            // block and the long names and PAX headers before it.
            budget.enter(Phase::Header, limits.header_bytes);
            let Some(entry) = entries.next() else {
                break;
            };
            let mut entry = entry.map_err(read_error)?;
            count += 1;
            if count > limits.entries {
                return Err(UnpackError::TooManyEntries {
                    limit: limits.entries,
                });
            }
            budget.enter(Phase::Data, u64::MAX);
            unpacker.apply(&mut entry)?;
            // Whatever `apply` left unread (a skipped entry's data) is read here, as data,
            // not by the next `next` under the header budget.
            io::copy(&mut entry, &mut io::sink()).map_err(read_error)?;
        }
    }
    budget.enter(Phase::Trailer, limits.trailing_bytes);
    io::copy(guard, &mut io::sink()).map_err(read_error)?;
    Ok(())
}

// === impl Unpacker ===

struct Unpacker<'a> {
    root: &'a Path,
    max_bytes: u64,
    budget: Option<&'a SizeBudget>,
    /// Resolved paths this layer wrote: an opaque marker keeps them.
    written: HashSet<PathBuf>,
    /// Directory modes, applied after the layer so a read-only directory can still be filled.
    dir_modes: Vec<(PathBuf, u32)>,
    stats: LayerStats,
}

/// A path inside the layer, checked: only normal components.
fn checked_components(path: &Path) -> Result<Vec<OsString>, Escape> {
    let mut components = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => components.push(name.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(Escape::ParentComponent),
            Component::RootDir | Component::Prefix(_) => return Err(Escape::AbsolutePath),
        }
    }
    Ok(components)
}

impl Unpacker<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let read_error = |source| UnpackError::ReadLayer { source };
        let entry_path = entry.path().map_err(read_error)?.into_owned();
        let refuse = |reason| UnpackError::RefuseEntry {
            entry: entry_path.clone(),
            reason,
        };
        let mut components = checked_components(&entry_path).map_err(refuse)?;
        let Some(name) = components.pop() else {
            return Ok(()); // the root itself (`./`)
        };
        let write_error = |path: &Path, source| UnpackError::WriteEntry {
            entry: entry_path.clone(),
            path: path.to_owned(),
            source,
        };

        // Whiteouts: act on the layers below, write nothing.
        if name == OPAQUE_MARKER {
            if let Some(dir) = self.resolve_dir(&components, true, &entry_path)? {
                self.make_opaque(&dir).map_err(|e| write_error(&dir, e))?;
            }
            self.stats.whiteouts += 1;
            return Ok(());
        }
        if let Some(hidden) = name.to_str().and_then(|n| n.strip_prefix(WHITEOUT_PREFIX)) {
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                return Err(refuse(Escape::BadWhiteout));
            }
            if let Some(dir) = self.resolve_dir(&components, false, &entry_path)? {
                let target = dir.join(hidden);
                remove_existing(&target).map_err(|e| write_error(&target, e))?;
            }
            self.stats.whiteouts += 1;
            return Ok(());
        }

        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let owner = (
            header.uid().ok().and_then(|id| u32::try_from(id).ok()),
            header.gid().ok().and_then(|id| u32::try_from(id).ok()),
        );
        let mtime = header.mtime().ok();
        let link_name = entry
            .link_name()
            .map_err(read_error)?
            .map(|l| l.into_owned());

        let parent = self
            .resolve_dir(&components, true, &entry_path)?
            .ok_or_else(|| write_error(self.root, io::ErrorKind::NotFound.into()))?;
        let target = parent.join(&name);
        match kind {
            tar::EntryType::Directory => {
                let is_dir = fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
                if !is_dir {
                    remove_existing(&target).map_err(|e| write_error(&target, e))?;
                    fs::create_dir(&target).map_err(|e| write_error(&target, e))?;
                }
                let owned = owner_restored(std::os::unix::fs::lchown(&target, owner.0, owner.1))
                    .map_err(|e| write_error(&target, e))?;
                self.dir_modes
                    .push((target.clone(), mode_to_apply(mode, owned)));
                self.stats.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                if self.stats.bytes.saturating_add(size) > self.max_bytes {
                    return Err(UnpackError::ExceedSize {
                        limit: self.max_bytes,
                        entry: entry_path.clone(),
                    });
                }
                if let Some(budget) = self.budget
                    && !budget.take(size)
                {
                    return Err(UnpackError::ExceedSize {
                        limit: budget.limit,
                        entry: entry_path.clone(),
                    });
                }
                remove_existing(&target).map_err(|e| write_error(&target, e))?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true) // O_EXCL: never through a link planted meanwhile
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| write_error(&target, e))?;
                let copied = io::copy(entry, &mut file).map_err(read_error)?;
                // Owner before mode: chown clears the setuid bits.
                let owned = owner_restored(std::os::unix::fs::fchown(&file, owner.0, owner.1))
                    .map_err(|e| write_error(&target, e))?;
                file.set_permissions(fs::Permissions::from_mode(mode_to_apply(mode, owned)))
                    .map_err(|e| write_error(&target, e))?;
                if let Some(mtime) = mtime {
                    let _ = file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime));
                }
                self.stats.bytes += copied;
                self.stats.files += 1;
            }
            tar::EntryType::Symlink => {
                let Some(link) = link_name else {
                    return Err(read_error(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "symlink entry without a target",
                    )));
                };
                remove_existing(&target).map_err(|e| write_error(&target, e))?;
                // Creating a link writes nothing through it; where it points is checked when
                // a later entry tries to use it as a directory.
                std::os::unix::fs::symlink(&link, &target).map_err(|e| write_error(&target, e))?;
                self.stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let Some(link) = link_name else {
                    return Err(read_error(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "hard link entry without a target",
                    )));
                };
                let mut link_components = checked_components(&link).map_err(refuse)?;
                let Some(link_leaf) = link_components.pop() else {
                    return Err(refuse(Escape::AbsolutePath));
                };
                let source_dir = self
                    .resolve_dir(&link_components, false, &entry_path)?
                    .ok_or_else(|| write_error(&link, io::ErrorKind::NotFound.into()))?;
                let source = source_dir.join(link_leaf);
                if source == target {
                    return Ok(());
                }
                remove_existing(&target).map_err(|e| write_error(&target, e))?;
                // linkat(2) without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
                fs::hard_link(&source, &target).map_err(|e| write_error(&target, e))?;
                self.stats.hardlinks += 1;
            }
            other => {
                debug!(entry = %entry_path.display(), kind = ?other, "skipped layer entry");
                self.stats.skipped += 1;
                return Ok(());
            }
        }
        // Regular files were chowned through their handle and directories before their mode
        // was recorded; a hard link shares its source's inode and owner.
        if kind == tar::EntryType::Symlink {
            owner_restored(std::os::unix::fs::lchown(&target, owner.0, owner.1))
                .map_err(|e| write_error(&target, e))?;
        }
        self.written.insert(target);
        Ok(())
    }

    /// Resolves the directory `components` (already checked) inside the root, following
    /// symlinks as if the root were `/`; creates missing directories when `create`, else
    /// returns `None` for a missing one.
    ///
    /// These are filepath-securejoin's semantics (containerd's and umoci's layer unpacking):
    /// an absolute target restarts at the root, `..` pops a directory and is clamped at the
    /// root. `resolved` only ever holds components `lstat` saw as real directories (or that
    /// were just created as such), so a `..` is a plain pop and the result is below the root
    /// whatever the links say.
    fn resolve_dir(
        &self,
        components: &[OsString],
        create: bool,
        entry: &Path,
    ) -> Result<Option<PathBuf>, UnpackError> {
        let mut resolved: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = components.iter().rev().cloned().collect();
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name == OsStr::new("..") {
                // Only symlink targets bring `..` here (entries are checked before); at the
                // root, `/..` is `/`.
                resolved.pop();
                continue;
            }
            let here = join(self.root, &resolved).join(&name);
            match fs::symlink_metadata(&here) {
                Ok(meta) if meta.is_dir() => resolved.push(name),
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(UnpackError::RefuseEntry {
                            entry: entry.to_owned(),
                            reason: Escape::SymlinkLoop,
                        });
                    }
                    let target = fs::read_link(&here).map_err(|e| UnpackError::WriteEntry {
                        entry: entry.to_owned(),
                        path: here.clone(),
                        source: e,
                    })?;
                    if target.has_root() {
                        resolved.clear();
                    }
                    for component in target.components().rev() {
                        match component {
                            Component::Normal(part) => pending.push(part.to_owned()),
                            Component::ParentDir => pending.push(OsString::from("..")),
                            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                        }
                    }
                }
                Ok(_) => {
                    return Err(UnpackError::WriteEntry {
                        entry: entry.to_owned(),
                        path: here,
                        source: io::ErrorKind::NotADirectory.into(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    fs::create_dir(&here).map_err(|source| UnpackError::WriteEntry {
                        entry: entry.to_owned(),
                        path: here.clone(),
                        source,
                    })?;
                    resolved.push(name);
                }
                Err(source) => {
                    return Err(UnpackError::WriteEntry {
                        entry: entry.to_owned(),
                        path: here,
                        source,
                    });
                }
            }
        }
        Ok(Some(join(self.root, &resolved)))
    }

    /// Removes from `dir` everything this layer did not write.
    fn make_opaque(&self, dir: &Path) -> io::Result<()> {
        for child in fs::read_dir(dir)? {
            let child = child?.path();
            if !self.written.contains(&child) {
                remove_existing(&child)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), UnpackError> {
        // Deepest first, so a read-only parent does not block its children's chmod.
        self.dir_modes
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (path, mode) in self.dir_modes.drain(..) {
            // A later entry of this layer may have removed the directory, or replaced it or a
            // parent with a symlink: chmod follows links, so only a path of real directories
            // all the way down from the root gets its mode.
            if !is_real_dir_below(self.root, &path) {
                continue;
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|source| {
                UnpackError::WriteEntry {
                    entry: path.strip_prefix(self.root).unwrap_or(&path).to_owned(),
                    path: path.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

/// Whether `path` (below `root`) is a directory reached through directories only, no link.
fn is_real_dir_below(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let mut here = root.to_owned();
    relative.components().all(|component| match component {
        Component::Normal(name) => {
            here.push(name);
            fs::symlink_metadata(&here).is_ok_and(|m| m.is_dir())
        }
        _ => false,
    })
}

fn join(base: &Path, components: &[OsString]) -> PathBuf {
    let mut path = base.to_owned();
    path.extend(components);
    path
}

/// Whether a chown restored the entry's owner. Refused (the agent is not root) is no error:
/// the file then belongs to the agent's user.
fn owner_restored(result: io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(false),
        Err(e) => Err(e),
    }
}

/// The mode to give an entry of `mode`. As GNU tar does when it cannot restore an owner, a
/// file or directory that kept the agent's user instead of the image's loses its setuid and
/// setgid bits: they would grant that user's rights, not the ones the image meant.
fn mode_to_apply(mode: u32, owner_restored: bool) -> u32 {
    if owner_restored { mode } else { mode & !0o6000 }
}

/// Removes whatever is at `path` without following it: a symlink is removed, not its target.
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

mod guard;
#[cfg(test)]
mod tests;
