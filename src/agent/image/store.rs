//! The content store: blobs (image configs and compressed layers) on disk by digest.
//!
//! Layout under the agent's data dir: `blobs/sha256/<hex>` for verified blobs and `ingest/`
//! for downloads in flight. A blob is written to a fresh file under `ingest/`, hashed while it
//! streams in, and renamed into place only when its sha256 and size match the descriptor, so a
//! path under `blobs/` always holds exactly the bytes its name promises. A blob already present
//! is never downloaded again; that is what makes a second cache of the same images free.
//!
//! Digests come from registries, so they are parsed into [`Digest`] (only `sha256:` + 64
//! lowercase hex digits) before they ever become part of a path.

use std::{
    collections::HashSet,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::{
    growing::{BlobWriter, GrowingBlob},
    shaper::Shaper,
};

/// The most bytes a piece of image metadata (a manifest, an index, an image config) may have.
/// Metadata is read into memory whole, so a registry must not choose its size; 4 MiB is the
/// limit oras-go and containerd apply to manifests, far above any real image's.
pub const MAX_METADATA_BYTES: u64 = 4 * 1024 * 1024;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("unsupported or malformed digest {digest:?}")]
    ParseDigest {
        /// The digest as given.
        digest: String,
    },
    /// The store's directories could not be created.
    #[error("cannot create the content store at {}", path.display())]
    CreateStore {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A blob could not be written to its ingest file (disk full, permissions).
    #[error("cannot write blob {digest} to {}", path.display())]
    WriteBlob {
        /// The blob.
        digest: Digest,
        /// The ingest file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The download of a blob failed part-way (connection reset, registry error).
    #[error("cannot download blob {digest}")]
    DownloadBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes received do not hash to the digest asked for; nothing was stored.
    #[error("blob {expected} arrived with digest {actual}")]
    VerifyDigest {
        /// The digest of the descriptor.
        expected: Digest,
        /// The sha256 of the bytes received.
        actual: String,
    },
    /// The bytes received are not as many as the descriptor says; nothing was stored.
    #[error("blob {digest} arrived with {actual} bytes, the descriptor says {expected}")]
    VerifySize {
        /// The blob.
        digest: Digest,
        /// The size of the descriptor.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },
    /// A blob read into memory is larger than the limit for its kind (image metadata).
    #[error("blob {digest} has {size} bytes, more than the {limit} allowed")]
    BlobTooLarge {
        /// The blob.
        digest: Digest,
        /// Its size on disk.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The blobs could not be listed, or an unreferenced one removed, while collecting
    /// garbage.
    #[error("cannot remove unreferenced blobs at {}", path.display())]
    RemoveBlobs {
        /// The directory or blob.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored blob could not be read.
    #[error("cannot read blob {digest}")]
    ReadBlob {
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

// === impl Digest ===

/// A sha256 content digest, `sha256:<64 hex>`, safe to use as a file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(format!("sha256:{:x}", Sha256::digest(data)))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The digest as text, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = StoreError;

    fn from_str(digest: &str) -> Result<Self, Self::Err> {
        match digest.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Self(digest.to_owned()))
            }
            _ => Err(StoreError::ParseDigest {
                digest: digest.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl ContentStore ===

/// Blobs by digest under one directory.
#[derive(Debug)]
pub struct ContentStore {
    root: PathBuf,
    /// Makes ingest file names unique within this process.
    next_ingest: AtomicU64,
}

/// Whether [`ContentStore::ingest`] may use a blob it already has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fetch {
    /// Download only what is missing (a cache build on this agent).
    #[default]
    IfMissing,
    /// Download even what is present: a container group without a snapshot pulls like the
    /// fresh ECI instance it stands for.
    Always,
}

/// What [`ContentStore::ingest`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// The blob was already present; nothing was read from the stream.
    Present,
    /// The blob was downloaded and verified; this many bytes were read.
    Downloaded(u64),
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root` and clears stale ingest files.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let ingest = root.join("ingest");
        // Leftovers of a crash are incomplete by construction.
        if tokio::fs::try_exists(&ingest).await.unwrap_or(false) {
            let _ = tokio::fs::remove_dir_all(&ingest).await;
        }
        for dir in [root.join("blobs/sha256"), ingest] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|source| StoreError::CreateStore { path: dir, source })?;
        }
        Ok(Self {
            root,
            next_ingest: AtomicU64::new(0),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob is present.
    pub async fn contains(&self, digest: &Digest) -> bool {
        tokio::fs::try_exists(self.blob_path(digest))
            .await
            .unwrap_or(false)
    }

    /// Reads a whole blob of at most `limit` bytes; a larger one is refused before any byte
    /// is read into memory.
    ///
    /// # Errors
    /// [`StoreError::BlobTooLarge`] past the limit, [`StoreError::ReadBlob`] when the blob
    /// cannot be read.
    pub async fn read_small(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        use tokio::io::AsyncReadExt as _;
        let read_error = |source| StoreError::ReadBlob {
            digest: digest.clone(),
            source,
        };
        let file = tokio::fs::File::open(self.blob_path(digest))
            .await
            .map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        let too_large = |size| StoreError::BlobTooLarge {
            digest: digest.clone(),
            size,
            limit,
        };
        if size > limit {
            return Err(too_large(size));
        }
        // Bounded read as well: the size was checked on this open file, yet reading at most
        // one byte past the limit costs nothing and holds whatever happens to the file.
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(limit.saturating_add(1))
            .read_to_end(&mut data)
            .await
            .map_err(read_error)?;
        let read = data.len() as u64;
        if read > limit {
            return Err(too_large(read));
        }
        Ok(data)
    }

    /// Removes every blob whose digest (`sha256:<hex>`) is not in `live`; returns how many.
    ///
    /// The caller guarantees that nothing adds a reference meanwhile (the snapshot store
    /// holds its build lock alone while it marks and sweeps).
    ///
    /// # Errors
    /// [`StoreError::RemoveBlobs`] when the blobs cannot be listed or one cannot be removed.
    pub async fn remove_unreferenced(&self, live: &HashSet<String>) -> Result<u64, StoreError> {
        let dir = self.root.join("blobs/sha256");
        let error = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::RemoveBlobs { path, source }
        };
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(error(&dir))?;
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(error(&dir))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if live.contains(&format!("sha256:{name}")) {
                continue;
            }
            let path = entry.path();
            match tokio::fs::remove_file(&path).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(error(&path)(e)),
            }
        }
        Ok(removed)
    }

    /// Reads an image config (or other metadata blob), at most [`MAX_METADATA_BYTES`].
    ///
    /// # Errors
    /// As [`Self::read_small`].
    pub async fn read_metadata(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.read_small(digest, MAX_METADATA_BYTES).await
    }

    /// Stores the blob `digest` of `size` bytes from `open`'s stream, unless it is present
    /// and `options.fetch` is [`Fetch::IfMissing`].
    ///
    /// `open` is a future that is polled only when the blob is downloaded, so a hit costs no
    /// request. With [`Fetch::Always`] the verified download replaces the stored copy (same
    /// bytes, atomically). Every chunk first passes `options.shaper` (when the link is shaped),
    /// is then hashed, reported to `on_chunk` (counters, progress) and written; with
    /// `options.growing` it is also flushed and published there for a reader that unpacks the
    /// blob as it arrives. The blob becomes visible in the store only after its digest and
    /// size are verified.
    ///
    /// # Errors
    /// [`StoreError::VerifyDigest`] / [`StoreError::VerifySize`] when the bytes are not the
    /// blob; the partial file is removed in every failure, and the growing blob fails.
    pub async fn ingest<S, E>(
        &self,
        digest: &Digest,
        size: u64,
        options: IngestOptions<'_>,
        open: impl Future<Output = Result<S, E>>,
        mut on_chunk: impl FnMut(usize),
    ) -> Result<Ingested, E>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
        E: From<StoreError>,
    {
        // Dropped unfinished (an error, or the build went away), it fails the growing blob.
        let writer = options.growing.map(GrowingBlob::writer);
        if options.fetch == Fetch::IfMissing && self.contains(digest).await {
            if let Some(writer) = writer {
                let file = match tokio::fs::File::open(self.blob_path(digest)).await {
                    Ok(file) => file.into_std().await,
                    Err(source) => {
                        return Err(StoreError::ReadBlob {
                            digest: digest.clone(),
                            source,
                        }
                        .into());
                    }
                };
                writer.present(file, size);
            }
            return Ok(Ingested::Present);
        }
        let stream = open.await?;
        let n = self.next_ingest.fetch_add(1, Ordering::Relaxed);
        let temp =
            self.root
                .join("ingest")
                .join(format!("{}-{}-{n}", digest.hex(), std::process::id()));
        let target = Target {
            digest,
            size,
            temp: &temp,
            shaper: options.shaper,
            writer: writer.as_ref(),
        };
        let result = self.write_verified(&target, stream, &mut on_chunk).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        let received = result?;
        if let Some(writer) = writer {
            writer.complete(received);
        }
        Ok(Ingested::Downloaded(received))
    }

    async fn write_verified<S>(
        &self,
        target: &Target<'_>,
        mut stream: S,
        on_chunk: &mut impl FnMut(usize),
    ) -> Result<u64, StoreError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        let &Target {
            digest,
            size,
            temp,
            shaper,
            writer,
        } = target;
        let write_error = |source| StoreError::WriteBlob {
            digest: digest.clone(),
            path: temp.to_owned(),
            source,
        };
        // Readable too: a growing blob's readers read it through a duplicate of this handle.
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(temp)
            .await
            .map_err(write_error)?;
        if let Some(writer) = writer {
            let reading = file.try_clone().await.map_err(write_error)?;
            writer.started(reading.into_std().await);
        }
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| StoreError::DownloadBlob {
                digest: digest.clone(),
                source,
            })?;
            received += chunk.len() as u64;
            if received > size {
                // A registry that sends more than the descriptor says is not trusted further.
                return Err(StoreError::VerifySize {
                    digest: digest.clone(),
                    expected: size,
                    actual: received,
                });
            }
            if let Some(shaper) = shaper {
                shaper.acquire(chunk.len() as u64).await;
            }
            on_chunk(chunk.len());
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
            if let Some(writer) = writer {
                // tokio's file writes in the background: flushed, the bytes are in the file.
                file.flush().await.map_err(write_error)?;
                writer.wrote(received);
            }
        }
        file.sync_all().await.map_err(write_error)?;
        drop(file);
        if received != size {
            return Err(StoreError::VerifySize {
                digest: digest.clone(),
                expected: size,
                actual: received,
            });
        }
        let actual = format!("sha256:{:x}", hasher.finalize());
        if actual != digest.as_str() {
            return Err(StoreError::VerifyDigest {
                expected: digest.clone(),
                actual,
            });
        }
        tokio::fs::rename(temp, self.blob_path(digest))
            .await
            .map_err(write_error)?;
        Ok(received)
    }
}

/// How [`ContentStore::ingest`] takes a blob in.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestOptions<'a> {
    /// Whether a blob already present is used.
    pub fetch: Fetch,
    /// The shaped link every downloaded byte passes, when there is one.
    pub shaper: Option<&'a Shaper>,
    /// Where the download is published for a reader that follows it.
    pub growing: Option<&'a GrowingBlob>,
}

/// One download's destination: the blob it must turn out to be and where it is written.
struct Target<'a> {
    digest: &'a Digest,
    size: u64,
    temp: &'a Path,
    shaper: Option<&'a Shaper>,
    writer: Option<&'a BlobWriter<'a>>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn chunks(data: &'static [u8]) -> impl Stream<Item = std::io::Result<Bytes>> + Unpin {
        futures::stream::iter(
            data.chunks(3)
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn digests_are_checked_before_they_become_paths() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(good.parse::<Digest>().unwrap().hex(), "a".repeat(64));
        for bad in [
            "sha256:../../etc/passwd".to_owned(),
            format!("sha512:{}", "a".repeat(128)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}/", "a".repeat(63)),
            "a".repeat(64),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} was accepted");
        }
    }

    #[tokio::test]
    async fn stores_a_verified_blob_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).await.unwrap();
        let data = b"hello, content store";
        let digest = Digest::of(data);
        let mut seen = 0;
        let result = store
            .ingest(
                &digest,
                data.len() as u64,
                IngestOptions::default(),
                async { Ok::<_, StoreError>(chunks(data)) },
                |n| seen += n,
            )
            .await
            .unwrap();
        assert_eq!(result, Ingested::Downloaded(data.len() as u64));
        assert_eq!(seen, data.len());
        assert_eq!(store.read_metadata(&digest).await.unwrap(), data);
        // Present: the stream is not even opened.
        let again = store
            .ingest(
                &digest,
                data.len() as u64,
                IngestOptions::default(),
                async {
                    panic!("a present blob was downloaded again");
                    #[allow(unreachable_code)]
                    Ok::<futures::stream::Empty<_>, StoreError>(futures::stream::empty())
                },
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(again, Ingested::Present);
        // A fresh machine downloads it anyway, verified, and the copy stays readable.
        let mut seen = 0;
        let fresh = store
            .ingest(
                &digest,
                data.len() as u64,
                IngestOptions {
                    fetch: Fetch::Always,
                    ..IngestOptions::default()
                },
                async { Ok::<_, StoreError>(chunks(data)) },
                |n| seen += n,
            )
            .await
            .unwrap();
        assert_eq!(fresh, Ingested::Downloaded(data.len() as u64));
        assert_eq!(seen, data.len());
        assert_eq!(store.read_metadata(&digest).await.unwrap(), data);
    }

    /// Reads the growing blob on a blocking thread: the first `first` bytes are reported as
    /// soon as they are read, the rest (or the error) at the end.
    fn follow(
        growing: &Arc<GrowingBlob>,
        first: usize,
    ) -> (
        tokio::sync::oneshot::Receiver<Vec<u8>>,
        tokio::task::JoinHandle<std::io::Result<Vec<u8>>>,
    ) {
        use std::io::Read as _;
        let mut reader = growing.reader(None);
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        let all = tokio::task::spawn_blocking(move || {
            let mut head = vec![0; first];
            reader.read_exact(&mut head)?;
            let _ = head_tx.send(head.clone());
            reader.read_to_end(&mut head)?;
            Ok(head)
        });
        (head_rx, all)
    }

    #[tokio::test]
    async fn a_growing_blob_is_read_while_it_downloads() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).await.unwrap();
        let data = b"first part, then the rest";
        let digest = Digest::of(data);
        let growing = Arc::new(GrowingBlob::default());
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let (head, all) = follow(&growing, 11);
        let options = IngestOptions {
            growing: Some(&growing),
            ..IngestOptions::default()
        };
        let ingest = store.ingest(
            &digest,
            data.len() as u64,
            options,
            async { Ok::<_, StoreError>(tokio_stream::wrappers::ReceiverStream::new(rx)) },
            |_| {},
        );
        let feed = async {
            tx.send(Ok(Bytes::from_static(&data[..11]))).await.unwrap();
            // The reader has the first part before the rest is even sent.
            assert_eq!(head.await.unwrap(), &data[..11]);
            tx.send(Ok(Bytes::from_static(&data[11..]))).await.unwrap();
            drop(tx);
        };
        let (ingested, ()) = tokio::join!(ingest, feed);
        assert_eq!(ingested.unwrap(), Ingested::Downloaded(data.len() as u64));
        assert_eq!(all.await.unwrap().unwrap(), data);
        assert!(!growing.failed());
    }

    #[tokio::test]
    async fn a_growing_blob_fails_with_its_download() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).await.unwrap();
        let claimed = Digest::of(b"the real layer!");
        let growing = Arc::new(GrowingBlob::default());
        let (head, all) = follow(&growing, 4);
        let options = IngestOptions {
            growing: Some(&growing),
            ..IngestOptions::default()
        };
        let error = store
            .ingest(
                &claimed,
                15,
                options,
                async { Ok::<_, StoreError>(chunks(b"something else!")) },
                |_| {},
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::VerifyDigest { .. }),
            "{error:?}"
        );
        // The reader saw the unverified bytes, then the failure instead of an end.
        assert_eq!(head.await.unwrap(), b"some");
        let error = all.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "the blob's download failed");
        assert!(growing.failed());
    }

    #[tokio::test]
    async fn refuses_to_read_a_large_blob_into_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).await.unwrap();
        let data = vec![b'{'; 5 * 1024 * 1024];
        let digest = Digest::of(&data);
        std::fs::write(store.blob_path(&digest), &data).unwrap();
        let error = store.read_metadata(&digest).await.unwrap_err();
        assert!(
            matches!(error, StoreError::BlobTooLarge { size, limit, .. }
                if size == 5 * 1024 * 1024 && limit == MAX_METADATA_BYTES),
            "{error:?}"
        );
        assert_eq!(
            store.read_small(&digest, 5 * 1024 * 1024).await.unwrap(),
            data
        );
    }

    #[tokio::test]
    async fn rejects_a_digest_mismatch_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).await.unwrap();
        let claimed = Digest::of(b"the real layer");
        let data = b"something else!";
        let error = store
            .ingest(
                &claimed,
                data.len() as u64,
                IngestOptions::default(),
                async { Ok::<_, StoreError>(chunks(data)) },
                |_| {},
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::VerifyDigest { expected, actual }
                if *expected == claimed && *actual == Digest::of(data).to_string()),
            "{error:?}"
        );
        assert!(!store.contains(&claimed).await);
        let leftovers = std::fs::read_dir(dir.path().join("ingest"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0, "the partial download was kept");
    }

    #[tokio::test]
    async fn rejects_a_size_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).await.unwrap();
        let data = b"twelve bytes";
        let digest = Digest::of(data);
        for size in [5, 20] {
            let error = store
                .ingest(
                    &digest,
                    size,
                    IngestOptions::default(),
                    async { Ok::<_, StoreError>(chunks(data)) },
                    |_| {},
                )
                .await
                .unwrap_err();
            assert!(
                matches!(error, StoreError::VerifySize { expected, .. } if expected == size),
                "{error:?}"
            );
            assert!(!store.contains(&digest).await);
        }
    }
}
