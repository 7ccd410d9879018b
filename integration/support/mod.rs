//! Test support shared by every integration suite: the test ground (control plane and
//! registries, started by the project's own scripts), per-test namespaces, kubectl, and the
//! test-image builder.

pub mod cache_status;
pub mod children;
pub mod emulator;
pub mod ground;
pub mod harness;
pub mod image;
pub mod kubectl;
pub mod node_child;
pub mod tap;
pub mod wait;
pub mod workload;

pub use ground::Ground;
