//! The `eci-profile`: ACK's cluster-wide settings of the virtual nodes, kept in a ConfigMap
//! (`kube-system/eci-profile` by default), and the mutating admission webhook that places the
//! pods its `selectors` match on the virtual nodes.
//!
//! - [`parse`]: the ConfigMap's `data` → a checked [`Profile`] (or every bad key);
//! - [`follow`]: the watch that keeps a [`ProfileHandle`] at the last good version, with
//!   Warning events `InvalidProfile` and `ProfileKeyIgnored` on the ConfigMap;
//! - [`webhook`]: the HTTPS server of `POST /mutate-pods` and its pure [`webhook::mutate`].
//!
//! Every replica of the node follows the profile and serves the webhook (neither writes
//! anything but events); the pod controller reads [`ProfileHandle::current`] for each create.

mod follow;
mod parse;
pub mod webhook;

pub use follow::{ProfileHandle, follow};
pub use parse::{Effect, Profile, Selector, Switches, parse};
pub use webhook::Placement;
