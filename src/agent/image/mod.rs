//! The agent's image side: OCI pulls from registries over a shaped link into a content store,
//! and layers unpacked into snapshots that caches and container groups run from.
//!
//! - `registry`: the registry client (index → platform manifest → blobs; anonymous, basic
//!   and bearer auth);
//! - `shaper`: the bandwidth shaper of the emulated WAN and the pull counters;
//! - `store`: the content-addressed blob store;
//! - `growing`: a blob read while it downloads, for unpacking a layer as it arrives;
//! - `unpack`: one layer unpacked onto a directory, with whiteouts and escapes refused;
//! - `snapshot`: snapshots built from images, renamed, looked up and deleted.
//!
//! The rest of the agent sees only the names re-exported here.

#[doc(hidden)]
pub mod fuzz;
mod growing;
mod registry;
mod shaper;
mod snapshot;
mod store;
mod unpack;

pub use self::{
    registry::{
        ImageRef, Platform, RegistryClient, RegistryConfig, RegistryCredential, RegistryError,
    },
    shaper::{Bandwidth, PullCounters, PullScope, PullStats, Shaper},
    snapshot::{BuildEvent, BuildRequest, SnapshotError, SnapshotManifest, SnapshotStore},
    store::{ContentStore, Digest, Fetch, StoreError},
};
