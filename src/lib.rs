//! eci-virtual-kubelet: a Kubernetes virtual node for Alibaba Cloud Elastic Container Instance.
//!
//! Each module is a room of `DESIGN.md` with one job; `src/main.rs` only wires them together.

pub mod agent;
pub mod cli;
pub mod config;
pub mod eci;
pub mod emulator;
pub mod imagecache;
pub mod metrics;
pub mod node;
pub mod pods;
pub mod run;
