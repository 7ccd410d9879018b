//! `--data-dir`: the whole store as one JSON file, written atomically soon after each change,
//! so a restarted emulator still knows its groups, caches and client tokens.
//!
//! Nonces are not saved: a replay after a restart still needs a timestamp within 15 minutes.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

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
}

/// Reads and writes `DIR/state.json`.
#[derive(Debug)]
pub struct Persister {
    dir: PathBuf,
    path: PathBuf,
    pub(super) notify: Notify,
}

impl Persister {
    /// A persister for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            path: dir.join("state.json"),
            dir,
            notify: Notify::new(),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or an empty one when there is none yet.
    ///
    /// # Errors
    /// When the file exists but cannot be read or decoded.
    pub fn load(&self) -> Result<Store, PersistError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| PersistError::Decode {
                path: self.path.clone(),
                source,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
            Err(source) => Err(PersistError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Writes `store` atomically (temporary file, then rename).
    ///
    /// # Errors
    /// When the directory or file cannot be written.
    pub async fn save(&self, store: &Store) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec(store).map_err(PersistError::Encode)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| PersistError::Io { path, source }
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(&self.dir))?;
        let tmp = self.dir.join("state.json.tmp");
        tokio::fs::write(&tmp, bytes).await.map_err(io(&tmp))?;
        // The state holds registry passwords: readable by the owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(io(&tmp))?;
        }
        tokio::fs::rename(&tmp, &self.path)
            .await
            .map_err(io(&self.path))?;
        Ok(())
    }
}

/// Saves the store after changes, at most every 100 ms.
pub async fn save_loop(core: Arc<Core>) {
    let Some(persister) = &core.persister else {
        return;
    };
    loop {
        persister.notify.notified().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        core.save_now().await;
    }
}
