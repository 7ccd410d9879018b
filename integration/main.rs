//! End-to-end tests against the real test ground (see `integration/support/harness.rs`).
//! Run them with `cargo test --test integration`; `-- NAME` filters as usual.

mod cli;
mod crd;
mod eci_api;
mod eci_sdk;
mod registry;
mod support;

use support::harness::{self, Test};

fn main() -> std::process::ExitCode {
    let tests: Vec<Test> = [
        cli::tests(),
        crd::tests(),
        eci_api::tests(),
        eci_sdk::tests(),
        registry::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    harness::main(tests)
}
