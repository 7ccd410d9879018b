//! `--data-dir`: the whole store as one JSON file, written atomically soon after each change,
//! so a restarted emulator still knows its groups, caches and client tokens.
//!
//! Crash safety as etcd writes its files (learned from its `fileutil`/WAL, not copied): one
//! writer at a time, a temporary file created owner-only (0600), written in full and
//! `fsync`ed, renamed over `state.json`, then the directory `fsync`ed so the rename itself
//! survives a power cut. Each snapshot carries a sequence number taken under the store lock;
//! a write older than the last one written is dropped, so an older copy never lands last.
//! The file holds registry passwords of group specs, hence 0600, and a directory the
//! emulator creates is 0700.
//!
//! Nonces are not saved: a replay after a restart still needs a timestamp within 15 minutes.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Core, state::Store};

/// Errors of reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file or directory could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state this build understands.
    #[error("{path} is not a valid emulator state")]
    Decode {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The state could not be encoded (never expected).
    #[error("cannot encode the emulator state")]
    Encode(#[source] serde_json::Error),
    /// The blocking write task did not finish (the runtime is shutting down).
    #[error("the write of {path} did not finish")]
    Interrupted {
        /// The state file.
        path: PathBuf,
    },
}

/// Reads and writes `DIR/state.json`.
#[derive(Debug)]
pub struct Persister {
    files: Arc<Files>,
    /// Sequence of the next snapshot (taken under the store lock, so it orders snapshots).
    next: AtomicU64,
    /// Wakes the save loop after a change.
    pub(super) notify: Notify,
    /// Set when the emulator stops: the save loop returns instead of waiting.
    stopping: AtomicBool,
}

/// The paths, and the one writer: the sequence number of the newest snapshot on disk.
#[derive(Debug)]
struct Files {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
    written: Mutex<u64>,
}

/// One encoded state, numbered.
#[derive(Debug)]
pub struct Snapshot {
    seq: u64,
    bytes: Vec<u8>,
}

impl Persister {
    /// A persister for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            files: Arc::new(Files {
                path: dir.join("state.json"),
                tmp: dir.join("state.json.tmp"),
                dir,
                written: Mutex::new(0),
            }),
            next: AtomicU64::new(1),
            notify: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.files.path
    }

    /// The saved state, or an empty one when there is none yet.
    ///
    /// # Errors
    /// When the file exists but cannot be read or decoded.
    pub fn load(&self) -> Result<Store, PersistError> {
        let path = &self.files.path;
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| PersistError::Decode {
                path: path.clone(),
                source,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
            Err(source) => Err(PersistError::Io {
                path: path.clone(),
                source,
            }),
        }
    }

    /// Encodes `store` with the next sequence number. Call it with the store locked, so
    /// numbers follow the order of the states.
    ///
    /// # Errors
    /// When the state cannot be encoded (never expected).
    pub fn snapshot(&self, store: &Store) -> Result<Snapshot, PersistError> {
        let bytes = serde_json::to_vec(store).map_err(PersistError::Encode)?;
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(Snapshot { seq, bytes })
    }

    /// Writes `snapshot` durably unless a newer one is already on disk.
    ///
    /// # Errors
    /// When the directory or file cannot be written.
    pub async fn save(&self, snapshot: Snapshot) -> Result<(), PersistError> {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || files.write(snapshot))
            .await
            .unwrap_or_else(|_| {
                Err(PersistError::Interrupted {
                    path: self.files.path.clone(),
                })
            })
    }

    /// Makes the save loop return at its next wake-up.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.notify.notify_one();
    }
}

// === impl Files ===

impl Files {
    /// The one writer: holds `written` for the whole write (on a blocking thread), so two
    /// writes never share the temporary file, and skips a snapshot older than the last one.
    fn write(&self, snapshot: Snapshot) -> Result<(), PersistError> {
        let mut written = self.written.lock();
        if snapshot.seq <= *written {
            return Ok(());
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| PersistError::Io { path, source }
        };
        create_private_dir(&self.dir).map_err(io(&self.dir))?;
        let mut file = open_private(&self.tmp).map_err(io(&self.tmp))?;
        file.write_all(&snapshot.bytes).map_err(io(&self.tmp))?;
        file.sync_all().map_err(io(&self.tmp))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        *written = snapshot.seq;
        Ok(())
    }
}

/// Creates `dir` (and missing parents) owner-only; an existing directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Opens `path` for writing, created 0600 (never readable by others, not even for a moment)
/// and truncated; a file left over with wider permissions is narrowed first.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// `fsync` of a directory, so a rename in it is durable (a no-op where directories cannot be
/// opened).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Saves the store after changes, at most every 100 ms, until [`Persister::stop`].
pub async fn save_loop(core: Arc<Core>) {
    let Some(persister) = &core.persister else {
        return;
    };
    loop {
        persister.notify.notified().await;
        if persister.stopping.load(Ordering::Relaxed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        core.save_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(n: u32) -> Store {
        Store {
            next_ip: n,
            ..Store::default()
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_file_is_0600_and_a_created_directory_0700() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("state");
        let persister = Persister::new(dir.clone());
        let snapshot = persister.snapshot(&store_with(1)).expect("encode");
        persister.save(snapshot).await.expect("save");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(persister.path()), 0o600);
        assert!(!dir.join("state.json.tmp").exists(), "renamed away");
    }

    #[tokio::test]
    async fn an_older_snapshot_never_overwrites_a_newer_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let persister = Persister::new(root.path().to_owned());
        let older = persister.snapshot(&store_with(1)).expect("encode");
        let newer = persister.snapshot(&store_with(2)).expect("encode");
        persister.save(newer).await.expect("save");
        persister.save(older).await.expect("skipped");
        assert_eq!(persister.load().expect("load").next_ip, 2);
    }

    #[tokio::test]
    async fn concurrent_saves_always_leave_a_decodable_file() {
        let root = tempfile::tempdir().expect("tempdir");
        let persister = Arc::new(Persister::new(root.path().to_owned()));
        let mut big = store_with(0);
        for i in 0..200 {
            big.tokens.insert(
                format!("token-{i}"),
                crate::emulator::state::TokenRecord {
                    fingerprint: "x".repeat(500),
                    answer: serde_json::Value::Null,
                    at: jiff::Timestamp::UNIX_EPOCH,
                },
            );
        }
        let mut tasks = tokio::task::JoinSet::new();
        for n in 1..=40 {
            let persister = persister.clone();
            let mut store = big.clone();
            store.next_ip = n;
            let snapshot = persister.snapshot(&store).expect("encode");
            tasks.spawn(async move { persister.save(snapshot).await });
        }
        while let Some(result) = tasks.join_next().await {
            result.expect("joined").expect("saved");
            persister.load().expect("always decodable");
        }
        assert_eq!(
            persister.load().expect("load").next_ip,
            40,
            "the newest wins"
        );
    }
}
