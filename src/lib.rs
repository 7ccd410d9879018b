//! eci-virtual-kubelet: a Kubernetes virtual node for Alibaba Cloud Elastic Container Instance.
//!
//! Each module is a room of `DESIGN.md` with one job; [`cli`] is the one edge that wires them
//! into a program, and `src/main.rs` only hands it the command line.

pub mod agent;
#[cfg(test)]
mod architecture;
pub mod cli;
pub mod config;
pub mod eci;
pub mod election;
pub mod emulator;
pub mod expiring;
#[cfg(test)]
mod fuzz_inputs;
pub mod https;
pub mod imagecache;
pub mod kubelet;
pub mod metrics;
pub mod node;
pub mod pods;
pub mod profile;
pub mod quantity;
#[cfg(test)]
mod readme_paths;
pub mod reference;

/// An error and its causes on one line (`outer: cause: root cause`), for messages that travel
/// where no `Debug` report is printed: gRPC statuses, events, CLI errors.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
