//! End-to-end tests against the real test ground (see `integration/support/harness.rs`).
//! Run them with `cargo test --test integration`; `-- NAME` filters as usual.
// Test and benchmark code, not shipped: a failed assumption may panic, and it times with
// the standard clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

mod agent_pull;
mod agent_runc;
mod annotations;
mod chart;
mod cli;
mod cloud_reads;
mod crd;
mod credentials;
mod current_eci;
mod eci_api;
mod eci_sdk;
mod election;
mod faults;
mod guide;
mod hostile_input;
mod imagecache;
mod in_cluster;
mod kubelet_api;
mod leadership;
mod node;
mod pod_surface;
mod profile;
mod registry;
mod runc_runtime;
mod status_writes;
mod storage;
mod support;
mod updates;
mod zones;

use support::harness::{self, Test};

fn main() -> std::process::ExitCode {
    // One rustls provider for every TLS client of the tests (oci-client, reqwest): ring, as
    // the product uses; no crate of the build brings a default one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tests: Vec<Test> = [
        agent_pull::tests(),
        annotations::tests(),
        agent_runc::tests(),
        chart::tests(),
        cli::tests(),
        cloud_reads::tests(),
        crd::tests(),
        credentials::tests(),
        current_eci::tests(),
        eci_api::tests(),
        eci_sdk::tests(),
        election::tests(),
        faults::tests(),
        guide::tests(),
        hostile_input::tests(),
        imagecache::tests(),
        in_cluster::tests(),
        kubelet_api::tests(),
        leadership::tests(),
        node::tests(),
        pod_surface::tests(),
        profile::tests(),
        registry::tests(),
        runc_runtime::tests(),
        status_writes::tests(),
        updates::tests(),
        zones::tests(),
        storage::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    harness::main(tests)
}
